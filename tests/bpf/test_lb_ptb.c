// SPDX-License-Identifier: MIT
/*
 * Packets that do not fit the route to their backend once encapsulated:
 * no session entry is made for them, and the client gets ICMP "fragmentation needed"
 * (IPv4, DF set) or ICMPv6 "packet too big" back from the VIP, built in place and sent
 * out the ingress (XDP_TX), rate-limited per CPU. Exact reply bytes are built here,
 * independently of the BPF code (tests/common/pkt.c checksum helpers).
 */
#include <time.h>
#include "test_lb_fixture.h"

/* fp-test0's MTU is 1500 (flowpin/fibns.h); the locked route below is 1400. */
#define T_DEV_MTU 1500

static struct fp_pkt_spec client_to(const struct fp_vip_cfg *v, __u16 sport, __u8 flags,
				    size_t payload)
{
	struct fp_pkt_spec s = t_client_spec(v, sport, flags, payload);

	s.seq = 0x01020304;
	s.ack = 0x0a0b0c0d;
	return s;
}

struct count_ctx {
	int n;
};

static int count_session(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	(void)key;
	(void)s;
	((struct count_ctx *)ctx)->n++;
	return 0;
}

static int t_sessions(struct fp_lb *lb)
{
	struct count_ctx c = {};

	assert_int_equal(fp_lb_for_each_session(lb, count_session, &c), 0);
	return c.n;
}

/* A frame from @s with DF set (IPv4; IPv6 has no DF). Returns its length. */
static int build_df(const struct fp_pkt_spec *s, __u8 *buf)
{
	int n = fp_pkt_build(s, buf, FP_PKT_MAX);
	size_t l3 = fp_pkt_l3_offset(s);

	assert_true(n > 0);
	if (fp_addr_v4(&s->src)) {
		buf[l3 + 6] |= 0x40;
		fp_pkt_ipv4_fix_csum(buf + l3);
	}
	return n;
}

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/*
 * The reply the LB must send for the client frame @in (@len bytes, IP header at @l3,
 * IP length @ip_len), telling @mtu: written here byte by byte from the RFCs.
 */
static int expect_reply(const __u8 *in, size_t l3, size_t ip_len, __u32 mtu, __u8 *out)
{
	int v6 = (in[l3] >> 4) == 6;
	size_t room = v6 ? 48 : 28, quote = v6 ? 1232 : 548;
	__u8 *ip = out + l3, *icmp = ip + (v6 ? 40 : 20);
	__u32 sum = 0;

	if (ip_len < quote)
		quote = ip_len;
	memcpy(out, in + 6, 6); /* MACs swapped */
	memcpy(out + 6, in, 6);
	memcpy(out + 12, in + 12, l3 - 12); /* EtherType, VLAN tags */
	memcpy(icmp + 8, in + l3, quote);
	memset(ip, 0, room);
	if (v6) {
		ip[0] = 0x60;
		put16(ip + 4, (__u16)(8 + quote));
		ip[6] = 58;
		ip[7] = 64;
		memcpy(ip + 8, in + l3 + 24, 16); /* from the VIP */
		memcpy(ip + 24, in + l3 + 8, 16); /* to the client */
		icmp[0] = 2;
		icmp[4] = mtu >> 24;
		icmp[5] = (mtu >> 16) & 0xff;
		icmp[6] = (mtu >> 8) & 0xff;
		icmp[7] = mtu & 0xff;
		sum = fp_csum_add(sum, ip + 8, 32);
		sum += 8 + (__u32)quote;
		sum += 58;
	} else {
		ip[0] = 0x45;
		ip[1] = 0xc0;
		put16(ip + 2, (__u16)(28 + quote));
		ip[8] = 64;
		ip[9] = 1;
		memcpy(ip + 12, in + l3 + 16, 4);
		memcpy(ip + 16, in + l3 + 12, 4);
		fp_pkt_ipv4_fix_csum(ip);
		icmp[0] = 3;
		icmp[1] = 4;
		put16(icmp + 6, (__u16)mtu);
	}
	put16(icmp + 2, fp_csum_fold(fp_csum_add(sum, icmp, 8 + quote)));
	return (int)(l3 + room + quote);
}

/* Runs @in, expects the exact "too big" reply telling @mtu, and counts it. */
static void check_reply(struct fp_lb *lb, const __u8 *in, size_t len, size_t l3, size_t ip_len,
			__u32 mtu)
{
	__u8 out[FP_PKT_MAX], want[FP_PKT_MAX];
	__u64 sent = t_counter(lb, FP_CNT_ICMP_TOO_BIG), tx = t_counter(lb, FP_CNT_TX);
	__u64 big = t_counter(lb, FP_CNT_DROP_TOO_BIG);
	int want_len = expect_reply(in, l3, ip_len, mtu, want);
	__u32 out_len;

	assert_int_equal(t_run(lb, in, len, out, &out_len), XDP_TX);
	assert_int_equal(out_len, want_len);
	assert_memory_equal(out, want, want_len);
	assert_int_equal(t_counter(lb, FP_CNT_ICMP_TOO_BIG) - sent, 1);
	assert_int_equal(t_counter(lb, FP_CNT_TX), tx);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_TOO_BIG), big);
}

/* Runs @in, expects it dropped as too big with no reply. */
static void check_silent_drop(struct fp_lb *lb, const __u8 *in, size_t len)
{
	__u64 sent = t_counter(lb, FP_CNT_ICMP_TOO_BIG), big = t_counter(lb, FP_CNT_DROP_TOO_BIG);

	assert_int_equal(t_run(lb, in, len, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_TOO_BIG) - big, 1);
	assert_int_equal(t_counter(lb, FP_CNT_ICMP_TOO_BIG), sent);
}

/* Every family pair, the same VIPs as test_lb.c's: IPv4 outer adds 44, IPv6 outer 76. */
static struct t_config t_four;

static void four_config(struct t_config *t, enum fp_pinning mode)
{
	struct fp_vip_cfg *v;

	t_config_init(t, 251);
	v = t_add_vip(t, "203.0.113.10", 80, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.1.0.1");
	v = t_add_vip(t, "2001:db8:100::10", 443, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "2001:db8:200::1");
	v = t_add_vip(t, "203.0.113.11", 80, IPPROTO_TCP, mode);
	t_add_backend(v, 7, "2001:db8:200::7");
	v = t_add_vip(t, "2001:db8:100::11", 0, IPPROTO_UDP, mode);
	t_add_backend(v, 4, "10.1.0.4");
}

/*
 * A packet one byte too big, in every family pair, with and without VLAN tags: the
 * exact ICMP / ICMPv6 reply, from the VIP, MTU = 1500 - that packet's overhead, the
 * client's packet quoted up to 576 / 1280 bytes in all; XDP_TX, no session, counted.
 * One byte less is encapsulated as before.
 */
static void test_ptb_reply_exact(void **state)
{
	static const int overhead[] = { 44, 76, 76, 44 };
	__u8 in[FP_PKT_MAX];
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	four_config(&t_four, FP_PIN_HASH_TABLE);
	lb = t_open(&t_four);
	for (size_t i = 0; i < t_four.cfg.n_vips; i++) {
		for (int tags = 0; tags <= 2; tags += 2) {
			const struct fp_vip_cfg *v = &t_four.vips[i];
			int v6 = !fp_addr_v4(&v->addr), l4 = v->proto == IPPROTO_TCP ? 20 : 8;
			struct fp_pkt_spec s = client_to(
				v, (__u16)(48000 + tags), FP_TCP_ACK,
				(size_t)(T_DEV_MTU - overhead[i] - (v6 ? 40 : 20) - l4 + 1));
			int sessions = t_sessions(lb);

			s.n_vlan = (__u8)tags;
			s.vlan_id[0] = 10;
			s.vlan_id[1] = 20;
			int n = build_df(&s, in);
			size_t l3 = fp_pkt_l3_offset(&s);

			check_reply(lb, in, (size_t)n, l3, (size_t)n - l3,
				    (__u32)(T_DEV_MTU - overhead[i]));
			assert_int_equal(t_sessions(lb), sessions);
			s.payload_len--;
			n = build_df(&s, in);
			/* The first packet that fits puts the flow in probation, the second
			 * promotes it (session admission). */
			assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_TX);
			assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_TX);
			assert_int_equal(t_sessions(lb), sessions + 1);
		}
	}
	t_close(lb);
}

/*
 * A route whose MTU is below 576 + overhead: the whole client packet fits the quote, and
 * the link-layer padding after it (garbage here) must not be quoted; the MTU told is
 * the route's minus the overhead.
 */
static void test_ptb_small_route_padding(void **state)
{
	static struct t_config t;
	__u8 in[FP_PKT_MAX];
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	assert_int_equal(system("ip route add 10.95.0.0/24 via 192.0.2.254 mtu lock 576"), 0);
	t_config_init(&t, 251);
	struct fp_vip_cfg *v = t_add_vip(&t, "203.0.113.44", 80, IPPROTO_TCP, FP_PIN_HASH);
	t_add_backend(v, 1, "10.95.0.2");
	lb = t_open(&t);
	struct fp_pkt_spec s = client_to(v, 49000, FP_TCP_ACK, 576 - 44 - 40 + 1);
	int n = build_df(&s, in);

	memset(in + n, 0xee, 30); /* padding: not part of the IP packet */
	check_reply(lb, in, (size_t)n + 30, 14, (size_t)n - 14, 576 - 44);
	t_close(lb);
	assert_int_equal(system("ip route del 10.95.0.0/24"), 0);
}

/*
 * No reply, dropped and counted as too big: IPv4 without DF (we never fragment), a
 * source that is not unicast (the reply would go to a group or a whole segment), and
 * an ICMP error (RFC 1122: never an error about an error).
 */
static void test_ptb_silent_cases(void **state)
{
	__u8 in[FP_PKT_MAX], quoted[FP_PKT_MAX];
	struct fp_lb *lb;
	int n;

	(void)state;
	T_NEED_ROOT();
	four_config(&t_four, FP_PIN_HASH);
	lb = t_open(&t_four);
	const struct fp_vip_cfg *v4 = &t_four.vips[0], *v6 = &t_four.vips[1];
	struct fp_pkt_spec s = client_to(v4, 49100, FP_TCP_ACK, 1500);

	n = fp_pkt_build(&s, in, sizeof(in)); /* no DF */
	check_silent_drop(lb, in, (size_t)n);
	static const char *const bad4[] = { "224.0.0.1", "255.255.255.255", "0.0.0.1", "127.0.0.1",
					    "240.0.0.1" };
	for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++) {
		s.src = fp_pkt_addr(bad4[i]);
		n = build_df(&s, in);
		check_silent_drop(lb, in, (size_t)n);
	}
	static const char *const bad6[] = { "ff02::1", "::", "::1" };
	s = client_to(v6, 49100, FP_TCP_ACK, 1500);
	for (size_t i = 0; i < sizeof(bad6) / sizeof(bad6[0]); i++) {
		s.src = fp_pkt_addr(bad6[i]);
		n = build_df(&s, in);
		check_silent_drop(lb, in, (size_t)n);
	}
	/*
	 * A source that is a VIP address (spoofed): the reply would be a packet addressed
	 * to a VIP leaving the node unencapsulated, against the loop rule.
	 */
	s = client_to(v4, 49100, FP_TCP_ACK, 1500);
	s.src = t_four.vips[2].addr;
	n = build_df(&s, in);
	check_silent_drop(lb, in, (size_t)n);
	s = client_to(v6, 49100, FP_TCP_ACK, 1500);
	s.src = t_four.vips[3].addr;
	n = build_df(&s, in);
	check_silent_drop(lb, in, (size_t)n);
	/* A too-big ICMP error about a VIP flow (it is routed like the flow's packets). */
	for (int fam = 0; fam < 2; fam++) {
		const struct fp_vip_cfg *v = fam ? v6 : v4;
		struct fp_pkt_spec flow = client_to(v, 49200, FP_TCP_ACK, 1400), reply = flow;
		struct fp_pkt_spec icmp = {};

		reply.src = flow.dst;
		reply.dst = flow.src;
		reply.sport = flow.dport;
		reply.dport = flow.sport;
		int qn = fp_pkt_build(&reply, quoted, sizeof(quoted));
		icmp.src = fp_pkt_addr(fam ? "2001:db8:ee::1" : "192.0.2.99");
		icmp.dst = v->addr;
		icmp.proto = fam ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
		icmp.icmp_type = fam ? 2 : 3;
		icmp.icmp_code = fam ? 0 : 4;
		icmp.icmp_rest = 1280;
		icmp.payload = quoted + 14;
		icmp.payload_len = (size_t)qn - 14; /* the whole 1400-byte reply: too big */
		n = build_df(&icmp, in);
		__u64 routed = t_counter(lb, FP_CNT_ICMP_ROUTED);
		check_silent_drop(lb, in, (size_t)n);
		assert_int_equal(t_counter(lb, FP_CNT_ICMP_ROUTED) - routed, 1);
	}
	/* A client packet whose IP length runs past the frame: truncated, no reply. */
	s = client_to(v4, 49300, FP_TCP_ACK, 1500);
	n = build_df(&s, in);
	__u64 trunc = t_counter(lb, FP_CNT_DROP_TRUNCATED);
	__u64 sent = t_counter(lb, FP_CNT_ICMP_TOO_BIG);
	assert_int_equal(t_run(lb, in, (size_t)n - 100, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_TRUNCATED) - trunc, 1);
	assert_int_equal(t_counter(lb, FP_CNT_ICMP_TOO_BIG), sent);
	t_close(lb);
}

/*
 * The per-CPU token bucket: a burst of too-big packets gets at most the burst plus
 * what refilled meanwhile; the rest are dropped, counted as suppressed and as too big.
 * (The tests run on one CPU: t_group_setup.)
 */
static void test_ptb_rate_limit(void **state)
{
	__u8 in[FP_PKT_MAX];
	struct fp_lb *lb;
	struct timespec t0, t1;
	int replies = 0, drops = 0;

	(void)state;
	T_NEED_ROOT();
	four_config(&t_four, FP_PIN_HASH);
	lb = t_open(&t_four);
	struct fp_pkt_spec s = client_to(&t_four.vips[0], 49400, FP_TCP_ACK, 1500);
	int n = build_df(&s, in);
	__u64 limited = t_counter(lb, FP_CNT_ICMP_TOO_BIG_LIMITED);
	__u64 big = t_counter(lb, FP_CNT_DROP_TOO_BIG);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 400; i++) {
		int v = t_run(lb, in, (size_t)n, NULL, NULL);

		assert_true(v == XDP_TX || v == XDP_DROP);
		replies += v == XDP_TX;
		drops += v == XDP_DROP;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* One token per millisecond (1000/s) on top of the burst of 50; coarse clock:
	 * allow a few ticks more. */
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(replies >= 50);
	if (ms < 200)
		assert_true(replies <= 50 + ms + 20);
	assert_int_equal(t_counter(lb, FP_CNT_ICMP_TOO_BIG_LIMITED) - limited, (__u64)drops);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_TOO_BIG) - big, (__u64)drops);
	assert_true(drops > 0);
	t_close(lb);
}

/*
 * A packet dropped (or answered) because it is too big leaves no session entry, in
 * every mode that makes entries: table (any first packet), hash+table and full (a
 * non-SYN of an unmoved bucket). The same flow's next packet that fits makes one.
 */
static void test_too_big_no_session(void **state)
{
	static const enum fp_pinning modes[] = { FP_PIN_TABLE, FP_PIN_HASH_TABLE, FP_PIN_FULL };
	static struct t_config t;

	(void)state;
	T_NEED_ROOT();
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		t_config_init(&t, 251);
		struct fp_vip_cfg *v4 = t_add_vip(&t, "203.0.113.80", 80, IPPROTO_TCP, modes[m]);
		t_add_backend(v4, 1, "10.1.0.1");
		struct fp_vip_cfg *v6 =
			t_add_vip(&t, "2001:db8:100::80", 80, IPPROTO_TCP, modes[m]);
		t_add_backend(v6, 1, "2001:db8:200::1");
		struct fp_lb *lb = t_open(&t);
		const struct fp_vip_cfg *vips[] = { v4, v6 };

		for (int f = 0; f < 2; f++) {
			int ip_hdr = f ? 40 : 20, overhead = f ? 76 : 44;
			struct fp_pkt_spec s = client_to(vips[f], 47000, FP_TCP_ACK,
							 T_DEV_MTU - overhead - ip_hdr - 20 + 1);
			int before = t_sessions(lb);
			__u64 ins = t_counter(lb, FP_CNT_SESSION_INSERT);
			__u64 marks = t_counter(lb, FP_CNT_PROBATION_INSERT);

			/* Twice: not even a probation mark, so no promotion either. */
			assert_int_not_equal(t_run_spec(lb, &s, NULL, NULL), XDP_REDIRECT);
			assert_int_not_equal(t_run_spec(lb, &s, NULL, NULL), XDP_REDIRECT);
			assert_int_equal(t_sessions(lb), before);
			assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), ins);
			assert_int_equal(t_counter(lb, FP_CNT_PROBATION_INSERT), marks);
			/* One byte less fits: sent, the flow goes to probation; its next packet
			 * that fits promotes it to a session entry. */
			s.payload_len--;
			assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
			assert_int_equal(t_counter(lb, FP_CNT_PROBATION_INSERT), marks + 1);
			assert_int_equal(t_sessions(lb), before);
			assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
			assert_int_equal(t_sessions(lb), before + 1);
			assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), ins + 1);
		}
		t_close(lb);
	}
}

/*
 * The MTU told is the route's minus THIS packet's overhead: in `full`, a flow of a bucket
 * that moved in the last change carries two hops (IPv4 outer: 48 bytes, not 44), so a
 * packet that fits with one hop can be too big with two.
 */
static void test_ptb_two_hops(void **state)
{
	static struct t_config t;
	static __u16 before[251], after[251];
	__u8 in[FP_PKT_MAX];
	struct fp_lb *lb;
	__u32 gen;
	int found = 0;

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, 251);
	struct fp_vip_cfg *v = t_add_vip(&t, "203.0.113.95", 80, IPPROTO_TCP, FP_PIN_FULL);
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	lb = t_open(&t);
	t_maglev(&t, v, before);
	t_add_backend(v, 3, "10.1.0.3");
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	t_maglev(&t, v, after);
	for (__u16 port = 50000; port < 50200 && found < 3; port++) {
		/* 1500 - 44 fits one hop, not two (1500 - 48). */
		struct fp_pkt_spec s = client_to(v, port, FP_TCP_ACK, 1500 - 44 - 40);
		__u32 bucket = fp_hash_bucket(t_hash(&s, 0), 251);

		if (before[bucket] == after[bucket])
			continue;
		int n = build_df(&s, in);
		__u64 hop_lists = t_counter(lb, FP_CNT_HOP_LIST);

		check_reply(lb, in, (size_t)n, 14, (size_t)n - 14, 1500 - 48);
		assert_int_equal(t_counter(lb, FP_CNT_HOP_LIST) - hop_lists, 1);
		/* 4 bytes less: fits the two hops, encapsulated with both. */
		s.payload_len -= 4;
		n = build_df(&s, in);
		assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_TX);
		found++;
	}
	assert_int_equal(found, 3);
	t_close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_too_big_no_session),
		cmocka_unit_test(test_ptb_reply_exact),
		cmocka_unit_test(test_ptb_small_route_padding),
		cmocka_unit_test(test_ptb_silent_cases),
		cmocka_unit_test(test_ptb_rate_limit),
		cmocka_unit_test(test_ptb_two_hops),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
