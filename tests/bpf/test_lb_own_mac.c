// SPDX-License-Identifier: MIT
/*
 * The own-MAC rule of the LB XDP program (bpf/own_mac.h, docs/security.md "Unicast
 * flooding"): a switch that floods unicast hands every LB node of the segment frames
 * sent to another host. Such a frame is passed unchanged and counted pass_not_our_mac,
 * whatever it carries (a new flow, an established one the flow cache knows, VLAN
 * tagged), and leaves no state; the same frame to the device's MAC is forwarded (each
 * test runs that control, so the rule cannot pass by dropping everything). Broadcast
 * and multicast frames keep their path (ARP, neighbour discovery, other multicast are
 * passed as before) but a packet addressed to a VIP in one is dropped (drop_group_mac).
 * The device's MAC is read from the device itself: changing it with `ip link` moves
 * the rule with it at once.
 */
#include <sys/wait.h>
#include "test_lb_fixture.h"

#define TABLE 251
static struct t_config t;

static const __u8 gw_mac[6] = FP_FIBNS_NEXT_HOP_MAC;
static const __u8 old_default_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const __u8 broadcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const __u8 mcast4_mac[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
static const __u8 mcast6_mac[6] = { 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 };

/* VIPs: v4 TCP :80, v6 TCP :443, v4 UDP port 0 hashing on addresses. */
static struct fp_lb *own_open(enum fp_pinning mode)
{
	struct fp_vip_cfg *v;

	t_config_init(&t, TABLE);
	v = t_add_vip(&t, "203.0.113.10", 80, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	v = t_add_vip(&t, "2001:db8:100::10", 443, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "2001:db8:200::1");
	t_add_backend(v, 2, "2001:db8:200::2");
	v = t_add_vip(&t, "203.0.113.20", 0, IPPROTO_UDP, mode);
	v->hash_addresses_only = true;
	t_add_backend(v, 1, "10.2.0.1");
	t_add_backend(v, 2, "10.2.0.2");
	return t_open(&t);
}

static int count_session(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	(void)key;
	(void)s;
	(*(int *)ctx)++;
	return 0;
}

static int sessions(struct fp_lb *lb)
{
	int n = 0;

	assert_int_equal(fp_lb_for_each_session(lb, count_session, &n), 0);
	return n;
}

/*
 * Runs @in (@len bytes) and expects @verdict with counter @c moved by one and, when
 * @only, no other counter at all. A passed frame must come out unchanged.
 */
static void expect_only(struct fp_lb *lb, const __u8 *in, size_t len, int verdict,
			enum fp_counter c, int only, const char *what)
{
	__u64 before[FP_CNT__MAX], after[FP_CNT__MAX];
	__u8 out[FP_PKT_MAX];
	__u32 out_len;
	int got;

	assert_int_equal(fp_lb_read_counters(lb, before), 0);
	got = t_run(lb, in, len, out, &out_len);
	assert_int_equal(fp_lb_read_counters(lb, after), 0);
	if (got != verdict || after[c] - before[c] != 1)
		fail_msg("%s: verdict %d (want %d), %s +%llu (want +1)", what, got, verdict,
			 fp_counter_names[c], (unsigned long long)(after[c] - before[c]));
	for (int i = 0; only && i < FP_CNT__MAX; i++)
		if (i != (int)c && after[i] != before[i])
			fail_msg("%s: %s moved by %llu as well", what, fp_counter_names[i],
				 (unsigned long long)(after[i] - before[i]));
	if (verdict == XDP_PASS && (out_len != len || memcmp(out, in, len)))
		fail_msg("%s: a passed frame was changed", what);
}

static int build(const struct fp_pkt_spec *s, const __u8 mac[6], __u8 *buf)
{
	int n = fp_pkt_build(s, buf, FP_PKT_MAX);

	assert_true(n > 0);
	memcpy(buf, mac, 6);
	return n;
}

/* A frame to the node's MAC with one bit of it flipped: another host's. */
static void near_mac(__u8 mac[6], int bit)
{
	memcpy(mac, t_ns.own_mac, 6);
	mac[5 - bit / 8] ^= (__u8)(1u << (bit % 8));
}

/*
 * A new flow's packets (SYN, mid-flow ACK, UDP, VLAN tagged, both families) to other
 * unicast MACs: passed unchanged, pass_not_our_mac and nothing else, no probation mark,
 * no session; the same frames to the node's MAC are forwarded.
 */
static void test_other_mac_passed(void **state)
{
	static const enum fp_pinning modes[] = { FP_PIN_TABLE, FP_PIN_FULL };

	(void)state;
	T_NEED_ROOT();
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct fp_lb *lb = own_open(modes[m]);

		for (int vi = 0; vi < 3; vi++) {
			for (int variant = 0; variant < 4; variant++) {
				struct fp_pkt_spec s = t_client_spec(
					&t.vips[vi], (__u16)(40000 + vi * 16 + variant),
					variant % 2 ? FP_TCP_ACK : FP_TCP_SYN, 64);
				__u8 in[FP_PKT_MAX], mac[6];
				char what[96];
				int n;

				s.n_vlan = variant >= 2;
				s.vlan_id[0] = 7;
				/* Every bit of the address matters, the group bit aside. */
				for (int bit = 0; bit < 48; bit++) {
					if (bit == 40)
						continue; /* mac[0] & 1: a group address */
					near_mac(mac, bit);
					n = build(&s, mac, in);
					snprintf(what, sizeof(what),
						 "mode %d vip%d variant %d bit %d", modes[m], vi,
						 variant, bit);
					expect_only(lb, in, (size_t)n, XDP_PASS,
						    FP_CNT_PASS_NOT_OUR_MAC, 1, what);
				}
				n = build(&s, gw_mac, in);
				expect_only(lb, in, (size_t)n, XDP_PASS, FP_CNT_PASS_NOT_OUR_MAC, 1,
					    "the gateway's MAC");
				n = build(&s, old_default_mac, in);
				expect_only(lb, in, (size_t)n, XDP_PASS, FP_CNT_PASS_NOT_OUR_MAC, 1,
					    "02:00:00:00:00:02");
			}
		}
		assert_int_equal(t_counter(lb, FP_CNT_PROBATION_INSERT), 0);
		assert_int_equal(sessions(lb), 0);
		/* Control: the same frames to this node are forwarded. */
		for (int vi = 0; vi < 3; vi++) {
			struct fp_pkt_spec s = t_client_spec(&t.vips[vi], (__u16)(40000 + vi * 16),
							     FP_TCP_SYN, 64);
			__u8 in[FP_PKT_MAX];
			int n = build(&s, t_ns.own_mac, in);

			assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_TX);
		}
		t_close(lb);
	}
}

/*
 * An established flow (session entry, flow cache filled by a hit): its next segment
 * flooded to this node is passed, touching neither the session nor the flow cache; the
 * copy sent to this node is still a hit.
 */
static void test_established_flow(void **state)
{
	(void)state;
	T_NEED_ROOT();
	struct fp_lb *lb = own_open(FP_PIN_FULL);

	for (int vi = 0; vi < 2; vi++) {
		struct fp_pkt_spec syn = t_client_spec(&t.vips[vi], 41000, FP_TCP_SYN, 0);
		struct fp_pkt_spec ack = t_client_spec(&t.vips[vi], 41000, FP_TCP_ACK, 100);
		__u8 in[FP_PKT_MAX];
		__u64 hits;
		int n;

		assert_int_equal(t_run_spec(lb, &syn, NULL, NULL), XDP_TX);
		for (int i = 0; i < 4; i++) /* mark, promote, hit, flow cache hit */
			assert_int_equal(t_run_spec(lb, &ack, NULL, NULL), XDP_TX);
		assert_true(t_counter(lb, FP_CNT_FLOW_CACHE_HIT) >= 1);
		hits = t_counter(lb, FP_CNT_SESSION_HIT);
		n = build(&ack, gw_mac, in);
		expect_only(lb, in, (size_t)n, XDP_PASS, FP_CNT_PASS_NOT_OUR_MAC, 1,
			    "established flow, flooded");
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT), hits);
		n = build(&ack, t_ns.own_mac, in);
		assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_TX);
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT), hits + 1);
	}
	assert_int_equal(sessions(lb), 2);
	t_close(lb);
}

/* An ARP request for 192.0.2.1, broadcast. */
static size_t arp_request(__u8 *f)
{
	static const __u8 arp[28] = { 0,   1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0,   0, 0, 0x01,
				      192, 0, 2, 9, 0, 0, 0, 0, 0,    0, 192, 0, 2, 1 };

	memcpy(f, broadcast_mac, 6);
	memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
	f[12] = 0x08;
	f[13] = 0x06;
	memcpy(f + 14, arp, sizeof(arp));
	memset(f + 42, 0, 18); /* padded to the 60-byte minimum */
	return 60;
}

/*
 * Broadcast and multicast: ARP, IPv6 neighbour discovery and other multicast go to
 * the stack as before, each under the counter it had; a packet addressed to a VIP
 * (a new flow, an established one, an ICMP error quoting a VIP's flow) is dropped,
 * drop_group_mac, and leaves no state. Every LB node of the segment got it.
 */
static void test_group_mac(void **state)
{
	(void)state;
	T_NEED_ROOT();
	struct fp_lb *lb = own_open(FP_PIN_FULL);
	__u8 in[FP_PKT_MAX];
	int n;

	n = (int)arp_request(in);
	expect_only(lb, in, (size_t)n, XDP_PASS, FP_CNT_PASS_NOT_IP, 1, "ARP request");
	{
		struct fp_pkt_spec s = {};

		s.src = fp_pkt_addr("192.0.2.9");
		s.dst = fp_pkt_addr("224.0.0.251");
		s.proto = IPPROTO_UDP;
		s.sport = s.dport = 5353;
		s.payload_len = 20;
		n = build(&s, (const __u8 *)"\x01\x00\x5e\x00\x00\xfb", in);
		expect_only(lb, in, (size_t)n, XDP_PASS, FP_CNT_PASS_NOT_VIP, 1, "mDNS");
	}
	{
		struct fp_pkt_spec s = {};

		s.src = fp_pkt_addr("fe80::9");
		s.dst = fp_pkt_addr("ff02::1:ff00:1");
		s.proto = IPPROTO_ICMPV6;
		s.icmp_type = 135; /* neighbour solicitation */
		s.ttl = 255;
		s.payload_len = 16;
		n = build(&s, (const __u8 *)"\x33\x33\xff\x00\x00\x01", in);
		expect_only(lb, in, (size_t)n, XDP_PASS, FP_CNT_PASS_ICMP, 1,
			    "neighbour solicitation");
	}
	/* Established flows, so that a forward would be a plain session hit. */
	for (int vi = 0; vi < 2; vi++) {
		struct fp_pkt_spec syn = t_client_spec(&t.vips[vi], 42000, FP_TCP_SYN, 0);
		struct fp_pkt_spec ack = t_client_spec(&t.vips[vi], 42000, FP_TCP_ACK, 100);

		assert_int_equal(t_run_spec(lb, &syn, NULL, NULL), XDP_TX);
		for (int i = 0; i < 3; i++)
			assert_int_equal(t_run_spec(lb, &ack, NULL, NULL), XDP_TX);
	}
	for (int vi = 0; vi < 3; vi++) {
		const __u8 *macs[] = { broadcast_mac, vi == 1 ? mcast6_mac : mcast4_mac };

		for (int g = 0; g < 2; g++) {
			for (int flags = 0; flags < 2; flags++) {
				struct fp_pkt_spec s = t_client_spec(
					&t.vips[vi], (__u16)(flags ? 42000 : 43000 + vi),
					flags ? FP_TCP_ACK : FP_TCP_SYN, 64);

				n = build(&s, macs[g], in);
				expect_only(lb, in, (size_t)n, XDP_DROP, FP_CNT_DROP_GROUP_MAC, 1,
					    "to a VIP, group MAC");
			}
		}
	}
	/* An ICMP frag-needed about a VIP's flow, broadcast. */
	{
		struct fp_pkt_spec flow = t_client_spec(&t.vips[0], 42000, FP_TCP_ACK, 100);
		struct fp_pkt_spec icmp = {};
		__u8 quoted[FP_PKT_MAX];
		int qn;

		/* The VIP's reply as a router quotes it: VIP -> client. */
		flow.src = t.vips[0].addr;
		flow.dst = fp_pkt_addr("198.51.100.7");
		flow.sport = 80;
		flow.dport = 42000;
		qn = fp_pkt_build(&flow, quoted, sizeof(quoted));
		assert_true(qn > 0);
		icmp.src = fp_pkt_addr("198.51.100.254");
		icmp.dst = t.vips[0].addr;
		icmp.proto = IPPROTO_ICMP;
		icmp.icmp_type = 3;
		icmp.icmp_code = 4;
		icmp.icmp_rest = 1400;
		icmp.payload = quoted + 14;
		icmp.payload_len = (size_t)qn - 14;
		n = build(&icmp, broadcast_mac, in);
		expect_only(lb, in, (size_t)n, XDP_DROP, FP_CNT_DROP_GROUP_MAC, 1,
			    "ICMP error about a VIP flow, broadcast");
		/* Control: to this node it is routed by the quoted flow. */
		n = build(&icmp, t_ns.own_mac, in);
		assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_TX);
		assert_int_equal(t_counter(lb, FP_CNT_ICMP_ROUTED), 1);
	}
	assert_int_equal(sessions(lb), 2);
	t_close(lb);
}

static int set_device_mac(const char *mac)
{
	char cmd[128];
	int rc;

	snprintf(cmd, sizeof(cmd), "ip link set dev %s address %s", FP_FIBNS_DEV, mac);
	rc = system(cmd);
	return rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc);
}

/*
 * The program reads the receiving device's address on every frame: after `ip link set
 * dev X address Y` (no reload, no daemon), frames to the old address are passed and
 * frames to the new one forwarded, at once. Restored afterwards.
 */
static void test_device_mac_change(void **state)
{
	static const __u8 new_mac[6] = { 0x02, 0x66, 0x70, 0x00, 0x00, 0x77 };
	char own[18];

	(void)state;
	T_NEED_ROOT();
	struct fp_lb *lb = own_open(FP_PIN_FULL);
	struct fp_pkt_spec s = t_client_spec(&t.vips[0], 44000, FP_TCP_SYN, 0);
	__u8 in[FP_PKT_MAX];
	int n, rc;

	snprintf(own, sizeof(own), "%02x:%02x:%02x:%02x:%02x:%02x", t_ns.own_mac[0],
		 t_ns.own_mac[1], t_ns.own_mac[2], t_ns.own_mac[3], t_ns.own_mac[4],
		 t_ns.own_mac[5]);
	n = build(&s, t_ns.own_mac, in);
	assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_TX);
	assert_int_equal(set_device_mac("02:66:70:00:00:77"), 0);
	n = build(&s, t_ns.own_mac, in);
	rc = t_run(lb, in, (size_t)n, NULL, NULL);
	n = build(&s, new_mac, in);
	int rc_new = t_run(lb, in, (size_t)n, NULL, NULL);
	assert_int_equal(set_device_mac(own), 0);
	assert_int_equal(rc, XDP_PASS);
	assert_int_equal(rc_new, XDP_TX);
	assert_int_equal(t_counter(lb, FP_CNT_PASS_NOT_OUR_MAC), 1);
	n = build(&s, t_ns.own_mac, in);
	assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_TX);
	n = build(&s, new_mac, in);
	assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_PASS);
	assert_int_equal(t_counter(lb, FP_CNT_PASS_NOT_OUR_MAC), 2);
	t_close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_other_mac_passed),
		cmocka_unit_test(test_established_flow),
		cmocka_unit_test(test_group_mac),
		cmocka_unit_test(test_device_mac_change),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
