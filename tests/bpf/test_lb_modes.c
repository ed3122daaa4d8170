// SPDX-License-Identifier: MIT
/*
 * Pinning modes and table generations of the LB XDP program: each mode does exactly
 * what it says, two separately loaded instances agree, a backend change keeps
 * established flows (session hit) and gives moved buckets a hop list only in `full`,
 * applies that need a restart are refused, and another process can apply through pins.
 */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include "test_lb_fixture.h"

#define TABLE 65537
static __u16 table_a[TABLE], table_b[TABLE], table_c[TABLE];

static void base_config(struct t_config *t, enum fp_pinning mode)
{
	struct fp_vip_cfg *v;

	t_config_init(t, TABLE);
	v = t_add_vip(t, "203.0.113.10", 80, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	t_add_backend(v, 3, "10.1.0.3");
	v = t_add_vip(t, "2001:db8:100::10", 443, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "2001:db8:200::1");
	t_add_backend(v, 2, "2001:db8:200::2");
	t_add_backend(v, 3, "2001:db8:200::3");
}

static struct fp_pkt_spec flow_of(const struct fp_vip_cfg *v, __u32 n, __u8 flags)
{
	struct fp_pkt_spec s = {};
	char a[64];

	if (fp_addr_v4(&v->addr))
		snprintf(a, sizeof(a), "198.51.%u.%u", 100 + (n >> 16) % 100, (n >> 8) & 0xff);
	else
		snprintf(a, sizeof(a), "2001:db8:c:%x::%x", (n >> 16) & 0xffff, (n >> 8) & 0xff);
	s.src = fp_pkt_addr(a);
	s.dst = v->addr;
	s.proto = v->proto;
	s.sport = (__u16)(10000 + (n & 0xff));
	s.dport = v->port;
	s.tcp_flags = flags;
	s.payload_len = 20;
	return s;
}

/* Runs @s, expects XDP_TX, returns the hop count and fills @hops and *@gen. */
static int send_flow(struct fp_lb *lb, const struct fp_vip_cfg *v, const struct fp_pkt_spec *s,
		     __u16 *hops, __u32 *gen)
{
	__u8 out[FP_PKT_MAX];
	__u32 out_len;
	int n;

	assert_int_equal(t_run_spec(lb, s, out, &out_len), XDP_TX);
	n = t_hops_of(out, out_len, v, hops);
	if (gen) {
		size_t priv = 14 + (out[12] == 0x86 ? 40 : 20) + 8 + 4;

		*gen = (__u32)out[priv + 4] << 24 | out[priv + 5] << 16 | out[priv + 6] << 8 |
		       out[priv + 7];
	}
	return n;
}

/* Two instances loaded separately send every mid-flow packet without session alike. */
static void test_two_instances_agree(void **state)
{
	static struct t_config t;
	__u8 out_a[FP_PKT_MAX], out_b[FP_PKT_MAX];
	struct fp_lb *a, *b;

	(void)state;
	T_NEED_ROOT();
	base_config(&t, FP_PIN_FULL);
	a = t_open(&t);
	b = t_open(&t);
	for (size_t vi = 0; vi < t.cfg.n_vips; vi++) {
		for (__u32 n = 0; n < 300; n++) {
			struct fp_pkt_spec s = flow_of(&t.vips[vi], n * 7919, FP_TCP_ACK);
			__u32 la, lb_len;

			/* Instance a saw the flow before (its session: the first packet
			 * puts it in probation, the second promotes it), b never did. */
			assert_int_equal(t_run_spec(a, &s, NULL, NULL), XDP_TX);
			assert_int_equal(t_run_spec(a, &s, NULL, NULL), XDP_TX);
			assert_int_equal(t_run_spec(a, &s, out_a, &la), XDP_TX);
			assert_int_equal(t_run_spec(b, &s, out_b, &lb_len), XDP_TX);
			assert_int_equal(la, lb_len);
			assert_memory_equal(out_a, out_b, la);
		}
	}
	assert_true(t_counter(a, FP_CNT_SESSION_HIT) >= 600);
	assert_int_equal(t_counter(b, FP_CNT_SESSION_HIT), 0);
	fp_lb_close(a);
	fp_lb_close(b);
}

/*
 * After backend 4 is added: flows with a session keep their backend (hash+table, full);
 * a no-session packet of a moved bucket carries [new owner, old owner] in full only.
 */
static void generation_case(enum fp_pinning mode)
{
	static struct t_config t;
	const struct fp_vip_cfg *v;
	struct fp_lb *lb;
	__u32 gen, moved_checked = 0, kept_checked = 0;
	__u16 hops[2];

	base_config(&t, mode);
	v = &t.vips[0];
	lb = t_open(&t);
	t_maglev(&t, v, table_a);
	/* Establish flows 0..1999: their first non-SYN packet puts them in probation, the
	 * second creates the entry. */
	for (__u32 n = 0; n < 2000; n++) {
		struct fp_pkt_spec s = flow_of(v, n, FP_TCP_SYN);

		send_flow(lb, v, &s, hops, NULL);
		s.tcp_flags = FP_TCP_ACK;
		assert_int_equal(send_flow(lb, v, &s, hops, &gen), 1);
		assert_int_equal(gen, 1);
		assert_int_equal(send_flow(lb, v, &s, hops, &gen), 1);
	}
	if (mode != FP_PIN_HASH)
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 2000);
	else
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 0);

	t_add_backend(&t.vips[0], 4, "10.1.0.4");
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	assert_int_equal(gen, 2);
	t_maglev(&t, v, table_b);

	__u64 inserts = t_counter(lb, FP_CNT_SESSION_INSERT);
	__u64 marks = t_counter(lb, FP_CNT_PROBATION_INSERT);
	__u64 hop_lists = t_counter(lb, FP_CNT_HOP_LIST);
	__u32 new_moved = 0;
	for (__u32 n = 0; n < 4000; n++) {
		struct fp_pkt_spec s = flow_of(v, n, FP_TCP_ACK);
		__u32 bucket = fp_hash_bucket(t_hash(&s, 0), TABLE);
		__u16 before = table_a[bucket], after = table_b[bucket];
		int count = send_flow(lb, v, &s, hops, &gen);

		assert_int_equal(gen, 2);
		if (n < 2000 && mode != FP_PIN_HASH) {
			/* Established: the session wins whatever the table says now. */
			assert_int_equal(count, 1);
			assert_int_equal(hops[0], before);
			kept_checked += before != after;
			continue;
		}
		assert_int_equal(hops[0], after);
		if (before == after) {
			assert_int_equal(count, 1);
			continue;
		}
		moved_checked++;
		new_moved += n >= 2000;
		if (mode == FP_PIN_FULL) {
			assert_int_equal(count, 2);
			assert_int_equal(hops[1], before);
		} else {
			assert_int_equal(count, 1);
		}
	}
	/* Adding 1 backend to 3 moves about a quarter of the buckets: both kinds seen. */
	assert_true(moved_checked > 200);
	if (mode != FP_PIN_HASH)
		assert_true(kept_checked > 200);
	if (mode == FP_PIN_FULL) {
		/* Moved buckets without a session: hop list every time, nothing remembered.
		 * The others' first packet: a probation mark, no entry yet. */
		assert_int_equal(t_counter(lb, FP_CNT_HOP_LIST) - hop_lists, new_moved);
		assert_int_equal(t_counter(lb, FP_CNT_PROBATION_INSERT) - marks, 2000 - new_moved);
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT) - inserts, 0);
	}
	/* Re-applying the same config changes nothing: pairs (and hop lists) stay. */
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	assert_int_equal(gen, 2);
	if (mode == FP_PIN_FULL) {
		for (__u32 n = 4000; n < 6000; n++) {
			struct fp_pkt_spec s = flow_of(v, n, FP_TCP_ACK);
			__u32 bucket = fp_hash_bucket(t_hash(&s, 0), TABLE);

			if (table_a[bucket] == table_b[bucket])
				continue;
			assert_int_equal(send_flow(lb, v, &s, hops, NULL), 2);
			break;
		}
	}
	fp_lb_close(lb);
}

static void test_generations_full(void **state)
{
	(void)state;
	T_NEED_ROOT();
	generation_case(FP_PIN_FULL);
}

static void test_generations_hash_table(void **state)
{
	(void)state;
	T_NEED_ROOT();
	generation_case(FP_PIN_HASH_TABLE);
}

static void test_generations_hash(void **state)
{
	(void)state;
	T_NEED_ROOT();
	generation_case(FP_PIN_HASH);
}

/*
 * full mode, a bucket moved to a backend of the other family: the previous owner cannot
 * be a hop of that packet (hops share the outer family), so one hop, counted.
 */
static void test_hop_family_mismatch(void **state)
{
	static struct t_config t;
	struct fp_vip_cfg *v;
	struct fp_lb *lb;
	__u16 hops[2];
	__u32 checked = 0;

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, TABLE);
	v = t_add_vip(&t, "203.0.113.80", 80, IPPROTO_TCP, FP_PIN_FULL);
	t_add_backend(v, 1, "10.9.0.1");
	t_add_backend(v, 2, "10.9.0.2");
	lb = t_open(&t);
	t_maglev(&t, v, table_a);
	t_add_backend(v, 3, "2001:db8:900::3");
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	t_maglev(&t, v, table_b);
	__u64 family = t_counter(lb, FP_CNT_HOP_FAMILY);
	for (__u32 n = 0; n < 1000; n++) {
		struct fp_pkt_spec s = flow_of(v, n, FP_TCP_ACK);
		__u32 bucket = fp_hash_bucket(t_hash(&s, 0), TABLE);

		if (table_a[bucket] == table_b[bucket])
			continue;
		assert_int_equal(table_b[bucket], 3);
		assert_int_equal(send_flow(lb, v, &s, hops, NULL), 1);
		assert_int_equal(hops[0], 3);
		checked++;
	}
	assert_true(checked > 100);
	assert_int_equal(t_counter(lb, FP_CNT_HOP_FAMILY) - family, checked);
	fp_lb_close(lb);
}

static int grab_vip(const struct fp_vip_key *key, const struct fp_vip *vip, void *ctx)
{
	(void)key;
	*(struct fp_vip *)ctx = *vip;
	return 1; /* the first VIP is enough */
}

/* The active slot holds exactly (new Maglev owner, owner before the apply) per bucket. */
static void test_bucket_pairs_in_map(void **state)
{
	static struct t_config t;
	struct fp_bucket b;
	struct fp_vip vip;
	struct fp_lb *lb;
	__u32 moved = 0;

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, TABLE);
	struct fp_vip_cfg *v = t_add_vip(&t, "203.0.113.90", 80, IPPROTO_TCP, FP_PIN_FULL);
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	t_add_backend(v, 3, "10.1.0.3");
	lb = t_open(&t);
	t_maglev(&t, v, table_a);
	assert_int_equal(fp_lb_for_each_vip(lb, grab_vip, &vip), 1);
	for (__u32 i = 0; i < TABLE; i++) {
		assert_int_equal(fp_lb_read_bucket(lb, &vip, i, &b), 0);
		assert_int_equal(b.owner, table_a[i]);
		assert_int_equal(b.previous, table_a[i]); /* first generation: nothing moved */
	}
	v->backends[0].state = FP_BACKEND_DRAINING; /* weight 0: its buckets move */
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	t_maglev(&t, v, table_b);
	assert_int_equal(fp_lb_for_each_vip(lb, grab_vip, &vip), 1);
	assert_int_equal(vip.slot, 1);
	assert_int_equal(vip.generation, 2);
	for (__u32 i = 0; i < TABLE; i++) {
		assert_int_equal(fp_lb_read_bucket(lb, &vip, i, &b), 0);
		assert_int_equal(b.owner, table_b[i]);
		assert_int_equal(b.previous, table_a[i]);
		assert_int_not_equal(b.owner, 1);
		moved += b.owner != b.previous;
	}
	/* Draining one of three moves its third of the table, and nothing else. */
	assert_true(moved > TABLE / 3 - 100 && moved < TABLE / 3 + 100);
	fp_lb_close(lb);
}

/*
 * Two changes in a row: a bucket moved by the first change and left alone by the second
 * keeps the first change's previous owner as its second hop, so flows moved once survive
 * an unrelated later change; a remembered owner that goes down is forgotten.
 */
static void test_two_changes_remember_older_owner(void **state)
{
	static struct t_config t;
	struct fp_bucket b;
	struct fp_vip vip;
	struct fp_lb *lb;
	__u32 remembered = 0, moved_now = 0;

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, TABLE);
	struct fp_vip_cfg *v = t_add_vip(&t, "203.0.113.91", 80, IPPROTO_TCP, FP_PIN_FULL);
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	lb = t_open(&t);
	t_maglev(&t, v, table_a);
	t_add_backend(v, 3, "10.1.0.3");
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	t_maglev(&t, v, table_b);
	t_add_backend(v, 4, "10.1.0.4");
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	t_maglev(&t, v, table_c);
	assert_int_equal(fp_lb_for_each_vip(lb, grab_vip, &vip), 1);
	for (__u32 i = 0; i < TABLE; i++) {
		assert_int_equal(fp_lb_read_bucket(lb, &vip, i, &b), 0);
		assert_int_equal(b.owner, table_c[i]);
		if (table_c[i] != table_b[i]) {
			assert_int_equal(b.previous, table_b[i]); /* moved by the second change */
			moved_now++;
		} else {
			assert_int_equal(b.previous, table_a[i]); /* remembered from the first */
			remembered += table_a[i] != table_b[i];
		}
	}
	assert_true(remembered > TABLE / 5); /* about a third moved to 3 in the first change */
	assert_true(moved_now > TABLE / 8);

	/* Backend 1 goes down: buckets that only remembered it forget it. */
	v->backends[0].state = FP_BACKEND_DOWN;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	assert_int_equal(fp_lb_for_each_vip(lb, grab_vip, &vip), 1);
	for (__u32 i = 0; i < TABLE; i++) {
		assert_int_equal(fp_lb_read_bucket(lb, &vip, i, &b), 0);
		if (b.owner != 1 && table_c[i] == b.owner)
			assert_int_not_equal(b.previous, 1);
	}
	fp_lb_close(lb);
}

/* none: flow hash mod the number of active backends, over the list sorted by id. */
static void test_mode_none(void **state)
{
	static struct t_config t;
	struct fp_vip_cfg *v;
	struct fp_lb *lb;
	__u16 hops[2];

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, 251);
	v = t_add_vip(&t, "203.0.113.50", 80, IPPROTO_TCP, FP_PIN_NONE);
	t_add_backend(v, 9, "10.5.0.9");
	t_add_backend(v, 2, "10.5.0.2");
	t_add_backend(v, 5, "10.5.0.5");
	t_add_backend(v, 7, "10.5.0.7")->state = FP_BACKEND_DRAINING; /* not in the list */
	lb = t_open(&t);
	const __u16 list[3] = { 2, 5, 9 };
	for (__u32 n = 0; n < 500; n++) {
		struct fp_pkt_spec s = flow_of(v, n, n & 1 ? FP_TCP_ACK : FP_TCP_SYN);

		assert_int_equal(send_flow(lb, v, &s, hops, NULL), 1);
		assert_int_equal(hops[0], list[t_hash(&s, 0) % 3]);
	}
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 0);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT), 0);
	fp_lb_close(lb);
}

/* table: new flows round-robin (no hash), remembered from the first packet on. */
static void test_mode_table(void **state)
{
	static struct t_config t;
	struct fp_vip_cfg *v;
	struct fp_lb *lb;
	__u16 hops[2], first[300];
	int seen[4] = { 0 };

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, 251);
	v = t_add_vip(&t, "203.0.113.51", 80, IPPROTO_TCP, FP_PIN_TABLE);
	t_add_backend(v, 1, "10.6.0.1");
	t_add_backend(v, 2, "10.6.0.2");
	t_add_backend(v, 3, "10.6.0.3");
	lb = t_open(&t);
	for (__u32 n = 0; n < 300; n++) {
		struct fp_pkt_spec s = flow_of(v, n, FP_TCP_SYN);

		send_flow(lb, v, &s, hops, NULL);
		first[n] = hops[0];
		seen[hops[0]]++;
		/* Round robin: three consecutive new flows cover the three backends. */
		if (n % 3 == 2)
			assert_true(first[n] != first[n - 1] && first[n] != first[n - 2] &&
				    first[n - 1] != first[n - 2]);
	}
	assert_int_equal(seen[1], 100);
	assert_int_equal(seen[2], 100);
	assert_int_equal(seen[3], 100);
	/* A SYN is remembered in probation with its backend, not in the session table. */
	assert_int_equal(t_counter(lb, FP_CNT_PROBATION_INSERT), 300);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 0);
	/* A retransmitted SYN goes where the first went, and promotes nothing. */
	for (__u32 n = 0; n < 300; n++) {
		struct fp_pkt_spec s = flow_of(v, n, FP_TCP_SYN);

		send_flow(lb, v, &s, hops, NULL);
		assert_int_equal(hops[0], first[n]);
	}
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 0);
	/* Later packets follow the first, wherever the round robin is now: the handshake
	 * ACK promotes the flow, the next packet is a session hit. */
	for (int round = 0; round < 2; round++)
		for (__u32 n = 0; n < 300; n++) {
			struct fp_pkt_spec s = flow_of(v, n, FP_TCP_ACK);

			send_flow(lb, v, &s, hops, NULL);
			assert_int_equal(hops[0], first[n]);
		}
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 300);
	assert_int_equal(t_counter(lb, FP_CNT_PROBATION_INSERT), 300);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT), 300);
	fp_lb_close(lb);
}

/* A session whose backend is marked down is ignored: the flow is re-hashed. */
static void test_session_backend_down(void **state)
{
	static struct t_config t;
	const struct fp_vip_cfg *v;
	struct fp_lb *lb;
	__u16 hops[2];
	__u32 gen;

	(void)state;
	T_NEED_ROOT();
	base_config(&t, FP_PIN_HASH_TABLE);
	v = &t.vips[1];
	lb = t_open(&t);
	t_maglev(&t, v, table_a);
	__u32 n = 0;
	struct fp_pkt_spec s;
	do {
		s = flow_of(v, n++, FP_TCP_ACK);
	} while (table_a[fp_hash_bucket(t_hash(&s, 0), TABLE)] != 2);
	send_flow(lb, v, &s, hops, NULL); /* probation */
	send_flow(lb, v, &s, hops, NULL); /* promoted: the session entry */
	assert_int_equal(hops[0], 2);
	t.vips[1].backends[1].state = FP_BACKEND_DOWN;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	t_maglev(&t, v, table_b);
	__u64 down = t_counter(lb, FP_CNT_SESSION_BACKEND_DOWN);
	send_flow(lb, v, &s, hops, NULL);
	assert_int_not_equal(hops[0], 2);
	assert_int_equal(hops[0], table_b[fp_hash_bucket(t_hash(&s, 0), TABLE)]);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_BACKEND_DOWN) - down, 1);
	fp_lb_close(lb);
}

static int grab_backend(const struct fp_backend_entry *b, const struct fp_traffic *t, void *ctx)
{
	struct fp_backend_entry *out = ctx;

	(void)t;
	if (b->id < 8)
		out[b->id] = *b;
	return 0;
}

/* Backend entries 1..7 of VIP block @index (all zero: no entry). */
static void backends_of(struct fp_lb *lb, __u32 index, struct fp_backend_entry out[8])
{
	memset(out, 0, 8 * sizeof(*out));
	assert_int_equal(fp_lb_for_each_backend(lb, index, grab_backend, out), 0);
}

/*
 * A backend removed from the config (not marked down) takes no new flow, but flows
 * with a session entry keep going to it, through later applies too, in every mode with
 * a session table; its entry is flagged removed. Marking it down cuts them off. The
 * entry is emptied once no session names it, and an id added again gets its new
 * address.
 */
static void removed_backend_case(enum fp_pinning mode)
{
	static struct t_config t;
	struct fp_backend_cfg all_b[4];
	struct fp_vip_cfg all;
	struct fp_backend_entry be[8];
	struct fp_vip_cfg *v;
	struct fp_pkt_spec est[40];
	struct fp_lb *lb;
	__u32 n_est = 0, gen;
	__u16 hops[2];

	t_config_init(&t, 251);
	v = t_add_vip(&t, "203.0.113.80", 80, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.9.0.1");
	t_add_backend(v, 2, "10.9.0.2");
	t_add_backend(v, 3, "10.9.0.3");
	/* Decodes hop addresses whatever the config says now. */
	all = *v;
	memcpy(all_b, v->backends, 3 * sizeof(all_b[0]));
	all_b[3] = all_b[1];
	all.backends = all_b;
	all.n_backends = 3;
	lb = t_open(&t);
	/* Established flows (two mid-flow packets create the entry in both modes). */
	for (__u32 n = 0; n_est < 40 && n < 2000; n++) {
		struct fp_pkt_spec s = flow_of(v, n, FP_TCP_ACK);

		send_flow(lb, &all, &s, hops, NULL);
		send_flow(lb, &all, &s, hops, NULL);
		if (hops[0] == 2)
			est[n_est++] = s;
	}
	assert_int_equal(n_est, 40);

	/* b2 leaves the config (b3 takes its place in the array). */
	v->backends[1] = v->backends[2];
	v->n_backends = 2;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	backends_of(lb, 0, be);
	assert_int_equal(be[2].id, 2);
	assert_true(be[2].flags & FP_BACKEND_F_REMOVED);
	assert_false(be[1].flags & FP_BACKEND_F_REMOVED);
	__u64 down = t_counter(lb, FP_CNT_SESSION_BACKEND_DOWN);
	for (int round = 0; round < 2; round++) /* the second from the flow cache */
		for (__u32 i = 0; i < n_est; i++) {
			send_flow(lb, &all, &est[i], hops, NULL);
			assert_int_equal(hops[0], 2);
		}
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_BACKEND_DOWN) - down, 0);
	for (__u32 n = 5000; n < 5300; n++) {
		struct fp_pkt_spec s = flow_of(v, n, n & 1 ? FP_TCP_ACK : FP_TCP_SYN);

		send_flow(lb, &all, &s, hops, NULL);
		assert_int_not_equal(hops[0], 2);
	}

	/* Another change (b4 added): b2's sessions still live, so it still serves them. */
	t_add_backend(v, 4, "10.9.0.4");
	all_b[3] = v->backends[2];
	all.n_backends = 4;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	backends_of(lb, 0, be);
	assert_int_equal(be[2].id, 2);
	for (__u32 i = 0; i < n_est; i++) {
		send_flow(lb, &all, &est[i], hops, NULL);
		assert_int_equal(hops[0], 2);
	}

	/* Marked down (added back as down): its flows are cut off, counted. */
	t_add_backend(v, 2, "10.9.0.2")->state = FP_BACKEND_DOWN;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	backends_of(lb, 0, be);
	assert_true(be[2].flags & FP_BACKEND_F_DOWN);
	assert_false(be[2].flags & FP_BACKEND_F_REMOVED);
	down = t_counter(lb, FP_CNT_SESSION_BACKEND_DOWN);
	for (__u32 i = 0; i < n_est; i++) {
		send_flow(lb, &all, &est[i], hops, NULL);
		assert_int_not_equal(hops[0], 2);
	}
	assert_true(t_counter(lb, FP_CNT_SESSION_BACKEND_DOWN) - down >= 1);
	fp_lb_close(lb);

	/* Removed, no session names it any more: the next apply empties the entry. */
	t_config_init(&t, 251);
	v = t_add_vip(&t, "203.0.113.80", 80, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.9.0.1");
	t_add_backend(v, 2, "10.9.0.2");
	lb = t_open(&t);
	for (int k = 0; k < 2; k++)
		for (__u32 i = 0; i < n_est; i++)
			send_flow(lb, &all, &est[i], hops, NULL);
	v->n_backends = 1;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	backends_of(lb, 0, be);
	assert_int_equal(be[2].id, 2); /* kept in the apply that removes it */
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	backends_of(lb, 0, be);
	assert_int_equal(be[2].id, 2); /* sessions name it (some of est went there) */
	/* Added again with another address: the entry and its sessions follow it. */
	t_add_backend(v, 2, "10.9.0.22");
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	backends_of(lb, 0, be);
	assert_int_equal(be[2].flags & FP_BACKEND_F_REMOVED, 0);
	assert_memory_equal(be[2].addr, v->backends[1].addr.a, 16);
	v->n_backends = 1;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	assert_int_equal(fp_lb_clear_sessions(lb), 0);
	/* A change (b3 added) that also lets the hash table forget b2 as previous owner. */
	t_add_backend(v, 3, "10.9.0.3");
	assert_int_equal(fp_lb_apply(lb, &t.cfg, &gen), 0);
	backends_of(lb, 0, be);
	assert_int_equal(be[2].id, 0);
	fp_lb_close(lb);
}

static void test_removed_backend_table(void **state)
{
	(void)state;
	T_NEED_ROOT();
	removed_backend_case(FP_PIN_TABLE);
}

static void test_removed_backend_hash_table(void **state)
{
	(void)state;
	T_NEED_ROOT();
	removed_backend_case(FP_PIN_HASH_TABLE);
}

struct find_ctx {
	struct fp_flow_key key;
	struct fp_session found;
	int hits;
};

static int find_session(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	struct find_ctx *f = ctx;

	if (!memcmp(key, &f->key, sizeof(*key))) {
		f->found = *s;
		f->hits++;
	}
	return 0;
}

static struct fp_session session_of(struct fp_lb *lb, const struct fp_pkt_spec *s)
{
	struct find_ctx f = {};

	fp_pkt_flow_key(s, 0, &f.key);
	assert_int_equal(fp_lb_for_each_session(lb, find_session, &f), 0);
	assert_int_equal(f.hits, 1);
	return f.found;
}

/*
 * TCP-aware entries: a non-SYN creates an established entry; FIN, RST and a SYN reusing
 * the ports leave it as it is (test_lb_pinning.c has the attacks); idle entries expire
 * after their timeout from the config.
 */
static void test_session_states_and_timeouts(void **state)
{
	static struct t_config t;
	struct fp_vip_cfg *tcp, *udp;
	struct fp_lb *lb;
	__u16 hops[2];

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, 251);
	t.cfg.timeouts.tcp_transitory = 1;
	t.cfg.timeouts.udp = 1;
	tcp = t_add_vip(&t, "203.0.113.70", 80, IPPROTO_TCP, FP_PIN_HASH_TABLE);
	t_add_backend(tcp, 1, "10.8.0.1");
	udp = t_add_vip(&t, "203.0.113.71", 443, IPPROTO_UDP, FP_PIN_HASH_TABLE);
	t_add_backend(udp, 1, "10.8.1.1");
	lb = t_open(&t);

	struct fp_pkt_spec s = flow_of(tcp, 5, FP_TCP_ACK);
	send_flow(lb, tcp, &s, hops, NULL); /* probation */
	send_flow(lb, tcp, &s, hops, NULL); /* promoted */
	assert_int_equal(session_of(lb, &s).state, FP_SESS_TCP_EST);
	assert_int_equal(session_of(lb, &s).backend, 1);
	s.tcp_flags = FP_TCP_FIN | FP_TCP_ACK;
	send_flow(lb, tcp, &s, hops, NULL);
	assert_int_equal(session_of(lb, &s).state, FP_SESS_TCP_EST);
	/* A SYN reusing the ports: same backend (its bucket never moved: the owner is the
	 * entry's backend, no lookup needed), the entry untouched. */
	s.tcp_flags = FP_TCP_SYN;
	send_flow(lb, tcp, &s, hops, NULL);
	assert_int_equal(hops[0], 1);
	assert_int_equal(session_of(lb, &s).state, FP_SESS_TCP_EST);
	assert_int_equal(session_of(lb, &s).backend, 1);

	__u64 hits;
	struct fp_pkt_spec u = flow_of(udp, 6, 0);
	send_flow(lb, udp, &u, hops, NULL);
	send_flow(lb, udp, &u, hops, NULL);
	assert_int_equal(session_of(lb, &u).state, FP_SESS_UDP);
	hits = t_counter(lb, FP_CNT_SESSION_HIT);
	send_flow(lb, udp, &u, hops, NULL);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT) - hits, 1);
	usleep(1300 * 1000); /* past the 1 s UDP timeout */
	__u64 expired = t_counter(lb, FP_CNT_SESSION_EXPIRED);
	__u64 inserts = t_counter(lb, FP_CNT_SESSION_INSERT);
	/* The flow's probation mark may still be live (the transitory timeout, 1 s, plus
	 * a tick): then this packet promotes it again at once, else it marks it and the
	 * next one promotes it. Either way the expired entry is renewed. */
	send_flow(lb, udp, &u, hops, NULL);
	if (t_counter(lb, FP_CNT_SESSION_INSERT) == inserts)
		send_flow(lb, udp, &u, hops, NULL);
	assert_true(t_counter(lb, FP_CNT_SESSION_EXPIRED) - expired >= 1);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT) - inserts, 1); /* renewed */
	hits = t_counter(lb, FP_CNT_SESSION_HIT);
	send_flow(lb, udp, &u, hops, NULL);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT) - hits, 1);
	fp_lb_close(lb);
}

/* fp_lb_apply() with stderr captured into *@msg (malloc'd). */
static int apply_capture(struct fp_lb *lb, const struct fp_config *cfg, __u32 *gen, char **msg)
{
	FILE *tmp = tmpfile();
	int saved, ret;
	long len;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), 2) >= 0);
	ret = fp_lb_apply(lb, cfg, gen);
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	len = ftell(tmp);
	assert_true(len >= 0);
	*msg = calloc(1, (size_t)len + 1);
	assert_non_null(*msg);
	rewind(tmp);
	assert_int_equal(fread(*msg, 1, (size_t)len, tmp), (size_t)len);
	fclose(tmp);
	return ret;
}

/*
 * Hash key or table size changes need a restart: refused, nothing changed, and the
 * message names the file's line.
 */
static void test_apply_refuses_restart_changes(void **state)
{
	static struct t_config t, changed;
	struct fp_info before, after;
	__u8 out1[FP_PKT_MAX], out2[FP_PKT_MAX];
	__u32 l1, l2, gen;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	base_config(&t, FP_PIN_FULL);
	lb = t_open(&t);
	struct fp_pkt_spec s = flow_of(&t.vips[0], 77, FP_TCP_SYN);
	assert_int_equal(t_run_spec(lb, &s, out1, &l1), XDP_TX);
	assert_int_equal(fp_lb_info(lb, &before), 0);

	changed = t;
	changed.cfg.vips = changed.vips;
	for (size_t i = 0; i < changed.cfg.n_vips; i++)
		changed.vips[i].backends = changed.backends[i];
	changed.vips[0].n_backends = 1; /* a change that would move flows... */
	changed.cfg.hash_key.k0 ^= 1;	/* ...together with a new key */
	changed.cfg.lines.hash_key = 11;
	changed.cfg.lines.table_size = 12;
	changed.cfg.lines.encap_port = 13;
	char *msg;

	assert_int_equal(apply_capture(lb, &changed.cfg, &gen, &msg), -EINVAL);
	assert_non_null(strstr(msg, "test.yaml:11: hash_key: differs from the running"));
	free(msg);
	changed.cfg.hash_key = t.cfg.hash_key;
	changed.cfg.table_size = 251;
	assert_int_equal(apply_capture(lb, &changed.cfg, &gen, &msg), -EINVAL);
	assert_non_null(strstr(msg, "test.yaml:12: table_size: 251, the running program has"));
	free(msg);
	changed.cfg.table_size = TABLE;
	changed.cfg.encap_port = 7000;
	assert_int_equal(apply_capture(lb, &changed.cfg, &gen, &msg), -EINVAL);
	assert_non_null(strstr(msg, "test.yaml:13: encap_port: 7000, the running program has"));
	free(msg);
	changed.cfg.encap_port = t.cfg.encap_port;
	changed.vips[1] = changed.vips[0]; /* two VIPs with one key */
	changed.vips[1].backends = changed.backends[1];
	assert_int_equal(fp_lb_apply(lb, &changed.cfg, &gen), -EINVAL);
	changed.vips[1] = t.vips[1];
	changed.vips[1].backends = changed.backends[1];
	changed.cfg.encap_port = 7000;

	assert_int_equal(fp_lb_info(lb, &after), 0);
	assert_int_equal(after.generation, before.generation);
	assert_int_equal(t_run_spec(lb, &s, out2, &l2), XDP_TX);
	assert_int_equal(l1, l2);
	assert_memory_equal(out1, out2, l1);
	/* The same change with the running settings goes through. */
	changed.cfg.encap_port = t.cfg.encap_port;
	assert_int_equal(fp_lb_apply(lb, &changed.cfg, &gen), 0);
	assert_int_equal(gen, before.generation + 1);
	fp_lb_close(lb);
}

/*
 * Another process opens the pinned maps and applies a new config; the first process's
 * program runs it. VIPs are added and removed.
 */
static void test_apply_from_other_process(void **state)
{
	static struct t_config t, next;
	char dir[96];
	struct fp_lb *lb;
	__u16 hops[2];
	__u32 gen;
	int status;

	(void)state;
	T_NEED_ROOT();
	snprintf(dir, sizeof(dir), "%s/lb", t_bpffs);
	base_config(&t, FP_PIN_FULL);
	lb = t_open(&t);
	assert_int_equal(fp_lb_pin(lb, dir), 0);
	/* A second instance cannot pin over the first, and its failure removes nothing. */
	struct fp_lb *intruder = t_open(&t);
	assert_int_equal(fp_lb_pin(intruder, dir), -EEXIST);
	fp_lb_close(intruder);

	/* next: VIP 0 gains backend 4, VIP 1 is removed, a new UDP VIP appears. */
	t_config_init(&next, TABLE);
	struct fp_vip_cfg *v0 = t_add_vip(&next, "203.0.113.10", 80, IPPROTO_TCP, FP_PIN_FULL);
	for (int i = 1; i <= 4; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.1.0.%d", i);
		t_add_backend(v0, (__u32)i, a);
	}
	struct fp_vip_cfg *udp = t_add_vip(&next, "203.0.113.60", 0, IPPROTO_UDP, FP_PIN_HASH);
	t_add_backend(udp, 1, "10.7.0.1");

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fp_lb *other = NULL;
		__u32 g = 0;

		if (fp_lb_open_pinned(dir, &other) || fp_lb_apply(other, &next.cfg, &g) || g != 2)
			_exit(1);
		fp_lb_close(other);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* The moved buckets of VIP 0 show [new, old], computed from the first table. */
	t_maglev(&t, &t.vips[0], table_a);
	t_maglev(&next, v0, table_b);
	for (__u32 n = 0; n < 3000; n++) {
		struct fp_pkt_spec s = flow_of(v0, n, FP_TCP_ACK);
		__u32 bucket = fp_hash_bucket(t_hash(&s, 0), TABLE);

		if (table_a[bucket] == table_b[bucket])
			continue;
		assert_int_equal(send_flow(lb, v0, &s, hops, &gen), 2);
		assert_int_equal(gen, 2);
		assert_int_equal(hops[0], table_b[bucket]);
		assert_int_equal(hops[1], table_a[bucket]);
		break;
	}
	struct fp_pkt_spec gone = flow_of(&t.vips[1], 1, FP_TCP_SYN);
	assert_int_equal(t_run_spec(lb, &gone, NULL, NULL), XDP_PASS);
	struct fp_pkt_spec u = flow_of(udp, 1, 0);
	u.dport = 5353;
	assert_int_equal(send_flow(lb, udp, &u, hops, &gen), 1);
	assert_int_equal(hops[0], 1);
	assert_int_equal(gen, 2);

	fp_lb_close(lb);
	assert_int_equal(fp_lb_unpin(dir), 0);
	assert_int_equal(access(dir, F_OK), -1);
}

/* fp_lb_apply() holds flock(LOCK_EX) on the pin directory: a second applier waits. */
static void test_apply_waits_for_lock(void **state)
{
	static struct t_config t;
	char dir[96];
	struct fp_lb *lb;
	int status, dfd;

	(void)state;
	T_NEED_ROOT();
	snprintf(dir, sizeof(dir), "%s/lock", t_bpffs);
	base_config(&t, FP_PIN_FULL);
	lb = t_open(&t);
	assert_int_equal(fp_lb_pin(lb, dir), 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(flock(dfd, LOCK_EX), 0);
	t_add_backend(&t.vips[0], 4, "10.1.0.4");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fp_lb *other = NULL;

		_exit(fp_lb_open_pinned(dir, &other) || fp_lb_apply(other, &t.cfg, NULL) ? 1 : 0);
	}
	usleep(300 * 1000);
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* still waiting */
	struct fp_info info;
	assert_int_equal(fp_lb_info(lb, &info), 0);
	assert_int_equal(info.generation, 1);
	assert_int_equal(flock(dfd, LOCK_UN), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(fp_lb_info(lb, &info), 0);
	assert_int_equal(info.generation, 2);
	close(dfd);
	fp_lb_close(lb);
	assert_int_equal(fp_lb_unpin(dir), 0);
}

/* The pinning tests pin into a bpffs of this program's own (t_bpffs_mount()). */
static int group_setup(void **state)
{
	if (t_group_setup(state))
		return -1;
	return t_root ? t_bpffs_mount() : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	t_bpffs_unmount();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_instances_agree),
		cmocka_unit_test(test_generations_full),
		cmocka_unit_test(test_generations_hash_table),
		cmocka_unit_test(test_generations_hash),
		cmocka_unit_test(test_hop_family_mismatch),
		cmocka_unit_test(test_bucket_pairs_in_map),
		cmocka_unit_test(test_two_changes_remember_older_owner),
		cmocka_unit_test(test_mode_none),
		cmocka_unit_test(test_mode_table),
		cmocka_unit_test(test_session_backend_down),
		cmocka_unit_test(test_removed_backend_table),
		cmocka_unit_test(test_removed_backend_hash_table),
		cmocka_unit_test(test_session_states_and_timeouts),
		cmocka_unit_test(test_apply_refuses_restart_changes),
		cmocka_unit_test(test_apply_from_other_process),
		cmocka_unit_test(test_apply_waits_for_lock),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
