// SPDX-License-Identifier: MIT
/*
 * bpf/parse.h's TCP timestamp option parser, fp_tcp_timestamp(), run in the kernel on
 * crafted frames through bpf/parse_probe.bpf.c, in an XDP program and in a tc program
 * (the LB reads tickets in XDP, the backend writes them in tc), IPv4 and IPv6: every
 * layout a client or an attacker can send, with the exact offset of the value bytes
 * the parser must find, or none.
 *
 * Not root: every test skips, saying so. Root: the programs must load (the verifier
 * accepts the loop) or the group fails.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <flowpin/log.h>
#include "common/pkt.h"
#include "parse_probe.skel.h"

static struct parse_probe *probe;

/* A timestamp option with TSval 0x11223344, TSecr 0x55667788. */
#define TS  8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88
#define NOP 1
#define EOL 0

struct ts_case {
	const char *what;
	__u8 opts[40];
	__u8 len;  /* multiple of 4 */
	int at;	   /* index of the option's kind byte in opts, or -1: none found */
	__u8 doff; /* 0: 5 + len / 4; else written over the built header */
	int cut;   /* bytes removed from the end of the frame (IP length fixed up) */
	__u8 payload[40];
	__u8 payload_len;
};

static const struct ts_case cases[] = {
	{ "no options", {}, 0, -1 },
	{ "Linux's data segment: NOP NOP TS", { NOP, NOP, TS }, 12, 2 },
	{ "TS first, NOP padding after", { TS, NOP, NOP }, 12, 0 },
	{ "SYN layout: MSS, SACK-permitted, TS, NOP, window scale",
	  { 2, 4, 0x05, 0xb4, 4, 2, TS, NOP, 3, 3, 7 },
	  20,
	  6 },
	{ "one SACK block before TS",
	  { NOP, NOP, 5, 10, 1, 2, 3, 4, 5, 6, 7, 8, NOP, NOP, TS },
	  24,
	  14 },
	{ "three SACK blocks before TS: 40 option bytes",
	  { NOP, NOP, 5, 26, 1, 2, 3, 4, 5, 6, 7, 8, 1,	 2,   3,  4,
	    5,	 6,   7, 8,  1, 2, 3, 4, 5, 6, 7, 8, TS, NOP, NOP },
	  40,
	  28 },
	{ "30 NOPs then TS: the last 10 of 40 bytes",
	  { NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP,
	    NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, TS },
	  40,
	  30 },
	{ "40 NOPs", { [0 ... 39] = NOP }, 40, -1 },
	{ "odd-length unknown option before TS: the value unaligned",
	  { 0x22, 3, 0xaa, TS, NOP, NOP, NOP },
	  16,
	  3 },
	{ "two TS options: the first counts",
	  { TS, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef },
	  20,
	  0 },
	{ "EOL before TS", { EOL, EOL, TS }, 12, -1 },
	{ "NOP, EOL, then TS", { NOP, EOL, TS, NOP }, 12, -1 },
	{ "TS of length 8", { 8, 8, 1, 2, 3, 4, 5, 6, NOP, NOP, NOP, NOP }, 12, -1 },
	{ "TS of length 11", { 8, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9, NOP }, 12, -1 },
	{ "TS of length 255", { NOP, NOP, 8, 255, 1, 2, 3, 4, 5, 6, 7, 8 }, 12, -1 },
	{ "option of length 0 before TS (a loop that never advances)",
	  { 0x22, 0, NOP, NOP, TS },
	  16,
	  -1 },
	{ "option of length 1 before TS", { 0x22, 1, NOP, NOP, TS }, 16, -1 },
	{ "option covering the rest of the options hides what looks like a TS",
	  { 0x22, 12, NOP, NOP, TS },
	  12,
	  -1 },
	{ "option running past doff", { NOP, NOP, 0x22, 12, NOP, NOP, NOP, NOP, TS }, 12, -1 },
	{ "TS running past doff into the payload",
	  { NOP, NOP, NOP, NOP, NOP, NOP, NOP, NOP, 8, 10, 1, 2 },
	  12,
	  -1,
	  0,
	  0,
	  { 3, 4, 5, 6, 7, 8, 0, 0 },
	  8 },
	{ "kind without its length byte at the end of the options",
	  { NOP, NOP, NOP, 2 },
	  4,
	  -1,
	  0,
	  0,
	  { 4, 5, 0xb4, 0 },
	  4 },
	{ "TS in the payload, not in the options", {}, 0, -1, 0, 0, { NOP, NOP, TS }, 12 },
	{ "doff 4", { NOP, NOP, TS }, 12, -1, 4 },
	{ "doff 0", { NOP, NOP, TS }, 12, -1, 0x10 /* 0 written */ },
	{ "doff 15 past the end of the frame", { NOP, NOP, TS }, 12, -1, 15 },
	{ "doff 15, frame 2 bytes short of it",
	  { NOP, NOP, TS },
	  12,
	  -1,
	  15,
	  0,
	  { [0 ... 25] = NOP },
	  26 },
	{ "doff 15, frame exactly that long: TS found",
	  { NOP, NOP, TS },
	  12,
	  2,
	  15,
	  0,
	  { [0 ... 27] = NOP },
	  28 },
	{ "frame cut inside the TS value", { NOP, NOP, TS }, 12, -1, 0, 4 },
	{ "frame cut after the TS kind byte", { NOP, NOP, TS }, 12, -1, 0, 9 },
	{ "frame cut inside the TCP header", { NOP, NOP, TS }, 12, -1, 0, 20 },
};

/* The frame of @c, IPv4 or IPv6; returns its length. */
static int build(const struct ts_case *c, int v6, __u8 *buf)
{
	struct fp_pkt_spec s = {};
	size_t l3, l4;
	int n;

	s.src = fp_pkt_addr(v6 ? "2001:db8:c::7" : "198.51.100.7");
	s.dst = fp_pkt_addr(v6 ? "2001:db8:100::1" : "203.0.113.1");
	s.proto = IPPROTO_TCP;
	s.sport = 40000;
	s.dport = 80;
	s.tcp_options = c->opts;
	s.tcp_options_len = c->len;
	s.payload = c->payload;
	s.payload_len = c->payload_len;
	n = fp_pkt_build(&s, buf, FP_PKT_MAX);
	assert_true(n > 0);
	l3 = fp_pkt_l3_offset(&s);
	l4 = l3 + (v6 ? 40 : 20);
	if (c->doff)
		buf[l4 + 12] = (__u8)((c->doff & 0xf) << 4);
	if (c->cut) {
		n -= c->cut;
		if (v6) {
			buf[l3 + 4] = (__u8)((n - l4) >> 8);
			buf[l3 + 5] = (__u8)(n - l4);
		} else {
			buf[l3 + 2] = (__u8)((n - l3) >> 8);
			buf[l3 + 3] = (__u8)(n - l3);
			fp_pkt_ipv4_fix_csum(buf + l3);
		}
	}
	return n;
}

static int run(int prog_fd, const __u8 *frame, int len)
{
	static __u8 out[FP_PKT_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(prog_fd, &o), 0);
	return (int)o.retval;
}

static void test_timestamp_layouts(void **state)
{
	int progs[2];
	const char *hooks[2] = { "xdp", "tc" };

	(void)state;
	if (!probe)
		skip();
	progs[0] = bpf_program__fd(probe->progs.fp_probe_tcp_ts_xdp);
	progs[1] = bpf_program__fd(probe->progs.fp_probe_tcp_ts_tc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ts_case *c = &cases[i];
		int want = c->at < 0 ? 0 : 20 + c->at + 2;

		for (int v6 = 0; v6 < 2; v6++) {
			__u8 frame[FP_PKT_MAX];
			int len = build(c, v6, frame);

			for (int h = 0; h < 2; h++) {
				int got = run(progs[h], frame, len);

				if (got != want)
					fail_msg("%s (%s, IPv%d): value at TCP offset %d, expected "
						 "%d",
						 c->what, hooks[h], v6 ? 6 : 4, got, want);
			}
			/* The bytes found are the option's value, TSval then TSecr. */
			if (want) {
				size_t l4 = 14 + (v6 ? 40 : 20) + (size_t)want;

				assert_memory_equal(frame + l4 - 2, ((const __u8[]){ TS }), 10);
			}
		}
	}
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "# not root: every test of this program is skipped\n");
		return 0;
	}
	fp_log_route_libbpf();
	probe = parse_probe__open_and_load();
	return probe ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	parse_probe__destroy(probe);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timestamp_layouts),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
