// SPDX-License-Identifier: MIT
/*
 * Packets the LB must refuse or leave alone, as a table of cases (docs/security.md):
 * what the packet is, the frame, the verdict and the counter
 * that must move by exactly one, and for forwarded packets the exact bytes sent.
 *
 *  - item 1: nothing addressed to a VIP address leaves the node except encapsulated:
 *    what is not served is dropped, unless the address is local to the node (here
 *    203.0.113.30 and 2001:db8:100::30, put on lo of the test's namespace);
 *  - item 5: ICMP errors are routed by their quoted flow only when the quoted packet
 *    came from the ICMP packet's own destination (the VIP);
 *  - item 6: IPv6 packets from or to an IPv4-mapped address are dropped, never served
 *    as the IPv4 VIP;
 *  - item 7: TTL / hop limit 0 is dropped; any other TTL is forwarded untouched.
 */
#include "test_lb_fixture.h"

#define TABLE 251

enum patch {
	PATCH_NONE,
	PATCH_TTL_ZERO,	  /* IPv4 TTL / IPv6 hop limit set to 0 after building */
	PATCH_SRC_MAPPED, /* IPv6 source replaced by ::ffff:198.51.100.9 */
	PATCH_DST_MAPPED, /* IPv6 destination replaced by ::ffff:203.0.113.10 (VIP 0) */
	PATCH_BOTH_MAPPED,
};

struct quote {
	const char *src, *dst; /* the quoted packet (NULL: not an ICMP error) */
	__u16 sport, dport;
};

struct safety_case {
	const char *what;
	const char *src, *dst;
	__u8 proto;
	__u16 dport;
	__u8 tcp_flags;
	__u8 ttl;
	__u8 icmp_type, icmp_code;
	struct quote q;
	int fragment, more_fragments;
	__u16 frag_offset;
	__u8 n_dest; /* IPv6 destination-options headers */
	enum patch patch;
	int verdict;
	enum fp_counter counter;
	int exact; /* XDP_TX: compare with the expected frame for VIP @vip, backend by hash */
	int vip;
};

#define V4_CLIENT "198.51.100.9"
#define V6_CLIENT "2001:db8:c::9"
#define V4_VIP	  "203.0.113.10"     /* TCP :80 */
#define V6_VIP	  "2001:db8:100::10" /* TCP :443 */
#define V4_OTHER  "203.0.113.20"     /* TCP :443, another VIP */
#define V4_LOCAL  "203.0.113.30"     /* TCP :80, and the address is on the node's lo */
#define V6_LOCAL  "2001:db8:100::30"

#define FRAG_NEEDED(to, quoted_vip)                                                              \
	.src = "192.0.2.77", .dst = (to), .proto = IPPROTO_ICMP, .icmp_type = 3, .icmp_code = 4, \
	.q = { (quoted_vip), V4_CLIENT, 80, 33333 }
#define TOO_BIG(to, quoted_vip)                                                       \
	.src = "2001:db8:e::1", .dst = (to), .proto = IPPROTO_ICMPV6, .icmp_type = 2, \
	.q = { (quoted_vip), V6_CLIENT, 443, 33333 }
#define TCP(from, to, port, flags) \
	.src = (from), .dst = (to), .proto = IPPROTO_TCP, .dport = (port), .tcp_flags = (flags)

static const struct safety_case cases[] = {
	/* item 1: addressed to a VIP address, not served, VIP not local */
	{ "ICMP echo request to a VIP", .src = V4_CLIENT, .dst = V4_VIP, .proto = IPPROTO_ICMP,
	  .icmp_type = 8, .verdict = XDP_DROP, .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "ICMPv6 echo request to a VIP", .src = V6_CLIENT, .dst = V6_VIP, .proto = IPPROTO_ICMPV6,
	  .icmp_type = 128, .verdict = XDP_DROP, .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "TCP to another port of a VIP address", TCP(V4_CLIENT, V4_VIP, 22, FP_TCP_SYN),
	  .verdict = XDP_DROP, .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "UDP to a TCP VIP's address", .src = V4_CLIENT, .dst = V4_VIP, .proto = IPPROTO_UDP,
	  .dport = 80, .verdict = XDP_DROP, .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "IPv6 UDP to a TCP VIP's address", .src = V6_CLIENT, .dst = V6_VIP, .proto = IPPROTO_UDP,
	  .dport = 443, .verdict = XDP_DROP, .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "GRE to a VIP address", .src = V4_CLIENT, .dst = V4_VIP, .proto = 47, .verdict = XDP_DROP,
	  .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "first fragment to a port VIP", TCP(V4_CLIENT, V4_VIP, 80, FP_TCP_ACK), .fragment = 1,
	  .more_fragments = 1, .verdict = XDP_DROP, .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "non-first fragment to a port VIP", TCP(V4_CLIENT, V4_VIP, 80, FP_TCP_ACK), .fragment = 1,
	  .frag_offset = 1480, .verdict = XDP_DROP, .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "IPv6 non-first fragment to a port VIP", TCP(V6_CLIENT, V6_VIP, 443, FP_TCP_ACK),
	  .fragment = 1, .frag_offset = 1448, .verdict = XDP_DROP,
	  .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "IPv6 with more extension headers than walked, to a VIP",
	  TCP(V6_CLIENT, V6_VIP, 443, FP_TCP_SYN), .n_dest = 6, .verdict = XDP_DROP,
	  .counter = FP_CNT_DROP_VIP_UNSERVED },
	{ "frag-needed to one VIP quoting another VIP's flow", FRAG_NEEDED(V4_OTHER, V4_VIP),
	  .verdict = XDP_DROP, .counter = FP_CNT_DROP_VIP_UNSERVED },
	/* item 1: what the stack keeps */
	{ "ICMP echo request to a non-VIP address", .src = V4_CLIENT, .dst = "192.0.2.1",
	  .proto = IPPROTO_ICMP, .icmp_type = 8, .verdict = XDP_PASS, .counter = FP_CNT_PASS_ICMP },
	{ "TCP to the node's own address", TCP(V4_CLIENT, "192.0.2.1", 22, FP_TCP_SYN),
	  .verdict = XDP_PASS, .counter = FP_CNT_PASS_NOT_VIP },
	{ "TCP to a transit address", TCP(V4_CLIENT, "198.18.0.1", 80, FP_TCP_SYN),
	  .verdict = XDP_PASS, .counter = FP_CNT_PASS_NOT_VIP },
	{ "ICMP echo request to a local VIP", .src = V4_CLIENT, .dst = V4_LOCAL,
	  .proto = IPPROTO_ICMP, .icmp_type = 8, .verdict = XDP_PASS, .counter = FP_CNT_PASS_ICMP },
	{ "ICMPv6 echo request to a local VIP", .src = V6_CLIENT, .dst = V6_LOCAL,
	  .proto = IPPROTO_ICMPV6, .icmp_type = 128, .verdict = XDP_PASS,
	  .counter = FP_CNT_PASS_ICMP },
	{ "TCP to another port of a local VIP", TCP(V4_CLIENT, V4_LOCAL, 22, FP_TCP_SYN),
	  .verdict = XDP_PASS, .counter = FP_CNT_PASS_NOT_VIP },
	{ "fragment to a local port VIP", TCP(V4_CLIENT, V4_LOCAL, 80, FP_TCP_ACK), .fragment = 1,
	  .frag_offset = 8, .verdict = XDP_PASS, .counter = FP_CNT_PASS_FRAGMENT },
	{ "TCP to the served port of a local VIP", TCP(V4_CLIENT, V4_LOCAL, 80, FP_TCP_SYN),
	  .verdict = XDP_TX, .counter = FP_CNT_TX },
	/* item 5 */
	{ "frag-needed to the VIP it quotes (control)", FRAG_NEEDED(V4_VIP, V4_VIP),
	  .verdict = XDP_TX, .counter = FP_CNT_ICMP_ROUTED },
	{ "frag-needed to a non-VIP address quoting a VIP flow", FRAG_NEEDED("192.0.2.1", V4_VIP),
	  .verdict = XDP_PASS, .counter = FP_CNT_PASS_ICMP },
	{ "frag-needed to a client address quoting a VIP flow",
	  FRAG_NEEDED("198.51.100.50", V4_VIP), .verdict = XDP_PASS, .counter = FP_CNT_PASS_ICMP },
	{ "packet-too-big to the VIP it quotes (control)", TOO_BIG(V6_VIP, V6_VIP),
	  .verdict = XDP_TX, .counter = FP_CNT_ICMP_ROUTED },
	{ "packet-too-big to a non-VIP address quoting a VIP flow", TOO_BIG("2001:db8::1", V6_VIP),
	  .verdict = XDP_PASS, .counter = FP_CNT_PASS_ICMP },
	/* item 6 */
	{ "IPv6 TCP to ::ffff:<IPv4 VIP>", TCP(V6_CLIENT, "2001:db8:100::99", 80, FP_TCP_ACK),
	  .patch = PATCH_DST_MAPPED, .verdict = XDP_DROP, .counter = FP_CNT_DROP_V4_MAPPED },
	{ "IPv6 TCP SYN to ::ffff:<IPv4 VIP>", TCP(V6_CLIENT, "2001:db8:100::99", 80, FP_TCP_SYN),
	  .patch = PATCH_DST_MAPPED, .verdict = XDP_DROP, .counter = FP_CNT_DROP_V4_MAPPED },
	{ "IPv6 TCP from ::ffff:<IPv4> to the IPv6 VIP", TCP(V6_CLIENT, V6_VIP, 443, FP_TCP_ACK),
	  .patch = PATCH_SRC_MAPPED, .verdict = XDP_DROP, .counter = FP_CNT_DROP_V4_MAPPED },
	{ "IPv6 TCP from ::ffff:<IPv4> to ::ffff:<IPv4 VIP>",
	  TCP(V6_CLIENT, "2001:db8:100::99", 80, FP_TCP_ACK), .patch = PATCH_BOTH_MAPPED,
	  .verdict = XDP_DROP, .counter = FP_CNT_DROP_V4_MAPPED },
	/* item 7 */
	{ "IPv4 TTL 1: forwarded, inner TTL untouched", TCP(V4_CLIENT, V4_VIP, 80, FP_TCP_ACK),
	  .ttl = 1, .verdict = XDP_TX, .counter = FP_CNT_TX, .exact = 1, .vip = 0 },
	{ "IPv4 TTL 255: forwarded untouched", TCP(V4_CLIENT, V4_VIP, 80, FP_TCP_SYN), .ttl = 255,
	  .verdict = XDP_TX, .counter = FP_CNT_TX, .exact = 1, .vip = 0 },
	{ "IPv4 TTL 0", TCP(V4_CLIENT, V4_VIP, 80, FP_TCP_ACK), .patch = PATCH_TTL_ZERO,
	  .verdict = XDP_DROP, .counter = FP_CNT_DROP_TTL_ZERO },
	{ "IPv6 hop limit 1: forwarded untouched", TCP(V6_CLIENT, V6_VIP, 443, FP_TCP_ACK),
	  .ttl = 1, .verdict = XDP_TX, .counter = FP_CNT_TX, .exact = 1, .vip = 1 },
	{ "IPv6 hop limit 0", TCP(V6_CLIENT, V6_VIP, 443, FP_TCP_ACK), .patch = PATCH_TTL_ZERO,
	  .verdict = XDP_DROP, .counter = FP_CNT_DROP_TTL_ZERO },
	{ "frag-needed with outer TTL 0", FRAG_NEEDED(V4_VIP, V4_VIP), .patch = PATCH_TTL_ZERO,
	  .verdict = XDP_DROP, .counter = FP_CNT_DROP_TTL_ZERO },
};

static struct t_config t;

static struct fp_lb *open_lb(enum fp_pinning mode)
{
	struct fp_vip_cfg *v;

	t_config_init(&t, TABLE);
	v = t_add_vip(&t, V4_VIP, 80, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	v = t_add_vip(&t, V6_VIP, 443, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "2001:db8:200::1");
	t_add_backend(v, 2, "2001:db8:200::2");
	v = t_add_vip(&t, V4_OTHER, 443, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.1.0.1");
	v = t_add_vip(&t, V4_LOCAL, 80, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.1.0.1");
	v = t_add_vip(&t, V6_LOCAL, 443, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "2001:db8:200::1");
	return t_open(&t);
}

static struct fp_pkt_spec spec_of(const struct safety_case *c, __u8 *quoted)
{
	struct fp_pkt_spec s = {};

	s.src = fp_pkt_addr(c->src);
	s.dst = fp_pkt_addr(c->dst);
	s.proto = c->proto;
	s.sport = 33333;
	s.dport = c->dport;
	s.tcp_flags = c->tcp_flags;
	s.ttl = c->ttl;
	s.icmp_type = c->icmp_type;
	s.fragment = c->fragment;
	s.more_fragments = c->more_fragments;
	s.frag_offset = c->frag_offset;
	s.n_dest = c->n_dest;
	s.payload_len = 40;
	if (c->q.src) {
		struct fp_pkt_spec r = {};

		r.src = fp_pkt_addr(c->q.src);
		r.dst = fp_pkt_addr(c->q.dst);
		r.proto = IPPROTO_TCP;
		r.sport = c->q.sport;
		r.dport = c->q.dport;
		r.tcp_flags = FP_TCP_ACK;
		r.payload_len = 100;
		int n = fp_pkt_build(&r, quoted, FP_PKT_MAX);
		assert_true(n > 14);
		s.icmp_type = c->icmp_type;
		s.icmp_code = c->icmp_code;
		s.icmp_rest = 1400;
		s.payload = quoted + 14;
		s.payload_len = (size_t)n - 14;
	}
	return s;
}

static int build(const struct safety_case *c, const struct fp_pkt_spec *s, __u8 *f)
{
	int n = fp_pkt_build(s, f, FP_PKT_MAX);
	size_t l3 = fp_pkt_l3_offset(s);
	int v6 = !fp_addr_v4(&s->src);

	assert_true(n > 0);
	switch (c->patch) {
	case PATCH_TTL_ZERO:
		if (v6) {
			f[l3 + 7] = 0;
		} else {
			f[l3 + 8] = 0;
			fp_pkt_ipv4_fix_csum(f + l3);
		}
		break;
	case PATCH_SRC_MAPPED:
	case PATCH_BOTH_MAPPED:
	case PATCH_DST_MAPPED:
		if (c->patch != PATCH_DST_MAPPED)
			memcpy(f + l3 + 8, fp_pkt_addr(V4_CLIENT).a, 16);
		if (c->patch != PATCH_SRC_MAPPED)
			memcpy(f + l3 + 24, fp_pkt_addr(V4_VIP).a, 16);
		break;
	case PATCH_NONE:
		break;
	}
	return n;
}

static void run_cases(enum fp_pinning mode)
{
	static __u8 f[FP_PKT_MAX], out[FP_PKT_MAX], want[FP_PKT_MAX], quoted[FP_PKT_MAX];
	struct fp_lb *lb = open_lb(mode);
	int failures = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct safety_case *c = &cases[i];
		struct fp_pkt_spec s = spec_of(c, quoted);
		int n = build(c, &s, f);
		__u64 before = t_counter(lb, c->counter);
		__u32 out_len;
		int got = t_run(lb, f, (size_t)n, out, &out_len);
		__u64 moved = t_counter(lb, c->counter) - before;

		if (got != c->verdict || moved != 1) {
			fprintf(stderr, "# %s: %s: verdict %d (want %d), %s +%llu (want +1)\n",
				fp_pinning_name(mode), c->what, got, c->verdict,
				fp_counter_names[c->counter], (unsigned long long)moved);
			failures++;
			continue;
		}
		if (c->exact) {
			const struct fp_vip_cfg *v = &t.vips[c->vip];
			__u16 table[TABLE], hop;
			int len;

			t_maglev(&t, v, table);
			hop = table[fp_hash_bucket(t_hash(&s, 0), TABLE)];
			len = t_expect(&s, v, &hop, 1, 1, want);
			if ((__u32)len != out_len || memcmp(out, want, out_len)) {
				fprintf(stderr,
					"# %s: %s: output differs from the expected frame\n",
					fp_pinning_name(mode), c->what);
				failures++;
			}
		}
	}
	fp_lb_close(lb);
	if (failures)
		fail_msg("%d case(s) failed", failures);
}

static void test_cases_hash(void **state)
{
	(void)state;
	T_NEED_ROOT();
	run_cases(FP_PIN_HASH);
}

static void test_cases_full(void **state)
{
	(void)state;
	T_NEED_ROOT();
	run_cases(FP_PIN_FULL);
}

/*
 * The VIP addresses follow the config: a VIP removed by an apply is an ordinary address
 * again (its packets go to the stack), one added is guarded at once.
 */
static void test_vip_addresses_follow_apply(void **state)
{
	static __u8 f[FP_PKT_MAX], quoted[FP_PKT_MAX];
	const struct safety_case echo = { "echo", .src = V4_CLIENT, .dst = V4_OTHER,
					  .proto = IPPROTO_ICMP, .icmp_type = 8 };
	struct fp_pkt_spec s = spec_of(&echo, quoted);
	int n = build(&echo, &s, f);
	struct fp_lb *lb;
	__u32 gen;

	(void)state;
	T_NEED_ROOT();
	lb = open_lb(FP_PIN_FULL);
	__u64 dropped = t_counter(lb, FP_CNT_DROP_VIP_UNSERVED);
	assert_int_equal(t_run(lb, f, (size_t)n, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_VIP_UNSERVED) - dropped, 1);
	t.vips[2].addr = fp_pkt_addr("203.0.113.21"); /* V4_OTHER out, another VIP in */
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	__u64 passed = t_counter(lb, FP_CNT_PASS_ICMP);
	assert_int_equal(t_run(lb, f, (size_t)n, NULL, NULL), XDP_PASS);
	assert_int_equal(t_counter(lb, FP_CNT_PASS_ICMP) - passed, 1);
	t.vips[2].addr = fp_pkt_addr(V4_OTHER);
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	assert_int_equal(t_run(lb, f, (size_t)n, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_VIP_UNSERVED) - dropped, 2);
	fp_lb_close(lb);
}

/* The fixture's namespace, plus the "local" VIP addresses on its lo. */
static int setup(void **state)
{
	int err = t_group_setup(state);

	if (err || !t_root)
		return err;
	if (system("ip addr add " V4_LOCAL "/32 dev lo && "
		   "ip -6 addr add " V6_LOCAL "/128 dev lo nodad"))
		return -1;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases_hash),
		cmocka_unit_test(test_cases_full),
		cmocka_unit_test(test_vip_addresses_follow_apply),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
