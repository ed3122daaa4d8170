// SPDX-License-Identifier: MIT
/* A strict Prometheus text exposition reader for the tests: see prom.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prom.h"

#define MAX_FAMILIES 256

struct family {
	char name[128];
	int help, type, samples, counter;
};

static int name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

static int bad(char *err, size_t len, const char *line, size_t line_len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(err, len, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < len)
		snprintf(err + n, len - (size_t)n, " in line '%.*s'", (int)line_len, line);
	return -1;
}

/* Name (into @name) and value of one sample line [@p, @end). 0 or -1. */
static int parse_sample(const char *p, const char *end, char *name, size_t len, double *value)
{
	const char *start = p;
	char num[64], *num_end;
	size_t n;

	while (p < end && name_char(*p, p == start))
		p++;
	n = (size_t)(p - start);
	if (!n || n >= len)
		return -1;
	memcpy(name, start, n);
	name[n] = '\0';
	if (p < end && *p == '{') {
		p++;
		while (p < end && *p != '}') {
			const char *l = p;

			while (p < end && name_char(*p, p == l))
				p++;
			if (p == l || p + 2 > end || p[0] != '=' || p[1] != '"')
				return -1;
			p += 2;
			while (p < end && *p != '"') {
				if (*p == '\\') {
					if (++p == end || (*p != '\\' && *p != '"' && *p != 'n'))
						return -1;
				}
				p++;
			}
			if (p++ == end)
				return -1;
			if (p < end && *p == ',')
				p++;
			else if (p == end || *p != '}')
				return -1;
		}
		if (p++ == end)
			return -1;
	}
	if (p == end || *p++ != ' ' || p == end || (size_t)(end - p) >= sizeof(num))
		return -1;
	memcpy(num, p, (size_t)(end - p));
	num[end - p] = '\0';
	*value = strtod(num, &num_end);
	return num_end != num && !*num_end ? 0 : -1;
}

static struct family *find(struct family *f, int *n, const char *name, int add)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(f[i].name, name))
			return &f[i];
	if (!add || *n == MAX_FAMILIES || strlen(name) >= sizeof(f[0].name))
		return NULL;
	memset(&f[*n], 0, sizeof(f[*n]));
	strcpy(f[*n].name, name);
	return &f[(*n)++];
}

int fp_test_prom_check(const char *text, char *err, size_t errlen)
{
	static struct family f[MAX_FAMILIES];
	int n = 0;

	if (!*text || text[strlen(text) - 1] != '\n')
		return bad(err, errlen, "", 0, "empty, or no newline at the end");
	for (const char *line = text, *eol; *line; line = eol + 1) {
		size_t len;
		char name[128], type[16];
		struct family *fam;
		double v;

		eol = strchr(line, '\n');
		len = (size_t)(eol - line);
		if (len > 7 && (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7))) {
			int is_help = line[2] == 'H';
			char copy[512];

			snprintf(copy, sizeof(copy), "%.*s", (int)len, line + 7);
			if (sscanf(copy, "%127s %15s", name, type) < (is_help ? 1 : 2))
				return bad(err, errlen, line, len, "HELP/TYPE without a name");
			fam = find(f, &n, name, 1);
			if (!fam)
				return bad(err, errlen, line, len, "too many families");
			if (fam->samples)
				return bad(err, errlen, line, len, "HELP/TYPE after samples");
			if (is_help) {
				fam->help++;
			} else {
				if (strcmp(type, "counter") && strcmp(type, "gauge"))
					return bad(err, errlen, line, len, "type '%s'", type);
				fam->counter = !strcmp(type, "counter");
				fam->type++;
			}
			if (fam->help > 1 || fam->type > 1)
				return bad(err, errlen, line, len, "second HELP/TYPE of %s", name);
			continue;
		}
		if (!len || line[0] == '#')
			return bad(err, errlen, line, len, "empty line or a stray comment");
		if (parse_sample(line, eol, name, sizeof(name), &v))
			return bad(err, errlen, line, len, "sample does not parse");
		fam = find(f, &n, name, 0);
		if (!fam || !fam->help || !fam->type)
			return bad(err, errlen, line, len, "sample before its HELP and TYPE");
		fam->samples++;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(f[i].name);
		int total = len > 6 && !strcmp(f[i].name + len - 6, "_total");

		if (f[i].help != 1 || f[i].type != 1)
			return bad(err, errlen, "", 0, "%s: HELP and TYPE not once each",
				   f[i].name);
		if (strncmp(f[i].name, "flowpin_", 8))
			return bad(err, errlen, "", 0, "%s: no flowpin_ prefix", f[i].name);
		if (total != f[i].counter)
			return bad(err, errlen, "", 0, "%s: _total if and only if a counter",
				   f[i].name);
	}
	return n;
}

int fp_test_prom_value(const char *text, const char *series, double *value)
{
	size_t n = strlen(series);

	for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
		char *end;

		if (strncmp(line, series, n) || line[n] != ' ')
			continue;
		*value = strtod(line + n + 1, &end);
		if (end != line + n + 1 && (*end == '\n' || !*end))
			return 0;
	}
	return -1;
}
