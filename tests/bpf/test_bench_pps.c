// SPDX-License-Identifier: MIT
/*
 * The real-frame throughput benchmark's harness works (bench/bench_pps.c --check): in
 * its network namespace, live frames from the generator reach the program under test in
 * native XDP on a veth, and the sink on the peer receives every frame it should, of
 * the kind it should (the generated frame from the XDP_TX floor; from flowpin, each
 * encapsulated to a configured backend with the generated packet intact, counted by
 * flowpin as sent and as a session hit), while the generator reuses its pages (the
 * sink restores each frame's Ethernet header: without that, the reused frames are no
 * longer the generator's and the check fails). No speed is measured or asserted.
 * Skipped, saying why, when the benchmark is not built or cannot run here (not root, a
 * kernel without live frames).
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

/* build/bench/bench_pps beside this program's build/tests/bpf/. */
static int bench_path(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	self[n] = 0;
	for (int i = 0; i < 3; i++) {
		slash = strrchr(self, '/');
		if (!slash)
			return -1;
		*slash = 0;
	}
	snprintf(out, len, "%s/bench/bench_pps", self);
	return access(out, X_OK);
}

static void test_harness_delivers_every_frame(void **state)
{
	char bench[PATH_MAX + 32], cmd[PATH_MAX + 64], line[512], out[8192] = "";
	FILE *p;
	int status;

	(void)state;
	if (bench_path(bench, sizeof(bench))) {
		print_message("# skipped: %s is not built\n", bench);
		skip();
	}
	snprintf(cmd, sizeof(cmd), "%s --check 2>&1", bench);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		print_message("# %s", line);
		strncat(out, line, sizeof(out) - strlen(out) - 1);
	}
	status = pclose(p);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		print_message("# skipped: bench_pps --check cannot run here (above)\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Each program's line, and the verdict. */
	assert_non_null(strstr(out, "floor (XDP_TX): generated 1024, sink received 1024"));
	assert_non_null(strstr(out, "flowpin `full`: generated 1024, sink received 1024"));
	assert_non_null(strstr(out, "flowpin `hash+table`: generated 1024, sink received 1024"));
	assert_non_null(strstr(out, "\nok\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_harness_delivers_every_frame),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
