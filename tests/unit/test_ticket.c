// SPDX-License-Identifier: MIT
/*
 * TCP connection tickets (flowpin/ticket.h): the published vectors (computed
 * by an independent model), the round trip for every K, exact restoration across the
 * clock's wrap and at the edges of the window, what happens outside it, and what a
 * ticket of another flow, another key or a forger names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <flowpin/addr.h>
#include <flowpin/ticket.h>
#include "common/hash_vectors.h"
#include "common/ticket_vectors.h"

/* A fixed pseudo-random stream (splitmix64 of a counter): every run sees the same values. */
static __u64 draw(__u64 *counter)
{
	__u64 z = (*counter += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void tcp_flow(struct fp_flow_key *k, const char *client, const char *vip, __u16 cport,
		     __u16 vport)
{
	struct fp_addr a;

	memset(k, 0, sizeof(*k));
	assert_int_equal(fp_addr_parse(client, &a), 0);
	memcpy(k->src, a.a, 16);
	assert_int_equal(fp_addr_parse(vip, &a), 0);
	memcpy(k->dst, a.a, 16);
	k->sport = htons(cport);
	k->dport = htons(vport);
	k->proto = IPPROTO_TCP;
}

static void random_tcp_flow(__u64 *c, struct fp_flow_key *k)
{
	__u64 r = draw(c);

	memset(k, 0, sizeof(*k));
	fp_addr_from_v4(k->src, (__be32)r);
	fp_addr_from_v4(k->dst, (__be32)(r >> 32));
	r = draw(c);
	k->sport = (__be16)r;
	k->dport = (__be16)(r >> 16);
	k->proto = IPPROTO_TCP;
}

static void test_vectors(void **state)
{
	struct fp_hash_key tk;

	(void)state;
	fp_ticket_key_derive(&fp_vector_key, &tk);
	assert_int_equal(tk.k0, fp_vector_ticket_key.k0);
	assert_int_equal(tk.k1, fp_vector_ticket_key.k1);
	for (size_t i = 0; i < sizeof(fp_ticket_vectors) / sizeof(fp_ticket_vectors[0]); i++) {
		const struct fp_ticket_vector *v = &fp_ticket_vectors[i];
		struct fp_flow_key f;
		__u64 fh;

		tcp_flow(&f, v->client, v->vip, v->client_port, v->vip_port);
		fh = fp_ticket_flow_hash(&tk, &f);
		assert_int_equal(fh, v->fh);
		assert_int_equal(fp_ticket_encode(v->tsval, fh, v->sid, v->bits), v->ticket);
		assert_int_equal(fp_ticket_sid(v->ticket, fh, v->bits), v->sid);
		assert_int_equal(fp_ticket_restore(v->ticket, fh, v->bits, v->tsval), v->tsval);
	}
	/* The formula by hand, with a hash chosen to show each part. */
	assert_int_equal(fp_ticket_encode(0x12345678, 0x000000f011111111ULL, 5, 8),
			 (0x23456789U << 8) | (5 ^ 0xf0));
	assert_int_equal(fp_ticket_encode(0xffffffff, 0x0000000000000002ULL, 1, 12),
			 (1U << 12) | 1);
	assert_int_equal(fp_ticket_window_ms(8), 8388608); /* 2.33 h */
	assert_int_equal(fp_ticket_window_ms(1), 0x40000000);
	assert_int_equal(fp_ticket_window_ms(12), 524288);
}

/* The ticket key is the fleet key's, and neither it nor the bucket hash. */
static void test_key_derivation(void **state)
{
	struct fp_hash_key a, b, other = fp_vector_key;
	struct fp_flow_key f;

	(void)state;
	fp_ticket_key_derive(&fp_vector_key, &a);
	fp_ticket_key_derive(&fp_vector_key, &b);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_true(a.k0 != fp_vector_key.k0 && a.k1 != fp_vector_key.k1 && a.k0 != a.k1);
	other.k1 ^= 1;
	fp_ticket_key_derive(&other, &b);
	assert_true(a.k0 != b.k0 && a.k1 != b.k1);
	tcp_flow(&f, "192.0.2.1", "198.51.100.10", 40000, 443);
	assert_true(fp_ticket_flow_hash(&a, &f) != fp_flow_hash(&fp_vector_key, &f));
}

/* Every K: the id comes back, and the original TSval exactly, while the echo is fresh. */
static void test_round_trip_every_k(void **state)
{
	struct fp_hash_key tk;
	__u64 c = 11;

	(void)state;
	fp_ticket_key_derive(&fp_vector_key, &tk);
	for (__u8 k = FP_TICKET_MIN_BITS; k <= FP_TICKET_MAX_BITS; k++) {
		__u32 window = fp_ticket_window_ms(k);

		for (int i = 0; i < 20000; i++) {
			struct fp_flow_key f;
			__u64 fh, r = draw(&c);
			__u32 tsval = (__u32)r, t, lag;
			__u16 sid = (__u16)((r >> 32) & fp_ticket_mask(k));

			random_tcp_flow(&c, &f);
			fh = fp_ticket_flow_hash(&tk, &f);
			t = fp_ticket_encode(tsval, fh, sid, k);
			assert_int_equal(fp_ticket_sid(t, fh, k), sid);
			/* The echo is as old as anything up to the window: still exact. */
			lag = (__u32)(draw(&c) % ((__u64)window + 1));
			if (fp_ticket_restore(t, fh, k, tsval + lag) != tsval)
				fail_msg("K=%u tsval %#x lag %u: restored %#x", k, tsval, lag,
					 fp_ticket_restore(t, fh, k, tsval + lag));
		}
	}
}

/* The clock's wrap (2^32 ms, 49.7 days) and the window's edges, for every K. */
static void test_restore_edges(void **state)
{
	static const __u32 tsvals[] = { 0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff };
	struct fp_hash_key tk;
	struct fp_flow_key f;
	__u64 fh;

	(void)state;
	fp_ticket_key_derive(&fp_vector_key, &tk);
	tcp_flow(&f, "2001:db8::1", "2001:db8::10", 40000, 443);
	fh = fp_ticket_flow_hash(&tk, &f);
	for (__u8 k = FP_TICKET_MIN_BITS; k <= FP_TICKET_MAX_BITS; k++) {
		__u32 w = fp_ticket_window_ms(k), period = 2 * w;

		for (size_t i = 0; i < sizeof(tsvals) / sizeof(tsvals[0]); i++) {
			__u32 ts = tsvals[i], t = fp_ticket_encode(ts, fh, 3, k);
			/* now - tsval, wrapping: 0 .. w is exact, and up to w - 1 ahead */
			const __u32 exact[] = { 0, 1, 2, 1000, w - 1, w, (__u32)-1, -(w - 1) };

			for (size_t j = 0; j < sizeof(exact) / sizeof(exact[0]); j++)
				if (fp_ticket_restore(t, fh, k, ts + exact[j]) != ts)
					fail_msg("K=%u tsval %#x now %#x: got %#x", k, ts,
						 ts + exact[j],
						 fp_ticket_restore(t, fh, k, ts + exact[j]));
			/*
			 * Outside the window the result is the congruent value nearest to the
			 * clock: off by exactly one period, never anything else.
			 */
			assert_int_equal(fp_ticket_restore(t, fh, k, ts + w + 1), ts + period);
			assert_int_equal(fp_ticket_restore(t, fh, k, ts - w), ts - period);
			assert_int_equal(fp_ticket_restore(t, fh, k, ts + period), ts + period);
		}
	}
	/* Across the wrap, K = 8: sent 3 ms before it, echoed 5 ms after it. */
	{
		__u32 t = fp_ticket_encode(0xfffffffd, fh, 7, 8);

		assert_int_equal(fp_ticket_restore(t, fh, 8, 4), 0xfffffffd);
		t = fp_ticket_encode(2, fh, 7, 8);
		assert_int_equal(fp_ticket_restore(t, fh, 8, 0xffffffff), 2); /* 3 ms ahead */
	}
}

/*
 * A ticket belongs to its flow: under another flow (a client replaying its TSecr on a
 * new connection, or a forger guessing) it names an id at random, 1 in 2^K the same.
 * And what the client sees (the ticket's low K bits) says nothing about the id.
 */
static void test_other_flows_and_forgery(void **state)
{
	enum { N = 200000 };
	struct fp_hash_key tk, other_key = fp_vector_key;
	static unsigned int hist[256], hist_seen[256];
	unsigned int same_other_flow = 0, same_other_key = 0;
	__u64 c = 99;

	(void)state;
	fp_ticket_key_derive(&fp_vector_key, &tk);
	other_key.k0 ^= 0x100;
	fp_ticket_key_derive(&other_key, &other_key);
	for (int i = 0; i < N; i++) {
		struct fp_flow_key f, g;
		__u32 t, forged = (__u32)draw(&c);
		__u64 fh, gh;

		random_tcp_flow(&c, &f);
		random_tcp_flow(&c, &g);
		fh = fp_ticket_flow_hash(&tk, &f);
		gh = fp_ticket_flow_hash(&tk, &g);
		t = fp_ticket_encode((__u32)draw(&c), fh, 42, 8);
		same_other_flow += fp_ticket_sid(t, gh, 8) == 42;
		same_other_key += fp_ticket_sid(t, fp_ticket_flow_hash(&other_key, &f), 8) == 42;
		hist[fp_ticket_sid(forged, fh, 8)]++;
		hist_seen[t & 0xff]++; /* one backend's tickets as clients see them */
	}
	/* Expected N / 256 = 781 each; 5 sigma = 140. */
	print_message("# same id under another flow: %u, another key: %u of %d\n", same_other_flow,
		      same_other_key, N);
	assert_in_range(same_other_flow, 781 - 140, 781 + 140);
	assert_in_range(same_other_key, 781 - 140, 781 + 140);
	for (int i = 0; i < 256; i++) {
		assert_in_range(hist[i], 781 - 140, 781 + 140);
		assert_in_range(hist_seen[i], 781 - 140, 781 + 140);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_key_derivation),
		cmocka_unit_test(test_round_trip_every_k),
		cmocka_unit_test(test_restore_edges),
		cmocka_unit_test(test_other_flows_and_forgery),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
