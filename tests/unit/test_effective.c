// SPDX-License-Identifier: MIT
/*
 * Effective backend state (lib/effective.c): config state x operator override x health,
 * the most restrictive wins; health down is like drain; fail-open (health alone never
 * empties a VIP); a whole config copied with the effective states; the overrides file
 * (round trip, bad lines skipped and named, pruning against a config).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <flowpin/effective.h>

#define A FP_BACKEND_ACTIVE
#define D FP_BACKEND_DRAINING
#define X FP_BACKEND_DOWN

static void test_one_backend(void **state)
{
	(void)state;
	/* Every combination: config x override x health. */
	static const struct {
		enum fp_backend_state config;
		enum fp_override o;
		bool health_down;
		enum fp_backend_state want;
	} cases[] = {
		{ A, FP_OVERRIDE_NONE, false, A },    { A, FP_OVERRIDE_NONE, true, D },
		{ A, FP_OVERRIDE_DRAIN, false, D },   { A, FP_OVERRIDE_DRAIN, true, D },
		{ A, FP_OVERRIDE_DISABLE, false, X }, { A, FP_OVERRIDE_DISABLE, true, X },
		{ D, FP_OVERRIDE_NONE, false, D },    { D, FP_OVERRIDE_NONE, true, D },
		{ D, FP_OVERRIDE_DRAIN, false, D },   { D, FP_OVERRIDE_DISABLE, false, X },
		{ X, FP_OVERRIDE_NONE, false, X },    { X, FP_OVERRIDE_NONE, true, X },
		{ X, FP_OVERRIDE_DRAIN, false, X },   { X, FP_OVERRIDE_DISABLE, true, X },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(
			fp_effective_state(cases[i].config, cases[i].o, cases[i].health_down),
			cases[i].want);
}

static void test_fail_open(void **state)
{
	enum fp_backend_state out[3];

	(void)state;
	/* One of two down by health: it drains, the other stays. */
	struct fp_effective_in some[] = { { A, FP_OVERRIDE_NONE, true },
					  { A, FP_OVERRIDE_NONE, false } };
	assert_false(fp_effective_vip(some, 2, out));
	assert_int_equal(out[0], D);
	assert_int_equal(out[1], A);

	/* Every active one down by health: ignored for the VIP, all stay active. */
	struct fp_effective_in all[] = { { A, FP_OVERRIDE_NONE, true },
					 { A, FP_OVERRIDE_NONE, true },
					 { D, FP_OVERRIDE_NONE, true } };
	assert_true(fp_effective_vip(all, 3, out));
	assert_int_equal(out[0], A);
	assert_int_equal(out[1], A);
	assert_int_equal(out[2], D);

	/* The last active one drained by health, the others by the operator: fail-open
	 * keeps the operator's choices and ignores only health. */
	struct fp_effective_in mixed[] = { { A, FP_OVERRIDE_DRAIN, false },
					   { A, FP_OVERRIDE_DISABLE, true },
					   { A, FP_OVERRIDE_NONE, true } };
	assert_true(fp_effective_vip(mixed, 3, out));
	assert_int_equal(out[0], D);
	assert_int_equal(out[1], X);
	assert_int_equal(out[2], A);

	/* The operator (or the file) emptied the VIP: not health's doing, no fail-open. */
	struct fp_effective_in operator[] = { { A, FP_OVERRIDE_DRAIN, true },
					      { D, FP_OVERRIDE_NONE, false } };
	assert_false(fp_effective_vip(operator, 2, out));
	assert_int_equal(out[0], D);
	assert_int_equal(out[1], D);

	/* No backends at all. */
	assert_false(fp_effective_vip(NULL, 0, out));
}

static bool health_of(void *arg, const char *vip, __u32 backend)
{
	const char *down = arg; /* "VIP/ID" down, the rest up */
	char key[96];

	snprintf(key, sizeof(key), "%s/%u;", vip, backend);
	return !strstr(down, key);
}

static void test_config(void **state)
{
	struct fp_backend_cfg web[3] = { { .id = 1, .weight = 100, .state = A },
					 { .id = 2, .weight = 100, .state = A },
					 { .id = 3, .weight = 100, .state = D } };
	struct fp_backend_cfg dns[2] = { { .id = 1, .weight = 100, .state = A },
					 { .id = 2, .weight = 100, .state = A } };
	struct fp_vip_cfg vips[2] = { { .name = "web", .backends = web, .n_backends = 3 },
				      { .name = "dns", .backends = dns, .n_backends = 2 } };
	struct fp_config cfg = { .table_size = 307, .vips = vips, .n_vips = 2 };
	struct fp_overrides o = { 0 };
	struct fp_config *eff = NULL;
	bool ignored[2] = { true, true };

	(void)state;
	assert_int_equal(fp_overrides_set(&o, "web", 1, FP_OVERRIDE_DISABLE), 0);
	/* web/2 down by health would empty web (1 disabled, 3 draining): fail-open.
	 * dns/1 down by health: drained, dns/2 carries. */
	assert_int_equal(fp_effective_config(&cfg, &o, health_of, "web/2;dns/1;", &eff, ignored),
			 0);
	assert_non_null(eff);
	assert_int_equal(eff->vips[0].backends[0].state, X);
	assert_int_equal(eff->vips[0].backends[1].state, A);
	assert_int_equal(eff->vips[0].backends[2].state, D);
	assert_true(ignored[0]);
	assert_int_equal(eff->vips[1].backends[0].state, D);
	assert_int_equal(eff->vips[1].backends[1].state, A);
	assert_false(ignored[1]);
	/* A copy: the file's states are untouched. */
	assert_int_equal(web[0].state, A);
	assert_ptr_not_equal(eff->vips[0].backends, web);
	assert_int_equal(eff->table_size, 307);
	fp_config_free(eff);

	/* No overrides, no health: the config as it is. */
	assert_int_equal(fp_effective_config(&cfg, NULL, NULL, NULL, &eff, NULL), 0);
	for (size_t v = 0; v < 2; v++)
		for (size_t b = 0; b < vips[v].n_backends; b++)
			assert_int_equal(eff->vips[v].backends[b].state, vips[v].backends[b].state);
	fp_config_free(eff);
	fp_overrides_free(&o);
}

static void test_overrides_set(void **state)
{
	struct fp_overrides o = { 0 };

	(void)state;
	assert_int_equal(fp_overrides_get(&o, "web", 1), FP_OVERRIDE_NONE);
	assert_int_equal(fp_overrides_set(&o, "web", 1, FP_OVERRIDE_DRAIN), 0);
	assert_int_equal(fp_overrides_set(&o, "dns", 1, FP_OVERRIDE_DISABLE), 0);
	assert_int_equal(fp_overrides_set(&o, "web", 1, FP_OVERRIDE_DISABLE), 0);
	assert_int_equal(o.n, 2);
	assert_int_equal(fp_overrides_get(&o, "web", 1), FP_OVERRIDE_DISABLE);
	assert_int_equal(fp_overrides_get(&o, "dns", 1), FP_OVERRIDE_DISABLE);
	assert_int_equal(fp_overrides_get(&o, "web", 2), FP_OVERRIDE_NONE);
	assert_int_equal(fp_overrides_set(&o, "web", 1, FP_OVERRIDE_NONE), 0);
	assert_int_equal(fp_overrides_get(&o, "web", 1), FP_OVERRIDE_NONE);
	assert_int_equal(o.n, 1);
	assert_int_equal(fp_overrides_set(&o, "nothere", 9, FP_OVERRIDE_NONE), 0);
	assert_int_equal(o.n, 1);
	assert_string_equal(fp_override_name(FP_OVERRIDE_DRAIN), "drain");
	fp_overrides_free(&o);
}

static void dropped(const struct fp_override_entry *e, void *arg)
{
	char *log = arg;

	snprintf(log + strlen(log), 128 - strlen(log), "%s/%u ", e->vip, e->backend);
}

static void test_overrides_file(void **state)
{
	char dir[] = "/tmp/fp-effective-XXXXXX", path[64], *err = NULL;
	struct fp_overrides o = { 0 }, back = { 0 };
	size_t err_len;
	FILE *f, *errs;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lb0.overrides", dir);
	/* Missing file: an empty set. */
	assert_int_equal(fp_overrides_load(path, &back, NULL), 0);
	assert_int_equal(back.n, 0);

	assert_int_equal(fp_overrides_set(&o, "web", 1, FP_OVERRIDE_DRAIN), 0);
	assert_int_equal(fp_overrides_set(&o, "dns.v6", 4095, FP_OVERRIDE_DISABLE), 0);
	assert_int_equal(fp_overrides_save(path, &o), 0);
	assert_int_equal(fp_overrides_load(path, &back, NULL), 0);
	assert_int_equal(back.n, 2);
	assert_int_equal(fp_overrides_get(&back, "web", 1), FP_OVERRIDE_DRAIN);
	assert_int_equal(fp_overrides_get(&back, "dns.v6", 4095), FP_OVERRIDE_DISABLE);

	/* Bad lines are skipped and named; good ones around them kept. */
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"# comment\n\nweb 2 drain\nweb 0 drain\nweb 4096 drain\nweb 3 up\n"
		"web 3 drain extra\nweb x drain\n%0300d\nweb 5 disable\n",
		0);
	fclose(f);
	errs = open_memstream(&err, &err_len);
	/* Refused whole (a skipped line would undrain a backend), every bad line named. */
	assert_int_equal(fp_overrides_load(path, &back, errs), -EINVAL);
	fclose(errs);
	assert_int_equal(back.n, 0);
	assert_int_equal(fp_overrides_get(&back, "web", 2), FP_OVERRIDE_NONE);
	for (int line = 4; line <= 9; line++) {
		char needle[80];

		snprintf(needle, sizeof(needle), "lb0.overrides:%d: expected", line);
		assert_non_null(strstr(err, needle));
	}
	assert_null(strstr(err, ":3:"));
	free(err);

	/* Pruned against a config: web/5 and the VIP "gone" are not in it. */
	struct fp_backend_cfg web[1] = { { .id = 2, .state = A } };
	struct fp_vip_cfg vips[1] = { { .name = "web", .backends = web, .n_backends = 1 } };
	struct fp_config cfg = { .vips = vips, .n_vips = 1 };
	char log[128] = "";

	assert_int_equal(fp_overrides_set(&back, "web", 2, FP_OVERRIDE_DRAIN), 0);
	assert_int_equal(fp_overrides_set(&back, "web", 5, FP_OVERRIDE_DISABLE), 0);
	assert_int_equal(fp_overrides_set(&back, "gone", 2, FP_OVERRIDE_DRAIN), 0);
	assert_int_equal(fp_overrides_prune(&back, &cfg, dropped, log), 2);
	assert_int_equal(back.n, 1);
	assert_int_equal(fp_overrides_get(&back, "web", 2), FP_OVERRIDE_DRAIN);
	assert_non_null(strstr(log, "web/5 "));
	assert_non_null(strstr(log, "gone/2 "));

	fp_overrides_free(&o);
	fp_overrides_free(&back);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_backend),    cmocka_unit_test(test_fail_open),
		cmocka_unit_test(test_config),	       cmocka_unit_test(test_overrides_set),
		cmocka_unit_test(test_overrides_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
