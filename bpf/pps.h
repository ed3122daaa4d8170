/* SPDX-License-Identifier: MIT */
/*
 * Frames of the real-frame throughput benchmark (bench/bench_pps.c), shared by its
 * generator program (bpf/pps.bpf.c, which rewrites each live frame for the next flow)
 * and the benchmark itself (which builds the same frames to establish the flows first).
 *
 * A frame is 60 bytes (64 on a wire with the FCS): Ethernet, IPv4 without options,
 * UDP to port FP_PPS_DPORT without checksum (0: allowed for IPv4), 18 bytes of zeros.
 * Flow f (0 <= f < 2^24) comes from 198.18.0.0/15 (RFC 2544 benchmark addresses):
 * source address 198.18.0.0 + (f >> 12), source port 1024 + (f & 0xfff).
 */
#ifndef FLOWPIN_BPF_PPS_H
#define FLOWPIN_BPF_PPS_H

#include <linux/types.h>
#include <flowpin/compiler.h>

#define FP_PPS_FRAME_LEN 60
#define FP_PPS_L3_OFF	 14
#define FP_PPS_L4_OFF	 34
#define FP_PPS_DPORT	 443
#define FP_PPS_SRC_BASE	 0xc6120000U /* 198.18.0.0, host order */

/* The generator's state (bpf/pps.bpf.c `gen`): written by the benchmark between runs. */
struct gen_state {
	__u32 vip;   /* destination, network order */
	__u32 flows; /* 1 .. 2^24 */
	__u32 next;  /* flow of the next frame */
	__u32 pad;
	__u64 sent;
} __attribute__((aligned(64)));

/* The sink's counters (bpf/pps.bpf.c `sink`; one NAPI context at a time writes them:
 * plain increments). */
struct sink_state {
	__u64 frames;
	__u64 encap;   /* outer IPv4/UDP to encap_port, a backend, the generated packet inside */
	__u64 plain;   /* the frame as generated (the floor) */
	__u64 other;   /* any other IPv4 frame: a harness or program fault */
	__u64 foreign; /* not IPv4: the namespace's stack (not counted in frames) */
} __attribute__((aligned(64)));

/* Flow @f's source address and port, host order. */
FP_INLINE void fp_pps_flow(__u32 f, __u32 *saddr, __u16 *sport)
{
	*saddr = FP_PPS_SRC_BASE + (f >> 12);
	*sport = (__u16)(1024 + (f & 0xfff));
}

/* The IPv4 header checksum of the 20 bytes at @ip (its own field counted as zero). */
FP_INLINE __u16 fp_pps_ip_csum(const void *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#ifdef __bpf__
#pragma unroll
#endif
	for (int i = 0; i < 10; i++)
		if (i != 5)
			sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif
