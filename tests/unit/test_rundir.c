// SPDX-License-Identifier: MIT
/*
 * fp_lbnode_check_run_dir(): lb up keeps root's files (pid, overrides, maintenance,
 * control socket) in its run directory and writes them through fixed names there, so a
 * run directory anyone else can write in, or move, is refused, naming it.
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
#include <sys/stat.h>
#include <cmocka.h>
#include <flowpin/lbnode.h>

static char tmpdir[] = "/tmp/fp-rundir-XXXXXX";
static char run[sizeof(tmpdir) + 16], sub[sizeof(tmpdir) + 32], file[sizeof(tmpdir) + 16];

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(run, sizeof(run), "%s/run", tmpdir);
	snprintf(sub, sizeof(sub), "%s/run/sub", tmpdir);
	snprintf(file, sizeof(file), "%s/file", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rmdir(sub);
	rmdir(run);
	unlink(file);
	rmdir(tmpdir);
	return 0;
}

static int check(const char *dir, char *msg, size_t len)
{
	msg[0] = '\0';
	return fp_lbnode_check_run_dir(dir, msg, len);
}

static void test_private_dir_is_fine(void **state)
{
	char msg[512];

	(void)state;
	assert_int_equal(mkdir(run, 0755), 0);
	assert_int_equal(check(run, msg, sizeof(msg)), 0);
	assert_int_equal(chmod(run, 0700), 0);
	assert_int_equal(check(run, msg, sizeof(msg)), 0);
	/* /tmp itself: world-writable but sticky, nobody else can move our directory. */
	assert_int_equal(check(tmpdir, msg, sizeof(msg)), 0);
	rmdir(run);
}

static void test_writable_by_others_is_refused(void **state)
{
	static const mode_t modes[] = { 0777, 0775, 0757, 01777 };
	char msg[512];

	(void)state;
	assert_int_equal(mkdir(run, 0700), 0);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(run, modes[i]), 0);
		assert_int_equal(check(run, msg, sizeof(msg)), -EPERM);
		assert_non_null(strstr(msg, run));
		assert_non_null(strstr(msg, "writable by nobody else"));
	}
	rmdir(run);
}

static void test_owned_by_another_user_is_refused(void **state)
{
	char msg[512];

	(void)state;
	if (geteuid() != 0)
		skip(); /* only root can give a directory away */
	assert_int_equal(mkdir(run, 0755), 0);
	assert_int_equal(chown(run, 65534, 65534), 0);
	assert_int_equal(check(run, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "uid 65534"));
	rmdir(run);
}

static void test_movable_by_others_is_refused(void **state)
{
	char msg[512];

	(void)state;
	/* The run directory is fine, but anyone may rename it (or swap it) in its parent. */
	assert_int_equal(mkdir(run, 0777), 0);
	assert_int_equal(chmod(run, 0777), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(check(sub, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "others could move"));
	/* Sticky: only an entry's owner may rename it. */
	assert_int_equal(chmod(run, 01777), 0);
	assert_int_equal(check(sub, msg, sizeof(msg)), 0);
	rmdir(sub);
	rmdir(run);
}

static void test_not_a_directory_is_refused(void **state)
{
	char msg[512];
	FILE *f = fopen(file, "w");

	(void)state;
	assert_non_null(f);
	fclose(f);
	assert_int_equal(check(file, msg, sizeof(msg)), -ENOTDIR);
	assert_int_equal(check(run, msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, run));
	unlink(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_private_dir_is_fine),
		cmocka_unit_test(test_writable_by_others_is_refused),
		cmocka_unit_test(test_owned_by_another_user_is_refused),
		cmocka_unit_test(test_movable_by_others_is_refused),
		cmocka_unit_test(test_not_a_directory_is_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
