// SPDX-License-Identifier: MIT
/*
 * Weighted Maglev (Eisenbud et al., NSDI 2016, section 3.4) and table generations.
 *
 * Each backend walks its own permutation of the m slots, (offset + j * skip) mod m,
 * and in turn takes the next slot nobody holds. Weights: every round each backend earns
 * credit weight * n and takes one turn per sum(weights) of credit it holds, so with
 * equal weights it is exactly the paper's one turn per round (shares within one slot),
 * and otherwise a backend's slots stay within 2 + weight * n / sum (its turns per
 * round) of m * weight / sum: credit never exceeds one turn's worth, and the table can
 * fill in the middle of a round (tests/unit/test_maglev.c checks the bound). Backends
 * take turns in id order, so the table depends on the set of (id, weight), never on the
 * order of the config.
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
	__u32 next; /* slot this backend looks at next: offset + j * skip, mod m */
	__u32 skip;
	__u32 skip2, skip3, skip4; /* 2, 3 and 4 x skip, mod m: see next_free() */
	__u64 credit;
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

/*
 * One byte per slot, not one bit: 64 KiB for the default table still sits in L1/L2,
 * and a probe is one load with no shift (measured: ~20% faster build than a bitmap).
 */
static inline __u32 slot_taken(const __u8 *taken, __u32 c)
{
	return taken[c];
}

static inline __u32 slot_step(__u32 c, __u32 skip, __u32 m)
{
	c += skip;
	return c >= m ? c - m : c;
}

/*
 * First free slot on @b's walk, from @c on. Nearly all of the build time is here: about
 * M ln M probes in all, most of them late, when few slots are free. So it tests four
 * positions of the walk at once, each computed from @c with a precomputed multiple of
 * the skip (independent loads, a short dependency chain), and picks the first free one
 * without a branch: one loop exit misprediction per turn, not one per probe.
 */
static inline __u32 next_free(const __u8 *taken, __u32 c, const struct walker *b, __u32 m)
{
	for (;;) {
		__u32 cand[4] = { c, slot_step(c, b->skip, m), slot_step(c, b->skip2, m),
				  slot_step(c, b->skip3, m) };
		__u32 busy = slot_taken(taken, cand[0]) | slot_taken(taken, cand[1]) << 1 |
			     slot_taken(taken, cand[2]) << 2 | slot_taken(taken, cand[3]) << 3;

		if (busy != 0xf)
			return cand[__builtin_ctz(~busy)];
		c = slot_step(c, b->skip4, m);
	}
}

/*
 * Fills @table from walkers sorted by id, all with weight > 0. @n > 0.
 * Terminates: m is prime and 0 < skip < m, so each walk visits every slot.
 */
static int fill(struct walker *w, size_t n, __u32 m, __u16 *table)
{
	__u8 *taken = calloc(m, 1);
	__u64 sum = 0;
	__u32 filled = 0;

	if (!taken)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		sum += w[i].weight;
		w[i].skip2 = (__u32)(2ULL * w[i].skip % m);
		w[i].skip3 = (__u32)(3ULL * w[i].skip % m);
		w[i].skip4 = (__u32)(4ULL * w[i].skip % m);
	}
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			struct walker *b = &w[i];

			b->credit += (__u64)b->weight * n;
			while (b->credit >= sum) {
				__u32 c = next_free(taken, b->next, b, m);

				b->credit -= sum;
				taken[c] = 1;
				table[c] = (__u16)b->id;
				b->next = slot_step(c, b->skip, m);
				if (++filled == m)
					goto out;
			}
		}
	}
out:
	free(taken);
	return 0;
}

/* Common checks and the empty case; *@n_out = walkers with weight, sorted by id. */
static int prepare(struct walker *w, size_t n, __u32 m, __u16 *table, size_t *n_out)
{
	size_t k = 0;

	if (!table || !fp_is_prime(m))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (w[i].id == FP_NO_BACKEND || w[i].id > 0xffff)
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

/* Permutation of backend @id under the fleet key: two SipHash values of the id. */
static void permutation(const struct fp_hash_key *key, __u32 id, __u32 m, __u32 *offset,
			__u32 *skip)
{
	/* id in the low half, a tag in the high half: offset and skip are independent. */
	__u64 msg_offset = (__u64)id, msg_skip = (__u64)id | (1ULL << 32);
	__u8 buf[8];

	for (int i = 0; i < 8; i++)
		buf[i] = (__u8)(msg_offset >> (8 * i));
	*offset = (__u32)(fp_siphash(key, buf, 8, 2, 4) % m);
	for (int i = 0; i < 8; i++)
		buf[i] = (__u8)(msg_skip >> (8 * i));
	*skip = (__u32)(fp_siphash(key, buf, 8, 2, 4) % (m - 1)) + 1;
}

int fp_maglev_build(const struct fp_maglev_backend *backends, size_t n, __u32 m,
		    const struct fp_hash_key *key, __u16 *table)
{
	struct walker *w = NULL;
	size_t k;
	int ret;

	if ((n && !backends) || !key)
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
	for (size_t i = 0; i < k; i++)
		permutation(key, w[i].id, m, &w[i].next, &w[i].skip);
	ret = fill(w, k, m, table);
out:
	free(w);
	return ret;
}

int fp_maglev_populate(const __u32 *ids, const __u32 *weights, const __u32 *offset,
		       const __u32 *skip, size_t n, __u32 m, __u16 *table)
{
	struct walker *w = NULL;
	size_t k;
	int ret = -EINVAL;

	if (n && (!ids || !weights || !offset || !skip))
		return -EINVAL;
	w = calloc(n ? n : 1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (offset[i] >= m || skip[i] == 0 || skip[i] >= m)
			goto out;
		w[i] = (struct walker){
			.id = ids[i], .weight = weights[i], .next = offset[i], .skip = skip[i]
		};
	}
	ret = prepare(w, n, m, table, &k);
	if (ret || !k)
		goto out;
	ret = fill(w, k, m, table);
out:
	free(w);
	return ret;
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
	ret = fp_maglev_build(b, vip->n_backends, cfg->table_size, &cfg->hash_key, table);
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
