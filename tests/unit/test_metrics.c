// SPDX-License-Identifier: MIT
/*
 * The Prometheus exposition of a snapshot (lib/metrics.c) without maps: every line is
 * a HELP, a TYPE or a sample that parses; HELP and TYPE once per family, before its
 * samples; counters end in _total; label values escaped; values as in the snapshot;
 * the --metrics ADDR:PORT parser.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <flowpin/metrics.h>
#include "common/prom.h"

/* The shared reader's verdict, failing the test with its message. */
static int check_exposition(const char *text)
{
	char err[512];
	int n = fp_test_prom_check(text, err, sizeof(err));

	if (n < 0)
		fail_msg("%s", err);
	return n;
}

/* The reader itself refuses what a scraper would: the checks below can fail. */
static void test_reader_refuses(void **state)
{
	const char *const wrong[] = {
		"flowpin_x 1\n",					   /* no HELP/TYPE */
		"# HELP flowpin_x h\n# TYPE flowpin_x gauge\nflowpin_x\n", /* no value */
		"# HELP flowpin_x h\n# TYPE flowpin_x gauge\n# HELP flowpin_x h\nflowpin_x 1\n",
		"# HELP flowpin_x_total h\n# TYPE flowpin_x_total gauge\nflowpin_x_total 1\n",
		"# HELP flowpin_x h\n# TYPE flowpin_x counter\nflowpin_x 1\n",
		"# HELP flowpin_x h\n# TYPE flowpin_x gauge\nflowpin_x{a=\"b\\q\"} 1\n",
		"# HELP flowpin_x h\n# TYPE flowpin_x gauge\nflowpin_x{a=\"b} 1\n",
		"# HELP x h\n# TYPE x gauge\nx 1\n",
		"# HELP flowpin_x h\n# TYPE flowpin_x gauge\nflowpin_x 1",
	};
	char err[512];
	double v;

	(void)state;
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
		if (fp_test_prom_check(wrong[i], err, sizeof(err)) >= 0)
			fail_msg("accepted: %s", wrong[i]);
	assert_int_equal(fp_test_prom_check("# HELP flowpin_x h\n# TYPE flowpin_x gauge\n"
					    "flowpin_x{a=\"\\\"\\n\\\\\"} 2.5\n",
					    err, sizeof(err)),
			 1);
	assert_int_equal(fp_test_prom_value("flowpin_y 1\nflowpin_x 2.5\n", "flowpin_x", &v), 0);
	assert_true(v == 2.5);
	assert_int_equal(fp_test_prom_value("flowpin_xy 1\n", "flowpin_x", &v), -1);
}

static struct fp_stats_backend rows[3];

static void fill(struct fp_stats_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < FP_CNT__MAX; i++)
		s->counters[i] = 1000 + (unsigned)i;
	s->vips[0].key.addr[10] = s->vips[0].key.addr[11] = 0xff; /* 192.0.2.1, mapped */
	s->vips[0].key.addr[12] = 192;
	s->vips[0].key.addr[14] = 2;
	s->vips[0].key.addr[15] = 1;
	s->vips[0].key.port = htons(80);
	s->vips[0].key.proto = IPPROTO_TCP;
	s->vips[0].vip.index = 0;
	s->vips[0].vip.generation = 7;
	s->vips[0].traffic.packets = 12;
	s->vips[0].traffic.bytes = 3456;
	s->vips[1].key.addr[0] = 0x20; /* 2001:db8::5 */
	s->vips[1].key.addr[1] = 0x01;
	s->vips[1].key.addr[2] = 0x0d;
	s->vips[1].key.addr[3] = 0xb8;
	s->vips[1].key.addr[15] = 5;
	s->vips[1].key.proto = IPPROTO_UDP;
	s->vips[1].vip.index = 1;
	s->vips[1].vip.generation = 2;
	s->n_vips = 2;
	memset(rows, 0, sizeof(rows));
	rows[0].vip_index = 0;
	rows[0].backend.id = 1;
	rows[0].backend.addr[10] = rows[0].backend.addr[11] = 0xff;
	rows[0].backend.addr[12] = 10;
	rows[0].backend.addr[15] = 1;
	rows[0].traffic.packets = 10;
	rows[0].traffic.bytes = 3000;
	rows[1].vip_index = 0;
	rows[1].backend.id = 2;
	rows[1].backend.flags = FP_BACKEND_F_DRAINING;
	rows[1].traffic.packets = 2;
	rows[1].traffic.bytes = 456;
	rows[2].vip_index = 1;
	rows[2].backend.id = 9;
	rows[2].backend.flags = FP_BACKEND_F_DOWN;
	s->backends = rows;
	s->n_backends = 3;
	fp_stats_count_states(s);
}

static void test_format(void **state)
{
	static struct fp_stats_snapshot s;
	struct fp_metrics_daemon d = { .scrape_errors_total = 4 };
	char *text, want[256];
	size_t len = 0;
	int n;

	(void)state;
	fill(&s);
	s.info.magic = FP_INFO_MAGIC;
	s.info.applies = 3;
	s.info.apply_errors = 1;
	s.info.generation = 9;
	s.info.probation_slots = 4096;
	s.sessions = (struct fp_session_count){ .entries = 250, .live = 200, .capacity = 262144 };
	s.probation_live = 17;
	s.daemon_start_time = 1796200000.5;
	text = fp_metrics_render(&s, &d, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	n = check_exposition(text);
	/* The decision counters in one family, one family per informational counter, plus
	 * node, VIP, backend and daemon families. */
	assert_true(n >= 20);
	for (int i = 0; i < FP_CNT__MAX; i++) {
		if (fp_counter_verdict(i))
			snprintf(want, sizeof(want),
				 "\nflowpin_lb_packets_total{verdict=\"%s\",reason=\"%s\"} %u\n",
				 fp_counter_verdict(i), fp_counter_names[i], 1000 + (unsigned)i);
		else
			snprintf(want, sizeof(want), "\nflowpin_lb_%s_total %u\n",
				 fp_counter_names[i], 1000 + (unsigned)i);
		if (!strstr(text, want))
			fail_msg("no '%s' in:\n%s", want, text);
	}
	assert_non_null(strstr(text, "\nflowpin_lb_session_hit_total "));
	assert_null(strstr(text, "flowpin_lb_drop_fib_total"));
	assert_non_null(strstr(text, "{verdict=\"drop\",reason=\"drop_fib\"}"));
	assert_non_null(strstr(text, "{verdict=\"tx\",reason=\"icmp_too_big\"}"));
	assert_non_null(strstr(text, "\nflowpin_lb_session_entries{state=\"live\"} 200\n"));
	assert_non_null(strstr(text, "\nflowpin_lb_session_entries{state=\"expired\"} 50\n"));
	assert_non_null(strstr(text, "\nflowpin_lb_session_entries_limit 262144\n"));
	assert_non_null(strstr(text, "\nflowpin_lb_probation_marks 17\n"));
	assert_non_null(strstr(text, "\nflowpin_lb_probation_slots 4096\n"));
	assert_non_null(strstr(text, "\nflowpin_lb_generation 9\n"));
	assert_non_null(strstr(text, "\nflowpin_start_time_seconds 1796200000.50\n"));
	assert_non_null(strstr(text, "\nflowpin_scrape_errors_total 4\n"));
	snprintf(want, sizeof(want), "\nflowpin_build_info{version=\"%s\",commit=\"%s\",layout=\"",
		 fp_build_version(), fp_build_commit());
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(
		text, "\nflowpin_vip_backends{vip=\"192.0.2.1:80/tcp\",state=\"active\"} 1\n"));
	assert_non_null(strstr(
		text, "\nflowpin_vip_backends{vip=\"192.0.2.1:80/tcp\",state=\"draining\"} 1\n"));
	assert_non_null(strstr(
		text, "\nflowpin_vip_backends{vip=\"[2001:db8::5]:0/udp\",state=\"down\"} 1\n"));
	assert_non_null(strstr(text, "\nflowpin_backend_entry_state{vip=\"192.0.2.1:80/tcp\","
				     "backend=\"2\",address=\"::\",state=\"draining\"} 1\n"));
	assert_non_null(strstr(text, "\nflowpin_backend_entry_state{vip=\"192.0.2.1:80/tcp\","
				     "backend=\"2\",address=\"::\",state=\"active\"} 0\n"));
	assert_non_null(strstr(text, "\nflowpin_vip_packets_total{vip=\"192.0.2.1:80/tcp\"} 12\n"));
	assert_non_null(strstr(text, "\nflowpin_vip_bytes_total{vip=\"192.0.2.1:80/tcp\"} 3456\n"));
	assert_non_null(
		strstr(text, "\nflowpin_vip_packets_total{vip=\"[2001:db8::5]:0/udp\"} 0\n"));
	assert_non_null(
		strstr(text, "\nflowpin_vip_generation{vip=\"192.0.2.1:80/tcp\",pinning=\""));
	assert_non_null(strstr(text, "\"} 7\n"));
	assert_non_null(strstr(text, "\nflowpin_backend_packets_total{vip=\"192.0.2.1:80/tcp\","
				     "backend=\"1\",address=\"10.0.0.1\"} 10\n"));
	assert_non_null(strstr(text, "\nflowpin_backend_bytes_total{vip=\"192.0.2.1:80/tcp\","
				     "backend=\"2\",address=\"::\"} 456\n"));
	assert_non_null(strstr(text, "backend=\"9\",address=\"::\"} 0\n"));
	assert_non_null(strstr(text, "\nflowpin_config_apply_errors_total 1\n"));
	assert_non_null(strstr(text, "\nflowpin_config_applies_total 3\n"));
	assert_non_null(strstr(text, "\nflowpin_backends 3\n"));
	/* Families, not samples, carry HELP/TYPE: one pair for three backend rows. */
	assert_non_null(strstr(text, "# TYPE flowpin_backend_packets_total counter\n"));
	assert_non_null(strstr(text, "# TYPE flowpin_vip_generation gauge\n"));
	free(text);
}

static void test_empty(void **state)
{
	static struct fp_stats_snapshot s;
	char *text;

	(void)state;
	memset(&s, 0, sizeof(s));
	text = fp_metrics_render(&s, NULL, NULL);
	assert_non_null(text);
	/* Families with no sample still declared once; no daemon families without @d. */
	assert_true(check_exposition(text) >= 20);
	assert_null(strstr(text, "flowpin_scrape_errors_total"));
	/* Start time unknown: the family is declared, no sample. */
	assert_null(strstr(text, "\nflowpin_start_time_seconds "));
	free(text);
}

static void test_escape(void **state)
{
	char buf[64];

	(void)state;
	assert_string_equal(fp_metrics_escape_label("a\"b\\c\nd", buf, sizeof(buf)),
			    "a\\\"b\\\\c\\nd");
	assert_string_equal(fp_metrics_escape_label("plain 1.2.3.4", buf, sizeof(buf)),
			    "plain 1.2.3.4");
	/* Truncated, never an escape cut in half nor an unterminated string. */
	assert_string_equal(fp_metrics_escape_label("ab\"\"\"", buf, 6), "ab\\\"");
	assert_string_equal(fp_metrics_escape_label("\"", buf, 3), "");
}

static void test_parse_listen(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

	(void)state;
	assert_int_equal(fp_metrics_parse_listen("127.0.0.1:9100", &ss), 0);
	assert_int_equal(a4->sin_family, AF_INET);
	assert_int_equal(ntohs(a4->sin_port), 9100);
	assert_int_equal(ntohl(a4->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(fp_metrics_parse_listen("[::1]:65535", &ss), 0);
	assert_int_equal(a6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(a6->sin6_port), 65535);
	assert_int_equal(a6->sin6_addr.s6_addr[15], 1);
	assert_int_equal(fp_metrics_parse_listen("0.0.0.0:1", &ss), 0);
	const char *bad[] = { "",
			      "9100",
			      ":9100",
			      "127.0.0.1",
			      "127.0.0.1:",
			      "127.0.0.1:0",
			      "127.0.0.1:65536",
			      "127.0.0.1:-1",
			      "127.0.0.1:+80",
			      "127.0.0.1:80x",
			      "localhost:80",
			      "::1:80",
			      "[::1]80",
			      "[]:80",
			      "[127.0.0.1]:80",
			      "256.0.0.1:80" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("bad: '%s'\n", bad[i]);
		assert_int_equal(fp_metrics_parse_listen(bad[i], &ss), -EINVAL);
	}
}

/*
 * The daemon's status model in the exposition: one-hot families for config state,
 * override, health and effective state (every state a sample, exactly one at 1),
 * fail-open per VIP, health counters per check kind, timestamps only when known.
 */
static void test_status(void **state)
{
	static struct fp_stats_snapshot s;
	struct fp_lbd_backend_status b[2] = {
		{ .id = 1,
		  .config = FP_BACKEND_ACTIVE,
		  .override = FP_OVERRIDE_NONE,
		  .health = "down",
		  .health_down = true,
		  .health_since = { 1796200000, 500000000 },
		  .effective = FP_BACKEND_DRAINING,
		  .last_change = { 1796200001, 0 },
		  .health_transitions_total = 2,
		  .health_probes_total = { [FP_CHECK_TCP] = 40, [FP_CHECK_TUNNEL] = 40 },
		  .health_failures_total = { [FP_CHECK_TCP] = 3 } },
		{ .id = 2,
		  .config = FP_BACKEND_DRAINING,
		  .override = FP_OVERRIDE_DISABLE,
		  .health = "unchecked",
		  .effective = FP_BACKEND_DOWN },
	};
	struct fp_lbd_vip_status v = { .name = "web \"a\"",
				       .port = 80,
				       .proto = IPPROTO_TCP,
				       .pinning = FP_PIN_FULL,
				       .health_ignored = true,
				       .health_ignored_total = 5,
				       .n_backends = 2,
				       .backends = b };
	struct fp_metrics_daemon d = { .status = &v, .n_status = 1 };
	const char *lb1 = "vip=\"192.0.2.1:80/tcp\",backend=\"1\",address=\"10.0.0.1\"";
	const char *lb2 = "vip=\"192.0.2.1:80/tcp\",backend=\"2\",address=\"10.0.0.2\"";
	char *text, want[512];

	(void)state;
	fill(&s);
	fp_addr_from_v4(v.addr.a, htonl(0xc0000201));
	fp_addr_from_v4(b[0].addr.a, htonl(0x0a000001));
	fp_addr_from_v4(b[1].addr.a, htonl(0x0a000002));
	text = fp_metrics_render(&s, &d, NULL);
	assert_non_null(text);
	check_exposition(text);
#define HAS(...)                                                 \
	do {                                                     \
		snprintf(want, sizeof(want), __VA_ARGS__);       \
		if (!strstr(text, want))                         \
			fail_msg("no '%s' in:\n%s", want, text); \
	} while (0)
	HAS("\nflowpin_vip_info{vip=\"192.0.2.1:80/tcp\",name=\"web \\\"a\\\"\",pinning=\"full\"} "
	    "1\n");
	HAS("\nflowpin_vip_health_fail_open{vip=\"192.0.2.1:80/tcp\"} 1\n");
	HAS("\nflowpin_vip_health_fail_open_total{vip=\"192.0.2.1:80/tcp\"} 5\n");
	HAS("\nflowpin_backend_health{%s,state=\"down\"} 1\n", lb1);
	HAS("\nflowpin_backend_health{%s,state=\"up\"} 0\n", lb1);
	HAS("\nflowpin_backend_health{%s,state=\"unchecked\"} 1\n", lb2);
	HAS("\nflowpin_backend_config_state{%s,state=\"draining\"} 1\n", lb2);
	HAS("\nflowpin_backend_config_state{%s,state=\"active\"} 0\n", lb2);
	HAS("\nflowpin_backend_override{%s,override=\"disable\"} 1\n", lb2);
	HAS("\nflowpin_backend_override{%s,override=\"none\"} 1\n", lb1);
	HAS("\nflowpin_backend_effective_state{%s,state=\"draining\"} 1\n", lb1);
	HAS("\nflowpin_backend_effective_state{%s,state=\"down\"} 1\n", lb2);
	HAS("\nflowpin_backend_effective_state{%s,state=\"active\"} 0\n", lb2);
	HAS("\nflowpin_backend_health_transitions_total{%s} 2\n", lb1);
	HAS("\nflowpin_backend_health_checks_total{%s,check=\"tcp\"} 40\n", lb1);
	HAS("\nflowpin_backend_health_checks_total{%s,check=\"tunnel\"} 40\n", lb1);
	HAS("\nflowpin_backend_health_checks_total{%s,check=\"http\"} 0\n", lb1);
	HAS("\nflowpin_backend_health_check_failures_total{%s,check=\"tcp\"} 3\n", lb1);
	HAS("\nflowpin_backend_health_last_change_timestamp_seconds{%s} 1796200000.500\n", lb1);
	HAS("\nflowpin_backend_effective_last_change_timestamp_seconds{%s} 1796200001.000\n", lb1);
#undef HAS
	/* Unchecked: no health timestamp. */
	snprintf(want, sizeof(want), "flowpin_backend_health_last_change_timestamp_seconds{%s}",
		 lb2);
	assert_null(strstr(text, want));
	/* Exactly one state at 1 per backend and family. */
	for (int h = 0; h < 4; h++) {
		static const char *const fams[] = { "flowpin_backend_config_state{",
						    "flowpin_backend_override{",
						    "flowpin_backend_health{",
						    "flowpin_backend_effective_state{" };
		int ones = 0;

		for (const char *p = strstr(text, fams[h]); p; p = strstr(p + 1, fams[h]))
			ones += !strncmp(strchr(p, '}'), "} 1\n", 4);
		assert_int_equal(ones, 2);
	}
	free(text);
}

/*
 * docs/grafana-flowpin.json names only families the exposition has (a renamed metric
 * leaves no panel silently empty), and it is valid JSON (python3 -m json.tool, also in
 * `make lint`).
 */
static void test_dashboard_names(void **state)
{
	static char dash[1 << 17];
	static struct fp_stats_snapshot s;
	struct fp_metrics_daemon d = { 0 };
	char *text, help[160];
	const char *p;
	size_t n, found = 0;
	FILE *f = fopen("docs/grafana-flowpin.json", "r");

	(void)state;
	if (!f)
		fail_msg("docs/grafana-flowpin.json: %s (run from the repository root)",
			 strerror(errno));
	n = fread(dash, 1, sizeof(dash) - 1, f);
	fclose(f);
	dash[n] = '\0';
	assert_int_equal(system("python3 -m json.tool docs/grafana-flowpin.json >/dev/null"), 0);
	fill(&s);
	text = fp_metrics_render(&s, &d, NULL);
	assert_non_null(text);
	for (p = strstr(dash, "flowpin_"); p; p = strstr(p, "flowpin_")) {
		size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");

		snprintf(help, sizeof(help), "# HELP %.*s ", (int)len, p);
		if (!strstr(text, help))
			fail_msg("the dashboard names %.*s, which no family is", (int)len, p);
		found++;
		p += len;
	}
	assert_true(found >= 10);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_refuses),	cmocka_unit_test(test_format),
		cmocka_unit_test(test_empty),		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_parse_listen),	cmocka_unit_test(test_status),
		cmocka_unit_test(test_dashboard_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
