// SPDX-License-Identifier: MIT
/*
 * An off-path attacker who knows a flow's 4-tuple must not be able to move or shorten
 * its pinning (bpf/lb.bpf.c "Pinning rule"). The LB sees one direction
 * and no sequence number it could check, so spoofed RST, FIN and SYN segments (with any
 * sequence number) are sent at established flows in every mode with a session table,
 * as a table of cases: what the attacker sends, then what must still hold: the entry
 * established, its backend unchanged, every packet of the flow (the attacker's too) at
 * that backend, and the idle timeout still the established one.
 */
#include "test_lb_fixture.h"

#define TABLE 251
static __u16 table_before[TABLE], table_after[TABLE];

struct attack_case {
	const char *what;
	__u8 segments[3]; /* TCP flags of the spoofed segments, in order */
	int n;
};

static const struct attack_case attacks[] = {
	{ "one RST", { FP_TCP_RST }, 1 },
	{ "RST+ACK", { FP_TCP_RST | FP_TCP_ACK }, 1 },
	{ "FIN+ACK", { FP_TCP_FIN | FP_TCP_ACK }, 1 },
	{ "RST, then SYN (re-point attempt)", { FP_TCP_RST, FP_TCP_SYN }, 2 },
	{ "FIN, then SYN", { FP_TCP_FIN | FP_TCP_ACK, FP_TCP_SYN }, 2 },
	{ "SYN alone", { FP_TCP_SYN }, 1 },
	{ "RST, SYN, RST", { FP_TCP_RST, FP_TCP_SYN, FP_TCP_RST }, 3 },
};
#define N_ATTACKS (sizeof(attacks) / sizeof(attacks[0]))

static const enum fp_pinning session_modes[] = { FP_PIN_TABLE, FP_PIN_HASH_TABLE, FP_PIN_FULL };

static void config(struct t_config *t, enum fp_pinning mode, __u32 transitory)
{
	struct fp_vip_cfg *v;

	t_config_init(t, TABLE);
	t->cfg.timeouts.tcp_transitory = transitory;
	v = t_add_vip(t, "203.0.113.80", 443, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.9.0.1");
	t_add_backend(v, 2, "10.9.0.2");
	t_add_backend(v, 3, "10.9.0.3");
}

static struct fp_pkt_spec flow(const struct fp_vip_cfg *v, __u32 n, __u8 flags)
{
	struct fp_pkt_spec s = {};
	char a[32];

	snprintf(a, sizeof(a), "198.51.100.%u", 1 + n % 250);
	s.src = fp_pkt_addr(a);
	s.dst = v->addr;
	s.proto = IPPROTO_TCP;
	s.sport = (__u16)(30000 + n);
	s.dport = v->port;
	s.tcp_flags = flags;
	s.seq = 0xdeadbeef; /* any: the LB has nothing to check it against */
	s.payload_len = 10;
	return s;
}

/* Sends @s, expects one hop; returns its backend id. */
static __u16 send_one(struct fp_lb *lb, const struct fp_vip_cfg *v, const struct fp_pkt_spec *s)
{
	__u8 out[FP_PKT_MAX];
	__u32 out_len;
	__u16 hops[2];

	assert_int_equal(t_run_spec(lb, s, out, &out_len), XDP_TX);
	assert_int_equal(t_hops_of(out, out_len, v, hops), 1);
	return hops[0];
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

static struct fp_session session_of(struct fp_lb *lb, const struct fp_pkt_spec *s)
{
	struct find f = {};

	fp_pkt_flow_key(s, 0, &f.key);
	assert_int_equal(fp_lb_for_each_session(lb, find_session, &f), 0);
	assert_int_equal(f.hits, 1);
	return f.found;
}

/* A connection as a client makes it: SYN, then ACKs. Returns its backend. */
static __u16 establish(struct fp_lb *lb, const struct fp_vip_cfg *v, __u32 n)
{
	struct fp_pkt_spec s = flow(v, n, FP_TCP_SYN);
	__u16 b = send_one(lb, v, &s);

	s.tcp_flags = FP_TCP_ACK;
	assert_int_equal(send_one(lb, v, &s), b);
	assert_int_equal(send_one(lb, v, &s), b);
	assert_int_equal(session_of(lb, &s).state, FP_SESS_TCP_EST);
	assert_int_equal(session_of(lb, &s).backend, b);
	return b;
}

/*
 * Every attack of the table against its own flow, in every mode with sessions: every
 * segment (the attacker's and the client's next ACK) goes to the flow's backend, and
 * the entry stays established with that backend. In `table` mode on 2b22c18, RST then
 * SYN moved the flow to the next backend of the round robin.
 */
static void test_spoofed_segments_change_nothing(void **state)
{
	static struct t_config t;

	(void)state;
	T_NEED_ROOT();
	for (size_t m = 0; m < sizeof(session_modes) / sizeof(session_modes[0]); m++) {
		struct fp_lb *lb;
		const struct fp_vip_cfg *v;

		config(&t, session_modes[m], 30);
		v = &t.vips[0];
		lb = t_open(&t);
		for (size_t a = 0; a < N_ATTACKS; a++) {
			__u32 n = (__u32)a;
			__u16 b = establish(lb, v, n);
			struct fp_pkt_spec s = flow(v, n, 0);

			for (int k = 0; k < attacks[a].n; k++) {
				s.tcp_flags = attacks[a].segments[k];
				s.seq = 0x1000u * (__u32)(k + 1);
				if (send_one(lb, v, &s) != b)
					fail_msg("%s, %s: segment %d went to another backend",
						 fp_pinning_name(session_modes[m]), attacks[a].what,
						 k + 1);
			}
			s.tcp_flags = FP_TCP_ACK;
			if (send_one(lb, v, &s) != b)
				fail_msg("%s, %s: the flow moved",
					 fp_pinning_name(session_modes[m]), attacks[a].what);
			struct fp_session e = session_of(lb, &s);
			if (e.state != FP_SESS_TCP_EST || e.backend != b)
				fail_msg("%s, %s: entry now state %u backend %u (want %u, %u)",
					 fp_pinning_name(session_modes[m]), attacks[a].what,
					 e.state, e.backend, FP_SESS_TCP_EST, b);
		}
		fp_lb_close(lb);
	}
}

/*
 * The timeout is not shortened: with a 1 s transitory timeout, an established flow hit
 * by a spoofed RST and FIN is still found after 1.3 s idle (on 2b22c18 it had expired:
 * the RST moved it to closing), in every mode with sessions.
 */
static void test_spoofed_rst_does_not_shorten(void **state)
{
	static struct t_config t[3];
	struct fp_lb *lb[3];
	__u16 backend[3];

	(void)state;
	T_NEED_ROOT();
	for (int m = 0; m < 3; m++) {
		config(&t[m], session_modes[m], 1);
		lb[m] = t_open(&t[m]);
		backend[m] = establish(lb[m], &t[m].vips[0], 77);
		struct fp_pkt_spec s = flow(&t[m].vips[0], 77, FP_TCP_RST);
		send_one(lb[m], &t[m].vips[0], &s);
		s.tcp_flags = FP_TCP_FIN | FP_TCP_ACK;
		send_one(lb[m], &t[m].vips[0], &s);
	}
	usleep(1300 * 1000);
	for (int m = 0; m < 3; m++) {
		struct fp_pkt_spec s = flow(&t[m].vips[0], 77, FP_TCP_ACK);
		__u64 hits = t_counter(lb[m], FP_CNT_SESSION_HIT);
		__u64 expired = t_counter(lb[m], FP_CNT_SESSION_EXPIRED);

		assert_int_equal(send_one(lb[m], &t[m].vips[0], &s), backend[m]);
		if (t_counter(lb[m], FP_CNT_SESSION_EXPIRED) != expired ||
		    t_counter(lb[m], FP_CNT_SESSION_HIT) != hits + 1)
			fail_msg("%s: the entry expired after a spoofed RST",
				 fp_pinning_name(session_modes[m]));
		fp_lb_close(lb[m]);
	}
}

/*
 * Hash modes: after a table change, a SYN reusing the ports of a live entry goes to the
 * entry's backend (where the connection's ACKs will go too), not to the bucket's new
 * owner (2b22c18 sent the SYN to the new owner and the ACKs to the entry's backend).
 */
static void test_syn_follows_live_entry(void **state)
{
	static struct t_config t;
	enum fp_pinning modes[2] = { FP_PIN_HASH_TABLE, FP_PIN_FULL };

	(void)state;
	T_NEED_ROOT();
	for (int m = 0; m < 2; m++) {
		const struct fp_vip_cfg *v;
		struct fp_lb *lb;
		__u16 first[200];
		__u32 gen, moved = 0;

		config(&t, modes[m], 30);
		v = &t.vips[0];
		lb = t_open(&t);
		t_maglev(&t, v, table_before);
		for (__u32 n = 0; n < 200; n++)
			first[n] = establish(lb, v, n);
		t_add_backend(&t.vips[0], 4, "10.9.0.4");
		assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
		t_maglev(&t, v, table_after);
		for (__u32 n = 0; n < 200; n++) {
			struct fp_pkt_spec s = flow(v, n, FP_TCP_SYN);
			__u32 bucket = fp_hash_bucket(t_hash(&s, 0), TABLE);

			if (table_before[bucket] == table_after[bucket])
				continue;
			moved++;
			if (send_one(lb, v, &s) != first[n])
				fail_msg("%s: flow %u: the SYN left the entry's backend %u",
					 fp_pinning_name(modes[m]), n, first[n]);
			s.tcp_flags = FP_TCP_ACK;
			assert_int_equal(send_one(lb, v, &s), first[n]);
		}
		assert_true(moved > 10);
		fp_lb_close(lb);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spoofed_segments_change_nothing),
		cmocka_unit_test(test_spoofed_rst_does_not_shorten),
		cmocka_unit_test(test_syn_follows_live_entry),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
