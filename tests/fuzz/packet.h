/* SPDX-License-Identifier: MIT */
/*
 * Shared by the packet fuzz targets (fuzz_lb.c, fuzz_backend.c): the input format, the
 * structure-aware mutations, frame parsing for the oracles, and the coverage signal
 * from the BPF side.
 *
 * Input: one or more frames, each as a 2-byte little-endian length and that many bytes
 * (a last record shorter than its length takes what is left). Several frames let one
 * input drive a flow through states (SYN, ACK, RST ...); each input starts from empty
 * session state, so a saved input reproduces on its own.
 *
 * libFuzzer sees coverage of userspace code only; what the BPF program did is fed back
 * as libFuzzer "extra counters": which verdict and counters each frame moved, and the
 * pair (previous verdict, this verdict), so inputs that reach new program paths or new
 * sequences of them are kept.
 */
#ifndef FLOWPIN_FUZZ_PACKET_H
#define FLOWPIN_FUZZ_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "common/pkt.h"

#define FZ_MAX_FRAMES 8
#define FZ_FRAME_CAP  4096

struct fz_frames {
	size_t n;
	size_t len[FZ_MAX_FRAMES];
	uint8_t buf[FZ_MAX_FRAMES][FZ_FRAME_CAP];
};

/* Splits an input into frames (cut to @cap bytes each). Returns how many. */
static inline size_t fz_split(const uint8_t *d, size_t n, struct fz_frames *f, size_t cap)
{
	f->n = 0;
	while (n >= 2 && f->n < FZ_MAX_FRAMES) {
		size_t len = (size_t)d[0] | (size_t)d[1] << 8;

		d += 2;
		n -= 2;
		if (len > n)
			len = n;
		f->len[f->n] = len < cap ? len : cap;
		memcpy(f->buf[f->n], d, f->len[f->n]);
		f->n++;
		d += len;
		n -= len;
	}
	return f->n;
}

/* The input format again. Returns the size, or 0 when it does not fit @cap. */
static inline size_t fz_join(const struct fz_frames *f, uint8_t *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < f->n; i++) {
		if (o + 2 + f->len[i] > cap)
			return o;
		out[o++] = (uint8_t)(f->len[i] & 0xff);
		out[o++] = (uint8_t)(f->len[i] >> 8);
		memcpy(out + o, f->buf[i], f->len[i]);
		o += f->len[i];
	}
	return o;
}

/* ---- coverage of the BPF side --------------------------------------------------- */

#define FZ_EXTRA_COUNTERS 4096
/* libFuzzer collects this section after every input (and clears it before). */
__attribute__((used,
	       section("__libfuzzer_extra_counters"))) static uint8_t fz_extra[FZ_EXTRA_COUNTERS];

static inline void fz_feature(unsigned int f)
{
	uint8_t *c = &fz_extra[f % FZ_EXTRA_COUNTERS];

	if (*c < 255)
		(*c)++;
}

/* ---- frame parsing --------------------------------------------------------------- */

static inline uint16_t fz_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void fz_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * Offset of the L3 header after Ethernet and any 802.1Q/802.1ad tags; *@ethertype the
 * EtherType after the tags. Returns 0 when the frame is shorter than that.
 */
static inline size_t fz_l3(const uint8_t *f, size_t n, uint16_t *ethertype)
{
	size_t off = 12;

	while (off + 2 <= n) {
		uint16_t t = fz_get16(f + off);

		if ((t == 0x8100 || t == 0x88a8) && off + 6 <= n) {
			off += 4;
			continue;
		}
		*ethertype = t;
		return off + 2;
	}
	return 0;
}

/* Where an IP packet's L4 header is and what it is. */
struct fz_ip {
	int v6;
	const uint8_t *src, *dst; /* 4 or 16 bytes */
	uint8_t proto;		  /* after IPv6 extension headers */
	int fragment;		  /* any fragment (first or later) */
	int later_fragment;	  /* a fragment other than the first: no L4 header */
	size_t l4;		  /* offset of the L4 header from the IP header */
	size_t len;		  /* the IP length field's length (total) */
};

/* Parses the IP header at @p (@n bytes there). Returns 0, or -1 when it is not one. */
static inline int fz_parse_ip(const uint8_t *p, size_t n, struct fz_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (n < 1)
		return -1;
	if (p[0] >> 4 == 4) {
		size_t ihl = (size_t)(p[0] & 15) * 4;

		if (n < 20 || ihl < 20 || ihl > n)
			return -1;
		ip->src = p + 12;
		ip->dst = p + 16;
		ip->proto = p[9];
		ip->fragment = (fz_get16(p + 6) & 0x3fff) != 0;
		ip->later_fragment = (fz_get16(p + 6) & 0x1fff) != 0;
		ip->l4 = ihl;
		ip->len = fz_get16(p + 2);
		return 0;
	}
	if (p[0] >> 4 == 6) {
		uint8_t next;
		size_t off = 40;

		if (n < 40)
			return -1;
		ip->v6 = 1;
		ip->src = p + 8;
		ip->dst = p + 24;
		ip->len = 40 + (size_t)fz_get16(p + 4);
		next = p[6];
		/* Hop-by-hop, routing, destination options, fragment: as far as they fit. */
		for (int i = 0; i < 8; i++) {
			if (next == 0 || next == 43 || next == 60) {
				if (off + 8 > n)
					return -1;
				next = p[off];
				off += 8 * ((size_t)p[off + 1] + 1);
			} else if (next == 44) {
				if (off + 8 > n)
					return -1;
				ip->fragment = 1;
				ip->later_fragment = (fz_get16(p + off + 2) & 0xfff8) != 0;
				next = p[off];
				off += 8;
			} else {
				break;
			}
		}
		ip->proto = next;
		ip->l4 = off;
		return 0;
	}
	return -1;
}

static inline void fz_ipv4_csum(uint8_t *ip)
{
	fp_pkt_ipv4_fix_csum(ip);
}

/*
 * Makes the length fields of the IP packet at @p (@n bytes to the end of the frame)
 * agree with @n, and the IPv4 header checksum right; then the same for a UDP header
 * and, when the UDP packet is flowpin's encapsulation (@encap_port), for the GUE header
 * and the inner IP packet, so mutations of deeper fields are not all stopped by the
 * first length check. Returns nothing: a frame that does not parse is left as it is.
 */
static inline void fz_repair_ip(uint8_t *p, size_t n, uint16_t encap_port, int depth)
{
	struct fz_ip ip;

	if (depth > 2 || n > 0xffff || fz_parse_ip(p, n, &ip))
		return;
	if (!ip.v6) {
		fz_put16(p + 2, (uint16_t)n);
		fz_ipv4_csum(p);
	} else {
		fz_put16(p + 4, (uint16_t)(n - 40));
	}
	if (ip.proto == 17 && !ip.later_fragment && ip.l4 + 8 <= n) {
		uint8_t *udp = p + ip.l4;
		size_t ulen = n - ip.l4;

		fz_put16(udp + 4, (uint16_t)ulen);
		if (fz_get16(udp + 2) == encap_port && ulen >= 8 + 4) {
			uint8_t *gue = udp + 8;
			size_t inner = 8 + 4 + (size_t)(gue[0] & 0x1f) * 4;

			if (inner < ulen)
				fz_repair_ip(udp + inner, ulen - inner, encap_port, depth + 1);
		}
	}
}

static inline void fz_repair(uint8_t *f, size_t n, uint16_t encap_port)
{
	uint16_t et = 0;
	size_t l3 = fz_l3(f, n, &et);

	if (l3 && l3 < n && (et == 0x0800 || et == 0x86dd))
		fz_repair_ip(f + l3, n - l3, encap_port, 0);
}

/* A small deterministic generator for the mutators (seeded by libFuzzer). */
static inline uint32_t fz_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Writes @len bytes to DIR/NAME (seed corpus). Returns 0 or -1 (message printed). */
static inline int fz_write_seed(const char *dir, const char *name, const uint8_t *d, size_t len)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return -1;
	}
	ok = fwrite(d, 1, len, f) == len;
	if (fclose(f) || !ok) {
		perror(path);
		return -1;
	}
	return 0;
}

#endif
