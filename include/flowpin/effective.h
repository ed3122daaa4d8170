/* SPDX-License-Identifier: MIT */
/*
 * The effective state of each (VIP, backend) on an LB node: the most restrictive of
 *
 *   config state   active | draining | down     (the file, the source of truth)
 *   override       none | drain | disable       (run time: `flowpin lb drain|disable`)
 *   health         unknown or up: no change; down: like drain
 *
 * with one exception, fail-open: when health alone would leave a VIP without an active
 * backend (config and overrides leave some), health is ignored for that VIP: a VIP is
 * never blackholed by its health checks. Pure functions (no I/O), unit-tested in
 * tests/unit/test_effective.c; the daemon (lib/lbd.c) applies the result as a new
 * generation.
 *
 * Run-time overrides are keyed by (VIP name, backend id) and persist in
 * <run-dir>/<dev>.overrides, one "VIP ID drain|disable" per line (fp_overrides_load,
 * fp_overrides_save). Userspace only.
 */
#ifndef FLOWPIN_EFFECTIVE_H
#define FLOWPIN_EFFECTIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <flowpin/config.h>

enum fp_override {
	FP_OVERRIDE_NONE = 0,
	FP_OVERRIDE_DRAIN = 1,
	FP_OVERRIDE_DISABLE = 2,
};

/* "none", "drain", "disable". */
const char *fp_override_name(enum fp_override o);

/* One backend: the most restrictive of the three (no fail-open: see fp_effective_vip). */
enum fp_backend_state fp_effective_state(enum fp_backend_state config, enum fp_override o,
					 bool health_down);

struct fp_effective_in {
	enum fp_backend_state config;
	enum fp_override override;
	bool health_down;
};

/*
 * fp_effective_vip - the effective state of a VIP's @n backends into @out[0..n).
 * Returns true when health was ignored for this VIP (fail-open: with health the VIP
 * would have no active backend, without it it has one).
 */
bool fp_effective_vip(const struct fp_effective_in *in, size_t n, enum fp_backend_state *out);

/* ---- run-time overrides ---- */

struct fp_override_entry {
	char vip[FP_NAME_MAX];
	__u32 backend;
	enum fp_override what; /* never NONE in a set */
};

struct fp_overrides {
	struct fp_override_entry *v;
	size_t n;
};

#define FP_OVERRIDES_MAX 65536 /* entries in a set (and lines read from the file) */

/* The override of (@vip, @backend); NONE when there is none. */
enum fp_override fp_overrides_get(const struct fp_overrides *o, const char *vip, __u32 backend);
/* Sets (NONE: removes) one override. 0, -ENOMEM, or -E2BIG past FP_OVERRIDES_MAX. */
int fp_overrides_set(struct fp_overrides *o, const char *vip, __u32 backend, enum fp_override what);
void fp_overrides_free(struct fp_overrides *o);

/*
 * fp_overrides_load - read @path into @o (emptied first). A missing file is an empty
 * set (0). A line that does not parse is skipped and named on @err (FILE:LINE: ...).
 */
int fp_overrides_load(const char *path, struct fp_overrides *o, FILE *err);
/* Writes @o to @path aside and renames it in place (a reader never sees half a file). */
int fp_overrides_save(const char *path, const struct fp_overrides *o);

/*
 * fp_overrides_prune - drops overrides whose VIP or backend @cfg does not have; each
 * dropped one is passed to @dropped (may be NULL). Returns how many were dropped.
 */
size_t fp_overrides_prune(struct fp_overrides *o, const struct fp_config *cfg,
			  void (*dropped)(const struct fp_override_entry *e, void *arg), void *arg);

/* ---- a whole config ---- */

/* Health of (VIP name, backend id): true while up, unknown or unchecked. */
typedef bool (*fp_health_up_fn)(void *arg, const char *vip, __u32 backend);

/*
 * fp_effective_config - a copy of @cfg whose backend states are the effective ones under
 * @o (may be NULL) and @health (may be NULL: every backend up). @health_ignored (may be
 * NULL): cfg->n_vips flags, set for each VIP where fail-open ignored health.
 * Returns 0 or -ENOMEM; the copy is freed with fp_config_free().
 */
int fp_effective_config(const struct fp_config *cfg, const struct fp_overrides *o,
			fp_health_up_fn health, void *arg, struct fp_config **out,
			bool *health_ignored);

#endif
