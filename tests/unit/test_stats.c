// SPDX-License-Identifier: MIT
/*
 * The stats model without maps (lib/stats.c): rates between two snapshots (a counter
 * that went back, as after a reset, rates 0), lookups by VIP index and backend id, the
 * VIP a session belongs to (exact port before the all-ports VIP), backend states.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <flowpin/stats.h>

static void test_rates(void **state)
{
	struct fp_stats_snapshot a = { .at = { 10, 500000000 } }, b = { .at = { 12, 0 } };

	(void)state;
	assert_true(fp_stats_seconds(&b, &a) == 1.5);
	assert_true(fp_stats_seconds(&b, NULL) == 0);
	assert_true(fp_stats_rate(400, 100, 1.5) == 200);
	assert_true(fp_stats_rate(100, 400, 1.5) == 0); /* counters cleared meanwhile */
	assert_true(fp_stats_rate(400, 100, 0) == 0);
}

static void test_lookups(void **state)
{
	static struct fp_stats_snapshot s;
	struct fp_stats_backend rows[2] = {
		{ .vip_index = 3, .backend = { .id = 7, .flags = FP_BACKEND_F_DRAINING } },
		{ .vip_index = 5,
		  .backend = { .id = 7, .flags = FP_BACKEND_F_REMOVED | FP_BACKEND_F_DOWN } },
	};
	struct fp_flow_key k = { .proto = IPPROTO_TCP, .dport = htons(443) };

	(void)state;
	memset(&s, 0, sizeof(s));
	s.vips[0].vip.index = 3;
	s.vips[0].key.proto = IPPROTO_TCP;
	s.vips[0].key.port = 0; /* all ports */
	s.vips[1].vip.index = 5;
	s.vips[1].key.proto = IPPROTO_TCP;
	s.vips[1].key.port = htons(443);
	s.n_vips = 2;
	s.backends = rows;
	s.n_backends = 2;
	assert_ptr_equal(fp_stats_find_vip(&s, 5), &s.vips[1]);
	assert_null(fp_stats_find_vip(&s, 4));
	assert_null(fp_stats_find_vip(NULL, 3));
	assert_ptr_equal(fp_stats_find_backend(&s, 5, 7), &rows[1]);
	assert_null(fp_stats_find_backend(&s, 3, 8));
	assert_ptr_equal(fp_stats_session_vip(&s, &k), &s.vips[1]);
	k.dport = htons(80);
	assert_ptr_equal(fp_stats_session_vip(&s, &k), &s.vips[0]);
	k.dst[0] = 1; /* another address */
	assert_null(fp_stats_session_vip(&s, &k));
	assert_string_equal(fp_backend_entry_state(&rows[0].backend), "draining");
	assert_string_equal(fp_backend_entry_state(&rows[1].backend), "down");
	rows[1].backend.flags = FP_BACKEND_F_REMOVED;
	assert_string_equal(fp_backend_entry_state(&rows[1].backend), "removed");
	rows[1].backend.flags = 0;
	assert_string_equal(fp_backend_entry_state(&rows[1].backend), "active");
}

/* The decision counters by XDP action: what flowpin_lb_packets_total labels. */
static void test_verdicts(void **state)
{
	int decisions = 0;

	(void)state;
	assert_string_equal(fp_counter_verdict(FP_CNT_PASS_NOT_VIP), "pass");
	assert_string_equal(fp_counter_verdict(FP_CNT_DROP_FIB), "drop");
	assert_string_equal(fp_counter_verdict(FP_CNT_DROP_TTL_ZERO), "drop");
	assert_string_equal(fp_counter_verdict(FP_CNT_TX), "tx");
	assert_string_equal(fp_counter_verdict(FP_CNT_ICMP_TOO_BIG), "tx");
	assert_string_equal(fp_counter_verdict(FP_CNT_REDIRECT), "redirect");
	assert_null(fp_counter_verdict(FP_CNT_SESSION_HIT));
	assert_null(fp_counter_verdict(FP_CNT_ICMP_TOO_BIG_LIMITED)); /* in drop_too_big */
	assert_null(fp_counter_verdict(FP_CNT_CSUM_COMPLETED));
	assert_null(fp_counter_verdict(-1));
	assert_null(fp_counter_verdict(FP_CNT__MAX));
	for (int i = 0; i < FP_CNT__MAX; i++)
		decisions += fp_counter_verdict(i) != NULL;
	assert_true(decisions > 10 && decisions < FP_CNT__MAX);
}

/* Packets by verdict: each decision counter in its verdict's sum, the others in none. */
static void test_verdict_totals(void **state)
{
	struct fp_stats_snapshot s = {};
	unsigned long long v[FP_VERDICT__MAX];

	(void)state;
	s.counters[FP_CNT_PASS_NOT_VIP] = 1;
	s.counters[FP_CNT_DROP_FIB] = 20;
	s.counters[FP_CNT_DROP_TTL_ZERO] = 300;
	s.counters[FP_CNT_TX] = 4000;
	s.counters[FP_CNT_ICMP_TOO_BIG] = 50000;
	s.counters[FP_CNT_REDIRECT] = 600000;
	s.counters[FP_CNT_SESSION_HIT] = 7000000;
	fp_stats_verdicts(&s, v);
	assert_int_equal(v[FP_VERDICT_PASS], 1);
	assert_int_equal(v[FP_VERDICT_DROP], 320);
	assert_int_equal(v[FP_VERDICT_TX], 54000);
	assert_int_equal(v[FP_VERDICT_REDIRECT], 600000);
	assert_string_equal(fp_verdict_names[FP_VERDICT_REDIRECT], "redirect");
}

/* `lb flows --vip`: the endpoints an operator types, and what is refused. */
static void test_flow_filter_vip(void **state)
{
	static const struct {
		const char *text;
		const char *addr; /* NULL: refused */
		int port;
	} cases[] = {
		{ "198.51.100.10", "198.51.100.10", -1 },
		{ "198.51.100.10:53", "198.51.100.10", 53 },
		{ "198.51.100.10:0", "198.51.100.10", 0 },
		{ "2001:db8::1", "2001:db8::1", -1 },
		{ "[2001:db8::1]", "2001:db8::1", -1 },
		{ "[2001:db8::1]:443", "2001:db8::1", 443 },
		{ "2001:db8::1:443", "2001:db8::1:443", -1 }, /* an address, no port */
		{ "", NULL, 0 },
		{ ":53", NULL, 0 },
		{ "198.51.100.10:", NULL, 0 },
		{ "198.51.100.10:65536", NULL, 0 },
		{ "198.51.100.10:-1", NULL, 0 },
		{ "198.51.100.10:+53", NULL, 0 },
		{ "198.51.100.10:53x", NULL, 0 },
		{ "[198.51.100.10]:53", NULL, 0 },
		{ "[2001:db8::1]443", NULL, 0 },
		{ "[2001:db8::1", NULL, 0 },
		{ "[]:53", NULL, 0 },
		{ "web:80", NULL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fp_flow_filter f = { .vip_port = -1, .backend = -1 };
		struct fp_addr want;
		int rc = fp_flow_filter_vip(&f, cases[i].text);

		print_message("'%s'\n", cases[i].text);
		if (!cases[i].addr) {
			assert_int_equal(rc, -EINVAL);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_true(f.by_vip);
		assert_int_equal(fp_addr_parse(cases[i].addr, &want), 0);
		assert_memory_equal(f.vip.a, want.a, 16);
		assert_int_equal(f.vip_port, cases[i].port);
	}
}

/* This process's start time from /proc: after boot, not after now. */
static void test_process_start(void **state)
{
	struct fp_stats_snapshot s = {};
	double t;

	(void)state;
	assert_int_equal(fp_stats_process_start_time(getpid(), &t), 0);
	assert_true(t > 1e9 && t <= (double)time(NULL) + 1);
	assert_true(fp_stats_process_start_time(-5, &t) < 0);
	fp_stats_take_daemon(&s, getpid());
	assert_int_equal(s.daemon_pid, getpid());
	assert_true(s.daemon_start_time > 1e9);
	fp_stats_take_daemon(&s, 0);
	assert_int_equal(s.daemon_pid, 0);
	assert_true(s.daemon_start_time == 0);
}

static void test_layout_name(void **state)
{
	char buf[8];

	(void)state;
	assert_string_equal(fp_layout_name(0x666c7038, buf), "flp8");
	assert_string_equal(fp_layout_name(0x22000a41, buf), "???A"); /* never breaks a label */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rates),		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_verdicts),	cmocka_unit_test(test_process_start),
		cmocka_unit_test(test_layout_name),	cmocka_unit_test(test_verdict_totals),
		cmocka_unit_test(test_flow_filter_vip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
