/* SPDX-License-Identifier: MIT */
/*
 * Encapsulation in XDP: the wire format (flowpin/wire.h, docs/wire-format.md) put in
 * front of a packet. Two steps, each failing on its own, so the caller says what a
 * failure is (the LB program: drop_adjust):
 *
 *   fp_encap_make_room()  trims link-layer padding after the IP packet (it would end up
 *                         inside the tunnel) and swaps the packet's L2 header (with its
 *                         VLAN tags) for room for a new Ethernet header and the outer
 *                         headers;
 *   fp_encap_write()      writes them: Ethernet, outer IPv4 (DF, header checksum) or
 *                         IPv6, UDP (checksum 0), GUE with the private word, hop list.
 *
 * The outer family is that of the backends (the first hop's); the inner packet may be
 * of the other. What to send where, the next hop and the MTU are the caller's.
 * Include after parse.h (IP_DF) and csum.h (fp_csum_ipv4_header()).
 */
#ifndef FLOWPIN_BPF_ENCAP_H
#define FLOWPIN_BPF_ENCAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <flowpin/maps.h>
#include <flowpin/wire.h>

/*
 * The outer headers of one packet. The backends are entries of the LB's `backends` map
 * (flowpin/maps.h): their addresses (16 bytes, IPv4-mapped for IPv4) and hop[0]'s
 * resolved next hop (nh.dmac, nh.smac).
 */
struct fp_encap {
	const struct fp_backend_entry *hop[FP_MAX_HOPS]; /* hop[0]: the outer destination */
	__u8 hop_count;					 /* 1, or 2 with hop[1] set */
	__u8 v6;					 /* outer family */
	__u8 inner_v6;					 /* inner family: GUE's protocol */
	__u8 tos;					 /* copied from the inner header */
	__u16 sport;					 /* outer UDP ports, host order */
	__u16 dport;
	__be32 src4; /* outer source, by the outer family */
	const __u32 *src6;
	__u32 overhead;	  /* fp_encap_overhead(v6, hop_count) */
	__u32 inner_len;  /* the inner IP packet */
	__u32 generation; /* the table generation, into the private word */
	__u8 type;	  /* FP_PRIV_TYPE_HOPS, or FP_PRIV_TYPE_CROSS_SITE (one hop) */
};

/*
 * Makes room for a new Ethernet header and @overhead bytes of outer headers in front of
 * the IP packet at @l3_off (@ip_len bytes; anything after it is trimmed). Returns 0, or
 * -1 when the frame could not be adjusted (nothing to undo: the packet is dropped).
 */
static __always_inline int fp_encap_make_room(struct xdp_md *ctx, __u32 l3_off, __u32 ip_len,
					      __u32 overhead)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 frame_len = data_end - data, delta;

	if (frame_len > l3_off + ip_len &&
	    bpf_xdp_adjust_tail(ctx, -(int)(frame_len - l3_off - ip_len)))
		return -1;
	delta = sizeof(struct ethhdr) + overhead - l3_off;
	if (bpf_xdp_adjust_head(ctx, -(int)delta))
		return -1;
	return 0;
}

/* After fp_encap_make_room(): writes @e's headers. Returns 0, or -1 (frame too short). */
static __always_inline int fp_encap_write(struct xdp_md *ctx, const struct fp_encap *e)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct fp_gue_priv *priv;
	struct fp_guehdr *gue;
	struct udphdr *udp;

	/* Constant bound for the writes below: the largest overhead of this family. */
	if (data + sizeof(*eth) + fp_encap_overhead(e->v6, FP_MAX_HOPS) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, e->hop[0]->nh.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, e->hop[0]->nh.smac, ETH_ALEN);
	if (e->v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		eth->h_proto = bpf_htons(ETH_P_IPV6);
		*(__be32 *)ip6 = bpf_htonl(0x60000000 | (__u32)e->tos << 20);
		ip6->payload_len = bpf_htons(e->overhead - sizeof(*ip6) + e->inner_len);
		ip6->nexthdr = IPPROTO_UDP;
		ip6->hop_limit = 64;
		__builtin_memcpy(&ip6->saddr, e->src6, 16);
		__builtin_memcpy(&ip6->daddr, e->hop[0]->addr, 16);
		udp = (void *)(ip6 + 1);
	} else {
		struct iphdr *ip = (void *)(eth + 1);

		eth->h_proto = bpf_htons(ETH_P_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->tos = e->tos;
		ip->tot_len = bpf_htons(e->overhead + e->inner_len);
		ip->id = 0;
		ip->frag_off = bpf_htons(IP_DF);
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		ip->check = 0;
		ip->saddr = e->src4;
		__builtin_memcpy(&ip->daddr, e->hop[0]->addr + 12, 4);
		ip->check = fp_csum_ipv4_header(ip);
		udp = (void *)(ip + 1);
	}
	udp->source = bpf_htons(e->sport);
	udp->dest = bpf_htons(e->dport);
	udp->len = bpf_htons(e->overhead - (e->v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr)) +
			     e->inner_len);
	udp->check = 0;
	gue = (void *)(udp + 1);
	gue->hlen_ver = fp_gue_hlen(e->hop_count, e->v6);
	gue->proto = e->inner_v6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
	gue->flags = bpf_htons(FP_GUE_FLAG_PRIV);
	priv = (void *)(gue + 1);
	priv->type = e->type;
	priv->hop_index = 0;
	priv->hop_count = e->hop_count;
	priv->flags = e->v6 ? FP_PRIV_FLAG_V6 : 0;
	priv->generation = bpf_htonl(e->generation);
	if (e->v6) {
		__u8 *hops = (void *)(priv + 1);

		__builtin_memcpy(hops, e->hop[0]->addr, 16);
		if (e->hop[1] && e->hop_count == 2)
			__builtin_memcpy(hops + 16, e->hop[1]->addr, 16);
	} else {
		__u8 *hops = (void *)(priv + 1);

		__builtin_memcpy(hops, e->hop[0]->addr + 12, 4);
		if (e->hop[1] && e->hop_count == 2)
			__builtin_memcpy(hops + 4, e->hop[1]->addr + 12, 4);
	}
	return 0;
}

#endif
