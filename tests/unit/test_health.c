// SPDX-License-Identifier: MIT
/*
 * The health state machine alone (lib/health.c, fp_health_state_*): rise/fall
 * hysteresis from unknown, up and down, a flapping probe that never moves the state,
 * the counters and the reasons. No sockets, no event loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include <flowpin/health.h>

static const struct timespec t0 = { .tv_sec = 1000 };

/* Feeds @pattern ('+' pass, '-' fail) with rise 3, fall 3; returns transitions seen. */
static int feed(struct fp_health_state *s, const char *pattern, __u32 rise, __u32 fall)
{
	int changes = 0;

	for (const char *p = pattern; *p; p++) {
		struct timespec now = { .tv_sec = t0.tv_sec + (p - pattern) + 1 };

		changes += fp_health_state_round(s, rise, fall, *p == '+',
						 *p == '+' ? "passed" : "tcp 10.0.0.1:80: refused",
						 &now);
	}
	return changes;
}

static void test_unknown_until_a_row(void **state)
{
	struct fp_health_state s;

	(void)state;
	fp_health_state_init(&s, &t0);
	assert_int_equal(s.status, FP_HEALTH_UNKNOWN);
	assert_string_equal(s.reason, "not checked yet");
	assert_int_equal(feed(&s, "++", 3, 3), 0);
	assert_int_equal(s.status, FP_HEALTH_UNKNOWN);
	assert_int_equal(s.successes_in_row, 2);
	assert_int_equal(feed(&s, "+", 3, 3), 1);
	assert_int_equal(s.status, FP_HEALTH_UP);
	assert_int_equal(s.since.tv_sec, t0.tv_sec + 1);
	assert_int_equal(s.transitions_total, 1);

	/* From unknown, `fall` failures make it down directly. */
	fp_health_state_init(&s, &t0);
	assert_int_equal(feed(&s, "---", 3, 3), 1);
	assert_int_equal(s.status, FP_HEALTH_DOWN);
	assert_string_equal(s.reason, "tcp 10.0.0.1:80: refused");
}

static void test_rise_and_fall(void **state)
{
	struct fp_health_state s;

	(void)state;
	fp_health_state_init(&s, &t0);
	assert_int_equal(feed(&s, "+++", 3, 2), 1);
	assert_int_equal(s.status, FP_HEALTH_UP);
	/* fall 2: one failure is not enough, the second is. */
	assert_int_equal(feed(&s, "-", 3, 2), 0);
	assert_int_equal(s.status, FP_HEALTH_UP);
	assert_int_equal(s.failures_in_row, 1);
	assert_int_equal(feed(&s, "-", 3, 2), 1);
	assert_int_equal(s.status, FP_HEALTH_DOWN);
	assert_int_equal(s.failures_in_row, 2);
	assert_int_equal(s.successes_in_row, 0);
	/* More failures: still down, no new transition. */
	assert_int_equal(feed(&s, "-----", 3, 2), 0);
	assert_int_equal(s.failures_in_row, 7);
	/* Recovery only after `rise` passes in a row. */
	assert_int_equal(feed(&s, "++", 3, 2), 0);
	assert_int_equal(s.status, FP_HEALTH_DOWN);
	assert_string_equal(s.reason, "passed");
	assert_int_equal(feed(&s, "+", 3, 2), 1);
	assert_int_equal(s.status, FP_HEALTH_UP);
	assert_int_equal(s.transitions_total, 3);

	/* rise 1, fall 1: every round decides. */
	fp_health_state_init(&s, &t0);
	assert_int_equal(feed(&s, "+-+-", 1, 1), 4);
	assert_int_equal(s.status, FP_HEALTH_DOWN);
}

/* A probe that alternates never holds a row long enough: the state never moves. */
static void test_flapping_never_moves(void **state)
{
	struct fp_health_state s;

	(void)state;
	fp_health_state_init(&s, &t0);
	assert_int_equal(feed(&s, "+++", 3, 3), 1);
	assert_int_equal(feed(&s, "-+-+--+--++-++--+-+--++--+", 3, 3), 0);
	assert_int_equal(s.status, FP_HEALTH_UP);
	assert_int_equal(s.since.tv_sec, t0.tv_sec + 3);
	assert_int_equal(s.transitions_total, 1);

	assert_int_equal(feed(&s, "---", 3, 3), 1);
	assert_int_equal(feed(&s, "+-++-++-+-++--++-", 3, 3), 0);
	assert_int_equal(s.status, FP_HEALTH_DOWN);
	assert_int_equal(s.transitions_total, 2);

	/* From unknown too. */
	fp_health_state_init(&s, &t0);
	assert_int_equal(feed(&s, "+-++--++-+--", 3, 3), 0);
	assert_int_equal(s.status, FP_HEALTH_UNKNOWN);
}

static void test_counters_and_reasons(void **state)
{
	struct fp_health_state s;
	struct timespec now = { .tv_sec = 2000 };

	(void)state;
	fp_health_state_init(&s, &t0);
	fp_health_state_count_check(&s, FP_CHECK_TCP, true);
	fp_health_state_count_check(&s, FP_CHECK_HTTP, false);
	fp_health_state_count_check(&s, FP_CHECK_HTTP, false);
	fp_health_state_count_check(&s, FP_CHECK_TUNNEL, true);
	fp_health_state_count_check(&s, (enum fp_check_kind)99, false); /* ignored */
	assert_int_equal(s.probes_total[FP_CHECK_TCP], 1);
	assert_int_equal(s.failures_total[FP_CHECK_TCP], 0);
	assert_int_equal(s.probes_total[FP_CHECK_HTTP], 2);
	assert_int_equal(s.failures_total[FP_CHECK_HTTP], 2);
	assert_int_equal(s.probes_total[FP_CHECK_HTTPS], 0);
	assert_int_equal(s.probes_total[FP_CHECK_TUNNEL], 1);
	assert_int_equal(s.failures_total[FP_CHECK_TUNNEL], 0);

	/* The reason is the last round's, cut to fit; NULL is empty. */
	fp_health_state_round(&s, 3, 3, false, "http http://10.0.0.1:80/: status 503, expected 200",
			      &now);
	assert_string_equal(s.reason, "http http://10.0.0.1:80/: status 503, expected 200");
	char longer[2 * FP_HEALTH_REASON_MAX];

	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	fp_health_state_round(&s, 3, 3, false, longer, &now);
	assert_int_equal(strlen(s.reason), FP_HEALTH_REASON_MAX - 1);
	fp_health_state_round(&s, 3, 3, false, NULL, &now);
	assert_string_equal(s.reason, "");
	assert_int_equal(s.status, FP_HEALTH_DOWN);
	assert_int_equal(s.since.tv_sec, 2000);

	assert_string_equal(fp_health_status_name(FP_HEALTH_UNKNOWN), "unknown");
	assert_string_equal(fp_health_status_name(FP_HEALTH_UP), "up");
	assert_string_equal(fp_health_status_name(FP_HEALTH_DOWN), "down");
	assert_string_equal(fp_check_kind_name(FP_CHECK_HTTPS), "https");
	assert_string_equal(fp_check_kind_name((enum fp_check_kind)7), "?");
}

/* Unchecked backends and a NULL prober count as up (fail-open starts here). */
static void test_unchecked_is_up(void **state)
{
	(void)state;
	assert_true(fp_health_backend_up(NULL, "web", 1));
	fp_health_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_until_a_row),
		cmocka_unit_test(test_rise_and_fall),
		cmocka_unit_test(test_flapping_never_moves),
		cmocka_unit_test(test_counters_and_reasons),
		cmocka_unit_test(test_unchecked_is_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
