// SPDX-License-Identifier: MIT
/*
 * Hostile input to the LB XDP program: truncation at every offset of every header,
 * impossible header fields, IPv6 extension chains past the bound, fragments, our own
 * encapsulation addressed to a VIP, and a spoofed SYN flood against established
 * sessions. Each packet must end as PASS or DROP with the right counter, or go to the
 * backend the flow hash names, never anywhere else.
 */
#include <time.h>
#include "test_lb_fixture.h"

#define TABLE 65537
static __u16 table[TABLE];
static struct t_config t;

/* VIPs: v4 TCP :80, v6 TCP :443, v4 UDP port 0 hashing on addresses, v6 likewise. */
static struct fp_lb *hostile_open(enum fp_pinning mode)
{
	struct fp_vip_cfg *v;

	t_config_init(&t, TABLE);
	v = t_add_vip(&t, "203.0.113.10", 80, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	t_add_backend(v, 3, "10.1.0.3");
	v = t_add_vip(&t, "2001:db8:100::10", 443, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "2001:db8:200::1");
	t_add_backend(v, 2, "2001:db8:200::2");
	v = t_add_vip(&t, "203.0.113.20", 0, IPPROTO_UDP, mode);
	v->hash_addresses_only = true;
	t_add_backend(v, 1, "10.2.0.1");
	t_add_backend(v, 2, "10.2.0.2");
	t_add_backend(v, 3, "10.2.0.3");
	v = t_add_vip(&t, "2001:db8:100::20", 0, IPPROTO_UDP, mode);
	v->hash_addresses_only = true;
	t_add_backend(v, 1, "10.2.1.1");
	t_add_backend(v, 2, "10.2.1.2");
	return t_open(&t);
}

static struct fp_pkt_spec to_vip(int vi, __u8 flags)
{
	struct fp_pkt_spec s = {};
	const struct fp_vip_cfg *v = &t.vips[vi];

	s.src = fp_pkt_addr(fp_addr_v4(&v->addr) ? "198.51.100.9" : "2001:db8:c::9");
	s.dst = v->addr;
	s.proto = v->proto;
	s.sport = 33333;
	s.dport = v->port ? v->port : 4433;
	s.tcp_flags = flags;
	s.payload_len = 40;
	return s;
}

/* Runs a frame; expects @verdict and exactly one more in counter @c. */
static void expect_verdict(struct fp_lb *lb, const __u8 *frame, size_t len, int verdict,
			   enum fp_counter c)
{
	__u64 before = t_counter(lb, c);
	int got = t_run(lb, frame, len, NULL, NULL);

	if (got != verdict || t_counter(lb, c) - before != 1)
		fail_msg("%zu-byte frame: verdict %d (want %d), %s +%llu (want +1)", len, got,
			 verdict, fp_counter_names[c],
			 (unsigned long long)(t_counter(lb, c) - before));
}

/* Every proper prefix of every frame is dropped as truncated, never forwarded. */
static void test_truncation_every_offset(void **state)
{
	__u8 frame[FP_PKT_MAX], quoted[FP_PKT_MAX];
	struct fp_lb *lb;
	struct fp_pkt_spec specs[8];
	int n_specs = 0;

	(void)state;
	T_NEED_ROOT();
	lb = hostile_open(FP_PIN_FULL);
	specs[n_specs] = to_vip(0, FP_TCP_ACK);
	specs[n_specs++].ip_options = 8;
	specs[n_specs] = to_vip(1, FP_TCP_SYN);
	specs[n_specs].n_hbh = 1;
	specs[n_specs++].n_dest = 2;
	specs[n_specs] = to_vip(2, 0);
	specs[n_specs].n_vlan = 2;
	specs[n_specs++].vlan_id[1] = 7;
	specs[n_specs++] = to_vip(3, 0);
	/* ICMP frag-needed quoting a reply of VIP 0's flow. */
	struct fp_pkt_spec reply = to_vip(0, FP_TCP_ACK);
	reply.src = t.vips[0].addr;
	reply.dst = fp_pkt_addr("198.51.100.9");
	reply.sport = 80;
	reply.dport = 33333;
	int qn = fp_pkt_build(&reply, quoted, sizeof(quoted));
	struct fp_pkt_spec icmp = {};
	icmp.src = fp_pkt_addr("192.0.2.77");
	icmp.dst = t.vips[0].addr;
	icmp.proto = IPPROTO_ICMP;
	icmp.icmp_type = 3;
	icmp.icmp_code = 4;
	icmp.payload = quoted + 14;
	icmp.payload_len = (size_t)qn - 14;
	specs[n_specs++] = icmp;

	for (int i = 0; i < n_specs; i++) {
		int n = fp_pkt_build(&specs[i], frame, sizeof(frame));

		assert_true(n > 0);
		/* The whole frame is forwarded... */
		assert_int_equal(t_run(lb, frame, (size_t)n, NULL, NULL), XDP_TX);
		/* ...every prefix of it (the test run needs 14 bytes at least) is not. */
		for (int len = 14; len < n; len++)
			expect_verdict(lb, frame, (size_t)len, XDP_DROP, FP_CNT_DROP_TRUNCATED);
	}
	t_close(lb);
}

/* Impossible lengths and fields: dropped as malformed (or truncated when they point
 * past the frame), never forwarded. */
static void test_bogus_fields(void **state)
{
	__u8 f[FP_PKT_MAX], g[FP_PKT_MAX];
	struct fp_lb *lb;
	int n;

	(void)state;
	T_NEED_ROOT();
	lb = hostile_open(FP_PIN_FULL);
	struct fp_pkt_spec v4 = to_vip(0, FP_TCP_ACK), v6 = to_vip(1, FP_TCP_ACK);
	struct fp_pkt_spec udp = to_vip(2, 0);

	n = fp_pkt_build(&v4, f, sizeof(f));
	for (int ihl = 0; ihl < 5; ihl++) { /* IHL below 5 */
		memcpy(g, f, (size_t)n);
		g[14] = (__u8)(0x40 | ihl);
		fp_pkt_ipv4_fix_csum(g + 14);
		expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_MALFORMED);
	}
	memcpy(g, f, (size_t)n);
	g[14] = 0x4f; /* IHL 15: a 60-byte header... */
	g[16] = 0;
	g[17] = 40; /* ...in a 40-byte packet */
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_MALFORMED);
	memcpy(g, f, (size_t)n);
	g[16] = 0xff; /* tot_len past the end of the frame */
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_TRUNCATED);
	memcpy(g, f, (size_t)n);
	g[14] = 0x65; /* EtherType IPv4, version 6 */
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_MALFORMED);
	memcpy(g, f, (size_t)n);
	g[14 + 20 + 12] = 0x40; /* TCP doff 4 */
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_MALFORMED);
	v4.payload_len = 10;
	n = fp_pkt_build(&v4, g, sizeof(g));
	g[14 + 20 + 12] = 0xf0; /* TCP doff 15: 60 bytes, the segment has 30 */
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_TRUNCATED);

	/* Lengths that end inside the L4 header, the rest of the frame being padding. */
	v4.payload_len = 40;
	n = fp_pkt_build(&v4, f, sizeof(f));
	memcpy(g, f, (size_t)n);
	g[16] = 0;
	g[17] = 20 + 10; /* tot_len: 10 bytes of a 20-byte TCP header */
	fp_pkt_ipv4_fix_csum(g + 14);
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_MALFORMED);
	n = fp_pkt_build(&v6, f, sizeof(f));
	memcpy(g, f, (size_t)n);
	g[14 + 4] = 0;
	g[14 + 5] = 10; /* payload length: 10 bytes of a 20-byte TCP header */
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_MALFORMED);

	n = fp_pkt_build(&udp, f, sizeof(f));
	memcpy(g, f, (size_t)n);
	g[14 + 20 + 4] = 0;
	g[14 + 20 + 5] = 7; /* UDP length 7 */
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_MALFORMED);

	n = fp_pkt_build(&v6, f, sizeof(f));
	memcpy(g, f, (size_t)n);
	g[14 + 4] = g[14 + 5] = 0; /* payload length 0: jumbogram, refused */
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_MALFORMED);
	memcpy(g, f, (size_t)n);
	g[14 + 4] = 0x7f; /* payload length past the frame */
	expect_verdict(lb, g, (size_t)n, XDP_DROP, FP_CNT_DROP_TRUNCATED);
	t_close(lb);
}

/* IPv6 extension headers: up to the bound forwarded, one more handed to the stack,
 * which must not route it back out: to a VIP address that is not local it is dropped. */
static void test_ipv6_extension_bound(void **state)
{
	struct fp_lb *lb;
	__u8 f[FP_PKT_MAX];

	(void)state;
	T_NEED_ROOT();
	lb = hostile_open(FP_PIN_HASH);
	struct fp_pkt_spec s = to_vip(1, FP_TCP_SYN);
	s.n_hbh = 2;
	s.n_dest = 3; /* five: the bound */
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
	s.n_dest = 4; /* six */
	int n = fp_pkt_build(&s, f, sizeof(f));
	expect_verdict(lb, f, (size_t)n, XDP_DROP, FP_CNT_DROP_VIP_UNSERVED);
	s.n_hbh = 0;
	s.n_dest = 30;
	n = fp_pkt_build(&s, f, sizeof(f));
	expect_verdict(lb, f, (size_t)n, XDP_DROP, FP_CNT_DROP_VIP_UNSERVED);
	s.dst = fp_pkt_addr("2001:db8::1"); /* the node's own address: the stack's */
	n = fp_pkt_build(&s, f, sizeof(f));
	expect_verdict(lb, f, (size_t)n, XDP_PASS, FP_CNT_PASS_TOO_DEEP);
	t_close(lb);
}

/*
 * Fragments: to a VIP hashing on ports they are not served, and dropped (the VIP is not
 * local: the loop rule); to a port-0 VIP hashing on addresses, every fragment of a
 * datagram goes to the backend the address hash names.
 */
static void test_fragments(void **state)
{
	__u8 f[FP_PKT_MAX], out[FP_PKT_MAX];
	struct fp_lb *lb;
	__u32 out_len;
	__u16 hops[2];
	int n;

	(void)state;
	T_NEED_ROOT();
	lb = hostile_open(FP_PIN_FULL);
	for (int vi = 0; vi < 2; vi++) { /* port VIPs, v4 and v6 */
		struct fp_pkt_spec s = to_vip(vi, FP_TCP_ACK);

		s.fragment = 1;
		s.more_fragments = 1;
		n = fp_pkt_build(&s, f, sizeof(f));
		expect_verdict(lb, f, (size_t)n, XDP_DROP, FP_CNT_DROP_VIP_UNSERVED);
		s.frag_offset = 1480;
		s.more_fragments = 0;
		n = fp_pkt_build(&s, f, sizeof(f));
		expect_verdict(lb, f, (size_t)n, XDP_DROP, FP_CNT_DROP_VIP_UNSERVED);
	}
	for (int vi = 2; vi < 4; vi++) { /* address-hashing VIPs */
		const struct fp_vip_cfg *v = &t.vips[vi];

		t_maglev(&t, v, table);
		for (__u16 sport = 1000; sport < 1100; sport++) {
			struct fp_pkt_spec s = to_vip(vi, 0);

			s.sport = sport;
			__u16 want = table[fp_hash_bucket(t_hash(&s, 1), TABLE)];
			/* Whole datagram, first fragment, later fragment: one backend. */
			assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
			assert_int_equal(t_hops_of(out, out_len, v, hops), 1);
			assert_int_equal(hops[0], want);
			s.fragment = 1;
			s.more_fragments = 1;
			__u64 hashed = t_counter(lb, FP_CNT_FRAGMENT_HASHED);
			assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
			assert_int_equal(t_hops_of(out, out_len, v, hops), 1);
			assert_int_equal(hops[0], want);
			s.frag_offset = 1480;
			s.more_fragments = 0;
			assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
			assert_int_equal(t_hops_of(out, out_len, v, hops), 1);
			assert_int_equal(hops[0], want);
			assert_int_equal(t_counter(lb, FP_CNT_FRAGMENT_HASHED) - hashed, 2);
		}
	}
	t_close(lb);
}

/* An LB's own output addressed to a VIP is never encapsulated again. */
static void test_gue_to_vip(void **state)
{
	__u8 inner[FP_PKT_MAX], f[FP_PKT_MAX];
	struct fp_encap_spec e = {};
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	lb = hostile_open(FP_PIN_FULL);
	for (int vi = 2; vi < 4; vi++) { /* the UDP port-0 VIPs take port 6080 too */
		struct fp_pkt_spec s = to_vip(0, FP_TCP_SYN);
		int n = fp_pkt_build(&s, inner, sizeof(inner));

		memcpy(e.dst_mac, t_ns.own_mac, 6); /* to this node (bpf/own_mac.h) */
		e.hop_count = 1;
		e.hops[0] = t.vips[vi].addr;
		e.outer_src = fp_pkt_addr(vi == 2 ? "192.0.2.5" : "2001:db8::5");
		e.encap_port = FP_DEFAULT_ENCAP_PORT;
		e.hash = 0x1234;
		e.generation = 1;
		int len = fp_pkt_encap(&e, inner + 14, (size_t)n - 14, f, sizeof(f));
		assert_true(len > 0);
		expect_verdict(lb, f, (size_t)len, XDP_DROP, FP_CNT_DROP_GUE_TO_VIP);
	}
	t_close(lb);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct count_ctx {
	__u32 found;
};

static int count_established(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	struct count_ctx *c = ctx;

	/* The established flows come from 198.51.100.0/24, the flood from 100.0.0.0/8. */
	if (key->src[12] == 198 && s->state == FP_SESS_TCP_EST)
		c->found++;
	return 0;
}

/* @n spoofed SYNs from distinct sources (100.0.0.0/8, distinct ports) to VIP 0. */
static double syn_flood(struct fp_lb *lb, __u32 n)
{
	struct fp_pkt_spec s = to_vip(0, FP_TCP_SYN);
	__u8 f[FP_PKT_MAX];
	int len;
	double t0 = now_s();

	s.src = fp_pkt_addr("100.64.0.1");
	s.payload_len = 0;
	len = fp_pkt_build(&s, f, sizeof(f));
	for (__u32 i = 0; i < n; i++) {
		/* Source address and port in place: checksums do not matter to the LB. */
		f[14 + 13] = (__u8)(1 + (i & 0x7f));
		f[14 + 14] = (__u8)(i >> 7);
		f[14 + 15] = (__u8)(i >> 15);
		f[14 + 20] = (__u8)(i >> 23);
		assert_int_equal(t_run(lb, f, (size_t)len, NULL, NULL), XDP_TX);
	}
	return now_s() - t0;
}

static void establish(struct fp_lb *lb, __u32 n)
{
	for (__u32 i = 0; i < n; i++) {
		struct fp_pkt_spec s = to_vip(0, FP_TCP_ACK);
		char a[32];

		snprintf(a, sizeof(a), "198.51.100.%u", 1 + i % 250);
		s.src = fp_pkt_addr(a);
		s.sport = (__u16)(20000 + i / 250);
		/* The first packet puts the flow in probation, the second promotes it. */
		assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
		assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
	}
}

/*
 * 1M spoofed SYNs into hash+table and into full: SYNs never create entries, so the
 * 2000 established entries all survive in a table far smaller than the flood.
 */
static void test_syn_flood_hash_modes(void **state)
{
	enum fp_pinning modes[2] = { FP_PIN_HASH_TABLE, FP_PIN_FULL };

	(void)state;
	T_NEED_ROOT();
	for (int m = 0; m < 2; m++) {
		struct fp_lb_opts opts = {};
		struct count_ctx c = { 0 };
		struct fp_lb *lb = hostile_open(modes[m]);

		/* Reopen with a small session table: an insert per SYN would evict. */
		t_close(lb);
		memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
		memcpy(opts.source_v4.a + 12, t_ns.own_v4, 4);
		opts.have_source_v4 = true;
		opts.session_entries = 16384;
		opts.new_flow_rate = UINT32_MAX;
		assert_int_equal(fp_lb_open(&t.cfg, &opts, &lb), 0);
		establish(lb, 2000);
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 2000);
		double secs = syn_flood(lb, 1000000);
		fprintf(stderr, "# %s: %s SYNs in %.2f s\n", fp_pinning_name(modes[m]), "1000000",
			secs);
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 2000);
		assert_int_equal(fp_lb_for_each_session(lb, count_established, &c), 0);
		assert_int_equal(c.found, 2000);
		/* And they still route by their entries. */
		__u64 hits = t_counter(lb, FP_CNT_SESSION_HIT);
		establish(lb, 2000);
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT) - hits, 4000);
		t_close(lb);
	}
}

/*
 * table mode must remember a SYN's backend: in probation (with the backend), not in the
 * session table, so a SYN flood churns probation only, with or without a rate limit,
 * and the established entries survive. (Before the admission policy, 2b22c18, every SYN
 * created an entry and an unlimited flood evicted established ones.)
 */
static void test_syn_flood_table_mode(void **state)
{
	(void)state;
	T_NEED_ROOT();
	for (int limited = 0; limited < 2; limited++) {
		struct fp_lb_opts opts = {};
		struct count_ctx c = { 0 };
		struct fp_lb *lb = hostile_open(FP_PIN_TABLE);

		t_close(lb);
		memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
		memcpy(opts.source_v4.a + 12, t_ns.own_v4, 4);
		opts.have_source_v4 = true;
		opts.session_entries = 65536;
		opts.new_flow_rate = limited ? 2000 : UINT32_MAX;
		assert_int_equal(fp_lb_open(&t.cfg, &opts, &lb), 0);
		establish(lb, 2000);
		__u64 marks = t_counter(lb, FP_CNT_PROBATION_INSERT);
		double secs = syn_flood(lb, 100000);
		__u64 inserts = t_counter(lb, FP_CNT_SESSION_INSERT) - 2000;
		assert_int_equal(fp_lb_for_each_session(lb, count_established, &c), 0);
		fprintf(stderr,
			"# table, rate %s: %llu inserts, %llu probation marks in %.2f s, %u of "
			"2000 "
			"kept\n",
			limited ? "2000/s" : "unlimited", (unsigned long long)inserts,
			(unsigned long long)(t_counter(lb, FP_CNT_PROBATION_INSERT) - marks), secs,
			c.found);
		assert_int_equal(inserts, 0);
		assert_int_equal(t_counter(lb, FP_CNT_PROBATION_INSERT) - marks, 100000);
		assert_int_equal(c.found, 2000);
		t_close(lb);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_truncation_every_offset),
		cmocka_unit_test(test_bogus_fields),
		cmocka_unit_test(test_ipv6_extension_bound),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_gue_to_vip),
		cmocka_unit_test(test_syn_flood_hash_modes),
		cmocka_unit_test(test_syn_flood_table_mode),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
