// SPDX-License-Identifier: MIT
/*
 * The daemon drives a real BIRD 2: `flowpin lb up` with a `bgp` section in a
 * network namespace of the test's, BIRD started there with its control socket and
 * config in a private directory (no BGP protocol: what is checked is what BIRD has, over
 * its socket). In order, on one daemon and one BIRD:
 *   the address reaches BIRD once the data plane runs (after `rise` samples);
 *   `lb maintenance on --deadline` drains (the (65535,0) community) then withdraws at
 *   the deadline, `--until-flows` withdraws at once on an idle node, `off` announces;
 *   a broken BIRD config is logged with BIRD's FILE:LINE and changes nothing, and the
 *   daemon's retry applies once it is fixed;
 *   a stopped BIRD (SIGSTOP) never blocks the daemon's control socket;
 *   kill -9 of the daemon withdraws through the alive interface; a new daemon takes the
 *   node over, keeps the maintenance and announces again; `lb down` withdraws.
 * Needs root and bird (bird2): otherwise every test is skipped, saying why.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <flowpin/bird.h>
#include "common/run.h"

static struct {
	const char *skip;
	char ns[32], alive[16];
	char dir[64], pins[96], run[96], log[96], config[96];
	char sock[96], bconf[96], include[96], bpid[96], blog[96];
	char flowpin[PATH_MAX];
	pid_t daemon, bird;
	bool mounted;
} fx;

#define NEEDS_LAB()                                                \
	do {                                                       \
		if (fx.skip) {                                     \
			print_message("# %s: skipped\n", fx.skip); \
			skip();                                    \
		}                                                  \
	} while (0)

static const char *const vip = "198.51.100.10";

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static bool file_contains(const char *path, const char *needle)
{
	char buf[65536];
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

static bool wait_log(const char *needle, int ms)
{
	for (long long end = now_ms() + ms; now_ms() < end; usleep(50000))
		if (file_contains(fx.log, needle))
			return true;
	return false;
}

/* BIRD's state of @addr; 99 when BIRD does not answer. */
static int bird_state(const char *addr)
{
	enum fp_announce_state s = 99;
	struct fp_addr a;
	struct fp_bird *b;
	char msg[256];

	assert_int_equal(fp_addr_parse(addr, &a), 0);
	if (fp_bird_connect(fx.sock, 1000, &b, msg, sizeof(msg)))
		return 99;
	if (fp_bird_route_state(b, &a, &s, msg, sizeof(msg)))
		s = 99;
	fp_bird_close(b);
	return (int)s;
}

/* Polls BIRD until @addr is @want; returns the ms it took, or fails. */
static long long wait_bird(enum fp_announce_state want, int ms)
{
	long long start = now_ms();
	int s = 99;

	for (long long end = start + ms; now_ms() < end; usleep(10000)) {
		s = bird_state(vip);
		if (s == (int)want)
			return now_ms() - start;
	}
	fail_msg("BIRD has %s in state %d after %d ms, not %s", vip, s, ms,
		 fp_announce_state_name(want));
	return -1;
}

static void start_bird(void)
{
	fx.bird = fork();
	assert_true(fx.bird >= 0);
	if (fx.bird == 0) {
		int fd = open(fx.blog, O_WRONLY | O_CREAT | O_APPEND, 0600);

		dup2(fd, 1);
		dup2(fd, 2);
		setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin", 1);
		execlp("ip", "ip", "netns", "exec", fx.ns, "bird", "-f", "-s", fx.sock, "-c",
		       fx.bconf, "-P", fx.bpid, (char *)NULL);
		_exit(127);
	}
	for (long long end = now_ms() + 5000; now_ms() < end; usleep(20000))
		if (bird_state(vip) != 99)
			return;
	fail_msg("BIRD did not start (%s)", fx.blog);
}

static void stop_pid(pid_t *pid, int sig)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGCONT);
	kill(*pid, sig);
	for (int i = 0; i < 100 && waitpid(*pid, NULL, WNOHANG) == 0; i++)
		usleep(50000);
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static pid_t start_daemon(void)
{
	pid_t pid;

	assert_int_equal(write_text(fx.log, ""), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(fx.log, O_WRONLY | O_APPEND);

		dup2(fd, 1);
		dup2(fd, 2);
		execlp("ip", "ip", "netns", "exec", fx.ns, fx.flowpin, "lb", "up", "--config",
		       fx.config, "--dev", "lb0", "--xdp-mode", "generic", "--pin-root", fx.pins,
		       "--run-dir", fx.run, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* `flowpin lb ARGS --dev lb0 --run-dir RUN`; its exit status, stdout into @out. */
static int lb(char *out, size_t cap, const char *args)
{
	return fp_test_sh(out, cap, "ip netns exec %s %s lb %s --dev lb0 --run-dir %s 2>&1", fx.ns,
			  fx.flowpin, args, fx.run);
}

static int setup(void **state)
{
	char text[2048];

	(void)state;
	if (geteuid() != 0) {
		fx.skip = "needs root (namespaces, XDP, bpffs)";
		return 0;
	}
	if (access("/usr/sbin/bird", X_OK) && access("/usr/bin/bird", X_OK)) {
		fx.skip = "bird (BIRD 2, Debian package bird2) is not installed";
		return 0;
	}
	snprintf(fx.ns, sizeof(fx.ns), "fpg%d", (int)getpid());
	snprintf(fx.alive, sizeof(fx.alive), "fpa%d", (int)getpid() % 100000);
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/flowpin-lbbgp-XXXXXX");
	if (!mkdtemp(fx.dir) || chmod(fx.dir, 0755))
		return -1;
#define P(f, name) snprintf(fx.f, sizeof(fx.f), "%s/" name, fx.dir)
	P(pins, "bpf");
	P(run, "run");
	P(log, "daemon.log");
	P(config, "lb.yaml");
	P(sock, "bird.ctl");
	P(bconf, "bird.conf");
	P(include, "flowpin.conf");
	P(bpid, "bird.pid");
	P(blog, "bird.log");
#undef P
	if (fp_test_flowpin_path(fx.flowpin, sizeof(fx.flowpin)))
		return -1;
	snprintf(text, sizeof(text),
		 "hash_key: 000102030405060708090a0b0c0d0e0f\n"
		 "allow_example_key: true\n"
		 "table_size: 307\n"
		 "vips:\n"
		 "  - name: web\n"
		 "    address: %s\n"
		 "    port: 80\n"
		 "    protocol: tcp\n"
		 "    backends:\n"
		 "      - { id: 1, address: 10.99.0.10 }\n"
		 "      - { id: 2, address: 10.99.0.11 }\n"
		 "bgp:\n"
		 "  include: %s\n"
		 "  socket: %s\n"
		 "  alive_interface: %s\n"
		 "  interval: 100ms\n"
		 "  timeout: 300ms\n"
		 "  rise: 2\n"
		 "  fall: 2\n"
		 "  vips: all\n",
		 vip, fx.include, fx.sock, fx.alive);
	if (write_text(fx.config, text))
		return -1;
	snprintf(text, sizeof(text),
		 "router id 192.0.2.1;\nprotocol device { scan time 1; }\ninclude \"%s\";\n",
		 fx.include);
	if (write_text(fx.bconf, text) ||
	    write_text(fx.include, "protocol static flowpin_v4 { ipv4; }\n"
				   "protocol static flowpin_v6 { ipv6; }\n"))
		return -1;
	if (mkdir(fx.pins, 0700) || mkdir(fx.run, 0755) ||
	    mount("bpf", fx.pins, "bpf", 0, "mode=0700"))
		return -1;
	fx.mounted = true;
	if (fp_test_sh(NULL, 0,
		       "set -e; ip netns add %1$s; ip -n %1$s link set lo up;"
		       "ip -n %1$s link add lb0 type veth peer name cl0;"
		       "ip -n %1$s addr add 10.99.0.1/24 dev lb0; ip -n %1$s link set lb0 up;"
		       "ip -n %1$s link set cl0 up;"
		       "ip netns exec %1$s sysctl -qw net.ipv4.ip_forward=1",
		       fx.ns))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (fx.skip)
		return 0;
	stop_pid(&fx.daemon, SIGTERM);
	stop_pid(&fx.bird, SIGTERM);
	fp_test_sh(NULL, 0, "ip netns del %s 2>/dev/null", fx.ns);
	if (fx.mounted)
		umount2(fx.pins, MNT_DETACH);
	if (strstr(fx.dir, "/tmp/flowpin-lbbgp-") == fx.dir)
		fp_test_sh(NULL, 0, "rm -rf '%s'", fx.dir);
	return 0;
}

static void test_announced_once_up(void **state)
{
	char out[16384];

	(void)state;
	NEEDS_LAB();
	start_bird();
	assert_int_equal(bird_state(vip), FP_ANNOUNCE_WITHDRAWN);
	fx.daemon = start_daemon();
	print_message("# announced %lld ms after lb up\n", wait_bird(FP_ANNOUNCE_ANNOUNCED, 10000));
	assert_true(file_contains(fx.include, "via \""));
	assert_int_equal(lb(out, sizeof(out), "status"), 0);
	assert_non_null(strstr(out, "198.51.100.10/32"));
	assert_non_null(strstr(out, "announced"));
	assert_non_null(strstr(out, "serving"));
	assert_int_equal(lb(out, sizeof(out), "status --json"), 0);
	assert_non_null(strstr(out, "\"state\":\"announced\""));
	assert_non_null(strstr(out, "\"result\":\"ok\""));
}

static void test_maintenance(void **state)
{
	char out[16384];
	long long t;

	(void)state;
	NEEDS_LAB();
	/* Drain at once, withdraw at the deadline, not before. */
	assert_int_equal(lb(out, sizeof(out), "maintenance on --deadline 2s"), 0);
	assert_non_null(strstr(out, "maintenance on"));
	t = wait_bird(FP_ANNOUNCE_DRAINING, 1000);
	assert_true(file_contains(fx.include, "bgp_community.add((65535, 0))"));
	t = wait_bird(FP_ANNOUNCE_WITHDRAWN, 4000) + t;
	print_message("# withdrawn %lld ms after maintenance on --deadline 2s\n", t);
	assert_true(t >= 1500);
	assert_true(wait_log("maintenance-deadline", 1000));
	/* off: announced at once (no rise wait). */
	assert_int_equal(lb(out, sizeof(out), "maintenance off"), 0);
	wait_bird(FP_ANNOUNCE_ANNOUNCED, 1000);
	/* An idle node (no flows) is below --until-flows at once. */
	assert_int_equal(lb(out, sizeof(out), "maintenance on --deadline 0 --until-flows 5"), 0);
	wait_bird(FP_ANNOUNCE_WITHDRAWN, 2000);
	assert_true(wait_log("maintenance-flows", 1000));
	assert_int_equal(lb(out, sizeof(out), "maintenance off"), 0);
	wait_bird(FP_ANNOUNCE_ANNOUNCED, 1000);
	/* Bad arguments: usage, nothing sent. */
	assert_int_equal(lb(out, sizeof(out), "maintenance maybe"), 2);
	assert_int_equal(lb(out, sizeof(out), "maintenance on --deadline 5x"), 2);
	assert_int_equal(lb(out, sizeof(out), "maintenance off --deadline 5s"), 2);
}

static void test_bird_config_error(void **state)
{
	char out[16384], needle[128];

	(void)state;
	NEEDS_LAB();
	/* The operator's config breaks (line 4): BIRD refuses every configure. */
	assert_int_equal(fp_test_sh(NULL, 0, "echo 'garbage here;' >> %s", fx.bconf), 0);
	assert_int_equal(lb(out, sizeof(out), "maintenance on --deadline 0"), 0);
	snprintf(needle, sizeof(needle), "%s:4:", fx.bconf);
	assert_true(wait_log(needle, 3000));
	assert_true(wait_log("BIRD keeps its previous config", 100));
	/* Nothing changed in BIRD, however long it is retried. */
	usleep(500000);
	assert_int_equal(bird_state(vip), FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(lb(out, sizeof(out), "status"), 0);
	assert_non_null(strstr(out, "last configure: error"));
	/* Fixed: the daemon's next try applies. */
	assert_int_equal(fp_test_sh(NULL, 0, "sed -i '/garbage/d' %s", fx.bconf), 0);
	wait_bird(FP_ANNOUNCE_DRAINING, 3000);
	assert_true(wait_log("BIRD took", 1000));
	assert_int_equal(lb(out, sizeof(out), "maintenance off"), 0);
	wait_bird(FP_ANNOUNCE_ANNOUNCED, 2000);
}

static void test_bird_stopped_never_blocks(void **state)
{
	char out[16384];
	long long t;

	(void)state;
	NEEDS_LAB();
	kill(fx.bird, SIGSTOP);
	for (int i = 0; i < 3; i++) {
		t = now_ms();
		assert_int_equal(
			lb(out, sizeof(out), i == 1 ? "maintenance on --deadline 0" : "status"), 0);
		t = now_ms() - t;
		print_message("# control socket answered in %lld ms with BIRD stopped\n", t);
		assert_true(t < 1000); /* the BIRD timeout is 300 ms; the daemon's loop runs */
		usleep(400000);
	}
	kill(fx.bird, SIGCONT);
	wait_bird(FP_ANNOUNCE_DRAINING, 3000);
	assert_int_equal(lb(out, sizeof(out), "maintenance off"), 0);
	wait_bird(FP_ANNOUNCE_ANNOUNCED, 2000);
}

static void test_kill9_withdraws_and_take_over(void **state)
{
	char out[16384];
	long long t;

	(void)state;
	NEEDS_LAB();
	assert_int_equal(lb(out, sizeof(out), "maintenance on --deadline 0"), 0);
	wait_bird(FP_ANNOUNCE_DRAINING, 2000);
	kill(fx.daemon, SIGKILL);
	waitpid(fx.daemon, NULL, 0);
	fx.daemon = 0;
	t = wait_bird(FP_ANNOUNCE_WITHDRAWN, 2000);
	print_message("# kill -9 of the daemon: withdrawn from BIRD in %lld ms\n", t);
	/* A new daemon takes the node over: the maintenance holds, the route comes back. */
	fx.daemon = start_daemon();
	wait_bird(FP_ANNOUNCE_DRAINING, 5000);
	assert_true(wait_log("maintenance kept from the previous daemon", 1000));
	assert_int_equal(lb(out, sizeof(out), "maintenance off"), 0);
	wait_bird(FP_ANNOUNCE_ANNOUNCED, 2000);
}

static void test_down_withdraws(void **state)
{
	char out[16384];

	(void)state;
	NEEDS_LAB();
	assert_int_equal(fp_test_sh(out, sizeof(out),
				    "ip netns exec %s %s lb down --dev lb0 --pin-root %s "
				    "--run-dir %s 2>&1",
				    fx.ns, fx.flowpin, fx.pins, fx.run),
			 0);
	waitpid(fx.daemon, NULL, 0);
	fx.daemon = 0;
	assert_int_equal(bird_state(vip), FP_ANNOUNCE_WITHDRAWN);
	assert_true(file_contains(fx.log, "every address withdrawn"));
	assert_false(file_contains(fx.include, "\troute "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_announced_once_up),
		cmocka_unit_test(test_maintenance),
		cmocka_unit_test(test_bird_config_error),
		cmocka_unit_test(test_bird_stopped_never_blocks),
		cmocka_unit_test(test_kill9_withdraws_and_take_over),
		cmocka_unit_test(test_down_withdraws),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
