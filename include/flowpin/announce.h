/* SPDX-License-Identifier: MIT */
/*
 * When an LB node announces a VIP address over BGP: the state machine
 * ANNOUNCED -> DRAINING -> WITHDRAWN with rise/fall hysteresis, flap damping and
 * maintenance. Pure: no I/O, no clock; time is an input (CLOCK_MONOTONIC ns), so the
 * arithmetic is tested exactly (tests/unit/test_announce.c). Userspace only.
 *
 * One machine runs per announced address (a /32 or /128 route): the VIPs sharing an
 * address are one group, as one route carries them all. Its inputs, sampled by the
 * caller at a fixed interval (the bgp section's `interval`):
 *   - data plane attached and forwarding (false: WITHDRAWN at once, no hysteresis:
 *     a node that cannot forward must not attract traffic, not even as a backup);
 *   - healthy backends (the smallest count among the group's VIPs): 0 for `fall`
 *     samples in a row -> DRAINING, > 0 for `rise` samples in a row -> ANNOUNCED;
 *   - maintenance (node-wide): DRAINING at once, WITHDRAWN once the deadline passed or
 *     the flows fell below until_flows; off: back to what the other inputs say;
 *   - the node's current flow count (for until_flows).
 * DRAINING is still announced, with the GRACEFUL_SHUTDOWN community (RFC 8326): routers
 * prefer other nodes but keep this one, so a fleet whose every node drains still
 * delivers traffic somewhere (never a blackhole). Only WITHDRAWN removes the route.
 *
 * Damping (RFC 2439, with RFC 7196's suppress threshold): each flap (the filtered
 * "healthy" going from true to false; maintenance never counts) adds `penalty`; the
 * penalty decays exponentially with `half_life`; above `suppress` the group is
 * suppressed and stays DRAINING whatever its health says, until the penalty decays
 * below `reuse`. The penalty is capped at reuse x 2^(max_suppress / half_life), so a
 * group is never suppressed longer than max_suppress after its last flap.
 */
#ifndef FLOWPIN_ANNOUNCE_H
#define FLOWPIN_ANNOUNCE_H

#include <stdbool.h>
#include <stdint.h>
#include <flowpin/config.h>

#define FP_NS_PER_SEC 1000000000ULL

/* X(NAME, value, "name"): the order is the severity, WITHDRAWN the most severe. */
#define FP_ANNOUNCE_STATES(X)        \
	X(WITHDRAWN, 0, "withdrawn") \
	X(DRAINING, 1, "draining")   \
	X(ANNOUNCED, 2, "announced")

enum fp_announce_state {
#define FP_X(name, value, str) FP_ANNOUNCE_##name = value,
	FP_ANNOUNCE_STATES(FP_X)
#undef FP_X
};

/* Why a group is in its state: X(NAME, "name", "help"). */
#define FP_ANNOUNCE_REASONS(X)                                                                    \
	X(STARTING, "starting", "fewer than `rise` samples with the data plane up: withdrawn")    \
	X(SERVING, "serving", "data plane forwarding, healthy backends: announced")               \
	X(NO_DATAPLANE, "no-dataplane", "data plane not attached or not forwarding: withdrawn")   \
	X(NO_HEALTHY, "no-healthy-backends",                                                      \
	  "no healthy backend for `fall` samples: draining (still announced, as a backup)")       \
	X(SUPPRESSED, "suppressed",                                                               \
	  "flap penalty went above `suppress`: draining until it decays "                         \
	  "below `reuse`")                                                                        \
	X(MAINTENANCE, "maintenance", "maintenance on: draining")                                 \
	X(MAINTENANCE_DEADLINE, "maintenance-deadline", "maintenance deadline passed: withdrawn") \
	X(MAINTENANCE_FLOWS, "maintenance-flows",                                                 \
	  "maintenance: the node's flows fell below until_flows: withdrawn")

enum fp_announce_reason {
#define FP_X(name, str, help) FP_ANNOUNCE_REASON_##name,
	FP_ANNOUNCE_REASONS(FP_X)
#undef FP_X
		FP_ANNOUNCE_REASON__COUNT
};

/*
 * The defaults: rise 3, fall 2 samples of 1 s; damping as RFC 2439's reference
 * implementations (withdrawal penalty 1000, half-life 15 min, reuse 750, max suppress
 * 60 min) with the suppress threshold RFC 7196 recommends (6000 instead of 2000/3000).
 */
#define FP_ANNOUNCE_DEFAULT_RISE	 3
#define FP_ANNOUNCE_DEFAULT_FALL	 2
#define FP_ANNOUNCE_DEFAULT_INTERVAL_MS	 1000
#define FP_ANNOUNCE_DEFAULT_PENALTY	 1000
#define FP_ANNOUNCE_DEFAULT_SUPPRESS	 6000
#define FP_ANNOUNCE_DEFAULT_REUSE	 750
#define FP_ANNOUNCE_DEFAULT_HALF_LIFE	 900  /* seconds */
#define FP_ANNOUNCE_DEFAULT_MAX_SUPPRESS 3600 /* seconds */

struct fp_announce_params {
	uint32_t rise;	 /* samples in a row, >= 1 */
	uint32_t fall;	 /* samples in a row, >= 1 */
	bool damping;	 /* false: flaps are counted, never suppressed */
	double penalty;	 /* added per flap */
	double suppress; /* suppressed at or above */
	double reuse;	 /* unsuppressed below; < suppress */
	uint64_t half_life_ns;
	uint64_t max_suppress_ns;
};

/* Fills @p with the defaults above. */
void fp_announce_params_default(struct fp_announce_params *p);
/* 0, or -EINVAL with *@why naming the rule broken (for the config loader). */
int fp_announce_params_check(const struct fp_announce_params *p, const char **why);
/* The penalty's cap: reuse x 2^(max_suppress / half_life). */
double fp_announce_ceiling(const struct fp_announce_params *p);

/* Node-wide maintenance (`flowpin lb maintenance on|off`), an input of every group. */
struct fp_maintenance {
	bool on;
	uint64_t since_ns;    /* when it was turned on: a new value starts a new drain */
	uint64_t deadline_ns; /* withdraw at or after this time; 0: no deadline */
	uint64_t until_flows; /* withdraw once flows < until_flows; 0: only the deadline */
};

struct fp_announce_input {
	bool dataplane_ok;	   /* XDP program attached and the forwarding check passes */
	uint32_t healthy_backends; /* the smallest count among the group's VIPs */
	uint64_t flows;		   /* the node's current flow count (sessions) */
	struct fp_maintenance maintenance;
};

/* One group's machine. Read the fields; change them only through the functions. */
struct fp_announce {
	enum fp_announce_state state;
	enum fp_announce_reason reason;
	uint64_t since_ns; /* when the state last changed */
	bool up;	   /* the filtered health: what rise/fall settled on */
	uint32_t disagree; /* samples in a row whose raw health differs from up */
	uint32_t samples;  /* samples in a row with the data plane up (capped) */
	double penalty;	   /* at penalty_at_ns; fp_announce_penalty() decays it */
	uint64_t penalty_at_ns;
	bool suppressed;
	bool in_maintenance;
	bool maintenance_withdrawn; /* latched for the current maintenance */
	uint64_t maintenance_since_ns;
	uint64_t transitions;  /* state changes */
	uint64_t flaps;	       /* penalties charged */
	uint64_t suppressions; /* times suppression began */
};

/*
 * fp_announce_init - a machine at @now_ns. A cold start begins WITHDRAWN (announced
 * after `rise` good samples); a daemon taking over a node whose route is in BIRD
 * already passes ANNOUNCED, so a restart does not withdraw and re-announce it (the
 * `fall` samples still take it down if it is not healthy). DRAINING is taken as
 * ANNOUNCED (the health decides at the next samples).
 */
void fp_announce_init(struct fp_announce *a, enum fp_announce_state initial, uint64_t now_ns);

/*
 * fp_announce_update - one sample: decays the penalty to @now_ns, runs rise/fall, the
 * maintenance rules, damping, and returns the new state (also in a->state). Call it at
 * the fixed interval (rise and fall count calls); @now_ns must not go backwards (a
 * smaller value is taken as no time passed).
 */
enum fp_announce_state fp_announce_update(struct fp_announce *a, const struct fp_announce_params *p,
					  const struct fp_announce_input *in, uint64_t now_ns);

/* The penalty decayed to @now_ns (no change to @a). */
double fp_announce_penalty(const struct fp_announce *a, const struct fp_announce_params *p,
			   uint64_t now_ns);

/* @penalty after @elapsed_ns of exponential decay with @half_life_ns. */
double fp_damping_decay(double penalty, uint64_t elapsed_ns, uint64_t half_life_ns);

/* Whether the route is in BGP (announced or draining). */
static inline bool fp_announce_in_bgp(enum fp_announce_state s)
{
	return s != FP_ANNOUNCE_WITHDRAWN;
}

/* The config's `bgp` section as state machine parameters. */
void fp_bgp_params(const struct fp_bgp_cfg *b, struct fp_announce_params *p);

/* One announced address: the VIPs it carries (bit i: cfg->vips[i]). */
struct fp_bgp_group {
	struct fp_addr addr;
	uint64_t vips;
};

/*
 * fp_bgp_groups - the addresses @cfg announces (bgp.vips; none without a `bgp` section),
 * in the order of their first VIP, into @out. Returns how many.
 */
size_t fp_bgp_groups(const struct fp_config *cfg, struct fp_bgp_group out[FP_MAX_VIPS]);

/*
 * fp_maintenance_start - @m turned on at @now_ns: @deadline_ms after now (< 0: the
 * config's bgp.maintenance.deadline; 0: none), @until_flows (< 0: the config's).
 */
void fp_maintenance_start(struct fp_maintenance *m, const struct fp_bgp_cfg *b, uint64_t now_ns,
			  int64_t deadline_ms, int64_t until_flows);

const char *fp_announce_state_name(enum fp_announce_state s);
const char *fp_announce_reason_name(enum fp_announce_reason r);
const char *fp_announce_reason_help(enum fp_announce_reason r);

#endif
