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
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <flowpin/maps.h>
#include <flowpin/stats.h>
#include "common/prom.h"
#include "common/run.h"

struct lab {
	int ready;
	char lb_ns[32], cl_ns[32];
	char dir[64], pins[96], run[96], log[96];
	char good[96], better[96], bad[96], tbl[96], many[96], many_b[96];
	char flowpin[PATH_MAX];
	char rebuilt[PATH_MAX + 16]; /* the same flowpin, another build of its program */
	pid_t daemon;
	pid_t listener; /* test_health_effective's TCP listener, killed by fresh_node/teardown */
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

static const char table_vip[] = "  - name: tbl\n"
				"    address: 198.51.100.10\n"
				"    port: 54\n"
				"    protocol: udp\n"
				"    pinning: table\n"
				"    backends:\n"
				"      - { id: 1, address: 10.99.0.10 }\n"
				"      - { id: 2, address: 10.99.0.11 }\n"
				"      - { id: 3, address: 10.99.0.12 }\n";

/* good.yaml with the `table`-mode VIP added to its list. */
static void table_config(char *text, size_t len)
{
	char rest[256] = "";
	char *tail;

	snprintf(text, len, config_fmt, "");
	tail = strstr(text, "allow_example_key:"); /* top-level keys after the list */
	if (tail) {
		snprintf(rest, sizeof(rest), "%s", tail);
		*tail = 0;
	}
	snprintf(text + strlen(text), len - strlen(text), "%s%s", table_vip, rest);
}

/*
 * 8 VIPs of 240 backends each (table_size 24001: at least 100 x backends), routed
 * through the client (10.98.0.0/16): an apply that takes a while to prime them. The VIP 198.51.100.10:80's pinning
 * is @web_pinning: what tells the two files apart in the maps.
 */
static int write_many(const char *path, const char *web_pinning)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "hash_key: 000102030405060708090a0b0c0d0e0f\nallow_example_key: true\n"
		   "table_size: 24001\nvips:\n");
	for (int v = 0; v < 8; v++) {
		fprintf(f,
			"  - name: v%d\n    address: 198.51.100.10\n    port: %d\n"
			"    protocol: %s\n    pinning: %s\n    backends:\n",
			v,
			v == 0	 ? 80
			: v == 1 ? 53
				 : 1000 + v,
			v == 1 ? "udp" : "tcp", v == 0 ? web_pinning : "full");
		for (int b = 1; b <= 240; b++)
			fprintf(f, "      - { id: %d, address: 10.98.%d.%d }\n", b, v, b);
	}
	return fclose(f) ? -errno : 0;
}

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
	static char buf[1 << 20];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return strstr(buf, needle) != NULL;
}

/*
 * A child of this test (watcher, traffic, daemon) dies with it: a failed assertion
 * jumps out of a test without stopping its helpers, and a watcher left polling would
 * spin for ever on a machine where others work.
 */
static void die_with_parent(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/*
 * Polls @path for @needle for up to 60 s (the daemon logs asynchronously, and lb up
 * verifies a ~700k-instruction program first: many seconds on a loaded machine). A
 * line that comes costs only the time it takes.
 */
static int wait_log(const char *path, const char *needle)
{
	for (int i = 0; i < 600; i++) {
		if (file_contains(path, needle))
			return 1;
		usleep(100000);
	}
	return 0;
}

static void kill_listener(struct lab *l)
{
	if (l->listener > 0) {
		kill(l->listener, SIGKILL);
		waitpid(l->listener, NULL, 0);
		l->listener = 0;
	}
}

static void teardown_lab(struct lab *l)
{
	kill_listener(l);
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
	snprintf(l->tbl, sizeof(l->tbl), "%s/tbl.yaml", l->dir);
	snprintf(l->many, sizeof(l->many), "%s/many.yaml", l->dir);
	snprintf(l->many_b, sizeof(l->many_b), "%s/many_b.yaml", l->dir);
	if (fp_test_flowpin_path(l->flowpin, sizeof(l->flowpin)))
		return -1;
	snprintf(l->rebuilt, sizeof(l->rebuilt), "%s-rebuilt", l->flowpin);

	snprintf(text, sizeof(text), config_fmt, "");
	if (write_text(l->good, text))
		return -1;
	snprintf(text, sizeof(text), config_fmt, "      - { id: 3, address: 10.99.0.12 }\n");
	if (write_text(l->better, text))
		return -1;
	/* good.yaml and a `table`-mode VIP. */
	table_config(text, sizeof(text));
	if (write_text(l->tbl, text))
		return -1;
	if (write_many(l->many, "full") || write_many(l->many_b, "hash"))
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
		       "ip -n %2$s route add 198.51.100.0/24 via 10.99.0.1;"
		       "ip -n %1$s route add 10.98.0.0/16 via 10.99.0.2",
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

/* `flowpin lb up` in the LB namespace, output into the log file, with --metrics
 * @metrics unless NULL. Returns its pid. */
/* The capabilities of flowpin-lb@.service (dist/systemd): bounding, inheritable, ambient. */
#define UNIT_CAPS "-all,+bpf,+perfmon,+net_admin"

/*
 * `lb up` of the flowpin binary @bin as a daemon; with @unit_caps, under the unit's
 * capabilities only (setpriv); @extra: more options, separated by spaces (NULL: none).
 */
static pid_t start_daemon_bin(const struct lab *l, const char *bin, const char *config,
			      const char *metrics, bool unit_caps, const char *extra)
{
	char extras[256] = "", *save = NULL;
	const char *argv[40];
	int n = 0;
	pid_t pid;

	/* Emptied before the fork: wait_log() must not find the previous daemon's lines. */
	assert_int_equal(write_text(l->log, ""), 0);
	argv[n++] = "ip";
	argv[n++] = "netns";
	argv[n++] = "exec";
	argv[n++] = l->lb_ns;
	if (unit_caps) {
		argv[n++] = "setpriv";
		argv[n++] = "--inh-caps=" UNIT_CAPS;
		argv[n++] = "--ambient-caps=" UNIT_CAPS;
		argv[n++] = "--bounding-set=" UNIT_CAPS;
	}
	argv[n++] = bin;
	argv[n++] = "lb";
	argv[n++] = "up";
	argv[n++] = "--config";
	argv[n++] = config;
	argv[n++] = "--dev";
	argv[n++] = "lb0";
	argv[n++] = "--xdp-mode";
	argv[n++] = "generic";
	argv[n++] = "--pin-root";
	argv[n++] = l->pins;
	argv[n++] = "--run-dir";
	argv[n++] = l->run;
	if (metrics && !unit_caps) {
		argv[n++] = "--metrics";
		argv[n++] = metrics;
	}
	snprintf(extras, sizeof(extras), "%s", extra ? extra : "");
	for (char *a = strtok_r(extras, " ", &save); a && n < 39; a = strtok_r(NULL, " ", &save))
		argv[n++] = a;
	argv[n] = NULL;
	pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		die_with_parent();
		int fd = open(l->log, O_WRONLY | O_APPEND);

		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execvp("ip", (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static pid_t start_daemon_caps(const struct lab *l, const char *config, const char *metrics,
			       bool unit_caps)
{
	return start_daemon_bin(l, l->flowpin, config, metrics, unit_caps, NULL);
}

static pid_t start_daemon_metrics(const struct lab *l, const char *config, const char *metrics)
{
	return start_daemon_caps(l, config, metrics, false);
}

static pid_t start_daemon_with(const struct lab *l, const char *config)
{
	return start_daemon_metrics(l, config, NULL);
}

static pid_t start_daemon(const struct lab *l)
{
	return start_daemon_with(l, l->good);
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
	assert_int_equal(LB(l, out, sizeof(out),
			    "stats --dev lb0 --pin-root '%s' --run-dir '%s' --json", l->pins,
			    l->run),
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
	/* The node's figures (lib/stats.c, shared with the metrics): three promoted flows
	 * in the session table, the one-datagram flow still in probation, the daemon. */
	assert_int_equal(json_number(out, "\"sessions\"", "entries"), 3);
	assert_int_equal(json_number(out, "\"sessions\"", "live"), 3);
	assert_int_equal(json_number(out, "\"sessions\"", "capacity"), FP_LB_DEFAULT_SESSIONS);
	assert_true(json_number(out, "\"probation\"", "live") >= 1);
	assert_int_equal(json_number(out, "\"node\"", "daemon_pid"), l->daemon);
	assert_true(json_number(out, "\"node\"", "applies") >= 1);
	assert_int_equal(json_number(out, "\"backend_states\"", "active"), 2); /* web */
	assert_true(json_number(out, "\"verdicts\"", "tx") +
			    json_number(out, "\"verdicts\"", "redirect") >=
		    8);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 0);
	assert_non_null(strstr(out, "session_insert"));
	assert_non_null(strstr(out, "probation_evict"));
	assert_non_null(
		strstr(out, "vip 198.51.100.10:53/udp pinning full generation 1: 7 packets"));
	assert_non_null(strstr(out, "\nsessions: 3 entries (3 live) of 262144; probation: "));
	assert_non_null(strstr(out, "\n  backends: 1 active, 0 draining, 0 down, 0 removed\n"));
	assert_non_null(strstr(out, "\npackets by verdict: "));
	char want[64];
	snprintf(want, sizeof(want), "\ndaemon pid %d, started ", l->daemon);
	assert_non_null(strstr(out, want));

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
	/*
	 * --interval: rates per sample until interrupted (SIGINT ends it cleanly, exit 0).
	 * Without LeakSanitizer's exit check in the sanitizer build: once its tracer, attached
	 * to this SIGINT-ended process, waited while the process spun, for 9 minutes (every
	 * other `lb stats` run here is still leak-checked). -k: a hang fails, never stalls.
	 */
	assert_int_equal(
		fp_test_sh(out, sizeof(out),
			   "ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\" "
			   "ip netns exec %s timeout -k 10 --preserve-status -s INT 2.5 '%s' lb "
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

	/* The daemon's files, and an override file, before. */
	snprintf(path, sizeof(path), "%s/lb0.config", l->run);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/lb0.overrides", l->run);
	if (access(path, F_OK))
		assert_int_equal(write_text(path, ""), 0);
	assert_int_equal(LB(l, out, sizeof(out), "down --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 0);
	assert_non_null(strstr(out, "stopped"));
	if (strstr(out, "error"))
		fail_msg("the daemon's reply was lost: %s", out);
	assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
	l->daemon = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The daemon itself detached, asked on its control socket (not SIGTERM, which
	 * leaves the program: then this CLI would have cleaned up, and said so). */
	assert_true(file_contains(l->log, "down asked by pid"));
	assert_true(file_contains(l->log, "down: detached from lb0, pins removed"));
	assert_null(strstr(out, "exited leaving"));
	snprintf(path, sizeof(path), "%s/lb0", l->pins);
	assert_int_equal(access(path, F_OK), -1);
	for (int i = 0; i < 4; i++) {
		static const char *const files[] = { "pid", "config", "overrides", "ctl" };

		snprintf(path, sizeof(path), "%s/lb0.%s", l->run, files[i]);
		if (!access(path, F_OK))
			fail_msg("%s left by lb down", path);
	}
	assert_int_equal(fp_test_sh(out, sizeof(out), "ip -n %s link show dev lb0", l->lb_ns), 0);
	assert_null(strstr(out, "xdp"));
	/* Nothing left to stop. */
	assert_int_equal(LB(l, out, sizeof(out), "down --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 1);
}

/* ---- helpers of the restart, forwarding and concurrency tests ---- */

/* Moves the calling process (a forked child) into network namespace @ns. */
static int enter_netns(const char *ns)
{
	char path[128];
	int fd, err;

	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return err;
}

/* @n UDP flows from the client, source ports @sport .. @sport + n - 1, to the VIP: two
 * datagrams each. */
static void send_udp_flows(const struct lab *l, int port, int sport, int n)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		die_with_parent();
		int bad = enter_netns(l->cl_ns) ? 1 : 0;

		for (int i = 0; !bad && i < n; i++) {
			struct sockaddr_in src = { .sin_family = AF_INET,
						   .sin_port = htons((unsigned short)(sport + i)) };
			struct sockaddr_in dst = { .sin_family = AF_INET,
						   .sin_port = htons((unsigned short)port) };
			int one = 1, s = socket(AF_INET, SOCK_DGRAM, 0);

			inet_pton(AF_INET, "10.99.0.2", &src.sin_addr);
			inet_pton(AF_INET, "198.51.100.10", &dst.sin_addr);
			setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (s < 0 || bind(s, (struct sockaddr *)&src, sizeof(src)))
				bad = 1;
			/* Two: the second promotes the flow from probation to a session. */
			for (int k = 0; !bad && k < 2; k++)
				if (sendto(s, "hi", 2, 0, (struct sockaddr *)&dst, sizeof(dst)) !=
				    2)
					bad = 1;
			if (s >= 0)
				close(s);
		}
		_exit(bad);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * Watches the XDP program attached to lb0 from a child in the LB namespace, in a tight
 * loop (bpf_xdp_query, tens of microseconds each), until stopped.
 */
struct xdp_watch {
	pid_t pid;
	int stop_fd, result_fd;
};

struct xdp_watch_result {
	long polls, detached; /* queries, and those that found no program */
	__u32 first_id, last_id;
	long changes; /* times the attached id changed */
};

static __u32 query_xdp(int ifindex)
{
	struct bpf_xdp_query_opts q;

	memset(&q, 0, sizeof(q)); /* padding too: libbpf checks it */
	q.sz = sizeof(q);
	if (bpf_xdp_query(ifindex, 0, &q))
		return 0;
	return q.skb_prog_id ? q.skb_prog_id : q.drv_prog_id;
}

static void xdp_watch_start(const struct lab *l, struct xdp_watch *w)
{
	int stop[2], result[2];

	assert_int_equal(pipe(stop), 0);
	assert_int_equal(pipe(result), 0);
	w->pid = fork();
	assert_true(w->pid >= 0);
	if (w->pid == 0) {
		die_with_parent();
		struct xdp_watch_result r = {};
		struct pollfd pfd = { .fd = stop[0], .events = POLLIN };
		int ifindex;

		close(stop[1]);
		close(result[0]);
		if (enter_netns(l->lb_ns) || !(ifindex = (int)if_nametoindex("lb0")))
			_exit(1);
		r.first_id = r.last_id = query_xdp(ifindex);
		while (poll(&pfd, 1, 0) == 0) {
			__u32 id = query_xdp(ifindex);

			r.polls++;
			if (!id)
				r.detached++;
			if (id != r.last_id)
				r.changes++;
			r.last_id = id;
		}
		_exit(write(result[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(stop[0]);
	close(result[1]);
	w->stop_fd = stop[1];
	w->result_fd = result[0];
}

static void xdp_watch_stop(struct xdp_watch *w, struct xdp_watch_result *r)
{
	int status;

	assert_int_equal(write(w->stop_fd, "x", 1), 1);
	assert_int_equal(read(w->result_fd, r, sizeof(*r)), sizeof(*r));
	assert_int_equal(waitpid(w->pid, &status, 0), w->pid);
	close(w->stop_fd);
	close(w->result_fd);
}

/* The XDP program attached to lb0 now (0: none). */
static __u32 attached_prog(const struct lab *l)
{
	struct xdp_watch w;
	struct xdp_watch_result r;

	xdp_watch_start(l, &w);
	xdp_watch_stop(&w, &r);
	return r.last_id;
}

/*
 * A client flow that sends one UDP datagram every 200 us (paced: the veth backlog never
 * overflows) from 10.99.0.2:@sport to the VIP's @port until stopped; reports the count.
 */
struct udp_stream {
	pid_t pid;
	int stop_fd, result_fd;
};

static void udp_stream_start(const struct lab *l, int port, int sport, struct udp_stream *u)
{
	int stop[2], result[2];

	assert_int_equal(pipe(stop), 0);
	assert_int_equal(pipe(result), 0);
	u->pid = fork();
	assert_true(u->pid >= 0);
	if (u->pid == 0) {
		die_with_parent();
		struct sockaddr_in src = { .sin_family = AF_INET,
					   .sin_port = htons((unsigned short)sport) };
		struct sockaddr_in dst = { .sin_family = AF_INET,
					   .sin_port = htons((unsigned short)port) };
		struct pollfd pfd = { .fd = stop[0], .events = POLLIN };
		long sent = 0;
		int one = 1, s;

		close(stop[1]);
		close(result[0]);
		if (enter_netns(l->cl_ns))
			_exit(1);
		s = socket(AF_INET, SOCK_DGRAM, 0);
		inet_pton(AF_INET, "10.99.0.2", &src.sin_addr);
		inet_pton(AF_INET, "198.51.100.10", &dst.sin_addr);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (s < 0 || bind(s, (struct sockaddr *)&src, sizeof(src)))
			_exit(1);
		while (poll(&pfd, 1, 0) == 0) {
			if (sendto(s, "hi", 2, 0, (struct sockaddr *)&dst, sizeof(dst)) == 2)
				sent++;
			usleep(200);
		}
		_exit(write(result[1], &sent, sizeof(sent)) == sizeof(sent) ? 0 : 1);
	}
	close(stop[0]);
	close(result[1]);
	u->stop_fd = stop[1];
	u->result_fd = result[0];
}

static long udp_stream_stop(struct udp_stream *u)
{
	long sent = -1;
	int status;

	assert_int_equal(write(u->stop_fd, "x", 1), 1);
	assert_int_equal(read(u->result_fd, &sent, sizeof(sent)), sizeof(sent));
	assert_int_equal(waitpid(u->pid, &status, 0), u->pid);
	close(u->stop_fd);
	close(u->result_fd);
	return sent;
}

/* The pinned `info` map's entry (generation, magic ...). */
static int read_info(const struct lab *l, struct fp_info *info)
{
	char path[160];
	__u32 zero = 0;
	int fd, err;

	snprintf(path, sizeof(path), "%s/lb0/info", l->pins);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = bpf_map_lookup_elem(fd, &zero, info) ? -errno : 0;
	close(fd);
	return err;
}

/* max_entries of the pinned map lb0/NAME, or -errno. */
static long pinned_max_entries(const struct lab *l, const char *name)
{
	struct bpf_map_info m = {};
	__u32 len = sizeof(m);
	char path[160];
	long ret;
	int fd;

	snprintf(path, sizeof(path), "%s/lb0/%s", l->pins, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	ret = bpf_obj_get_info_by_fd(fd, &m, &len) ? -errno : (long)m.max_entries;
	close(fd);
	return ret;
}

static int write_info(const struct lab *l, const struct fp_info *info)
{
	char path[160];
	__u32 zero = 0;
	int fd, err;

	snprintf(path, sizeof(path), "%s/lb0/info", l->pins);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = bpf_map_update_elem(fd, &zero, info, BPF_ANY) ? -errno : 0;
	close(fd);
	return err;
}

/* Every session entry as `lb flows` prints it, without the idle time, sorted. */
static void flow_list(const struct lab *l, char *out, size_t cap)
{
	assert_int_equal(fp_test_sh(out, cap,
				    "ip netns exec %s '%s' lb flows --dev lb0 "
				    "--pin-root '%s' 2>/dev/null | sed 's/ idle=[0-9]*s$//' | sort",
				    l->lb_ns, l->flowpin, l->pins),
			 0);
}

/* `flowpin lb up` that must refuse and exit: bounded, so a daemon that starts instead
 * fails the test rather than hanging it (timeout's SIGTERM stops it cleanly). */
#define LB_UP_REFUSED(l, out, cap, fmt, ...)                                                    \
	fp_test_sh(out, cap, "ip netns exec %s timeout 20 '%s' lb up " fmt " 2>&1", (l)->lb_ns, \
		   (l)->flowpin, ##__VA_ARGS__)

/* Field @name ("CapEff", ...) of /proc/@pid/status, or ~0. */
static unsigned long long proc_caps(pid_t pid, const char *name)
{
	unsigned long long v = ~0ULL;
	char path[64], line[256], fmt[32];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	snprintf(fmt, sizeof(fmt), "%s: %%llx", name);
	f = fopen(path, "r");
	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, fmt, &v) == 1)
			break;
	fclose(f);
	return v;
}

/* What a running daemon keeps (docs/operator-lb.md "Capabilities"): CAP_NET_ADMIN. */
#define DAEMON_CAPS (1ULL << 12)

static void kill_daemon(struct lab *l)
{
	int status;

	kill(l->daemon, SIGKILL);
	assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
	l->daemon = 0;
}

static void wait_up(const struct lab *l)
{
	char out[8192];

	if (!wait_log(l->log, "up on lb0 (generic XDP)")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("daemon did not come up: %s", out);
	}
}

static void stop_daemon(struct lab *l)
{
	char out[4096];
	int status;

	assert_int_equal(LB(l, out, sizeof(out), "down --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 0);
	assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
	l->daemon = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * A node with no daemon, no pins, no program and forwarding on, whatever the test
 * before left (the tests below must each fail on their own).
 */
static void fresh_node(struct lab *l)
{
	kill_listener(l);
	if (l->daemon > 0) {
		kill(l->daemon, SIGTERM);
		for (int i = 0; i < 100 && waitpid(l->daemon, NULL, WNOHANG) == 0; i++)
			usleep(100000);
		kill(l->daemon, SIGKILL);
		waitpid(l->daemon, NULL, 0);
		l->daemon = 0;
	}
	fp_test_sh(NULL, 0,
		   "ip netns exec %1$s '%2$s' lb down --dev lb0 --pin-root '%3$s' --run-dir '%4$s' "
		   ">/dev/null 2>&1; ip -n %1$s link set dev lb0 xdp off; "
		   "ip netns exec %1$s sysctl -qw net.ipv4.conf.lb0.forwarding=1; "
		   "ip -n %5$s addr del 10.99.0.10/32 dev cl0 2>/dev/null",
		   l->lb_ns, l->flowpin, l->pins, l->run, l->cl_ns);
}

/*
 * `up` after the daemon was killed (kill -9) takes over the running
 * program and its pinned maps: the program is never detached (watched in a tight loop
 * through the restart), every datagram a client sends meanwhile is forwarded by it
 * (none passed to the stack, none lost), every session entry stays, `table`-mode flows keep their
 * backend, counters go on. Before the fix the restart detached and unpinned: a gap
 * with no program and an empty session table. The same build with the same settings
 * is adopted as it runs: the attached program never changes.
 */
static void restart_keeps_state(struct lab *l, int sig)
{
	static char before[16384], after[16384], again[16384], out[16384];
	struct xdp_watch w;
	struct xdp_watch_result r;
	struct udp_stream u;
	long long inserts, vip_packets;
	long sent;

	fresh_node(l);
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	send_udp_flows(l, 54, 41000, 12); /* `table` mode: round robin, then the session */
	send_udp_flows(l, 53, 42000, 4);  /* `full` */
	usleep(200000);
	flow_list(l, before, sizeof(before));
	for (int i = 0; i < 12; i++) {
		char needle[64];

		snprintf(needle, sizeof(needle), "src=10.99.0.2:%d dst=198.51.100.10:54",
			 41000 + i);
		assert_non_null(strstr(before, needle));
	}
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	inserts = json_number(out, NULL, "session_insert");
	assert_int_equal(inserts, 16);

	/* Traffic through the restart on one established `table`-mode flow: every datagram
	 * must be forwarded by the program (none passed to the stack, none lost). */
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	vip_packets = json_number(out, "\"vip\":\"198.51.100.10:54\"", "packets");
	udp_stream_start(l, 54, 41000, &u);
	xdp_watch_start(l, &w);
	if (sig == SIGKILL) {
		kill_daemon(l);
	} else {
		int status;

		/* What systemctl stop and restart send: the daemon leaves the program. */
		kill(l->daemon, sig);
		assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
		l->daemon = 0;
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		assert_true(file_contains(l->log, "exiting, leaving the program attached to lb0 "
						  "with its pins"));
		assert_true(file_contains(l->log, "`flowpin lb down` detaches"));
	}
	usleep(50000);
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	usleep(20000);
	xdp_watch_stop(&w, &r);
	sent = udp_stream_stop(&u);
	usleep(100000);
	print_message("# restart: %ld XDP queries, %ld without a program, id %u -> %u; %ld "
		      "datagrams sent meanwhile\n",
		      r.polls, r.detached, r.first_id, r.last_id, sent);
	assert_true(sent > 10);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, "\"vip\":\"198.51.100.10:54\"", "packets") - vip_packets,
			 sent);
	assert_true(r.polls > 100);
	assert_int_equal(r.detached, 0);
	assert_true(r.first_id != 0);
	assert_int_equal(r.last_id, r.first_id); /* the same program: adopted, not swapped */
	assert_int_equal(r.changes, 0);
	if (!file_contains(l->log, "with the same settings, adopted as it runs") ||
	    !file_contains(l->log, "never detached), maps kept (16 session entries)")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("no take-over line: %s", out);
	}

	flow_list(l, after, sizeof(after));
	assert_string_equal(after, before);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, NULL, "session_insert"), inserts); /* counters kept */
	/* The same flows again: session hits, each on its backend of before. */
	send_udp_flows(l, 54, 41000, 12);
	send_udp_flows(l, 53, 42000, 4);
	usleep(200000);
	flow_list(l, again, sizeof(again));
	assert_string_equal(again, before);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, NULL, "session_insert"), inserts);
	assert_true(json_number(out, NULL, "session_hit") >= 16);
}

static void test_restart_keeps_state(void **state)
{
	restart_keeps_state(lab_or_skip(state), SIGKILL);
}

/*
 * The same through SIGTERM (systemctl restart): the daemon exits 0 leaving the program
 * attached and its maps pinned, the next `up` adopts it with every session entry.
 * Before, SIGTERM detached and unpinned: the watch saw no program, the sessions went.
 */
static void test_sigterm_keeps_state(void **state)
{
	restart_keeps_state(lab_or_skip(state), SIGTERM);
}

/*
 * `lb down` after a daemon that is gone, killed (kill -9) or stopped by SIGTERM (which
 * leaves the program now): it detaches flowpin's program and removes the pins and the
 * daemon's files itself. Fails if `down` needed a live daemon.
 */
static void test_down_dead_daemon(void **state)
{
	struct lab *l = lab_or_skip(state);
	static const int sigs[] = { SIGKILL, SIGTERM };
	char out[4096], path[160];

	for (int k = 0; k < 2; k++) {
		int status;

		fresh_node(l);
		l->daemon = start_daemon_with(l, l->tbl);
		wait_up(l);
		kill(l->daemon, sigs[k]);
		assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
		l->daemon = 0;
		snprintf(path, sizeof(path), "%s/lb0/prog", l->pins);
		assert_int_equal(access(path, F_OK), 0);
		assert_int_equal(
			fp_test_sh(out, sizeof(out), "ip -n %s link show dev lb0", l->lb_ns), 0);
		assert_non_null(strstr(out, "xdp"));

		assert_int_equal(LB(l, out, sizeof(out),
				    "down --dev lb0 --pin-root '%s' --run-dir '%s'", l->pins,
				    l->run),
				 0);
		if (!strstr(out, "no daemon was running on lb0: detached flowpin's program"))
			fail_msg("signal %d: %s", sigs[k], out);
		snprintf(path, sizeof(path), "%s/lb0", l->pins);
		assert_int_equal(access(path, F_OK), -1);
		for (int i = 0; i < 4; i++) {
			static const char *const files[] = { "pid", "config", "overrides", "ctl" };

			snprintf(path, sizeof(path), "%s/lb0.%s", l->run, files[i]);
			if (!access(path, F_OK))
				fail_msg("signal %d: %s left by lb down", sigs[k], path);
		}
		assert_int_equal(
			fp_test_sh(out, sizeof(out), "ip -n %s link show dev lb0", l->lb_ns), 0);
		assert_null(strstr(out, "xdp"));
	}
}

/*
 * The take-over after kill -9 under the unit's capabilities only (CAP_BPF, CAP_PERFMON,
 * CAP_NET_ADMIN; no CAP_SYS_ADMIN), by a new build (flowpin-rebuilt), so the program
 * is swapped: the attached program is opened from its pin, not by id
 * (BPF_PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN). Before, this `up` refused ("the new
 * program could not be swapped in") and the unit needed CAP_SYS_ADMIN.
 */
static void test_restart_unit_caps(void **state)
{
	struct lab *l = lab_or_skip(state);
	static char before[16384], after[16384], out[16384];
	char path[64];
	unsigned long long bnd = ~0ULL;
	FILE *f;

	fresh_node(l);
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	send_udp_flows(l, 54, 43000, 6);
	send_udp_flows(l, 53, 44000, 3);
	usleep(200000);
	flow_list(l, before, sizeof(before));
	assert_non_null(strstr(before, "src=10.99.0.2:43005 dst=198.51.100.10:54"));
	kill_daemon(l);

	l->daemon = start_daemon_bin(l, l->rebuilt, l->tbl, NULL, true, NULL);
	if (!wait_log(l->log, "up on lb0 (generic XDP)")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("daemon with the unit's capabilities did not take over: %s", out);
	}
	/* It really runs without CAP_SYS_ADMIN (bit 21 of its bounding set). */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)l->daemon);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(out, sizeof(out), f))
		if (sscanf(out, "CapBnd: %llx", &bnd) == 1)
			break;
	fclose(f);
	assert_true(bnd != ~0ULL);
	assert_int_equal(bnd & (1ULL << 21), 0);
	/* After the take-over it keeps CAP_NET_ADMIN only (no CAP_SETPCAP here: the
	 * bounding set stays the unit's). */
	assert_int_equal(proc_caps(l->daemon, "CapEff"), DAEMON_CAPS);
	assert_int_equal(proc_caps(l->daemon, "CapPrm"), DAEMON_CAPS);
	assert_int_equal(proc_caps(l->daemon, "CapAmb"), 0);
	if (!file_contains(l->log, "upgraded the program on lb0") ||
	    !file_contains(l->log, "never detached, maps kept (9 session entries)")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("no upgrade line: %s", out);
	}
	flow_list(l, after, sizeof(after));
	assert_string_equal(after, before);
	stop_daemon(l);
}

/*
 * What `up` cannot take over without losing state or a gap it refuses, changing
 * nothing: another table_size, maps of another layout (magic), another XDP mode. The
 * program stays attached, the sessions stay; then a compatible `up` takes over.
 */
static void test_restart_refused(void **state)
{
	struct lab *l = lab_or_skip(state);
	static char before[16384], after[16384], out[16384];
	char other[160], text[2048];
	struct fp_info info;
	__u32 id;

	fresh_node(l);
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	send_udp_flows(l, 54, 44000, 6);
	usleep(200000);
	flow_list(l, before, sizeof(before));
	assert_non_null(strstr(before, "src=10.99.0.2:44005 dst=198.51.100.10:54"));
	kill_daemon(l);
	id = attached_prog(l);
	assert_true(id != 0);

	snprintf(other, sizeof(other), "%s/other-size.yaml", l->dir);
	table_config(text, sizeof(text));
	memcpy(strstr(text, "table_size: 307"), "table_size: 311", 15);
	assert_int_equal(write_text(other, text), 0);
	assert_int_equal(LB_UP_REFUSED(l, out, sizeof(out),
				       "--config '%s' --dev lb0 --xdp-mode generic --pin-root '%s' "
				       "--run-dir '%s'",
				       other, l->pins, l->run),
			 1);
	if (!strstr(out, "table_size: 311, the running program has 307") ||
	    !strstr(out, "Refused, nothing changed; the running program keeps forwarding") ||
	    !strstr(out, "`flowpin lb up --force` starts fresh"))
		fail_msg("unclear refusal: %s", out);
	assert_int_equal(attached_prog(l), id);

	/* Another session-table size, from the command line over the file: the same. */
	assert_int_equal(LB_UP_REFUSED(l, out, sizeof(out),
				       "--config '%s' --dev lb0 --xdp-mode generic --sessions 2048 "
				       "--pin-root '%s' --run-dir '%s'",
				       l->tbl, l->pins, l->run),
			 1);
	if (!strstr(out, "sessions.entries: 2048, the running program has 262144") ||
	    !strstr(out, "Refused, nothing changed; the running program keeps forwarding"))
		fail_msg("unclear refusal: %s", out);
	assert_int_equal(attached_prog(l), id);

	assert_int_equal(LB_UP_REFUSED(l, out, sizeof(out),
				       "--config '%s' --dev lb0 --xdp-mode native --pin-root '%s' "
				       "--run-dir '%s'",
				       l->tbl, l->pins, l->run),
			 1);
	if (!strstr(out, "it is attached in generic mode"))
		fail_msg("unclear refusal: %s", out);
	assert_int_equal(attached_prog(l), id);

	assert_int_equal(read_info(l, &info), 0);
	info.magic ^= 0xff;
	assert_int_equal(write_info(l, &info), 0);
	assert_int_equal(LB_UP_REFUSED(l, out, sizeof(out),
				       "--config '%s' --dev lb0 --xdp-mode generic --pin-root '%s' "
				       "--run-dir '%s'",
				       l->tbl, l->pins, l->run),
			 1);
	if (!strstr(out, "its maps have another layout (version") ||
	    !strstr(out, "`flowpin lb up --force` starts fresh"))
		fail_msg("unclear refusal: %s", out);
	assert_int_equal(attached_prog(l), id);
	info.magic ^= 0xff;
	assert_int_equal(write_info(l, &info), 0);

	flow_list(l, after, sizeof(after));
	assert_string_equal(after, before);

	/* Compatible: taken over. Then `down` detaches and unpins as always. */
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	assert_true(file_contains(l->log, "took over the running instance on lb0"));
	flow_list(l, after, sizeof(after));
	assert_string_equal(after, before);
	stop_daemon(l);
	assert_int_equal(attached_prog(l), 0);
	snprintf(other, sizeof(other), "%s/lb0", l->pins);
	assert_int_equal(access(other, F_OK), -1);
}

/* The pinned session table, mmapped (flowpin/maps.h struct fp_session_bucket). */
static struct fp_session_bucket *map_pinned_sessions(const struct lab *l, size_t *len,
						     __u32 *buckets)
{
	struct bpf_map_info m = {};
	__u32 mlen = sizeof(m);
	char path[160];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "%s/lb0/sessions", l->pins);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &m, &mlen), 0);
	assert_int_equal(m.value_size, sizeof(struct fp_session_bucket));
	*buckets = m.max_entries;
	*len = (size_t)m.max_entries * sizeof(struct fp_session_bucket);
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	assert_true(p != MAP_FAILED);
	return p;
}

/* Entries of the pinned session table, read directly: its occupied slots. */
static int pinned_sessions(const struct lab *l)
{
	struct fp_session_bucket *t;
	size_t len;
	__u32 buckets;
	int n = 0;

	t = map_pinned_sessions(l, &len, &buckets);
	for (__u32 b = 0; b < buckets; b++)
		for (int w = 0; w < FP_SESSION_WAYS && t[b].way[w].key.proto; w++)
			n++;
	munmap(t, len);
	return n;
}

/* The tag of the program attached to lb0, as `ip link` prints it. */
static void attached_tag(const struct lab *l, char *tag, size_t len)
{
	assert_int_equal(fp_test_sh(tag, len,
				    "ip -n %s -d link show dev lb0 | sed -n 's/.* tag "
				    "\\([0-9a-f]*\\).*/\\1/p' | head -1 | tr -d '\\n'",
				    l->lb_ns),
			 0);
	assert_int_equal(strlen(tag), 16);
}

/*
 * An upgrade: `up` of another build (flowpin-rebuilt: the same program with another
 * build id compiled in, so another tag) after kill -9 swaps its program in for the
 * running one in one atomic replace, under traffic: never detached (watched in a tight
 * loop), the attached id and tag change once, every datagram sent meanwhile forwarded,
 * every session entry kept and used afterwards by the new program (session hits, no
 * new entry, each flow on its backend of before). Then the same new build again is
 * adopted as it runs (no swap), and the old build again is a swap back.
 */
static void test_upgrade_swaps_program(void **state)
{
	struct lab *l = lab_or_skip(state);
	static char before[16384], after[16384], out[16384];
	char tag_old[32], tag_new[32], tag[32];
	struct xdp_watch w;
	struct xdp_watch_result r;
	struct udp_stream u;
	long long inserts, hits, vip_packets;
	long sent;

	fresh_node(l);
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	send_udp_flows(l, 54, 45000, 12); /* `table` mode: round robin, then the session */
	send_udp_flows(l, 53, 46000, 4);  /* `full` */
	usleep(200000);
	flow_list(l, before, sizeof(before));
	assert_non_null(strstr(before, "src=10.99.0.2:45011 dst=198.51.100.10:54"));
	attached_tag(l, tag_old, sizeof(tag_old));
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	inserts = json_number(out, NULL, "session_insert");
	assert_int_equal(inserts, 16);
	vip_packets = json_number(out, "\"vip\":\"198.51.100.10:54\"", "packets");

	udp_stream_start(l, 54, 45000, &u);
	xdp_watch_start(l, &w);
	kill_daemon(l);
	usleep(50000);
	l->daemon = start_daemon_bin(l, l->rebuilt, l->tbl, NULL, false, NULL);
	wait_up(l);
	usleep(20000);
	xdp_watch_stop(&w, &r);
	sent = udp_stream_stop(&u);
	usleep(100000);
	print_message("# upgrade: %ld XDP queries, %ld without a program, id %u -> %u; %ld "
		      "datagrams sent meanwhile\n",
		      r.polls, r.detached, r.first_id, r.last_id, sent);
	if (!file_contains(l->log, "upgraded the program on lb0") ||
	    !file_contains(l->log, "never detached, maps kept (16 session entries)")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("no upgrade line: %s", out);
	}
	assert_true(r.polls > 100);
	assert_int_equal(r.detached, 0);
	assert_true(r.first_id != 0 && r.last_id != 0);
	assert_true(r.first_id != r.last_id); /* the new build's program */
	assert_int_equal(r.changes, 1);
	attached_tag(l, tag_new, sizeof(tag_new));
	assert_string_not_equal(tag_new, tag_old);
	assert_true(sent > 10);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, "\"vip\":\"198.51.100.10:54\"", "packets") - vip_packets,
			 sent);
	flow_list(l, after, sizeof(after));
	assert_string_equal(after, before);
	/* The new program uses the entries: the same flows are session hits on their
	 * backends of before, and nothing is inserted. */
	hits = json_number(out, NULL, "session_hit");
	send_udp_flows(l, 54, 45000, 12);
	send_udp_flows(l, 53, 46000, 4);
	usleep(200000);
	flow_list(l, after, sizeof(after));
	assert_string_equal(after, before);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, NULL, "session_insert"), inserts);
	assert_true(json_number(out, NULL, "session_hit") >= hits + 16);

	/* The same new build again: adopted, the attached program stays. */
	kill_daemon(l);
	l->daemon = start_daemon_bin(l, l->rebuilt, l->tbl, NULL, false, NULL);
	wait_up(l);
	assert_true(file_contains(l->log, "adopted as it runs"));
	assert_int_equal(attached_prog(l), r.last_id);
	/* The old build: swapped back (a downgrade is an upgrade too). */
	kill_daemon(l);
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	assert_true(file_contains(l->log, "upgraded the program on lb0"));
	assert_true(attached_prog(l) != r.last_id);
	attached_tag(l, tag, sizeof(tag));
	assert_string_equal(tag, tag_old);
	flow_list(l, after, sizeof(after));
	assert_string_equal(after, before);
	stop_daemon(l);
}

/*
 * Maps of another layout (the `info` magic faked to another version): `up` refuses
 * without --force, naming both versions and what --force costs, and changes nothing;
 * `up --force` starts fresh in place: the program replaced (never detached), new maps
 * pinned (the old layout's extra pin removed), the dropped sessions counted, and the
 * node forwards and admits new flows with them.
 */
static void test_upgrade_layout_force(void **state)
{
	struct lab *l = lab_or_skip(state);
	static char before[16384], after[16384], out[16384];
	char path[160], needle[160];
	struct xdp_watch w;
	struct xdp_watch_result r;
	struct fp_info info;
	__u32 id;
	int fd;

	fresh_node(l);
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	send_udp_flows(l, 54, 47000, 6);
	usleep(200000);
	flow_list(l, before, sizeof(before));
	assert_non_null(strstr(before, "src=10.99.0.2:47005 dst=198.51.100.10:54"));
	kill_daemon(l);
	id = attached_prog(l);
	assert_true(id != 0);
	/* An older flowpin: another layout version, and a map this one does not have. */
	assert_int_equal(read_info(l, &info), 0);
	info.magic = FP_INFO_MAGIC - 1;
	assert_int_equal(write_info(l, &info), 0);
	snprintf(path, sizeof(path), "%s/lb0/info", l->pins);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "%s/lb0/old_map", l->pins);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);

	assert_int_equal(LB_UP_REFUSED(l, out, sizeof(out),
				       "--config '%s' --dev lb0 --xdp-mode generic --pin-root '%s' "
				       "--run-dir '%s'",
				       l->tbl, l->pins, l->run),
			 1);
	snprintf(needle, sizeof(needle),
		 "its maps have another layout (version %#x, this build's %#x", FP_INFO_MAGIC - 1,
		 FP_INFO_MAGIC);
	if (!strstr(out, needle) || !strstr(out, "Refused, nothing changed") ||
	    !strstr(out, "`flowpin lb up --force` starts fresh") ||
	    !strstr(out, "every session is lost"))
		fail_msg("unclear refusal: %s", out);
	assert_int_equal(attached_prog(l), id);
	assert_int_equal(pinned_sessions(l), 6); /* `lb flows` refuses the layout too */

	xdp_watch_start(l, &w);
	l->daemon = start_daemon_bin(l, l->flowpin, l->tbl, NULL, false, "--force");
	wait_up(l);
	usleep(20000);
	xdp_watch_stop(&w, &r);
	snprintf(needle, sizeof(needle),
		 "started fresh on lb0 (--force; its maps have another layout");
	if (!file_contains(l->log, needle) ||
	    !file_contains(l->log, "new maps pinned, 6 session entries dropped")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("no fresh-start line: %s", out);
	}
	assert_int_equal(r.detached, 0);
	assert_int_equal(r.first_id, id);
	assert_true(r.last_id != id);
	assert_int_equal(r.changes, 1);
	assert_int_equal(read_info(l, &info), 0);
	assert_int_equal(info.magic, FP_INFO_MAGIC);
	assert_int_equal(access(path, F_OK), -1); /* old_map: removed */
	flow_list(l, after, sizeof(after));
	assert_string_equal(after, "");
	/* The fresh maps work: new flows get entries. */
	send_udp_flows(l, 54, 47100, 3);
	usleep(200000);
	flow_list(l, after, sizeof(after));
	assert_non_null(strstr(after, "src=10.99.0.2:47102 dst=198.51.100.10:54"));
	stop_daemon(l);
	assert_int_equal(attached_prog(l), 0);
	snprintf(path, sizeof(path), "%s/lb0", l->pins);
	assert_int_equal(access(path, F_OK), -1);
}

/*
 * The two other ways state cannot be carried over. A pinned map of another shape under
 * the same layout version (a layout change whose magic was forgotten, faked by pinning
 * a hash of 8-byte values as vip_addrs): refused naming the map and both shapes, then
 * `--force` starts fresh. A config whose settings fixed at load differ (table_size):
 * `--force` starts fresh with the new setting, counting the sessions dropped.
 */
static void test_upgrade_force_shape_settings(void **state)
{
	struct lab *l = lab_or_skip(state);
	static char out[16384];
	char path[160], other[160], small[160], text[2048];
	struct fp_info info;
	__u32 id;
	int fd;

	fresh_node(l);
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	send_udp_flows(l, 54, 48000, 4);
	usleep(200000);
	kill_daemon(l);
	id = attached_prog(l);
	assert_true(id != 0);
	assert_int_equal(pinned_sessions(l), 4);
	snprintf(path, sizeof(path), "%s/lb0/vip_addrs", l->pins);
	assert_int_equal(unlink(path), 0);
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "vip_addrs", 16, 8, 64, NULL);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);

	assert_int_equal(LB_UP_REFUSED(l, out, sizeof(out),
				       "--config '%s' --dev lb0 --xdp-mode generic --pin-root '%s' "
				       "--run-dir '%s'",
				       l->tbl, l->pins, l->run),
			 1);
	if (!strstr(out, "pinned map vip_addrs is a hash of 16-byte keys and 8-byte values "
			 "(flags 0); this build's is a hash of 16-byte keys and 4-byte values") ||
	    !strstr(out, "its maps have another shape than this build's") ||
	    !strstr(out, "`flowpin lb up --force` starts fresh"))
		fail_msg("unclear refusal: %s", out);
	assert_int_equal(attached_prog(l), id);
	assert_int_equal(pinned_sessions(l), 4);

	l->daemon = start_daemon_bin(l, l->flowpin, l->tbl, NULL, false, "--force");
	wait_up(l);
	if (!file_contains(l->log, "started fresh on lb0 (--force; its maps have another shape") ||
	    !file_contains(l->log, "new maps pinned, 4 session entries dropped")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("no fresh-start line: %s", out);
	}
	assert_true(attached_prog(l) != id);
	assert_int_equal(pinned_sessions(l), 0);

	/* Another table_size: refused without --force (test_restart_refused), fresh with. */
	send_udp_flows(l, 54, 48100, 2);
	usleep(200000);
	kill_daemon(l);
	id = attached_prog(l);
	snprintf(other, sizeof(other), "%s/other-size.yaml", l->dir);
	table_config(text, sizeof(text));
	memcpy(strstr(text, "table_size: 307"), "table_size: 311", 15);
	assert_int_equal(write_text(other, text), 0);
	l->daemon = start_daemon_bin(l, l->flowpin, other, NULL, false, "--force");
	wait_up(l);
	if (!file_contains(l->log, "started fresh on lb0 (--force; --config changes settings "
				   "fixed at load (above))") ||
	    !file_contains(l->log, "new maps pinned, 2 session entries dropped")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("no fresh-start line: %s", out);
	}
	assert_true(attached_prog(l) != id);
	assert_int_equal(read_info(l, &info), 0);
	assert_int_equal(info.table_size, 311);

	/* The file's `sessions`: a table of 2048 and a rate of 9 with --force; a reload
	 * that would change either is refused, naming the line. */
	kill_daemon(l);
	snprintf(small, sizeof(small), "%s/small-sessions.yaml", l->dir);
	snprintf(text + strlen(text), sizeof(text) - strlen(text),
		 "\nsessions: {entries: 2048, new_flow_rate: 9}\n");
	assert_int_equal(write_text(small, text), 0);
	l->daemon = start_daemon_bin(l, l->flowpin, small, NULL, false, "--force");
	wait_up(l);
	assert_int_equal(read_info(l, &info), 0);
	assert_int_equal(info.session_entries, 2048);
	assert_int_equal(info.new_flow_rate, 9);
	assert_int_equal(pinned_max_entries(l, "sessions"), fp_session_buckets(2048));
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s'",
			    l->pins, l->run, other),
			 1);
	if (!strstr(out, "sessions.entries: 262144, the running program has 2048; changing it "
			 "needs a restart"))
		fail_msg("reload to another session-table size: %s", out);
	memcpy(strstr(text, "new_flow_rate: 9}"), "new_flow_rate: 8}", 17);
	assert_int_equal(write_text(small, text), 0);
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s'",
			    l->pins, l->run, small),
			 1);
	if (!strstr(out, "sessions.new_flow_rate: 8, the running program has 9; changing it "
			 "needs a restart of the daemon"))
		fail_msg("reload to another new-flow rate: %s", out);
	/* A new `up` takes the program over with the new rate, sessions kept. */
	kill_daemon(l);
	l->daemon = start_daemon_bin(l, l->flowpin, small, NULL, false, NULL);
	wait_up(l);
	assert_true(file_contains(l->log, "took over the running instance on lb0"));
	assert_int_equal(read_info(l, &info), 0);
	assert_int_equal(info.new_flow_rate, 8);
	assert_int_equal(info.session_entries, 2048);

	/* The command line over the file (2048, 8): a table of 4096 and a rate of 5. The
	 * daemon applies every file it re-reads (SIGHUP) with them; `lb reload --config`
	 * applies the file as written, so it refuses one that says otherwise. */
	kill_daemon(l);
	l->daemon = start_daemon_bin(l, l->flowpin, small, NULL, false,
				     "--force --sessions 4096 --new-flow-rate 5");
	wait_up(l);
	assert_int_equal(read_info(l, &info), 0);
	assert_int_equal(info.session_entries, 4096);
	assert_int_equal(info.new_flow_rate, 5);
	assert_int_equal(pinned_max_entries(l, "sessions"), fp_session_buckets(4096));
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s'",
			    l->pins, l->run, small),
			 1);
	if (!strstr(out, "sessions.entries: 2048, the running program has 4096"))
		fail_msg("reload --config against the command line's size: %s", out);
	assert_int_equal(LB(l, out, sizeof(out), "reload --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 0);
	assert_true(wait_log(l->log, "SIGHUP from pid"));
	assert_true(wait_log(l->log, "reload: applied"));
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, "\"sessions\"", "capacity"), 4096);
	stop_daemon(l);
}

/*
 * With forwarding off on the LB's device every packet is drop_fib;
 * `up` and every apply say so, naming the sysctl.
 */
static void test_forwarding_off_warns(void **state)
{
	struct lab *l = lab_or_skip(state);
	char out[16384];

	fresh_node(l);
	assert_int_equal(fp_test_sh(NULL, 0,
				    "ip netns exec %s sysctl -qw net.ipv4.conf.lb0.forwarding=0",
				    l->lb_ns),
			 0);
	l->daemon = start_daemon(l);
	wait_up(l);
	if (!file_contains(l->log, "net.ipv4.conf.lb0.forwarding is 0") ||
	    !file_contains(l->log, "sysctl -w net.ipv4.conf.lb0.forwarding=1")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("no forwarding warning: %s", out);
	}
	/* What it warns about: the packet is dropped. */
	send_udp_flows(l, 53, 43000, 1);
	usleep(100000);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_true(json_number(out, NULL, "drop_fib") >= 1);
	/* Forwarding on: no warning. */
	assert_int_equal(fp_test_sh(NULL, 0,
				    "ip netns exec %s sysctl -qw net.ipv4.conf.lb0.forwarding=1",
				    l->lb_ns),
			 0);
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s'",
			    l->pins, l->run, l->good),
			 0);
	assert_null(strstr(out, "forwarding is 0"));
	stop_daemon(l);
}

/* A fleet of two sites: this node (10.99.0.1) is site a's; backend 7 is site b's. */
static const char pops_config[] = "hash_key: 000102030405060708090a0b0c0d0e0f\n"
				  "table_size: 307\n"
				  "pops:\n"
				  "  - {name: a, lbs: [10.99.0.1]}\n"
				  "  - {name: b, lbs: [10.98.0.1]}\n"
				  "vips:\n"
				  "  - name: web\n"
				  "    address: 198.51.100.10\n"
				  "    port: 80\n"
				  "    protocol: tcp\n"
				  "    backends:\n"
				  "      - { id: 1, address: 10.99.0.10, pop: a }\n"
				  "      - { id: 7, address: 10.98.0.21, pop: b }\n"
				  "%s"
				  "allow_example_key: true\n";

/*
 * `lb up --pop`: required by a config with `pops`, refused by one without; the node's
 * tables hold its own site's backends only; `lb reload` applies every file as that site
 * and refuses another --pop, or a file without sites, changing nothing.
 */
static void test_pops(void **state)
{
	struct lab *l = lab_or_skip(state);
	char out[16384], text[2048], pops[160], pops2[160];
	int status;

	fresh_node(l);
	snprintf(pops, sizeof(pops), "%s/pops.yaml", l->dir);
	snprintf(pops2, sizeof(pops2), "%s/pops2.yaml", l->dir);
	snprintf(text, sizeof(text), pops_config, "");
	assert_int_equal(write_text(pops, text), 0);
	snprintf(text, sizeof(text), pops_config,
		 "      - { id: 2, address: 10.99.0.11, pop: a }\n");
	assert_int_equal(write_text(pops2, text), 0);

	/* No --pop: refused before anything is loaded. */
	l->daemon = start_daemon_with(l, pops);
	assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
	l->daemon = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	if (!file_contains(l->log, "pops.yaml:4: pops: the config is a fleet of sites (a, b): "
				   "--pop NAME is required")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("no --pop refusal: %s", out);
	}
	/* --pop a: up; the maps hold backend 1, and site b's 7 for its tickets. */
	l->daemon = start_daemon_bin(l, l->flowpin, pops, NULL, false, "--pop=a");
	wait_up(l);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_non_null(strstr(out, "\"address\":\"10.99.0.10\""));
	assert_non_null(strstr(out, "\"address\":\"10.98.0.21\""));
	/* Site b's backend is marked as such (site b: the config's second), ours is not. */
	assert_non_null(strstr(out, "\"address\":\"10.98.0.21\",\"state\":\"active\","
				    "\"packets\":0,\"remote_site\":2}"));
	assert_null(strstr(out, "\"address\":\"10.99.0.10\",\"state\":\"active\","
				"\"packets\":0,\"remote_site\""));
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s'", l->pins), 0);
	assert_non_null(strstr(out, "(site #2 of the config's pops)"));
	/* Another site or none: refused, generation 1 stays. */
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s' --pop b",
			    l->pins, l->run, pops2),
			 1);
	assert_non_null(strstr(out, "--pop b: the node on lb0 runs as site 'a'; a reload never "
				    "changes it"));
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s'",
			    l->pins, l->run, l->good),
			 1);
	assert_non_null(strstr(out, "good.yaml:1: pops: --pop a given, but the config has no "
				    "sites"));
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, "\"vip\":\"198.51.100.10:80\"", "generation"), 1);
	/* Same site, with or without --pop: applied as site a's. */
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s' --pop a",
			    l->pins, l->run, pops2),
			 0);
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	assert_int_equal(json_number(out, "\"vip\":\"198.51.100.10:80\"", "generation"), 2);
	assert_non_null(strstr(out, "\"address\":\"10.99.0.11\""));
	/* SIGHUP: the daemon re-reads pops2.yaml as site a's too. */
	assert_int_equal(LB(l, out, sizeof(out), "reload --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 0);
	assert_true(wait_log(l->log, "reload: applied"));
	stop_daemon(l);
}

static pid_t spawn_reload(const struct lab *l, const char *config, const char *log)
{
	pid_t pid;

	assert_int_equal(write_text(log, ""), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		die_with_parent();
		int fd = open(log, O_WRONLY | O_APPEND);

		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execlp("ip", "ip", "netns", "exec", l->lb_ns, l->flowpin, "lb", "reload", "--dev",
		       "lb0", "--pin-root", l->pins, "--run-dir", l->run, "--config", config,
		       (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The pinning of the VIP 198.51.100.10:80 in the maps: which of many/many_b runs. */
static int web_pinning_is_hash(const struct lab *l)
{
	char out[65536];
	const char *vip;

	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	vip = strstr(out, "\"vip\":\"198.51.100.10:80\"");
	assert_non_null(vip);
	if (!strncmp(strstr(vip, "\"pinning\":"), "\"pinning\":\"hash\"", 16))
		return 1;
	assert_int_equal(strncmp(strstr(vip, "\"pinning\":"), "\"pinning\":\"full\"", 16), 0);
	return 0;
}

/*
 * Two `lb reload --config` at once, on a daemon that runs many_b.yaml.
 * Reload A (many.yaml) is stopped (SIGSTOP) the moment it lets the apply lock go (the
 * test spins on flock(LOCK_NB) once A's generation is in the maps), and reload B
 * (many_b.yaml) runs meanwhile; then A goes on. Before the fix A unlocked before
 * recording its file: B applied and recorded, then A recorded its own, so the record
 * (and the daemon's SIGHUP) named many.yaml while many_b.yaml ran. Now A applies,
 * records and signals under one hold of the lock: stopped after it, A has nothing left
 * to write, and the record names the file that runs. Deterministic: A primes ~1900
 * backends between its unlock and its record before the fix, milliseconds.
 */
static void test_concurrent_reloads(void **state)
{
	struct lab *l = lab_or_skip(state);
	char log_a[160], log_b[160], record[PATH_MAX] = "", out[8192];
	struct fp_info info;
	__u32 g0;
	pid_t a, b;
	int status, b_done = 0, hash, lock_fd;
	FILE *f;

	/* A daemon whose program has the table size of many.yaml. */
	fresh_node(l);
	l->daemon = start_daemon_with(l, l->many_b);
	wait_up(l);
	snprintf(log_a, sizeof(log_a), "%s/reload-a.log", l->dir);
	snprintf(log_b, sizeof(log_b), "%s/reload-b.log", l->dir);
	assert_int_equal(read_info(l, &info), 0);
	g0 = info.generation;

	snprintf(out, sizeof(out), "%s/lb0", l->pins);
	lock_fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(lock_fd >= 0);
	a = spawn_reload(l, l->many, log_a);
	/* A's generation in the maps: A holds the apply lock. */
	for (time_t end = time(NULL) + 20; time(NULL) < end;)
		if (!read_info(l, &info) && info.generation != g0)
			break;
	assert_true(info.generation > g0);
	/* The moment A lets the lock go, stop it. */
	while (flock(lock_fd, LOCK_EX | LOCK_NB))
		assert_int_equal(errno, EWOULDBLOCK);
	assert_int_equal(kill(a, SIGSTOP), 0);
	flock(lock_fd, LOCK_UN);
	close(lock_fd);
	b = spawn_reload(l, l->many_b, log_b);
	for (int i = 0; i < 200 && !b_done; i++) {
		if (waitpid(b, &status, WNOHANG) == b)
			b_done = 1;
		else
			usleep(10000);
	}
	print_message("# reload B %s while reload A was stopped\n", b_done ? "finished" : "waited");
	assert_int_equal(kill(a, SIGCONT), 0);
	if (!b_done)
		assert_int_equal(waitpid(b, &status, 0), b);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(waitpid(a, &status, 0), a);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_false(file_contains(log_a, "was not told"));
	assert_false(file_contains(log_b, "was not told"));

	/* The record names the file whose generation runs. */
	snprintf(out, sizeof(out), "%s/lb0.config", l->run);
	f = fopen(out, "r");
	assert_non_null(f);
	assert_non_null(fgets(record, sizeof(record), f));
	fclose(f);
	hash = web_pinning_is_hash(l);
	assert_string_equal(record, hash ? l->many_b : l->many);
	/* And the daemon's SIGHUP re-reads that file: nothing changes. */
	assert_int_equal(write_text(l->log, ""), 0);
	assert_int_equal(LB(l, out, sizeof(out), "reload --dev lb0 --pin-root '%s' --run-dir '%s'",
			    l->pins, l->run),
			 0);
	assert_true(wait_log(l->log, "reload: applied"));
	assert_true(file_contains(l->log, hash ? l->many_b : l->many));
	assert_int_equal(web_pinning_is_hash(l), hash);
	/* No aside files left behind (the control socket is the daemon's). */
	assert_int_equal(fp_test_sh(out, sizeof(out), "ls '%s'", l->run), 0);
	assert_string_equal(out, "lb0.config\nlb0.ctl\nlb0.pid\n");
}

/* ---- run-time overrides and status (the control socket) ---- */

/* The backend entry's state in the maps (`lb stats --json`) of @addr in VIP @vip_ep. */
static void maps_state(const struct lab *l, const char *vip_ep, const char *addr, char *state,
		       size_t cap)
{
	static char out[65536];
	char needle[96];
	const char *v, *next, *b;

	state[0] = 0;
	assert_int_equal(LB(l, out, sizeof(out), "stats --dev lb0 --pin-root '%s' --json", l->pins),
			 0);
	snprintf(needle, sizeof(needle), "\"vip\":\"%s\"", vip_ep);
	v = strstr(out, needle);
	assert_non_null(v);
	next = strstr(v + 1, "\"vip\":");
	snprintf(needle, sizeof(needle), "\"address\":\"%s\",\"state\":\"", addr);
	b = strstr(v, needle);
	if (!b || (next && b > next))
		return;
	b += strlen(needle);
	snprintf(state, cap, "%.*s", (int)strcspn(b, "\""), b);
}

/* `lb status --json`, parsed. */
static json_object *status_json(const struct lab *l)
{
	static char out[65536];
	json_object *r;

	assert_int_equal(LB(l, out, sizeof(out), "status --dev lb0 --run-dir '%s' --json", l->run),
			 0);
	r = json_tokener_parse(out);
	if (!r)
		fail_msg("lb status --json: not JSON: %s", out);
	return r;
}

/* Field @name of backend @id of VIP @vip in a status reply, as a string ("" if none). */
static const char *status_field(json_object *st, const char *vip, int id, const char *name)
{
	json_object *vips, *v, *bs, *b, *f, *n;

	assert_true(json_object_object_get_ex(st, "vips", &vips));
	for (size_t i = 0; i < json_object_array_length(vips); i++) {
		v = json_object_array_get_idx(vips, i);
		if (!json_object_object_get_ex(v, "name", &n) ||
		    strcmp(json_object_get_string(n), vip))
			continue;
		if (id == 0) /* the VIP's own field */
			return json_object_object_get_ex(v, name, &f) ? json_object_get_string(f)
								      : "";
		assert_true(json_object_object_get_ex(v, "backends", &bs));
		for (size_t j = 0; j < json_object_array_length(bs); j++) {
			b = json_object_array_get_idx(bs, j);
			if (json_object_object_get_ex(b, "id", &n) && json_object_get_int(n) == id)
				return json_object_object_get_ex(b, name, &f)
					       ? json_object_get_string(f)
					       : "";
		}
	}
	return "";
}

/* Checks backend @id of @vip in `lb status`: override, effective; and the maps' state. */
static void expect_backend(const struct lab *l, const char *vip, const char *vip_ep, int id,
			   const char *addr, const char *override, const char *effective)
{
	json_object *st = status_json(l);
	char state[32];

	assert_string_equal(status_field(st, vip, id, "override"), override);
	assert_string_equal(status_field(st, vip, id, "effective"), effective);
	assert_string_equal(status_field(st, vip, id, "health"), "unchecked");
	json_object_put(st);
	maps_state(l, vip_ep, addr, state, sizeof(state));
	assert_string_equal(state, effective);
}

/* expect_backend() for VIP web with health checked: status and the maps' entry. */
static void expect_backend_health(const struct lab *l, int id, const char *addr,
				  const char *override, const char *effective)
{
	json_object *st = status_json(l);
	char state[32];

	assert_string_equal(status_field(st, "web", id, "override"), override);
	assert_string_equal(status_field(st, "web", id, "effective"), effective);
	json_object_put(st);
	maps_state(l, "198.51.100.10:80", addr, state, sizeof(state));
	assert_string_equal(state, effective);
}

/* Sends @len bytes to the control socket as they are; the reply into @out. */
static int ctl_raw(const struct lab *l, const char *bytes, size_t len, char *out, size_t cap)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	if (fd < 0)
		return -errno;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/lb0.ctl", l->run);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		close(fd);
		return -errno;
	}
	if (write(fd, bytes, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	while (got + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 5000) <= 0)
			break;
		n = read(fd, out + got, cap - got - 1);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(out, '\n', got))
			break;
	}
	out[got] = 0;
	close(fd);
	return 0;
}

/*
 * flowpin lb status, drain, undrain, disable end to end: each override a new generation
 * (status and the maps' backend entries follow, the log names who asked), by id or by
 * address, on one VIP or every VIP that has the backend; bad requests (unknown backend
 * or VIP, garbage, an oversized line, unknown commands) answered with an error and
 * nothing changed; overrides kept over kill -9 and the take-over (the stale socket
 * replaced), dropped with a log line when a reload removes their backend, gone after
 * `lb down`.
 */
static void test_runtime_overrides(void **state)
{
	struct lab *l = lab_or_skip(state);
	static char out[65536], before[65536], after[65536], big[8192];
	char path[160];
	json_object *st;
	struct stat sb;

	fresh_node(l);
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	/* Started as root with every capability: it keeps CAP_NET_ADMIN alone, in every
	 * set (and the reloads, overrides and stop below still work). */
	assert_int_equal(proc_caps(l->daemon, "CapEff"), DAEMON_CAPS);
	assert_int_equal(proc_caps(l->daemon, "CapPrm"), DAEMON_CAPS);
	assert_int_equal(proc_caps(l->daemon, "CapInh"), 0);
	assert_int_equal(proc_caps(l->daemon, "CapBnd"), DAEMON_CAPS);
	assert_int_equal(proc_caps(l->daemon, "CapAmb"), 0);

	/* The socket: owner only. */
	snprintf(path, sizeof(path), "%s/lb0.ctl", l->run);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);

	/* Status: every VIP and backend, nothing overridden, health unchecked. */
	assert_int_equal(LB(l, out, sizeof(out), "status --dev lb0 --run-dir '%s'", l->run), 0);
	assert_non_null(strstr(out, "vip web 198.51.100.10:80/tcp mode full generation 1"));
	assert_non_null(strstr(out, "vip tbl 198.51.100.10:54/udp mode table generation 1"));
	st = status_json(l);
	assert_string_equal(status_field(st, "web", 0, "generation"), "1");
	assert_string_equal(status_field(st, "web", 2, "address"), "10.99.0.11");
	assert_string_equal(status_field(st, "web", 2, "config"), "active");
	json_object_put(st);
	expect_backend(l, "web", "198.51.100.10:80", 2, "10.99.0.11", "none", "active");

	/* drain by id on one VIP: a new generation, the maps follow, the log names the pid. */
	assert_int_equal(
		LB(l, out, sizeof(out), "drain 2 --vip web --dev lb0 --run-dir '%s'", l->run), 0);
	assert_non_null(strstr(out, "VIP web backend 2 (10.99.0.11): override drain"));
	expect_backend(l, "web", "198.51.100.10:80", 2, "10.99.0.11", "drain", "draining");
	st = status_json(l);
	assert_string_equal(status_field(st, "web", 0, "generation"), "2");
	assert_string_equal(status_field(st, "tbl", 2, "override"), "none"); /* --vip web only */
	json_object_put(st);
	assert_true(wait_log(l->log, "drain backend 2 (10.99.0.11) of VIP web: asked by pid"));
	assert_true(wait_log(l->log, "drain (pid "));

	/* By address, every VIP that has it. */
	assert_int_equal(
		LB(l, out, sizeof(out), "drain --dev lb0 --run-dir '%s' 10.99.0.10", l->run), 0);
	assert_non_null(strstr(out, "VIP web backend 1 (10.99.0.10): override drain"));
	assert_non_null(strstr(out, "VIP dns backend 1 (10.99.0.10): override drain"));
	assert_non_null(strstr(out, "VIP tbl backend 1 (10.99.0.10): override drain"));
	expect_backend(l, "tbl", "198.51.100.10:54", 1, "10.99.0.10", "drain", "draining");
	assert_int_equal(
		LB(l, out, sizeof(out), "disable 3 --vip tbl --dev lb0 --run-dir '%s'", l->run), 0);
	expect_backend(l, "tbl", "198.51.100.10:54", 3, "10.99.0.12", "disable", "down");
	assert_int_equal(
		LB(l, out, sizeof(out), "undrain 1 --vip dns --dev lb0 --run-dir '%s'", l->run), 0);
	expect_backend(l, "dns", "198.51.100.10:53", 1, "10.99.0.10", "none", "active");

	/* Bad requests: an error each, nothing changed. */
	assert_int_equal(
		LB(l, before, sizeof(before), "status --dev lb0 --run-dir '%s' --json", l->run), 0);
	assert_int_equal(
		LB(l, out, sizeof(out), "drain 9 --vip web --dev lb0 --run-dir '%s'", l->run), 1);
	assert_non_null(strstr(out, "VIP web has no backend 9: nothing changed"));
	assert_int_equal(
		LB(l, out, sizeof(out), "drain 1 --vip nope --dev lb0 --run-dir '%s'", l->run), 1);
	assert_non_null(strstr(out, "no VIP named 'nope'"));
	assert_int_equal(
		LB(l, out, sizeof(out), "disable 10.1.2.3 --dev lb0 --run-dir '%s'", l->run), 1);
	assert_non_null(strstr(out, "no VIP has a backend 10.1.2.3"));
	assert_int_equal(LB(l, out, sizeof(out), "drain 0x1 --dev lb0 --run-dir '%s'", l->run), 1);
	assert_non_null(strstr(out, "an id (1..4095) or an address"));
	assert_int_equal(LB(l, out, sizeof(out), "drain --dev lb0 --run-dir '%s'", l->run), 2);
	assert_int_equal(ctl_raw(l, "hello\n", 6, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "{\"ok\":false,\"error\":\"not a JSON object"));
	assert_int_equal(ctl_raw(l, "[1,2]\n", 6, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"ok\":false"));
	/* The daemon acts on all of a request or none of it. */
	assert_int_equal(ctl_raw(l, "{\"cmd\":\"status\"}\0x\n", 19, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "not a JSON object (a NUL byte)"));
	assert_int_equal(ctl_raw(l, "{\"cmd\":\"status\"} {\"cmd\":\"x\"}\n", 29, out, sizeof(out)),
			 0);
	assert_non_null(strstr(out, "not a JSON object (unexpected character)"));
	assert_int_equal(ctl_raw(l, "{\"cmd\":\"st\xff\"}\n", 14, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "not a JSON object (invalid utf-8 string)"));
	assert_int_equal(
		ctl_raw(l, "{\"cmd\":\"status\",\"x\":[[[[[[1]]]]]]}\n", 35, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "not a JSON object (nesting too deep)"));
	assert_int_equal(ctl_raw(l, "{\"cmd\":\"status\"}\r\n", 18, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"ok\":true"));
	/* Out of range or not an integer: refused before anything looks at BGP. */
	assert_int_equal(ctl_raw(l,
				 "{\"cmd\":\"maintenance\",\"on\":true,"
				 "\"deadline_ms\":9223372036854775807}\n",
				 66, out, sizeof(out)),
			 0);
	assert_non_null(strstr(out, "maintenance: \\\"deadline_ms\\\": an integer 0.."));
	assert_int_equal(ctl_raw(l, "{\"cmd\":\"maintenance\",\"on\":true,\"deadline_ms\":1.5}\n",
				 50, out, sizeof(out)),
			 0);
	assert_non_null(strstr(out, "maintenance: \\\"deadline_ms\\\": an integer 0.."));
	assert_int_equal(ctl_raw(l, "{\"cmd\":\"maintenance\",\"on\":true,\"until_flows\":-5}\n",
				 49, out, sizeof(out)),
			 0);
	assert_non_null(strstr(out, "maintenance: \\\"until_flows\\\": an integer >= 0"));
	assert_int_equal(ctl_raw(l, "{\"cmd\":\"reboot\"}\n", 17, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "unknown cmd 'reboot'"));
	assert_int_equal(ctl_raw(l, "{\"cmd\":\"drain\",\"backend\":1}\n", 28, out, sizeof(out)),
			 0);
	assert_non_null(strstr(out, "drain: no \\\"backend\\\" string"));
	memset(big, 'x', sizeof(big));
	assert_int_equal(ctl_raw(l, big, sizeof(big), out, sizeof(out)), 0);
	assert_non_null(strstr(out, "request longer than 4096 bytes"));
	big[5000] = '\n';
	assert_int_equal(ctl_raw(l, big, 5001, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "request longer than 4096 bytes"));
	assert_int_equal(
		LB(l, after, sizeof(after), "status --dev lb0 --run-dir '%s' --json", l->run), 0);
	assert_string_equal(after, before);

	/* kill -9 and take-over: the overrides come back from the file. */
	snprintf(path, sizeof(path), "%s/lb0.overrides", l->run);
	assert_true(file_contains(path, "web 2 drain\n"));
	assert_true(file_contains(path, "tbl 3 disable\n"));
	kill_daemon(l);
	/* A corrupt overrides file: refused whole, the file named by line, nothing started
	 * (skipping the line would undrain a backend). Then repaired. */
	{
		char saved[512] = "", bad[600];
		FILE *f = fopen(path, "r");
		size_t n;

		assert_non_null(f);
		n = fread(saved, 1, sizeof(saved) - 1, f);
		fclose(f);
		saved[n] = 0;
		char where[64];
		int lines = 0;
		__u32 prog = attached_prog(l);

		for (const char *c = saved; *c; c++)
			lines += *c == '\n';
		snprintf(bad, sizeof(bad), "%sweb 2 drian\n", saved);
		snprintf(where, sizeof(where), "lb0.overrides:%d: expected", lines + 1);
		assert_int_equal(write_text(path, bad), 0);
		assert_int_equal(LB_UP_REFUSED(l, out, sizeof(out),
					       "--config '%s' --dev lb0 --xdp-mode generic "
					       "--pin-root '%s' --run-dir '%s'",
					       l->tbl, l->pins, l->run),
				 1);
		assert_non_null(strstr(out, where));
		assert_non_null(strstr(out, "refused to start"));
		assert_int_equal(attached_prog(l), prog); /* the node untouched */
		assert_true(file_contains(path, "web 2 drian\n"));
		assert_int_equal(write_text(path, saved), 0);
	}
	l->daemon = start_daemon_with(l, l->tbl);
	wait_up(l);
	assert_true(file_contains(l->log, "lb0.ctl: left by a daemon that is gone: replaced"));
	assert_true(file_contains(l->log, "4 run-time override(s) kept from the previous daemon"));
	expect_backend(l, "web", "198.51.100.10:80", 2, "10.99.0.11", "drain", "draining");
	expect_backend(l, "tbl", "198.51.100.10:54", 3, "10.99.0.12", "disable", "down");
	expect_backend(l, "dns", "198.51.100.10:53", 1, "10.99.0.10", "none", "active");

	/* A reload without the tbl VIP drops its overrides, with a line each. */
	assert_int_equal(LB(l, out, sizeof(out),
			    "reload --dev lb0 --pin-root '%s' --run-dir '%s' --config '%s'",
			    l->pins, l->run, l->good),
			 0);
	assert_true(wait_log(l->log, "override disable of backend 3 of VIP tbl dropped"));
	assert_true(wait_log(l->log, "override drain of backend 1 of VIP tbl dropped"));
	assert_false(file_contains(path, "tbl "));
	/* lb reload --config applied with the overrides in effect: still draining. */
	expect_backend(l, "web", "198.51.100.10:80", 2, "10.99.0.11", "drain", "draining");
	assert_int_equal(
		LB(l, out, sizeof(out), "undrain 10.99.0.11 --dev lb0 --run-dir '%s'", l->run), 0);
	expect_backend(l, "web", "198.51.100.10:80", 2, "10.99.0.11", "none", "active");

	/* lb down: the overrides and the socket go; the next up starts from the file. */
	stop_daemon(l);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/lb0.ctl", l->run);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(LB(l, out, sizeof(out), "status --dev lb0 --run-dir '%s'", l->run), 1);
	assert_non_null(strstr(out, "no flowpin lb daemon answers"));
}

/* Polls `lb status` until field @name of backend @id of @vip is @want (10 s at most). */
static bool wait_status(const struct lab *l, const char *vip, int id, const char *name,
			const char *want)
{
	for (int i = 0; i < 100; i++) {
		json_object *st = status_json(l);
		bool ok = !strcmp(status_field(st, vip, id, name), want);

		json_object_put(st);
		if (ok)
			return true;
		usleep(100000);
	}
	return false;
}

/* A TCP listener on @addr:@port inside @ns until killed (a backend that answers);
 * returns once it listens. */
static pid_t listen_in(const char *ns, const char *addr, int port)
{
	int ready[2];
	char c = 0;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		die_with_parent();
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		int s, one = 1;

		close(ready[0]);
		inet_pton(AF_INET, addr, &sa.sin_addr);
		if (enter_netns(ns))
			_exit(1);
		s = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 64))
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		close(ready[1]);
		for (;;) {
			int c = accept(s, NULL, NULL);

			if (c >= 0)
				close(c);
		}
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1); /* EOF: the child could not listen */
	close(ready[0]);
	return pid;
}

/*
 * Health in the effective state, end to end: a TCP check (200 ms, fall 2, rise 1) of
 * two backends, one answering (a listener in the client namespace on its address), one
 * not. The silent one goes down and drains (status and the maps' entry), the other
 * stays active; with the answering one drained by the operator, health would leave the
 * VIP no active backend: fail-open (health ignored for the VIP, logged), and back when
 * the override goes; with both down by health, fail-open again. The probes run after
 * the capability drop.
 */
static void test_health_effective(void **state)
{
	struct lab *l = lab_or_skip(state);
	static char out[16384];
	char path[160], state_buf[32];
	json_object *st;
	fresh_node(l);
	snprintf(path, sizeof(path), "%s/health.yaml", l->dir);
	assert_int_equal(write_text(path, "hash_key: 000102030405060708090a0b0c0d0e0f\n"
					  "table_size: 307\n"
					  "health:\n"
					  "  interval: 200ms\n"
					  "  timeout: 100ms\n"
					  "  rise: 1\n"
					  "  fall: 2\n"
					  "  checks: [{kind: tcp, port: 8080}]\n"
					  "vips:\n"
					  "  - name: web\n"
					  "    address: 198.51.100.10\n"
					  "    port: 80\n"
					  "    protocol: tcp\n"
					  "    backends:\n"
					  "      - { id: 1, address: 10.99.0.10 }\n"
					  "      - { id: 2, address: 10.99.0.11 }\n"
					  "allow_example_key: true\n"),
			 0);
	assert_int_equal(fp_test_sh(NULL, 0, "ip -n %s addr add 10.99.0.10/32 dev cl0", l->cl_ns),
			 0);
	l->listener = listen_in(l->cl_ns, "10.99.0.10", 8080);
	l->daemon = start_daemon_with(l, path);
	wait_up(l);
	assert_int_equal(proc_caps(l->daemon, "CapEff"), DAEMON_CAPS);

	if (!wait_status(l, "web", 2, "health", "down") ||
	    !wait_status(l, "web", 1, "health", "up")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("health did not settle: %s", out);
	}
	assert_true(wait_status(l, "web", 2, "effective", "draining"));
	st = status_json(l);
	assert_string_equal(status_field(st, "web", 1, "effective"), "active");
	assert_string_equal(status_field(st, "web", 2, "config"), "active");
	assert_string_equal(status_field(st, "web", 2, "override"), "none");
	assert_true(strlen(status_field(st, "web", 2, "health_since")) == 20); /* ISO UTC */
	assert_true(strlen(status_field(st, "web", 2, "health_reason")) > 0);
	assert_string_equal(status_field(st, "web", 0, "health_ignored"), "false");
	json_object_put(st);
	maps_state(l, "198.51.100.10:80", "10.99.0.11", state_buf, sizeof(state_buf));
	assert_string_equal(state_buf, "draining");
	maps_state(l, "198.51.100.10:80", "10.99.0.10", state_buf, sizeof(state_buf));
	assert_string_equal(state_buf, "active");
	assert_true(wait_log(l->log, "health: applied"));

	/* The healthy one drained by the operator: health alone would empty the VIP. */
	assert_int_equal(
		LB(l, out, sizeof(out), "drain 1 --vip web --dev lb0 --run-dir '%s'", l->run), 0);
	assert_true(wait_status(l, "web", 0, "health_ignored", "true"));
	expect_backend_health(l, 1, "10.99.0.10", "drain", "draining");
	expect_backend_health(l, 2, "10.99.0.11", "none", "active");
	assert_true(wait_log(l->log, "VIP web: health would leave it no active backend"));
	assert_int_equal(
		LB(l, out, sizeof(out), "undrain 1 --vip web --dev lb0 --run-dir '%s'", l->run), 0);
	assert_true(wait_status(l, "web", 0, "health_ignored", "false"));
	expect_backend_health(l, 1, "10.99.0.10", "none", "active");
	expect_backend_health(l, 2, "10.99.0.11", "none", "draining");
	assert_true(wait_log(l->log, "VIP web: health followed again"));

	/* Both down by health: fail-open, both take flows. */
	kill_listener(l);
	assert_true(wait_status(l, "web", 1, "health", "down"));
	assert_true(wait_status(l, "web", 0, "health_ignored", "true"));
	expect_backend_health(l, 1, "10.99.0.10", "none", "active");
	expect_backend_health(l, 2, "10.99.0.11", "none", "active");

	stop_daemon(l);
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
		"lb up --dev lo --config x --metrics 127.0.0.1",
		"lb up --dev lo --config x --metrics 127.0.0.1:0",
		"lb up --dev lo --config x --metrics localhost:9100",
		"lb up --dev lo --config x --metrics ::1:9100",
		"lb stats --dev lo --metrics 127.0.0.1:9100",
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

/* `curl` of the daemon's /metrics from inside the LB namespace into @out. */
static int scrape(const struct lab *l, int port, char *out, size_t cap)
{
	return fp_test_sh(out, cap,
			  "ip netns exec %s curl -sS --max-time 5 -f http://127.0.0.1:%d/metrics",
			  l->lb_ns, port);
}

static double prom(const char *text, const char *series)
{
	double v;

	if (fp_test_prom_value(text, series, &v))
		fail_msg("no sample %s in:\n%s", series, text);
	return v;
}

/*
 * `lb up --metrics 127.0.0.1:PORT`: curl scrapes /metrics (a fresh snapshot each time),
 * the exposition parses (fp_test_prom_check), its counters are the packets sent and
 * agree with `lb stats --json` read after it (nothing else sends meanwhile); another
 * path is a 404; the endpoint goes away with the daemon; a port in use is refused at
 * start, with the program detached again.
 */
static void test_metrics(void **state)
{
	static char text[1 << 18], json[1 << 16];
	struct lab *l = lab_or_skip(state);
	const int port = 9464;
	char addr[32], out[4096], err[512], series[256], layout[8];
	time_t began = time(NULL);
	int families, status;
	double applies;

	fresh_node(l);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	l->daemon = start_daemon_metrics(l, l->good, addr);
	wait_up(l);
	assert_int_equal(scrape(l, port, text, sizeof(text)), 0);
	families = fp_test_prom_check(text, err, sizeof(err));
	if (families < 0)
		fail_msg("%s", err);
	assert_true(families >= 20);
	assert_true(prom(text, "flowpin_vip_packets_total{vip=\"198.51.100.10:53/udp\"}") == 0);
	assert_true(prom(text, "flowpin_vips") == 2);
	assert_true(prom(text, "flowpin_backends") == 3);
	assert_true(prom(text, "flowpin_vip_backends{vip=\"198.51.100.10:80/tcp\","
			       "state=\"active\"}") == 2);
	assert_true(prom(text, "flowpin_vip_backends{vip=\"198.51.100.10:53/udp\","
			       "state=\"down\"}") == 0);
	assert_true(prom(text, "flowpin_lb_session_entries{state=\"live\"}") == 0);
	assert_true(prom(text, "flowpin_lb_session_entries_limit") == FP_LB_DEFAULT_SESSIONS);
	assert_true(prom(text, "flowpin_lb_probation_slots") >= FP_LB_MIN_PROBATION);
	snprintf(series, sizeof(series),
		 "flowpin_build_info{version=\"%s\",commit=\"%s\",layout=\"%s\"}",
		 fp_build_version(), fp_build_commit(), fp_layout_name(FP_INFO_MAGIC, layout));
	assert_true(prom(text, series) == 1);
	/* The daemon's start: after this test began, not in the future. */
	assert_true(prom(text, "flowpin_start_time_seconds") >= (double)began - 1);
	assert_true(prom(text, "flowpin_start_time_seconds") <= (double)time(NULL) + 1);
	applies = prom(text, "flowpin_config_applies_total");
	assert_true(applies >= 1); /* the start's */

	send_udp_flows(l, 53, 41000, 3); /* three flows, two datagrams each */
	usleep(200000);
	assert_int_equal(scrape(l, port, text, sizeof(text)), 0);
	if (fp_test_prom_check(text, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(
		LB(l, json, sizeof(json), "stats --dev lb0 --pin-root '%s' --json", l->pins), 0);
	assert_true(prom(text, "flowpin_vip_packets_total{vip=\"198.51.100.10:53/udp\"}") == 6);
	assert_true(prom(text, "flowpin_vip_bytes_total{vip=\"198.51.100.10:53/udp\"}") > 6 * 2);
	assert_true(prom(text, "flowpin_backend_packets_total{vip=\"198.51.100.10:53/udp\","
			       "backend=\"1\",address=\"10.99.0.10\"}") == 6);
	assert_true(prom(text, "flowpin_backend_entry_state{vip=\"198.51.100.10:53/udp\","
			       "backend=\"1\",address=\"10.99.0.10\",state=\"active\"}") == 1);
	assert_true(prom(text, "flowpin_vip_generation{vip=\"198.51.100.10:53/udp\","
			       "pinning=\"full\"}") == 1);
	assert_true(prom(text, "flowpin_lb_session_insert_total") == 3);
	assert_true(prom(text, "flowpin_config_apply_errors_total") == 0);
	/* The three flows, promoted by their second datagram: three live entries. */
	assert_true(prom(text, "flowpin_lb_session_entries{state=\"live\"}") == 3);
	assert_true(prom(text, "flowpin_lb_session_entries{state=\"expired\"}") == 0);
	assert_true(json_number(json, "\"sessions\"", "entries") == 3);
	assert_true(json_number(json, "\"sessions\"", "live") == 3);
	assert_true(prom(text, "flowpin_lb_probation_marks") ==
		    (double)json_number(json, "\"probation\"", "live"));
	assert_true(prom(text, "flowpin_config_applies_total") ==
		    (double)json_number(json, "\"node\"", "applies"));
	/* Every counter as `lb stats` reads it (the same maps), the decision counters as
	 * flowpin_lb_packets_total{verdict,reason}. A stray packet (ICMP, neighbour
	 * discovery) may land between the two reads: then both are read again. */
	for (int attempt = 0;; attempt++) {
		int differ = -1;

		for (int i = 0; i < FP_CNT__MAX && differ < 0; i++) {
			if (fp_counter_verdict(i))
				snprintf(series, sizeof(series),
					 "flowpin_lb_packets_total{verdict=\"%s\",reason=\"%s\"}",
					 fp_counter_verdict(i), fp_counter_names[i]);
			else
				snprintf(series, sizeof(series), "flowpin_lb_%s_total",
					 fp_counter_names[i]);
			if (prom(text, series) !=
			    (double)json_number(json, NULL, fp_counter_names[i]))
				differ = i;
		}
		if (differ < 0)
			break;
		if (attempt == 3)
			fail_msg("%s: %.0f, lb stats says %lld", series, prom(text, series),
				 json_number(json, NULL, fp_counter_names[differ]));
		usleep(200000);
		assert_int_equal(scrape(l, port, text, sizeof(text)), 0);
		assert_int_equal(LB(l, json, sizeof(json), "stats --dev lb0 --pin-root '%s' --json",
				    l->pins),
				 0);
	}
	assert_true(prom(text, "flowpin_vip_packets_total{vip=\"198.51.100.10:53/udp\"}") ==
		    (double)json_number(json, "\"vip\":\"198.51.100.10:53\"", "packets"));
	/* A bad SIGHUP apply shows up as an apply error. */
	assert_int_equal(fp_test_sh(NULL, 0, "cp '%s' '%s.keep' && cp '%s' '%s'", l->good, l->good,
				    l->bad, l->good),
			 0);
	kill(l->daemon, SIGHUP);
	assert_true(wait_log(l->log, "refused"));
	assert_int_equal(fp_test_sh(NULL, 0, "mv '%s.keep' '%s'", l->good, l->good), 0);
	assert_int_equal(scrape(l, port, text, sizeof(text)), 0);
	assert_true(prom(text, "flowpin_config_applies_total") == applies + 1);
	assert_true(prom(text, "flowpin_config_apply_errors_total") == 1);
	/* Only /metrics. */
	assert_int_equal(fp_test_sh(out, sizeof(out),
				    "ip netns exec %s curl -s -o /dev/null -w '%%{http_code}' "
				    "http://127.0.0.1:%d/",
				    l->lb_ns, port),
			 0);
	assert_string_equal(out, "404");

	stop_daemon(l);
	assert_true(scrape(l, port, text, sizeof(text)) != 0); /* endpoint gone */

	/* Port in use: refused at start, exit 1, nothing left attached. */
	pid_t holder = fork();

	assert_true(holder >= 0);
	if (holder == 0) {
		die_with_parent();
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		int s, one = 1;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (enter_netns(l->lb_ns))
			_exit(1);
		s = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 1))
			_exit(1);
		pause();
		_exit(0);
	}
	usleep(300000);
	l->daemon = start_daemon_metrics(l, l->good, addr);
	assert_int_equal(waitpid(l->daemon, &status, 0), l->daemon);
	l->daemon = 0;
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 ||
	    !file_contains(l->log, "--metrics 127.0.0.1:9464: cannot listen")) {
		fp_test_sh(out, sizeof(out), "cat '%s'", l->log);
		fail_msg("port in use: status %d, log: %s", status, out);
	}
	assert_int_equal(attached_prog(l), 0);
}

/* Scrapes until @series has @value (the health checks run on their own clock). */
static int scrape_until(const struct lab *l, int port, char *text, size_t cap, const char *series,
			double value)
{
	for (int i = 0; i < 100; i++) {
		double v;

		if (!scrape(l, port, text, cap) && !fp_test_prom_value(text, series, &v) &&
		    v == value)
			return 1;
		usleep(100000);
	}
	return 0;
}

/*
 * The daemon's status model in the metrics, end to end: VIP web gets a TCP check (every
 * 200 ms, rise 1, fall 1) on port 8080; backend 2 (10.99.0.11, on the client's side)
 * answers, backend 1 (10.99.0.10) does not. Health down drains backend 1 (effective
 * draining, the data plane's entry too); a run-time override shows; then backend 2
 * stops answering: health would leave web no active backend, so the VIP fails open
 * (counted) and both are active again. promtool lints the scrape with the status.
 */
static void test_metrics_health(void **state)
{
	static char text[1 << 18], cfg[4096];
	struct lab *l = lab_or_skip(state);
	const int port = 9467;
	const char *web = "vip=\"198.51.100.10:80/tcp\"";
	const char *b1 = "vip=\"198.51.100.10:80/tcp\",backend=\"1\",address=\"10.99.0.10\"";
	const char *b2 = "vip=\"198.51.100.10:80/tcp\",backend=\"2\",address=\"10.99.0.11\"";
	char addr[32], path[128], series[512], out[4096];
	pid_t listener;

	fresh_node(l);
	snprintf(cfg, sizeof(cfg), config_fmt,
		 "    health:\n      interval: 200ms\n      timeout: 100ms\n      rise: 1\n"
		 "      fall: 1\n      checks: [{kind: tcp, port: 8080}]\n");
	snprintf(path, sizeof(path), "%s/health.yaml", l->dir);
	assert_int_equal(write_text(path, cfg), 0);
	assert_int_equal(
		fp_test_sh(NULL, 0, "ip -n %s addr replace 10.99.0.11/32 dev cl0", l->cl_ns), 0);
	listener = listen_in(l->cl_ns, "10.99.0.11", 8080);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	l->daemon = start_daemon_metrics(l, path, addr);
	wait_up(l);

	snprintf(series, sizeof(series), "flowpin_backend_health{%s,state=\"up\"}", b2);
	if (!scrape_until(l, port, text, sizeof(text), series, 1))
		fail_msg("backend 2 never came up:\n%s", text);
	snprintf(series, sizeof(series), "flowpin_backend_health{%s,state=\"down\"}", b1);
	if (!scrape_until(l, port, text, sizeof(text), series, 1))
		fail_msg("backend 1 never went down:\n%s", text);
	snprintf(series, sizeof(series), "flowpin_backend_health{%s,state=\"up\"}", b2);
	assert_true(prom(text, series) == 1);
	/* The daemon applies the change after the transition: wait for it. */
	snprintf(series, sizeof(series), "flowpin_backend_effective_state{%s,state=\"draining\"}",
		 b1);
	if (!scrape_until(l, port, text, sizeof(text), series, 1))
		fail_msg("backend 1 never drained:\n%s", text);
	snprintf(series, sizeof(series), "flowpin_backend_effective_state{%s,state=\"active\"}",
		 b2);
	assert_true(prom(text, series) == 1);
	snprintf(series, sizeof(series), "flowpin_backend_config_state{%s,state=\"active\"}", b1);
	assert_true(prom(text, series) == 1);
	snprintf(series, sizeof(series), "flowpin_backend_health_transitions_total{%s}", b1);
	assert_true(prom(text, series) >= 1);
	snprintf(series, sizeof(series), "flowpin_backend_health_checks_total{%s,check=\"tcp\"}",
		 b2);
	double checks = prom(text, series);
	assert_true(checks >= 1);
	snprintf(series, sizeof(series),
		 "flowpin_backend_health_check_failures_total{%s,check=\"tcp\"}", b1);
	assert_true(prom(text, series) >= 1);
	snprintf(series, sizeof(series),
		 "flowpin_backend_health_check_failures_total{%s,check=\"tcp\"}", b2);
	/* A check of the live listener can time out on a loaded machine: most pass. */
	assert_true(prom(text, series) < checks / 2);
	snprintf(series, sizeof(series), "flowpin_vip_health_fail_open{%s}", web);
	assert_true(prom(text, series) == 0);
	/* The data plane agrees: one active entry, one draining. */
	assert_true(prom(text, "flowpin_vip_backends{vip=\"198.51.100.10:80/tcp\","
			       "state=\"draining\"}") == 1);
	/* dns has no check. */
	assert_true(prom(text, "flowpin_backend_health{vip=\"198.51.100.10:53/udp\","
			       "backend=\"1\",address=\"10.99.0.10\",state=\"unchecked\"}") == 1);
	assert_true(prom(text, "flowpin_vip_info{vip=\"198.51.100.10:53/udp\",name=\"dns\","
			       "pinning=\"full\"}") == 1);
	/* Probe counters move between transitions (the 1 s refresh of the model). */
	snprintf(series, sizeof(series), "flowpin_backend_health_checks_total{%s,check=\"tcp\"}",
		 b2);
	usleep(1500000);
	assert_int_equal(scrape(l, port, text, sizeof(text)), 0);
	assert_true(prom(text, series) > checks);
	/* A run-time override. */
	assert_int_equal(
		LB(l, out, sizeof(out), "drain 1 --vip dns --dev lb0 --run-dir '%s'", l->run), 0);
	if (!scrape_until(l, port, text, sizeof(text),
			  "flowpin_backend_override{vip=\"198.51.100.10:53/udp\",backend=\"1\","
			  "address=\"10.99.0.10\",override=\"drain\"}",
			  1))
		fail_msg("no drain override:\n%s", text);
	/* promtool on the scrape with every status family populated. */
	if (!fp_test_sh(NULL, 0, "command -v promtool >/dev/null")) {
		snprintf(path, sizeof(path), "%s/scrape", l->dir);
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs(text, f);
		fclose(f);
		if (fp_test_sh(out, sizeof(out), "promtool check metrics <'%s' 2>&1", path))
			fail_msg("promtool check metrics:\n%s", out);
	}

	/* Backend 2 stops answering: both down, web would have none: fail-open. */
	kill(listener, SIGKILL);
	waitpid(listener, NULL, 0);
	snprintf(series, sizeof(series), "flowpin_vip_health_fail_open{%s}", web);
	if (!scrape_until(l, port, text, sizeof(text), series, 1))
		fail_msg("web never failed open:\n%s", text);
	snprintf(series, sizeof(series), "flowpin_vip_health_fail_open_total{%s}", web);
	assert_true(prom(text, series) == 1);
	snprintf(series, sizeof(series), "flowpin_backend_health{%s,state=\"down\"}", b2);
	assert_true(prom(text, series) == 1);
	snprintf(series, sizeof(series), "flowpin_backend_effective_state{%s,state=\"active\"}",
		 b1);
	assert_true(prom(text, series) == 1);
	snprintf(series, sizeof(series), "flowpin_backend_effective_state{%s,state=\"active\"}",
		 b2);
	assert_true(prom(text, series) == 1);
	stop_daemon(l);
	fp_test_sh(NULL, 0, "ip -n %s addr del 10.99.0.11/32 dev cl0", l->cl_ns);
}

/*
 * `promtool check metrics` (Debian's prometheus package, the reference parser and
 * linter of the exposition format and its naming conventions) on a scrape of the
 * daemon: no parse error, no lint problem. Skipped when promtool is not installed.
 */
static void test_metrics_promtool(void **state)
{
	static char out[1 << 16];
	struct lab *l = lab_or_skip(state);
	const int port = 9465;
	char addr[32];
	int rc;

	if (fp_test_sh(NULL, 0, "command -v promtool >/dev/null"))
		skip(); /* scripts/deps.sh installs it (prometheus) */
	fresh_node(l);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	l->daemon = start_daemon_metrics(l, l->good, addr);
	wait_up(l);
	send_udp_flows(l, 53, 42000, 2);
	assert_int_equal(fp_test_sh(NULL, 0,
				    "ip netns exec %s curl -sS --max-time 5 -f -o '%s/scrape' "
				    "http://127.0.0.1:%d/metrics",
				    l->lb_ns, l->dir, port),
			 0);
	stop_daemon(l);
	rc = fp_test_sh(out, sizeof(out), "promtool check metrics <'%s/scrape' 2>&1", l->dir);
	if (rc)
		fail_msg("promtool check metrics: exit %d:\n%s", rc, out);
}

/*
 * Occupancy with a full session table: FP_LB_DEFAULT_SESSIONS entries written into the
 * pinned map through its mmap (half idle past the UDP timeout), then a scrape:
 * flowpin_lb_session_entries live/expired agree with a slot-by-slot walk of the same
 * map. Prints what the scrape cost (never asserted).
 */
static void test_metrics_occupancy(void **state)
{
	static char text[1 << 18], timing[256];
	struct lab *l = lab_or_skip(state);
	const __u32 n = FP_LB_DEFAULT_SESSIONS;
	const int port = 9466;
	unsigned long long walked = 0, walked_live = 0;
	struct fp_session_bucket *tbl;
	char addr[32];
	struct timespec ts;
	size_t len;
	__u32 buckets;
	__u64 now;

	fresh_node(l);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	l->daemon = start_daemon_metrics(l, l->good, addr);
	wait_up(l);
	tbl = map_pinned_sessions(l, &len, &buckets);
	assert_int_equal(buckets * FP_SESSION_WAYS, n);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
	/* Every slot of the table: it is full. */
	for (__u32 id = 0; id < n; id++) {
		struct fp_session_slot *slot = &tbl[id / FP_SESSION_WAYS].way[id % FP_SESSION_WAYS];
		struct fp_flow_key *k = &slot->key;

		memset(slot, 0, sizeof(*slot));
		k->src[10] = k->src[11] = 0xff;
		k->src[12] = 10;
		k->src[13] = (__u8)(id >> 16);
		k->src[14] = (__u8)(id >> 8);
		k->src[15] = (__u8)id;
		k->dst[10] = k->dst[11] = 0xff;
		memcpy(k->dst + 12, "\xc6\x33\x64\x0a", 4); /* 198.51.100.10 */
		k->sport = htons(40000);
		k->dport = htons(53);
		slot->s.backend = 1;
		slot->s.generation = 1;
		slot->s.state = FP_SESS_UDP;
		/* Odd ids idle for an hour: past the UDP timeout (300 s). */
		slot->s.last_seen_ns = id & 1 ? now - 3600ULL * 1000000000ULL : now;
		k->proto = IPPROTO_UDP;
	}
	/* Count what is there, slot by slot. */
	for (__u32 b = 0; b < buckets; b++) {
		for (int w = 0; w < FP_SESSION_WAYS && tbl[b].way[w].key.proto; w++) {
			walked++;
			walked_live += tbl[b].way[w].s.last_seen_ns == now;
		}
	}
	munmap(tbl, len);
	assert_int_equal(walked, n);
	/* The two parts of a scrape's occupancy, timed alone (printed, never asserted). */
	{
		struct fp_session_count sc;
		struct fp_info info;
		struct timespec t0, t1, t2;
		struct fp_lb *lb = NULL;
		char dir[160];
		__u32 marks;

		snprintf(dir, sizeof(dir), "%s/lb0", l->pins);
		assert_int_equal(fp_lb_open_pinned(dir, &lb), 0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(fp_lb_count_sessions(lb, &sc), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_int_equal(fp_lb_count_probation(lb, &marks), 0);
		clock_gettime(CLOCK_MONOTONIC, &t2);
		assert_int_equal(sc.entries, walked);
		assert_int_equal(fp_lb_info(lb, &info), 0);
		fprintf(stderr,
			"# session table read (mmap): %llu entries in %.4f s; probation: %u slots "
			"in "
			"%.4f s\n",
			(unsigned long long)sc.entries,
			(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
			info.probation_slots,
			(double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9);
		fp_lb_close(lb);
	}
	assert_int_equal(fp_test_sh(timing, sizeof(timing),
				    "ip netns exec %s curl -sS --max-time 10 -f -o '%s/scrape' -w "
				    "'%%{time_total}' http://127.0.0.1:%d/metrics",
				    l->lb_ns, l->dir, port),
			 0);
	assert_int_equal(fp_test_sh(text, sizeof(text), "cat '%s/scrape'", l->dir), 0);
	stop_daemon(l);
	fprintf(stderr,
		"# scrape with %llu session entries: %s s (curl time_total), maps read in %.4f "
		"s (flowpin_stats_read_duration_seconds)\n",
		walked, timing, prom(text, "flowpin_stats_read_duration_seconds"));
	assert_true(prom(text, "flowpin_lb_session_entries{state=\"live\"}") ==
		    (double)walked_live);
	assert_true(prom(text, "flowpin_lb_session_entries{state=\"expired\"}") ==
		    (double)(walked - walked_live));
	assert_true(prom(text, "flowpin_lb_session_entries_limit") == n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_up),
		cmocka_unit_test(test_traffic_stats_flows),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_concurrent_reloads),
		cmocka_unit_test(test_down),
		cmocka_unit_test(test_forwarding_off_warns),
		cmocka_unit_test(test_pops),
		cmocka_unit_test(test_restart_keeps_state),
		cmocka_unit_test(test_sigterm_keeps_state),
		cmocka_unit_test(test_down_dead_daemon),
		cmocka_unit_test(test_restart_unit_caps),
		cmocka_unit_test(test_restart_refused),
		cmocka_unit_test(test_runtime_overrides),
		cmocka_unit_test(test_upgrade_swaps_program),
		cmocka_unit_test(test_upgrade_layout_force),
		cmocka_unit_test(test_upgrade_force_shape_settings),
		cmocka_unit_test(test_health_effective),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_metrics_promtool),
		cmocka_unit_test(test_metrics_health),
		cmocka_unit_test(test_metrics_occupancy),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
