/* SPDX-License-Identifier: MIT */
/*
 * A growing string for text the daemon renders (the BIRD include, metrics): appended to
 * with printf formats; after an allocation failure it stays failed and the caller says
 * so once at the end. Userspace only.
 */
#ifndef FLOWPIN_TEXT_H
#define FLOWPIN_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct fp_text {
	char *s; /* NUL-terminated once anything was added; free() it */
	size_t len, cap;
	bool failed;
};

void fp_text_add(struct fp_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
