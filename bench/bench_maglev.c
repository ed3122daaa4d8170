// SPDX-License-Identifier: MIT
/*
 * Maglev benchmark: table build time, and disruption (buckets moved / ideal) when one
 * backend is added or removed. Prints markdown sections for bench/results.md.
 * A measurement, never a test: nothing here fails on a slow machine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <flowpin/maglev.h>

#define RUNS   15 /* median of these, after one warm-up build */
#define TRIALS 10 /* backends removed / added per disruption figure */

static const struct fp_hash_key key = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static struct fp_maglev_backend *backends(size_t n)
{
	struct fp_maglev_backend *b = calloc(n, sizeof(*b));

	for (size_t i = 0; b && i < n; i++)
		b[i] = (struct fp_maglev_backend){ .id = (__u32)(i + 1), .weight = 100 };
	return b;
}

static int build_time(__u32 m, size_t n, double *median, double *lo, double *hi)
{
	struct fp_maglev_backend *b = backends(n);
	__u16 *t = calloc(m, sizeof(*t));
	double ms[RUNS];
	int ret = -ENOMEM;

	if (!b || !t)
		goto out;
	ret = fp_maglev_build(b, n, m, &key, t); /* warm-up: page faults, caches */
	for (int r = 0; !ret && r < RUNS; r++) {
		double start = now_ms();

		ret = fp_maglev_build(b, n, m, &key, t);
		ms[r] = now_ms() - start;
	}
	if (ret)
		goto out;
	qsort(ms, RUNS, sizeof(ms[0]), cmp_double);
	*median = ms[RUNS / 2];
	*lo = ms[0];
	*hi = ms[RUNS - 1];
out:
	free(b);
	free(t);
	return ret;
}

/*
 * moved / ideal for removing one of n backends (ideal m/n) and adding one to n (ideal
 * m/(n+1)), over TRIALS different backends each; mean and worst.
 */
static int disruption(__u32 m, size_t n, double remove[2], double add[2])
{
	struct fp_maglev_backend *b = backends(n + 1);
	__u16 *base = calloc(m, sizeof(*base)), *t = calloc(m, sizeof(*t));
	int ret = -ENOMEM;

	if (!b || !base || !t)
		goto out;
	ret = fp_maglev_build(b, n, m, &key, base);
	remove[0] = remove[1] = add[0] = add[1] = 0;
	for (size_t k = 0; !ret && k < TRIALS; k++) {
		size_t gone = k * n / TRIALS; /* spread over the id range */
		double r;

		b[gone].weight = 0;
		ret = fp_maglev_build(b, n, m, &key, t);
		b[gone].weight = 100;
		r = fp_table_disruption(base, t, m) / ((double)m / n);
		remove[0] += r / TRIALS;
		remove[1] = r > remove[1] ? r : remove[1];
	}
	for (size_t k = 0; !ret && k < TRIALS; k++) {
		double r;

		b[n].id = (__u32)(n + 1 + k * 37); /* new ids, not only the next one */
		ret = fp_maglev_build(b, n + 1, m, &key, t);
		r = fp_table_disruption(base, t, m) / ((double)m / (n + 1));
		add[0] += r / TRIALS;
		add[1] = r > add[1] ? r : add[1];
	}
out:
	free(b);
	free(base);
	free(t);
	return ret;
}

int main(void)
{
	static const __u32 sizes[] = { 65537, 655373 };
	static const size_t ns[] = { 10, 100, 1000 };
	int ret;

	printf("## Maglev table build (bench/bench_maglev.c)\n\n"
	       "fp_maglev_build() with N equal-weight backends, one thread; median of %d builds "
	       "after one warm-up build (min and max alongside). Target: <= 1 ms for M = 65537, "
	       "N = 1000 (the Maglev paper reports 1.8 ms).\n\n"
	       "| M | N | median ms | min ms | max ms |\n|---:|---:|---:|---:|---:|\n",
	       RUNS);
	for (size_t i = 0; i < 2; i++) {
		double med, lo, hi;

		ret = build_time(sizes[i], 1000, &med, &lo, &hi);
		if (ret) {
			fprintf(stderr, "bench_maglev: build failed: %s\n", strerror(-ret));
			return 1;
		}
		printf("| %u | 1000 | %.3f | %.3f | %.3f |\n", sizes[i], med, lo, hi);
	}
	printf("\n## Maglev disruption (bench/bench_maglev.c)\n\n"
	       "Buckets that change owner when one of N equal backends is removed (ideal: M/N) "
	       "or one is added (ideal: M/(N+1)), as a ratio to the ideal; 1.000 is minimal. "
	       "Mean and worst over %d different backends removed and %d different new ids "
	       "added.\n\n"
	       "| M | N | remove 1: mean | remove 1: worst | add 1: mean | add 1: worst |\n"
	       "|---:|---:|---:|---:|---:|---:|\n",
	       TRIALS, TRIALS);
	for (size_t i = 0; i < 2; i++) {
		for (size_t j = 0; j < 3; j++) {
			double rm[2], ad[2];

			ret = disruption(sizes[i], ns[j], rm, ad);
			if (ret) {
				fprintf(stderr, "bench_maglev: build failed: %s\n", strerror(-ret));
				return 1;
			}
			printf("| %u | %zu | %.3f | %.3f | %.3f | %.3f |\n", sizes[i], ns[j], rm[0],
			       rm[1], ad[0], ad[1]);
		}
	}
	printf("\n");
	return 0;
}
