// SPDX-License-Identifier: MIT
/*
 * Tracking a running daemon (lib/instance.c): a live instance is seen, with its pid; a
 * dead one (kill -9, its pid file left behind) is not, even when the pid in that file
 * belongs to a live process by then (what kill(pid, 0) got wrong); of starters racing for
 * one path exactly one wins, and never two hold it at once while they come and go.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <flowpin/instance.h>

static char tmpdir[] = "/tmp/fp-instance-XXXXXX";
static char pid_file[sizeof(tmpdir) + 16];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(pid_file, sizeof(pid_file), "%s/lb0.pid", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(pid_file);
	return rmdir(tmpdir);
}

/* A child that claims the pid file, says so on @ready, and holds it until @hold closes. */
static pid_t start_holder(int ready[2], int hold[2])
{
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		struct fp_instance *in;
		char c;

		close(ready[0]);
		close(hold[1]);
		if (fp_instance_claim(pid_file, &in, NULL))
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		while (read(hold[0], &c, 1) > 0)
			;
		fp_instance_release(in);
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	return pid;
}

static void wait_ready(int ready)
{
	char c;

	assert_int_equal(read(ready, &c, 1), 1);
	close(ready);
}

static void test_live_instance_is_seen(void **state)
{
	struct fp_instance *in = NULL;
	int ready[2], hold[2], status;
	pid_t child, pid, owner;

	(void)state;
	assert_int_equal(fp_instance_probe(pid_file, &pid), 0); /* nothing yet */
	child = start_holder(ready, hold);
	wait_ready(ready[0]);

	assert_int_equal(fp_instance_probe(pid_file, &pid), 1);
	assert_int_equal(pid, child);
	assert_int_equal(fp_instance_claim(pid_file, &in, &owner), -EBUSY);
	assert_null(in);
	assert_int_equal(owner, child);

	/* A clean exit removes the file and gives the lock up. */
	close(hold[1]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(access(pid_file, F_OK), -1);
	assert_int_equal(fp_instance_probe(pid_file, &pid), 0);

	/* In this process too: another open file is another lock holder. */
	assert_int_equal(fp_instance_claim(pid_file, &in, NULL), 0);
	assert_int_equal(fp_instance_probe(pid_file, &pid), 1);
	assert_int_equal(pid, getpid());
	fp_instance_release(in);
	assert_int_equal(fp_instance_probe(pid_file, NULL), 0);
}

static void test_dead_instance_is_not_seen_even_with_its_pid_reused(void **state)
{
	struct fp_instance *in = NULL;
	int ready[2], hold[2], status, seen;
	pid_t child, other, pid;
	bool live;
	char text[24];
	FILE *f;

	(void)state;
	child = start_holder(ready, hold);
	wait_ready(ready[0]);
	assert_int_equal(kill(child, SIGKILL), 0);
	assert_int_equal(waitpid(child, &status, 0), child);
	close(hold[1]);
	assert_int_equal(access(pid_file, F_OK), 0); /* left behind, as after a crash */
	assert_int_equal(fp_instance_probe(pid_file, &pid), 0);

	/*
	 * Its pid reused: the kernel hands pids out again, which a test cannot force, so the
	 * left file is made to name a live process instead (a sleeping child), which is what
	 * reuse looks like to a reader. kill(pid, 0) calls it alive; the lock does not.
	 */
	other = fork();
	assert_true(other >= 0);
	if (!other) {
		pause();
		_exit(0);
	}
	f = fopen(pid_file, "r+");
	assert_non_null(f);
	snprintf(text, sizeof(text), "%d\n", (int)other);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	live = kill(other, 0) == 0;
	seen = fp_instance_probe(pid_file, &pid);
	kill(other, SIGKILL); /* before any assertion: a failed one would leave it behind */
	waitpid(other, &status, 0);
	assert_true(live);
	assert_int_equal(seen, 0);
	assert_int_equal(pid, 0);

	/* A new starter takes the left file over and names itself in it. */
	assert_int_equal(fp_instance_claim(pid_file, &in, NULL), 0);
	assert_int_equal(fp_instance_probe(pid_file, &pid), 1);
	assert_int_equal(pid, getpid());
	fp_instance_release(in);
}

#define STARTERS 8

static void test_two_starters_cannot_both_win(void **state)
{
	int go[2], result[2], done[2], won = 0, busy = 0, status;
	pid_t children[STARTERS];
	char c;

	(void)state;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(result), 0);
	assert_int_equal(pipe(done), 0);
	for (int i = 0; i < STARTERS; i++) {
		children[i] = fork();
		assert_true(children[i] >= 0);
		if (!children[i]) {
			struct fp_instance *in;
			int err;

			close(go[1]);
			close(result[0]);
			close(done[1]);
			while (read(go[0], &c, 1) > 0) /* all start at once: when go closes */
				;
			err = fp_instance_claim(pid_file, &in, NULL);
			c = !err ? 'W' : err == -EBUSY ? 'B' : 'E';
			if (write(result[1], &c, 1) != 1)
				_exit(1);
			while (read(done[0], &c, 1) > 0) /* the winner holds on until done */
				;
			fp_instance_release(err ? NULL : in);
			_exit(0);
		}
	}
	close(go[0]);
	close(result[1]);
	close(done[0]);
	close(go[1]);
	for (int i = 0; i < STARTERS; i++) {
		assert_int_equal(read(result[0], &c, 1), 1);
		won += c == 'W';
		busy += c == 'B';
	}
	close(done[1]);
	for (int i = 0; i < STARTERS; i++)
		waitpid(children[i], &status, 0);
	close(result[0]);
	assert_int_equal(won, 1);
	assert_int_equal(busy, STARTERS - 1);
}

/*
 * Starters that come and go: each claims, holds a moment, releases (removing the file),
 * and again. A claimant that locked a file just removed must not count as the holder:
 * a shared counter of holders never exceeds one.
 */
#define CHURNERS 4
#define WINS	 25

static void test_starters_coming_and_going_never_overlap(void **state)
{
	int *shared, status;
	pid_t children[CHURNERS];

	(void)state;
	shared = mmap(NULL, 2 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		      0);
	assert_true(shared != MAP_FAILED);
	shared[0] = shared[1] = 0; /* holders now, most holders ever */
	for (int i = 0; i < CHURNERS; i++) {
		children[i] = fork();
		assert_true(children[i] >= 0);
		if (!children[i]) {
			for (int wins = 0; wins < WINS;) {
				struct fp_instance *in;
				int now, err = fp_instance_claim(pid_file, &in, NULL);

				if (err == -EBUSY)
					continue;
				if (err)
					_exit(-err);
				now = __atomic_add_fetch(&shared[0], 1, __ATOMIC_SEQ_CST);
				if (now > __atomic_load_n(&shared[1], __ATOMIC_SEQ_CST))
					__atomic_store_n(&shared[1], now, __ATOMIC_SEQ_CST);
				usleep(500);
				__atomic_sub_fetch(&shared[0], 1, __ATOMIC_SEQ_CST);
				fp_instance_release(in);
				wins++;
			}
			_exit(0);
		}
	}
	for (int i = 0; i < CHURNERS; i++) {
		assert_int_equal(waitpid(children[i], &status, 0), children[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0); /* else the errno of a failed claim */
	}
	assert_int_equal(shared[1], 1);
	munmap(shared, 2 * sizeof(int));
}

/* The backend agent's instance is its pin directory: locked as it is, never removed. */
static void test_directory_instance(void **state)
{
	struct fp_instance *in = NULL;
	char dir[sizeof(tmpdir) + 16];
	struct stat st;
	pid_t pid;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/backend", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(fp_instance_probe(dir, &pid), 0);
	assert_int_equal(fp_instance_claim(dir, &in, NULL), 0);
	assert_int_equal(fp_instance_probe(dir, &pid), 1);
	assert_int_equal(pid, 0); /* a directory holds no pid */
	fp_instance_release(in);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(fp_instance_probe(dir, NULL), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_bad_paths(void **state)
{
	struct fp_instance *in = NULL;
	char path[sizeof(tmpdir) + 32], link[sizeof(tmpdir) + 16];

	(void)state;
	snprintf(path, sizeof(path), "%s/no-such-dir/lb0.pid", tmpdir);
	assert_int_equal(fp_instance_claim(path, &in, NULL), -ENOENT);
	assert_null(in);
	assert_int_equal(fp_instance_probe(path, NULL), 0);
	/* A symlink planted where the pid file goes is refused, not followed. */
	snprintf(link, sizeof(link), "%s/link.pid", tmpdir);
	assert_int_equal(symlink(pid_file, link), 0);
	assert_int_equal(fp_instance_claim(link, &in, NULL), -ELOOP);
	assert_int_equal(access(pid_file, F_OK), -1);
	unlink(link);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_instance_is_seen),
		cmocka_unit_test(test_dead_instance_is_not_seen_even_with_its_pid_reused),
		cmocka_unit_test(test_two_starters_cannot_both_win),
		cmocka_unit_test(test_starters_coming_and_going_never_overlap),
		cmocka_unit_test(test_directory_instance),
		cmocka_unit_test(test_bad_paths),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
