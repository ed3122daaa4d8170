// SPDX-License-Identifier: MIT
/*
 * `flowpin check` and `flowpin table`, run as an operator would run them: the built
 * binary of this test's own build (build/flowpin, or build/san/flowpin under make
 * test-sanitize: fp_test_flowpin_path()), its exit status and its output. The numbers printed by `table` are checked against
 * tables built here with the library.
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
#include <sys/wait.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <flowpin/config.h>
#include <flowpin/maglev.h>
#include "common/run.h"

/* The flowpin of the build this test belongs to, never another build's. */
static char flowpin[256];

static char tmpdir[] = "/tmp/flowpin-test-cli.XXXXXX";

static int setup(void **state)
{
	(void)state;
	if (fp_test_flowpin_path(flowpin, sizeof(flowpin)) || access(flowpin, X_OK)) {
		fprintf(stderr, "%s missing: run make first\n", flowpin);
		return -1;
	}
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Runs "flowpin ARGS" with stderr merged into stdout; returns the exit status. */
static int run(char **output, const char *fmt, ...)
{
	char args[1024], cmd[1400], buf[4096];
	size_t len = 0, n;
	va_list ap;
	FILE *p;
	int status;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", flowpin, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	*output = calloc(1, 1);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
		*output = realloc(*output, len + n + 1);
		assert_non_null(*output);
		memcpy(*output + len, buf, n);
		len += n;
		(*output)[len] = '\0';
	}
	status = pclose(p);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* One VIP with backends 1..@n_backends but the one at @skip_index; @pinning NULL: default. */
static const char *write_config_pinning(const char *name, size_t n_backends, size_t skip_index,
					const char *pinning)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "hash_key: 000102030405060708090a0b0c0d0e0f\n"
		   "allow_example_key: true\n" /* a test: the published key is fine */
		   "lb_sources: [10.9.0.0/24]\n"
		   "vips:\n"
		   "  - name: web\n"
		   "    address: 198.51.100.10\n"
		   "    port: 443\n"
		   "    protocol: tcp\n");
	if (pinning)
		fprintf(f, "    pinning: %s\n", pinning);
	fprintf(f, "    backends:\n");
	for (size_t i = 0; i < n_backends; i++)
		if (i != skip_index)
			fprintf(f, "      - {id: %zu, address: 10.0.0.%zu}\n", i + 1, i + 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static const char *write_config(const char *name, size_t n_backends, size_t skip_index)
{
	return write_config_pinning(name, n_backends, skip_index, NULL);
}

static char *write_text(const char *name, const char *text, mode_t mode);

static void test_check_ok_and_errors(void **state)
{
	char *out, *bad;
	FILE *f;
	char want[512];

	(void)state;
	/*
	 * The example's key is published: refused for LB nodes, and for backends too since
	 * its web VIP has tickets (keyed under it); allowed, the file is fine.
	 */
	assert_int_equal(run(&out, "check --config examples/flowpin.yaml --backend"), 1);
	assert_non_null(strstr(out,
			       "examples/flowpin.yaml:16: hash_key: is a key published with "
			       "flowpin (the example's or the lab's): vips[0] (web) has tickets"));
	free(out);
	{
		char text[16384] = "";
		FILE *ex = fopen("examples/flowpin.yaml", "r");

		assert_non_null(ex);
		assert_true(fread(text, 1, sizeof(text) - 64, ex) > 100);
		fclose(ex);
		strcat(text, "allow_example_key: true\n");
		bad = write_text("example.yaml", text, 0600);
	}
	assert_int_equal(run(&out, "check --config %s --backend", bad), 0);
	snprintf(want, sizeof(want),
		 "%s: ok: 3 VIPs, 6 backends (4 active), table_size 65537, encap_port 6080, 3 LB "
		 "source prefixes, health checks on 3 VIPs, TCP tickets on 1 VIP, QUIC-LB on 1 VIP "
		 "(0 plaintext)\n",
		 bad);
	assert_string_equal(out, want);
	free(out);
	free(bad);
	assert_int_equal(run(&out, "check --config examples/flowpin.yaml"), 1);
	assert_non_null(strstr(out, "examples/flowpin.yaml:16: hash_key: is a key published with "
				    "flowpin"));
	free(out);

	/* With a bgp section, what the node announces. */
	bad = strdup(write_config("bgp.yaml", 2, SIZE_MAX));
	assert_non_null(bad);
	f = fopen(bad, "a");
	assert_non_null(f);
	fputs("bgp: {vips: all, damping: {enabled: false}}\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(run(&out, "check -c %s --lb", bad), 0);
	assert_non_null(strstr(out, ", BGP: 1 address announced through /etc/bird/flowpin.conf "
				    "(damping off)\n"));
	free(out);
	free(bad);

	bad = strdup(write_config("bad.yaml", 0, SIZE_MAX)); /* a VIP with no backends */
	assert_non_null(bad);
	assert_int_equal(run(&out, "check -c %s", bad), 1);
	snprintf(want, sizeof(want), "%s:9: vips[0].backends: must be a list of backends\n", bad);
	assert_string_equal(out, want);
	free(out);
	free(bad);

	assert_int_equal(run(&out, "check --config %s/nope.yaml", tmpdir), 1);
	assert_non_null(strstr(out, "nope.yaml: cannot open: No such file or directory"));
	free(out);
}

/* Writes @text to @name in the test directory with @mode; returns a malloc'd path. */
static char *write_text(const char *name, const char *text, mode_t mode)
{
	char *path = NULL;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

/*
 * `check` applies every rule of `lb up` and `backend up` (one
 * loader), with --lb/--backend to check for one side only; warnings do not fail it.
 */
static void test_check_is_lb_and_backend(void **state)
{
	char *out, *path, *text = NULL, want[1024];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	/* 33 VIPs with the largest table: `lb up` has no room for it, so check says so. */
	fprintf(f, "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\ntable_size: 16777213\n"
		   "lb_sources: [10.9.0.0/24]\nvips:\n");
	for (int i = 0; i < 33; i++)
		fprintf(f,
			"  - {name: v%d, address: 198.51.100.%d, port: 80, protocol: tcp, "
			"backends: [{id: 1, address: 10.0.0.1}]}\n",
			i, i + 1);
	fclose(f);
	path = write_text("big.yaml", text, 0600);
	assert_int_equal(run(&out, "check --config %s", path), 1);
	snprintf(want, sizeof(want),
		 "%s:2: table_size: 16777213 does not fit an LB node's bucket array with 33 VIPs "
		 "(64 VIP slots x 2 tables x table_size <= 1073741823 buckets); use at most "
		 "8388593\n",
		 path);
	assert_string_equal(out, want);
	free(out);
	assert_int_equal(run(&out, "check --config %s --lb", path), 1);
	assert_string_equal(out, want);
	free(out);
	assert_int_equal(run(&out, "check --config %s --backend", path), 0); /* no buckets */
	free(out);
	free(path);
	free(text);

	/* No lb_sources: fine for LB nodes only. No hash_key: fine for backends only. */
	path = write_text("lb-only.yaml",
			  "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n"
			  "vips: [{name: w, address: 198.51.100.1, port: 80, protocol: tcp, "
			  "backends: [{id: 1, address: 10.0.0.1}]}]\n",
			  0600);
	assert_int_equal(run(&out, "check --config %s", path), 1);
	assert_non_null(strstr(out, "lb-only.yaml:1: lb_sources: missing"));
	free(out);
	assert_int_equal(run(&out, "check --config %s --lb", path), 0);
	free(out);
	free(path);
	path = write_text("backend-only.yaml",
			  "lb_sources: [10.9.0.0/24]\n"
			  "vips: [{name: w, address: 198.51.100.1, port: 80, protocol: tcp, "
			  "backends: [{id: 1, address: 10.0.0.1}]}]\n",
			  0644);
	assert_int_equal(run(&out, "check --config %s --backend", path), 0);
	assert_non_null(strstr(out, ": ok: 1 VIP, 1 backend"));
	free(out);
	assert_int_equal(run(&out, "check --config %s", path), 1);
	assert_non_null(strstr(out, "backend-only.yaml:1: hash_key: missing (required)"));
	free(out);
	free(path);

	/* A key others may read: a warning naming the file and the fix; still ok. */
	path = write_text("open.yaml",
			  "hash_key: 5a1f0e9d8c7b6a594837261504f3e2d1\n"
			  "lb_sources: [10.9.0.0/24]\n"
			  "vips: [{name: w, address: 198.51.100.1, port: 80, protocol: tcp, "
			  "backends: [{id: 1, address: 10.0.0.1}]}]\n",
			  0644);
	assert_int_equal(run(&out, "check --config %s", path), 0);
	snprintf(want, sizeof(want),
		 "%1$s:1: hash_key: warning: %1$s is readable by every user (mode 0644): the hash "
		 "key is the fleet's secret; chmod 600 %1$s\n",
		 path);
	assert_non_null(strstr(out, want));
	free(out);
	free(path);
}

static void test_usage_and_help(void **state)
{
	char *out;

	(void)state;
	assert_int_equal(run(&out, "check"), 2);
	assert_non_null(strstr(out, "--config FILE is required"));
	free(out);
	assert_int_equal(run(&out, "check --config a extra"), 2);
	free(out);
	assert_int_equal(run(&out, "check --help"), 0);
	assert_non_null(strstr(out, "usage: flowpin check --config FILE"));
	free(out);
	assert_int_equal(run(&out, "help table"), 0);
	assert_non_null(strstr(out, "usage: flowpin table --config FILE [--previous FILE]"));
	free(out);
	assert_int_equal(run(&out, "table --bogus"), 2);
	free(out);
	assert_int_equal(run(&out, "table --config %s --vip nope", write_config("t.yaml", 3, 9)),
			 1);
	assert_non_null(strstr(out, "no VIP named 'nope'"));
	free(out);
}

/*
 * Usage errors exit 2 and name the command as typed ("flowpin lb up: ..."), the option
 * and the value; getopt's own messages would start with "up:" or "check:". No root
 * needed: each is refused before anything touches the system.
 */
static void test_option_errors_name_the_command(void **state)
{
	static const struct {
		const char *args, *message;
	} cases[] = {
		{ "check --bogus", "flowpin check: unknown option '--bogus'\n" },
		{ "check -c a.yaml b.yaml", "flowpin check: unexpected argument 'b.yaml'\n" },
		{ "table -c", "flowpin table: -c needs a value\n" },
		{ "table -x", "flowpin table: unknown option '-x'\n" },
		{ "lb up --dev lo --bogus", "flowpin lb up: unknown option '--bogus'\n" },
		{ "lb stats --dev lo --interval", "flowpin lb stats: --interval needs a value\n" },
		{ "lb stats --dev lo --interval 0",
		  "flowpin lb stats: --interval '0': seconds, more than 0, at most 86400\n" },
		{ "lb up --dev lo --config x --source 192.0.2.1 --source 192.0.2.2",
		  "flowpin lb up: --source '192.0.2.2': one IPv4 source only\n" },
		{ "lb up --dev lo --config x --json",
		  "flowpin lb up: --json does not apply here\n" },
		{ "lb status --dev lo --pin-root /x",
		  "flowpin lb status: --pin-root does not apply here\n" },
		{ "lb",
		  "flowpin lb: a command is required (up, reload, down, stats, flows, status, " },
		{ "lb frob --dev lo", "flowpin lb: no command 'frob' (up, " },
		{ "lb drain --dev lo",
		  "flowpin lb drain: BACKEND (an id or an address) is required\n" },
		{ "lb undrain 3 4 --dev lo", "flowpin lb undrain: unexpected argument '4'\n" },
		{ "lb maintenance maybe --dev lo",
		  "flowpin lb maintenance: on or off is required\n" },
		{ "lb maintenance off --dev lo --until-flows 3",
		  "flowpin lb maintenance off: --deadline and --until-flows go with on\n" },
		{ "lb maintenance on --dev lo --deadline 1.5h",
		  "flowpin lb maintenance: --deadline '1.5h': a duration (90s, 10m, 1h, 500ms; 0: "
		  "none), at most 7 days\n" },
		{ "lb maintenance on --dev lo --deadline 8d",
		  "flowpin lb maintenance: --deadline '8d'" },
		{ "lb maintenance on --dev lo --deadline 169h",
		  "flowpin lb maintenance: --deadline '169h'" },
		{ "lb maintenance on --dev lo --until-flows -1",
		  "flowpin lb maintenance: --until-flows '-1': a count >= 0\n" },
		{ "lb flows --dev lo --backend 4096",
		  "flowpin lb flows: --backend '4096': an id, 1..4095\n" },
		{ "lb flows --dev lo --vip [192.0.2.1]:80",
		  "flowpin lb flows: --vip '[192.0.2.1]:80': expected ADDR, ADDR:PORT or "
		  "[ADDR6]:PORT\n" },
		{ "lb flows --dev lo --vip 192.0.2.1:65536",
		  "flowpin lb flows: --vip '192.0.2.1:65536'" },
		{ "lb flows --dev lo --vip 192.0.2.1:+80",
		  "flowpin lb flows: --vip '192.0.2.1:+80'" },
		{ "lb stats", "flowpin lb stats: --dev is required\n" },
		{ "lb stats --dev a/b",
		  "flowpin lb stats: --dev 'a/b' is not an interface name\n" },
		{ "lb up --dev lo --xdp-mode fast",
		  "flowpin lb up: --xdp-mode 'fast': native or generic\n" },
		{ "lb up --dev lo --config x --metrics [::1]",
		  "flowpin lb up: --metrics '[::1]': ADDR:PORT (IPv6 as [ADDR]:PORT, port "
		  "1..65535)\n" },
		{ "lb up --dev lo", "flowpin lb up: --config is required\n" },
		{ "lb up --dev lo --config x --sessions 1023",
		  "flowpin lb up: --sessions '1023': entries, 1024..134217728\n" },
		{ "lb up --dev lo --config x --new-flow-rate 1e6",
		  "flowpin lb up: --new-flow-rate '1e6': per CPU per second, 0..1000000000 (0: no "
		  "limit)\n" },
		{ "lb reload --dev lo --sessions 2048",
		  "flowpin lb reload: --sessions does not apply here\n" },
		{ "backend",
		  "flowpin backend: a command is required (up, reload, status, down, stats)\n" },
		{ "backend reload --node x",
		  "flowpin backend reload: --node does not apply here\n" },
		{ "backend status",
		  "flowpin backend status: --dev IFACE or --node NAME is required\n" },
		{ "backend status --node a/b", "flowpin backend status: --node 'a/b': 1..63 of" },
		{ "backend down --interval 1",
		  "flowpin backend down: --interval does not apply here\n" },
		{ "backend stats --config x",
		  "flowpin backend stats: --config does not apply here\n" },
		{ "backend up --dev lo",
		  "flowpin backend up: --config FILE and --dev IFACE are required\n" },
		{ "backend stats extra", "flowpin backend stats: unexpected argument 'extra'\n" },
		{ "backend up --config", "flowpin backend up: --config needs a value\n" },
		{ "backend stats --interval x",
		  "flowpin backend stats: --interval 'x': seconds, more than 0, at most 86400\n" },
		{ "replay --config a --in b --out c --source 2001:db8::1 --source 2001:db8::2",
		  "flowpin replay: --source '2001:db8::2': one IPv6 source only\n" },
		{ "replay --source banana",
		  "flowpin replay: --source 'banana': not an IPv4 or IPv6 "
		  "address\n" },
	};
	char *out;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(&out, "%s", cases[i].args);

		if (rc != 2 || strncmp(out, cases[i].message, strlen(cases[i].message)))
			fail_msg(
				"'flowpin %s': exit %d, output\n%s\nwant exit 2 and first line\n%s",
				cases[i].args, rc, out, cases[i].message);
		free(out);
	}
}

/* Every command has its help, as 'flowpin help CMD' and as 'CMD --help', on stdout. */
static void test_help_everywhere(void **state)
{
	static const char *const commands[] = { "check",   "table",   "lb", "replay",
						"backend", "quic-lb", "sim" };
	char *out, want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		snprintf(want, sizeof(want), "usage: flowpin %s", commands[i]);
		assert_int_equal(run(&out, "help %s 2>/dev/null", commands[i]), 0);
		if (strncmp(out, want, strlen(want)))
			fail_msg("'flowpin help %s' printed:\n%s", commands[i], out);
		free(out);
		assert_int_equal(run(&out, "%s --help 2>/dev/null", commands[i]), 0);
		if (strncmp(out, want, strlen(want)))
			fail_msg("'flowpin %s --help' printed:\n%s", commands[i], out);
		free(out);
	}
	assert_int_equal(run(&out, "help 2>/dev/null"), 0);
	assert_non_null(strstr(out, "usage: flowpin [-v] COMMAND [ARGS]"));
	free(out);
	assert_int_equal(run(&out, "frobnicate"), 2);
	assert_non_null(strstr(out, "flowpin: no command 'frobnicate'"));
	free(out);
}

/* Slots of each backend in the library's table for @path's first VIP. */
static void library_table(const char *path, __u16 *table, __u32 *counts)
{
	struct fp_config *cfg = NULL;

	assert_int_equal(fp_config_load(path, &cfg, stderr), 0);
	assert_int_equal(fp_maglev_build_vip(cfg, &cfg->vips[0], table), 0);
	memset(counts, 0, 4096 * sizeof(*counts));
	for (__u32 i = 0; i < cfg->table_size; i++)
		counts[table[i]]++;
	fp_config_free(cfg);
}

static void test_table_shares_and_change(void **state)
{
	char *prev = strdup(write_config("ten.yaml", 10, SIZE_MAX));
	char *next = strdup(write_config("nine.yaml", 10, 6)); /* without id 7 */
	__u16 *t_prev = calloc(65537, 2), *t_next = calloc(65537, 2);
	__u32 *c_prev = calloc(4096, 4), *c_next = calloc(4096, 4);
	char *out, want[256], *row;
	__u32 moved, sum = 0;

	(void)state;
	assert_non_null(prev);
	assert_non_null(next);
	assert_non_null(t_prev);
	assert_non_null(t_next);
	assert_non_null(c_prev);
	assert_non_null(c_next);
	library_table(prev, t_prev, c_prev);
	library_table(next, t_next, c_next);
	moved = fp_table_disruption(t_prev, t_next, 65537);

	assert_int_equal(run(&out, "table --config %s", prev), 0);
	snprintf(want, sizeof(want), "      7  10.0.0.7     100  active   %8u %7.3f%% %7.3f%%\n",
		 c_prev[7], 100.0 * c_prev[7] / 65537, 10.0);
	if (!strstr(out, want))
		fail_msg("no line\n%sin\n%s", want, out);
	free(out);

	assert_int_equal(run(&out, "table --config %s --previous %s", next, prev), 0);
	snprintf(want, sizeof(want),
		 "  change: %u of 65537 buckets move (%.3f%%), ideal %u (%.3f%%), ratio %.3f\n",
		 moved, 100.0 * moved / 65537, c_prev[7], 100.0 * c_prev[7] / 65537,
		 (double)moved / c_prev[7]);
	if (!strstr(out, want))
		fail_msg("no line\n%sin\n%s", want, out);
	/* Matrix row of id 7: every one of its buckets went somewhere. */
	row = strstr(out, "\n          7 ");
	assert_non_null(row);
	row += strlen("\n          7 ");
	for (char *end; *row && *row != '\n'; row = end) {
		unsigned long v = strtoul(row, &end, 10);

		if (end == row) { /* "." = nothing moved there */
			end = row + 1;
			continue;
		}
		sum += (__u32)v;
	}
	assert_int_equal(sum, c_prev[7]);
	free(out);

	free(prev);
	free(next);
	free(t_prev);
	free(t_next);
	free(c_prev);
	free(c_next);
}

/*
 * none and table pick from the list of active backends, not from a Maglev table: table
 * must show that list, and for none what hash mod N really moves (removing 1 of 10
 * moves 90% of the flows, not Maglev's 10%).
 */
static void test_table_list_modes(void **state)
{
	char *none10 = strdup(write_config_pinning("none10.yaml", 10, SIZE_MAX, "none"));
	char *none9 = strdup(write_config_pinning("none9.yaml", 10, 6, "none"));
	char *table9 = strdup(write_config_pinning("table9.yaml", 10, 6, "table"));
	char *out;

	(void)state;
	assert_non_null(none10);
	assert_non_null(none9);
	assert_non_null(table9);
	assert_int_equal(run(&out, "table --config %s --previous %s", none9, none10), 0);
	if (!strstr(out, "      8  10.0.0.8     100  active          1  11.111%  11.111%\n") ||
	    !strstr(out, "  pinning none: no bucket table; flow hash mod 9 over the active "
			 "backends above, in id order\n") ||
	    !strstr(out, "  change: 90.000% of flows move (hash mod 10 -> mod 9, no session "
			 "table)\n"))
		fail_msg("none, 10 -> 9 backends:\n%s", out);
	free(out);
	assert_int_equal(run(&out, "table --config %s --previous %s", table9, none10), 0);
	if (!strstr(out, "  pinning table: no bucket table; new flows round-robin over the 9 "
			 "active backends above") ||
	    !strstr(out, "  change: pinning none -> table: "))
		fail_msg("none -> table:\n%s", out);
	free(out);
	free(none10);
	free(none9);
	free(table9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_ok_and_errors),
		cmocka_unit_test(test_check_is_lb_and_backend),
		cmocka_unit_test(test_usage_and_help),
		cmocka_unit_test(test_option_errors_name_the_command),
		cmocka_unit_test(test_help_everywhere),
		cmocka_unit_test(test_table_shares_and_change),
		cmocka_unit_test(test_table_list_modes),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
