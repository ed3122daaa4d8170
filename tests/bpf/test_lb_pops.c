// SPDX-License-Identifier: MIT
/*
 * Cross-site forwarding (bpf/pop.h, docs/design.md "Cross-site forwarding"), the real
 * program on crafted frames. This node is an LB of site a (its outer sources, 192.0.2.1
 * and 2001:db8::1, are site a's); site b has LB nodes 10.98.0.11, 10.98.0.12 and
 * fd00:98::11, site c one IPv6 node. A ticket naming b's backend goes to one of b's LB
 * nodes, one hop, marked cross-site, byte for byte; a cross-site message from b whose
 * ticket names a's backend goes there as an ordinary encapsulated packet. The attacker's
 * view: spoofed sources, own-site sources, other ports, forged and foreign tickets,
 * truncated and malformed GUE, nested messages, inner packets not for a VIP, a flood
 * that must not evict sessions, and every frame that leaves addressed only to a
 * configured backend or another site's LB node.
 */
#include "test_lb_fixture.h"
#include <flowpin/ticket.h>
#include <bpf/libbpf.h>

#define BITS 8

struct fleet {
	struct t_config t;
	struct fp_vip_cfg *v4, *v6;
};

/*
 * Two TCP ticket VIPs (IPv4 and IPv6), each with backends 1, 2 (site a), 7 (site b),
 * 9 (site c) and 3 (site a, down); the config made site a's view.
 */
static void fleet_init(struct fleet *f)
{
	static const char *const lbs_a[] = { "192.0.2.1", "10.99.0.12", "2001:db8::1" };
	static const char *const lbs_b[] = { "10.98.0.11", "10.98.0.12", "fd00:98::11" };
	struct fp_config *c = &f->t.cfg;

	t_config_init(&f->t, 251);
	c->n_pops = 3;
	strcpy(c->pops[0].name, "a");
	strcpy(c->pops[1].name, "b");
	strcpy(c->pops[2].name, "c");
	for (int i = 0; i < 3; i++) {
		c->pops[0].lbs[i] = fp_pkt_addr(lbs_a[i]);
		c->pops[1].lbs[i] = fp_pkt_addr(lbs_b[i]);
	}
	c->pops[0].n_lbs = c->pops[1].n_lbs = 3;
	c->pops[2].lbs[0] = fp_pkt_addr("fd00:97::11");
	c->pops[2].n_lbs = 1;
	for (int v6 = 0; v6 < 2; v6++) {
		struct fp_vip_cfg *v = t_add_vip(&f->t, v6 ? "2001:db8:100::80" : "203.0.113.80",
						 80, IPPROTO_TCP, FP_PIN_FULL);
		static const struct {
			__u32 id;
			int pop;
			const char *v4, *v6;
		} b[] = { { 7, 1, "10.98.0.21", "fd00:98::21" },
			  { 1, 0, "10.99.0.21", "fd00:99::21" },
			  { 9, 2, "10.97.0.21", "fd00:97::21" },
			  { 2, 0, "10.99.0.22", "fd00:99::22" },
			  { 3, 0, "10.99.0.23", "fd00:99::23" } };

		v->ticket_bits = BITS;
		for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
			struct fp_backend_cfg *be =
				t_add_backend(v, b[i].id, v6 ? b[i].v6 : b[i].v4);

			be->pop = b[i].pop;
			if (b[i].id == 3)
				be->state = FP_BACKEND_DOWN;
		}
		if (v6)
			f->v6 = v;
		else
			f->v4 = v;
	}
	assert_int_equal(fp_config_select_pop(c, "a", stderr), 0);
	assert_int_equal(f->v4->n_backends, 3);
	assert_int_equal(f->v4->n_remote, 2);
}

static struct fp_lb *fleet_open(const struct fleet *f)
{
	struct fp_lb_opts opts = {};
	struct fp_lb *lb = NULL;

	memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
	memcpy(opts.source_v4.a + 12, t_ns.own_v4, 4);
	memcpy(opts.source_v6.a, t_ns.own_v6, 16);
	opts.have_source_v4 = opts.have_source_v6 = true;
	opts.session_entries = 65536;
	opts.new_flow_rate = UINT32_MAX;
	strcpy(opts.pop, "a");
	assert_int_equal(fp_lb_open(&f->t.cfg, &opts, &lb), 0);
	t_runs = 0;
	return lb;
}

/* The TSecr a client echoes when backend @sid sent it TSval @tsval. */
static __u32 ticket_for(const struct fp_pkt_spec *s, __u16 sid, __u32 tsval)
{
	struct fp_hash_key tk;
	struct fp_flow_key fk;

	fp_ticket_key_derive(&t_key, &tk);
	fp_pkt_flow_key(s, 0, &fk);
	return fp_ticket_encode(tsval, fp_ticket_flow_hash(&tk, &fk), sid, BITS);
}

struct ts_opts {
	__u8 b[12];
};

/* A client's mid-flow segment to @v from @sport whose TSecr names @sid (0: no option;
 * 0xffff: a forged TSecr). */
static struct fp_pkt_spec segment(const struct fp_vip_cfg *v, __u16 sport, __u16 sid,
				  struct ts_opts *o)
{
	struct fp_pkt_spec s = t_client_spec(v, sport, FP_TCP_ACK, 200);
	__u32 tsecr;

	if (!sid)
		return s;
	tsecr = sid == 0xffff ? 0x5eed0000u + sport : ticket_for(&s, sid, 1000 + sport);
	__u8 b[12] = { 1,
		       1,
		       8,
		       10,
		       0,
		       0,
		       0x12,
		       0x34,
		       (__u8)(tsecr >> 24),
		       (__u8)(tsecr >> 16),
		       (__u8)(tsecr >> 8),
		       (__u8)tsecr };
	memcpy(o->b, b, sizeof(b));
	s.tcp_options = o->b;
	s.tcp_options_len = sizeof(o->b);
	return s;
}

/* Where a cross-site hop for a flow of hash @hash goes: site @pop's LB of our family,
 * by the outer port. */
static struct fp_addr pop_lb_hash(const struct fleet *f, int pop, __u64 hash)
{
	const struct fp_pop_cfg *p = &f->t.cfg.pops[pop];
	struct fp_addr v4[FP_MAX_POP_LBS], v6[FP_MAX_POP_LBS];
	size_t n4 = 0, n6 = 0;
	__u16 sport = fp_hash_sport(hash);

	for (size_t i = 0; i < p->n_lbs; i++) {
		if (fp_addr_v4(&p->lbs[i]))
			v4[n4++] = p->lbs[i];
		else
			v6[n6++] = p->lbs[i];
	}
	return n4 ? v4[sport % n4] : v6[sport % n6];
}

static struct fp_addr pop_lb_for(const struct fleet *f, int pop, const struct fp_pkt_spec *s)
{
	return pop_lb_hash(f, pop, t_hash(s, 0));
}

/* The exact frame this node sends for @s (of a flow with hash @hash): to @dst, one hop,
 * private type @type. */
static int expect_frame_hash(const struct fp_pkt_spec *s, struct fp_addr dst, __u8 type, __u64 hash,
			     __u8 *buf)
{
	__u8 in[FP_PKT_MAX];
	struct fp_encap_spec e = {};
	size_t l3 = fp_pkt_l3_offset(s);
	int n = fp_pkt_build(s, in, sizeof(in)), len;

	assert_true(n > 0);
	memcpy(e.dst_mac, t_ns.next_hop_mac, 6);
	memcpy(e.src_mac, t_ns.own_mac, 6);
	e.hash = hash;
	e.encap_port = FP_DEFAULT_ENCAP_PORT;
	e.hop_count = 1;
	e.hops[0] = dst;
	if (fp_addr_v4(&dst)) {
		memcpy(e.outer_src.a + 10, "\xff\xff", 2);
		memcpy(e.outer_src.a + 12, t_ns.own_v4, 4);
	} else {
		memcpy(e.outer_src.a, t_ns.own_v6, 16);
	}
	e.generation = 1;
	e.type = type;
	len = fp_pkt_encap(&e, in + l3, (size_t)n - l3, buf, FP_PKT_MAX);
	assert_true(len > 0);
	return len;
}

static int expect_frame(const struct fp_pkt_spec *s, struct fp_addr dst, __u8 type, __u8 *buf)
{
	return expect_frame_hash(s, dst, type, t_hash(s, 0), buf);
}

/*
 * A cross-site message carrying @s, as site @from's LB node @src would send it to @dst
 * (this node). Returns its length; @buf gets the frame.
 */
static int cross_frame(const struct fp_pkt_spec *s, const char *src, const char *dst, __u16 port,
		       __u8 *buf)
{
	__u8 in[FP_PKT_MAX];
	struct fp_encap_spec e = {};
	size_t l3 = fp_pkt_l3_offset(s);
	int n = fp_pkt_build(s, in, sizeof(in)), len;

	assert_true(n > 0);
	memcpy(e.dst_mac, t_ns.own_mac, 6);
	memcpy(e.src_mac, t_ns.next_hop_mac, 6);
	e.hash = t_hash(s, 0);
	e.encap_port = port;
	e.hop_count = 1;
	e.hops[0] = fp_pkt_addr(dst);
	e.outer_src = fp_pkt_addr(src);
	e.generation = 5;
	e.type = FP_PRIV_TYPE_CROSS_SITE;
	len = fp_pkt_encap(&e, in + l3, (size_t)n - l3, buf, FP_PKT_MAX);
	assert_true(len > 0);
	return len;
}

/*
 * The rule every test here checks on every frame that leaves: its outer destination is
 * a configured backend of this site or another site's LB node, and it is flowpin's
 * encapsulation (UDP to encap_port); or it is an ICMP too-big reply (XDP_TX, no UDP).
 */
static void check_leaves(const struct fleet *f, int verdict, const __u8 *out, __u32 len)
{
	const struct fp_config *c = &f->t.cfg;
	struct fp_addr dst = {};
	int v6, ok = 0;

	if (verdict != XDP_TX && verdict != XDP_REDIRECT)
		return;
	assert_true(len >= 14 + 20 + 8);
	v6 = out[12] == 0x86 && out[13] == 0xdd;
	if ((v6 ? out[14 + 6] : out[14 + 9]) != IPPROTO_UDP)
		return; /* the ICMP reply to the client, checked where it is expected */
	if (v6) {
		memcpy(dst.a, out + 14 + 24, 16);
	} else {
		memcpy(dst.a + 10, "\xff\xff", 2);
		memcpy(dst.a + 12, out + 14 + 16, 4);
	}
	assert_int_equal(out[14 + (v6 ? 40 : 20) + 2] << 8 | out[14 + (v6 ? 40 : 20) + 3],
			 FP_DEFAULT_ENCAP_PORT);
	for (size_t v = 0; v < c->n_vips; v++)
		for (size_t b = 0; b < c->vips[v].n_backends; b++)
			ok |= !memcmp(&c->vips[v].backends[b].addr, &dst, sizeof(dst));
	for (size_t p = 0; p < c->n_pops; p++)
		for (size_t i = 0; p != c->local_pop && i < c->pops[p].n_lbs; i++)
			ok |= !memcmp(&c->pops[p].lbs[i], &dst, sizeof(dst));
	if (!ok) {
		char buf[64];

		fail_msg("a frame left for %s: neither a backend of site a nor another site's LB",
			 fp_addr_str(&dst, buf, sizeof(buf)));
	}
}

static int run(const struct fleet *f, struct fp_lb *lb, const __u8 *in, size_t len, __u8 *out,
	       __u32 *out_len)
{
	static __u8 scratch[FP_PKT_MAX];
	__u32 n;
	int verdict = t_run(lb, in, len, out ? out : scratch, &n);

	check_leaves(f, verdict, out ? out : scratch, n);
	if (out_len)
		*out_len = n;
	return verdict;
}

static int run_spec(const struct fleet *f, struct fp_lb *lb, const struct fp_pkt_spec *s, __u8 *out,
		    __u32 *out_len)
{
	__u8 in[FP_PKT_MAX];
	int n = fp_pkt_build(s, in, sizeof(in));

	assert_true(n > 0);
	return run(f, lb, in, (size_t)n, out, out_len);
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
 * Sending: a ticket naming site b's backend 7 (or c's 9) leaves for one of that site's
 * LB nodes, one hop, private type 0xF2, exact bytes; the flow is admitted like any
 * ticket hit, and its later packets (session hits) take the same way. A ticket naming
 * a backend of this site is ordinary (0xF1); the down one takes the normal path.
 */
static void test_pop_out(void **state)
{
	static struct fleet f;

	(void)state;
	T_NEED_ROOT();
	fleet_init(&f);
	struct fp_lb *lb = fleet_open(&f);

	for (int fam = 0; fam < 2; fam++) {
		const struct fp_vip_cfg *v = fam ? f.v6 : f.v4;

		for (__u16 sport = 30000; sport < 30016; sport++) {
			__u16 sid = sport % 2 ? 7 : 9;
			struct ts_opts o;
			struct fp_pkt_spec s = segment(v, sport, sid, &o);
			__u8 out[FP_PKT_MAX], want[FP_PKT_MAX];
			__u64 pop_out = t_counter(lb, FP_CNT_POP_OUT);
			int wn = expect_frame(&s, pop_lb_for(&f, sid == 7 ? 1 : 2, &s),
					      FP_PRIV_TYPE_CROSS_SITE, want);
			__u32 n;

			/* First packet (ticket, mark), second (ticket, session), third (hit). */
			for (int i = 0; i < 3; i++) {
				assert_int_equal(run_spec(&f, lb, &s, out, &n), XDP_TX);
				assert_int_equal(n, wn);
				assert_memory_equal(out, want, n);
			}
			assert_int_equal(t_counter(lb, FP_CNT_POP_OUT) - pop_out, 3);
		}
	}
	assert_int_equal(t_counter(lb, FP_CNT_TICKET_HIT), 64);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT), 32);
	assert_int_equal(sessions(lb), 32);
	/* A ticket naming this site's backend 1: the ordinary message to it. */
	{
		struct ts_opts o;
		struct fp_pkt_spec s = segment(f.v4, 31000, 1, &o);
		__u8 out[FP_PKT_MAX], want[FP_PKT_MAX];
		int wn = expect_frame(&s, t_backend(f.v4, 1)->addr, FP_PRIV_TYPE_HOPS, want);
		__u32 n;

		assert_int_equal(run_spec(&f, lb, &s, out, &n), XDP_TX);
		assert_int_equal(n, wn);
		assert_memory_equal(out, want, n);
	}
	t_close(lb);
}

/*
 * Receiving: a message from site b's LB node 10.98.0.11 to this node, whose inner
 * segment's ticket names backend 1 or 2 of this site, leaves as the ordinary message to
 * that backend (exactly what a client's segment gets), counted pop_in; it leaves no
 * probation mark and no session entry. Both inner families, over IPv4 and IPv6 outer.
 */
static void test_pop_in(void **state)
{
	static struct fleet f;

	(void)state;
	T_NEED_ROOT();
	fleet_init(&f);
	struct fp_lb *lb = fleet_open(&f);
	int sent = 0;

	for (int fam = 0; fam < 2; fam++) {
		for (int outer6 = 0; outer6 < 2; outer6++) {
			const struct fp_vip_cfg *v = fam ? f.v6 : f.v4;

			for (__u16 sport = 32000; sport < 32008; sport++) {
				__u16 sid = sport % 2 ? 1 : 2;
				struct ts_opts o;
				struct fp_pkt_spec s = segment(v, sport, sid, &o);
				__u8 in[FP_PKT_MAX], out[FP_PKT_MAX], want[FP_PKT_MAX];
				int n = cross_frame(&s, outer6 ? "fd00:98::11" : "10.98.0.11",
						    outer6 ? "2001:db8::1" : "192.0.2.1",
						    FP_DEFAULT_ENCAP_PORT, in);
				int wn = expect_frame(&s, t_backend(v, sid)->addr,
						      FP_PRIV_TYPE_HOPS, want);
				__u32 on;

				for (int i = 0; i < 2; i++) {
					assert_int_equal(run(&f, lb, in, (size_t)n, out, &on),
							 XDP_TX);
					assert_int_equal(on, wn);
					assert_memory_equal(out, want, on);
					sent++;
				}
			}
		}
	}
	assert_int_equal(t_counter(lb, FP_CNT_POP_IN), sent);
	assert_int_equal(t_counter(lb, FP_CNT_TICKET_HIT), sent);
	assert_int_equal(t_counter(lb, FP_CNT_PROBATION_INSERT), 0);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 0);
	assert_int_equal(sessions(lb), 0);
	assert_int_equal(t_counter(lb, FP_CNT_POP_OUT), 0);
	t_close(lb);
}

/* Runs @in expecting a drop counted in @counter, and no other decision. */
static void expect_drop(const struct fleet *f, struct fp_lb *lb, const __u8 *in, size_t len,
			enum fp_counter counter, const char *what)
{
	__u64 before = t_counter(lb, counter);
	int verdict = run(f, lb, in, len, NULL, NULL);

	if (verdict != XDP_DROP || t_counter(lb, counter) - before != 1)
		fail_msg("%s: verdict %d, %s +%llu", what, verdict, fp_counter_names[counter],
			 (unsigned long long)(t_counter(lb, counter) - before));
}

/*
 * Who may send: only another site's LB address, only to this site's, only on
 * encap_port. A spoofed outside source, this site's own addresses, a destination of
 * another site: dropped (pop_drop_source), before the inner packet is read. Another
 * port: no cross-site message at all (the stack gets a datagram for the node itself,
 * nothing is encapsulated). A config without sites accepts no message.
 */
static void test_pop_sources(void **state)
{
	static struct fleet f;
	static const char *const refused[][2] = {
		{ "203.0.113.9", "192.0.2.1" },	    /* no site's */
		{ "10.99.0.12", "192.0.2.1" },	    /* this site's own node */
		{ "192.0.2.1", "192.0.2.1" },	    /* this node itself */
		{ "10.98.0.11", "10.98.0.12" },	    /* to another site's node */
		{ "10.98.0.11", "198.51.100.9" },   /* to no site's address */
		{ "fd00:97::11", "2001:db8::1" },   /* site c's node: accepted */
		{ "2001:db8:c::7", "2001:db8::1" }, /* a client's address */
	};

	(void)state;
	T_NEED_ROOT();
	fleet_init(&f);
	struct fp_lb *lb = fleet_open(&f);
	struct ts_opts o;
	struct fp_pkt_spec s = segment(f.v4, 33000, 1, &o);
	__u8 in[FP_PKT_MAX];
	int n;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		n = cross_frame(&s, refused[i][0], refused[i][1], FP_DEFAULT_ENCAP_PORT, in);
		if (i == 5) { /* site c's node to this one: accepted (the control) */
			assert_int_equal(run(&f, lb, in, (size_t)n, NULL, NULL), XDP_TX);
			continue;
		}
		expect_drop(&f, lb, in, (size_t)n, FP_CNT_POP_DROP_SOURCE, refused[i][0]);
	}
	/* Another port: not a cross-site message; the node's own datagram, passed. */
	n = cross_frame(&s, "10.98.0.11", "192.0.2.1", FP_DEFAULT_ENCAP_PORT + 1, in);
	assert_int_equal(run(&f, lb, in, (size_t)n, NULL, NULL), XDP_PASS);
	assert_int_equal(t_counter(lb, FP_CNT_PASS_NOT_VIP), 1);
	assert_int_equal(t_counter(lb, FP_CNT_POP_IN), 1);
	assert_int_equal(t_counter(lb, FP_CNT_TICKET_HIT), 1);
	t_close(lb);

	/* No sites in the config: nothing is accepted. */
	{
		static struct t_config t;
		struct fp_vip_cfg *v;

		t_config_init(&t, 251);
		v = t_add_vip(&t, "203.0.113.80", 80, IPPROTO_TCP, FP_PIN_FULL);
		v->ticket_bits = BITS;
		t_add_backend(v, 1, "10.99.0.21");
		lb = t_open(&t);
		n = cross_frame(&s, "10.98.0.11", "192.0.2.1", FP_DEFAULT_ENCAP_PORT, in);
		assert_int_equal(t_run(lb, in, (size_t)n, NULL, NULL), XDP_DROP);
		assert_int_equal(t_counter(lb, FP_CNT_POP_DROP_SOURCE), 1);
		t_close(lb);
	}
}

/*
 * Flooded cross-site messages (bpf/own_mac.h, docs/security.md "Unicast flooding"): a
 * switch that forgot a MAC hands every node of the segment the frames sent to it.
 *  - This site's other node (10.99.0.12) sends a hop to site b through the gateway: the
 *    copy flooded here is passed, never pop_drop_source (it was not sent here); the
 *    same frame sent to this node is pop_drop_source (its source is this site's own).
 *  - Site b sends a hop to this site's other node: its flooded copy is passed, not
 *    forwarded (the node it was sent to forwards it; two would send the segment to
 *    the backend twice); the same frame sent to this node is forwarded (pop_in).
 *  - A cross-site message in a broadcast frame is not taken: no node of the segment
 *    forwards it.
 */
static void test_pop_other_mac(void **state)
{
	static struct fleet f;
	static const __u8 gw_mac[6] = FP_FIBNS_NEXT_HOP_MAC;
	static const __u8 sibling_mac[6] = { 0x02, 0x99, 0x00, 0x00, 0x00, 0x12 };
	static const __u8 broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	(void)state;
	T_NEED_ROOT();
	fleet_init(&f);
	struct fp_lb *lb = fleet_open(&f);
	struct ts_opts o;
	struct fp_pkt_spec s = segment(f.v4, 33500, 1, &o);
	__u8 in[FP_PKT_MAX];
	int n;

	/* Site a's other node to site b's, flooded here. */
	n = cross_frame(&s, "10.99.0.12", "10.98.0.11", FP_DEFAULT_ENCAP_PORT, in);
	memcpy(in, gw_mac, 6);
	for (int i = 0; i < 3; i++)
		assert_int_equal(run(&f, lb, in, (size_t)n, NULL, NULL), XDP_PASS);
	assert_int_equal(t_counter(lb, FP_CNT_PASS_NOT_OUR_MAC), 3);
	assert_int_equal(t_counter(lb, FP_CNT_POP_DROP_SOURCE), 0);
	memcpy(in, t_ns.own_mac, 6); /* control: sent here, it is refused */
	expect_drop(&f, lb, in, (size_t)n, FP_CNT_POP_DROP_SOURCE, "own site's node, to us");

	/* Site b to site a's other node, flooded here: not forwarded. */
	n = cross_frame(&s, "10.98.0.11", "10.99.0.12", FP_DEFAULT_ENCAP_PORT, in);
	memcpy(in, sibling_mac, 6);
	assert_int_equal(run(&f, lb, in, (size_t)n, NULL, NULL), XDP_PASS);
	assert_int_equal(t_counter(lb, FP_CNT_PASS_NOT_OUR_MAC), 4);
	memcpy(in, broadcast, 6);
	assert_int_equal(run(&f, lb, in, (size_t)n, NULL, NULL), XDP_PASS);
	assert_int_equal(t_counter(lb, FP_CNT_PASS_NOT_VIP), 1); /* the stack's, as before */
	assert_int_equal(t_counter(lb, FP_CNT_POP_IN), 0);
	assert_int_equal(t_counter(lb, FP_CNT_TICKET_HIT), 0);
	assert_int_equal(
		t_counter(lb, FP_CNT_POP_DROP_SOURCE) + t_counter(lb, FP_CNT_POP_DROP_INVALID), 1);
	memcpy(in, t_ns.own_mac, 6); /* control: sent here, it is forwarded */
	assert_int_equal(run(&f, lb, in, (size_t)n, NULL, NULL), XDP_TX);
	assert_int_equal(t_counter(lb, FP_CNT_POP_IN), 1);
	t_close(lb);
}

/*
 * What a cross-site message from an allowed node may carry. A forged ticket, no
 * ticket, a ticket naming the down backend: pop_drop_invalid (never the normal path:
 * the sender sent it here for a ticket). A ticket naming site b's own backend (it
 * would go back) or site c's: pop_drop_loop, never sent out again. Inner packets not for
 * a VIP, an echo request to the VIP, a fragment: dropped, never passed to the stack.
 */
static void test_pop_inner(void **state)
{
	static struct fleet f;

	(void)state;
	T_NEED_ROOT();
	fleet_init(&f);
	struct fp_lb *lb = fleet_open(&f);
	__u8 in[FP_PKT_MAX];
	struct ts_opts o;
	struct fp_pkt_spec s;
	int n;

	for (int fam = 0; fam < 2; fam++) {
		const struct fp_vip_cfg *v = fam ? f.v6 : f.v4;
		static const struct {
			__u16 sid;
			enum fp_counter counter;
			const char *what;
		} cases[] = {
			{ 0xffff, FP_CNT_POP_DROP_INVALID, "forged ticket" },
			{ 0, FP_CNT_POP_DROP_INVALID, "no timestamp option" },
			{ 3, FP_CNT_POP_DROP_INVALID, "down backend" },
			{ 7, FP_CNT_POP_DROP_LOOP, "the sender's site's backend" },
			{ 9, FP_CNT_POP_DROP_LOOP, "a third site's backend" },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			s = segment(v, (__u16)(34000 + i), cases[i].sid, &o);
			n = cross_frame(&s, "10.98.0.12", "192.0.2.1", FP_DEFAULT_ENCAP_PORT, in);
			expect_drop(&f, lb, in, (size_t)n, cases[i].counter, cases[i].what);
		}
	}
	/* Flows without a ticket cannot be saved across sites: counted as such. */
	assert_int_equal(t_counter(lb, FP_CNT_TICKET_NO_TIMESTAMP), 2);

	/* Not for a VIP: a backend's address, another host, the node itself. */
	static const char *const not_vip[] = { "10.99.0.21", "192.0.2.77", "192.0.2.1" };
	for (size_t i = 0; i < 3; i++) {
		s = segment(f.v4, 35000, 1, &o);
		s.dst = fp_pkt_addr(not_vip[i]);
		n = cross_frame(&s, "10.98.0.11", "192.0.2.1", FP_DEFAULT_ENCAP_PORT, in);
		expect_drop(&f, lb, in, (size_t)n, FP_CNT_POP_DROP_INVALID, not_vip[i]);
	}
	/* A VIP's other port (the stack would get it): dropped. */
	s = segment(f.v4, 35001, 1, &o);
	s.dport = 81;
	n = cross_frame(&s, "10.98.0.11", "192.0.2.1", FP_DEFAULT_ENCAP_PORT, in);
	expect_drop(&f, lb, in, (size_t)n, FP_CNT_POP_DROP_INVALID, "VIP, other port");
	/* UDP to the VIP's address on encap_port (it serves TCP only). */
	s = t_client_spec(f.v4, 35002, 0, 40);
	s.proto = IPPROTO_UDP;
	s.dport = FP_DEFAULT_ENCAP_PORT;
	n = cross_frame(&s, "10.98.0.11", "192.0.2.1", FP_DEFAULT_ENCAP_PORT, in);
	expect_drop(&f, lb, in, (size_t)n, FP_CNT_POP_DROP_INVALID, "UDP to the VIP address");
	t_close(lb);
}

/*
 * Malformed messages from an allowed node: every field a sender writes, changed; the
 * frame cut anywhere. Dropped (pop_drop_invalid) once the type byte says cross-site;
 * before that (a frame too short to carry it) the node's own datagram, passed. Nothing
 * is ever encapsulated from a damaged message.
 */
static void test_pop_malformed(void **state)
{
	static struct fleet f;

	(void)state;
	T_NEED_ROOT();
	fleet_init(&f);
	struct fp_lb *lb = fleet_open(&f);
	__u8 good[FP_PKT_MAX], in[FP_PKT_MAX];
	struct ts_opts o;
	struct fp_pkt_spec s = segment(f.v4, 36000, 1, &o);
	int n = cross_frame(&s, "10.98.0.11", "192.0.2.1", FP_DEFAULT_ENCAP_PORT, good);
	const size_t udp = 14 + 20, gue = udp + 8, type = gue + 4, hop = gue + 12;
	static const struct {
		size_t off;
		__u8 value;
		const char *what;
	} edits[] = {
		{ gue, 0x04, "Hlen 4" },
		{ gue, 0x43, "GUE version 1" },
		{ gue, 0x23, "control message" },
		{ gue + 1, 17, "GUE proto UDP" },
		{ gue + 1, 41, "proto IPv6, inner IPv4" },
		{ gue + 3, 0, "no P flag" },
		{ type + 1, 1, "hop index 1" },
		{ type + 2, 2, "hop count 2" },
		{ type + 2, 0, "hop count 0" },
		{ type + 3, 1, "IPv6 hops flag" },
		{ hop + 3, 2, "hop is another node" },
		{ udp + 5, 0x10, "UDP length short" },
	};

	assert_int_equal(run(&f, lb, good, (size_t)n, NULL, NULL), XDP_TX); /* the control */
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		memcpy(in, good, (size_t)n);
		in[edits[i].off] = edits[i].value;
		expect_drop(&f, lb, in, (size_t)n, FP_CNT_POP_DROP_INVALID, edits[i].what);
	}
	/* Cut short: only the frame says so (the outer IP length does not fit: truncated),
	 * or the IP and UDP lengths too. */
	for (size_t cut = gue + 12; cut < (size_t)n; cut += 7) {
		memcpy(in, good, cut);
		expect_drop(&f, lb, in, cut, FP_CNT_DROP_TRUNCATED, "frame cut");
		/* Lengths fixed up to the cut: a shorter message whose inner packet is cut. */
		in[16] = (__u8)((cut - 14) >> 8);
		in[17] = (__u8)(cut - 14);
		fp_pkt_ipv4_fix_csum(in + 14);
		in[udp + 4] = (__u8)((cut - udp) >> 8);
		in[udp + 5] = (__u8)(cut - udp);
		if (run(&f, lb, in, cut, NULL, NULL) != XDP_DROP)
			fail_msg(
				"a message cut at %zu of %d with its lengths fixed was not dropped",
				cut, n);
	}
	/* Too short to carry the GUE header and its type byte: no cross-site message. */
	for (size_t cut = udp + 8; cut < gue + 12; cut++) {
		memcpy(in, good, cut);
		in[16] = (__u8)((cut - 14) >> 8);
		in[17] = (__u8)(cut - 14);
		fp_pkt_ipv4_fix_csum(in + 14);
		in[udp + 4] = (__u8)((cut - udp) >> 8);
		in[udp + 5] = (__u8)(cut - udp);
		assert_int_equal(run(&f, lb, in, cut, NULL, NULL), XDP_PASS);
	}
	/* A message in a message: the inner packet is itself a cross-site message to
	 * this node (not a VIP). */
	{
		__u8 twice[FP_PKT_MAX];
		struct fp_encap_spec e = {};
		int m;

		memcpy(e.dst_mac, t_ns.own_mac, 6);
		memcpy(e.src_mac, t_ns.next_hop_mac, 6);
		e.encap_port = FP_DEFAULT_ENCAP_PORT;
		e.hop_count = 1;
		e.hops[0] = fp_pkt_addr("192.0.2.1");
		e.outer_src = fp_pkt_addr("10.98.0.11");
		e.type = FP_PRIV_TYPE_CROSS_SITE;
		m = fp_pkt_encap(&e, good + 14, (size_t)n - 14, twice, sizeof(twice));
		assert_true(m > 0);
		expect_drop(&f, lb, twice, (size_t)m, FP_CNT_POP_DROP_INVALID, "nested");
	}
	assert_int_equal(t_counter(lb, FP_CNT_POP_IN), 1);
	t_close(lb);
}

/*
 * A flood of forged cross-site messages from a spoofed allowed source (the allowlist
 * holds only against senders that cannot spoof) must not evict sessions: random tuples
 * with random tickets are dropped, random tuples with tickets that happen to name a
 * live backend are forwarded and remembered nowhere. Established flows keep their
 * sessions and their backend.
 */
static void test_pop_flood(void **state)
{
	static struct fleet f;

	(void)state;
	T_NEED_ROOT();
	fleet_init(&f);
	/* A small session table (1000 flows fill a quarter of it: the set-associative table
	 * replaces entries of full bucket pairs from about half full, flowpin/maps.h): the
	 * 20,000 messages of a flood that could insert would evict at once. */
	struct fp_lb_opts opts = {};
	struct fp_lb *lb = NULL;

	memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
	memcpy(opts.source_v4.a + 12, t_ns.own_v4, 4);
	opts.have_source_v4 = true;
	opts.session_entries = 4096;
	opts.new_flow_rate = UINT32_MAX;
	strcpy(opts.pop, "a");
	assert_int_equal(fp_lb_open(&f.t.cfg, &opts, &lb), 0);
	t_runs = 0;

	/* 1000 established flows: two packets each, the second promotes. */
	for (__u16 sport = 1000; sport < 2000; sport++) {
		struct fp_pkt_spec s = t_client_spec(f.v4, sport, FP_TCP_ACK, 10);

		assert_int_equal(run_spec(&f, lb, &s, NULL, NULL), XDP_TX);
		assert_int_equal(run_spec(&f, lb, &s, NULL, NULL), XDP_TX);
	}
	assert_int_equal(sessions(lb), 1000);
	__u64 inserts = t_counter(lb, FP_CNT_SESSION_INSERT);
	__u64 marks = t_counter(lb, FP_CNT_PROBATION_INSERT);

	srand(13);
	for (int i = 0; i < 20000; i++) {
		struct ts_opts o;
		struct fp_pkt_spec s;
		__u8 in[FP_PKT_MAX];
		int n;

		s = segment(f.v4, (__u16)(10000 + rand() % 50000), i % 4 ? 0xffff : 1 + i % 2, &o);
		s.src = fp_pkt_addr("198.51.100.7");
		s.src.a[15] = (__u8)rand();
		s.src.a[14] = (__u8)rand();
		if (i % 4) { /* random TSecr */
			__u32 r = (__u32)rand();

			o.b[8] = (__u8)(r >> 24);
			o.b[9] = (__u8)(r >> 16);
			o.b[10] = (__u8)(r >> 8);
			o.b[11] = (__u8)r;
		} else {
			__u32 tsecr = ticket_for(&s, (__u16)(1 + i % 2), 5);

			o.b[8] = (__u8)(tsecr >> 24);
			o.b[9] = (__u8)(tsecr >> 16);
			o.b[10] = (__u8)(tsecr >> 8);
			o.b[11] = (__u8)tsecr;
		}
		n = cross_frame(&s, "10.98.0.11", "192.0.2.1", FP_DEFAULT_ENCAP_PORT, in);
		run(&f, lb, in, (size_t)n, NULL, NULL);
	}
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), inserts);
	assert_int_equal(t_counter(lb, FP_CNT_PROBATION_INSERT), marks);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_EVICT), 0);
	assert_int_equal(sessions(lb), 1000);
	assert_true(t_counter(lb, FP_CNT_POP_IN) >= 5000);
	/* Every established flow is still a session hit, to the backend it had. */
	__u64 hits = t_counter(lb, FP_CNT_SESSION_HIT);
	for (__u16 sport = 1000; sport < 2000; sport++) {
		struct fp_pkt_spec s = t_client_spec(f.v4, sport, FP_TCP_ACK, 10);

		assert_int_equal(run_spec(&f, lb, &s, NULL, NULL), XDP_TX);
	}
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT) - hits, 1000);
	t_close(lb);
}

/*
 * The extra hop's MTU: a segment that does not fit the route to site b's LB node once
 * wrapped (locked route MTU 1400) gets ICMP "fragmentation needed" from the VIP telling
 * 1400 - 44; one that fits leaves. On the receiving side, an inner packet too big for
 * the route to this site's backend gets the same reply, sent back the way it came.
 */
static void test_pop_mtu(void **state)
{
	static struct fleet f;

	(void)state;
	T_NEED_ROOT();
	assert_int_equal(system("ip route add 10.98.0.0/24 via 192.0.2.254 mtu lock 1400"), 0);
	assert_int_equal(system("ip route add 10.99.0.0/24 via 192.0.2.254 mtu lock 1300"), 0);
	fleet_init(&f);
	struct fp_lb *lb = fleet_open(&f);
	__u8 in[FP_PKT_MAX], out[FP_PKT_MAX];
	struct ts_opts o;
	__u32 on;
	int n;

	struct fp_pkt_spec s = segment(f.v4, 37000, 7, &o);
	s.payload_len = 1400 - 44 - 20 - 32; /* fits: IP length 1356 */
	assert_int_equal(run_spec(&f, lb, &s, out, &on), XDP_TX);
	assert_int_equal(t_counter(lb, FP_CNT_POP_OUT), 1);
	s.payload_len++;
	n = fp_pkt_build(&s, in, sizeof(in));
	in[14 + 6] |= 0x40; /* DF */
	fp_pkt_ipv4_fix_csum(in + 14);
	assert_int_equal(run(&f, lb, in, (size_t)n, out, &on), XDP_TX);
	assert_int_equal(t_counter(lb, FP_CNT_ICMP_TOO_BIG), 1);
	assert_int_equal(out[14 + 9], IPPROTO_ICMP);
	assert_int_equal(out[14 + 20], 3);
	assert_int_equal(out[14 + 21], 4);
	assert_int_equal(out[14 + 26] << 8 | out[14 + 27], 1400 - 44);
	assert_memory_equal(out + 14 + 16, in + 14 + 12, 4); /* to the client */
	assert_int_equal(t_counter(lb, FP_CNT_POP_OUT), 1);

	/* Receiving: fits the inter-site link, not this site's route to backend 1. */
	s = segment(f.v4, 37001, 1, &o);
	s.payload_len = 1300;
	n = fp_pkt_build(&s, in, sizeof(in));
	in[14 + 6] |= 0x40;
	fp_pkt_ipv4_fix_csum(in + 14);
	{
		__u8 msg[FP_PKT_MAX];
		struct fp_encap_spec e = {};
		int m;

		memcpy(e.dst_mac, t_ns.own_mac, 6);
		memcpy(e.src_mac, t_ns.next_hop_mac, 6);
		e.encap_port = FP_DEFAULT_ENCAP_PORT;
		e.hop_count = 1;
		e.hops[0] = fp_pkt_addr("192.0.2.1");
		e.outer_src = fp_pkt_addr("10.98.0.11");
		e.type = FP_PRIV_TYPE_CROSS_SITE;
		m = fp_pkt_encap(&e, in + 14, (size_t)n - 14, msg, sizeof(msg));
		assert_true(m > 0);
		assert_int_equal(run(&f, lb, msg, (size_t)m, out, &on), XDP_TX);
	}
	assert_int_equal(t_counter(lb, FP_CNT_ICMP_TOO_BIG), 2);
	assert_int_equal(out[14 + 9], IPPROTO_ICMP);
	assert_int_equal(out[14 + 26] << 8 | out[14 + 27], 1300 - 44);
	assert_memory_equal(out + 14 + 16, in + 14 + 12, 4); /* to the client */
	assert_memory_equal(out + 14 + 12, in + 14 + 16, 4); /* from the VIP */
	assert_memory_equal(out, t_ns.next_hop_mac, 6);	     /* back the way it came */
	assert_int_equal(t_counter(lb, FP_CNT_POP_IN), 0);
	t_close(lb);
	assert_int_equal(system("ip route del 10.98.0.0/24; ip route del 10.99.0.0/24"), 0);
}

/*
 * An ICMP "fragmentation needed" / "packet too big" from a router on the way back to the
 * client (@rbuf keeps the quoted segment's bytes), quoting @quote bytes of a segment the
 * flow @c's backend @sid sent: its TSval carries the ticket.
 */
static struct fp_pkt_spec ptb_about(const struct fp_pkt_spec *c, __u16 sid, size_t quote,
				    struct ts_opts *o, __u8 *rbuf)
{
	struct fp_pkt_spec reply = *c, icmp = {};
	__u32 tsval = ticket_for(c, sid, 4242);
	int v6 = !fp_addr_v4(&c->dst);
	__u8 b[12] = { 1,
		       1,
		       8,
		       10,
		       (__u8)(tsval >> 24),
		       (__u8)(tsval >> 16),
		       (__u8)(tsval >> 8),
		       (__u8)tsval,
		       0,
		       0,
		       0x12,
		       0x34 };
	int n;

	memcpy(o->b, b, sizeof(b));
	reply.src = c->dst;
	reply.dst = c->src;
	reply.sport = c->dport;
	reply.dport = c->sport;
	reply.tcp_options = o->b;
	reply.tcp_options_len = sizeof(o->b);
	n = fp_pkt_build(&reply, rbuf, FP_PKT_MAX);
	assert_true(n > 14 && (size_t)n - 14 >= quote);
	icmp.src = fp_pkt_addr(v6 ? "2001:db8:ee::1" : "192.0.2.99");
	icmp.dst = c->dst;
	icmp.proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	icmp.icmp_type = v6 ? 2 : 3;
	icmp.icmp_code = v6 ? 0 : 4;
	icmp.icmp_rest = 1280;
	icmp.payload = rbuf + 14;
	icmp.payload_len = quote;
	return icmp;
}

/*
 * Path-MTU discovery across sites: a too-big error about a flow whose backend is at site
 * b reaches this node (the route moved); the quoted segment's ticket sends it to b's LB
 * node, cross-site. The error about a flow of this site's backend 2 goes to 2 whatever
 * its bucket says. A cross-site error goes to this site's backend. A quote that ends
 * inside the TCP options carries no ticket: the normal path (ticket_no_timestamp).
 */
static void test_pop_ptb(void **state)
{
	static struct fleet f;

	(void)state;
	T_NEED_ROOT();
	fleet_init(&f);
	struct fp_lb *lb = fleet_open(&f);

	for (int fam = 0; fam < 2; fam++) {
		const struct fp_vip_cfg *v = fam ? f.v6 : f.v4;
		struct fp_pkt_spec c = t_client_spec(v, 38000, FP_TCP_ACK, 100);
		__u8 rbuf[FP_PKT_MAX], in[FP_PKT_MAX], out[FP_PKT_MAX], want[FP_PKT_MAX];
		size_t whole = (fam ? 40 : 20) + 32 + 100;
		struct ts_opts o;
		struct fp_pkt_spec icmp;
		__u64 hash = t_hash(&c, 0), routed = t_counter(lb, FP_CNT_ICMP_ROUTED);
		__u32 n;
		int wn, m;

		/* Backend 7 (site b): to b's node, marked cross-site. */
		icmp = ptb_about(&c, 7, whole, &o, rbuf);
		wn = expect_frame_hash(&icmp, pop_lb_hash(&f, 1, hash), FP_PRIV_TYPE_CROSS_SITE,
				       hash, want);
		assert_int_equal(run_spec(&f, lb, &icmp, out, &n), XDP_TX);
		assert_int_equal(n, wn);
		assert_memory_equal(out, want, n);
		assert_int_equal(t_counter(lb, FP_CNT_ICMP_ROUTED) - routed, 1);
		/* Backend 2 (here), whatever the bucket says. */
		icmp = ptb_about(&c, 2, whole, &o, rbuf);
		wn = expect_frame_hash(&icmp, t_backend(v, 2)->addr, FP_PRIV_TYPE_HOPS, hash, want);
		assert_int_equal(run_spec(&f, lb, &icmp, out, &n), XDP_TX);
		assert_int_equal(n, wn);
		assert_memory_equal(out, want, n);
		/* Cross-site, from b's node, naming backend 1: to backend 1. */
		icmp = ptb_about(&c, 1, whole, &o, rbuf);
		m = cross_frame(&icmp, "10.98.0.11", "192.0.2.1", FP_DEFAULT_ENCAP_PORT, in);
		wn = expect_frame_hash(&icmp, t_backend(v, 1)->addr, FP_PRIV_TYPE_HOPS, hash, want);
		assert_int_equal(run(&f, lb, in, (size_t)m, out, &n), XDP_TX);
		assert_int_equal(n, wn);
		assert_memory_equal(out, want, n);
		/* A quote ending inside the options: no ticket read, the normal path. */
		__u64 nots = t_counter(lb, FP_CNT_TICKET_NO_TIMESTAMP);
		icmp = ptb_about(&c, 7, (fam ? 40 : 20) + 24, &o, rbuf);
		assert_int_equal(run_spec(&f, lb, &icmp, out, &n), XDP_TX);
		assert_int_equal(t_counter(lb, FP_CNT_TICKET_NO_TIMESTAMP) - nots, 1);
		assert_true(out[14 + (fam ? 6 : 9)] == IPPROTO_UDP);
	}
	assert_int_equal(t_counter(lb, FP_CNT_POP_OUT), 2);
	assert_int_equal(t_counter(lb, FP_CNT_POP_IN), 2);
	assert_int_equal(sessions(lb), 0);
	t_close(lb);
}

/* What the verifier processed for the program with cross-site forwarding (reported). */
static void test_pop_verified_instructions(void **state)
{
	static struct fleet f;
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	(void)state;
	T_NEED_ROOT();
	fleet_init(&f);
	struct fp_lb *lb = fleet_open(&f);

	assert_int_equal(bpf_obj_get_info_by_fd(fp_lb_prog_fd(lb), &info, &len), 0);
	fprintf(stderr, "# fp_lb: %u verified instructions (limit 1000000)\n", info.verified_insns);
	assert_true(info.verified_insns > 0 && info.verified_insns < 1000000);
	t_close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pop_out),
		cmocka_unit_test(test_pop_in),
		cmocka_unit_test(test_pop_sources),
		cmocka_unit_test(test_pop_other_mac),
		cmocka_unit_test(test_pop_inner),
		cmocka_unit_test(test_pop_malformed),
		cmocka_unit_test(test_pop_flood),
		cmocka_unit_test(test_pop_mtu),
		cmocka_unit_test(test_pop_ptb),
		cmocka_unit_test(test_pop_verified_instructions),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
