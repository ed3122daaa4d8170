/* SPDX-License-Identifier: MIT */
/*
 * ICMP "fragmentation needed" (RFC 792, RFC 1191) and ICMPv6 "packet too big"
 * (RFC 4443 3.2) from the LB program to a client whose packet does not fit the route to
 * its backend once encapsulated, so that path-MTU discovery works without raising the
 * fabric's MTU (docs/security.md "Path MTU: ICMP back to the client").
 *
 * The reply is built in place and leaves by XDP_TX through the ingress device, the way
 * the client's packet came:
 *
 *   L2 header of the client's packet, MACs swapped (VLAN tags kept)
 *   | IPv4 (TOS 0xc0, TTL 64, no DF) or IPv6 (hop limit 64), from the VIP the client
 *     addressed, to the client
 *   | ICMP type 3 code 4, next-hop MTU / ICMPv6 type 2 code 0, MTU
 *   | the client's packet from its IP header on, cut so that the ICMP datagram is at
 *     most 576 bytes (RFC 1812 4.3.2.3) / the IPv6 packet at most 1280 (RFC 4443 2.4c)
 *
 * Who gets one (fp_icmp_too_big_wanted()): never for an ICMP error (RFC 1122 3.2.2,
 * RFC 4443 2.4e); IPv4 only when DF is set and for offset 0 (the sender asked for
 * PMTUD; without DF the LB, which never fragments, just drops, counted); never to a
 * source that is not a unicast address (unspecified, loopback, multicast, broadcast,
 * 240/4), which would reflect the error off a whole segment.
 *
 * Rate: a per-CPU token bucket (fp_icmp_rate_allow()), FP_ICMP_RATE replies per second
 * and CPU with bursts of FP_ICMP_BURST; what it refuses is dropped and counted. A reply
 * is never larger than the packet that caused it (that packet exceeded a route MTU of
 * at least 576 + encapsulation, or is a 1280-byte IPv6 packet), so spoofed sources get
 * no amplification, only the rate.
 *
 * Include once (it defines a map), after csum.h.
 */
#ifndef FLOWPIN_BPF_ICMP_REPLY_H
#define FLOWPIN_BPF_ICMP_REPLY_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "csum.h"
#include "parse.h"

#define FP_ICMP_RATE	      1000 /* replies per second per CPU */
#define FP_ICMP_BURST	      50   /* replies at once after a quiet spell */
#define FP_ICMP_INTERVAL_NS   (1000000000ULL / FP_ICMP_RATE)

#define FP_ICMP4_MAX_DATAGRAM 576  /* RFC 1812 4.3.2.3: ICMP error, IP header included */
#define FP_ICMP6_MAX_PACKET   1280 /* RFC 4443 2.4c: the IPv6 minimum MTU */
#define FP_ICMP4_ROOM	      (sizeof(struct iphdr) + sizeof(struct fp_icmphdr))
#define FP_ICMP6_ROOM	      (sizeof(struct ipv6hdr) + sizeof(struct fp_icmphdr))
#define FP_ICMP4_MAX_QUOTE    (FP_ICMP4_MAX_DATAGRAM - FP_ICMP4_ROOM) /* 548 */
#define FP_ICMP6_MAX_QUOTE    (FP_ICMP6_MAX_PACKET - FP_ICMP6_ROOM)   /* 1232 */
#define FP_ICMP_MAX_L2	      (sizeof(struct ethhdr) + 2 * sizeof(struct fp_vlanhdr))

/* Token bucket in nanoseconds of credit: one reply costs FP_ICMP_INTERVAL_NS. */
struct fp_icmp_bucket {
	__u64 last_ns;	 /* bpf_ktime_get_coarse_ns() of the last refill */
	__u64 credit_ns; /* at most FP_ICMP_BURST * FP_ICMP_INTERVAL_NS */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_icmp_bucket);
	__uint(max_entries, 1);
} icmp_bucket SEC(".maps");

/* Takes a token from this CPU's bucket. Returns 1 when a reply may be sent. */
static __always_inline int fp_icmp_rate_allow(__u64 now)
{
	struct fp_icmp_bucket *b;
	__u32 zero = 0;
	__u64 credit;

	b = bpf_map_lookup_elem(&icmp_bucket, &zero);
	if (!b)
		return 0;
	credit = b->credit_ns + (now - b->last_ns);
	if ((__s64)(now - b->last_ns) < 0 || credit > FP_ICMP_BURST * FP_ICMP_INTERVAL_NS)
		credit = FP_ICMP_BURST * FP_ICMP_INTERVAL_NS;
	b->last_ns = now;
	if (credit < FP_ICMP_INTERVAL_NS) {
		b->credit_ns = credit;
		return 0;
	}
	b->credit_ns = credit - FP_ICMP_INTERVAL_NS;
	return 1;
}

/* An address an ICMP error may be sent to (RFC 1812 4.3.2.7, RFC 4443 2.4). */
static __always_inline int fp_icmp_unicast4(__be32 a)
{
	__u8 first = bpf_ntohl(a) >> 24;

	return first != 0 && first != 127 && first < 224;
}

static __always_inline int fp_icmp_unicast6(const struct in6_addr *a)
{
	const __u32 *w = (const __u32 *)a;

	if (a->s6_addr[0] == 0xff)
		return 0; /* multicast */
	if (!(w[0] | w[1] | w[2]))
		return w[3] != 0 && w[3] != bpf_htonl(1); /* not :: nor ::1 */
	return 1;
}

/*
 * Whether the client's packet at @l3_off (IP header already checked by the parser, no
 * ICMP error: the caller knows that) earns a "too big" reply.
 */
static __always_inline int fp_icmp_too_big_wanted(struct xdp_md *ctx, __u32 l3_off, int v6)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;

	if (l3_off > FP_ICMP_MAX_L2)
		return 0;
	if (v6) {
		struct ipv6hdr *ip6 = data + l3_off;

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		return fp_icmp_unicast6(&ip6->saddr);
	} else {
		struct iphdr *ip = data + l3_off;

		if ((void *)(ip + 1) > data_end)
			return 0;
		if ((ip->frag_off & bpf_htons(IP_DF | IP_OFFSET)) != bpf_htons(IP_DF))
			return 0;
		return fp_icmp_unicast4(ip->saddr);
	}
}

/*
 * fp_icmp_too_big - rewrites the frame in @ctx, a client's IP packet of @ip_len bytes
 * at @l3_off, into the "too big" reply above, telling @mtu. Returns 0 when the frame
 * holds the reply (send it with XDP_TX), -1 when it could not be built (the frame may
 * be half rewritten: drop it).
 */
static __always_inline int fp_icmp_too_big(struct xdp_md *ctx, __u32 l3_off, int v6, __u32 ip_len,
					   __u32 mtu)
{
	__u32 room = v6 ? FP_ICMP6_ROOM : FP_ICMP4_ROOM;
	__u32 quote = v6 ? FP_ICMP6_MAX_QUOTE : FP_ICMP4_MAX_QUOTE;
	void *data, *data_end;
	struct fp_icmphdr *icmp;
	__u8 *l2, *old;
	__u64 sum = 0;
	__s64 part;
	__u32 len;

	if (l3_off > FP_ICMP_MAX_L2 || l3_off < sizeof(struct ethhdr))
		return -1;
	if (ip_len < quote)
		quote = ip_len;
	/* The frame ends with the quote (drops the rest and any link-layer padding), then
	 * room for the new IP and ICMP headers in front of the old IP header. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	len = data_end - data;
	if (len < l3_off + quote)
		return -1;
	if (len > l3_off + quote && bpf_xdp_adjust_tail(ctx, (int)(l3_off + quote) - (int)len))
		return -1;
	if (bpf_xdp_adjust_head(ctx, -(int)room))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	l2 = data;
	old = data + room; /* the client's frame, L2 header first */
	if ((void *)(old + FP_ICMP_MAX_L2) > data_end)
		return -1;
	/* L2 header: MACs swapped, EtherType and tags as they were. Fixed size: with fewer
	 * tags the extra bytes land where the new IP header goes next. */
	__builtin_memcpy(l2, old + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(l2 + ETH_ALEN, old, ETH_ALEN);
	__builtin_memcpy(l2 + 2 * ETH_ALEN, old + 2 * ETH_ALEN, FP_ICMP_MAX_L2 - 2 * ETH_ALEN);
	l3_off &= 0x1f; /* == before; a bound the verifier can follow */
	if (v6) {
		struct ipv6hdr *ip6 = data + l3_off, *orig = data + l3_off + FP_ICMP6_ROOM;

		if ((void *)(orig + 1) > data_end)
			return -1;
		icmp = (void *)(ip6 + 1);
		*(__be32 *)ip6 = bpf_htonl(0x60000000);
		ip6->payload_len = bpf_htons(sizeof(*icmp) + quote);
		ip6->nexthdr = IPPROTO_ICMPV6;
		ip6->hop_limit = 64;
		ip6->saddr = orig->daddr;
		ip6->daddr = orig->saddr;
		icmp->type = FP_ICMPV6_PKT_TOOBIG;
		icmp->code = 0;
		icmp->checksum = 0;
		icmp->rest = bpf_htonl(mtu);
		sum = fp_csum_pseudo((__u8 *)&ip6->saddr, (__u8 *)&ip6->daddr, 1, IPPROTO_ICMPV6,
				     sizeof(*icmp) + quote);
	} else {
		struct iphdr *ip = data + l3_off, *orig = data + l3_off + FP_ICMP4_ROOM;

		if ((void *)(orig + 1) > data_end)
			return -1;
		icmp = (void *)(ip + 1);
		ip->version = 4;
		ip->ihl = 5;
		ip->tos = 0xc0; /* internetwork control, as routers send ICMP errors */
		ip->tot_len = bpf_htons(FP_ICMP4_ROOM + quote);
		ip->id = 0;
		ip->frag_off = 0;
		ip->ttl = 64;
		ip->protocol = IPPROTO_ICMP;
		ip->check = 0;
		ip->saddr = orig->daddr;
		ip->daddr = orig->saddr;
		ip->check = fp_csum_ipv4_header(ip);
		icmp->type = FP_ICMP_DEST_UNREACH;
		icmp->code = FP_ICMP_FRAG_NEEDED;
		icmp->checksum = 0;
		icmp->rest = bpf_htonl(mtu & 0xffff); /* unused (16 bits) | next-hop MTU */
	}
	part = fp_csum_frame(ctx, (__u32)((void *)icmp - data), sizeof(*icmp) + quote);
	if (part < 0)
		return -1;
	sum += part;
	/* fp_csum_frame() may not keep packet pointers valid for the verifier: reload. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	icmp = data + l3_off + (v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr));
	if ((void *)(icmp + 1) > data_end)
		return -1;
	icmp->checksum = (__sum16)~fp_csum_fold(sum);
	return 0;
}

#endif
