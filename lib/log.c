// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <bpf/libbpf.h>
#include <flowpin/log.h>

int fp_log_verbosity = FP_LOG_INFO;
bool fp_log_timestamps;
/* fp_log_capture(): this thread's copy of its errors and warnings. */
static __thread FILE *capture;

void fp_log_capture(FILE *f)
{
	capture = f;
}

static const char *const level_prefix[] = {
	[FP_LOG_ERROR] = "error: ",
	[FP_LOG_WARN] = "warning: ",
	[FP_LOG_INFO] = "",
	[FP_LOG_DEBUG] = "debug: ",
};

/* "2026-11-26T03:39:00Z ": UTC, to the second. */
static void stamp(FILE *f)
{
	char text[32];
	time_t now = time(NULL);

	strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ ", gmtime(&now));
	fputs(text, f);
}

/* One line (or the part of one a caller writes) to @f, with the stamp when asked. */
static int emit(FILE *f, bool stamped, const char *prefix, const char *fmt, va_list ap)
{
	if (stamped)
		stamp(f);
	fputs(prefix, f);
	return vfprintf(f, fmt, ap);
}

void fp_log(enum fp_log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > fp_log_verbosity)
		return;
	if (capture && level <= FP_LOG_WARN) {
		va_start(ap, fmt);
		emit(capture, false, level_prefix[level], fmt, ap);
		va_end(ap);
	}
	va_start(ap, fmt);
	emit(stderr, fp_log_timestamps, level_prefix[level], fmt, ap);
	va_end(ap);
}

void fp_log_event(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(stdout, true, "", fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's info (object and program details) is noise for an operator: debug. */
	enum fp_log_level ours = level == LIBBPF_WARN ? FP_LOG_WARN : FP_LOG_DEBUG;

	if ((int)ours > fp_log_verbosity)
		return 0;
	return emit(stderr, fp_log_timestamps, "libbpf: ", fmt, ap);
}

void fp_log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
