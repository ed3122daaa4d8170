/* SPDX-License-Identifier: MIT */
/* Running the built flowpin and shell commands from the test programs. */
#ifndef FLOWPIN_TESTS_RUN_H
#define FLOWPIN_TESTS_RUN_H

#include <stddef.h>

/*
 * fp_test_flowpin_path - the flowpin binary of the same build as the calling test
 * program: build/tests/<tier>/<test> -> build/flowpin, found from /proc/self/exe so
 * the test runs from any directory. Returns 0, or -errno.
 */
int fp_test_flowpin_path(char *out, size_t len);

/*
 * fp_test_sh - runs a shell command (printf-style), its stdout into @out, NUL-terminated
 * and cut to @cap (@out NULL: read and dropped). Returns the exit status, or -1 when the
 * command could not run or did not exit.
 */
int fp_test_sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
