// SPDX-License-Identifier: MIT
/*
 * The BGP announcement state machine (lib/announce.c), pure: time is an argument, so
 * every figure below is exact. Checked: the half-life arithmetic, suppress and reuse
 * thresholds, the max-suppress cap, a health check flapping every second for 30 s
 * (with damping, without, and with the default rise/fall alone), maintenance drain ->
 * withdraw at the deadline or below until_flows, `off` reversing it, the data plane
 * going away, a take-over start, and a fleet whose every node lost its backends still
 * announcing (draining) rather than blackholing.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <flowpin/announce.h>

#define S(x)   ((uint64_t)(x)*FP_NS_PER_SEC)
#define MIN(x) S((x)*60)

static const struct fp_announce_input healthy = { .dataplane_ok = true, .healthy_backends = 2 };
static const struct fp_announce_input sick = { .dataplane_ok = true, .healthy_backends = 0 };

/* Params with rise = fall = 1, so each sample is taken as it is (damping alone). */
static struct fp_announce_params immediate(bool damping)
{
	struct fp_announce_params p;

	fp_announce_params_default(&p);
	p.rise = p.fall = 1;
	p.damping = damping;
	return p;
}

static void test_defaults_rfc7196(void **state)
{
	struct fp_announce_params p;
	const char *why = "unset";

	(void)state;
	fp_announce_params_default(&p);
	assert_int_equal(p.rise, 3);
	assert_int_equal(p.fall, 2);
	assert_true(p.damping);
	assert_true(p.penalty == 1000.0);
	assert_true(p.suppress == 6000.0); /* RFC 7196: at least 6000 */
	assert_true(p.reuse == 750.0);
	assert_true(p.half_life_ns == MIN(15));
	assert_true(p.max_suppress_ns == MIN(60));
	assert_int_equal(fp_announce_params_check(&p, &why), 0);
	assert_null(why);
	/* 750 x 2^(60/15) */
	assert_true(fp_announce_ceiling(&p) == 12000.0);

	p.reuse = p.suppress;
	assert_int_equal(fp_announce_params_check(&p, &why), -EINVAL);
	assert_non_null(strstr(why, "reuse must be below suppress"));
	fp_announce_params_default(&p);
	p.max_suppress_ns = MIN(30); /* ceiling 3000 < suppress 6000: never suppressed */
	assert_int_equal(fp_announce_params_check(&p, &why), -EINVAL);
	assert_non_null(strstr(why, "never reach"));
	fp_announce_params_default(&p);
	p.fall = 0;
	assert_int_equal(fp_announce_params_check(&p, &why), -EINVAL);
}

static void test_half_life_decay(void **state)
{
	(void)state;
	assert_true(fp_damping_decay(1000, 0, MIN(15)) == 1000.0);
	assert_true(fp_damping_decay(1000, MIN(15), MIN(15)) == 500.0);
	assert_true(fp_damping_decay(1000, MIN(30), MIN(15)) == 250.0);
	assert_true(fp_damping_decay(6000, MIN(45), MIN(15)) == 750.0);
	/* Half a half-life: 1000 / sqrt(2). */
	assert_true(fabs(fp_damping_decay(1000, S(450), MIN(15)) - 1000 / sqrt(2)) < 1e-9);

	/* The machine decays its own penalty the same way. */
	struct fp_announce_params p = immediate(true);
	struct fp_announce a;

	fp_announce_init(&a, FP_ANNOUNCE_ANNOUNCED, 0);
	fp_announce_update(&a, &p, &sick, S(10)); /* one flap at t = 10 s */
	assert_int_equal(a.flaps, 1);
	assert_true(a.penalty == 1000.0);
	assert_true(fp_announce_penalty(&a, &p, S(10) + MIN(15)) == 500.0);
	fp_announce_update(&a, &p, &sick, S(10) + MIN(30));
	assert_true(a.penalty == 250.0);
}

/* Two flaps at one instant with suppress 2000: suppressed; released below reuse. */
static void test_suppress_reuse_thresholds(void **state)
{
	struct fp_announce_params p = immediate(true);
	struct fp_announce a;
	uint64_t t = S(100), reuse_at;

	(void)state;
	p.suppress = 2000;
	fp_announce_init(&a, FP_ANNOUNCE_ANNOUNCED, 0);
	assert_int_equal(fp_announce_update(&a, &p, &sick, t), FP_ANNOUNCE_DRAINING);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_NO_HEALTHY);
	assert_false(a.suppressed); /* 1000 < 2000 */
	assert_int_equal(fp_announce_update(&a, &p, &healthy, t), FP_ANNOUNCE_ANNOUNCED);
	/* A second flap at the same instant: 2000 >= 2000. */
	assert_int_equal(fp_announce_update(&a, &p, &sick, t), FP_ANNOUNCE_DRAINING);
	assert_true(a.suppressed);
	assert_int_equal(a.suppressions, 1);
	/* Healthy again, but suppressed: stays DRAINING (announced, never flapping). */
	assert_int_equal(fp_announce_update(&a, &p, &healthy, t + S(1)), FP_ANNOUNCE_DRAINING);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_SUPPRESSED);
	assert_true(a.up);
	/* 2000 -> 750 takes log2(2000/750) half-lives. */
	reuse_at = t + (uint64_t)ceil(log2(2000.0 / 750.0) * (double)MIN(15));
	assert_int_equal(fp_announce_update(&a, &p, &healthy, reuse_at - S(1)),
			 FP_ANNOUNCE_DRAINING);
	assert_true(a.suppressed);
	assert_int_equal(fp_announce_update(&a, &p, &healthy, reuse_at + S(1)),
			 FP_ANNOUNCE_ANNOUNCED);
	assert_false(a.suppressed);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_SERVING);
	assert_true(a.penalty < 750.0);
}

/* However much a group flaps, it is suppressed at most max_suppress after the last flap. */
static void test_max_suppress(void **state)
{
	struct fp_announce_params p = immediate(true);
	struct fp_announce a;
	uint64_t t = 0;

	(void)state;
	fp_announce_init(&a, FP_ANNOUNCE_ANNOUNCED, 0);
	for (int i = 0; i < 100; i++) {
		fp_announce_update(&a, &p, &sick, t);
		fp_announce_update(&a, &p, &healthy, t);
	}
	assert_int_equal(a.flaps, 100);
	assert_true(a.penalty == 12000.0); /* capped at the ceiling */
	assert_int_equal(fp_announce_update(&a, &p, &healthy, MIN(60) - S(1)),
			 FP_ANNOUNCE_DRAINING);
	assert_int_equal(fp_announce_update(&a, &p, &healthy, MIN(60) + S(1)),
			 FP_ANNOUNCE_ANNOUNCED);
}

/*
 * A health check flapping every second for 30 s: samples at 1 s, healthy on even
 * seconds, not on odd ones. Returns the state changes after the first announcement.
 */
static uint64_t flap_30s(const struct fp_announce_params *p, struct fp_announce *a)
{
	uint64_t changes;

	fp_announce_init(a, FP_ANNOUNCE_ANNOUNCED, 0);
	for (int s = 1; s <= 30; s++)
		fp_announce_update(a, p, s % 2 ? &sick : &healthy, S(s));
	changes = a->transitions;
	/* Then healthy for good: the route stays where it is (no more changes). */
	for (int s = 31; s <= 90; s++)
		fp_announce_update(a, p, &healthy, S(s));
	assert_int_equal(a->transitions, changes);
	return changes;
}

static void test_flap_every_second(void **state)
{
	struct fp_announce_params damped = immediate(true), undamped = immediate(false), defaults;
	struct fp_announce a;
	uint64_t changes;

	(void)state;
	/* Without damping the route follows every flap. */
	changes = flap_30s(&undamped, &a);
	print_message("# without damping: %llu state changes in 30 s\n",
		      (unsigned long long)changes);
	assert_int_equal(changes, 30);
	assert_int_equal(a.state, FP_ANNOUNCE_ANNOUNCED);
	assert_false(a.suppressed);

	/*
	 * With the defaults' damping: 1000 per flap at 1, 3, 5 ... s; decayed, six flaps
	 * sum to 5 950, the seventh (t = 13 s) reaches 6000: 13 changes, then DRAINING.
	 */
	changes = flap_30s(&damped, &a);
	print_message("# with damping (rise = fall = 1): %llu state changes in 30 s\n",
		      (unsigned long long)changes);
	assert_int_equal(changes, 13);
	assert_true(changes <= 2 * (uint64_t)(damped.suppress / damped.penalty) + 1);
	assert_true(a.suppressed);
	assert_int_equal(a.flaps, 15);
	assert_int_equal(a.state, FP_ANNOUNCE_DRAINING);
	assert_true(fp_announce_in_bgp(a.state)); /* never withdrawn by flapping */

	/* The default rise 3 / fall 2 alone: a 1 s flap never settles; nothing moves. */
	fp_announce_params_default(&defaults);
	changes = flap_30s(&defaults, &a);
	print_message("# with the default rise/fall and damping: %llu state changes\n",
		      (unsigned long long)changes);
	assert_int_equal(changes, 0);
	assert_int_equal(a.flaps, 0);
}

static void test_rise_fall(void **state)
{
	struct fp_announce_params p;
	struct fp_announce a;

	(void)state;
	fp_announce_params_default(&p);
	fp_announce_init(&a, FP_ANNOUNCE_WITHDRAWN, 0);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_STARTING);
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(1)), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_STARTING);
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(2)), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(3)), FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(a.flaps, 0);
	assert_int_equal(fp_announce_update(&a, &p, &sick, S(4)), FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(fp_announce_update(&a, &p, &sick, S(5)), FP_ANNOUNCE_DRAINING);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_NO_HEALTHY);
	assert_int_equal(a.flaps, 1);
	assert_int_equal(a.since_ns, S(5));
	/* One good sample between bad ones resets the count. */
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(6)), FP_ANNOUNCE_DRAINING);
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(7)), FP_ANNOUNCE_DRAINING);
	assert_int_equal(fp_announce_update(&a, &p, &sick, S(8)), FP_ANNOUNCE_DRAINING);
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(9)), FP_ANNOUNCE_DRAINING);
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(10)), FP_ANNOUNCE_DRAINING);
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(11)), FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(a.transitions, 3);

	/* A cold start without a healthy backend still announces (draining) after rise. */
	fp_announce_init(&a, FP_ANNOUNCE_WITHDRAWN, 0);
	fp_announce_update(&a, &p, &sick, S(1));
	fp_announce_update(&a, &p, &sick, S(2));
	assert_int_equal(a.state, FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(fp_announce_update(&a, &p, &sick, S(3)), FP_ANNOUNCE_DRAINING);
}

static void test_dataplane_down(void **state)
{
	static const struct fp_announce_input gone = { .dataplane_ok = false,
						       .healthy_backends = 2 };
	struct fp_announce_params p;
	struct fp_announce a;

	(void)state;
	fp_announce_params_default(&p);
	fp_announce_init(&a, FP_ANNOUNCE_ANNOUNCED, 0);
	/* At once, no fall hysteresis: a node that cannot forward attracts nothing. */
	assert_int_equal(fp_announce_update(&a, &p, &gone, S(1)), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_NO_DATAPLANE);
	assert_int_equal(a.flaps, 1);
	/* Back: rise samples again before announcing. */
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(2)), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_STARTING);
	fp_announce_update(&a, &p, &healthy, S(3));
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(4)), FP_ANNOUNCE_ANNOUNCED);
}

static struct fp_announce_input in_maintenance(uint64_t since, uint64_t deadline,
					       uint64_t until_flows, uint64_t flows)
{
	struct fp_announce_input in = healthy;

	in.flows = flows;
	in.maintenance = (struct fp_maintenance){
		.on = true, .since_ns = since, .deadline_ns = deadline, .until_flows = until_flows
	};
	return in;
}

static void test_maintenance_deadline(void **state)
{
	struct fp_announce_params p;
	struct fp_announce_input in = in_maintenance(S(100), S(100) + MIN(10), 0, 5000);
	struct fp_announce a;

	(void)state;
	fp_announce_params_default(&p);
	fp_announce_init(&a, FP_ANNOUNCE_ANNOUNCED, 0);
	/* On: draining at once (still announced), no flap charged. */
	assert_int_equal(fp_announce_update(&a, &p, &in, S(100)), FP_ANNOUNCE_DRAINING);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_MAINTENANCE);
	assert_true(fp_announce_in_bgp(a.state));
	assert_int_equal(fp_announce_update(&a, &p, &in, S(100) + MIN(10) - 1),
			 FP_ANNOUNCE_DRAINING);
	assert_int_equal(fp_announce_update(&a, &p, &in, S(100) + MIN(10)), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_MAINTENANCE_DEADLINE);
	/* Latched: nothing brings it back while maintenance is on. */
	in.flows = 0;
	assert_int_equal(fp_announce_update(&a, &p, &in, S(100) + MIN(11)), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(a.flaps, 0);
	assert_true(a.penalty == 0.0);

	/* Off reverses it at once (rise was counted meanwhile). */
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(100) + MIN(12)),
			 FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_SERVING);
	assert_int_equal(a.transitions, 3);
}

static void test_maintenance_until_flows(void **state)
{
	struct fp_announce_params p;
	struct fp_announce_input in = in_maintenance(S(10), 0, 100, 5000);
	struct fp_announce a;

	(void)state;
	fp_announce_params_default(&p);
	fp_announce_init(&a, FP_ANNOUNCE_ANNOUNCED, 0);
	assert_int_equal(fp_announce_update(&a, &p, &in, S(10)), FP_ANNOUNCE_DRAINING);
	in.flows = 100; /* not below 100 */
	assert_int_equal(fp_announce_update(&a, &p, &in, S(11)), FP_ANNOUNCE_DRAINING);
	in.flows = 99;
	assert_int_equal(fp_announce_update(&a, &p, &in, S(12)), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(a.reason, FP_ANNOUNCE_REASON_MAINTENANCE_FLOWS);
	in.flows = 5000; /* flows coming back do not re-announce within this maintenance */
	assert_int_equal(fp_announce_update(&a, &p, &in, S(13)), FP_ANNOUNCE_WITHDRAWN);

	/* Off, then on again: a new drain (draining first, not the old latch). */
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(14)), FP_ANNOUNCE_ANNOUNCED);
	in = in_maintenance(S(20), 0, 100, 5000);
	assert_int_equal(fp_announce_update(&a, &p, &in, S(20)), FP_ANNOUNCE_DRAINING);
	/* Off while draining: announced again, no flap. */
	assert_int_equal(fp_announce_update(&a, &p, &healthy, S(21)), FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(a.flaps, 0);
}

/*
 * Three nodes, every backend of the VIP down everywhere: each node drains, none
 * withdraws, so the router keeps a route (traffic arrives where the daemon's fail-open
 * rule forwards it). With one node's data plane gone, the other two still carry it.
 */
static void test_never_all_blackholed(void **state)
{
	struct fp_announce_params p;
	struct fp_announce node[3];
	int in_bgp = 0;

	(void)state;
	fp_announce_params_default(&p);
	for (int n = 0; n < 3; n++)
		fp_announce_init(&node[n], FP_ANNOUNCE_ANNOUNCED, 0);
	for (int s = 1; s <= 600; s++) {
		for (int n = 0; n < 3; n++) {
			struct fp_announce_input in = sick;

			in.dataplane_ok = !(n == 2 && s > 300);
			fp_announce_update(&node[n], &p, &in, S(s));
		}
		in_bgp = 0;
		for (int n = 0; n < 3; n++)
			in_bgp += fp_announce_in_bgp(node[n].state);
		assert_true(in_bgp >= 2);
	}
	assert_int_equal(node[0].state, FP_ANNOUNCE_DRAINING);
	assert_int_equal(node[1].state, FP_ANNOUNCE_DRAINING);
	assert_int_equal(node[2].state, FP_ANNOUNCE_WITHDRAWN);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(fp_announce_state_name(FP_ANNOUNCE_DRAINING), "draining");
	assert_string_equal(fp_announce_state_name((enum fp_announce_state)7), "?");
	assert_string_equal(fp_announce_reason_name(FP_ANNOUNCE_REASON_SUPPRESSED), "suppressed");
	assert_string_equal(fp_announce_reason_name(FP_ANNOUNCE_REASON__COUNT), "?");
	for (int r = 0; r < FP_ANNOUNCE_REASON__COUNT; r++)
		assert_non_null(fp_announce_reason_help((enum fp_announce_reason)r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_rfc7196),
		cmocka_unit_test(test_half_life_decay),
		cmocka_unit_test(test_suppress_reuse_thresholds),
		cmocka_unit_test(test_max_suppress),
		cmocka_unit_test(test_flap_every_second),
		cmocka_unit_test(test_rise_fall),
		cmocka_unit_test(test_dataplane_down),
		cmocka_unit_test(test_maintenance_deadline),
		cmocka_unit_test(test_maintenance_until_flows),
		cmocka_unit_test(test_never_all_blackholed),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
