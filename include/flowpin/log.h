/* SPDX-License-Identifier: MIT */
/* One logger for library and programs; libbpf's messages are routed through it. */
#ifndef FLOWPIN_LOG_H
#define FLOWPIN_LOG_H

#include <stdbool.h>

enum fp_log_level { FP_LOG_ERROR = 0, FP_LOG_WARN, FP_LOG_INFO, FP_LOG_DEBUG };

extern int fp_log_verbosity; /* messages above this level are dropped; default INFO */
/*
 * Stamp every message with UTC time, as fp_log_event() lines are. Off for one-shot
 * commands (their output stays as it is); a daemon sets it once it runs, so library
 * and daemon messages of its log read alike.
 */
extern bool fp_log_timestamps;

void fp_log(enum fp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * A daemon's event ("applied ...", "took over ...", signals): one line on stdout, stamped
 * with UTC time to the second (2026-11-26T03:39:00Z), flushed at once.
 */
void fp_log_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Errors and warnings of this thread are also written to @f (unstamped) until
 * fp_log_capture(NULL): what a caller reports elsewhere (a node's status in etcd).
 */
#include <stdio.h>
void fp_log_capture(FILE *f);
/* Installs fp_log as libbpf's print callback (libbpf debug output only at DEBUG). */
void fp_log_route_libbpf(void);

#define fp_err(...)   fp_log(FP_LOG_ERROR, __VA_ARGS__)
#define fp_warn(...)  fp_log(FP_LOG_WARN, __VA_ARGS__)
#define fp_info(...)  fp_log(FP_LOG_INFO, __VA_ARGS__)
#define fp_debug(...) fp_log(FP_LOG_DEBUG, __VA_ARGS__)

#endif
