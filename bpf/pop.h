/* SPDX-License-Identifier: MIT */
/*
 * Cross-site forwarding on the LB node (docs/design.md "Cross-site forwarding",
 * docs/wire-format.md "Cross-site messages"): the sites' maps (flowpin/maps.h `pops`,
 * `pop_lbs`, `pop_addrs`) and the receiving side's first step.
 *
 * Sending: a ticket (TCP timestamp or QUIC-LB server ID) names a backend flagged
 * FP_BACKEND_F_REMOTE: bpf/lb.bpf.c encapsulate() sends the packet, one hop, to one of
 * that site's LB addresses (fp_pop_lb(): by the flow's outer port, of a family this
 * node has an outer source for), private type FP_PRIV_TYPE_CROSS_SITE.
 *
 * Receiving: fp_pop_ingress() runs first on every frame sent to this node's MAC
 * (bpf/own_mac.h: never on one flooded here or sent to a group address). A UDP datagram
 * to encap_port whose GUE private type is FP_PRIV_TYPE_CROSS_SITE is a cross-site
 * message: accepted only from another site's LB address and to one of this site's
 * (pop_drop_source), only when its GUE header is exactly what a sender writes (version
 * 0, data message, one hop naming the outer destination, the private flags of the outer
 * family, lengths consistent; pop_drop_invalid); then its outer headers are stripped in
 * place and fp_lb() takes the inner packet as a cross-site one: it must be for a VIP,
 * it goes where a session or its ticket says and to this site's backends only (never
 * out to another site again: pop_drop_loop), it never reaches the stack and never
 * leaves any probation mark or session entry. Anything else (another type, another
 * port, a GUE header too short to carry the type) is not a cross-site message and takes
 * the normal path as before.
 *
 * fp_pop_ingress() is a global function: verified once on its own, whatever state the
 * program is in, so the packet paths pay nothing in verifier states for it.
 * Include after parse.h, the definition of encap_port and VERDICT() (bpf/lb.bpf.c).
 */
#ifndef FLOWPIN_BPF_POP_H
#define FLOWPIN_BPF_POP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <flowpin/flow.h>
#include <flowpin/maps.h>
#include <flowpin/wire.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_pop);
	__uint(max_entries, FP_POP_SLOTS);
} pops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fp_backend_entry);
	__uint(max_entries, FP_POP_SLOTS *FP_POP_LB_SLOTS);
} pop_lbs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct fp_vip_addr_key);
	__type(value, struct fp_pop_addr);
	__uint(max_entries, FP_POP_SLOTS *FP_POP_LB_SLOTS);
} pop_addrs SEC(".maps");

/* fp_pop_ingress(): not a cross-site message (the normal path), or one stripped to its
 * inner packet; any other value is a verdict (VERDICT() of bpf/lb.bpf.c). */
#define FP_POP_NOT_CROSS 0
#define FP_POP_CROSS	 1

/*
 * The LB address of site @pop a cross-site hop goes to: the IPv4 ones when this node has
 * an IPv4 outer source (@have_v4) and the site has some, else the IPv6 ones when it has
 * an IPv6 source; picked by @sport (the flow's outer port, from its keyed hash), so a
 * flow keeps one. NULL: none of a family we can send.
 */
static __always_inline struct fp_backend_entry *fp_pop_lb(__u8 pop, __u16 sport, int have_v4,
							  int have_v6)
{
	__u32 index = pop, n = 0, base = 0, v6 = 0;
	struct fp_backend_entry *e;
	struct fp_pop *p;

	if (pop >= FP_POP_SLOTS)
		return NULL;
	p = bpf_map_lookup_elem(&pops, &index);
	if (!p)
		return NULL;
	if (have_v4 && p->n_v4) {
		n = p->n_v4;
	} else if (have_v6 && p->n_v6) {
		n = p->n_v6;
		base = p->n_v4;
		v6 = 1;
	}
	if (!n)
		return NULL;
	index = pop * FP_POP_LB_SLOTS + ((base + sport % n) & (FP_POP_LB_SLOTS - 1));
	e = bpf_map_lookup_elem(&pop_lbs, &index);
	if (!e || ((e->flags & FP_BACKEND_F_V6) != 0) != v6)
		return NULL;
	return e;
}

/* The private flags word and hop of a cross-site message, after the GUE base header. */
struct fp_pop_gue {
	struct fp_guehdr gue;
	struct fp_gue_priv priv;
};

/*
 * The receiving side's first step (header comment): FP_POP_NOT_CROSS, FP_POP_CROSS with
 * the frame now an Ethernet header (the outer one's MACs) and the inner packet, or a
 * drop verdict with its counter. Reads only what the frame holds.
 */
__attribute__((noinline)) int fp_pop_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct fp_vip_addr_key src = {}, dst = {};
	struct fp_pop_addr *from, *to;
	struct fp_pop_gue *g;
	struct ethhdr *eth, *inner_eth;
	struct udphdr *udp;
	struct fp_cursor c;
	__u8 macs[12], *hop, *inner;
	__u32 tags, ip_len, v6, inner_off, hop_word[4];
	void *l3;
	__be16 proto;

	fp_cursor_init(&c, data, end);
	if (fp_parse_eth(&c, &eth, &proto, &tags))
		return FP_POP_NOT_CROSS;
	l3 = c.pos;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip;

		if (fp_parse_ipv4(&c, &ip) || ip->protocol != IPPROTO_UDP ||
		    fp_ipv4_is_fragment(ip))
			return FP_POP_NOT_CROSS;
		ip_len = bpf_ntohs(ip->tot_len);
		inner_off = ip->ihl * 4;
		fp_addr_from_v4(src.addr, ip->saddr);
		fp_addr_from_v4(dst.addr, ip->daddr);
		v6 = 0;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = c.pos;

		/* A sender writes no extension headers. */
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP)
			return FP_POP_NOT_CROSS;
		ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		inner_off = sizeof(*ip6);
		__builtin_memcpy(src.addr, &ip6->saddr, 16);
		__builtin_memcpy(dst.addr, &ip6->daddr, 16);
		c.pos = ip6 + 1;
		v6 = 1;
	} else {
		return FP_POP_NOT_CROSS;
	}
	udp = c.pos;
	g = (void *)(udp + 1);
	if ((void *)(g + 1) > end || udp->dest != bpf_htons(encap_port) ||
	    g->priv.type != FP_PRIV_TYPE_CROSS_SITE)
		return FP_POP_NOT_CROSS;

	/* A cross-site message: accepted below, or dropped and counted. */
	from = bpf_map_lookup_elem(&pop_addrs, &src);
	to = bpf_map_lookup_elem(&pop_addrs, &dst);
	if (!from || from->local || !to || !to->local)
		return VERDICT(XDP_DROP, FP_CNT_POP_DROP_SOURCE);
	if (g->gue.hlen_ver != fp_gue_hlen(1, v6) || g->gue.flags != bpf_htons(FP_GUE_FLAG_PRIV) ||
	    (g->gue.proto != IPPROTO_IPIP && g->gue.proto != IPPROTO_IPV6) ||
	    g->priv.hop_index != 0 || g->priv.hop_count != 1 ||
	    g->priv.flags != (v6 ? FP_PRIV_FLAG_V6 : 0))
		return VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
	hop = (void *)(g + 1);
	inner = hop + (v6 ? 16 : 4);
	/* The inner IP header's first byte, and the hop, within the frame. */
	if ((void *)(inner + 1) > end)
		return VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
	/* The hop names the outer destination, as a sender writes it. */
	__builtin_memcpy(hop_word, dst.addr, 16);
	if (v6) {
		__u32 h[4];

		if ((void *)(hop + 16) > end)
			return VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
		__builtin_memcpy(h, hop, 16);
		if ((h[0] ^ hop_word[0]) | (h[1] ^ hop_word[1]) | (h[2] ^ hop_word[2]) |
		    (h[3] ^ hop_word[3]))
			return VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
	} else {
		__u32 h;

		if ((void *)(hop + 4) > end)
			return VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
		__builtin_memcpy(&h, hop, 4);
		if (h != hop_word[3])
			return VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
	}
	/* UDP covers the rest of the outer packet; the inner family is GUE's protocol. */
	if ((void *)udp + bpf_ntohs(udp->len) != l3 + ip_len || l3 + ip_len > end ||
	    (*inner >> 4) != (g->gue.proto == IPPROTO_IPV6 ? 6 : 4))
		return VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
	/* Strip: an Ethernet header (the outer one's MACs) right before the inner packet,
	 * which starts inner_off bytes into the frame. */
	inner_eth = (void *)(inner - sizeof(*inner_eth));
	if ((void *)(inner_eth + 1) > end)
		return VERDICT(XDP_DROP, FP_CNT_POP_DROP_INVALID);
	inner_off += sizeof(*eth) + tags * sizeof(struct fp_vlanhdr) + sizeof(struct udphdr) +
		     sizeof(*g) + (v6 ? 16 : 4);
	__builtin_memcpy(macs, eth, sizeof(macs));
	__builtin_memcpy(inner_eth, macs, sizeof(macs));
	inner_eth->h_proto = bpf_htons(g->gue.proto == IPPROTO_IPV6 ? ETH_P_IPV6 : ETH_P_IP);
	if (bpf_xdp_adjust_head(ctx, (int)(inner_off - sizeof(*eth))))
		return VERDICT(XDP_DROP, FP_CNT_DROP_ADJUST);
	return FP_POP_CROSS;
}

#endif
