// SPDX-License-Identifier: MIT
/*
 * Table planning (lib/plan.c) without maps or root: a simulated node keeps its `vips`
 * entries and bucket array in memory and "applies" each plan the way lib/lb.c writes it
 * (pairs into the new slot, then the values). Checked: a first apply, a no-op re-apply,
 * a change (slot flip, generation, hop pairs), VIPs removed and added in one apply
 * (no index reused), a remembered previous owner forgotten once it cannot hold flows,
 * and the refusals.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <flowpin/log.h>
#include <flowpin/maglev.h>
#include <flowpin/plan.h>

#define M	 251
#define MAX_VIPS 4
#define NB	 6

struct node {
	struct fp_vip_key keys[FP_VIP_SLOTS_MAX];
	struct fp_vip vips[FP_VIP_SLOTS_MAX];
	size_t n;
	struct fp_bucket buckets[MAX_VIPS * 2 * M];
	__u32 generation;
};

struct cfg {
	struct fp_config cfg;
	struct fp_vip_cfg vips[MAX_VIPS + 1];
	struct fp_backend_cfg backends[MAX_VIPS + 1][NB];
};

static const struct fp_hash_key key = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };

static void cfg_init(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->cfg.path = "plan.yaml";
	c->cfg.hash_key = key;
	c->cfg.table_size = M;
	c->cfg.share_tolerance = FP_DEFAULT_SHARE_TOLERANCE;
	c->cfg.vips = c->vips;
}

/* A VIP 203.0.113.@host:80/tcp with backends 1..@n (10.0.0.id, weight 100). */
static struct fp_vip_cfg *add_vip(struct cfg *c, int host, enum fp_pinning mode, int n)
{
	struct fp_vip_cfg *v = &c->vips[c->cfg.n_vips];
	char addr[32];

	snprintf(v->name, sizeof(v->name), "vip%d", host);
	snprintf(addr, sizeof(addr), "203.0.113.%d", host);
	assert_int_equal(fp_addr_parse(addr, &v->addr), 0);
	v->port = 80;
	v->proto = IPPROTO_TCP;
	v->pinning = mode;
	v->line = host;
	v->backends = c->backends[c->cfg.n_vips];
	for (int i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "10.0.0.%d", i + 1);
		v->backends[i] = (struct fp_backend_cfg){ .id = (__u32)i + 1, .weight = 100 };
		assert_int_equal(fp_addr_parse(addr, &v->backends[i].addr), 0);
	}
	v->n_backends = (size_t)n;
	c->cfg.n_vips++;
	return v;
}

static struct fp_running running(const struct node *nd)
{
	return (struct fp_running){ .keys = nd->keys,
				    .vips = nd->vips,
				    .n = nd->n,
				    .buckets = nd->buckets,
				    .table_size = M,
				    .max_vips = MAX_VIPS,
				    .generation = nd->generation };
}

static const struct fp_bucket *slot_of(const struct node *nd, const struct fp_vip *v)
{
	return nd->buckets + fp_bucket_index(v->index, v->slot & 1, M, 0);
}

/* Plans @c over @nd and writes the plan as lib/lb.c does. Returns fp_plan_tables(). */
static int apply(struct node *nd, const struct cfg *c, struct fp_plan *plan)
{
	struct fp_running run = running(nd);
	struct fp_vip_key keys[FP_VIP_SLOTS_MAX];
	struct fp_vip vips[FP_VIP_SLOTS_MAX];
	int err = fp_plan_tables(&c->cfg, &run, plan);

	if (err)
		return err;
	for (size_t i = 0; i < plan->n_vips; i++) {
		const struct fp_vip_plan *p = &plan->vips[i];

		if (!p->exists || p->changed)
			fp_plan_pairs(p, &run,
				      nd->buckets +
					      fp_bucket_index(p->value.index, p->value.slot, M, 0));
		keys[i] = p->key;
		vips[i] = p->value;
	}
	memcpy(nd->keys, keys, plan->n_vips * sizeof(keys[0]));
	memcpy(nd->vips, vips, plan->n_vips * sizeof(vips[0]));
	nd->n = plan->n_vips;
	if (plan->any_change)
		nd->generation = plan->generation;
	return 0;
}

static void test_first_apply(void **state)
{
	static struct node nd;
	static struct cfg c;
	struct fp_plan plan;
	__u16 table[M], list[NB];

	(void)state;
	memset(&nd, 0, sizeof(nd));
	cfg_init(&c);
	add_vip(&c, 1, FP_PIN_FULL, 3);
	add_vip(&c, 2, FP_PIN_TABLE, 4)->backends[1].state = FP_BACKEND_DRAINING;
	assert_int_equal(apply(&nd, &c, &plan), 0);
	assert_true(plan.any_change);
	assert_int_equal(plan.generation, 1);
	for (size_t i = 0; i < 2; i++) {
		assert_false(plan.vips[i].exists);
		assert_true(plan.vips[i].changed);
		assert_int_equal(plan.vips[i].value.index, i);
		assert_int_equal(plan.vips[i].value.slot, 0);
		assert_int_equal(plan.vips[i].value.generation, 1);
		assert_int_equal(plan.vips[i].value.pinning, c.vips[i].pinning);
	}
	/* The Maglev VIP's slot: the preview's table, each bucket its own previous. */
	assert_int_equal(fp_maglev_build_vip(&c.cfg, &c.vips[0], table), 0);
	for (__u32 i = 0; i < M; i++) {
		assert_int_equal(slot_of(&nd, &nd.vips[0])[i].owner, table[i]);
		assert_int_equal(slot_of(&nd, &nd.vips[0])[i].previous, table[i]);
	}
	/* The list VIP: active backends in id order (2 is draining), then nothing. */
	assert_int_equal(plan.vips[1].value.n_list, 3);
	assert_int_equal(fp_vip_active_list(&c.vips[1], list), 3);
	for (__u32 i = 0; i < 3; i++)
		assert_int_equal(slot_of(&nd, &nd.vips[1])[i].owner, list[i]);
	assert_int_equal(slot_of(&nd, &nd.vips[1])[3].owner, FP_NO_BACKEND);
	fp_plan_free(&plan);

	/* The same config again: nothing flips, the generation stays. */
	assert_int_equal(apply(&nd, &c, &plan), 0);
	assert_false(plan.any_change);
	for (size_t i = 0; i < 2; i++) {
		assert_true(plan.vips[i].exists);
		assert_false(plan.vips[i].changed);
	}
	assert_int_equal(nd.generation, 1);
	assert_int_equal(nd.vips[0].slot, 0);
	fp_plan_free(&plan);
}

static void test_change_pairs(void **state)
{
	static struct node nd;
	static struct cfg c;
	struct fp_bucket gen1[M], gen2[M];
	struct fp_plan plan;
	__u32 moved = 0, remembered = 0;

	(void)state;
	memset(&nd, 0, sizeof(nd));
	cfg_init(&c);
	add_vip(&c, 1, FP_PIN_FULL, 3);
	assert_int_equal(apply(&nd, &c, &plan), 0);
	fp_plan_free(&plan);
	memcpy(gen1, slot_of(&nd, &nd.vips[0]), sizeof(gen1));

	/* Add backend 4: buckets move to it, remembering their owner before. */
	c.vips[0].backends[3] = (struct fp_backend_cfg){ .id = 4, .weight = 100 };
	assert_int_equal(fp_addr_parse("10.0.0.4", &c.vips[0].backends[3].addr), 0);
	c.vips[0].n_backends = 4;
	assert_int_equal(apply(&nd, &c, &plan), 0);
	assert_true(plan.vips[0].changed);
	assert_int_equal(nd.vips[0].slot, 1);
	assert_int_equal(nd.vips[0].generation, 2);
	assert_int_equal(nd.generation, 2);
	fp_plan_free(&plan);
	memcpy(gen2, slot_of(&nd, &nd.vips[0]), sizeof(gen2));
	for (__u32 i = 0; i < M; i++) {
		if (gen2[i].owner != gen1[i].owner) {
			moved += gen2[i].owner == 4; /* (Maglev moves a few others too) */
			assert_int_equal(gen2[i].previous, gen1[i].owner);
		} else {
			assert_int_equal(gen2[i].previous, gen2[i].owner);
		}
	}
	assert_true(moved > 0);

	/* Backend 1 down: a bucket that stays with 4 forgets its previous owner 1. */
	c.vips[0].backends[0].state = FP_BACKEND_DOWN;
	assert_int_equal(apply(&nd, &c, &plan), 0);
	fp_plan_free(&plan);
	for (__u32 i = 0; i < M; i++) {
		const struct fp_bucket *b = &slot_of(&nd, &nd.vips[0])[i];

		assert_true(b->owner != 1);
		if (b->owner == gen2[i].owner && gen2[i].previous == 1) {
			remembered++;
			assert_int_equal(b->previous, b->owner);
		} else if (b->owner == gen2[i].owner) {
			assert_int_equal(b->previous, gen2[i].previous);
		} else {
			assert_int_equal(b->previous, gen2[i].owner);
		}
	}
	assert_true(remembered > 0);
}

static void test_vips_come_and_go(void **state)
{
	static struct node nd;
	static struct cfg c;
	struct fp_plan plan;

	(void)state;
	memset(&nd, 0, sizeof(nd));
	cfg_init(&c);
	add_vip(&c, 1, FP_PIN_HASH, 2);
	add_vip(&c, 2, FP_PIN_NONE, 2);
	assert_int_equal(apply(&nd, &c, &plan), 0);
	fp_plan_free(&plan);

	/* vip2 goes, vip3 comes: vip3 must not take vip2's index 1 in the same apply. */
	cfg_init(&c);
	add_vip(&c, 1, FP_PIN_HASH, 2);
	add_vip(&c, 3, FP_PIN_HASH_TABLE, 2);
	assert_int_equal(fp_plan_tables(&c.cfg,
					&(struct fp_running){ .keys = nd.keys,
							      .vips = nd.vips,
							      .n = nd.n,
							      .buckets = nd.buckets,
							      .table_size = M,
							      .max_vips = MAX_VIPS,
							      .generation = 1 },
					&plan),
			 0);
	assert_false(plan.removed[0]);
	assert_true(plan.removed[1]);
	assert_true(plan.any_change);
	assert_false(plan.vips[0].changed);
	assert_int_equal(plan.vips[1].value.index, 2);
	fp_plan_free(&plan);
}

static char *errors;
static size_t errors_len;

static void test_refusals(void **state)
{
	static struct node nd;
	static struct cfg c;
	struct fp_running run;
	struct fp_plan plan;
	FILE *saved = stderr;

	(void)state;
	memset(&nd, 0, sizeof(nd));
	run = running(&nd);
	stderr = open_memstream(&errors, &errors_len);
	assert_non_null(stderr);

	cfg_init(&c);
	add_vip(&c, 1, FP_PIN_FULL, 2);
	add_vip(&c, 1, FP_PIN_HASH, 2); /* the same key */
	assert_int_equal(fp_plan_tables(&c.cfg, &run, &plan), -EINVAL);
	fp_plan_free(&plan);

	cfg_init(&c);
	for (int i = 0; i < MAX_VIPS + 1; i++)
		add_vip(&c, 10 + i, FP_PIN_HASH, 1);
	assert_int_equal(fp_plan_tables(&c.cfg, &run, &plan), -EINVAL);
	fp_plan_free(&plan);

	cfg_init(&c);
	add_vip(&c, 1, FP_PIN_FULL, 2)->backends[1].id = FP_BACKEND_SLOTS;
	assert_int_equal(fp_plan_tables(&c.cfg, &run, &plan), -EINVAL);
	fp_plan_free(&plan);

	fclose(stderr);
	stderr = saved;
	assert_non_null(strstr(errors, "plan.yaml:1: vip vip1: same address, port and protocol "
				       "as vip vip1 (line 1)"));
	assert_non_null(strstr(errors, "plan.yaml:14: vip vip14: no free VIP slot in the running "
				       "program (4); needs a restart"));
	assert_non_null(strstr(errors, "id: 4096 is outside 1..4095"));
	free(errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_apply),
		cmocka_unit_test(test_change_pairs),
		cmocka_unit_test(test_vips_come_and_go),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
