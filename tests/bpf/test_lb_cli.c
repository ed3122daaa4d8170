// SPDX-License-Identifier: MIT
/*
 * `flowpin lb` end to end in two network namespaces this test creates and deletes:
 * up (attach, pins, pid file), real UDP/TCP packets from a client namespace, stats
 * (text and JSON) and flows, reload through the pins with a bad and a good file (the
 * daemon adopts the good one), SIGHUP, down (detached, unpinned, daemon gone).
 *
 *   fpc<pid> (client) cl0 10.99.0.2 ==veth== lb0 10.99.0.1 fpl<pid> (LB, XDP generic)
 *
 * Backends 10.99.0.10-12 do not exist: their neighbour entries point at the client's
 * MAC, so encapsulated packets leave and nothing outside the namespaces sees them.
 * The bpffs pin root is mounted by the test before `ip netns exec` (which gives every
 * command a private mount namespace: a mount made by the daemon would be invisible to
 * the other commands). Needs root; skips otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "common/run.h"

struct lab {
	int ready;
	char lb_ns[32], cl_ns[32];
	char dir[64], pins[96], run[96], log[96];
	char good[96], better[96], bad[96];
	char flowpin[PATH_MAX];
	pid_t daemon;
	int mounted;
};

/* The published example key: a test may use it, with allow_example_key. */
static const char config_fmt[] = "hash_key: 000102030405060708090a0b0c0d0e0f\n"
				 "table_size: 307\n"
				 "vips:\n"
				 "  - name: web\n"
				 "    address: 198.51.100.10\n"
				 "    port: 80\n"
				 "    protocol: tcp\n"
				 "    backends:\n"
				 "      - { id: 1, address: 10.99.0.10 }\n"
				 "      - { id: 2, address: 10.99.0.11 }\n"
				 "%s"
				 "  - name: dns\n"
				 "    address: 198.51.100.10\n"
				 "    port: 53\n"
				 "    protocol: udp\n"
				 "    backends:\n"
				 "      - { id: 1, address: 10.99.0.10 }\n"
				 "allow_example_key: true\n";

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

/* `flowpin lb ...` inside the LB namespace with the test's pin root and run dir. */
#define LB(l, out, cap, fmt, ...)                                                               \
	fp_test_sh(out, cap, "ip netns exec %s '%s' lb " fmt " 2>&1", (l)->lb_ns, (l)->flowpin, \
		   ##__VA_ARGS__)

static int file_contains(const char *path, const char *needle)
{
	char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return strstr(buf, needle) != NULL;
}

/* Polls @path for @needle for up to 5 s (the daemon logs asynchronously). */
static int wait_log(const char *path, const char *needle)
{
	for (int i = 0; i < 50; i++) {
		if (file_contains(path, needle))
			return 1;
		usleep(100000);
	}
	return 0;
}

static void teardown_lab(struct lab *l)
{
	if (l->daemon > 0) {
		kill(l->daemon, SIGTERM);
		for (int i = 0; i < 50 && waitpid(l->daemon, NULL, WNOHANG) == 0; i++)
			usleep(100000);
		kill(l->daemon, SIGKILL);
		waitpid(l->daemon, NULL, WNOHANG);
		l->daemon = 0;
	}
	fp_test_sh(NULL, 0, "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", l->lb_ns,
		   l->cl_ns);
	if (l->mounted) {
		umount2(l->pins, MNT_DETACH);
		l->mounted = 0;
	}
	fp_test_sh(NULL, 0, "rm -rf '%s'", l->dir);
}

static int setup(void **state)
{
	struct lab *l = calloc(1, sizeof(*l));
	char text[2048], mac[64];

	if (!l)
		return -1;
	*state = l;
	if (geteuid() != 0)
		return 0; /* every test skips */
	snprintf(l->lb_ns, sizeof(l->lb_ns), "fpl%d", (int)getpid());
	snprintf(l->cl_ns, sizeof(l->cl_ns), "fpc%d", (int)getpid());
	snprintf(l->dir, sizeof(l->dir), "/tmp/flowpin-lbcli-XXXXXX");
	if (!mkdtemp(l->dir))
		return -1;
	snprintf(l->pins, sizeof(l->pins), "%s/bpf", l->dir);
	snprintf(l->run, sizeof(l->run), "%s/run", l->dir);
	snprintf(l->log, sizeof(l->log), "%s/daemon.log", l->dir);
	snprintf(l->good, sizeof(l->good), "%s/good.yaml", l->dir);
	snprintf(l->better, sizeof(l->better), "%s/better.yaml", l->dir);
	snprintf(l->bad, sizeof(l->bad), "%s/bad.yaml", l->dir);
	if (fp_test_flowpin_path(l->flowpin, sizeof(l->flowpin)))
		return -1;

	snprintf(text, sizeof(text), config_fmt, "");
	if (write_text(l->good, text))
		return -1;
	snprintf(text, sizeof(text), config_fmt, "      - { id: 3, address: 10.99.0.12 }\n");
	if (write_text(l->better, text))
		return -1;
	/* Line 3 has a key the loader does not know. */
	if (write_text(l->bad, "hash_key: 000102030405060708090a0b0c0d0e0f\ntable_size: 307\n"
			       "bogus_key: 1\nvips: []\nallow_example_key: true\n"))
		return -1;
	if (mkdir(l->pins, 0700) || mkdir(l->run, 0755))
		return -1;
	if (mount("bpf", l->pins, "bpf", 0, "mode=0700"))
		return -1;
	l->mounted = 1;

	if (fp_test_sh(NULL, 0,
		       "set -e; ip netns add %1$s; ip netns add %2$s;"
		       "ip link add lb0 netns %1$s type veth peer name cl0 netns %2$s;"
		       "ip -n %1$s link set lo up; ip -n %1$s addr add 10.99.0.1/24 dev lb0;"
		       "ip -n %1$s link set lb0 up;"
		       "ip -n %2$s addr add 10.99.0.2/24 dev cl0; ip -n %2$s link set cl0 up;"
		       "ip -n %2$s route add 198.51.100.0/24 via 10.99.0.1",
		       l->lb_ns, l->cl_ns))
		return -1;
	if (fp_test_sh(mac, sizeof(mac), "ip -n %s -br link show cl0 | awk '{printf \"%%s\", $3}'",
		       l->cl_ns) ||
	    !mac[0])
		return -1;
	if (fp_test_sh(
		    NULL, 0,
		    "set -e; for b in 10 11 12; do ip -n %1$s neigh replace 10.99.0.$b lladdr %2$s "
		    "dev lb0 nud permanent; done; ip netns exec %1$s sysctl -qw "
		    "net.ipv4.ip_forward=1",
		    l->lb_ns, mac))
		return -1;
	l->ready = 1;
	return 0;
}

static int teardown(void **state)
{
	struct lab *l = *state;

	if (l && l->ready)
		teardown_lab(l);
	free(l);
	return 0;
}

static struct lab *lab_or_skip(void **state)
{
	struct lab *l = *state;

	if (geteuid() != 0) {
		print_message("# needs root (namespaces, XDP, bpffs)\n");
		skip();
	}
	assert_true(l->ready);
	return l;
}

/* Extracts the integer after "\"NAME\":" in JSON text (first occurrence after @from). */
static long long json_number(const char *json, const char *from, const char *name)
{
	char needle[96];
	const char *s = from ? strstr(json, from) : json;

	assert_non_null(s);
	snprintf(needle, sizeof(needle), "\"%s\":", name);
	s = strstr(s, needle);
	if (!s)
		fail_msg("no %s after %s in %s", name, from ? from : "start", json);
	return strtoll(s + strlen(needle), NULL, 10);
}

/* `flowpin lb up` in the LB namespace, output into the log file. Returns its pid. */
static pid_t start_daemon(const struct lab *l)
{
	pid_t pid;

	/* Emptied before the fork: wait_log() must not find the previous daemon's lines. */
	assert_int_equal(write_text(l->log, ""), 0);
	pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(l->log, O_WRONLY | O_APPEND);

		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execlp("ip", "ip", "netns", "exec", l->lb_ns, l->flowpin, "lb", "up", "--config",
		       l->good, "--dev", "lb0", "--xdp-mode", "generic", "--pin-root", l->pins,
		       "--run-dir", l->run, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void test_up(void **state)
{
	struct lab *l = lab_or_skip(state);
	char out[4096], path[160];

	l->daemon = start_daemon(l);
	if (!wait_log(l->log, "up on lb0 (generic XDP)")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("daemon did not come up: %s", out);
	}
	snprintf(path, sizeof(path), "%s/lb0/sessions", l->pins);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/lb0.pid", l->run);
	assert_true(file_contains(path, "\n"));
	assert_int_equal(fp_test_sh(out, sizeof(out), "ip -n %s link show dev lb0", l->lb_ns), 0);
	assert_non_null(strstr(out, "xdpgeneric"));
	/* A second daemon on the same device is refused. */
	assert_int_equal(LB(l, out, sizeof(out),
			    "up --config '%s' --dev lb0 --xdp-mode generic --pin-root '%s' "
			    "--run-dir '%s'",
			    l->good, l->pins, l->run),
			 1);
	assert_non_null(strstr(out, "already runs on lb0"));
}

static void test_traffic_stats_flows(void **state)
{
	struct lab *l = lab_or_skip(state);
	char out[16384];

	/*
	 * Three UDP flows of two datagrams each (three source ports: the first datagram
	 * puts the flow in probation, the second promotes it), one of one datagram (stays
	 * in probation), and one TCP SYN, from the client.
	 */
	assert_int_equal(fp_test_sh(NULL, 0,
				    "ip netns exec %s bash -c 'for i in 1 2 3; do exec "
				    "3>/dev/udp/198.51.100.10/53; echo hi >&3; echo hi >&3; exec "
				    "3>&-; done; echo hi > /dev/udp/198.51.100.10/53; timeout 1 "
				    "bash -c \"echo > /dev/tcp/198.51.100.10/80\" 2>/dev/null; "
				    "true'",
				    l->cl_ns),
			 0);
	usleep(200000);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_true(json_number(out, NULL, "miss_non_syn") >= 7);
	assert_true(json_number(out, NULL, "probation_insert") >= 4);
	assert_true(json_number(out, NULL, "session_insert") >= 3);
	assert_true(json_number(out, NULL, "miss_syn") >= 1);
	assert_int_equal(json_number(out, "\"vip\":\"198.51.100.10:53\"", "packets"), 7);
	assert_int_equal(json_number(out, "\"vip\":\"198.51.100.10:53\"", "generation"), 1);
	/* The UDP VIP's only backend carried all seven. */
	const char *dns = strstr(out, "\"vip\":\"198.51.100.10:53\"");
	assert_non_null(dns);
	assert_int_equal(json_number(dns, "\"address\":\"10.99.0.10\"", "packets"), 7);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s'", l->pins), 0);
	assert_non_null(strstr(out, "session_insert"));
	assert_non_null(strstr(out, "probation_evict"));
	assert_non_null(
		strstr(out, "vip 198.51.100.10:53/udp pinning full generation 1: 7 packets"));

	assert_int_equal(LB(l, out, sizeof(out),
			    "flows --dev lb0 --pin-root '%s' --vip 198.51.100.10:53", l->pins),
			 0);
	assert_non_null(strstr(out, "3 flows shown"));
	/* The single datagram's flow (and the three promoted ones' marks) in probation. */
	assert_non_null(strstr(out, "flows in probation"));
	assert_non_null(strstr(out, "udp  src=10.99.0.2:"));
	assert_non_null(strstr(out, "dst=198.51.100.10:53 backend=1(10.99.0.10) gen=1 state=udp"));
	/* Full mode: the SYN created no entry, so the TCP VIP shows none. */
	assert_int_equal(LB(l, out, sizeof(out),
			    "flows --dev lb0 --pin-root '%s' --vip 198.51.100.10:80", l->pins),
			 0);
	assert_non_null(strstr(out, "0 flows shown"));
	assert_int_equal(
		LB(l, out, sizeof(out), "flows --dev lb0 --pin-root '%s' --backend 2", l->pins), 0);
	assert_non_null(strstr(out, "0 flows shown"));
	/* --interval: rates per sample until interrupted (SIGINT ends it cleanly, exit 0). */
	assert_int_equal(fp_test_sh(out, sizeof(out),
				    "ip netns exec %s timeout --preserve-status -s INT 2.5 '%s' lb "
				    "stats --dev lb0 "
				    "--pin-root '%s' --interval 1 --json",
				    l->lb_ns, l->flowpin, l->pins),
			 0);
	assert_non_null(strstr(out, "\"rates\":{"));
	assert_non_null(strstr(strstr(out, "\"rates\":{") + 1, "\"rates\":{")); /* two samples */
	assert_non_null(strstr(out, "\"packets_per_s\":0.0"));
}

static void test_reload(void **state)
{
	struct lab *l = lab_or_skip(state);
	char out[16384];

	/* A bad file: refused with its line, nothing changes. */
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s'",
			    l->pins, l->run, l->bad),
			 1);
	if (!strstr(out, "bad.yaml:3: bogus_key: unknown key"))
		fail_msg("reload did not name the bad line: %s", out);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, "\"vip\":\"198.51.100.10:80\"", "generation"), 1);

	/* A good one: generation 2 through the pins, the daemon adopts the file. */
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s'",
			    l->pins, l->run, l->better),
			 0);
	assert_non_null(strstr(out, "generation 2"));
	assert_true(wait_log(l->log, "SIGUSR1"));
	assert_true(wait_log(l->log, "better.yaml; SIGHUP now re-reads it"));
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, "\"vip\":\"198.51.100.10:80\"", "generation"), 2);
	assert_non_null(strstr(out, "\"address\":\"10.99.0.12\""));

	/* Without --config: SIGHUP, the daemon re-reads the adopted file. */
	assert_int_equal(LB(l, out, sizeof(out), "reload --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 0);
	assert_true(wait_log(l->log, "SIGHUP from pid"));
	assert_true(wait_log(l->log, "reload: applied"));
}

static void test_down(void **state)
{
	struct lab *l = lab_or_skip(state);
	char out[4096], path[160];
	int status = -1;

	assert_int_equal(LB(l, out, sizeof(out), "down --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 0);
	assert_non_null(strstr(out, "stopped"));
	assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
	l->daemon = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(file_contains(l->log, "down: detached from lb0, pins removed"));
	snprintf(path, sizeof(path), "%s/lb0", l->pins);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/lb0.pid", l->run);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(fp_test_sh(out, sizeof(out), "ip -n %s link show dev lb0", l->lb_ns), 0);
	assert_null(strstr(out, "xdp"));
	/* Nothing left to stop. */
	assert_int_equal(LB(l, out, sizeof(out), "down --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 1);
}

/* A daemon killed outright leaves pins and its program: the next `up` clears them. */
static void test_restart_after_kill(void **state)
{
	struct lab *l = lab_or_skip(state);
	char out[4096];
	int status;

	l->daemon = start_daemon(l);
	assert_true(wait_log(l->log, "up on lb0 (generic XDP)"));
	kill(l->daemon, SIGKILL);
	assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
	l->daemon = 0;
	assert_int_equal(fp_test_sh(out, sizeof(out), "ip -n %s link show dev lb0", l->lb_ns), 0);
	assert_non_null(strstr(out, "xdpgeneric")); /* left behind */

	l->daemon = start_daemon(l);
	if (!wait_log(l->log, "up on lb0 (generic XDP)")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("restart did not come up: %s", out);
	}
	assert_true(file_contains(l->log, "removed the pins (and detached the program) of a "
					  "daemon that is gone"));
	assert_int_equal(LB(l, out, sizeof(out), "down --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 0);
	assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
	l->daemon = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_usage(void **state)
{
	struct lab *l = *state;
	char out[4096];
	const char *const cases[] = {
		"lb",
		"lb frobnicate --dev lo",
		"lb stats",
		"lb stats --dev lo --config x.yaml",
		"lb up --dev lo",
		"lb up --dev lo --config x --xdp-mode fast",
		"lb flows --dev lo --vip 1.2.3",
		"lb flows --dev lo --backend 0",
		"lb stats --dev lo --interval -1",
	};

	/* Usage errors are refused before anything touches the system: no root needed. */
	if (!l->flowpin[0])
		assert_int_equal(fp_test_flowpin_path(l->flowpin, sizeof(l->flowpin)), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = fp_test_sh(out, sizeof(out), "'%s' %s 2>&1", l->flowpin, cases[i]);

		if (rc != 2)
			fail_msg("'flowpin %s' exited %d, expected 2 (usage): %s", cases[i], rc,
				 out);
	}
	assert_int_equal(fp_test_sh(out, sizeof(out), "'%s' lb flows --help", l->flowpin), 0);
	assert_non_null(strstr(out, "usage: flowpin lb flows"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_up),
		cmocka_unit_test(test_traffic_stats_flows),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_down),
		cmocka_unit_test(test_restart_after_kill),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
