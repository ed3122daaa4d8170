// SPDX-License-Identifier: MIT
/*
 * The two programs against each other: frames the real LB program (bpf/lb.bpf.c)
 * emits go into the real backend program (bpf/backend.bpf.c). Whatever the LB
 * encapsulates, the backend must hand the stack the client's packet byte for byte,
 * for every family combination; and a flow whose bucket moved between generations
 * must travel LB -> new owner -> previous owner with the hop list the LB wrote.
 * The test packets of pkt.h play no part here: only the programs' own output.
 *
 * Runs in the LB tests' private namespace (test_lb_fixture.h); not root: skipped.
 */
#include <linux/pkt_cls.h>
#include <flowpin/backend.h>
#include "test_lb_fixture.h"

/*
 * A backend instance of the fleet @cfg at @self: LB sources are the namespace's own
 * addresses (the LB's sources).
 */
static struct fp_backend *backend_for(const struct fp_config *cfg, const char *self)
{
	struct fp_prefix sources[2] = { 0 };
	struct fp_addr me = fp_pkt_addr(self);
	struct fp_backend_opts o = { .encap_port = FP_DEFAULT_ENCAP_PORT };
	struct fp_backend *b = NULL;

	memcpy(sources[0].addr.a + 10, "\xff\xff", 2);
	memcpy(sources[0].addr.a + 12, t_ns.own_v4, 4);
	sources[0].len = 128;
	memcpy(sources[1].addr.a, t_ns.own_v6, 16);
	sources[1].len = 128;
	o.lb_sources = sources;
	o.n_lb_sources = 2;
	o.self_addrs = &me;
	o.n_self_addrs = 1;
	o.vips = cfg->vips;
	o.n_vips = cfg->n_vips;
	assert_int_equal(fp_backend_load(&o, &b), 0);
	return b;
}

/*
 * One frame through the backend program, as the backend's device receives it (the
 * destination MAC is the device's: the LB's next hop MAC is the namespace's gateway);
 * returns the tc verdict.
 */
static int backend_run(struct fp_backend *b, const __u8 *frame, __u32 len, __u8 *out,
		       __u32 *out_len, unsigned int *counted)
{
	static __u8 in[FP_PKT_MAX];
	struct __sk_buff ctx = { .ifindex = (__u32)t_ns.ifindex,
				 .ingress_ifindex = (__u32)t_ns.ifindex };
	__u64 before[FP_BACKEND_NR_COUNTERS], after[FP_BACKEND_NR_COUNTERS];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = out,
		    .data_size_out = FP_PKT_MAX, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);
	int moved = 0;

	assert_true(len <= sizeof(in));
	memcpy(in, frame, len);
	memcpy(in, t_ns.own_mac, 6);
	assert_int_equal(fp_backend_read_counters(fp_backend_counters_fd(b), before), 0);
	assert_int_equal(bpf_prog_test_run_opts(fp_backend_prog_fd(b), &o), 0);
	assert_int_equal(fp_backend_read_counters(fp_backend_counters_fd(b), after), 0);
	for (unsigned int i = 0; i < FP_BACKEND_NR_COUNTERS; i++) {
		if (after[i] != before[i]) {
			*counted = i;
			moved++;
		}
	}
	assert_int_equal(moved, 1); /* exactly one counter per packet */
	*out_len = o.data_size_out;
	return (int)o.retval;
}

/* The backend's output is the client's frame: LB's MACs, inner EtherType, inner packet. */
static void assert_client_packet(const __u8 *out, __u32 out_len, const struct fp_pkt_spec *s)
{
	__u8 client[FP_PKT_MAX];
	int n = fp_pkt_build(s, client, sizeof(client));
	size_t l3 = fp_pkt_l3_offset(s);

	assert_true(n > 0);
	assert_int_equal(out_len, 14 + (size_t)n - l3);
	assert_memory_equal(out + 12, client + l3 - 2, 2); /* EtherType of the inner family */
	assert_memory_equal(out + 14, client + l3, (size_t)n - l3);
}

static void test_lb_output_decapsulates_to_client_packet(void **state)
{
	static const struct {
		const char *vip, *client, *backend;
	} combos[] = {
		{ "203.0.113.10", "198.51.100.7", "10.1.0.1" },
		{ "2001:db8:100::10", "2001:db8:c::7", "2001:db8:200::1" },
		{ "203.0.113.11", "198.51.100.7", "2001:db8:200::7" },
		{ "2001:db8:100::11", "2001:db8:c::7", "10.1.0.4" },
	};
	__u8 lb_out[FP_PKT_MAX], be_out[FP_PKT_MAX];
	__u32 lb_len, be_len;
	struct t_config t;
	unsigned int counted;

	(void)state;
	T_NEED_ROOT();
	for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
		struct fp_vip_cfg *v;
		struct fp_backend *be;
		struct fp_lb *lb;

		t_config_init(&t, 251);
		v = t_add_vip(&t, combos[i].vip, 80, IPPROTO_TCP, FP_PIN_HASH);
		t_add_backend(v, 1, combos[i].backend);
		lb = t_open(&t);
		be = backend_for(&t.cfg, combos[i].backend);
		for (__u16 port = 40000; port < 40008; port++) {
			struct fp_pkt_spec s = { 0 };

			s.src = fp_pkt_addr(combos[i].client);
			s.dst = v->addr;
			s.proto = IPPROTO_TCP;
			s.sport = port;
			s.dport = 80;
			s.tcp_flags = FP_TCP_SYN;
			s.payload_len = 64 + port % 7; /* odd lengths too */
			assert_int_equal(t_run_spec(lb, &s, lb_out, &lb_len), XDP_TX);
			assert_int_equal(backend_run(be, lb_out, lb_len, be_out, &be_len, &counted),
					 TC_ACT_OK);
			assert_int_equal(counted, FP_BACKEND_SYN_LOCAL);
			assert_client_packet(be_out, be_len, &s);
		}
		fp_backend_destroy(be);
		fp_lb_close(lb);
	}
}

static void test_moved_flow_travels_new_then_previous_owner(void **state)
{
	__u8 lb_out[FP_PKT_MAX], fwd[FP_PKT_MAX], out[FP_PKT_MAX];
	__u32 lb_len, fwd_len, out_len, gen;
	struct fp_backend *owner_new, *owner_old;
	struct t_config t;
	struct fp_vip_cfg *v;
	struct fp_lb *lb;
	unsigned int counted;
	__u16 hops[2];
	int found = 0;

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, 251);
	v = t_add_vip(&t, "203.0.113.10", 80, IPPROTO_TCP, FP_PIN_FULL);
	t_add_backend(v, 1, "10.1.0.1");
	lb = t_open(&t);
	t_add_backend(v, 2, "10.1.0.2"); /* generation 2: backend 2 takes half the buckets */
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	owner_new = backend_for(&t.cfg, "10.1.0.2");
	owner_old = backend_for(&t.cfg, "10.1.0.1");

	for (__u16 port = 41000; port < 41200 && !found; port++) {
		struct fp_pkt_spec s = { 0 };

		s.src = fp_pkt_addr("198.51.100.7");
		s.dst = v->addr;
		s.proto = IPPROTO_TCP;
		s.sport = port;
		s.dport = 80;
		s.tcp_flags = FP_TCP_ACK; /* mid-connection: no session entry on this LB */
		s.payload_len = 100;
		assert_int_equal(t_run_spec(lb, &s, lb_out, &lb_len), XDP_TX);
		if (t_hops_of(lb_out, lb_len, v, hops) != 2)
			continue;
		found = 1;
		assert_int_equal(hops[0], 2);
		assert_int_equal(hops[1], 1);
		/* Backend 2 has no socket for it: on to backend 1, the LB's own frame readdressed. */
		assert_int_equal(backend_run(owner_new, lb_out, lb_len, fwd, &fwd_len, &counted),
				 TC_ACT_REDIRECT);
		assert_int_equal(counted, FP_BACKEND_FORWARDED);
		assert_int_equal(fwd_len, lb_len);
		assert_memory_equal(fwd + 14 + 16, t_backend(v, 1)->addr.a + 12, 4);
		assert_int_equal(fwd[14 + 20 + 8 + 4 + 1], 1);		     /* hop index */
		assert_memory_equal(fwd + 14 + 20, lb_out + 14 + 20, 8 + 4); /* UDP, GUE */
		assert_memory_equal(fwd + 14 + 12, lb_out + 14 + 12, 4);     /* LB source */
		/* Backend 1, the last hop: delivered (no socket here either: last resort). */
		assert_int_equal(backend_run(owner_old, fwd, fwd_len, out, &out_len, &counted),
				 TC_ACT_OK);
		assert_int_equal(counted, FP_BACKEND_LAST_RESORT);
		assert_client_packet(out, out_len, &s);
	}
	assert_true(found);
	fp_backend_destroy(owner_new);
	fp_backend_destroy(owner_old);
	fp_lb_close(lb);
}

/*
 * fp_generation_pairs() knows owners, not states: a bucket whose previous owner is now
 * down still names it as previous. The LB must not offer a down backend as the second
 * hop (its flows are gone; the hop would only delay the RST), while a draining one keeps
 * its flows and is exactly the second hop they need.
 */
static void previous_owner_in_state(enum fp_backend_state state, int want_hops)
{
	__u16 before[251], hops[2];
	__u8 lb_out[FP_PKT_MAX];
	__u32 lb_len, gen;
	struct t_config t;
	struct fp_vip_cfg *v;
	struct fp_lb *lb;
	int moved = 0;

	t_config_init(&t, 251);
	v = t_add_vip(&t, "203.0.113.10", 80, IPPROTO_TCP, FP_PIN_FULL);
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	t_maglev(&t, v, before);
	lb = t_open(&t);
	v->backends[1].state = state; /* generation 2: backend 2's buckets move to 1 */
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);

	for (__u16 port = 42000; port < 42200; port++) {
		struct fp_pkt_spec s = { 0 };
		int n;

		s.src = fp_pkt_addr("198.51.100.7");
		s.dst = v->addr;
		s.proto = IPPROTO_TCP;
		s.sport = port;
		s.dport = 80;
		s.tcp_flags = FP_TCP_ACK; /* mid-connection, no session on this LB */
		s.payload_len = 100;
		if (before[fp_hash_bucket(t_hash(&s, 0), 251)] != 2)
			continue;
		moved++;
		assert_int_equal(t_run_spec(lb, &s, lb_out, &lb_len), XDP_TX);
		n = t_hops_of(lb_out, lb_len, v, hops);
		if (n != want_hops)
			fail_msg("port %u: %d hops, want %d (previous owner %s)", port, n,
				 want_hops, fp_backend_state_name(state));
		assert_int_equal(hops[0], 1);
		if (n == 2)
			assert_int_equal(hops[1], 2);
	}
	assert_true(moved > 20);
	fp_lb_close(lb);
}

static void test_down_previous_owner_is_no_second_hop(void **state)
{
	(void)state;
	T_NEED_ROOT();
	previous_owner_in_state(FP_BACKEND_DOWN, 1);
	previous_owner_in_state(FP_BACKEND_DRAINING, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lb_output_decapsulates_to_client_packet),
		cmocka_unit_test(test_moved_flow_travels_new_then_previous_owner),
		cmocka_unit_test(test_down_previous_owner_is_no_second_hop),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
