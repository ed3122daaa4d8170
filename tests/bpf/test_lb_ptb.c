// SPDX-License-Identifier: MIT
/*
 * Packets that do not fit the route to their backend once encapsulated (issue 8 item 4):
 * no session entry is made for them, and the client gets ICMP "fragmentation needed"
 * (IPv4, DF set) or ICMPv6 "packet too big" back from the VIP, built in place and sent
 * out the ingress (XDP_TX), rate-limited per CPU. Exact reply bytes are built here,
 * independently of the BPF code (tests/common/pkt.c checksum helpers).
 */
#include "test_lb_fixture.h"

/* fp-test0's MTU is 1500 (flowpin/fibns.h); the locked route below is 1400. */
#define T_DEV_MTU 1500

static struct fp_pkt_spec client_to(const struct fp_vip_cfg *v, __u16 sport, __u8 flags,
				    size_t payload)
{
	struct fp_pkt_spec s = {};

	s.src = fp_pkt_addr(fp_addr_v4(&v->addr) ? "198.51.100.7" : "2001:db8:c::7");
	s.dst = v->addr;
	s.proto = v->proto;
	s.sport = sport;
	s.dport = v->port ? v->port : 8080;
	s.tcp_flags = flags;
	s.seq = 0x01020304;
	s.ack = 0x0a0b0c0d;
	s.payload_len = payload;
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
		struct fp_vip_cfg *v6 = t_add_vip(&t, "2001:db8:100::80", 80, IPPROTO_TCP, modes[m]);
		t_add_backend(v6, 1, "2001:db8:200::1");
		struct fp_lb *lb = t_open(&t);
		const struct fp_vip_cfg *vips[] = { v4, v6 };

		for (int f = 0; f < 2; f++) {
			int ip_hdr = f ? 40 : 20, overhead = f ? 76 : 44;
			struct fp_pkt_spec s =
				client_to(vips[f], 47000, FP_TCP_ACK,
					  T_DEV_MTU - overhead - ip_hdr - 20 + 1);
			int before = t_sessions(lb);
			__u64 ins = t_counter(lb, FP_CNT_SESSION_INSERT);

			assert_int_not_equal(t_run_spec(lb, &s, NULL, NULL), XDP_REDIRECT);
			assert_int_equal(t_sessions(lb), before);
			assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), ins);
			/* One byte less fits: sent, and now the flow has its entry. */
			s.payload_len--;
			assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
			assert_int_equal(t_sessions(lb), before + 1);
			assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), ins + 1);
		}
		fp_lb_close(lb);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_too_big_no_session),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
