/* SPDX-License-Identifier: MIT */
/*
 * Packet parsing helpers shared by the LB program (XDP) and the backend program (tc).
 *
 * Every helper works on a header cursor over [pos, end) and does exactly one bounds
 * check of the form `if (p + 1 > end)` (plus one for the variable part of headers with
 * a length field), so the verifier sees the pattern it knows. Callers pass plain
 * pointers: (void *)(long)ctx->data / data_end for both xdp_md and __sk_buff.
 *
 * On success a helper returns FP_PARSE_OK, fills its out-parameters and advances the
 * cursor past the header. On failure it returns a negative fp_parse_result and leaves
 * the cursor where it was, so the caller can tell "truncated" (the frame ends early)
 * from "malformed" (impossible field values) from "too deep" (more VLAN tags or IPv6
 * extension headers than we walk) and count each.
 */
#ifndef FLOWPIN_BPF_PARSE_H
#define FLOWPIN_BPF_PARSE_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <flowpin/wire.h>

enum fp_parse_result {
	FP_PARSE_OK = 0,
	FP_PARSE_TRUNCATED = -1, /* a header runs past the end of the frame */
	FP_PARSE_MALFORMED = -2, /* impossible values: IHL < 5, doff < 5, bad lengths */
	FP_PARSE_TOO_DEEP = -3,	 /* more VLAN tags / IPv6 extension headers than we walk */
};

/* Up to two tags: 802.1ad outer + 802.1Q inner (QinQ), or one 802.1Q. */
#define FP_MAX_VLAN_TAGS 2
/*
 * IPv6 extension headers walked before giving up (FP_PARSE_TOO_DEEP). RFC 8200's
 * recommended order has at most hop-by-hop, destination options, routing, fragment,
 * destination options in front of TCP/UDP: five.
 */
#define FP_MAX_IPV6_EXT 5

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#ifndef IP_MF
#define IP_MF	  0x2000
#define IP_OFFSET 0x1FFF
#endif
#ifndef IP_DF
#define IP_DF 0x4000
#endif
/* bpf_fib_lookup()'s families; the libc socket headers do not build for -target bpf. */
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

struct fp_cursor {
	void *pos;
	void *end;
};

/* 802.1Q/802.1ad tag after the MAC addresses (the kernel's vlan_hdr is not uapi). */
struct fp_vlanhdr {
	__be16 tci;
	__be16 proto;
};

/* IPv6 fragment header (RFC 8200 4.5); the kernel's frag_hdr is not uapi. */
struct fp_frag6hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset (13 bits, 8-byte units) | res (2) | M (1) */
	__be32 identification;
};
#define FP_IP6_MF     0x0001
#define FP_IP6_OFFSET 0xFFF8

/*
 * ICMP and ICMPv6 share this 8-byte header layout. linux/icmp.h drags in libc headers
 * (if.h, sys/socket.h) that do not build for -target bpf, so we keep our own.
 */
struct fp_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest; /* id/sequence, next-hop MTU, ... */
};
#define FP_ICMP_ECHO_REPLY     0
#define FP_ICMP_DEST_UNREACH   3
#define FP_ICMP_FRAG_NEEDED    4 /* code of FP_ICMP_DEST_UNREACH */
#define FP_ICMP_ECHO_REQUEST   8
#define FP_ICMPV6_PKT_TOOBIG   2
#define FP_ICMPV6_ECHO_REQUEST 128

/* The first 8 bytes of every IPv6 extension header we skip. */
struct fp_ip6_ext {
	__u8 nexthdr;
	__u8 hdrlen; /* 8-octet units, not counting the first 8 octets */
};

static __always_inline void fp_cursor_init(struct fp_cursor *c, void *data, void *data_end)
{
	c->pos = data;
	c->end = data_end;
}

/*
 * fp_parse_eth - Ethernet header and up to FP_MAX_VLAN_TAGS VLAN tags.
 * *proto gets the EtherType after the tags (network order), *tags the number of tags.
 */
static __always_inline int fp_parse_eth(struct fp_cursor *c, struct ethhdr **eth, __be16 *proto,
					__u32 *tags)
{
	struct ethhdr *e = c->pos;
	struct fp_vlanhdr *vlan;
	__be16 type;
	__u32 n = 0;

	if ((void *)(e + 1) > c->end)
		return FP_PARSE_TRUNCATED;
	type = e->h_proto;
	vlan = (void *)(e + 1);
#pragma unroll
	for (int i = 0; i < FP_MAX_VLAN_TAGS; i++) {
		if (type != bpf_htons(ETH_P_8021Q) && type != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > c->end)
			return FP_PARSE_TRUNCATED;
		type = vlan->proto;
		vlan++;
		n++;
	}
	if (type == bpf_htons(ETH_P_8021Q) || type == bpf_htons(ETH_P_8021AD))
		return FP_PARSE_TOO_DEEP;
	c->pos = vlan;
	*eth = e;
	*proto = type;
	*tags = n;
	return FP_PARSE_OK;
}

/*
 * fp_parse_ipv4 - IPv4 header with options (IHL checked, options skipped).
 * Also checks tot_len against the header and the frame: bytes beyond tot_len are
 * link-layer padding; a tot_len past the end of the frame is a truncated packet.
 */
static __always_inline int fp_parse_ipv4(struct fp_cursor *c, struct iphdr **out)
{
	struct iphdr *ip = c->pos;
	__u32 hlen, tot_len;

	if ((void *)(ip + 1) > c->end)
		return FP_PARSE_TRUNCATED;
	if (ip->version != 4)
		return FP_PARSE_MALFORMED;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return FP_PARSE_MALFORMED;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hlen)
		return FP_PARSE_MALFORMED;
	if (c->pos + hlen > c->end)
		return FP_PARSE_TRUNCATED;
	if (c->pos + tot_len > c->end)
		return FP_PARSE_TRUNCATED;
	c->pos += hlen;
	*out = ip;
	return FP_PARSE_OK;
}

/*
 * fp_parse_ipv4_quoted - the IPv4 header quoted inside an ICMP error: IHL checked and
 * options skipped, but tot_len describes the original packet, not the quote, so it is
 * not checked against the frame.
 */
static __always_inline int fp_parse_ipv4_quoted(struct fp_cursor *c, struct iphdr **out)
{
	struct iphdr *ip = c->pos;
	__u32 hlen;

	if ((void *)(ip + 1) > c->end)
		return FP_PARSE_TRUNCATED;
	if (ip->version != 4)
		return FP_PARSE_MALFORMED;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return FP_PARSE_MALFORMED;
	if (c->pos + hlen > c->end)
		return FP_PARSE_TRUNCATED;
	c->pos += hlen;
	*out = ip;
	return FP_PARSE_OK;
}

static __always_inline int fp_ipv4_is_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
}

/* First fragment (offset 0, MF set) or not a fragment: the L4 header is present. */
static __always_inline int fp_ipv4_has_l4(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_OFFSET)) == 0;
}

static __always_inline int fp_ip6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_FRAGMENT;
}

/*
 * fp_parse_ipv6 - IPv6 header, then hop-by-hop, routing, destination-options and
 * fragment headers, at most FP_MAX_IPV6_EXT of them.
 * *l4proto gets the upper-layer protocol; *frag the fragment header or NULL. After a
 * fragment header with a non-zero offset the walk stops (what follows is payload, not
 * headers) and the cursor points at that payload.
 * payload_len 0 (jumbogram) is refused as malformed: we never forward those.
 */
static __always_inline int fp_parse_ipv6(struct fp_cursor *c, struct ipv6hdr **out, __u8 *l4proto,
					 struct fp_frag6hdr **frag)
{
	struct ipv6hdr *ip6 = c->pos;
	struct fp_frag6hdr *fh = NULL;
	void *pos = (void *)(ip6 + 1);
	__u32 payload_len;
	__u8 next;

	if ((void *)(ip6 + 1) > c->end)
		return FP_PARSE_TRUNCATED;
	if (ip6->version != 6)
		return FP_PARSE_MALFORMED;
	payload_len = bpf_ntohs(ip6->payload_len);
	if (payload_len == 0)
		return FP_PARSE_MALFORMED;
	if (pos + payload_len > c->end)
		return FP_PARSE_TRUNCATED;
	next = ip6->nexthdr;
#pragma unroll
	for (int i = 0; i < FP_MAX_IPV6_EXT; i++) {
		struct fp_ip6_ext *ext = pos;

		if (!fp_ip6_is_ext(next))
			break;
		if ((void *)(ext + 1) > c->end)
			return FP_PARSE_TRUNCATED;
		if (next == IPPROTO_FRAGMENT) {
			fh = pos;
			if ((void *)(fh + 1) > c->end)
				return FP_PARSE_TRUNCATED;
			next = fh->nexthdr;
			pos = (void *)(fh + 1);
			if (fh->frag_off & bpf_htons(FP_IP6_OFFSET))
				goto done; /* not the first fragment: no headers follow */
			continue;
		}
		next = ext->nexthdr;
		pos += (ext->hdrlen + 1) * 8;
	}
	if (fp_ip6_is_ext(next))
		return FP_PARSE_TOO_DEEP;
done:
	if (pos > c->end)
		return FP_PARSE_TRUNCATED;
	c->pos = pos;
	*out = ip6;
	*l4proto = next;
	*frag = fh;
	return FP_PARSE_OK;
}

static __always_inline int fp_ipv6_frag_has_l4(const struct fp_frag6hdr *fh)
{
	return !fh || (fh->frag_off & bpf_htons(FP_IP6_OFFSET)) == 0;
}

/* fp_parse_tcp - TCP header including options (doff checked). */
static __always_inline int fp_parse_tcp(struct fp_cursor *c, struct tcphdr **out)
{
	struct tcphdr *tcp = c->pos;
	__u32 hlen;

	if ((void *)(tcp + 1) > c->end)
		return FP_PARSE_TRUNCATED;
	hlen = tcp->doff * 4;
	if (hlen < sizeof(*tcp))
		return FP_PARSE_MALFORMED;
	if (c->pos + hlen > c->end)
		return FP_PARSE_TRUNCATED;
	c->pos += hlen;
	*out = tcp;
	return FP_PARSE_OK;
}

/* TCP option kinds and the timestamp option's length (RFC 9293 3.2, RFC 7323 3). */
#define FP_TCPOPT_EOL	     0
#define FP_TCPOPT_NOP	     1
#define FP_TCPOPT_TIMESTAMP  8
#define FP_TCPOLEN_TIMESTAMP 10
/* Option bytes after the 20-byte header: doff is at most 15 words. */
#define FP_TCP_MAX_OPT_LEN 40

/*
 * fp_tcp_timestamp - the timestamp option of the TCP header at @th.
 * Returns a pointer to the option's 8 value bytes (TSval then TSecr, big-endian, not
 * necessarily aligned: read them with fp_tcp_ts_get32()), or NULL when the segment has
 * none or its options cannot be trusted: header or options past @data_end, doff < 5, an
 * option whose length is below 2 or runs past doff, a timestamp option whose length is
 * not 10. The walk stops at EOL (what follows is padding) and after
 * FP_TCP_MAX_OPT_LEN bytes. Only the first timestamp option counts (the kernel's
 * tcp_parse_options() keeps the last; a segment with two is forged or broken, and
 * either way its ticket is only a hint checked against the live backends).
 *
 * Works on XDP and on tc direct packet access alike: @th and @data_end are plain packet
 * pointers; on tc the caller makes sure the options are in the linear area.
 *
 * Verifier: one loop over the option bytes by position (at most FP_TCP_MAX_OPT_LEN
 * rounds), every access at a constant offset from @th, checked against @data_end
 * before the round looks at anything, so every layout reaches the next position with
 * the same proven packet range and the verifier's states prune there instead of
 * multiplying (a cursor advanced by each option's length did not: 278,000
 * instructions for the parser alone, over 1,000,000 for a variant). The end of the
 * options is a packet pointer compared as a pointer (hidden from the compiler, which
 * would turn it back into a comparison of lengths the verifier then tracks exactly:
 * twice the work); skipped option bytes are counted down in a scalar nothing else
 * depends on. About 7,600 verified instructions for one call whose @th the verifier
 * sees in one state; callers reach it with the header found again from its offset
 * (as lb.bpf.c and parse_probe.bpf.c do), else every parse path walks it again.
 */
static __always_inline __u8 *fp_tcp_timestamp(struct tcphdr *th, void *data_end)
{
	__u8 *opts = (__u8 *)(th + 1), *end;
	__u32 skip = 0;

	if ((void *)(th + 1) > data_end)
		return NULL;
	if (th->doff < 5)
		return NULL;
	end = (__u8 *)th + th->doff * 4;
	asm volatile("" : "+r"(end)); /* keep the pointer comparisons below */
	if ((void *)end > data_end)
		return NULL;
	for (__u32 i = 0; i < FP_TCP_MAX_OPT_LEN; i++) {
		__u8 *p = opts + i, kind, olen;

		if (p + 1 > end || (void *)(p + 1) > data_end)
			return NULL;
		if (skip) { /* inside the option before this one */
			skip--;
			continue;
		}
		kind = p[0];
		if (kind == FP_TCPOPT_EOL)
			return NULL;
		if (kind == FP_TCPOPT_NOP)
			continue;
		if (p + 2 > end || (void *)(p + 2) > data_end)
			return NULL;
		olen = p[1];
		if (olen < 2 || p + olen > end)
			return NULL;
		if (kind == FP_TCPOPT_TIMESTAMP) {
			if (olen != FP_TCPOLEN_TIMESTAMP ||
			    (void *)(p + FP_TCPOLEN_TIMESTAMP) > data_end)
				return NULL;
			return p + 2;
		}
		skip = olen - 1; /* this round consumed the kind byte */
	}
	return NULL;
}

/* A big-endian 32-bit value at any alignment (the timestamp option's TSval, TSecr). */
static __always_inline __u32 fp_tcp_ts_get32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

static __always_inline void fp_tcp_ts_put32(__u8 *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* fp_parse_udp - UDP header; a length field below 8 is malformed. */
static __always_inline int fp_parse_udp(struct fp_cursor *c, struct udphdr **out)
{
	struct udphdr *udp = c->pos;

	if ((void *)(udp + 1) > c->end)
		return FP_PARSE_TRUNCATED;
	if (bpf_ntohs(udp->len) < sizeof(*udp))
		return FP_PARSE_MALFORMED;
	c->pos = udp + 1;
	*out = udp;
	return FP_PARSE_OK;
}

/* fp_parse_icmp - the 8-byte ICMP or ICMPv6 header. */
static __always_inline int fp_parse_icmp(struct fp_cursor *c, struct fp_icmphdr **out)
{
	struct fp_icmphdr *icmp = c->pos;

	if ((void *)(icmp + 1) > c->end)
		return FP_PARSE_TRUNCATED;
	c->pos = icmp + 1;
	*out = icmp;
	return FP_PARSE_OK;
}

/*
 * fp_parse_gue - flowpin's GUE header, private word and hop list (flowpin/wire.h), the
 * cursor left at the inner IP packet. Anything that is not exactly what an LB writes
 * (version/C bits, P flag, private type, hop count 1..FP_MAX_HOPS, hop index within
 * the list, Hlen matching count and family) is malformed.
 * *hops points at hops[0]: 4-byte addresses, or 16-byte ones when FP_PRIV_FLAG_V6.
 */
static __always_inline int fp_parse_gue(struct fp_cursor *c, struct fp_guehdr **gue_out,
					struct fp_gue_priv **priv_out, void **hops)
{
	struct fp_guehdr *gue = c->pos;
	struct fp_gue_priv *priv = (void *)(gue + 1);
	__u32 hlen;

	if ((void *)(priv + 1) > c->end)
		return FP_PARSE_TRUNCATED;
	if ((gue->hlen_ver & 0xE0) != 0 || gue->flags != bpf_htons(FP_GUE_FLAG_PRIV))
		return FP_PARSE_MALFORMED;
	if (priv->type != FP_PRIV_TYPE_HOPS || priv->hop_count == 0 ||
	    priv->hop_count > FP_MAX_HOPS || priv->hop_index >= priv->hop_count)
		return FP_PARSE_MALFORMED;
	if (gue->hlen_ver != fp_gue_hlen(priv->hop_count, priv->flags & FP_PRIV_FLAG_V6))
		return FP_PARSE_MALFORMED;
	hlen = sizeof(*gue) + gue->hlen_ver * 4;
	if (c->pos + hlen > c->end)
		return FP_PARSE_TRUNCATED;
	c->pos += hlen;
	*gue_out = gue;
	*priv_out = priv;
	*hops = (void *)(priv + 1);
	return FP_PARSE_OK;
}

#endif
