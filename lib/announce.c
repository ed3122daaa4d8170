// SPDX-License-Identifier: MIT
/*
 * The BGP announcement state machine of one VIP address group (flowpin/announce.h).
 * Pure: everything it knows comes in as arguments, time included.
 *
 * One sample, in order:
 *   1. decay the penalty to now;
 *   2. rise/fall: the raw health (data plane up and a healthy backend) must disagree
 *      with the filtered one `rise` (or `fall`) samples in a row to change it; the data
 *      plane going away sets it false at once. A change from true to false is a flap:
 *      it charges the penalty (capped), and reaching `suppress` suppresses the group;
 *   3. a suppressed group whose penalty decayed below `reuse` is released;
 *   4. the state: data plane down -> WITHDRAWN; maintenance -> DRAINING, then
 *      WITHDRAWN (latched) at the deadline or below until_flows; fewer than `rise`
 *      samples since the data plane came up -> WITHDRAWN; healthy and not suppressed
 *      -> ANNOUNCED; otherwise DRAINING.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <flowpin/announce.h>

static const char *const state_names[] = {
#define FP_X(name, value, str) [value] = str,
	FP_ANNOUNCE_STATES(FP_X)
#undef FP_X
};

static const char *const reason_names[] = {
#define FP_X(name, str, help) [FP_ANNOUNCE_REASON_##name] = str,
	FP_ANNOUNCE_REASONS(FP_X)
#undef FP_X
};

static const char *const reason_helps[] = {
#define FP_X(name, str, help) [FP_ANNOUNCE_REASON_##name] = help,
	FP_ANNOUNCE_REASONS(FP_X)
#undef FP_X
};

const char *fp_announce_state_name(enum fp_announce_state s)
{
	return (unsigned int)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s]
									      : "?";
}

const char *fp_announce_reason_name(enum fp_announce_reason r)
{
	return (unsigned int)r < FP_ANNOUNCE_REASON__COUNT ? reason_names[r] : "?";
}

const char *fp_announce_reason_help(enum fp_announce_reason r)
{
	return (unsigned int)r < FP_ANNOUNCE_REASON__COUNT ? reason_helps[r] : "?";
}

void fp_announce_params_default(struct fp_announce_params *p)
{
	*p = (struct fp_announce_params){
		.rise = FP_ANNOUNCE_DEFAULT_RISE,
		.fall = FP_ANNOUNCE_DEFAULT_FALL,
		.damping = true,
		.penalty = FP_ANNOUNCE_DEFAULT_PENALTY,
		.suppress = FP_ANNOUNCE_DEFAULT_SUPPRESS,
		.reuse = FP_ANNOUNCE_DEFAULT_REUSE,
		.half_life_ns = FP_ANNOUNCE_DEFAULT_HALF_LIFE * FP_NS_PER_SEC,
		.max_suppress_ns = FP_ANNOUNCE_DEFAULT_MAX_SUPPRESS * FP_NS_PER_SEC,
	};
}

int fp_announce_params_check(const struct fp_announce_params *p, const char **why)
{
	const char *w = NULL;

	if (!p->rise || !p->fall)
		w = "rise and fall must be at least 1";
	else if (!(p->penalty > 0))
		w = "penalty must be above 0";
	else if (!(p->reuse > 0))
		w = "reuse must be above 0";
	else if (!(p->reuse < p->suppress))
		w = "reuse must be below suppress (else a suppressed address is released at once)";
	else if (!p->half_life_ns)
		w = "half_life must be above 0";
	else if (p->max_suppress_ns < p->half_life_ns)
		w = "max_suppress must be at least half_life";
	else if (fp_announce_ceiling(p) <= p->suppress)
		w = "reuse x 2^(max_suppress / half_life) must be above suppress (else the "
		    "penalty can never reach it)";
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

double fp_announce_ceiling(const struct fp_announce_params *p)
{
	if (!p->half_life_ns)
		return p->reuse;
	return p->reuse * exp2((double)p->max_suppress_ns / (double)p->half_life_ns);
}

double fp_damping_decay(double penalty, uint64_t elapsed_ns, uint64_t half_life_ns)
{
	if (!elapsed_ns || !half_life_ns)
		return penalty;
	return penalty * exp2(-((double)elapsed_ns / (double)half_life_ns));
}

double fp_announce_penalty(const struct fp_announce *a, const struct fp_announce_params *p,
			   uint64_t now_ns)
{
	uint64_t dt = now_ns > a->penalty_at_ns ? now_ns - a->penalty_at_ns : 0;

	return fp_damping_decay(a->penalty, dt, p->half_life_ns);
}

void fp_announce_init(struct fp_announce *a, enum fp_announce_state initial, uint64_t now_ns)
{
	bool serving = initial != FP_ANNOUNCE_WITHDRAWN;

	*a = (struct fp_announce){
		.state = serving ? FP_ANNOUNCE_ANNOUNCED : FP_ANNOUNCE_WITHDRAWN,
		.reason = serving ? FP_ANNOUNCE_REASON_SERVING : FP_ANNOUNCE_REASON_STARTING,
		.since_ns = now_ns,
		.up = serving,
		.samples = serving ? UINT32_MAX : 0,
		.penalty_at_ns = now_ns,
	};
}

/* A flap: the penalty charged (capped at the ceiling), suppression when it reaches it. */
static void charge(struct fp_announce *a, const struct fp_announce_params *p)
{
	double ceiling = fp_announce_ceiling(p);

	a->flaps++;
	a->penalty += p->penalty;
	if (a->penalty > ceiling)
		a->penalty = ceiling;
	if (p->damping && !a->suppressed && a->penalty >= p->suppress) {
		a->suppressed = true;
		a->suppressions++;
	}
}

/* Step 2: rise/fall over the raw health; returns nothing, updates a->up. */
static void filter_health(struct fp_announce *a, const struct fp_announce_params *p,
			  const struct fp_announce_input *in)
{
	bool raw = in->dataplane_ok && in->healthy_backends > 0;
	bool was_up = a->up;

	if (!in->dataplane_ok) {
		a->up = false;
		a->disagree = 0;
		a->samples = 0;
	} else {
		if (a->samples < UINT32_MAX)
			a->samples++;
		if (raw == a->up) {
			a->disagree = 0;
		} else if (++a->disagree >= (raw ? p->rise : p->fall)) {
			a->up = raw;
			a->disagree = 0;
		}
	}
	if (was_up && !a->up)
		charge(a, p);
}

/* Step 4 under maintenance: the state and its reason. */
static enum fp_announce_state maintenance_state(struct fp_announce *a,
						const struct fp_announce_input *in, uint64_t now_ns,
						enum fp_announce_reason *reason)
{
	const struct fp_maintenance *m = &in->maintenance;

	if (!a->in_maintenance || a->maintenance_since_ns != m->since_ns) {
		/* A new drain: one that began while withdrawn has nothing to drain. */
		a->in_maintenance = true;
		a->maintenance_since_ns = m->since_ns;
		a->maintenance_withdrawn = a->state == FP_ANNOUNCE_WITHDRAWN;
	}
	if (a->maintenance_withdrawn) {
		*reason = a->state == FP_ANNOUNCE_WITHDRAWN ? a->reason
							    : FP_ANNOUNCE_REASON_MAINTENANCE;
		return FP_ANNOUNCE_WITHDRAWN;
	}
	if (m->deadline_ns && now_ns >= m->deadline_ns) {
		a->maintenance_withdrawn = true;
		*reason = FP_ANNOUNCE_REASON_MAINTENANCE_DEADLINE;
		return FP_ANNOUNCE_WITHDRAWN;
	}
	if (m->until_flows && in->flows < m->until_flows) {
		a->maintenance_withdrawn = true;
		*reason = FP_ANNOUNCE_REASON_MAINTENANCE_FLOWS;
		return FP_ANNOUNCE_WITHDRAWN;
	}
	*reason = FP_ANNOUNCE_REASON_MAINTENANCE;
	return FP_ANNOUNCE_DRAINING;
}

enum fp_announce_state fp_announce_update(struct fp_announce *a, const struct fp_announce_params *p,
					  const struct fp_announce_input *in, uint64_t now_ns)
{
	enum fp_announce_reason reason;
	enum fp_announce_state state;

	/* 1. decay */
	a->penalty = fp_announce_penalty(a, p, now_ns);
	if (now_ns > a->penalty_at_ns)
		a->penalty_at_ns = now_ns;
	/* 2. rise/fall, flaps */
	filter_health(a, p, in);
	/* 3. release */
	if (a->suppressed && (!p->damping || a->penalty < p->reuse))
		a->suppressed = false;
	/* 4. the state */
	if (!in->dataplane_ok) {
		state = FP_ANNOUNCE_WITHDRAWN;
		reason = FP_ANNOUNCE_REASON_NO_DATAPLANE;
		if (in->maintenance.on) {
			/* Nothing left to drain in this maintenance. */
			a->in_maintenance = true;
			a->maintenance_since_ns = in->maintenance.since_ns;
			a->maintenance_withdrawn = true;
		}
	} else if (in->maintenance.on) {
		state = maintenance_state(a, in, now_ns, &reason);
	} else if (a->samples < p->rise && !a->up) {
		state = FP_ANNOUNCE_WITHDRAWN;
		reason = FP_ANNOUNCE_REASON_STARTING;
	} else if (a->up && a->suppressed) {
		state = FP_ANNOUNCE_DRAINING;
		reason = FP_ANNOUNCE_REASON_SUPPRESSED;
	} else if (a->up) {
		state = FP_ANNOUNCE_ANNOUNCED;
		reason = FP_ANNOUNCE_REASON_SERVING;
	} else {
		state = FP_ANNOUNCE_DRAINING;
		reason = FP_ANNOUNCE_REASON_NO_HEALTHY;
	}
	if (!in->maintenance.on)
		a->in_maintenance = a->maintenance_withdrawn = false;
	if (state != a->state) {
		a->state = state;
		a->since_ns = now_ns;
		a->transitions++;
	}
	a->reason = reason;
	return state;
}

void fp_bgp_params(const struct fp_bgp_cfg *b, struct fp_announce_params *p)
{
	*p = (struct fp_announce_params){
		.rise = b->rise,
		.fall = b->fall,
		.damping = b->damping,
		.penalty = b->penalty,
		.suppress = b->suppress,
		.reuse = b->reuse,
		.half_life_ns = (uint64_t)b->half_life_ms * 1000000,
		.max_suppress_ns = (uint64_t)b->max_suppress_ms * 1000000,
	};
}

size_t fp_bgp_groups(const struct fp_config *cfg, struct fp_bgp_group out[FP_MAX_VIPS])
{
	size_t n = 0;

	if (!cfg->bgp.enabled)
		return 0;
	for (size_t i = 0; i < cfg->n_vips && i < FP_MAX_VIPS; i++) {
		size_t g;

		if (!(cfg->bgp.vips & (1ULL << i)))
			continue;
		for (g = 0; g < n; g++)
			if (!memcmp(&out[g].addr, &cfg->vips[i].addr, sizeof(out[g].addr)))
				break;
		if (g == n)
			out[n++] = (struct fp_bgp_group){ .addr = cfg->vips[i].addr };
		out[g].vips |= 1ULL << i;
	}
	return n;
}

void fp_maintenance_start(struct fp_maintenance *m, const struct fp_bgp_cfg *b, uint64_t now_ns,
			  int64_t deadline_ms, int64_t until_flows)
{
	uint64_t d = deadline_ms < 0 ? b->maintenance_deadline_ms : (uint64_t)deadline_ms;

	*m = (struct fp_maintenance){
		.on = true,
		.since_ns = now_ns,
		.deadline_ns = d ? now_ns + d * 1000000 : 0,
		.until_flows = until_flows < 0 ? b->maintenance_until_flows : (uint64_t)until_flows,
	};
}
