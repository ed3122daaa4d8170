// SPDX-License-Identifier: MIT
/* See run.h. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
#include "run.h"

int fp_test_flowpin_path(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		return -errno;
	self[n] = 0;
	if ((size_t)snprintf(out, len, "%s/../../flowpin", dirname(self)) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int fp_test_sh(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	FILE *p;
	int status;

	va_start(ap, fmt);
	if (vsnprintf(cmd, sizeof(cmd), fmt, ap) >= (int)sizeof(cmd)) {
		va_end(ap);
		return -1;
	}
	va_end(ap);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (out && cap) {
		size_t n = fread(out, 1, cap - 1, p);

		out[n] = 0;
	}
	{
		char sink[512];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	status = pclose(p);
	return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
