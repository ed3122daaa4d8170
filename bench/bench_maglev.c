// SPDX-License-Identifier: MIT
/*
 * Bucket table benchmark: build time (one VIP, and a whole VIP set as a reload builds
 * it), and disruption vs N for the default share tolerance (1%) and others: buckets moved when one backend is removed or drained, added,
 * or has its weight doubled or halved, as a ratio to the ideal. Rows for the table the
 * library builds (fp_maglev_build(), rendezvous with bounded shares) and, as the
 * "before" reference, weighted Maglev as flowpin built it up to 2026-12 (a copy kept
 * here only, reachable from nothing else). Prints markdown for bench/results.md.
 * A measurement, never a test: nothing here fails on a slow machine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <flowpin/maglev.h>
#include <flowpin/siphash.h>

#define RUNS	 7  /* median of these, after one warm-up build */
#define TRIALS	 10 /* backends changed / added per disruption figure */
#define SET_VIPS 64 /* the whole-VIP-set build */
#define SET_RUNS 3
#define MAX_N	 1001

static const struct fp_hash_key key = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

typedef int (*build_fn)(const struct fp_maglev_backend *b, size_t n, __u32 m, __u16 *table);

/* ---- reference: weighted Maglev (NSDI 2016, 3.4) as lib/maglev.c built it before ---- */

struct mwalker {
	__u32 id, weight, next, skip;
	__u64 credit;
};

static int by_id(const void *a, const void *b)
{
	const struct mwalker *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static __u32 id_hash(__u32 id, __u32 tag, __u32 mod)
{
	__u64 msg = (__u64)id | (__u64)tag << 32;
	__u8 buf[8];

	for (int i = 0; i < 8; i++)
		buf[i] = (__u8)(msg >> (8 * i));
	return (__u32)(fp_siphash(&key, buf, 8, 2, 4) % mod);
}

static int maglev_reference(const struct fp_maglev_backend *in, size_t n0, __u32 m, __u16 *table)
{
	struct mwalker *w = calloc(n0 ? n0 : 1, sizeof(*w));
	__u8 *taken = calloc(m, 1);
	__u64 sum = 0;
	__u32 filled = 0;
	size_t n = 0;

	if (!w || !taken) {
		free(w);
		free(taken);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n0; i++)
		if (in[i].weight)
			w[n++] = (struct mwalker){ .id = in[i].id, .weight = in[i].weight };
	qsort(w, n, sizeof(*w), by_id);
	for (size_t i = 0; i < n; i++) {
		w[i].next = id_hash(w[i].id, 0, m);
		w[i].skip = id_hash(w[i].id, 1, m - 1) + 1;
		sum += w[i].weight;
	}
	for (__u32 i = 0; !n && i < m; i++)
		table[i] = FP_NO_BACKEND;
	while (n && filled < m) {
		for (size_t i = 0; i < n && filled < m; i++) {
			struct mwalker *b = &w[i];

			b->credit += (__u64)b->weight * n;
			while (b->credit >= sum && filled < m) {
				__u32 c = b->next;

				while (taken[c])
					c = c + b->skip >= m ? c + b->skip - m : c + b->skip;
				b->credit -= sum;
				taken[c] = 1;
				table[c] = (__u16)b->id;
				b->next = c + b->skip >= m ? c + b->skip - m : c + b->skip;
				filled++;
			}
		}
	}
	free(w);
	free(taken);
	return 0;
}

static int library(const struct fp_maglev_backend *b, size_t n, __u32 m, __u16 *table)
{
	return fp_maglev_build(b, n, m, &key, table);
}

static int library_exact(const struct fp_maglev_backend *b, size_t n, __u32 m, __u16 *table)
{
	return fp_table_build(b, n, m, &key, 0, table);
}

static int library_5(const struct fp_maglev_backend *b, size_t n, __u32 m, __u16 *table)
{
	return fp_table_build(b, n, m, &key, 5, table);
}

static int library_10(const struct fp_maglev_backend *b, size_t n, __u32 m, __u16 *table)
{
	return fp_table_build(b, n, m, &key, 10, table);
}

static const struct {
	const char *name;
	build_fn build;
} constructions[] = {
	{ "Maglev (before)", maglev_reference },
	{ "rendezvous, shares within 1% (now, default)", library },
	{ "rendezvous, share_tolerance: 0", library_exact },
	{ "rendezvous, share_tolerance: 5", library_5 },
	{ "rendezvous, share_tolerance: 10", library_10 },
};

/* ---- measurement ---- */

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

static void equal_backends(struct fp_maglev_backend *b, size_t n, __u32 first_id)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (struct fp_maglev_backend){ .id = first_id + (__u32)i, .weight = 100 };
}

static int build_time(build_fn build, __u32 m, size_t n, double *median)
{
	struct fp_maglev_backend b[MAX_N];
	__u16 *t = calloc(m, sizeof(*t));
	double ms[RUNS];
	int ret = -ENOMEM;

	if (!t)
		return ret;
	equal_backends(b, n, 1);
	ret = build(b, n, m, t); /* warm-up: page faults, caches */
	for (int r = 0; !ret && r < RUNS; r++) {
		double start = now_ms();

		ret = build(b, n, m, t);
		ms[r] = now_ms() - start;
	}
	if (!ret) {
		qsort(ms, RUNS, sizeof(ms[0]), cmp_double);
		*median = ms[RUNS / 2];
	}
	free(t);
	return ret;
}

/* What a reload builds: SET_VIPS tables of n backends each, other ids per VIP. */
static int set_time(build_fn build, __u32 m, size_t n, double *median)
{
	struct fp_maglev_backend b[MAX_N];
	__u16 *t = calloc(m, sizeof(*t));
	double ms[SET_RUNS];
	int ret = t ? 0 : -ENOMEM;

	for (int r = 0; !ret && r < SET_RUNS; r++) {
		double start = now_ms();

		for (__u32 v = 0; !ret && v < SET_VIPS; v++) {
			equal_backends(b, n, 1 + v * 7);
			ret = build(b, n, m, t);
		}
		ms[r] = now_ms() - start;
	}
	if (!ret) {
		qsort(ms, SET_RUNS, sizeof(ms[0]), cmp_double);
		*median = ms[SET_RUNS / 2];
	}
	free(t);
	return ret;
}

struct stat2 {
	double mean, worst;
};

static void note(struct stat2 *s, double r)
{
	s->mean += r / TRIALS;
	s->worst = r > s->worst ? r : s->worst;
}

/*
 * The ideal share moved: sum over backends of the share lost, m * max(0, old - new),
 * shares exact (weight / sum of weights), whatever table is built. Removing one of n
 * equal backends: m / n; adding one: m / (n + 1).
 */
static double ideal_moved(const struct fp_maglev_backend *a, size_t na,
			  const struct fp_maglev_backend *b, size_t nb, __u32 m)
{
	double sa = 0, sb = 0, lost = 0;

	for (size_t i = 0; i < na; i++)
		sa += a[i].weight;
	for (size_t i = 0; i < nb; i++)
		sb += b[i].weight;
	for (size_t i = 0; i < na; i++) {
		double wb = 0, d;

		for (size_t j = 0; j < nb; j++)
			if (b[j].id == a[i].id)
				wb = b[j].weight;
		d = a[i].weight / sa - wb / sb;
		lost += d > 0 ? d : 0;
	}
	return lost * m;
}

/* Worst |count - ideal| / ideal over the backends of @b. */
static double weight_error(const __u16 *t, __u32 m, const struct fp_maglev_backend *b, size_t n)
{
	static __u32 counts[65536];
	double sum = 0, worst = 0;

	memset(counts, 0, sizeof(counts));
	for (__u32 i = 0; i < m; i++)
		counts[t[i]]++;
	for (size_t i = 0; i < n; i++)
		sum += b[i].weight;
	for (size_t i = 0; i < n; i++) {
		double ideal = m * (b[i].weight / sum), e = (counts[b[i].id] - ideal) / ideal;

		e = e < 0 ? -e : e;
		worst = e > worst ? e : worst;
	}
	return worst;
}

static int ratio(build_fn build, const __u16 *base, const struct fp_maglev_backend *before,
		 size_t nb, const struct fp_maglev_backend *after, size_t na, __u32 m, __u16 *t,
		 struct stat2 *s)
{
	int ret = build(after, na, m, t);

	if (!ret)
		note(s, fp_table_disruption(base, t, m) / ideal_moved(before, nb, after, na, m));
	return ret;
}

/* s[0] remove or drain, s[1] add, s[2] weight x2, s[3] weight / 2; *werr of the base. */
static int disruption(build_fn build, __u32 m, size_t n, struct stat2 s[4], double *werr)
{
	struct fp_maglev_backend b[MAX_N], c[MAX_N];
	__u16 *base = calloc(m, sizeof(*base)), *t = calloc(m, sizeof(*t));
	int ret = -ENOMEM;

	if (!base || !t)
		goto out;
	memset(s, 0, 4 * sizeof(*s));
	equal_backends(b, n, 1);
	ret = build(b, n, m, base);
	if (!ret)
		*werr = weight_error(base, m, b, n);
	for (size_t k = 0; !ret && k < TRIALS; k++) {
		size_t x = k * n / TRIALS; /* spread over the id range */

		/* Drain (weight 0) and remove build the same table: one figure. */
		memcpy(c, b, n * sizeof(*c));
		c[x].weight = 0;
		ret = ratio(build, base, b, n, c, n, m, t, &s[0]);
		c[x].weight = 200;
		ret = ret ?: ratio(build, base, b, n, c, n, m, t, &s[2]);
		c[x].weight = 50;
		ret = ret ?: ratio(build, base, b, n, c, n, m, t, &s[3]);
		c[x].weight = 100;
		c[n] = (struct fp_maglev_backend){ .id = (__u32)(n + 1 + k * 37), .weight = 100 };
		ret = ret ?: ratio(build, base, b, n, c, n + 1, m, t, &s[1]);
	}
out:
	free(base);
	free(t);
	return ret;
}

static int fail(int ret)
{
	fprintf(stderr, "bench_maglev: build failed: %s\n", strerror(-ret));
	return 1;
}

int main(void)
{
	static const size_t ns[] = { 10, 30, 100, 300, 1000 };
	static const struct {
		__u32 m;
		size_t n;
	} sizes[] = { { 65537, 10 }, { 65537, 100 }, { 65537, 1000 }, { 655373, 1000 } };
	const size_t n_cons = sizeof(constructions) / sizeof(constructions[0]);
	int ret;

	printf("## Bucket table build (bench/bench_maglev.c)\n\n"
	       "One table of N equal-weight backends, one thread, median of %d builds after a "
	       "warm-up; and a whole VIP set as `lb up`/`reload` builds it: %d VIPs of N "
	       "backends each, median of %d.\n\n"
	       "| construction | M | N | one table, ms | %d VIPs, ms |\n"
	       "|---|---:|---:|---:|---:|\n",
	       RUNS, SET_VIPS, SET_RUNS, SET_VIPS);
	for (size_t c = 0; c < 2; c++) { /* the tolerance changes little of the build time */
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			double one, set = 0;

			ret = build_time(constructions[c].build, sizes[i].m, sizes[i].n, &one);
			if (!ret && sizes[i].m == 65537 && sizes[i].n == 1000)
				ret = set_time(constructions[c].build, sizes[i].m, sizes[i].n,
					       &set);
			if (ret)
				return fail(ret);
			printf("| %s | %u | %zu | %.2f | ", constructions[c].name, sizes[i].m,
			       sizes[i].n, one);
			if (set)
				printf("%.0f |\n", set);
			else
				printf("- |\n");
		}
	}
	printf("\n## Bucket table disruption vs N (bench/bench_maglev.c)\n\n"
	       "Buckets that change owner when one of N equal backends (weight 100) is removed "
	       "or drained (the same table), one is added, or one's weight is doubled or "
	       "halved, as a ratio to the ideal: the share the weights move, m x the sum of "
	       "the shares backends lose (m / N for a removal, m / (N + 1) for an addition). "
	       "1.000 is minimal; a moved bucket is a flow that needs its session, or a "
	       "second hop in `full` mode. Mean and worst over %d backends changed (and %d "
	       "new ids added). Weight error: the worst |count - ideal| / ideal of the N "
	       "backends. Target: <= 1.1 up to N = 1000 at M = 65537.\n\n"
	       "| construction | M | N | remove/drain mean | worst | add mean | worst | "
	       "weight x2 mean | worst | weight /2 mean | worst | weight error |\n"
	       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
	       TRIALS, TRIALS);
	for (size_t c = 0; c < n_cons; c++) {
		for (size_t j = 0; j < sizeof(ns) / sizeof(ns[0]) + 2; j++) {
			__u32 m = j < sizeof(ns) / sizeof(ns[0]) ? 65537 : 655373;
			size_t n = j < sizeof(ns) / sizeof(ns[0]) ? ns[j] : (j % 2 ? 100 : 1000);
			struct stat2 s[4];
			double werr = 0;

			ret = disruption(constructions[c].build, m, n, s, &werr);
			if (ret)
				return fail(ret);
			printf("| %s | %u | %zu | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | "
			       "%.3f | %.2f%% |\n",
			       constructions[c].name, m, n, s[0].mean, s[0].worst, s[1].mean,
			       s[1].worst, s[2].mean, s[2].worst, s[3].mean, s[3].worst,
			       100 * werr);
		}
	}
	printf("\n");
	return 0;
}
