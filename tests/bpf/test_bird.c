// SPDX-License-Identifier: MIT
/*
 * lib/bird.c against a real BIRD 2: the test process moves into a network namespace of
 * its own (no BGP could leave it, and the config has no BGP protocol anyway) and starts
 * `bird -f -s SOCKET -c CONF -P PIDFILE` in a private directory under /tmp, never
 * /run/bird. Checked over the control socket, spoken by the library: `configure` applies
 * a new include (announced, draining with (65535,0), withdrawn, both families); a bad
 * include is refused with BIRD's own FILE:LINE:COLUMN message and the routes stay as
 * they were; the alive interface withdraws every route when its descriptor closes
 * (a crashed daemon); a stopped BIRD costs the timeout and no more, a dead one is
 * "connection refused". Needs root and bird: otherwise every test is skipped, saying why.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <event2/event.h>
#include <flowpin/bird.h>

static struct {
	const char *skip; /* why every test skips, or NULL */
	char dir[64], sock[96], conf[96], include[96], pidfile[96];
	pid_t bird;
	pid_t holder; /* test_alive_interface_kill9's child, killed by teardown if left */
} fx;

#define NEEDS_BIRD()                                               \
	do {                                                       \
		if (fx.skip) {                                     \
			print_message("# %s: skipped\n", fx.skip); \
			skip();                                    \
		}                                                  \
	} while (0)

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

static bool have_bird(void)
{
	return access("/usr/sbin/bird", X_OK) == 0 || access("/usr/bin/bird", X_OK) == 0 ||
	       access("/usr/local/sbin/bird", X_OK) == 0;
}

static int start_bird(void)
{
	char log[128];
	struct fp_bird *b;
	char msg[256];

	snprintf(log, sizeof(log), "%s/bird.out", fx.dir);
	fx.bird = fork();
	if (fx.bird < 0)
		return -1;
	if (fx.bird == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin", 1);
		execlp("bird", "bird", "-f", "-s", fx.sock, "-c", fx.conf, "-P", fx.pidfile,
		       (char *)NULL);
		_exit(127);
	}
	/* Up when its socket greets us. */
	for (long long end = now_ms() + 5000; now_ms() < end; usleep(20000)) {
		if (!fp_bird_connect(fx.sock, 500, &b, msg, sizeof(msg))) {
			fp_bird_close(b);
			return 0;
		}
	}
	return -1;
}

static void stop_bird(void)
{
	if (fx.bird <= 0)
		return;
	kill(fx.bird, SIGCONT);
	kill(fx.bird, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(fx.bird, NULL, WNOHANG) == fx.bird) {
			fx.bird = 0;
			return;
		}
		usleep(20000);
	}
	kill(fx.bird, SIGKILL);
	waitpid(fx.bird, NULL, 0);
	fx.bird = 0;
}

static int setup(void **state)
{
	char conf[512];

	(void)state;
	if (geteuid() != 0) {
		fx.skip = "needs root (a network namespace of its own)";
		return 0;
	}
	if (!have_bird()) {
		fx.skip = "bird (BIRD 2, Debian package bird2) is not installed";
		return 0;
	}
	/* From here on, a failure fails the tests: a set-up problem is no skip. */
	if (unshare(CLONE_NEWNET))
		return -1;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/fp-test-bird-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.sock, sizeof(fx.sock), "%s/bird.ctl", fx.dir);
	snprintf(fx.conf, sizeof(fx.conf), "%s/bird.conf", fx.dir);
	snprintf(fx.include, sizeof(fx.include), "%s/flowpin.conf", fx.dir);
	snprintf(fx.pidfile, sizeof(fx.pidfile), "%s/bird.pid", fx.dir);
	snprintf(conf, sizeof(conf),
		 "# flowpin test: no BGP protocol, in a private network namespace\n"
		 "router id 192.0.2.1;\n"
		 "protocol device { }\n"
		 "include \"%s\";\n",
		 fx.include);
	if (write_text(fx.conf, conf) ||
	    write_text(fx.include, "protocol static flowpin_v4 { ipv4; }\n"
				   "protocol static flowpin_v6 { ipv6; }\n"))
		return -1;
	return start_bird();
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (fx.holder > 0) {
		kill(fx.holder, SIGKILL);
		waitpid(fx.holder, NULL, 0);
	}
	stop_bird();
	if (fx.dir[0] && strstr(fx.dir, "/tmp/fp-test-bird-") == fx.dir) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
		if (system(cmd))
			return -1;
	}
	return 0;
}

static struct fp_bird_route route(const char *addr, enum fp_announce_state s)
{
	struct fp_bird_route r = { .state = s, .comment = "test" };

	assert_int_equal(fp_addr_parse(addr, &r.addr), 0);
	return r;
}

/* Renders and writes the include for @routes (through the library, atomically). */
static void write_include(const struct fp_bird_route *routes, size_t n, const char *alive)
{
	char *text, msg[256];

	assert_int_equal(fp_bird_include_render(routes, n, alive, &text), 0);
	assert_int_equal(fp_bird_include_write(fx.include, text, msg, sizeof(msg)), 0);
	free(text);
}

static enum fp_announce_state bird_has(const char *addr)
{
	enum fp_announce_state s = 99;
	struct fp_addr a;
	struct fp_bird *b;
	char msg[256];

	assert_int_equal(fp_addr_parse(addr, &a), 0);
	assert_int_equal(fp_bird_connect(fx.sock, 2000, &b, msg, sizeof(msg)), 0);
	assert_int_equal(fp_bird_route_state(b, &a, &s, msg, sizeof(msg)), 0);
	fp_bird_close(b);
	return s;
}

static void configure_ok(void)
{
	char msg[512];
	int err = fp_bird_configure(fx.sock, 2000, msg, sizeof(msg));

	if (err)
		print_message("# configure: %d %s\n", err, msg);
	assert_int_equal(err, 0);
	assert_string_equal(msg, "Reconfigured");
}

static void test_configure_applies(void **state)
{
	struct fp_bird_route first[] = {
		route("198.51.100.10", FP_ANNOUNCE_ANNOUNCED),
		route("198.51.100.11", FP_ANNOUNCE_DRAINING),
		route("198.51.100.12", FP_ANNOUNCE_WITHDRAWN),
		route("2001:db8::10", FP_ANNOUNCE_ANNOUNCED),
		route("2001:db8::11", FP_ANNOUNCE_DRAINING),
	};
	struct fp_bird_route second[] = {
		route("198.51.100.10", FP_ANNOUNCE_DRAINING),
		route("198.51.100.11", FP_ANNOUNCE_WITHDRAWN),
		route("198.51.100.12", FP_ANNOUNCE_ANNOUNCED),
		route("2001:db8::10", FP_ANNOUNCE_WITHDRAWN),
		route("2001:db8::11", FP_ANNOUNCE_ANNOUNCED),
	};
	struct fp_bird *b;
	char msg[256];

	(void)state;
	NEEDS_BIRD();
	assert_int_equal(fp_bird_connect(fx.sock, 2000, &b, msg, sizeof(msg)), 0);
	assert_true(!strncmp(fp_bird_version(b), "2.", 2)); /* BIRD 2 */
	fp_bird_close(b);

	/* Written but not configured: BIRD has nothing yet. */
	write_include(first, 5, NULL);
	assert_int_equal(bird_has("198.51.100.10"), FP_ANNOUNCE_WITHDRAWN);
	configure_ok();
	assert_int_equal(bird_has("198.51.100.10"), FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(bird_has("198.51.100.11"), FP_ANNOUNCE_DRAINING);
	assert_int_equal(bird_has("198.51.100.12"), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(bird_has("2001:db8::10"), FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(bird_has("2001:db8::11"), FP_ANNOUNCE_DRAINING);

	write_include(second, 5, NULL);
	configure_ok();
	assert_int_equal(bird_has("198.51.100.10"), FP_ANNOUNCE_DRAINING);
	assert_int_equal(bird_has("198.51.100.11"), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(bird_has("198.51.100.12"), FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(bird_has("2001:db8::10"), FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(bird_has("2001:db8::11"), FP_ANNOUNCE_ANNOUNCED);
}

static void test_bad_include_changes_nothing(void **state)
{
	struct fp_bird_route good[] = { route("198.51.100.20", FP_ANNOUNCE_ANNOUNCED) };
	char msg[512], expected[160];
	int err;

	(void)state;
	NEEDS_BIRD();
	write_include(good, 1, NULL);
	configure_ok();
	assert_int_equal(bird_has("198.51.100.20"), FP_ANNOUNCE_ANNOUNCED);

	/* Line 3 does not parse: BIRD names the file, the line and the column. */
	assert_int_equal(write_text(fx.include, "protocol static flowpin_v4 {\n"
						"\tipv4;\n"
						"\troute 198.51.100.21/32 garbage;\n"
						"}\n"
						"protocol static flowpin_v6 { ipv6; }\n"),
			 0);
	err = fp_bird_configure(fx.sock, 2000, msg, sizeof(msg));
	print_message("# %s\n", msg);
	assert_int_equal(err, -EINVAL);
	snprintf(expected, sizeof(expected), "%s:3:", fx.include);
	assert_non_null(strstr(msg, expected));
	assert_non_null(strstr(msg, "keeps running the old one"));
	/* Nothing changed: the old route is still there, the new one is not. */
	assert_int_equal(bird_has("198.51.100.20"), FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(bird_has("198.51.100.21"), FP_ANNOUNCE_WITHDRAWN);

	/* A good file again applies. */
	good[0].state = FP_ANNOUNCE_DRAINING;
	write_include(good, 1, NULL);
	configure_ok();
	assert_int_equal(bird_has("198.51.100.20"), FP_ANNOUNCE_DRAINING);
}

/* Polls BIRD for up to @ms until @addr is in state @want. */
static enum fp_announce_state wait_state(const char *addr, enum fp_announce_state want, int ms)
{
	enum fp_announce_state s = bird_has(addr);

	for (long long end = now_ms() + ms; s != want && now_ms() < end; usleep(20000))
		s = bird_has(addr);
	return s;
}

static void test_alive_interface(void **state)
{
	struct fp_bird_route routes[] = { route("198.51.100.30", FP_ANNOUNCE_ANNOUNCED),
					  route("2001:db8::30", FP_ANNOUNCE_DRAINING) };
	char msg[256];
	long long t0;
	int fd;

	(void)state;
	NEEDS_BIRD();
	fd = fp_bird_alive_open("fp-alive", msg, sizeof(msg));
	if (fd < 0)
		print_message("# %s\n", msg);
	assert_true(fd >= 0);
	assert_int_equal(fp_bird_alive_open("fp-alive", msg, sizeof(msg)), -EEXIST);
	write_include(routes, 2, "fp-alive");
	configure_ok();
	assert_int_equal(wait_state("198.51.100.30", FP_ANNOUNCE_ANNOUNCED, 2000),
			 FP_ANNOUNCE_ANNOUNCED);
	assert_int_equal(wait_state("2001:db8::30", FP_ANNOUNCE_DRAINING, 2000),
			 FP_ANNOUNCE_DRAINING);

	/* The process holding it dies (here: the descriptor closes): BIRD withdraws. */
	t0 = now_ms();
	close(fd);
	assert_int_equal(wait_state("198.51.100.30", FP_ANNOUNCE_WITHDRAWN, 3000),
			 FP_ANNOUNCE_WITHDRAWN);
	assert_int_equal(wait_state("2001:db8::30", FP_ANNOUNCE_WITHDRAWN, 3000),
			 FP_ANNOUNCE_WITHDRAWN);
	print_message("# routes withdrawn %lld ms after the alive interface went away\n",
		      now_ms() - t0);

	/* A new daemon opens it again: the routes come back without a configure. */
	fd = fp_bird_alive_open("fp-alive", msg, sizeof(msg));
	assert_true(fd >= 0);
	assert_int_equal(wait_state("198.51.100.30", FP_ANNOUNCE_ANNOUNCED, 3000),
			 FP_ANNOUNCE_ANNOUNCED);
	close(fd);
	assert_int_equal(fp_bird_alive_open("bad\"name", msg, sizeof(msg)), -EINVAL);
}

struct async {
	int calls, err;
	char msg[512];
	int ticks;
};

static void on_done(int err, const char *msg, void *arg)
{
	struct async *a = arg;

	a->calls++;
	a->err = err;
	snprintf(a->msg, sizeof(a->msg), "%s", msg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	((struct async *)arg)->ticks++;
}

/* Runs @base until @a's callback ran (at most 5 s). */
static void run_until_done(struct event_base *base, struct async *a)
{
	for (long long end = now_ms() + 5000; !a->calls && now_ms() < end;)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(a->calls, 1);
}

/* The holder killed with SIGKILL, as a crashed daemon: its routes leave BIRD. */
static void test_alive_interface_kill9(void **state)
{
	struct fp_bird_route r = route("198.51.100.31", FP_ANNOUNCE_ANNOUNCED);
	int ready[2];
	char c = 0;
	long long t0;
	pid_t child;

	(void)state;
	NEEDS_BIRD();
	assert_int_equal(pipe(ready), 0);
	child = fork();
	assert_true(child >= 0);
	fx.holder = child;
	if (child == 0) {
		char msg[256];
		int fd = fp_bird_alive_open("fp-alive9", msg, sizeof(msg));

		c = fd >= 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(c, 'y');
	write_include(&r, 1, "fp-alive9");
	configure_ok();
	assert_int_equal(wait_state("198.51.100.31", FP_ANNOUNCE_ANNOUNCED, 2000),
			 FP_ANNOUNCE_ANNOUNCED);
	t0 = now_ms();
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	fx.holder = 0;
	assert_int_equal(wait_state("198.51.100.31", FP_ANNOUNCE_WITHDRAWN, 3000),
			 FP_ANNOUNCE_WITHDRAWN);
	print_message("# kill -9 of the holder: routes withdrawn after %lld ms\n", now_ms() - t0);
}

/* fp_bird_configure_start(): the same results, and the loop keeps running meanwhile. */
static void test_configure_on_event_loop(void **state)
{
	struct fp_bird_route r = route("198.51.100.40", FP_ANNOUNCE_ANNOUNCED);
	struct timeval twenty_ms = { 0, 20000 };
	struct event_base *base = event_base_new();
	struct event *ticker;
	struct fp_bird_job *job;
	struct async a = { 0 };
	char msg[256], expected[160];

	(void)state;
	NEEDS_BIRD();
	assert_non_null(base);
	ticker = event_new(base, -1, EV_PERSIST, on_tick, &a);
	assert_int_equal(event_add(ticker, &twenty_ms), 0);

	write_include(&r, 1, NULL);
	assert_int_equal(
		fp_bird_configure_start(base, fx.sock, 2000, on_done, &a, &job, msg, sizeof(msg)),
		0);
	run_until_done(base, &a);
	assert_int_equal(a.err, 0);
	assert_string_equal(a.msg, "Reconfigured");
	assert_int_equal(bird_has("198.51.100.40"), FP_ANNOUNCE_ANNOUNCED);

	/* A refused file: BIRD's FILE:LINE, nothing changed. */
	assert_int_equal(write_text(fx.include, "protocol static flowpin_v4 {\n\tipv4;\n"
						"\troute 198.51.100.41/32 garbage;\n}\n"),
			 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(
		fp_bird_configure_start(base, fx.sock, 2000, on_done, &a, &job, msg, sizeof(msg)),
		0);
	run_until_done(base, &a);
	assert_int_equal(a.err, -EINVAL);
	snprintf(expected, sizeof(expected), "%s:3:", fx.include);
	assert_non_null(strstr(a.msg, expected));
	assert_int_equal(bird_has("198.51.100.40"), FP_ANNOUNCE_ANNOUNCED);
	write_include(&r, 1, NULL);

	/* BIRD stopped: the timeout, and the loop ran its timers all along. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(kill(fx.bird, SIGSTOP), 0);
	long long t0 = now_ms();

	assert_int_equal(
		fp_bird_configure_start(base, fx.sock, 300, on_done, &a, &job, msg, sizeof(msg)),
		0);
	run_until_done(base, &a);
	long long took = now_ms() - t0;

	assert_int_equal(kill(fx.bird, SIGCONT), 0);
	print_message("# stopped BIRD on the loop: %s after %lld ms, %d ticks of 20 ms meanwhile\n",
		      a.msg, took, a.ticks);
	assert_int_equal(a.err, -ETIMEDOUT);
	assert_true(took >= 250 && took < 2000);
	assert_true(a.ticks >= 5); /* 15 if the machine is idle; 0 if the call blocked */

	/* Cancelled: the callback never runs. */
	memset(&a, 0, sizeof(a));
	assert_int_equal(
		fp_bird_configure_start(base, fx.sock, 2000, on_done, &a, &job, msg, sizeof(msg)),
		0);
	fp_bird_job_cancel(job);
	for (long long end = now_ms() + 200; now_ms() < end;)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(a.calls, 0);

	/* No socket: said at once, no callback. */
	assert_int_equal(fp_bird_configure_start(base, "/nonexistent/bird.ctl", 2000, on_done, &a,
						 &job, msg, sizeof(msg)),
			 -ENOENT);
	assert_non_null(strstr(msg, "is BIRD running"));
	event_free(ticker);
	event_base_free(base);
}

static void test_bird_stopped_times_out(void **state)
{
	struct fp_bird *b;
	char msg[256];
	long long t0, took;
	int err;

	(void)state;
	NEEDS_BIRD();
	assert_int_equal(kill(fx.bird, SIGSTOP), 0);
	t0 = now_ms();
	err = fp_bird_configure(fx.sock, 300, msg, sizeof(msg));
	took = now_ms() - t0;
	print_message("# stopped BIRD: %s (after %lld ms)\n", msg, took);
	assert_int_equal(err, -ETIMEDOUT);
	assert_non_null(strstr(msg, "did not answer in time"));
	assert_true(took >= 250 && took < 2000);

	/* Connected before it stopped: the command times out, not the connect. */
	assert_int_equal(kill(fx.bird, SIGCONT), 0);
	assert_int_equal(fp_bird_connect(fx.sock, 300, &b, msg, sizeof(msg)), 0);
	assert_int_equal(kill(fx.bird, SIGSTOP), 0);
	struct fp_bird_reply r;

	t0 = now_ms();
	err = fp_bird_command(b, "show status", &r, msg, sizeof(msg));
	took = now_ms() - t0;
	fp_bird_reply_free(&r);
	fp_bird_close(b);
	assert_int_equal(kill(fx.bird, SIGCONT), 0);
	assert_int_equal(err, -ETIMEDOUT);
	assert_true(took < 2000);
	configure_ok(); /* and it works again */
}

/* Last: BIRD killed, its socket file left behind. */
static void test_bird_dead(void **state)
{
	char msg[256];
	long long t0;

	(void)state;
	NEEDS_BIRD();
	assert_int_equal(kill(fx.bird, SIGKILL), 0);
	assert_int_equal(waitpid(fx.bird, NULL, 0), fx.bird);
	fx.bird = 0;
	t0 = now_ms();
	assert_int_equal(fp_bird_configure(fx.sock, 2000, msg, sizeof(msg)), -ECONNREFUSED);
	assert_true(now_ms() - t0 < 1000);
	print_message("# %s\n", msg);
	assert_non_null(strstr(msg, fx.sock));
	assert_non_null(strstr(msg, "BIRD died"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_configure_applies),
		cmocka_unit_test(test_bad_include_changes_nothing),
		cmocka_unit_test(test_alive_interface),
		cmocka_unit_test(test_alive_interface_kill9),
		cmocka_unit_test(test_configure_on_event_loop),
		cmocka_unit_test(test_bird_stopped_times_out),
		cmocka_unit_test(test_bird_dead),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
