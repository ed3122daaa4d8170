// SPDX-License-Identifier: MIT
/*
 * Step 3 for TCP: on a session miss, a segment whose TSecr carries a ticket
 * (flowpin/ticket.h) naming a live backend of its VIP goes to that backend, one hop,
 * whatever the bucket says; anything else takes the normal path, counted. The tickets
 * here are made with fp_ticket_encode() under the key the loader derives, exactly as a
 * backend's egress program writes them.
 */
#include "test_lb_fixture.h"
#include <flowpin/ticket.h>
#include <bpf/libbpf.h>

#define BITS 8

static const enum fp_pinning modes[] = { FP_PIN_NONE, FP_PIN_TABLE, FP_PIN_HASH, FP_PIN_HASH_TABLE,
					 FP_PIN_FULL };

/* A TCP VIP with tickets and four backends of its family (ids 1..4). */
static struct fp_vip_cfg *ticket_vip(struct t_config *t, int v6, enum fp_pinning mode)
{
	struct fp_vip_cfg *v =
		t_add_vip(t, v6 ? "2001:db8:100::80" : "203.0.113.80", 80, IPPROTO_TCP, mode);

	v->ticket_bits = BITS;
	for (__u32 id = 1; id <= 4; id++) {
		char a[64];

		snprintf(a, sizeof(a), v6 ? "2001:db8:200::%u" : "10.1.0.%u", id);
		t_add_backend(v, id, a);
	}
	return v;
}

/* Opens the LB with one ticket VIP (ticket_vip()); backend @down_id (0: none) down. */
static struct fp_lb *open_ticket_vip(struct t_config *t, int v6, enum fp_pinning mode,
				     __u32 down_id, struct fp_vip_cfg **v)
{
	t_config_init(t, 251);
	*v = ticket_vip(t, v6, mode);
	if (down_id)
		(*v)->backends[down_id - 1].state = FP_BACKEND_DOWN;
	return t_open(t);
}

/* The TSecr a client echoes when backend @sid of a ticket VIP sent it TSval @tsval. */
static __u32 ticket_for(const struct fp_pkt_spec *s, __u16 sid, __u32 tsval)
{
	struct fp_hash_key tk;
	struct fp_flow_key f;

	fp_ticket_key_derive(&t_key, &tk);
	fp_pkt_flow_key(s, 0, &f);
	return fp_ticket_encode(tsval, fp_ticket_flow_hash(&tk, &f), sid, BITS);
}

/* Linux's data-segment options: NOP NOP TS(TSval, TSecr). */
struct ts_opts {
	__u8 b[12];
};

static void with_ts(struct fp_pkt_spec *s, struct ts_opts *o, __u32 tsval, __u32 tsecr)
{
	__u8 v[12] = { 1,
		       1,
		       8,
		       10,
		       (__u8)(tsval >> 24),
		       (__u8)(tsval >> 16),
		       (__u8)(tsval >> 8),
		       (__u8)tsval,
		       (__u8)(tsecr >> 24),
		       (__u8)(tsecr >> 16),
		       (__u8)(tsecr >> 8),
		       (__u8)tsecr };

	memcpy(o->b, v, sizeof(v));
	s->tcp_options = o->b;
	s->tcp_options_len = sizeof(o->b);
}

/* Runs @s and checks the frame is exactly the one for backend @id, one hop. */
static void expect_to(struct fp_lb *lb, const struct fp_pkt_spec *s, const struct fp_vip_cfg *v,
		      __u16 id)
{
	__u8 out[FP_PKT_MAX], want[FP_PKT_MAX];
	__u32 n;
	int wn;

	assert_int_equal(t_run_spec(lb, s, out, &n), XDP_TX);
	wn = t_expect(s, v, &id, 1, 1, want);
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, n);
}

/* The backend the normal path gives @s in hash mode: its bucket's owner. */
static __u16 owner_of(const struct t_config *t, const struct fp_vip_cfg *v,
		      const struct fp_pkt_spec *s)
{
	__u16 table[251];

	t_maglev(t, v, table);
	return table[fp_hash_bucket(t_hash(s, 0), t->cfg.table_size)];
}

/* Every mode, both families: each backend named by a ticket gets the segment. */
static void test_ticket_names_backend(void **state)
{
	(void)state;
	T_NEED_ROOT();
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		for (int v6 = 0; v6 < 2; v6++) {
			struct t_config t;
			struct fp_vip_cfg *v;
			struct fp_lb *lb;
			__u64 hits = 0;

			lb = open_ticket_vip(&t, v6, modes[m], 0, &v);
			for (__u16 sport = 20000; sport < 20040; sport++) {
				struct fp_pkt_spec s = t_client_spec(v, sport, FP_TCP_ACK, 100);
				__u16 id = (__u16)(1 + sport % 4);
				struct ts_opts o;

				with_ts(&s, &o, 1000 + sport, ticket_for(&s, id, 777 + sport));
				expect_to(lb, &s, v, id);
				hits++;
			}
			assert_int_equal(t_counter(lb, FP_CNT_TICKET_HIT), hits);
			assert_int_equal(t_counter(lb, FP_CNT_TICKET_INVALID), 0);
			t_close(lb);
		}
	}
}

/* A ticket naming a down or unknown backend, a SYN, no option: the normal path. */
static void test_ticket_normal_path(void **state)
{
	(void)state;
	T_NEED_ROOT();
	for (int v6 = 0; v6 < 2; v6++) {
		struct t_config t;
		struct fp_vip_cfg *v;
		struct fp_lb *lb;
		__u64 invalid = 0, none = 0;

		lb = open_ticket_vip(&t, v6, FP_PIN_HASH, 3, &v);
		for (__u16 sport = 30000; sport < 30030; sport++) {
			struct fp_pkt_spec s = t_client_spec(v, sport, FP_TCP_ACK, 10);
			__u16 own = owner_of(&t, v, &s);
			struct ts_opts o;

			/* Names the down backend, then one never configured (id 9). */
			with_ts(&s, &o, 5, ticket_for(&s, 3, 1234));
			expect_to(lb, &s, v, own);
			with_ts(&s, &o, 5, ticket_for(&s, 9, 1234));
			expect_to(lb, &s, v, own);
			invalid += 2;
			/* A SYN is never ticket-routed, and not counted. */
			s.tcp_flags = FP_TCP_SYN;
			with_ts(&s, &o, 5, ticket_for(&s, own == 1 ? 2 : 1, 1234));
			expect_to(lb, &s, v, own);
			/* No timestamp option. */
			s.tcp_flags = FP_TCP_ACK;
			s.tcp_options_len = 0;
			expect_to(lb, &s, v, own);
			none++;
		}
		assert_int_equal(t_counter(lb, FP_CNT_TICKET_HIT), 0);
		assert_int_equal(t_counter(lb, FP_CNT_TICKET_INVALID), invalid);
		assert_int_equal(t_counter(lb, FP_CNT_TICKET_NO_TIMESTAMP), none);
		t_close(lb);
	}
}

/*
 * Sessions win over tickets (step 4 before 3): an established flow keeps its backend
 * even when a segment names another. A ticket-routed flow goes through admission like
 * any miss: its second segment creates the session for the ticket's backend, which
 * then answers without a ticket.
 */
static void test_session_wins_and_ticket_admitted(void **state)
{
	(void)state;
	T_NEED_ROOT();
	for (int v6 = 0; v6 < 2; v6++) {
		struct t_config t;
		struct fp_vip_cfg *v;
		struct fp_lb *lb;

		lb = open_ticket_vip(&t, v6, FP_PIN_HASH_TABLE, 0, &v);
		{
			struct fp_pkt_spec s = t_client_spec(v, 40001, FP_TCP_ACK, 10);
			__u16 own = owner_of(&t, v, &s), other = (__u16)(own % 4 + 1);
			struct ts_opts o;

			/* Two plain segments: marked, promoted to a session on the owner. */
			expect_to(lb, &s, v, own);
			expect_to(lb, &s, v, own);
			assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 1);
			with_ts(&s, &o, 5, ticket_for(&s, other, 99));
			expect_to(lb, &s, v, own);
			assert_int_equal(t_counter(lb, FP_CNT_TICKET_HIT), 0);
		}
		{
			struct fp_pkt_spec s = t_client_spec(v, 40002, FP_TCP_ACK, 10);
			__u16 own = owner_of(&t, v, &s), other = (__u16)(own % 4 + 1);
			struct ts_opts o;

			with_ts(&s, &o, 5, ticket_for(&s, other, 99));
			expect_to(lb, &s, v, other); /* marked */
			expect_to(lb, &s, v, other); /* promoted */
			assert_int_equal(t_counter(lb, FP_CNT_TICKET_HIT), 2);
			assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 2);
			s.tcp_options_len = 0;
			expect_to(lb, &s, v, other); /* the session, no ticket needed */
			/* Only the first flow's two plain misses lacked a timestamp. */
			assert_int_equal(t_counter(lb, FP_CNT_TICKET_NO_TIMESTAMP), 2);
		}
		t_close(lb);
	}
}

/*
 * Forged tickets: a flood of never-seen tuples with random TSecr values evicts no
 * established session and reaches nothing but the VIP's live backends.
 */
static void test_forged_ticket_flood(void **state)
{
	(void)state;
	T_NEED_ROOT();
	for (int v6 = 0; v6 < 2; v6++) {
		struct t_config t;
		struct fp_vip_cfg *v;
		struct fp_lb *lb;
		__u16 owners[64];
		__u32 seed = 12345;

		lb = open_ticket_vip(&t, v6, FP_PIN_FULL, 4, &v); /* 4: never a destination */
		/* 64 established flows, plain segments (marked, promoted). */
		for (int i = 0; i < 64; i++) {
			struct fp_pkt_spec s = t_client_spec(v, (__u16)(50000 + i), FP_TCP_ACK, 10);
			__u8 out[FP_PKT_MAX];
			__u16 hops[2];
			__u32 n;

			assert_int_equal(t_run_spec(lb, &s, out, &n), XDP_TX);
			assert_int_equal(t_run_spec(lb, &s, out, &n), XDP_TX);
			assert_int_equal(t_hops_of(out, n, v, hops), 1);
			owners[i] = hops[0];
		}
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 64);
		for (int i = 0; i < 20000; i++) {
			struct fp_pkt_spec s =
				t_client_spec(v, (__u16)(1024 + i % 60000), FP_TCP_ACK, 0);
			__u8 out[FP_PKT_MAX];
			__u16 hops[2];
			struct ts_opts o;
			__u32 n;
			int count;

			seed = seed * 1103515245u + 12345u;
			s.src.a[15] ^= (__u8)(seed >> 8);
			s.src.a[14] ^= (__u8)(seed >> 16) | 0x80; /* never a live flow's source */
			with_ts(&s, &o, seed, seed ^ 0x5a5a5a5a);
			assert_int_equal(t_run_spec(lb, &s, out, &n), XDP_TX);
			count = t_hops_of(out, n, v, hops);
			for (int h = 0; h < count; h++)
				assert_int_not_equal(hops[h], 4);
		}
		assert_true(t_counter(lb, FP_CNT_TICKET_INVALID) > 0);
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 64);
		for (int i = 0; i < 64; i++) {
			struct fp_pkt_spec s = t_client_spec(v, (__u16)(50000 + i), FP_TCP_ACK, 10);

			expect_to(lb, &s, v, owners[i]);
		}
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT), 64);
		t_close(lb);
	}
}

/* What the verifier processed for the program with step 3 for TCP in it (reported). */
static void test_verified_instructions(void **state)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	struct t_config t;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, 251);
	ticket_vip(&t, 0, FP_PIN_FULL);
	lb = t_open(&t);
	assert_int_equal(bpf_obj_get_info_by_fd(fp_lb_prog_fd(lb), &info, &len), 0);
	fprintf(stderr, "# fp_lb: %u verified instructions (limit 1000000)\n", info.verified_insns);
	assert_true(info.verified_insns > 0 && info.verified_insns < 1000000);
	t_close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ticket_names_backend),
		cmocka_unit_test(test_ticket_normal_path),
		cmocka_unit_test(test_session_wins_and_ticket_admitted),
		cmocka_unit_test(test_forged_ticket_flood),
		cmocka_unit_test(test_verified_instructions),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
