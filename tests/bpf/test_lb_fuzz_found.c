// SPDX-License-Identifier: MIT
/*
 * Regressions found by the fuzz tier (tests/fuzz), each reduced to the frame that showed
 * it, with the verdict and counter it must get.
 *
 *  - An ICMP error whose quote ends right after the quoted IP header, the quoted ports
 *    only in link-layer padding behind the IP packet: the LB read the ports from the
 *    padding and routed the error by them (fuzz_lb, `make fuzz`, 600 s). Headers the
 *    program reads must lie within the IP packet: dropped as drop_malformed. The same
 *    error with the ports inside the packet is still routed (control).
 */
#include "test_lb_fixture.h"

#define TABLE 251

/*
 * An ICMP frag-needed (IPv4) / packet-too-big (IPv6) from a router to @vip, quoting a
 * reply of @vip:@port to a client, cut after the quoted IP header (@with_ports 0) or
 * after the ports (1); then 4 bytes of padding holding the ports, outside the IP
 * packet. Returns the frame length.
 */
static int error_frame(const char *vip, __u16 port, int with_ports, __u8 *frame)
{
	struct fp_pkt_spec reply = { 0 }, s = { 0 };
	__u8 quoted[128];
	int v6 = strchr(vip, ':') != NULL;
	size_t qlen = v6 ? 40 : 20;
	int n;

	reply.src = fp_pkt_addr(vip);
	reply.dst = fp_pkt_addr(v6 ? "2001:db8:c::5" : "203.0.113.5");
	reply.proto = IPPROTO_TCP;
	reply.sport = port;
	reply.dport = 40000;
	reply.tcp_flags = FP_TCP_ACK;
	n = fp_pkt_build(&reply, quoted, sizeof(quoted));
	assert_true(n > 14 + (int)qlen + 4);
	s.src = fp_pkt_addr(v6 ? "2001:db8:e::1" : "192.0.2.77");
	s.dst = reply.src;
	s.proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	s.icmp_type = v6 ? 2 : 3;
	s.icmp_code = v6 ? 0 : 4;
	s.icmp_rest = 1400;
	s.payload = quoted + 14;
	s.payload_len = qlen + (with_ports ? 4 : 0);
	n = fp_pkt_build(&s, frame, FP_PKT_MAX);
	assert_true(n > 0);
	if (!with_ports) { /* the ports as link-layer padding, after the IP packet */
		memcpy(frame + n, quoted + 14 + qlen, 4);
		n += 4;
	}
	return n;
}

static void test_icmp_quote_ports_in_padding(void **state)
{
	static const struct {
		const char *vip;
		__u16 port;
	} vips[] = { { "203.0.113.10", 80 }, { "2001:db8:100::10", 443 } };
	struct t_config t;
	struct fp_lb *lb;
	__u8 frame[FP_PKT_MAX];

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, TABLE);
	for (size_t i = 0; i < 2; i++) {
		struct fp_vip_cfg *v =
			t_add_vip(&t, vips[i].vip, vips[i].port, IPPROTO_TCP, FP_PIN_HASH);

		t_add_backend(v, 1, i ? "2001:db8:20::1" : "10.20.0.1");
	}
	lb = t_open(&t);
	for (size_t i = 0; i < 2; i++) {
		__u64 malformed = t_counter(lb, FP_CNT_DROP_MALFORMED);
		__u64 routed = t_counter(lb, FP_CNT_ICMP_ROUTED);
		int n;

		n = error_frame(vips[i].vip, vips[i].port, 1, frame);
		assert_int_equal(t_run(lb, frame, (size_t)n, NULL, NULL), XDP_TX);
		assert_int_equal(t_counter(lb, FP_CNT_ICMP_ROUTED) - routed, 1);

		n = error_frame(vips[i].vip, vips[i].port, 0, frame);
		if (t_run(lb, frame, (size_t)n, NULL, NULL) != XDP_DROP)
			fail_msg("%s: an ICMP error with its quoted ports in the padding was "
				 "not dropped",
				 vips[i].vip);
		assert_int_equal(t_counter(lb, FP_CNT_DROP_MALFORMED) - malformed, 1);
		assert_int_equal(t_counter(lb, FP_CNT_ICMP_ROUTED) - routed, 1);
	}
	fp_lb_close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_icmp_quote_ports_in_padding),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
