// SPDX-License-Identifier: MIT
/*
 * The LB XDP program, run on crafted frames: verdicts, exact output bytes and counters
 * for IPv4/IPv6 VIPs x IPv4/IPv6 backends, VLAN tags, port-0 VIPs, the published hash
 * vectors, ICMP errors, MTU and routing outcomes.
 */
#include "test_lb_fixture.h"
#include "common/hash_vectors.h"

/* One VIP per family combination, hash mode, three backends each. */
static struct t_config t_four;

static void four_config(struct t_config *t, enum fp_pinning mode)
{
	struct fp_vip_cfg *v;

	t_config_init(t, 65537);
	v = t_add_vip(t, "203.0.113.10", 80, IPPROTO_TCP, mode); /* v4 VIP, v4 backends */
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	t_add_backend(v, 3, "10.1.0.3");
	v = t_add_vip(t, "2001:db8:100::10", 443, IPPROTO_TCP, mode); /* v6 VIP, v6 backends */
	t_add_backend(v, 1, "2001:db8:200::1");
	t_add_backend(v, 2, "2001:db8:200::2");
	t_add_backend(v, 3, "2001:db8:200::3");
	v = t_add_vip(t, "203.0.113.11", 80, IPPROTO_TCP, mode); /* v4 VIP, v6 backends */
	t_add_backend(v, 7, "2001:db8:200::7");
	t_add_backend(v, 8, "2001:db8:200::8");
	v = t_add_vip(t, "2001:db8:100::11", 80, IPPROTO_TCP, mode); /* v6 VIP, v4 backends */
	t_add_backend(v, 4, "10.1.0.4");
	t_add_backend(v, 5, "10.1.0.5");
}

static struct fp_pkt_spec client_to(const struct fp_vip_cfg *v, __u16 sport, __u8 flags)
{
	return t_client_spec(v, sport, flags, 100);
}

static void check_exact(struct fp_lb *lb, const struct t_config *t, const struct fp_vip_cfg *v,
			struct fp_pkt_spec *s)
{
	static __u16 table[65537];
	__u8 out[FP_PKT_MAX], want[FP_PKT_MAX];
	__u32 out_len;
	__u16 owner;
	int want_len;

	t_maglev(t, v, table);
	owner = table[fp_hash_bucket(t_hash(s, v->hash_addresses_only), t->cfg.table_size)];
	want_len = t_expect(s, v, &owner, 1, 1, want);
	assert_int_equal(t_run_spec(lb, s, out, &out_len), XDP_TX);
	assert_int_equal(out_len, want_len);
	assert_memory_equal(out, want, want_len);
}

static void test_encap_four_families(void **state)
{
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	four_config(&t_four, FP_PIN_HASH);
	lb = t_open(&t_four);
	for (size_t i = 0; i < t_four.cfg.n_vips; i++) {
		const struct fp_vip_cfg *v = &t_four.vips[i];
		__u64 tx = t_counter(lb, FP_CNT_TX), syn = t_counter(lb, FP_CNT_MISS_SYN);
		__u64 non_syn = t_counter(lb, FP_CNT_MISS_NON_SYN);
		struct fp_traffic vt, bt;

		for (__u16 port = 40000; port < 40016; port++) {
			struct fp_pkt_spec s = client_to(v, port, FP_TCP_SYN);

			check_exact(lb, &t_four, v, &s);
			s.tcp_flags = FP_TCP_ACK | FP_TCP_PSH;
			s.tos = 0xb8; /* DSCP EF: copied to the outer header */
			check_exact(lb, &t_four, v, &s);
		}
		assert_int_equal(t_counter(lb, FP_CNT_TX) - tx, 32);
		assert_int_equal(t_counter(lb, FP_CNT_MISS_SYN) - syn, 16);
		assert_int_equal(t_counter(lb, FP_CNT_MISS_NON_SYN) - non_syn, 16);
		assert_int_equal(fp_lb_read_traffic(lb, (__u32)i, 0, &vt), 0);
		assert_int_equal(vt.packets, 32);
		assert_int_equal(vt.bytes, 32 * (100 + 20 + (fp_addr_v4(&v->addr) ? 20 : 40)));
		/* Per-backend packets add up to the VIP's. */
		__u64 sum = 0;
		for (size_t b = 0; b < v->n_backends; b++) {
			assert_int_equal(fp_lb_read_traffic(lb, (__u32)i, v->backends[b].id, &bt),
					 0);
			sum += bt.packets;
		}
		assert_int_equal(sum, 32);
	}
	t_close(lb);
}

/* Double-tagged, padded, IPv4 options: output untagged, inner packet byte for byte. */
static void test_vlan_options_padding(void **state)
{
	__u8 in[FP_PKT_MAX], out[FP_PKT_MAX], want[FP_PKT_MAX];
	static __u16 table[65537];
	__u32 out_len;
	struct fp_lb *lb;
	__u16 owner;

	(void)state;
	T_NEED_ROOT();
	four_config(&t_four, FP_PIN_HASH);
	lb = t_open(&t_four);
	const struct fp_vip_cfg *v = &t_four.vips[0];
	struct fp_pkt_spec s = client_to(v, 41000, FP_TCP_ACK);

	s.n_vlan = 2;
	s.vlan_id[0] = 100;
	s.vlan_id[1] = 200;
	s.ip_options = 12;
	s.payload_len = 1;
	int n = fp_pkt_build(&s, in, sizeof(in));
	/* Ethernet minimum-size padding after the IP packet must not enter the tunnel. */
	memset(in + n, 0xee, 30);
	t_maglev(&t_four, v, table);
	owner = table[fp_hash_bucket(t_hash(&s, 0), 65537)];
	int want_len = t_expect(&s, v, &owner, 1, 1, want);
	assert_int_equal(t_run(lb, in, (size_t)n + 30, out, &out_len), XDP_TX);
	assert_int_equal(out_len, want_len);
	assert_memory_equal(out, want, want_len);
	/* Three tags: beyond the parser's bound, handed to the stack and counted. */
	s.n_vlan = 3;
	__u64 deep = t_counter(lb, FP_CNT_PASS_TOO_DEEP);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_PASS);
	assert_int_equal(t_counter(lb, FP_CNT_PASS_TOO_DEEP) - deep, 1);
	t_close(lb);
}

/* The BPF hash equals the published vectors (outer source port and chosen bucket). */
static void test_hash_vectors(void **state)
{
	static struct t_config t;
	static __u16 table[FP_VECTOR_TABLE];
	__u8 out[FP_PKT_MAX];
	struct fp_vip_cfg *v;
	__u32 out_len;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, FP_VECTOR_TABLE);
	assert_memory_equal(&t.cfg.hash_key, &fp_vector_key, sizeof(fp_vector_key));
	/* One VIP per (address, port, protocol) the vectors use; port 0: addresses only. */
	for (size_t i = 0; i < FP_N_HASH_VECTORS; i++) {
		const struct fp_hash_vector *hv = &fp_hash_vectors[i];
		struct fp_addr dst = fp_pkt_addr(hv->dst);
		size_t vi;

		for (vi = 0; vi < t.cfg.n_vips; vi++)
			if (!memcmp(t.vips[vi].addr.a, dst.a, 16) &&
			    t.vips[vi].proto == hv->proto && t.vips[vi].port == hv->dport)
				break;
		if (vi < t.cfg.n_vips)
			continue;
		v = t_add_vip(&t, hv->dst, hv->dport, hv->proto, FP_PIN_HASH);
		v->hash_addresses_only = hv->dport == 0;
		for (__u32 b = 1; b <= 5; b++) {
			char a[32];

			snprintf(a, sizeof(a), "10.2.%zu.%u", t.cfg.n_vips, b);
			t_add_backend(v, b, a);
		}
	}
	lb = t_open(&t);
	for (size_t i = 0; i < FP_N_HASH_VECTORS; i++) {
		const struct fp_hash_vector *hv = &fp_hash_vectors[i];
		struct fp_pkt_spec s = {};
		__u16 hops[2];
		size_t vi;

		s.src = fp_pkt_addr(hv->src);
		s.dst = fp_pkt_addr(hv->dst);
		s.proto = hv->proto;
		s.sport = hv->sport ? hv->sport : 1234;
		s.dport = hv->dport ? hv->dport : 8080;
		s.tcp_flags = FP_TCP_SYN;
		s.payload_len = 10;
		for (vi = 0; vi < t.cfg.n_vips; vi++)
			if (!memcmp(t.vips[vi].addr.a, s.dst.a, 16) &&
			    t.vips[vi].proto == s.proto && (t.vips[vi].port == hv->dport))
				break;
		assert_true(vi < t.cfg.n_vips);
		t_maglev(&t, &t.vips[vi], table);
		assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
		size_t udp = 14 + (out[12] == 0x86 ? 40 : 20);
		assert_int_equal(out[udp] << 8 | out[udp + 1], hv->outer_sport);
		assert_int_equal(t_hops_of(out, out_len, &t.vips[vi], hops), 1);
		assert_int_equal(hops[0], table[hv->bucket]);
	}
	t_close(lb);
}

/* A port-0 VIP takes every port; a port VIP of the same address wins for its port. */
static void test_port_zero_fallback(void **state)
{
	static struct t_config t;
	__u8 out[FP_PKT_MAX];
	__u16 hops[2];
	__u32 out_len;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, 251);
	struct fp_vip_cfg *any = t_add_vip(&t, "203.0.113.30", 0, IPPROTO_TCP, FP_PIN_HASH);
	t_add_backend(any, 1, "10.3.0.1");
	struct fp_vip_cfg *https = t_add_vip(&t, "203.0.113.30", 443, IPPROTO_TCP, FP_PIN_HASH);
	t_add_backend(https, 1, "10.3.1.1");
	lb = t_open(&t);
	for (__u16 port = 1; port < 2000; port += 111) {
		struct fp_pkt_spec s = client_to(any, 5000, FP_TCP_SYN);

		s.dport = port;
		assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
		assert_int_equal(t_hops_of(out, out_len, any, hops), 1);
		s.dport = 443;
		assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
		assert_int_equal(t_hops_of(out, out_len, https, hops), 1);
	}
	/* UDP to the same address is no VIP, but to a VIP address: not sent back out (the
	 * loop rule, bpf/lb.bpf.c; the address is not local here). */
	struct fp_pkt_spec u = client_to(any, 5000, 0);
	u.proto = IPPROTO_UDP;
	__u64 unserved = t_counter(lb, FP_CNT_DROP_VIP_UNSERVED);
	assert_int_equal(t_run_spec(lb, &u, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_VIP_UNSERVED) - unserved, 1);
	t_close(lb);
}

/*
 * ICMP frag-needed / packet-too-big about a VIP flow reach the flow's backend (the
 * quoted packet is the backend's reply: VIP -> client); echo requests to a VIP that is
 * not local are dropped.
 */
static void test_icmp(void **state)
{
	__u8 quoted[FP_PKT_MAX], out[FP_PKT_MAX];
	static __u16 table[65537];
	__u16 hops[2];
	__u32 out_len;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	four_config(&t_four, FP_PIN_HASH);
	lb = t_open(&t_four);
	for (int fam = 0; fam < 2; fam++) {
		const struct fp_vip_cfg *v = &t_four.vips[fam];
		struct fp_pkt_spec flow = client_to(v, 42424, FP_TCP_ACK);
		struct fp_pkt_spec reply = flow, icmp = {};
		__u64 routed = t_counter(lb, FP_CNT_ICMP_ROUTED);

		t_maglev(&t_four, v, table);
		__u16 owner = table[fp_hash_bucket(t_hash(&flow, 0), 65537)];
		reply.src = flow.dst;
		reply.dst = flow.src;
		reply.sport = flow.dport;
		reply.dport = flow.sport;
		reply.payload_len = 1400;
		int qn = fp_pkt_build(&reply, quoted, sizeof(quoted));
		icmp.src = fp_pkt_addr(fam ? "2001:db8:ee::1" : "192.0.2.99"); /* a router */
		icmp.dst = v->addr;
		icmp.proto = fam ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
		icmp.icmp_type = fam ? 2 : 3;
		icmp.icmp_code = fam ? 0 : 4;
		icmp.icmp_rest = 1280;
		icmp.payload = quoted + 14;
		icmp.payload_len = (size_t)(fam ? 1232 - 8 : 576 - 28) < (size_t)qn - 14
					   ? (size_t)(fam ? 1232 - 8 : 576 - 28)
					   : (size_t)qn - 14;
		assert_int_equal(t_run_spec(lb, &icmp, out, &out_len), XDP_TX);
		assert_int_equal(t_hops_of(out, out_len, v, hops), 1);
		assert_int_equal(hops[0], owner);
		assert_int_equal(t_counter(lb, FP_CNT_ICMP_ROUTED) - routed, 1);
		/* Echo request to the VIP (not local here): dropped, counted (loop rule). */
		icmp.icmp_type = fam ? 128 : 8;
		icmp.icmp_code = 0;
		icmp.payload = NULL;
		icmp.payload_len = 56;
		__u64 unserved = t_counter(lb, FP_CNT_DROP_VIP_UNSERVED);
		assert_int_equal(t_run_spec(lb, &icmp, NULL, NULL), XDP_DROP);
		assert_int_equal(t_counter(lb, FP_CNT_DROP_VIP_UNSERVED) - unserved, 1);
	}
	t_close(lb);
}

/* A result larger than the route's MTU is dropped and counted, before any rewrite. */
static void test_too_big(void **state)
{
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	four_config(&t_four, FP_PIN_HASH);
	lb = t_open(&t_four);
	struct fp_pkt_spec s = client_to(&t_four.vips[0], 43000, FP_TCP_ACK);
	/* 1500-byte IPv4 packet + 44 bytes of encapsulation > 1500 (fp-test0's MTU). */
	s.payload_len = 1500 - 40;
	__u64 big = t_counter(lb, FP_CNT_DROP_TOO_BIG);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_TOO_BIG) - big, 1);
	/* The largest packet that fits: 1500 - 44. */
	s.payload_len = 1500 - 44 - 40;
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
	t_close(lb);
}

/* A backend behind another device: bpf_redirect; no route: dropped and counted. */
static void test_redirect_and_no_route(void **state)
{
	static struct t_config t;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	assert_int_equal(system("ip link add fp-lbt2 type veth peer name fp-lbt3 && "
				"ip link set fp-lbt2 up && ip link set fp-lbt3 up && "
				"ip addr add 10.99.0.1/24 dev fp-lbt2 && "
				"ip neigh replace 10.99.0.2 lladdr 02:00:00:00:99:02 dev fp-lbt2 "
				"nud permanent && ip route add unreachable 10.98.0.0/24 && "
				"ip route add 10.97.0.0/24 via 192.0.2.253 && "
				"ip route add 10.96.0.0/24 via 192.0.2.254 mtu lock 1400"),
			 0);
	t_config_init(&t, 251);
	struct fp_vip_cfg *v = t_add_vip(&t, "203.0.113.40", 80, IPPROTO_TCP, FP_PIN_HASH);
	t_add_backend(v, 1, "10.99.0.2");
	struct fp_vip_cfg *dead = t_add_vip(&t, "203.0.113.41", 80, IPPROTO_TCP, FP_PIN_HASH);
	t_add_backend(dead, 1, "10.98.0.2");
	struct fp_vip_cfg *unresolved = t_add_vip(&t, "203.0.113.42", 80, IPPROTO_TCP, FP_PIN_HASH);
	t_add_backend(unresolved, 1, "10.97.0.2"); /* gateway without a neighbour entry */
	struct fp_vip_cfg *small = t_add_vip(&t, "203.0.113.43", 80, IPPROTO_TCP, FP_PIN_HASH);
	t_add_backend(small, 1, "10.96.0.2"); /* route MTU 1400 */
	lb = t_open(&t);
	struct fp_pkt_spec s = client_to(v, 44000, FP_TCP_SYN);
	__u64 redirect = t_counter(lb, FP_CNT_REDIRECT);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_REDIRECT);
	assert_int_equal(t_counter(lb, FP_CNT_REDIRECT) - redirect, 1);
	s = client_to(dead, 44000, FP_TCP_SYN);
	__u64 fib = t_counter(lb, FP_CNT_DROP_FIB);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_FIB) - fib, 1);
	/* Failures are not cached: every packet asks again, and is counted again. */
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_FIB) - fib, 2);
	s = client_to(unresolved, 44000, FP_TCP_SYN);
	__u64 neigh = t_counter(lb, FP_CNT_DROP_NO_NEIGH);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_NO_NEIGH) - neigh, 1);
	/* A locked route MTU (what forwarding obeys, see ip_mtu_from_fib_result) bounds it. */
	s = client_to(small, 44000, FP_TCP_ACK);
	s.payload_len = 1400 - 44 - 40;
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
	s.payload_len++;
	__u64 big = t_counter(lb, FP_CNT_DROP_TOO_BIG);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_TOO_BIG) - big, 1);
	t_close(lb);
	assert_int_equal(system("ip link del fp-lbt2 && ip route del unreachable 10.98.0.0/24 && "
				"ip route del 10.97.0.0/24 && ip route del 10.96.0.0/24"),
			 0);
}

/*
 * The next hop is cached per backend for FP_NEXTHOP_TTL_NS: a neighbour change shows
 * after the TTL, not before (one FIB lookup per backend per second, not per packet).
 */
static void test_nexthop_cache_ttl(void **state)
{
	__u8 out[FP_PKT_MAX];
	__u32 out_len;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	four_config(&t_four, FP_PIN_HASH);
	lb = t_open(&t_four);
	struct fp_pkt_spec s = client_to(&t_four.vips[0], 46000, FP_TCP_SYN);
	assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
	assert_memory_equal(out, t_ns.next_hop_mac, 6);
	assert_int_equal(system("ip neigh replace 192.0.2.254 lladdr 02:66:70:00:00:aa "
				"dev " FP_FIBNS_DEV " nud permanent"),
			 0);
	assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
	assert_memory_equal(out, t_ns.next_hop_mac, 6); /* cached */
	usleep((FP_NEXTHOP_TTL_NS / 1000) + 200 * 1000);
	assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
	assert_memory_equal(out, "\x02\x66\x70\x00\x00\xaa", 6);
	assert_int_equal(system("ip neigh replace 192.0.2.254 lladdr 02:66:70:00:00:fe "
				"dev " FP_FIBNS_DEV " nud permanent"),
			 0);
	t_close(lb);
}

/* Without an outer source address of the backend's family: dropped and counted. */
static void test_no_source(void **state)
{
	struct fp_lb_opts opts = {};
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	four_config(&t_four, FP_PIN_HASH);
	opts.source_v6 = fp_pkt_addr("2001:db8::1");
	opts.have_source_v6 = true;
	assert_int_equal(fp_lb_open(&t_four.cfg, &opts, &lb), 0);
	t_runs = 0; /* opened without t_open(): t_close() counts from here */
	struct fp_pkt_spec s = client_to(&t_four.vips[0], 45000, FP_TCP_SYN);
	__u64 no_src = t_counter(lb, FP_CNT_DROP_NO_SOURCE);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_DROP);
	assert_int_equal(t_counter(lb, FP_CNT_DROP_NO_SOURCE) - no_src, 1);
	s = client_to(&t_four.vips[1], 45000, FP_TCP_SYN); /* v6 backends: fine */
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
	t_close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encap_four_families),
		cmocka_unit_test(test_vlan_options_padding),
		cmocka_unit_test(test_hash_vectors),
		cmocka_unit_test(test_port_zero_fallback),
		cmocka_unit_test(test_icmp),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_redirect_and_no_route),
		cmocka_unit_test(test_no_source),
		cmocka_unit_test(test_nexthop_cache_ttl),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
