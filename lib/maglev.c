// SPDX-License-Identifier: MIT
/*
 * Bucket tables: rendezvous with bounded shares, and table generations.
 *
 * Every backend walks its own permutation of the m buckets, (offset + j * skip) mod m,
 * one bucket per step, and reaches the bucket of step j at time (j + u_j) / weight,
 * u_j a jitter in [0, 1) hashed from (id, j). In global time order (ties: smaller id
 * first) a backend takes the bucket it reaches if nobody holds it yet and its share
 * allows it. Without share bounds a bucket would go to the backend that reaches it
 * first: rendezvous (highest random weight) hashing, where a change moves only the
 * buckets that must move (docs/design.md, "Bucket tables"). With m / N buckets per
 * backend rendezvous alone misses weights by sqrt(m / N) buckets, 12% at N = 1000, so
 * each backend's count is bounded by a share tolerance t (the config's share_tolerance,
 * 1% by default): at least floor_k = ceil((100 - t)% of its ideal share m * weight /
 * sum) and at most ceil_k = floor((100 + t)% of it), each bound widened to the integer
 * on its side of the ideal when t% is less than one bucket. A backend
 * under its floor always takes; between floor and ceiling it takes from a shared
 * budget of m - sum(floor_k) extra buckets, first come in time order; at its ceiling,
 * or at its floor once the budget is spent, it stops. sum(ceil_k) >= m, so the table
 * fills and every count ends within its bounds: shares within t% of the weights, or
 * within one bucket where t% is less than a bucket.
 *
 * The table depends on the set of (id, weight), the key and m: never on config order.
 * All arithmetic is integer (times compared by 128-bit cross products), so every node
 * builds the same bytes. Reaching a bucket somebody already holds does nothing, so a
 * walker jumps over held buckets straight to its next free one (a byte per bucket, as
 * Maglev's population loop does) and only those arrivals go through the heap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <flowpin/config.h>
#include <flowpin/maglev.h>
#include <flowpin/siphash.h>

struct walker {
	__u32 id;
	__u32 weight;
	__u32 pos;		/* bucket of step j: offset + j * skip, mod m */
	__u32 skip;		/* 0 < skip < m */
	__u64 j;		/* steps taken: at most m between two buckets taken */
	__u64 seed;		/* the jitter of step j is a hash of (seed, j) */
	unsigned __int128 time; /* (j << 32) + jitter(j): arrival time * weight, 2^-32 steps */
	__u32 count, floor, ceil;
};

bool fp_is_prime(__u32 n)
{
	if (n < 2)
		return false;
	if (n % 2 == 0)
		return n == 2;
	for (__u32 d = 3; (__u64)d * d <= n; d += 2)
		if (n % d == 0)
			return false;
	return true;
}

static int by_id(const void *a, const void *b)
{
	const struct walker *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* splitmix64's finalizer: a fixed bijection, the same on every node. */
static __u64 mix64(__u64 z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned __int128 arrival(const struct walker *w)
{
	return (unsigned __int128)w->j << 32 | mix64(w->seed ^ w->j) >> 32;
}

/*
 * @a reaches its bucket before @b: time_a / weight_a < time_b / weight_b, ties by id.
 * Exact: times stay below 2^96 (j < 2^64) and weights below 2^16.
 */
static bool earlier(const struct walker *a, const struct walker *b)
{
	unsigned __int128 x = a->time * b->weight, y = b->time * a->weight;

	return x < y || (x == y && a->id < b->id);
}

static void sift_down(struct walker **heap, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, s = i;

		if (l < n && earlier(heap[l], heap[s]))
			s = l;
		if (r < n && earlier(heap[r], heap[s]))
			s = r;
		if (s == i)
			return;
		struct walker *t = heap[i];

		heap[i] = heap[s];
		heap[s] = t;
		i = s;
	}
}

/* Steps @w to its next bucket nobody holds (its current one if free). */
static void to_free(struct walker *w, const __u8 *taken, __u32 m)
{
	while (taken[w->pos]) {
		w->pos += w->skip;
		if (w->pos >= m)
			w->pos -= m;
		w->j++;
	}
	w->time = arrival(w);
}

/*
 * Share bounds of weight @wt out of @sum in @m buckets, tolerance @t percent (0..100):
 * floor = ceil((1 - t/100) ideal) but at most floor(ideal); ceil = floor((1 + t/100)
 * ideal) but at least ceil(ideal).
 */
static void share_bounds(__u64 wt, __u64 sum, __u32 m, __u32 t, __u32 *lo, __u32 *hi)
{
	__u64 x = (__u64)m * wt; /* ideal = x / sum */
	__u64 ideal_lo = x / sum, ideal_hi = (x + sum - 1) / sum;
	__u64 l = ((100 - t) * x + 100 * sum - 1) / (100 * sum), h = (100 + t) * x / (100 * sum);

	*lo = (__u32)(l < ideal_lo ? l : ideal_lo);
	*hi = (__u32)(h > ideal_hi ? h : ideal_hi);
}

/* Fills @table from walkers sorted by id, all with weight > 0. @n > 0. */
static int fill(struct walker *w, size_t n, __u32 m, __u32 tolerance, __u16 *table)
{
	__u8 *taken = calloc(m, 1);
	struct walker **heap = calloc(n, sizeof(*heap));
	__u64 sum = 0, budget = m;
	__u32 filled = 0;
	size_t hn = 0;
	int ret = -ENOMEM;

	if (!taken || !heap)
		goto out;
	for (size_t i = 0; i < n; i++)
		sum += w[i].weight;
	for (size_t i = 0; i < n; i++) {
		share_bounds(w[i].weight, sum, m, tolerance, &w[i].floor, &w[i].ceil);
		budget -= w[i].floor; /* sum of floors <= m */
		w[i].time = arrival(&w[i]);
		heap[hn++] = &w[i];
	}
	for (size_t i = hn / 2; i-- > 0;)
		sift_down(heap, hn, i);
	/*
	 * Terminates: an open walker takes the first free bucket it reaches, and its walk
	 * visits every bucket in m steps. sum(ceil) >= m and sum(floor) + budget = m, so
	 * the heap cannot run dry before the table is full.
	 */
	while (filled < m) {
		struct walker *b;

		if (!hn) {
			ret = -EFAULT; /* unreachable, see above */
			goto out;
		}
		b = heap[0];
		if (!taken[b->pos]) {
			bool take = b->count < b->floor;

			if (!take && b->count < b->ceil && budget) {
				take = true;
				budget--;
			}
			if (take) {
				taken[b->pos] = 1;
				table[b->pos] = (__u16)b->id;
				b->count++;
				filled++;
			}
		}
		if (b->count >= b->ceil || (b->count >= b->floor && !budget)) {
			heap[0] = heap[--hn]; /* closed for good */
		} else {
			to_free(b, taken, m);
		}
		sift_down(heap, hn, 0);
	}
	ret = 0;
out:
	free(heap);
	free(taken);
	return ret;
}

/* Common checks and the empty case; *@n_out = walkers with weight, sorted by id. */
static int prepare(struct walker *w, size_t n, __u32 m, __u16 *table, size_t *n_out)
{
	size_t k = 0;

	if (!table || !fp_is_prime(m))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (w[i].id == FP_NO_BACKEND || w[i].id > 0xffff || w[i].weight > 0xffff)
			return -EINVAL;
		if (w[i].weight)
			w[k++] = w[i];
	}
	qsort(w, k, sizeof(*w), by_id);
	for (size_t i = 1; i < k; i++)
		if (w[i].id == w[i - 1].id)
			return -EINVAL;
	*n_out = k;
	if (!k)
		for (__u32 i = 0; i < m; i++)
			table[i] = FP_NO_BACKEND;
	return 0;
}

/* SipHash-2-4 under the fleet key of the 8-byte message id | tag << 32. */
static __u64 id_hash(const struct fp_hash_key *key, __u32 id, __u32 tag)
{
	__u64 msg = (__u64)id | (__u64)tag << 32;
	__u8 buf[8];

	for (int i = 0; i < 8; i++)
		buf[i] = (__u8)(msg >> (8 * i));
	return fp_siphash(key, buf, 8, 2, 4);
}

int fp_table_build(const struct fp_maglev_backend *backends, size_t n, __u32 m,
		   const struct fp_hash_key *key, __u32 tolerance, __u16 *table)
{
	struct walker *w = NULL;
	size_t k;
	int ret;

	if ((n && !backends) || !key || tolerance > FP_MAX_SHARE_TOLERANCE)
		return -EINVAL;
	w = calloc(n ? n : 1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		w[i].id = backends[i].id;
		w[i].weight = backends[i].weight;
	}
	ret = prepare(w, n, m, table, &k);
	if (ret || !k)
		goto out;
	for (size_t i = 0; i < k; i++) {
		/* Tags 0, 1, 2: offset, skip and jitter seed are independent. */
		w[i].pos = (__u32)(id_hash(key, w[i].id, 0) % m);
		w[i].skip = (__u32)(id_hash(key, w[i].id, 1) % (m - 1)) + 1;
		w[i].seed = id_hash(key, w[i].id, 2);
	}
	ret = fill(w, k, m, tolerance, table);
out:
	free(w);
	return ret;
}

int fp_maglev_build(const struct fp_maglev_backend *backends, size_t n, __u32 m,
		    const struct fp_hash_key *key, __u16 *table)
{
	return fp_table_build(backends, n, m, key, FP_DEFAULT_SHARE_TOLERANCE, table);
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const __u16 *)a - (int)*(const __u16 *)b;
}

__u32 fp_backend_new_flow_weight(const struct fp_backend_cfg *b)
{
	return b->state == FP_BACKEND_ACTIVE ? b->weight : 0;
}

size_t fp_vip_active_list(const struct fp_vip_cfg *vip, __u16 *list)
{
	size_t n = 0;

	for (size_t i = 0; i < vip->n_backends; i++)
		if (fp_backend_new_flow_weight(&vip->backends[i]))
			list[n++] = (__u16)vip->backends[i].id;
	qsort(list, n, sizeof(*list), cmp_u16);
	return n;
}

int fp_maglev_build_vip(const struct fp_config *cfg, const struct fp_vip_cfg *vip, __u16 *table)
{
	struct fp_maglev_backend *b;
	int ret;

	if (!cfg || !vip)
		return -EINVAL;
	b = calloc(vip->n_backends ? vip->n_backends : 1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < vip->n_backends; i++) {
		b[i].id = vip->backends[i].id;
		b[i].weight = fp_backend_new_flow_weight(&vip->backends[i]);
	}
	ret = fp_table_build(b, vip->n_backends, cfg->table_size, &cfg->hash_key,
			     cfg->share_tolerance, table);
	free(b);
	return ret;
}

void fp_generation_pairs(const __u16 *next, const struct fp_bucket *prev, __u32 m,
			 struct fp_bucket *out)
{
	for (__u32 i = 0; i < m; i++) {
		out[i].owner = next[i];
		if (!prev || prev[i].owner == FP_NO_BACKEND)
			/* No previous generation, or nobody owned the bucket: no second hop. */
			out[i].previous = next[i];
		else if (prev[i].owner != next[i])
			/* Moved now: flows of the bucket live on the owner we replace. */
			out[i].previous = prev[i].owner;
		else
			/*
			 * Not moved now: keep remembering an earlier move, so a flow moved by
			 * change g keeps its second chance through an unrelated change g+1.
			 */
			out[i].previous = prev[i].previous;
	}
}

__u32 fp_table_disruption(const __u16 *a, const __u16 *b, __u32 m)
{
	__u32 moved = 0;

	for (__u32 i = 0; i < m; i++)
		moved += a[i] != b[i];
	return moved;
}
