/* SPDX-License-Identifier: MIT */
/*
 * The fuzz targets' way to fail: an oracle violation prints "FUZZ ORACLE: why" and
 * aborts, which libFuzzer treats as a crash (it saves the input as the reproducer
 * under build/fuzz/crashes/<target>/, scripts/fuzz.sh reports its path).
 */
#ifndef FLOWPIN_FUZZ_ORACLE_H
#define FLOWPIN_FUZZ_ORACLE_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_FAIL(...)                                        \
	do {                                                  \
		fprintf(stderr, "FUZZ ORACLE: " __VA_ARGS__); \
		fprintf(stderr, "\n");                        \
		abort();                                      \
	} while (0)

#endif
