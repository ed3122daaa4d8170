// SPDX-License-Identifier: MIT
/*
 * The tables an LB node applies are the ones `flowpin table` previews: for every pinning
 * mode, the owners in a VIP's active slot after fp_lb_apply() are byte for byte what
 * fp_maglev_build_vip() gives (the function `flowpin table` prints the shares of), and a
 * none/table VIP's list is fp_vip_active_list(). Checked on a first generation and on a
 * change (weights, a drain, a backend down, one removed, one added).
 */
#include "test_lb_fixture.h"

#define TABLE 1021

struct grab {
	const struct fp_vip_cfg *want;
	struct fp_vip vip;
	int found;
};

static int grab_vip(const struct fp_vip_key *key, const struct fp_vip *vip, void *ctx)
{
	struct grab *g = ctx;

	if (!memcmp(key->addr, g->want->addr.a, 16) && ntohs(key->port) == g->want->port &&
	    key->proto == g->want->proto) {
		g->vip = *vip;
		g->found = 1;
	}
	return 0;
}

/* Every VIP of @t as applied to @lb is the preview's table or list. */
static void expect_preview(struct fp_lb *lb, const struct t_config *t)
{
	static __u16 preview[TABLE], applied[TABLE];

	for (size_t i = 0; i < t->cfg.n_vips; i++) {
		const struct fp_vip_cfg *v = &t->vips[i];
		struct grab g = { .want = v };
		struct fp_bucket b;
		__u32 n = TABLE;

		assert_int_equal(fp_lb_for_each_vip(lb, grab_vip, &g), 0);
		assert_true(g.found);
		assert_int_equal(g.vip.pinning, v->pinning);
		memset(preview, 0, sizeof(preview));
		memset(applied, 0, sizeof(applied));
		if (fp_pinning_uses_maglev(v->pinning)) {
			assert_int_equal(fp_maglev_build_vip(&t->cfg, v, preview), 0);
		} else {
			n = (__u32)fp_vip_active_list(v, preview);
			assert_int_equal(g.vip.n_list, n);
		}
		assert_true(n > 0 && preview[0] != FP_NO_BACKEND);
		for (__u32 k = 0; k < n; k++) {
			assert_int_equal(fp_lb_read_bucket(lb, &g.vip, k, &b), 0);
			applied[k] = b.owner;
		}
		if (memcmp(preview, applied, n * sizeof(__u16)))
			fail_msg("vip %s (%s): the applied table differs from the preview", v->name,
				 fp_pinning_name(v->pinning));
	}
}

static void add_backends(struct fp_vip_cfg *v)
{
	t_add_backend(v, 3, "10.1.0.3");
	t_add_backend(v, 1, "10.1.0.1")->weight = 300;
	t_add_backend(v, 7, "10.1.0.7")->state = FP_BACKEND_DRAINING;
	t_add_backend(v, 2, "10.1.0.2")->weight = 50;
	t_add_backend(v, 5, "10.1.0.5")->state = FP_BACKEND_DOWN;
}

static void test_applied_is_previewed(void **state)
{
	static struct t_config t;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	t_config_init(&t, TABLE);
	for (int m = 0; m < FP_PIN__COUNT; m++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "203.0.113.%d", 60 + m);
		add_backends(t_add_vip(&t, addr, 80, IPPROTO_TCP, (enum fp_pinning)m));
	}
	lb = t_open(&t);
	expect_preview(lb, &t);

	/* A change: reweight, drain, down, remove (the last), add. */
	for (size_t i = 0; i < t.cfg.n_vips; i++) {
		struct fp_vip_cfg *v = &t.vips[i];

		v->backends[0].weight = 10;
		v->backends[1].state = FP_BACKEND_DRAINING;
		v->backends[2].state = FP_BACKEND_ACTIVE;
		v->backends[3].state = FP_BACKEND_DOWN;
		v->n_backends--;
		t_add_backend(v, 9, "10.1.0.9");
	}
	assert_int_equal(fp_lb_apply(lb, &t.cfg, NULL), 0);
	expect_preview(lb, &t);
	fp_lb_close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_applied_is_previewed),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
