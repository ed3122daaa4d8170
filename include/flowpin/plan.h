/* SPDX-License-Identifier: MIT */
/*
 * Table planning: a config and what runs now -> what each VIP becomes (its key, its
 * `vips` value, a new table or list and whether it differs from the running one), which
 * running VIPs go, and the hop pairs a changed VIP's new slot gets. Pure: no maps, no
 * kernel, no root; lib/lb.c reads the running state, plans, then writes the plan
 * (docs/design.md "Tables and generations"). Userspace only.
 *
 * Functions return 0 or a negative errno; a refused config is explained through fp_log
 * as FILE:LINE: FIELD: message.
 */
#ifndef FLOWPIN_PLAN_H
#define FLOWPIN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <flowpin/config.h>
#include <flowpin/maps.h>

/* What runs now, as read from the maps. */
struct fp_running {
	const struct fp_vip_key *keys; /* the `vips` map: n entries */
	const struct fp_vip *vips;
	size_t n;
	const struct fp_bucket *buckets; /* the flat bucket array (fp_bucket_index) */
	__u32 table_size;
	__u32 max_vips;	  /* VIP slots: indexes 0..max_vips-1 */
	__u32 generation; /* generation now (struct fp_info) */
};

/* What one VIP of the new config becomes. */
struct fp_vip_plan {
	const struct fp_vip_cfg *cfg;
	struct fp_vip_key key;
	struct fp_vip value;	      /* as it will be written */
	const struct fp_vip *current; /* the running entry of this key, or NULL */
	bool exists;		      /* already running: value.slot is the new (flipped) one */
	bool changed;		      /* needs a new table and a flip */
	__u16 *owners;		      /* Maglev modes: the new table (table_size entries) */
	__u16 list[FP_BACKEND_SLOTS]; /* none/table: the sorted active backends */
	__u32 n_list;
};

struct fp_plan {
	struct fp_vip_plan *vips; /* one per VIP of the config, in its order */
	size_t n_vips;
	bool removed[FP_VIP_SLOTS_MAX]; /* running VIP i (fp_running order) is not in the config */
	bool any_change;		/* a table flips or a VIP goes: a new generation */
	__u32 generation;		/* the generation a changed VIP gets */
};

/* The `vips` map key of a configured VIP. */
void fp_vip_key_of(const struct fp_vip_cfg *v, struct fp_vip_key *key);

/*
 * fp_plan_tables - plans @cfg over @run into @out (release with fp_plan_free(), also on
 * error). Refuses (-EINVAL) two VIPs with one key, backend ids outside the maps, a new
 * VIP without a free slot, a list longer than the table. A VIP new to the maps never
 * gets an index freed by this same plan (packets in flight may still read it). An
 * unchanged VIP keeps its value (slot, generation, pairs) as it runs.
 */
int fp_plan_tables(const struct fp_config *cfg, const struct fp_running *run, struct fp_plan *out);

/*
 * fp_plan_pairs - the hop pairs of a changed VIP's new slot (@run->table_size entries):
 * (new owner, owner running now) per bucket, an earlier move remembered until the
 * bucket moves again (fp_generation_pairs()), but a remembered previous owner only while
 * it can still hold flows (in the config, not down); lists: (id, id), the rest empty.
 */
void fp_plan_pairs(const struct fp_vip_plan *p, const struct fp_running *run,
		   struct fp_bucket *out);

void fp_plan_free(struct fp_plan *plan);

/*
 * fp_plan_quic_lb - whether @v's QUIC-LB CIDs are decoded by the XDP program (a UDP VIP
 * with quic_lb, plaintext or single-pass AES; the four-pass mode is not), and then its
 * `quic_lb` map value in @out (may be NULL).
 */
bool fp_plan_quic_lb(const struct fp_vip_cfg *v, struct fp_quic_lb *out);

#endif
