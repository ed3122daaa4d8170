/* SPDX-License-Identifier: MIT */
/*
 * Text helpers, userspace only: a growing string for text the daemon renders (the BIRD
 * include, metrics), and hex for keys and identifiers in config files and on the CLI.
 */
#ifndef FLOWPIN_TEXT_H
#define FLOWPIN_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

/*
 * A growing string: appended to with printf formats; after an allocation failure it
 * stays failed and the caller says so once at the end.
 */
struct fp_text {
	char *s; /* NUL-terminated once anything was added; free() it */
	size_t len, cap;
	bool failed;
};

void fp_text_add(struct fp_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * fp_hex_parse - exactly @len octets from @s: 2 x @len hex digits (either case), nothing
 * else. Returns 0, or -EINVAL (and @out partly written).
 */
int fp_hex_parse(const char *s, __u8 *out, size_t len);
/* fp_hex - @len octets as 2 x @len lowercase hex digits and a NUL into @out. */
void fp_hex(const __u8 *in, size_t len, char *out);

/*
 * JSON as the daemons write it and the commands read it (json-c): a CLOCK_REALTIME time
 * as "2026-12-03T08:45:23Z" (NULL, i.e. JSON null, for 0); a member of @o as text for a
 * human ("-" when missing, null or empty).
 */
struct json_object;
struct timespec;
struct json_object *fp_json_time(const struct timespec *ts);
const char *fp_json_field(struct json_object *o, const char *name);

#endif
