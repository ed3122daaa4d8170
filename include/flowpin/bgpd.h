/* SPDX-License-Identifier: MIT */
/*
 * The daemon's BGP driver (docs/operator-lb.md "BGP stability shaping"): one
 * announcement state machine (flowpin/announce.h) per announced address of the config's
 * `bgp` section, sampled every bgp.interval on the daemon's event loop; on a change the
 * BIRD include file is rewritten (only when its text changes) and `configure` is sent
 * over BIRD's control socket without blocking the loop (flowpin/bird.h), one job at a
 * time, retried at the next sample while BIRD has not taken the file. Userspace only.
 *
 * The daemon supplies the inputs through fp_bgpd_ops; the machines are kept across
 * reloads by address and seeded, at the first configuration, from what BIRD has (a
 * restart never withdraws a route BIRD still carries). Maintenance (`flowpin lb
 * maintenance`) is node-wide and persists in a file (beside the overrides) across a
 * restart or take-over.
 */
#ifndef FLOWPIN_BGPD_H
#define FLOWPIN_BGPD_H

#include <stdbool.h>
#include <stdint.h>
#include <flowpin/announce.h>
#include <flowpin/config.h>

struct event_base;
struct fp_bgpd;
struct json_object;

struct fp_bgpd_ops {
	/* Healthy backends of cfg->vips[@vip] (config/override active and health up). */
	uint32_t (*healthy)(void *arg, size_t vip);
	/* Our program attached to the device and the device forwarding. */
	bool (*dataplane_ok)(void *arg);
	/* The node's flows (live session entries); asked only while maintenance needs it. */
	uint64_t (*flows)(void *arg);
	void *arg;
};

/* @maint_file: where maintenance persists (<run-dir>/<dev>.maintenance). */
struct fp_bgpd *fp_bgpd_new(struct event_base *base, const char *maint_file,
			    const struct fp_bgpd_ops *ops);
/*
 * fp_bgpd_configure - (re)loads @cfg's `bgp` section (@cfg stays valid until the next
 * call or fp_bgpd_free()). The first call seeds each machine from BIRD (announced or
 * draining there, or in the include file left with an alive interface: ANNOUNCED;
 * else WITHDRAWN), opens the alive interface and reads the maintenance file. Without a
 * `bgp` section: nothing runs. Returns 0 or -ENOMEM / the alive interface's error.
 */
int fp_bgpd_configure(struct fp_bgpd *b, const struct fp_config *cfg);
/*
 * fp_bgpd_maintenance - on (deadline_ms/until_flows < 0: the config's defaults) or off;
 * samples at once. 0, or -ENOENT (no `bgp` section) with @msg.
 */
int fp_bgpd_maintenance(struct fp_bgpd *b, bool on, int64_t deadline_ms, int64_t until_flows,
			char *msg, size_t msglen);
/* The `bgp` object of `lb status` (NULL without a `bgp` section). */
struct json_object *fp_bgpd_status_json(struct fp_bgpd *b);
/* Prometheus text for the metrics (any thread; malloc'd, NULL when nothing to say). */
char *fp_bgpd_metrics(struct fp_bgpd *b);
/*
 * fp_bgpd_withdraw_all - `lb down`: an include without routes, `configure` (blocking,
 * bgp.timeout), the alive interface closed. The maintenance file is removed.
 */
void fp_bgpd_withdraw_all(struct fp_bgpd *b);
/* Cancels a configure in flight, closes the alive interface (BIRD withdraws). */
void fp_bgpd_free(struct fp_bgpd *b);

#endif
