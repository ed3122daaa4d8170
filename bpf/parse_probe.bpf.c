// SPDX-License-Identifier: MIT
/*
 * Test harness for the helpers of bpf/parse.h that the real programs reach only behind
 * other conditions (a VIP, a session miss): tests/bpf/test_parse.c runs these programs
 * with BPF_PROG_TEST_RUN on crafted frames. flowpin never loads them.
 *
 * fp_probe_tcp_ts_xdp / fp_probe_tcp_ts_tc: Ethernet / IPv4 or IPv6 / TCP; the result
 * is the offset of the timestamp option's value bytes from the start of the TCP header
 * (fp_tcp_timestamp()), 0 when it returns NULL, 1 when the frame is not TCP over IP.
 * The same parser in both hooks: the backend's tc programs and the LB's XDP program.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "parse.h"

static __always_inline int probe_tcp_ts(void *data, void *data_end)
{
	struct fp_cursor c;
	struct ethhdr *eth;
	struct fp_frag6hdr *frag;
	struct ipv6hdr *ip6;
	struct iphdr *ip;
	__be16 proto;
	__u32 tags;
	__u8 l4 = 0, *ts;
	struct tcphdr *th;
	__u32 off;

	fp_cursor_init(&c, data, data_end);
	if (fp_parse_eth(&c, &eth, &proto, &tags))
		return 1;
	if (proto == bpf_htons(ETH_P_IP)) {
		if (fp_parse_ipv4(&c, &ip))
			return 1;
		l4 = ip->protocol;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (fp_parse_ipv6(&c, &ip6, &l4, &frag))
			return 1;
	}
	if (l4 != IPPROTO_TCP)
		return 1;
	/*
	 * As the LB does: the header found again from its offset, so every parse path
	 * meets the parser in one verifier state. Not fp_parse_tcp(): the harness hands
	 * the parser bad doff values too.
	 */
	off = (c.pos - data) & 0x3ff;
	th = data + off;
	ts = fp_tcp_timestamp(th, data_end);
	return ts ? (int)(ts - (__u8 *)th) : 0;
}

SEC("xdp")
int fp_probe_tcp_ts_xdp(struct xdp_md *ctx)
{
	return probe_tcp_ts((void *)(long)ctx->data, (void *)(long)ctx->data_end);
}

SEC("tc")
int fp_probe_tcp_ts_tc(struct __sk_buff *skb)
{
	return probe_tcp_ts((void *)(long)skb->data, (void *)(long)skb->data_end);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
