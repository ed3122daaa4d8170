// SPDX-License-Identifier: MIT
/*
 * The benchmark floor: the least an encapsulating XDP load balancer can do per packet.
 * Parses Ethernet, IPv4 (with options) or IPv6, and the TCP/UDP ports; prepends the
 * flowpin wire format (flowpin/wire.h: outer IP of the packet's family, UDP, GUE,
 * private word, one hop) addressed to one fixed backend; returns XDP_TX.
 * No VIP lookup, no hash, no session table, no counters: bench/bench_xdp.c reports the
 * real program's cost as a multiple of this one.
 *
 * Two switches let the benchmark show what the real program's mandatory steps cost on
 * their own: fib_lookup takes the next-hop MAC from bpf_fib_lookup() as the real
 * program does, flow_hash derives the outer source port from the keyed flow hash
 * (SipHash-1-3 over the flow key, flowpin/hash.h) instead of a port xor.
 * A third, own_mac_check, runs the LB's own-MAC rule first (bpf/own_mac.h: a unicast
 * frame to another MAC is passed), so the benchmark shows what that check costs alone.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <flowpin/compiler.h>
#include <flowpin/flow.h>
#include <flowpin/hash.h>
#include <flowpin/wire.h>
#include "own_mac.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* Set through the skeleton before load (bench/bench_xdp.c). */
const volatile __be32 backend_v4 = 0;
const volatile __be32 source_v4 = 0;
/* Words, not bytes: each is read once through volatile, never folded to its initializer. */
const volatile __u32 backend_v6[4] = {};
const volatile __u32 source_v6[4] = {};
const volatile __u8 next_hop_mac[ETH_ALEN] = {};
const volatile __u8 own_mac[ETH_ALEN] = {};

/* Copies of the settings read through volatile: a cast that drops volatile from a const
 * global lets clang fold it to its zero initializer. */
FP_INLINE void load_v6(__u32 out[4], const volatile __u32 in[4])
{
	out[0] = in[0];
	out[1] = in[1];
	out[2] = in[2];
	out[3] = in[3];
}
const volatile __u16 encap_port = FP_DEFAULT_ENCAP_PORT; /* host order */
const volatile __u8 fib_lookup = 0;
const volatile __u8 flow_hash = 0;
const volatile __u8 own_mac_check = 0;
const volatile __u64 hash_k0 = 0;
const volatile __u64 hash_k1 = 0;

struct l4_ports {
	__be16 source;
	__be16 dest;
};

FP_INLINE __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

FP_INLINE __u16 ipv4_header_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		sum += w[i];
	return csum_fold(sum);
}

SEC("xdp")
int fp_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct l4_ports *ports;
	__u32 inner_len, overhead, src6[4], dst6[4];
	__be32 src4 = source_v4, dst4 = backend_v4;
	struct fp_flow_key flow = {};
	__u8 l4proto;
	int v6;

	if (own_mac_check && fp_frame_mac(ctx) == FP_MAC_OTHER)
		return XDP_PASS;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return XDP_PASS;
		l4proto = ip->protocol;
		ports = (void *)ip + ip->ihl * 4;
		fp_addr_from_v4(flow.src, ip->saddr);
		fp_addr_from_v4(flow.dst, ip->daddr);
		inner_len = bpf_ntohs(ip->tot_len);
		v6 = 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		l4proto = ip6->nexthdr;
		ports = (void *)(ip6 + 1);
		__builtin_memcpy(flow.src, &ip6->saddr, 16);
		__builtin_memcpy(flow.dst, &ip6->daddr, 16);
		inner_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
		v6 = 1;
	} else {
		return XDP_PASS;
	}
	if (l4proto != IPPROTO_TCP && l4proto != IPPROTO_UDP)
		return XDP_PASS;
	if ((void *)(ports + 1) > data_end)
		return XDP_PASS;
	/* Something per flow for the outer source port, as the real program has. */
	__u16 outer_sport = 0x8000 | ((ports->source ^ ports->dest) & 0x7fff);
	if (flow_hash) {
		struct fp_hash_key key = { hash_k0, hash_k1 };

		flow.sport = ports->source;
		flow.dport = ports->dest;
		flow.proto = l4proto;
		outer_sport = fp_hash_sport(fp_flow_hash(&key, &flow));
	}

	overhead = fp_encap_overhead(v6, 1);
	if (bpf_xdp_adjust_head(ctx, -(int)overhead))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;

	struct udphdr *udp;
	if (!v6) {
		struct iphdr *outer = (void *)(eth + 1);

		if ((void *)(outer + 1) > data_end)
			return XDP_DROP;
		outer->version = 4;
		outer->ihl = 5;
		outer->tos = 0;
		outer->tot_len = bpf_htons(inner_len + overhead);
		outer->id = 0;
		outer->frag_off = bpf_htons(0x4000); /* DF */
		outer->ttl = 64;
		outer->protocol = IPPROTO_UDP;
		outer->check = 0;
		outer->saddr = src4;
		outer->daddr = dst4;
		outer->check = ipv4_header_csum(outer);
		eth->h_proto = bpf_htons(ETH_P_IP);
		udp = (void *)(outer + 1);
	} else {
		struct ipv6hdr *outer = (void *)(eth + 1);

		if ((void *)(outer + 1) > data_end)
			return XDP_DROP;
		*(__be32 *)outer = bpf_htonl(0x60000000);
		outer->payload_len = bpf_htons(inner_len + overhead - sizeof(*outer));
		outer->nexthdr = IPPROTO_UDP;
		outer->hop_limit = 64;
		load_v6(src6, source_v6);
		load_v6(dst6, backend_v6);
		__builtin_memcpy(&outer->saddr, src6, 16);
		__builtin_memcpy(&outer->daddr, dst6, 16);
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		udp = (void *)(outer + 1);
	}

	struct fp_guehdr *gue = (void *)(udp + 1);
	struct fp_gue_priv *priv = (void *)(gue + 1);
	__u8 *hop = (void *)(priv + 1);

	if ((void *)hop + 16 > data_end)
		return XDP_DROP;
	udp->source = bpf_htons(outer_sport);
	udp->dest = bpf_htons(encap_port);
	udp->len = bpf_htons(inner_len + overhead - (v6 ? 40 : 20));
	udp->check = 0;
	gue->hlen_ver = fp_gue_hlen(1, v6);
	gue->proto = v6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
	gue->flags = bpf_htons(FP_GUE_FLAG_PRIV);
	priv->type = FP_PRIV_TYPE_HOPS;
	priv->hop_index = 0;
	priv->hop_count = 1;
	priv->flags = v6 ? FP_PRIV_FLAG_V6 : 0;
	priv->generation = bpf_htonl(1);
	if (v6)
		__builtin_memcpy(hop, dst6, 16);
	else
		__builtin_memcpy(hop, &dst4, 4);

	if (fib_lookup) {
		struct bpf_fib_lookup fib = {};

		fib.ifindex = ctx->ingress_ifindex;
		if (v6) {
			fib.family = AF_INET6;
			__builtin_memcpy(fib.ipv6_src, src6, 16);
			__builtin_memcpy(fib.ipv6_dst, dst6, 16);
		} else {
			fib.family = AF_INET;
			fib.ipv4_src = src4;
			fib.ipv4_dst = dst4;
		}
		fib.l4_protocol = IPPROTO_UDP;
		fib.tot_len = inner_len + overhead;
		if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
			return XDP_DROP;
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	} else {
#pragma unroll
		for (int i = 0; i < ETH_ALEN; i++) {
			eth->h_dest[i] = next_hop_mac[i];
			eth->h_source[i] = own_mac[i];
		}
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
