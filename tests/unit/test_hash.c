// SPDX-License-Identifier: MIT
/*
 * The flow hash: the generic SipHash against the SipHash paper's reference vectors,
 * the unrolled BPF/userspace fp_flow_hash() against the generic one, flowpin's own
 * published vectors (tests/common/hash_vectors.h, shared with the BPF tier), and the
 * spread of flows over buckets.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <flowpin/hash.h>
#include <flowpin/siphash.h>
#include "common/hash_vectors.h"

/*
 * SipHash-2-4 reference vectors (the paper's appendix and the reference code's
 * vectors.h): key 00..0f, message = the first LEN bytes of 00 01 02 ...
 * LEN 15 is the paper's worked example; 40 is the flow key's length.
 */
static const struct {
	size_t len;
	__u64 want;
} sip24_vectors[] = {
	{ 0, 0x726fdb47dd0e0e31ULL },  { 1, 0x74f839c593dc67fdULL },  { 7, 0xab0200f58b01d137ULL },
	{ 8, 0x93f5f5799a932462ULL },  { 9, 0x9e0082df0ba9e4b0ULL },  { 15, 0xa129ca6149be45e5ULL },
	{ 16, 0x3f2acc7f57c29bdbULL }, { 40, 0x0e3ea96b5304a7d0ULL }, { 63, 0x958a324ceb064572ULL },
};

static void test_siphash24_reference_vectors(void **state)
{
	__u8 msg[64];

	(void)state;
	for (int i = 0; i < 64; i++)
		msg[i] = (__u8)i;
	for (size_t i = 0; i < sizeof(sip24_vectors) / sizeof(sip24_vectors[0]); i++) {
		__u64 got = fp_siphash(&fp_vector_key, msg, sip24_vectors[i].len, 2, 4);

		if (got != sip24_vectors[i].want)
			fail_msg("SipHash-2-4 of %zu bytes: got %#llx, want %#llx",
				 sip24_vectors[i].len, (unsigned long long)got,
				 (unsigned long long)sip24_vectors[i].want);
	}
}

/* xorshift64*: a fixed, seeded stream, so every run hashes the same "random" flows. */
static __u64 rng_next(__u64 *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void random_flow(__u64 *s, struct fp_flow_key *k)
{
	__u64 r[5];

	for (int i = 0; i < 5; i++)
		r[i] = rng_next(s);
	memset(k, 0, sizeof(*k));
	if (r[4] & 1) {
		fp_addr_from_v4(k->src, (__be32)r[0]);
		fp_addr_from_v4(k->dst, (__be32)(r[0] >> 32));
	} else {
		memcpy(k->src, &r[0], 8);
		memcpy(k->src + 8, &r[1], 8);
		memcpy(k->dst, &r[2], 8);
		memcpy(k->dst + 8, &r[3], 8);
	}
	k->sport = (__be16)(r[4] >> 8);
	k->dport = (__be16)(r[4] >> 24);
	k->proto = (r[4] >> 40) & 1 ? 6 : 17;
}

/* The unrolled header version is SipHash-1-3, exactly, for any key and flow. */
static void test_flow_hash_equals_generic_siphash13(void **state)
{
	__u64 s = 0x9e3779b97f4a7c15ULL;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		struct fp_hash_key key = { rng_next(&s), rng_next(&s) };
		struct fp_flow_key k;

		random_flow(&s, &k);
		assert_int_equal(fp_flow_hash(&key, &k), fp_siphash(&key, &k, sizeof(k), 1, 3));
	}
}

static void test_flowpin_vectors(void **state)
{
	struct fp_hash_key parsed;

	(void)state;
	assert_int_equal(fp_hash_key_parse(FP_VECTOR_KEY_HEX, &parsed), 0);
	assert_int_equal(parsed.k0, fp_vector_key.k0);
	assert_int_equal(parsed.k1, fp_vector_key.k1);
	for (size_t i = 0; i < FP_N_HASH_VECTORS; i++) {
		const struct fp_hash_vector *v = &fp_hash_vectors[i];
		struct fp_flow_key k;
		__u64 h;

		assert_int_equal(fp_vector_flow_key(v, &k), 0);
		h = fp_flow_hash(&fp_vector_key, &k);
		if (h != v->hash)
			fail_msg("vector %zu (%s): fp_flow_hash %#llx, want %#llx", i, v->what,
				 (unsigned long long)h, (unsigned long long)v->hash);
		assert_int_equal(fp_siphash(&fp_vector_key, &k, sizeof(k), 1, 3), v->hash);
		assert_int_equal(fp_hash_bucket(h, FP_VECTOR_TABLE), v->bucket);
		assert_int_equal(fp_hash_sport(h), v->outer_sport);
	}
}

static void test_hash_key_parse_rejects_bad_text(void **state)
{
	static const char *const bad[] = {
		"",
		"000102030405060708090a0b0c0d0e0",   /* 31 digits */
		"000102030405060708090a0b0c0d0e0f0", /* 33 digits */
		"000102030405060708090a0b0c0d0e0g",  /* not hex */
		"0x0102030405060708090a0b0c0d0e0f",
		" 00102030405060708090a0b0c0d0e0f",
	};
	struct fp_hash_key k = { 1, 2 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(fp_hash_key_parse(bad[i], &k), -EINVAL);
	assert_int_equal(k.k0, 1); /* untouched */
	assert_int_equal(fp_hash_key_parse("FFFFFFFFFFFFFFFF0000000000000001", &k), 0);
	assert_int_equal(k.k0, ~0ULL);
	assert_int_equal(k.k1, 0x0100000000000000ULL);
}

/*
 * Pearson's chi-square of bucket counts against the uniform expectation, as a multiple
 * of its standard deviation above the mean (dof): a good hash stays within a few.
 */
static double chi_square_sigmas(const __u32 *counts, size_t buckets, size_t n)
{
	double expected = (double)n / (double)buckets, chi = 0;
	double dof = (double)buckets - 1;

	for (size_t b = 0; b < buckets; b++) {
		double d = counts[b] - expected;

		chi += d * d / expected;
	}
	return (chi - dof) / sqrt(2 * dof);
}

#define BUCKETS 1021 /* prime, like the Maglev table: hash % M must spread */

static double spread(__u64 (*hash)(const struct fp_flow_key *), const struct fp_flow_key *flows,
		     size_t n, double *max_min_ratio)
{
	__u32 *counts = calloc(BUCKETS, sizeof(*counts));
	__u32 lo = UINT32_MAX, hi = 0;
	double sigmas;

	assert_non_null(counts);
	for (size_t i = 0; i < n; i++)
		counts[hash(&flows[i]) % BUCKETS]++;
	for (size_t b = 0; b < BUCKETS; b++) {
		lo = counts[b] < lo ? counts[b] : lo;
		hi = counts[b] > hi ? counts[b] : hi;
	}
	*max_min_ratio = lo ? (double)hi / lo : INFINITY;
	sigmas = chi_square_sigmas(counts, BUCKETS, n);
	free(counts);
	return sigmas;
}

static __u64 flowpin_hash(const struct fp_flow_key *k)
{
	return fp_flow_hash(&fp_vector_key, k);
}

/* A deliberately weak hash (sum of ports): the checks below must reject it. */
static __u64 weak_hash(const struct fp_flow_key *k)
{
	return (__u64)ntohs(k->sport) + ntohs(k->dport);
}

/* Structured traffic: one client, every ephemeral port; then a /16 of clients. */
static size_t structured_flows(struct fp_flow_key *flows)
{
	size_t n = 0;

	for (__u32 port = 1024; port < 65536; port++, n++) {
		memset(&flows[n], 0, sizeof(flows[n]));
		fp_addr_from_v4(flows[n].src, htonl(0xc0000201));
		fp_addr_from_v4(flows[n].dst, htonl(0xc633640a));
		flows[n].sport = htons((__u16)port);
		flows[n].dport = htons(443);
		flows[n].proto = 6;
	}
	for (__u32 host = 0; host < 65536; host++, n++) {
		memset(&flows[n], 0, sizeof(flows[n]));
		fp_addr_from_v4(flows[n].src, htonl(0x0a000000 | host));
		fp_addr_from_v4(flows[n].dst, htonl(0xc633640a));
		flows[n].sport = htons(40000);
		flows[n].dport = htons(443);
		flows[n].proto = 6;
	}
	return n;
}

static void test_distribution(void **state)
{
	size_t n_random = 200000, n;
	struct fp_flow_key *flows = calloc(n_random + 2 * 65536, sizeof(*flows));
	__u64 s = 12345;
	double sigmas, ratio;

	(void)state;
	assert_non_null(flows);
	for (size_t i = 0; i < n_random; i++)
		random_flow(&s, &flows[i]);
	sigmas = spread(flowpin_hash, flows, n_random, &ratio);
	print_message("# random flows: chi-square %+.2f sigma, max/min bucket %.2f\n", sigmas,
		      ratio);
	assert_true(fabs(sigmas) < 6);
	assert_true(ratio < 2.0); /* ~196 flows a bucket: +-4.5 sigma is ~1.9x */

	n = structured_flows(flows);
	sigmas = spread(flowpin_hash, flows, n, &ratio);
	print_message("# structured flows: chi-square %+.2f sigma, max/min bucket %.2f\n", sigmas,
		      ratio);
	assert_true(fabs(sigmas) < 6);
	assert_true(ratio < 2.0);

	/* The same yardstick catches a bad hash, so the thresholds above mean something. */
	sigmas = spread(weak_hash, flows, n, &ratio);
	print_message("# weak hash on structured flows: chi-square %+.2f sigma\n", sigmas);
	assert_true(sigmas > 6 || ratio >= 2.0);
	free(flows);
}

/* The outer source port: high bit set, 15 bits that vary with the flow. */
static void test_outer_sport_spread(void **state)
{
	__u32 *seen = calloc(32768, sizeof(*seen));
	__u64 s = 777;
	size_t distinct = 0;

	(void)state;
	assert_non_null(seen);
	for (int i = 0; i < 100000; i++) {
		struct fp_flow_key k;
		__u16 p;

		random_flow(&s, &k);
		p = fp_hash_sport(fp_flow_hash(&fp_vector_key, &k));
		assert_true(p & 0x8000);
		distinct += seen[p & 0x7fff]++ == 0;
	}
	/* 100000 draws from 32768 values leave ~95% seen; a stuck bit would halve it. */
	print_message("# distinct outer source ports: %zu of 32768\n", distinct);
	assert_true(distinct > 30000);
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash24_reference_vectors),
		cmocka_unit_test(test_flow_hash_equals_generic_siphash13),
		cmocka_unit_test(test_flowpin_vectors),
		cmocka_unit_test(test_hash_key_parse_rejects_bad_text),
		cmocka_unit_test(test_distribution),
		cmocka_unit_test(test_outer_sport_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
