// SPDX-License-Identifier: MIT
/*
 * One logger (lib/log.c): one-shot commands print "error: ..." as they always did; a
 * daemon (fp_log_timestamps) stamps its warnings and errors with UTC time like its
 * fp_log_event() lines on stdout; levels above the verbosity are dropped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <flowpin/log.h>

/* Whether @s starts with a stamp "YYYY-MM-DDTHH:MM:SSZ " followed by @rest. */
static int stamped(const char *s, const char *rest)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:ddZ ";

	for (size_t i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
			return 0;
	return !strcmp(s + sizeof(shape) - 1, rest);
}

static void test_stamps(void **state)
{
	FILE *saved_err = stderr, *saved_out = stdout;
	char *err = NULL, *out = NULL;
	size_t err_len, out_len;

	(void)state;
	stderr = open_memstream(&err, &err_len);
	fp_log_timestamps = false;
	fp_err("one-shot %d\n", 1);
	fclose(stderr);
	stderr = saved_err;
	assert_string_equal(err, "error: one-shot 1\n");
	free(err);

	stderr = open_memstream(&err, &err_len);
	fp_log_timestamps = true;
	fp_warn("daemon %s\n", "warns");
	fp_debug("dropped at the default verbosity\n");
	fclose(stderr);
	stderr = saved_err;
	fp_log_timestamps = false;
	assert_true(stamped(err, "warning: daemon warns\n"));
	free(err);

	stdout = open_memstream(&out, &out_len);
	fp_log_event("up on %s\n", "lb0");
	fclose(stdout);
	stdout = saved_out;
	assert_true(stamped(out, "up on lb0\n"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
