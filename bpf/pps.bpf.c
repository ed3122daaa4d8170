// SPDX-License-Identifier: MIT
/*
 * The three small programs of the real-frame throughput benchmark (bench/bench_pps.c):
 *
 * fp_pps_gen   the generator: run by BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES
 *              on the veth end facing the LB. Each run gets a live frame (the kernel
 *              recycles its pages as they come back, bytes unchanged), writes the next
 *              flow's source address, port and IPv4 checksum into it (bpf/pps.h) and
 *              returns XDP_TX, which the test run turns into a transmit on that veth:
 *              the frame arrives at the LB's end, in its native XDP.
 * fp_pps_sink  the peer's program: every frame the LB sends back (XDP_TX) ends here.
 *              It counts it, checks what it is (encapsulated to a backend with the
 *              original packet intact, or the frame as generated) and writes the
 *              generated Ethernet header back where it was: the LB's encapsulation
 *              wrote its outer headers over it, and the generator's next use of the
 *              page must find a whole frame. Drops everything.
 * fp_pps_tx    the floor: XDP_TX, nothing else, in the LB's place.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <flowpin/wire.h>
#include "pps.h"

/* Set through the skeleton before load (bench/bench_pps.c). */
const volatile __u8 orig_eth[ETH_HLEN] = {};
const volatile __u16 encap_port = FP_DEFAULT_ENCAP_PORT; /* host order */
const volatile __u32 backend_net = 0;			 /* host order, a /24 */
const volatile __u32 vip_lo = 0, vip_hi = 0;		 /* host order, inclusive */

struct gen_state gen;
struct sink_state sink;

SEC("xdp")
int fp_pps_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + FP_PPS_L3_OFF;
	struct udphdr *udp = data + FP_PPS_L4_OFF;
	__u32 f = gen.next, saddr;
	__u16 sport;

	if ((void *)(udp + 1) > data_end)
		return XDP_ABORTED;
	gen.next = f + 1 >= gen.flows ? 0 : f + 1;
	gen.sent++;
	fp_pps_flow(f, &saddr, &sport);
	ip->saddr = bpf_htonl(saddr);
	ip->daddr = gen.vip;
	ip->check = fp_pps_ip_csum(ip);
	udp->source = bpf_htons(sport);
	return XDP_TX;
}

/* Whether the frame's last FP_PPS_FRAME_LEN bytes, at @o, follow an encapsulation of
 * them to a backend. */
static __always_inline int encapsulated(void *data, void *o, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *outer = (void *)(eth + 1), *inner = o + FP_PPS_L3_OFF;
	struct udphdr *udp = (void *)(outer + 1);
	__u32 dst;

	if ((void *)(udp + 1) > data_end || (void *)(inner + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || outer->ihl != 5 ||
	    outer->protocol != IPPROTO_UDP || udp->dest != bpf_htons(encap_port))
		return 0;
	dst = bpf_ntohl(outer->daddr);
	if ((dst & 0xffffff00) != backend_net || (dst & 0xff) == 0)
		return 0;
	dst = bpf_ntohl(inner->daddr);
	return dst >= vip_lo && dst <= vip_hi && inner->protocol == IPPROTO_UDP;
}

SEC("xdp")
int fp_pps_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = (__u32)(data_end - data), off;
	__u8 *o;

	/* The namespace's own stack sends a few frames out of the LB's veth too (IPv6
	 * neighbour discovery, MLD): not the generator's, not counted. */
	if (data + ETH_HLEN > data_end || ((struct ethhdr *)data)->h_proto != bpf_htons(ETH_P_IP)) {
		sink.foreign++;
		return XDP_DROP;
	}
	sink.frames++;
	if (len < FP_PPS_FRAME_LEN || len > FP_PPS_FRAME_LEN + 256) {
		sink.other++;
		return XDP_DROP;
	}
	off = (len - FP_PPS_FRAME_LEN) & 0x1ff; /* bounded for the verifier: len <= 316 */
	o = data + off;
	if ((void *)(o + FP_PPS_FRAME_LEN) > data_end) {
		sink.other++;
		return XDP_DROP;
	}
	if (off == 0)
		sink.plain++;
	else if (encapsulated(data, o, data_end))
		sink.encap++;
	else
		sink.other++;
#pragma unroll
	for (int i = 0; i < ETH_HLEN; i++)
		o[i] = orig_eth[i];
	return XDP_DROP;
}

SEC("xdp")
int fp_pps_tx(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
