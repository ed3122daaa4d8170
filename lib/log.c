// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <bpf/libbpf.h>
#include <flowpin/log.h>

int fp_log_verbosity = FP_LOG_INFO;

static const char *const level_prefix[] = {
	[FP_LOG_ERROR] = "error: ",
	[FP_LOG_WARN] = "warning: ",
	[FP_LOG_INFO] = "",
	[FP_LOG_DEBUG] = "debug: ",
};

void fp_log(enum fp_log_level level, const char *fmt, ...)
{
	va_list ap;

	if ((int)level > fp_log_verbosity)
		return;
	fputs(level_prefix[level], stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

void fp_log_event(const char *fmt, ...)
{
	char stamp[32];
	time_t now = time(NULL);
	va_list ap;

	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	printf("%s ", stamp);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's info (object and program details) is noise for an operator: debug. */
	enum fp_log_level ours = level == LIBBPF_WARN ? FP_LOG_WARN : FP_LOG_DEBUG;

	if ((int)ours > fp_log_verbosity)
		return 0;
	fputs("libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

void fp_log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
