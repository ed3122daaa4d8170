/* SPDX-License-Identifier: MIT */
/*
 * Bucket tables (rendezvous with bounded shares, lib/maglev.c) and table generations.
 * The file keeps its historical name; the construction is no longer Maglev's.
 * Userspace only; the data plane sees the result as arrays of struct fp_bucket.
 */
#ifndef FLOWPIN_MAGLEV_H
#define FLOWPIN_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <flowpin/hash.h>
#include <flowpin/maps.h>

/*
 * The name of the construction below, for the config's optional `table_construction`
 * field: a config naming it is refused by every binary that builds other tables.
 * Change it whenever fp_maglev_build() changes a single bucket for some input.
 */
#define FP_TABLE_CONSTRUCTION "rendezvous-v1"

/* Share tolerance in percent (the config's share_tolerance): default and largest. */
#define FP_DEFAULT_SHARE_TOLERANCE 1
#define FP_MAX_SHARE_TOLERANCE	   50

struct fp_maglev_backend {
	__u32 id;     /* stable id from config: the permutation depends on it, not on position */
	__u32 weight; /* 0 = takes no buckets (draining) */
};

/*
 * fp_table_build - fill @table[0..m-1] with backend ids (FP_NO_BACKEND when no backend
 * has weight). The result depends only on (ids, weights, m, key, tolerance), never on
 * the order of @backends: rendezvous hashing with each backend's bucket count bounded
 * to within @tolerance percent (0..FP_MAX_SHARE_TOLERANCE) of m * weight /
 * sum(weights), or within one bucket where that is less than a bucket (the
 * construction: lib/maglev.c; why: docs/design.md "Bucket tables"). Every backend's
 * walk, offset + j * skip (mod m), and the jitter of its arrival times come from
 * SipHash-2-4 values of its id under @key. @m must be prime; ids 1..65535 and unique;
 * weights 0..65535. Returns 0, -EINVAL or -ENOMEM.
 */
int fp_table_build(const struct fp_maglev_backend *backends, size_t n, __u32 m,
		   const struct fp_hash_key *key, __u32 tolerance, __u16 *table);

/* fp_table_build() with the default tolerance, FP_DEFAULT_SHARE_TOLERANCE. */
int fp_maglev_build(const struct fp_maglev_backend *backends, size_t n, __u32 m,
		    const struct fp_hash_key *key, __u16 *table);

/*
 * Per-bucket hop pairs for generation g+1 (@next) over the pairs of the running
 * generation g (@prev): owner = next[i]; previous = prev[i].owner when the bucket moves
 * now, prev[i].previous when it does not (an earlier move is remembered until the bucket
 * moves again), next[i] when @prev is NULL (first generation) or nobody owned the bucket.
 * Backend states are the caller's business (lib/lb.c drops a remembered previous owner
 * that left the config or is down).
 */
void fp_generation_pairs(const __u16 *next, const struct fp_bucket *prev, __u32 m,
			 struct fp_bucket *out);

/* Number of buckets whose owner differs between two tables. */
__u32 fp_table_disruption(const __u16 *a, const __u16 *b, __u32 m);

bool fp_is_prime(__u32 n);

struct fp_config;
struct fp_vip_cfg;
struct fp_backend_cfg;

/*
 * The weight a backend takes new flows with: its own while active, 0 while draining or
 * down (it keeps the flows it has where sessions keep them). The one rule behind
 * fp_maglev_build_vip(), fp_vip_active_list() and the shares `flowpin table` prints.
 */
__u32 fp_backend_new_flow_weight(const struct fp_backend_cfg *b);

/*
 * fp_maglev_build_vip - a VIP's table under @cfg (hash key, table size, share tolerance): active
 * backends with their weights, draining and down backends with weight 0. @table has
 * cfg->table_size entries. The one builder of a VIP's table: an LB node applies
 * (lib/lb.c) exactly what `flowpin table` previews. Returns 0 or a negative errno.
 */
int fp_maglev_build_vip(const struct fp_config *cfg, const struct fp_vip_cfg *vip, __u16 *table);

/*
 * fp_vip_active_list - what a VIP without a Maglev table (none, table) picks from: the
 * ids of its backends with a new-flow weight (weights themselves do not count), sorted, so every LB node with the same config has the
 * same list. @list has room for vip->n_backends ids. Returns how many it wrote.
 */
size_t fp_vip_active_list(const struct fp_vip_cfg *vip, __u16 *list);

#endif
