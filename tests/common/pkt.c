// SPDX-License-Identifier: MIT
/* Test frame builders: see pkt.h. Written byte by byte, independent of the BPF code. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <flowpin/fibns.h>
#include <flowpin/hash.h>
#include <flowpin/wire.h>
#include "pkt.h"

/* The LB acts only on frames to the receiving device's MAC (bpf/own_mac.h): by default
 * a frame goes to fp-test0's, the ingress device of every test run (flowpin/fibns.h). */
static const __u8 default_dst_mac[6] = FP_FIBNS_OWN_MAC;
static const __u8 default_src_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };

static int mac_is_zero(const __u8 m[6])
{
	static const __u8 zero[6];

	return !memcmp(m, zero, 6);
}

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(__u8 *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

__u32 fp_csum_add(__u32 sum, const void *data, size_t len)
{
	const __u8 *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (__u32)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (__u32)p[len - 1] << 8;
	return sum;
}

/* Folds and complements; the result is in host order, store it with put16(). */
__u16 fp_csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

void fp_pkt_ipv4_fix_csum(__u8 *ip)
{
	size_t hlen = (ip[0] & 0x0f) * 4;

	ip[10] = ip[11] = 0;
	put16(ip + 10, fp_csum_fold(fp_csum_add(0, ip, hlen)));
}

struct fp_addr fp_pkt_addr(const char *literal)
{
	struct fp_addr a = { { 0 } };
	__u8 v4[4];

	/* inet_pton, not the library's parser: the builders must not depend on the code
	 * they test. */
	if (inet_pton(AF_INET, literal, v4) == 1) {
		a.a[10] = a.a[11] = 0xff;
		memcpy(a.a + 12, v4, 4);
		return a;
	}
	if (inet_pton(AF_INET6, literal, a.a) != 1) {
		fprintf(stderr, "pkt: bad address literal '%s' in a test\n", literal);
		abort();
	}
	return a;
}

size_t fp_pkt_l3_offset(const struct fp_pkt_spec *s)
{
	return 14 + 4 * (size_t)s->n_vlan;
}

static size_t l4_header_len(const struct fp_pkt_spec *s)
{
	if (s->fragment && s->frag_offset)
		return 0;
	switch (s->proto) {
	case IPPROTO_TCP:
		return 20 + (size_t)s->tcp_options_len;
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return 8;
	default:
		return 0;
	}
}

/* Pseudo-header sum for the L4 checksum (RFC 793 / RFC 8200 8.1). */
static __u32 pseudo_sum(const struct fp_pkt_spec *s, int v6, __u32 l4_len)
{
	__u8 b[4];
	__u32 sum = 0;

	if (v6) {
		sum = fp_csum_add(sum, s->src.a, 16);
		sum = fp_csum_add(sum, s->dst.a, 16);
		put32(b, l4_len);
		sum = fp_csum_add(sum, b, 4);
		sum += s->proto;
	} else {
		sum = fp_csum_add(sum, s->src.a + 12, 4);
		sum = fp_csum_add(sum, s->dst.a + 12, 4);
		sum += s->proto;
		sum += l4_len;
	}
	return sum;
}

int fp_pkt_build(const struct fp_pkt_spec *s, __u8 *buf, size_t cap)
{
	int v6 = !fp_addr_v4(&s->src);
	size_t l3 = fp_pkt_l3_offset(s), ip_hlen, l4_hlen = l4_header_len(s);
	size_t ext_len = 0, l4, len, l4_len;
	__u8 *p;

	if (v6 == fp_addr_v4(&s->dst) || s->n_vlan > 4 || s->ip_options % 4 || s->ip_options > 40 ||
	    s->tcp_options_len % 4 || s->tcp_options_len > 40)
		return -EINVAL;
	if (v6)
		ext_len = 8 * ((size_t)s->n_hbh + s->n_dest + (s->fragment ? 1 : 0));
	ip_hlen = v6 ? 40 : 20 + s->ip_options;
	l4 = l3 + ip_hlen + ext_len;
	l4_len = l4_hlen + s->payload_len;
	len = l4 + l4_len;
	if (len > cap || len - l3 > 0xffff)
		return -ENOSPC;
	memset(buf, 0, len);

	/* Ethernet and VLAN tags. */
	memcpy(buf, mac_is_zero(s->dst_mac) ? default_dst_mac : s->dst_mac, 6);
	memcpy(buf + 6, mac_is_zero(s->src_mac) ? default_src_mac : s->src_mac, 6);
	p = buf + 12;
	for (int i = 0; i < s->n_vlan; i++) {
		__u16 tpid = s->vlan_tpid[i];

		if (!tpid)
			tpid = (s->n_vlan == 2 && i == 0) ? 0x88a8 : 0x8100;
		put16(p, tpid);
		put16(p + 2, s->vlan_id[i] & 0x0fff);
		p += 4;
	}
	put16(p, v6 ? 0x86dd : 0x0800);

	/* IP header and extension headers. */
	p = buf + l3;
	if (!v6) {
		__u16 frag = 0;

		p[0] = 0x40 | (__u8)(ip_hlen / 4);
		p[1] = s->tos;
		put16(p + 2, (__u16)(len - l3));
		put16(p + 4, 1); /* identification */
		if (s->fragment)
			frag = (__u16)((s->frag_offset / 8) | (s->more_fragments ? 0x2000 : 0));
		put16(p + 6, frag);
		p[8] = s->ttl ? s->ttl : 64;
		p[9] = s->proto;
		memcpy(p + 12, s->src.a + 12, 4);
		memcpy(p + 16, s->dst.a + 12, 4);
		memset(p + 20, 1, s->ip_options); /* NOP options */
		fp_pkt_ipv4_fix_csum(p);
	} else {
		__u8 *ext = p + 40;
		__u8 *next = p + 6;

		put32(p, 0x60000000u | (__u32)s->tos << 20);
		put16(p + 4, (__u16)(len - l3 - 40));
		p[7] = s->ttl ? s->ttl : 64;
		memcpy(p + 8, s->src.a, 16);
		memcpy(p + 24, s->dst.a, 16);
		for (int i = 0; i < s->n_hbh + s->n_dest; i++) {
			*next = i < s->n_hbh ? IPPROTO_HOPOPTS : IPPROTO_DSTOPTS;
			ext[1] = 0; /* 8 bytes in all */
			ext[2] = 1; /* PadN */
			ext[3] = 4; /* of 4 bytes */
			next = ext;
			ext += 8;
		}
		if (s->fragment) {
			*next = IPPROTO_FRAGMENT;
			put16(ext + 2,
			      (__u16)((s->frag_offset & 0xfff8) | (s->more_fragments ? 1 : 0)));
			put32(ext + 4, 0x01020304);
			next = ext;
			ext += 8;
		}
		*next = s->proto;
	}

	/* L4 header and payload. */
	p = buf + l4;
	if (s->payload)
		memcpy(p + l4_hlen, s->payload, s->payload_len);
	else
		for (size_t i = 0; i < s->payload_len; i++)
			p[l4_hlen + i] = (__u8)(0x41 + i % 26);
	if (s->proto == IPPROTO_TCP && l4_hlen >= 20) {
		put16(p, s->sport);
		put16(p + 2, s->dport);
		put32(p + 4, s->seq);
		put32(p + 8, s->ack);
		p[12] = (__u8)(l4_hlen / 4) << 4;
		if (s->tcp_options_len)
			memcpy(p + 20, s->tcp_options, s->tcp_options_len);
		p[13] = s->tcp_flags ? s->tcp_flags : FP_TCP_ACK;
		put16(p + 14, 65535);
		put16(p + 16, fp_csum_fold(fp_csum_add(pseudo_sum(s, v6, l4_len), p, l4_len)));
	} else if (l4_hlen == 8 && s->proto == IPPROTO_UDP) {
		__u16 c;

		put16(p, s->sport);
		put16(p + 2, s->dport);
		put16(p + 4, (__u16)l4_len);
		c = fp_csum_fold(fp_csum_add(pseudo_sum(s, v6, l4_len), p, l4_len));
		put16(p + 6, c ? c : 0xffff);
	} else if (l4_hlen == 8) { /* ICMP / ICMPv6 */
		__u32 sum = s->proto == IPPROTO_ICMPV6 ? pseudo_sum(s, v6, l4_len) : 0;

		p[0] = s->icmp_type;
		p[1] = s->icmp_code;
		put32(p + 4, s->icmp_rest);
		put16(p + 2, fp_csum_fold(fp_csum_add(sum, p, l4_len)));
	}
	return (int)len;
}

void fp_pkt_flow_key(const struct fp_pkt_spec *s, int addresses_only, struct fp_flow_key *key)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->src, s->src.a, 16);
	memcpy(key->dst, s->dst.a, 16);
	key->proto = s->proto;
	if (!addresses_only) {
		key->sport = htons(s->sport);
		key->dport = htons(s->dport);
	}
}

int fp_pkt_encap(const struct fp_encap_spec *e, const __u8 *inner, size_t inner_len, __u8 *buf,
		 size_t cap)
{
	int v6 = !fp_addr_v4(&e->hops[0]);
	size_t overhead, len, hop_size = v6 ? 16 : 4;
	__u8 inner_tos, *p;

	if (e->hop_count < 1 || e->hop_count > FP_MAX_HOPS || e->hop_index >= e->hop_count ||
	    v6 == fp_addr_v4(&e->outer_src) || inner_len < 20)
		return -EINVAL;
	for (int i = 1; i < e->hop_count; i++)
		if (v6 == fp_addr_v4(&e->hops[i]))
			return -EINVAL;
	switch (inner[0] >> 4) {
	case 4:
		inner_tos = inner[1];
		break;
	case 6:
		inner_tos = (__u8)((inner[0] << 4) | (inner[1] >> 4));
		break;
	default:
		return -EINVAL;
	}
	overhead = fp_encap_overhead(v6, e->hop_count);
	len = 14 + overhead + inner_len;
	if (len > cap)
		return -ENOSPC;
	memset(buf, 0, 14 + overhead);
	memcpy(buf, e->dst_mac, 6);
	memcpy(buf + 6, e->src_mac, 6);
	put16(buf + 12, v6 ? 0x86dd : 0x0800);
	p = buf + 14;
	if (!v6) {
		p[0] = 0x45;
		p[1] = inner_tos;
		put16(p + 2, (__u16)(overhead + inner_len));
		put16(p + 6, 0x4000); /* DF */
		p[8] = 64;
		p[9] = IPPROTO_UDP;
		memcpy(p + 12, e->outer_src.a + 12, 4);
		memcpy(p + 16, e->hops[0].a + 12, 4);
		fp_pkt_ipv4_fix_csum(p);
		p += 20;
	} else {
		put32(p, 0x60000000u | (__u32)inner_tos << 20);
		put16(p + 4, (__u16)(overhead - 40 + inner_len));
		p[6] = IPPROTO_UDP;
		p[7] = 64;
		memcpy(p + 8, e->outer_src.a, 16);
		memcpy(p + 24, e->hops[0].a, 16);
		p += 40;
	}
	/* UDP, checksum zero (wire.h). */
	put16(p, fp_hash_sport(e->hash));
	put16(p + 2, e->encap_port);
	put16(p + 4, (__u16)(overhead - (v6 ? 40 : 20) + inner_len));
	p += 8;
	/* GUE base header. */
	p[0] = fp_gue_hlen(e->hop_count, v6);
	p[1] = (inner[0] >> 4) == 4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	put16(p + 2, FP_GUE_FLAG_PRIV);
	p += 4;
	/* Private word and generation. */
	p[0] = e->type ? e->type : FP_PRIV_TYPE_HOPS;
	p[1] = e->hop_index;
	p[2] = e->hop_count;
	p[3] = v6 ? FP_PRIV_FLAG_V6 : 0;
	put32(p + 4, e->generation);
	p += 8;
	for (int i = 0; i < e->hop_count; i++) {
		memcpy(p, v6 ? e->hops[i].a : e->hops[i].a + 12, hop_size);
		p += hop_size;
	}
	memcpy(p, inner, inner_len);
	return (int)len;
}
