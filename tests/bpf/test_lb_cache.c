// SPDX-License-Identifier: MIT
/*
 * The LB program's per-CPU caches (flowpin/maps.h struct fp_flow_cache_entry and
 * struct fp_vip_cache_entry) never change an answer: a flow served from the flow cache
 * gets the exact frame the session table gives, and every apply or session clear is
 * seen by the very next packet (VIP removed, backend down, new generation, sessions
 * cleared). Packets that change session state (FIN, RST, SYN) bypass the cache.
 */
#include "test_lb_fixture.h"

#define TABLE 251

static void config(struct t_config *t)
{
	struct fp_vip_cfg *v;

	t_config_init(t, TABLE);
	v = t_add_vip(t, "203.0.113.80", 80, IPPROTO_TCP, FP_PIN_FULL);
	t_add_backend(v, 1, "10.9.0.1");
	t_add_backend(v, 2, "10.9.0.2");
	v = t_add_vip(t, "203.0.113.81", 0, IPPROTO_UDP, FP_PIN_HASH_TABLE);
	t_add_backend(v, 1, "10.9.1.1");
}

static struct fp_pkt_spec flow(const struct fp_vip_cfg *v, __u16 sport, __u8 flags)
{
	struct fp_pkt_spec s = {};

	s.src = fp_pkt_addr("198.51.100.99");
	s.dst = v->addr;
	s.proto = v->proto;
	s.sport = sport;
	s.dport = v->port ? v->port : 4433;
	s.tcp_flags = flags;
	s.payload_len = 10;
	return s;
}

/* Runs @s, expects XDP_TX; returns hops[0] and checks the frame is exactly the one the
 * session's backend and generation @gen give. */
static __u16 send_expect(struct fp_lb *lb, const struct fp_vip_cfg *v, const struct fp_pkt_spec *s,
			 __u32 gen)
{
	__u8 out[FP_PKT_MAX], want[FP_PKT_MAX];
	__u32 out_len;
	__u16 hops[2];
	int n;

	assert_int_equal(t_run_spec(lb, s, out, &out_len), XDP_TX);
	n = t_hops_of(out, out_len, v, hops);
	assert_int_equal(n, 1);
	assert_int_equal(t_expect(s, v, hops, 1, gen, want), (int)out_len);
	assert_memory_equal(out, want, out_len);
	return hops[0];
}

/* The third packet of a flow comes from the cache, byte for byte what the session gave. */
static void test_cache_hit_same_frame(void **state)
{
	static struct t_config t;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	config(&t);
	lb = t_open(&t);
	for (int i = 0; i < 2; i++) {
		const struct fp_vip_cfg *v = &t.vips[i];
		struct fp_pkt_spec s = flow(v, 40000, FP_TCP_ACK);
		__u64 hit = t_counter(lb, FP_CNT_SESSION_HIT);
		__u64 cached = t_counter(lb, FP_CNT_FLOW_CACHE_HIT);
		__u16 b = send_expect(lb, v, &s, 1); /* probation */

		assert_int_equal(send_expect(lb, v, &s, 1), b); /* creates the session */

		assert_int_equal(send_expect(lb, v, &s, 1), b); /* session hit, fills the cache */
		assert_int_equal(t_counter(lb, FP_CNT_FLOW_CACHE_HIT) - cached, 0);
		for (int k = 0; k < 3; k++)
			assert_int_equal(send_expect(lb, v, &s, 1), b);
		assert_int_equal(t_counter(lb, FP_CNT_FLOW_CACHE_HIT) - cached, 3);
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT) - hit, 4);
	}
	fp_lb_close(lb);
}

struct find {
	struct fp_flow_key key;
	struct fp_session found;
	int hits;
};

static int find_session(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	struct find *f = ctx;

	if (!memcmp(key, &f->key, sizeof(*key))) {
		f->found = *s;
		f->hits++;
	}
	return 0;
}

/* FIN and RST never come from the cache; they reach the session entry, which they
 * leave established (bpf/lb.bpf.c pinning rule). */
static void test_fin_bypasses_cache(void **state)
{
	static struct t_config t;
	struct fp_vip_cfg *v;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	config(&t);
	v = &t.vips[0];
	lb = t_open(&t);
	struct fp_pkt_spec s = flow(v, 40001, FP_TCP_ACK);
	for (int k = 0; k < 3; k++)
		send_expect(lb, v, &s, 1);
	__u64 cached = t_counter(lb, FP_CNT_FLOW_CACHE_HIT);
	s.tcp_flags = FP_TCP_FIN | FP_TCP_ACK;
	send_expect(lb, v, &s, 1);
	s.tcp_flags = FP_TCP_RST;
	send_expect(lb, v, &s, 1);
	assert_int_equal(t_counter(lb, FP_CNT_FLOW_CACHE_HIT) - cached, 0);

	/* The session entry was read (no cache hit above) and is unchanged. */
	struct find f = {};
	fp_pkt_flow_key(&s, 0, &f.key);
	assert_int_equal(fp_lb_for_each_session(lb, find_session, &f), 0);
	assert_int_equal(f.hits, 1);
	assert_int_equal(f.found.state, FP_SESS_TCP_EST);
	fp_lb_close(lb);
}

/* Every kind of apply is seen by the next packet of a cached flow. */
static void test_apply_invalidates(void **state)
{
	static struct t_config t;
	struct fp_vip_cfg *v;
	struct fp_lb *lb;
	__u32 gen;

	(void)state;
	T_NEED_ROOT();
	config(&t);
	v = &t.vips[0];
	lb = t_open(&t);
	struct fp_pkt_spec s = flow(v, 40002, FP_TCP_ACK);
	__u16 b = send_expect(lb, v, &s, 1); /* probation */
	send_expect(lb, v, &s, 1);	     /* promoted */
	send_expect(lb, v, &s, 1);	     /* session hit */
	send_expect(lb, v, &s, 1);	     /* from the cache */

	/* A new generation (backend 3 added): same backend, the new generation on the wire. */
	t_add_backend(v, 3, "10.9.0.3");
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	assert_int_equal(gen, 2);
	__u64 cached = t_counter(lb, FP_CNT_FLOW_CACHE_HIT);
	assert_int_equal(send_expect(lb, v, &s, gen), b);
	assert_int_equal(t_counter(lb, FP_CNT_FLOW_CACHE_HIT) - cached, 0);
	assert_int_equal(send_expect(lb, v, &s, gen), b); /* cached again */
	assert_int_equal(t_counter(lb, FP_CNT_FLOW_CACHE_HIT) - cached, 1);

	/* The session's backend goes down: re-hashed at once. */
	for (size_t i = 0; i < v->n_backends; i++)
		if (v->backends[i].id == b)
			v->backends[i].state = FP_BACKEND_DOWN;
	__u64 down = t_counter(lb, FP_CNT_SESSION_BACKEND_DOWN);
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	__u8 out[FP_PKT_MAX];
	__u32 out_len;
	__u16 hops[2];
	assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
	t_hops_of(out, out_len, v, hops);
	assert_int_not_equal(hops[0], b);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_BACKEND_DOWN) - down, 1);

	/* The VIP is removed: the next packet is not for a VIP (nor is it cached as one). */
	t.vips[0] = t.vips[1];
	t.cfg.n_vips = 1;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	__u64 not_vip = t_counter(lb, FP_CNT_PASS_NOT_VIP);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_PASS);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_PASS);
	assert_int_equal(t_counter(lb, FP_CNT_PASS_NOT_VIP) - not_vip, 2);
	fp_lb_close(lb);
}

/* fp_lb_clear_sessions (replay --lb-state fresh): the next packet is a miss. */
static void test_clear_sessions_invalidates(void **state)
{
	static struct t_config t;
	struct fp_vip_cfg *v;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	config(&t);
	v = &t.vips[1];
	lb = t_open(&t);
	struct fp_pkt_spec s = flow(v, 40003, 0);
	for (int k = 0; k < 3; k++)
		send_expect(lb, v, &s, 1);
	assert_int_equal(fp_lb_clear_sessions(lb), 0);
	__u64 miss = t_counter(lb, FP_CNT_MISS_NON_SYN);
	__u64 cached = t_counter(lb, FP_CNT_FLOW_CACHE_HIT);
	send_expect(lb, v, &s, 1);
	assert_int_equal(t_counter(lb, FP_CNT_MISS_NON_SYN) - miss, 1);
	assert_int_equal(t_counter(lb, FP_CNT_FLOW_CACHE_HIT) - cached, 0);
	fp_lb_close(lb);
}

/*
 * Two established flows sharing one flow cache slot: the first one's live entry keeps
 * the slot (a busy node does not evict on every miss); the second is served from the
 * session table, the same frame.
 */
static void test_live_slot_kept(void **state)
{
	static struct t_config t;
	struct fp_flow_key ka, kb;
	struct fp_vip_cfg *v;
	struct fp_lb *lb;
	__u16 sport = 41000;

	(void)state;
	T_NEED_ROOT();
	config(&t);
	v = &t.vips[0];
	lb = t_open(&t);
	struct fp_pkt_spec a = flow(v, 40004, FP_TCP_ACK), b;
	fp_pkt_flow_key(&a, 0, &ka);
	do {
		b = flow(v, sport++, FP_TCP_ACK);
		fp_pkt_flow_key(&b, 0, &kb);
	} while (fp_flow_cache_slot(&kb) != fp_flow_cache_slot(&ka));
	__u16 ba = send_expect(lb, v, &a, 1);
	send_expect(lb, v, &a, 1);
	send_expect(lb, v, &a, 1); /* session hit: a fills the slot */
	__u16 bb = send_expect(lb, v, &b, 1);
	send_expect(lb, v, &b, 1);
	__u64 hit = t_counter(lb, FP_CNT_SESSION_HIT);
	__u64 cached = t_counter(lb, FP_CNT_FLOW_CACHE_HIT);
	assert_int_equal(send_expect(lb, v, &b, 1), bb); /* session hit: the slot is a's */
	assert_int_equal(send_expect(lb, v, &b, 1), bb);
	assert_int_equal(t_counter(lb, FP_CNT_FLOW_CACHE_HIT) - cached, 0);
	assert_int_equal(send_expect(lb, v, &a, 1), ba); /* still cached */
	assert_int_equal(t_counter(lb, FP_CNT_FLOW_CACHE_HIT) - cached, 1);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT) - hit, 3);
	fp_lb_close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_hit_same_frame),
		cmocka_unit_test(test_fin_bypasses_cache),
		cmocka_unit_test(test_apply_invalidates),
		cmocka_unit_test(test_clear_sessions_invalidates),
		cmocka_unit_test(test_live_slot_kept),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
