/* SPDX-License-Identifier: MIT */
/*
 * A strict reader of the Prometheus text exposition format (0.0.4) for the tests: the
 * unit test of lib/metrics.c and the end-to-end scrape of `lb up --metrics` check the
 * same rules with it. No cmocka: returns what is wrong.
 */
#ifndef FLOWPIN_TESTS_PROM_H
#define FLOWPIN_TESTS_PROM_H

#include <stddef.h>

/*
 * fp_test_prom_check - every line a HELP, a TYPE (counter or gauge) or a sample that
 * parses (NAME, optional {LABEL="VALUE",...} with only \\ \" \n escapes, a number);
 * HELP and TYPE exactly once per family, before its samples; every sample of a
 * declared family; names start with flowpin_; counters, and only they, end in _total.
 * Returns the number of families, or -1 with the first problem (and its line) in @err.
 */
int fp_test_prom_check(const char *text, char *err, size_t errlen);

/*
 * fp_test_prom_value - the value of the sample whose NAME{LABELS} part is exactly
 * @series (e.g. `flowpin_vips` or `flowpin_vip_packets_total{vip="1.2.3.4:80/tcp"}`).
 * Returns 0 and *@value, or -1 when there is no such sample.
 */
int fp_test_prom_value(const char *text, const char *series, double *value);

#endif
