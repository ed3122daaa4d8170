/* SPDX-License-Identifier: MIT */
/*
 * Health checks of an LB node's backends (docs/operator-lb.md "Health checks"; the
 * config: docs/config.md "health"). Userspace only.
 *
 * Two layers, as GLB splits its checker from its dampener:
 *   - a pure state machine per (VIP, backend): probe results in, state out
 *     (unknown -> up after `rise` successes in a row, -> down after `fall` failures in
 *     a row; up <-> down the same way), with counters and the last reason. No I/O,
 *     unit-tested alone (tests/unit/test_health.c).
 *   - the prober on a libevent event_base: every `interval`, one round per backend runs
 *     all of its VIP's checks at once (tcp: non-blocking connect; http/https: libcurl's
 *     multi interface driven by the same base; tunnel: a GUE probe from the node's
 *     outer source address to backend:encap_port, reflected by the backend agent); the
 *     round passes when every check passed within `timeout`.
 * Probes leave from the LB node's own stack to the backend's own address: never to a
 * VIP, never through the XDP program's forwarding, so they do not depend on the data
 * plane they judge. Every transition is an fp_log_event() line with its reason.
 */
#ifndef FLOWPIN_HEALTH_H
#define FLOWPIN_HEALTH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <flowpin/addr.h>
#include <flowpin/config.h>

struct event_base;

enum fp_health_status {
	FP_HEALTH_UNKNOWN = 0, /* no verdict yet: counts as up */
	FP_HEALTH_UP,
	FP_HEALTH_DOWN,
};

const char *fp_health_status_name(enum fp_health_status s); /* "unknown", "up", "down" */

#define FP_HEALTH_REASON_MAX 160

/* ---------------------------------------------------------------------------------- */
/* The state machine (pure)                                                            */

struct fp_health_state {
	enum fp_health_status status;
	struct timespec since;	/* CLOCK_REALTIME of the last transition (or of creation) */
	__u32 successes_in_row; /* rounds passed since the last failed one */
	__u32 failures_in_row;	/* rounds failed since the last passed one */
	uint64_t transitions_total;
	uint64_t probes_total[FP_CHECK_KIND__COUNT];   /* checks run, per kind */
	uint64_t failures_total[FP_CHECK_KIND__COUNT]; /* checks failed, per kind */
	char reason[FP_HEALTH_REASON_MAX];	       /* why the last round passed or failed */
};

/* A new checker: unknown since @now, counters zero. */
void fp_health_state_init(struct fp_health_state *s, const struct timespec *now);

/*
 * One round's result: @ok, and @reason (what failed, or what passed). Counts the row,
 * and moves the state when the row reaches @rise (to up) or @fall (to down); a state
 * never moves within its own direction, and unknown leaves by the first row that
 * reaches either. Returns true when the state changed (since = @now, transitions_total
 * counted). Per-check counters are the caller's (fp_health_state_count_check()).
 */
bool fp_health_state_round(struct fp_health_state *s, __u32 rise, __u32 fall, bool ok,
			   const char *reason, const struct timespec *now);
void fp_health_state_count_check(struct fp_health_state *s, enum fp_check_kind kind, bool ok);

/* ---------------------------------------------------------------------------------- */
/* The prober                                                                          */

struct fp_health;

/* What fp_health_foreach() shows of one (VIP, backend); valid during the callback. */
struct fp_health_view {
	const char *vip;
	uint16_t backend_id;
	struct fp_addr addr;
	enum fp_health_status state;
	struct timespec since; /* CLOCK_REALTIME */
	const char *reason;
	__u32 successes_in_row, failures_in_row;
	uint64_t transitions_total;
	uint64_t probes_total[FP_CHECK_KIND__COUNT];
	uint64_t failures_total[FP_CHECK_KIND__COUNT];
	size_t n_checks; /* checks of its VIP */
};

/*
 * fp_health_new - a prober on @base. @on_change runs in @base's loop after a transition
 * (already logged with its reason). Returns NULL on allocation failure (errno set).
 */
struct fp_health *fp_health_new(struct event_base *base, void (*on_change)(void *arg), void *arg);

/*
 * The LB node's outer source addresses (either may be NULL): tunnel probes leave from
 * the one of the backend's family, the address backends accept in lb_sources. Without
 * one, a tunnel check of that family fails with that reason.
 */
void fp_health_set_sources(struct fp_health *h, const struct fp_addr *v4, const struct fp_addr *v6);

/*
 * fp_health_configure - (re)builds the checkers from @cfg: one per (VIP with checks,
 * backend not `down` in the file). A checker whose (VIP name, backend id, address,
 * checks, interval, timeout, rise, fall) is unchanged keeps its state and counters;
 * the others start unknown; checkers that left are dropped (their probes cancelled).
 * Returns 0 or -ENOMEM (then the previous checkers stay).
 */
int fp_health_configure(struct fp_health *h, const struct fp_config *cfg);

/* True while (@vip, @backend_id) is unknown, up, or not checked at all. */
bool fp_health_backend_up(const struct fp_health *h, const char *vip, uint16_t backend_id);

/* Every checker, in config order (VIPs, then their backends). */
void fp_health_foreach(const struct fp_health *h,
		       void (*fn)(const struct fp_health_view *v, void *arg), void *arg);

/*
 * How many transitions to or from down there have been: the ones that change what
 * fp_health_backend_up() says (unknown -> up does not). A caller that applies tables on
 * @on_change can skip the transitions that change nothing.
 */
uint64_t fp_health_down_changes(const struct fp_health *h);

/* Cancels every probe and frees @h; NULL is fine. */
void fp_health_free(struct fp_health *h);

#endif
