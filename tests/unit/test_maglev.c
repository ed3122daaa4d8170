// SPDX-License-Identifier: MIT
/*
 * Maglev tables: the paper's worked example, balance with equal and unequal weights,
 * disruption when one backend comes or goes, determinism (ids, not positions), and
 * the generation hop pairs the data plane uses for second chance.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <flowpin/maglev.h>

#define M_SMALL 65537
#define M_LARGE 655373

static const struct fp_hash_key key = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

static __u16 *table_new(__u32 m)
{
	__u16 *t = calloc(m, sizeof(*t));

	assert_non_null(t);
	return t;
}

/* Slots per backend id (ids < 65536). */
static void count_slots(const __u16 *t, __u32 m, __u32 *counts)
{
	memset(counts, 0, 65536 * sizeof(*counts));
	for (__u32 i = 0; i < m; i++)
		counts[t[i]]++;
}

/*
 * NSDI 2016, section 3.4, table 1: M = 7, (offset, skip) B0 = (3, 4), B1 = (0, 2),
 * B2 = (3, 1). Backend ids start at 1, so ids 1..3 here.
 */
static void test_paper_example(void **state)
{
	const __u32 ids[] = { 1, 2, 3 }, weights[] = { 1, 1, 1 };
	const __u32 offset[] = { 3, 0, 3 }, skip[] = { 4, 2, 1 };
	const __u16 want[7] = { 2, 1, 2, 1, 3, 3, 1 };
	const __u32 ids_no2[] = { 1, 3 }, w_no2[] = { 1, 1 };
	const __u32 offset_no2[] = { 3, 3 }, skip_no2[] = { 4, 1 };
	const __u16 want_no2[7] = { 1, 1, 1, 1, 3, 3, 3 };
	__u16 t[7], t2[7];

	(void)state;
	assert_int_equal(fp_maglev_populate(ids, weights, offset, skip, 3, 7, t), 0);
	assert_memory_equal(t, want, sizeof(want));
	assert_int_equal(fp_maglev_populate(ids_no2, w_no2, offset_no2, skip_no2, 2, 7, t2), 0);
	assert_memory_equal(t2, want_no2, sizeof(want_no2));
	/* B2's two slots move, and one more (slot 6, B1 -> B3): near-minimal, not minimal. */
	assert_int_equal(fp_table_disruption(t, t2, 7), 3);
}

static void test_populate_rejects_bad_permutations(void **state)
{
	const __u32 ids[] = { 1, 2 }, weights[] = { 1, 1 };
	const __u32 offset[] = { 3, 0 }, bad_offset[] = { 7, 0 };
	const __u32 skip[] = { 4, 2 }, zero_skip[] = { 4, 0 }, big_skip[] = { 7, 2 };
	const __u32 dup_ids[] = { 2, 2 };
	__u16 t[8];

	(void)state;
	assert_int_equal(fp_maglev_populate(ids, weights, bad_offset, skip, 2, 7, t), -EINVAL);
	assert_int_equal(fp_maglev_populate(ids, weights, offset, zero_skip, 2, 7, t), -EINVAL);
	assert_int_equal(fp_maglev_populate(ids, weights, offset, big_skip, 2, 7, t), -EINVAL);
	assert_int_equal(fp_maglev_populate(dup_ids, weights, offset, skip, 2, 7, t), -EINVAL);
	assert_int_equal(fp_maglev_populate(ids, weights, offset, skip, 2, 8, t), -EINVAL);
}

static struct fp_maglev_backend *equal_backends(size_t n, __u32 first_id)
{
	struct fp_maglev_backend *b = calloc(n, sizeof(*b));

	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		b[i].id = first_id + (__u32)i;
		b[i].weight = 100;
	}
	return b;
}

static void test_equal_weights_within_one_slot(void **state)
{
	static const size_t ns[] = { 1, 2, 3, 10, 100, 1000 };
	__u32 *counts = calloc(65536, sizeof(*counts));
	__u16 *t = table_new(M_SMALL);

	(void)state;
	assert_non_null(counts);
	for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		struct fp_maglev_backend *b = equal_backends(ns[k], 1);
		__u32 lo = UINT32_MAX, hi = 0;

		assert_int_equal(fp_maglev_build(b, ns[k], M_SMALL, &key, t), 0);
		count_slots(t, M_SMALL, counts);
		assert_int_equal(counts[FP_NO_BACKEND], 0);
		for (size_t i = 0; i < ns[k]; i++) {
			lo = counts[b[i].id] < lo ? counts[b[i].id] : lo;
			hi = counts[b[i].id] > hi ? counts[b[i].id] : hi;
		}
		print_message("# N=%zu: slots per backend %u..%u\n", ns[k], lo, hi);
		assert_true(hi - lo <= 1);
		assert_true(lo == M_SMALL / ns[k]);
		free(b);
	}
	free(t);
	free(counts);
}

/* Each backend's share within 1% (relative) of weight / sum of weights. */
static void check_weighted(const struct fp_maglev_backend *b, size_t n, __u32 m, double *worst)
{
	__u32 *counts = calloc(65536, sizeof(*counts));
	__u16 *t = table_new(m);
	double sum = 0;

	assert_non_null(counts);
	assert_int_equal(fp_maglev_build(b, n, m, &key, t), 0);
	count_slots(t, m, counts);
	for (size_t i = 0; i < n; i++)
		sum += b[i].weight;
	*worst = 0;
	for (size_t i = 0; i < n; i++) {
		double want = m * (b[i].weight / sum);
		double err = (counts[b[i].id] - want) / want;

		if (err < 0)
			err = -err;
		if (err > *worst)
			*worst = err;
		if (err > 0.01)
			fail_msg("backend %u weight %u: %u slots, want %.1f (%.2f%% off)", b[i].id,
				 b[i].weight, counts[b[i].id], want, 100 * err);
	}
	free(t);
	free(counts);
}

static void test_weights_within_one_percent(void **state)
{
	struct fp_maglev_backend ten[10], hundred[100];
	__u64 s = 42;
	double worst;

	(void)state;
	for (int i = 0; i < 10; i++)
		ten[i] = (struct fp_maglev_backend){ .id = (__u32)(i + 1),
						     .weight = (__u32)(100 * (i + 1)) };
	check_weighted(ten, 10, M_SMALL, &worst);
	print_message("# N=10 weights 100..1000, M=%u: worst share error %.3f%%\n", M_SMALL,
		      100 * worst);
	for (int i = 0; i < 100; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		hundred[i] = (struct fp_maglev_backend){ .id = (__u32)(3 * i + 7),
							 .weight = (__u32)(100 + (s >> 33) % 900) };
	}
	check_weighted(hundred, 100, M_LARGE, &worst);
	print_message("# N=100 weights 100..999, M=%u: worst share error %.3f%%\n", M_LARGE,
		      100 * worst);
	/* Extremes: 1 and 65535 side by side still fill the table exactly. */
	struct fp_maglev_backend extreme[3] = { { 1, 65535 }, { 2, 1 }, { 3, 30000 } };
	__u32 *counts = calloc(65536, sizeof(*counts));
	__u16 *t = table_new(M_SMALL);

	assert_non_null(counts);
	assert_int_equal(fp_maglev_build(extreme, 3, M_SMALL, &key, t), 0);
	count_slots(t, M_SMALL, counts);
	assert_int_equal(counts[1] + counts[2] + counts[3], M_SMALL);
	assert_true(counts[2] <= 2); /* 65537 / 95536 = 0.69 slot */
	free(t);
	free(counts);
}

/*
 * The slot granularity bound behind the 1% figure: a backend's slot count is within
 * 2 + weight * N / sum (its turns per round) of m * weight / sum, for any weights. Light
 * backends are within 2 slots; the 1% holds once a share is a few hundred slots.
 */
static void test_weighted_slot_error_bound(void **state)
{
	struct fp_maglev_backend *b = calloc(300, sizeof(*b));
	__u32 *counts = calloc(65536, sizeof(*counts));
	__u16 *t = table_new(M_LARGE);
	__u64 s = 99;
	double worst = 0;

	(void)state;
	assert_non_null(b);
	assert_non_null(counts);
	for (int trial = 0; trial < 60; trial++) {
		size_t n = 1 + trial * 5;
		__u32 m = trial % 2 ? M_SMALL : M_LARGE;
		double sum = 0;

		for (size_t i = 0; i < n; i++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			b[i].id = (__u32)(i + 1);
			/* A third of the trials with 1..65535, the rest 1..100. */
			b[i].weight = (__u32)(1 + (s >> 33) % (trial % 3 ? 100 : 65535));
			sum += b[i].weight;
		}
		assert_int_equal(fp_maglev_build(b, n, m, &key, t), 0);
		count_slots(t, m, counts);
		for (size_t i = 0; i < n; i++) {
			double ideal = (double)m * b[i].weight / sum;
			double err = counts[b[i].id] > ideal ? counts[b[i].id] - ideal
							     : ideal - counts[b[i].id];

			worst = err > worst ? err : worst;
			if (err >= 2 + b[i].weight * n / sum)
				fail_msg("trial %d: backend %u weight %u of %.0f: %u slots, ideal "
					 "%.2f",
					 trial, b[i].id, b[i].weight, sum, counts[b[i].id], ideal);
		}
	}
	print_message("# 60 random weightings: worst slot error %.3f\n", worst);
	free(t);
	free(counts);
	free(b);
}

static void test_zero_weight_and_empty(void **state)
{
	struct fp_maglev_backend b[3] = { { 1, 100 }, { 2, 0 }, { 3, 100 } };
	struct fp_maglev_backend none[2] = { { 1, 0 }, { 2, 0 } };
	__u32 *counts = calloc(65536, sizeof(*counts));
	__u16 t[101];

	(void)state;
	assert_non_null(counts);
	assert_int_equal(fp_maglev_build(b, 3, 101, &key, t), 0);
	count_slots(t, 101, counts);
	assert_int_equal(counts[2], 0); /* draining: no buckets */
	assert_int_equal(counts[1] + counts[3], 101);
	assert_int_equal(fp_maglev_build(none, 2, 101, &key, t), 0);
	count_slots(t, 101, counts);
	assert_int_equal(counts[FP_NO_BACKEND], 101);
	memset(t, 0xff, sizeof(t));
	assert_int_equal(fp_maglev_build(NULL, 0, 101, &key, t), 0);
	count_slots(t, 101, counts);
	assert_int_equal(counts[FP_NO_BACKEND], 101);
	free(counts);
}

static void test_build_rejects_bad_input(void **state)
{
	struct fp_maglev_backend dup[2] = { { 5, 100 }, { 5, 100 } };
	struct fp_maglev_backend zero_id[1] = { { 0, 100 } };
	struct fp_maglev_backend ok[1] = { { 1, 100 } };
	__u16 t[102];

	(void)state;
	assert_int_equal(fp_maglev_build(ok, 1, 102, &key, t), -EINVAL); /* not prime */
	assert_int_equal(fp_maglev_build(ok, 1, 1, &key, t), -EINVAL);
	assert_int_equal(fp_maglev_build(dup, 2, 101, &key, t), -EINVAL);
	assert_int_equal(fp_maglev_build(zero_id, 1, 101, &key, t), -EINVAL);
	assert_int_equal(fp_maglev_build(ok, 1, 101, NULL, t), -EINVAL);
}

/* moved / ideal when backend @gone (an index) leaves a set of n equal backends. */
static double remove_ratio(size_t n, size_t gone, __u32 m)
{
	struct fp_maglev_backend *b = equal_backends(n, 1);
	__u16 *before = table_new(m), *after = table_new(m);
	double ratio;

	assert_int_equal(fp_maglev_build(b, n, m, &key, before), 0);
	b[gone].weight = 0;
	assert_int_equal(fp_maglev_build(b, n, m, &key, after), 0);
	ratio = fp_table_disruption(before, after, m) / ((double)m / n);
	free(before);
	free(after);
	free(b);
	return ratio;
}

static double add_ratio(size_t n, __u32 new_id, __u32 m)
{
	struct fp_maglev_backend *b = equal_backends(n + 1, 1);
	__u16 *before = table_new(m), *after = table_new(m);
	double ratio;

	b[n].id = new_id;
	assert_int_equal(fp_maglev_build(b, n, m, &key, before), 0);
	assert_int_equal(fp_maglev_build(b, n + 1, m, &key, after), 0);
	ratio = fp_table_disruption(before, after, m) / ((double)m / (n + 1));
	free(before);
	free(after);
	free(b);
	return ratio;
}

static void test_one_of_ten_moves_near_ideal(void **state)
{
	double worst_remove = 0, worst_add = 0;

	(void)state;
	for (size_t gone = 0; gone < 10; gone++) {
		double r = remove_ratio(10, gone, M_SMALL);

		worst_remove = r > worst_remove ? r : worst_remove;
		assert_true(r >= 1.0); /* the removed backend's own slots always move */
		assert_true(r <= 1.1);
	}
	for (__u32 id = 11; id <= 20; id++) {
		double r = add_ratio(10, id, M_SMALL);

		worst_add = r > worst_add ? r : worst_add;
		assert_true(r <= 1.1);
	}
	print_message("# N=10, M=%u: worst moved/ideal removing 1: %.3f, adding 1: %.3f\n", M_SMALL,
		      worst_remove, worst_add);
}

/* Only ids and weights count: shuffling the array gives a byte-identical table. */
static void test_order_independent(void **state)
{
	struct fp_maglev_backend *b = equal_backends(300, 1), *shuffled;
	__u16 *a = table_new(M_SMALL), *c = table_new(M_SMALL);
	__u64 s = 7;

	(void)state;
	for (size_t i = 0; i < 300; i++)
		b[i].weight = (__u32)(50 + i % 7 * 10);
	assert_int_equal(fp_maglev_build(b, 300, M_SMALL, &key, a), 0);
	shuffled = calloc(300, sizeof(*shuffled));
	assert_non_null(shuffled);
	memcpy(shuffled, b, 300 * sizeof(*b));
	for (int round = 0; round < 5; round++) {
		for (size_t i = 299; i > 0; i--) {
			struct fp_maglev_backend tmp;
			size_t j;

			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			j = (size_t)((s >> 33) % (i + 1));
			tmp = shuffled[i];
			shuffled[i] = shuffled[j];
			shuffled[j] = tmp;
		}
		assert_int_equal(fp_maglev_build(shuffled, 300, M_SMALL, &key, c), 0);
		assert_memory_equal(a, c, M_SMALL * sizeof(*a));
	}
	/* ... and the input is not modified. */
	assert_int_equal(b[0].id, 1);
	/* Ids, not positions: renumbering every backend gives another table. */
	for (size_t i = 0; i < 300; i++)
		shuffled[i] = (struct fp_maglev_backend){ b[i].id + 1000, b[i].weight };
	assert_int_equal(fp_maglev_build(shuffled, 300, M_SMALL, &key, c), 0);
	assert_true(fp_table_disruption(a, c, M_SMALL) > M_SMALL / 2);
	/* The fleet key picks the permutations. */
	struct fp_hash_key other = { key.k0 ^ 1, key.k1 };

	assert_int_equal(fp_maglev_build(b, 300, M_SMALL, &other, c), 0);
	assert_true(fp_table_disruption(a, c, M_SMALL) > M_SMALL / 2);
	free(a);
	free(c);
	free(b);
	free(shuffled);
}

static void test_is_prime(void **state)
{
	static const __u32 primes[] = { 2, 3, 5, 7, 101, 65537, 655373, 16777213, 4294967291U };
	static const __u32 composites[] = { 0, 1, 4, 9, 561, 65535, 65536, 655371, 4294967295U };

	(void)state;
	for (size_t i = 0; i < sizeof(primes) / sizeof(primes[0]); i++)
		assert_true(fp_is_prime(primes[i]));
	for (size_t i = 0; i < sizeof(composites) / sizeof(composites[0]); i++)
		assert_false(fp_is_prime(composites[i]));
}

static void test_generation_pairs(void **state)
{
	const __u16 prev_owner[5] = { 1, 2, 3, FP_NO_BACKEND, 2 };
	/* Running generation: bucket 2 moved from 4 to 3 one change ago. */
	const struct fp_bucket prev[5] = {
		{ 1, 1 }, { 2, 2 }, { 3, 4 }, { FP_NO_BACKEND, 0 }, { 2, 2 }
	};
	const __u16 next[5] = { 1, 3, 3, 2, FP_NO_BACKEND };
	struct fp_bucket out[5];

	(void)state;
	fp_generation_pairs(next, prev, 5, out);
	assert_int_equal(out[0].owner, 1);
	assert_int_equal(out[0].previous, 1);
	assert_int_equal(out[1].owner, 3); /* moved: second chance goes to 2 */
	assert_int_equal(out[1].previous, 2);
	assert_int_equal(out[2].owner, 3); /* not moved now: the earlier move is remembered */
	assert_int_equal(out[2].previous, 4);
	assert_int_equal(out[3].owner, 2); /* nobody before: no second hop */
	assert_int_equal(out[3].previous, 2);
	assert_int_equal(out[4].owner, FP_NO_BACKEND);
	assert_int_equal(out[4].previous, 2);
	fp_generation_pairs(next, NULL, 5, out); /* first generation */
	for (int i = 0; i < 5; i++)
		assert_int_equal(out[i].previous, out[i].owner);
	assert_int_equal(fp_table_disruption(prev_owner, next, 5), 3);
	assert_int_equal(fp_table_disruption(prev_owner, prev_owner, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paper_example),
		cmocka_unit_test(test_populate_rejects_bad_permutations),
		cmocka_unit_test(test_equal_weights_within_one_slot),
		cmocka_unit_test(test_weights_within_one_percent),
		cmocka_unit_test(test_weighted_slot_error_bound),
		cmocka_unit_test(test_zero_weight_and_empty),
		cmocka_unit_test(test_build_rejects_bad_input),
		cmocka_unit_test(test_one_of_ten_moves_near_ideal),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_is_prime),
		cmocka_unit_test(test_generation_pairs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
