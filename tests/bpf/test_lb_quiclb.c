// SPDX-License-Identifier: MIT
/*
 * QUIC-LB in the LB XDP program (bpf/quic.h, docs/design.md step 3): CIDs made
 * by lib/quiclb.c's fp_quiclb_encode() (plaintext and single-pass AES) send a packet
 * without session to the backend they name, whatever its bucket says, as the exact
 * frame; long headers (v1 and v2 type bits) and short headers; v4 and v6. Unroutable
 * packets (config bits, short or truncated headers, unknown server IDs, down backends)
 * take the normal path with their counter; forged and garbage payloads never reach
 * anything but the VIP's own backends; a session hit reads no QUIC at all.
 */
#include <sys/random.h>
#include <flowpin/quiclb.h>
#include "test_lb_fixture.h"

#define TABLE 65537
static __u16 table[TABLE];

#define QUIC_V1 0x00000001u
#define QUIC_V2 0x6b3343cfu

static const __u8 key_a[16] = { 0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80,
				0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f };
static const __u8 key_b[16] = { 0xfd, 0xf7, 0x26, 0xa9, 0x89, 0x3e, 0xc0, 0x5c,
				0x06, 0x32, 0xd3, 0x95, 0x66, 0x80, 0xba, 0xf0 };

/*
 * VIP 0: IPv4, plaintext, config 1, 2-octet server IDs. VIP 1: IPv6, single-pass AES
 * (3 + 13 = 16), config 2. VIP 2: IPv4, single-pass AES (1 + 15), config 0, its
 * backends' server IDs equal to VIP 0's first octets (forgery across VIPs).
 */
static void quic_config(struct t_config *t, enum fp_pinning mode)
{
	struct fp_vip_cfg *v;
	struct fp_backend_cfg *b;

	t_config_init(t, TABLE);
	v = t_add_vip(t, "203.0.113.20", 443, IPPROTO_UDP, mode);
	v->has_quic_lb = true;
	v->quic_lb = (struct fp_quiclb_cfg){ .config_id = 1, .server_id_len = 2, .nonce_len = 6 };
	for (__u32 id = 1; id <= 4; id++) {
		char a[32];

		snprintf(a, sizeof(a), "10.2.0.%u", id);
		b = t_add_backend(v, id, a);
		b->server_id[0] = 0x50 + (__u8)id;
		b->server_id[1] = 0xa0;
	}
	v = t_add_vip(t, "2001:db8:100::20", 443, IPPROTO_UDP, mode);
	v->has_quic_lb = true;
	v->quic_lb = (struct fp_quiclb_cfg){
		.config_id = 2, .server_id_len = 3, .nonce_len = 13, .encrypted = true
	};
	memcpy(v->quic_lb.key, key_a, 16);
	for (__u32 id = 1; id <= 4; id++) {
		char a[32];

		snprintf(a, sizeof(a), "2001:db8:200::%u", id);
		b = t_add_backend(v, id, a);
		b->server_id[0] = 0x11;
		b->server_id[1] = 0x22;
		b->server_id[2] = (__u8)(0x30 + id);
	}
	v = t_add_vip(t, "203.0.113.21", 443, IPPROTO_UDP, mode);
	v->has_quic_lb = true;
	v->quic_lb = (struct fp_quiclb_cfg){
		.config_id = 0, .server_id_len = 1, .nonce_len = 15, .encrypted = true
	};
	memcpy(v->quic_lb.key, key_b, 16);
	for (__u32 id = 1; id <= 3; id++) {
		char a[32];

		snprintf(a, sizeof(a), "10.3.0.%u", id);
		b = t_add_backend(v, id, a);
		b->server_id[0] = 0x50 + (__u8)id;
	}
}

/* A CID of @v naming backend @id, nonce from @seed. Returns its length. */
static size_t cid_for(const struct fp_vip_cfg *v, __u16 id, __u32 seed, __u8 *cid)
{
	__u8 nonce[FP_QUICLB_MAX_NONCE];
	size_t len = 0;

	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (__u8)(seed * 131 + i * 17 + (seed >> 8));
	assert_int_equal(
		fp_quiclb_encode(&v->quic_lb, t_backend(v, id)->server_id, nonce, cid, &len), 0);
	assert_int_equal(len, fp_quiclb_cid_len(&v->quic_lb));
	return len;
}

enum hdr {
	LONG_V1_INITIAL, /* 0b11 00 ....: v1 Initial */
	LONG_V1_HANDSHAKE,
	LONG_V2_INITIAL, /* v2 changed the type bits: Initial is 0b01 */
	LONG_V2_HANDSHAKE,
	SHORT,
	N_HDR
};

/* A QUIC packet (UDP payload) of header @h with destination CID @cid. Returns its length. */
static size_t quic_payload(enum hdr h, const __u8 *cid, size_t cid_len, __u8 *p)
{
	static const __u8 type_bits[] = { 0x00, 0x20, 0x10, 0x30 };
	size_t n = 0;

	if (h == SHORT) {
		p[n++] = 0x41;
	} else {
		__u32 version = h <= LONG_V1_HANDSHAKE ? QUIC_V1 : QUIC_V2;

		p[n++] = (__u8)(0xc0 | type_bits[h] | 0x03);
		p[n++] = (__u8)(version >> 24);
		p[n++] = (__u8)(version >> 16);
		p[n++] = (__u8)(version >> 8);
		p[n++] = (__u8)version;
		p[n++] = (__u8)cid_len;
	}
	memcpy(p + n, cid, cid_len);
	n += cid_len;
	if (h != SHORT) {
		p[n++] = 8; /* SCID */
		memset(p + n, 0x5c, 8);
		n += 8;
	}
	memset(p + n, 0xab, 40); /* packet number, payload, tag: opaque to the LB */
	return n + 40;
}

static struct fp_pkt_spec quic_spec(const struct fp_vip_cfg *v, __u32 n, const __u8 *payload,
				    size_t len)
{
	struct fp_pkt_spec s = t_client_spec(v, (__u16)(20000 + n % 30000), 0, len);
	char a[64];

	if (fp_addr_v4(&v->addr))
		snprintf(a, sizeof(a), "198.51.%u.%u", 100 + (n >> 8) % 100, n & 0xff);
	else
		snprintf(a, sizeof(a), "2001:db8:c:%x::%x", (n >> 8) & 0xffff, n & 0xff);
	s.src = fp_pkt_addr(a);
	s.payload = payload;
	return s;
}

/* The bucket owner of @s's flow (the normal path of a packet without session). */
static __u16 owner_of(const struct fp_pkt_spec *s)
{
	return table[fp_hash_bucket(t_hash(s, 0), TABLE)];
}

static __u32 generation(struct fp_lb *lb)
{
	struct fp_info info;

	assert_int_equal(fp_lb_info(lb, &info), 0);
	return info.generation;
}

/* Runs @s; expects it sent to backend @want (one hop) as the exact frame. */
static void expect_sent_to(struct fp_lb *lb, const struct fp_vip_cfg *v,
			   const struct fp_pkt_spec *s, __u16 want)
{
	__u8 out[FP_PKT_MAX], exp[FP_PKT_MAX];
	__u32 out_len;
	__u16 hops[2];
	int n;

	assert_int_equal(t_run_spec(lb, s, out, &out_len), XDP_TX);
	n = t_hops_of(out, out_len, v, hops);
	if (n != 1 || hops[0] != want)
		fail_msg("vip %s: sent to %u (%d hops), expected %u", v->name, hops[0], n, want);
	n = t_expect(s, v, &want, 1, generation(lb), exp);
	assert_int_equal(out_len, n);
	assert_memory_equal(out, exp, out_len);
}

static __u64 quic_counters(struct fp_lb *lb)
{
	return t_counter(lb, FP_CNT_QUIC_LB_HIT) + t_counter(lb, FP_CNT_QUIC_LB_NO_CID) +
	       t_counter(lb, FP_CNT_QUIC_LB_CONFIG) + t_counter(lb, FP_CNT_QUIC_LB_UNKNOWN_SERVER) +
	       t_counter(lb, FP_CNT_QUIC_LB_DEAD_BACKEND) +
	       t_counter(lb, FP_CNT_QUIC_LB_DECRYPT_ERROR);
}

/*
 * Every backend of every VIP, named by CIDs in every header form, gets the packet,
 * exactly, also where the flow's bucket names another backend (counted: most do).
 */
static void test_cid_routes_to_named_backend(void **state)
{
	static struct t_config t;
	__u64 hits = 0, against_bucket = 0;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	quic_config(&t, FP_PIN_HASH);
	lb = t_open(&t);
	for (size_t vi = 0; vi < t.cfg.n_vips; vi++) {
		const struct fp_vip_cfg *v = &t.vips[vi];

		t_maglev(&t, v, table);
		for (size_t bi = 0; bi < v->n_backends; bi++) {
			__u16 id = (__u16)v->backends[bi].id;

			for (__u32 n = 0; n < 40; n++) {
				__u8 cid[FP_QUICLB_MAX_CID], payload[128];
				size_t cl = cid_for(v, id, n + 1000 * id, cid);
				size_t pl = quic_payload((enum hdr)(n % N_HDR), cid, cl, payload);
				struct fp_pkt_spec s = quic_spec(v, n * 257 + id, payload, pl);

				against_bucket += owner_of(&s) != id;
				expect_sent_to(lb, v, &s, id);
				hits++;
			}
		}
	}
	assert_int_equal(t_counter(lb, FP_CNT_QUIC_LB_HIT), hits);
	assert_int_equal(quic_counters(lb), hits);
	assert_true(against_bucket > hits / 2);
	t_close(lb);
}

/* A CID longer than the VIP's (the draft lets a server append octets) still routes. */
static void test_long_header_longer_dcid(void **state)
{
	static struct t_config t;
	const struct fp_vip_cfg *v;
	__u8 cid[FP_QUICLB_MAX_CID] = { 0 }, payload[128];
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	quic_config(&t, FP_PIN_HASH);
	v = &t.vips[0];
	lb = t_open(&t);
	cid_for(v, 3, 7, cid); /* 9 octets, then 11 more of the server's */
	for (__u32 n = 0; n < 20; n++) {
		size_t pl = quic_payload(LONG_V1_INITIAL, cid, FP_QUICLB_MAX_CID, payload);
		struct fp_pkt_spec s = quic_spec(v, n, payload, pl);

		expect_sent_to(lb, v, &s, 3);
	}
	assert_int_equal(t_counter(lb, FP_CNT_QUIC_LB_HIT), 20);
	t_close(lb);
}

struct unroutable_case {
	const char *what;
	size_t vip;
	enum fp_counter counter;
	void (*make)(const struct fp_vip_cfg *v, __u32 n, __u8 *payload, size_t *len);
};

static void mk_config_111(const struct fp_vip_cfg *v, __u32 n, __u8 *p, size_t *len)
{
	__u8 cid[FP_QUICLB_MAX_CID];
	size_t cl = cid_for(v, 1, n, cid);

	cid[0] = (__u8)(0xe0 | (cid[0] & 0x1f));
	*len = quic_payload(n & 1 ? SHORT : LONG_V1_INITIAL, cid, cl, p);
}

static void mk_other_config(const struct fp_vip_cfg *v, __u32 n, __u8 *p, size_t *len)
{
	__u8 cid[FP_QUICLB_MAX_CID];
	size_t cl = cid_for(v, 2, n, cid);

	cid[0] ^= 0x80; /* config 1 -> 5, 2 -> 6 */
	*len = quic_payload(n & 1 ? SHORT : LONG_V2_INITIAL, cid, cl, p);
}

/* A client's first Initial: a random 8-octet DCID, shorter than the VIP's CIDs. */
static void mk_client_initial(const struct fp_vip_cfg *v, __u32 n, __u8 *p, size_t *len)
{
	__u8 cid[8];

	(void)v;
	for (int i = 0; i < 8; i++)
		cid[i] = (__u8)(n * 7 + i);
	cid[0] = (__u8)((v->quic_lb.config_id << 5) | (cid[0] & 0x1f));
	*len = quic_payload(n & 1 ? LONG_V1_INITIAL : LONG_V2_INITIAL, cid, sizeof(cid), p);
}

static void mk_dcid_too_long(const struct fp_vip_cfg *v, __u32 n, __u8 *p, size_t *len)
{
	__u8 cid[FP_QUICLB_MAX_CID + 1] = { 0 };

	cid_for(v, 1, n, cid);
	*len = quic_payload(LONG_V1_HANDSHAKE, cid, sizeof(cid), p);
}

/* Payloads cut anywhere before the end of the VIP's CID. */
static void mk_truncated(const struct fp_vip_cfg *v, __u32 n, __u8 *p, size_t *len)
{
	__u8 cid[FP_QUICLB_MAX_CID];
	size_t cl = cid_for(v, 1, n, cid), full;
	int short_hdr = n & 1;

	full = quic_payload(short_hdr ? SHORT : LONG_V1_INITIAL, cid, cl, p);
	(void)full;
	*len = (n / 2) % ((short_hdr ? 1 : 6) + cl);
}

/* Server IDs no backend of the VIP has: plaintext ones named directly, random AES blocks. */
static void mk_unknown_server(const struct fp_vip_cfg *v, __u32 n, __u8 *p, size_t *len)
{
	__u8 cid[FP_QUICLB_MAX_CID];
	size_t cl = fp_quiclb_cid_len(&v->quic_lb);

	for (size_t i = 0; i < cl; i++)
		cid[i] = (__u8)(n * 31 + i * 101 + 7);
	cid[0] = (__u8)((v->quic_lb.config_id << 5) | (cl - 1));
	if (!v->quic_lb.encrypted) {
		cid[1] = 0x99; /* no backend's */
	} else {
		__u8 sid[FP_QUICLB_MAX_SID];

		/* Vanishingly unlikely to name a backend; the test checks it did not. */
		assert_int_equal(fp_quiclb_decode(&v->quic_lb, cid, cl, sid), 0);
		for (size_t b = 0; b < v->n_backends; b++)
			if (!memcmp(sid, v->backends[b].server_id, v->quic_lb.server_id_len))
				cid[cl - 1] ^= 1;
	}
	*len = quic_payload(n % N_HDR, cid, cl, p);
}

static const struct unroutable_case unroutable[] = {
	{ "config 0b111, v4 plaintext", 0, FP_CNT_QUIC_LB_CONFIG, mk_config_111 },
	{ "config 0b111, v6 AES", 1, FP_CNT_QUIC_LB_CONFIG, mk_config_111 },
	{ "another config id, v4", 0, FP_CNT_QUIC_LB_CONFIG, mk_other_config },
	{ "another config id, v6", 1, FP_CNT_QUIC_LB_CONFIG, mk_other_config },
	{ "client's first Initial, v4", 0, FP_CNT_QUIC_LB_NO_CID, mk_client_initial },
	{ "client's first Initial, v6", 1, FP_CNT_QUIC_LB_NO_CID, mk_client_initial },
	{ "DCID of 21 octets", 0, FP_CNT_QUIC_LB_NO_CID, mk_dcid_too_long },
	{ "truncated, v4", 0, FP_CNT_QUIC_LB_NO_CID, mk_truncated },
	{ "truncated, v6 AES", 1, FP_CNT_QUIC_LB_NO_CID, mk_truncated },
	{ "unknown server ID, plaintext", 0, FP_CNT_QUIC_LB_UNKNOWN_SERVER, mk_unknown_server },
	{ "unknown server ID, v6 AES", 1, FP_CNT_QUIC_LB_UNKNOWN_SERVER, mk_unknown_server },
	{ "unknown server ID, v4 AES", 2, FP_CNT_QUIC_LB_UNKNOWN_SERVER, mk_unknown_server },
};

/* Each unroutable kind takes the normal path (the bucket's owner), counted by reason. */
static void test_unroutable_take_normal_path(void **state)
{
	static struct t_config t;

	(void)state;
	T_NEED_ROOT();
	quic_config(&t, FP_PIN_HASH);
	for (size_t c = 0; c < sizeof(unroutable) / sizeof(unroutable[0]); c++) {
		const struct unroutable_case *u = &unroutable[c];
		const struct fp_vip_cfg *v = &t.vips[u->vip];
		struct fp_lb *lb = t_open(&t);
		__u32 runs = 60;

		t_maglev(&t, v, table);
		for (__u32 n = 0; n < runs; n++) {
			__u8 payload[128];
			size_t pl = 0;
			struct fp_pkt_spec s;

			u->make(v, n, payload, &pl);
			s = quic_spec(v, n, payload, pl);
			expect_sent_to(lb, v, &s, owner_of(&s));
		}
		if (t_counter(lb, u->counter) != runs || quic_counters(lb) != runs)
			fail_msg("%s: %llu of %u counted as %s, %llu in all", u->what,
				 (unsigned long long)t_counter(lb, u->counter), runs,
				 fp_counter_names[u->counter],
				 (unsigned long long)quic_counters(lb));
		t_close(lb);
	}
}

/* A CID naming a down backend: the normal path (which never picks it), counted. */
static void test_down_backend_normal_path(void **state)
{
	static struct t_config t;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	quic_config(&t, FP_PIN_HASH);
	t.vips[0].backends[1].state = FP_BACKEND_DOWN; /* id 2 */
	t.vips[1].backends[1].state = FP_BACKEND_DOWN;
	lb = t_open(&t);
	for (size_t vi = 0; vi < 2; vi++) {
		const struct fp_vip_cfg *v = &t.vips[vi];

		t_maglev(&t, v, table);
		for (__u32 n = 0; n < 50; n++) {
			__u8 cid[FP_QUICLB_MAX_CID], payload[128];
			size_t cl = cid_for(v, 2, n, cid),
			       pl = quic_payload(n % N_HDR, cid, cl, payload);
			struct fp_pkt_spec s = quic_spec(v, n, payload, pl);

			assert_int_not_equal(owner_of(&s), 2);
			expect_sent_to(lb, v, &s, owner_of(&s));
		}
	}
	assert_int_equal(t_counter(lb, FP_CNT_QUIC_LB_DEAD_BACKEND), 100);
	assert_int_equal(t_counter(lb, FP_CNT_QUIC_LB_HIT), 0);
	/* A draining backend keeps its connections: still routed. */
	t.vips[0].backends[1].state = FP_BACKEND_DRAINING;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	{
		const struct fp_vip_cfg *v = &t.vips[0];
		__u8 cid[FP_QUICLB_MAX_CID], payload[128];
		size_t cl = cid_for(v, 2, 1, cid), pl = quic_payload(SHORT, cid, cl, payload);
		struct fp_pkt_spec s = quic_spec(v, 1, payload, pl);

		expect_sent_to(lb, v, &s, 2);
	}
	assert_int_equal(t_counter(lb, FP_CNT_QUIC_LB_HIT), 1);
	t_close(lb);
}

static bool backend_of_vip(const struct fp_vip_cfg *v, __u16 id)
{
	for (size_t b = 0; b < v->n_backends; b++)
		if (v->backends[b].id == id)
			return true;
	return false;
}

/*
 * Forged and garbage payloads: every plaintext server ID under every config bits, every
 * first octet of random payloads of every length up to 64, random AES blocks. Each
 * packet leaves to a backend of its own VIP (t_hops_of() matches the output's
 * address against that VIP's backends only), and a CID routes only to the backend
 * whose server ID it carries in this VIP, never to another VIP's (VIP 2's server IDs
 * are VIP 0's first octets).
 */
static void test_forged_and_garbage(void **state)
{
	static struct t_config t;
	struct fp_lb *lb;
	__u32 n = 0;

	(void)state;
	T_NEED_ROOT();
	quic_config(&t, FP_PIN_HASH);
	lb = t_open(&t);
	for (__u32 first = 0; first < 256; first += 0x20) {
		for (__u32 sid = 0; sid < 256; sid++) {
			const struct fp_vip_cfg *v = &t.vips[0];
			__u8 cid[9] = { (__u8)(first | 8), (__u8)sid, 0xa0, 1, 2, 3, 4, 5, 6 };
			__u8 payload[128], out[FP_PKT_MAX];
			size_t pl =
				quic_payload(sid & 1 ? SHORT : LONG_V2_HANDSHAKE, cid, 9, payload);
			struct fp_pkt_spec s = quic_spec(v, n++, payload, pl);
			__u32 out_len;
			__u16 hop;

			assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
			assert_int_equal(t_hops_of(out, out_len, v, &hop), 1);
			assert_true(backend_of_vip(v, hop));
			if (first >> 5 == 1 && sid >= 0x51 && sid <= 0x54)
				assert_int_equal(hop, sid - 0x50);
		}
	}
	assert_int_equal(t_counter(lb, FP_CNT_QUIC_LB_HIT), 4);
	for (__u32 i = 0; i < 3000; i++) {
		const struct fp_vip_cfg *v = &t.vips[i % 3];
		__u8 payload[64], out[FP_PKT_MAX];
		size_t pl = i % 65;
		struct fp_pkt_spec s;
		__u32 out_len;
		__u16 hop;

		assert_int_equal(getrandom(payload, sizeof(payload), 0), (ssize_t)sizeof(payload));
		s = quic_spec(v, n++, payload, pl);
		assert_int_equal(t_run_spec(lb, &s, out, &out_len), XDP_TX);
		assert_int_equal(t_hops_of(out, out_len, v, &hop), 1);
		assert_true(backend_of_vip(v, hop));
	}
	/* VIP 0's CIDs sent to VIP 2 name nothing there by their config bits; made
	 * with VIP 2's config they name VIP 2's backends, never VIP 0's. */
	for (__u16 id = 1; id <= 3; id++) {
		const struct fp_vip_cfg *v0 = &t.vips[0], *v2 = &t.vips[2];
		__u8 cid[FP_QUICLB_MAX_CID], payload[128];
		size_t cl = cid_for(v0, id, id, cid), pl = quic_payload(SHORT, cid, cl, payload);
		struct fp_pkt_spec s = quic_spec(v2, id, payload, pl);

		t_maglev(&t, v2, table);
		expect_sent_to(lb, v2, &s, owner_of(&s));
		cl = cid_for(v2, id, id, cid);
		pl = quic_payload(SHORT, cid, cl, payload);
		s = quic_spec(v2, id, payload, pl);
		expect_sent_to(lb, v2, &s, id);
	}
	t_close(lb);
}

/*
 * hash+table: a QUIC-routed flow is admitted like any (first packet marks, second
 * promotes) with the backend its CID named; then a session hit sends it there without
 * reading QUIC at all: a packet of the flow naming another backend still goes to the
 * session's, and no QUIC counter moves. v4 and v6.
 */
static void test_session_hit_reads_no_quic(void **state)
{
	static struct t_config t;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	quic_config(&t, FP_PIN_HASH_TABLE);
	lb = t_open(&t);
	for (size_t vi = 0; vi < 2; vi++) {
		const struct fp_vip_cfg *v = &t.vips[vi];
		__u8 cid[FP_QUICLB_MAX_CID], payload[128];
		size_t cl, pl;
		struct fp_pkt_spec s;
		__u64 before, hits;
		__u32 n;

		t_maglev(&t, v, table);
		/* A flow whose bucket names another backend than 1. */
		for (n = 0;; n++) {
			cl = cid_for(v, 1, n, cid);
			pl = quic_payload(SHORT, cid, cl, payload);
			s = quic_spec(v, n, payload, pl);
			if (owner_of(&s) != 1)
				break;
		}
		expect_sent_to(lb, v, &s, 1); /* marked */
		expect_sent_to(lb, v, &s, 1); /* promoted */
		before = quic_counters(lb);
		hits = t_counter(lb, FP_CNT_SESSION_HIT);
		cl = cid_for(v, 3, n + 1, cid);
		pl = quic_payload(SHORT, cid, cl, payload);
		expect_sent_to(lb, v, &s, 1);
		expect_sent_to(lb, v, &s, 1);
		assert_int_equal(quic_counters(lb), before);
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT), hits + 2);
	}
	t_close(lb);
}

/*
 * Key rotation: a new key (same config id) replaces the VIP's AES context at the next
 * apply: CIDs under the new key route, those under the old one do not any more. Then
 * quic_lb removed: no QUIC is read; back again: it routes.
 */
static void test_key_rotation_and_removal(void **state)
{
	static struct t_config t;
	struct fp_vip_cfg *v;
	__u8 cid[FP_QUICLB_MAX_CID], payload[128];
	struct fp_quiclb_cfg old;
	struct fp_pkt_spec s;
	struct fp_lb *lb;
	size_t cl, pl;

	(void)state;
	T_NEED_ROOT();
	quic_config(&t, FP_PIN_HASH);
	v = &t.vips[1];
	lb = t_open(&t);
	old = v->quic_lb;
	memcpy(v->quic_lb.key, key_b, 16);
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	t_maglev(&t, v, table);
	cl = cid_for(v, 4, 1, cid);
	pl = quic_payload(SHORT, cid, cl, payload);
	s = quic_spec(v, 1, payload, pl);
	expect_sent_to(lb, v, &s, 4);
	{
		struct fp_quiclb_cfg now = v->quic_lb;

		v->quic_lb = old;
		cl = cid_for(v, 4, 1, cid);
		v->quic_lb = now;
	}
	pl = quic_payload(SHORT, cid, cl, payload);
	s = quic_spec(v, 1, payload, pl);
	expect_sent_to(lb, v, &s, owner_of(&s));
	assert_int_equal(t_counter(lb, FP_CNT_QUIC_LB_UNKNOWN_SERVER), 1);

	v->has_quic_lb = false;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	cl = cid_for(v, 4, 2, cid);
	pl = quic_payload(SHORT, cid, cl, payload);
	s = quic_spec(v, 2, payload, pl);
	expect_sent_to(lb, v, &s, owner_of(&s));
	assert_int_equal(quic_counters(lb), 2);
	v->has_quic_lb = true;
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	expect_sent_to(lb, v, &s, 4);
	t_close(lb);
}

/* Four-pass (a key, server ID + nonce != 16) is not decoded in XDP: no QUIC read. */
static void test_four_pass_not_in_xdp(void **state)
{
	static struct t_config t;
	struct fp_vip_cfg *v;
	__u8 cid[FP_QUICLB_MAX_CID], payload[128];
	struct fp_pkt_spec s;
	struct fp_lb *lb;
	size_t cl, pl;

	(void)state;
	T_NEED_ROOT();
	quic_config(&t, FP_PIN_HASH);
	v = &t.vips[0];
	v->quic_lb.encrypted = true;
	memcpy(v->quic_lb.key, key_a, 16);
	lb = t_open(&t);
	t_maglev(&t, v, table);
	cl = cid_for(v, 4, 1, cid);
	pl = quic_payload(SHORT, cid, cl, payload);
	s = quic_spec(v, 1, payload, pl);
	expect_sent_to(lb, v, &s, owner_of(&s));
	assert_int_equal(quic_counters(lb), 0);
	t_close(lb);
}

/*
 * Key rotation through the pins (`lb reload`: another process, which loads the key
 * program on first use) and a take-over (a new program over the pinned maps: the AES
 * contexts are carried in `quic_crypto`, not made again): CIDs route throughout.
 */
static void test_pins_and_take_over(void **state)
{
	static struct t_config t;
	struct fp_lb *lb, *other, *next;
	struct fp_vip_cfg *v;
	__u8 cid[FP_QUICLB_MAX_CID], payload[128];
	struct fp_pkt_spec s;
	char dir[128];
	size_t cl, pl;

	(void)state;
	T_NEED_ROOT();
	quic_config(&t, FP_PIN_HASH);
	v = &t.vips[1];
	lb = t_open(&t);
	snprintf(dir, sizeof(dir), "%s/quic", t_bpffs);
	assert_int_equal(fp_lb_pin(lb, dir), 0);

	memcpy(v->quic_lb.key, key_b, 16);
	assert_int_equal(fp_lb_open_pinned(dir, &other), 0);
	assert_int_equal(fp_lb_apply(other, &t.cfg, NULL), 0);
	fp_lb_close(other);
	cl = cid_for(v, 2, 5, cid);
	pl = quic_payload(SHORT, cid, cl, payload);
	s = quic_spec(v, 5, payload, pl);
	expect_sent_to(lb, v, &s, 2);

	assert_int_equal(fp_lb_open_pinned(dir, &other), 0);
	{
		struct fp_lb_opts opts = { .have_source_v4 = true, .have_source_v6 = true };

		memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
		memcpy(opts.source_v4.a + 12, t_ns.own_v4, 4);
		memcpy(opts.source_v6.a, t_ns.own_v6, 16);
		assert_int_equal(fp_lb_open_over(other, &t.cfg, &opts, &next), 0);
	}
	{
		__u8 out[FP_PKT_MAX], in[FP_PKT_MAX];
		struct xdp_md ctx = { .data_end = 0, .ingress_ifindex = t_ns.ifindex };
		int n = fp_pkt_build(&s, in, sizeof(in));
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_out = out,
			    .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);
		__u16 hop;

		assert_true(n > 0);
		o.data_size_in = (__u32)n;
		ctx.data_end = (__u32)n;
		assert_int_equal(bpf_prog_test_run_opts(fp_lb_prog_fd(next), &o), 0);
		assert_int_equal(o.retval, XDP_TX);
		assert_int_equal(t_hops_of(out, o.data_size_out, v, &hop), 1);
		assert_int_equal(hop, 2);
	}
	assert_int_equal(t_counter(next, FP_CNT_QUIC_LB_HIT), 2);
	fp_lb_close(next);
	fp_lb_close(other);
	assert_int_equal(fp_lb_unpin(dir), 0);
	t_runs++; /* the take-over's run, counted in the shared maps */
	t_close(lb);
}

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
		cmocka_unit_test(test_cid_routes_to_named_backend),
		cmocka_unit_test(test_long_header_longer_dcid),
		cmocka_unit_test(test_unroutable_take_normal_path),
		cmocka_unit_test(test_down_backend_normal_path),
		cmocka_unit_test(test_forged_and_garbage),
		cmocka_unit_test(test_session_hit_reads_no_quic),
		cmocka_unit_test(test_key_rotation_and_removal),
		cmocka_unit_test(test_four_pass_not_in_xdp),
		cmocka_unit_test(test_pins_and_take_over),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
