// SPDX-License-Identifier: MIT
/*
 * The smallest XDP program: returns XDP_PASS and touches nothing. bench/bench_xdp.c
 * measures it with BPF_PROG_TEST_RUN exactly like the real programs and subtracts its
 * time, so the figures it reports are the programs' own cost, not the syscall's,
 * the packet copy's or the test harness's.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int fp_empty(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
