/* SPDX-License-Identifier: MIT */
/*
 * The LB node daemon (`flowpin lb up`): starts or takes over the node (flowpin/lbnode.h),
 * then runs one libevent event_base until SIGTERM/SIGINT or `lb down`:
 *
 *   SIGHUP          re-read the recorded config (<run-dir>/<dev>.config), apply it
 *   SIGUSR1         `lb reload --config` applied and recorded a file: follow it
 *   SIGTERM/SIGINT  return 0 leaving everything as it is (program attached, pins, VIP
 *                   routes, BGP announcements, state files): a restart, taken over by
 *                   the next `up` (systemctl restart and stop send SIGTERM)
 *   {"cmd":"down"}  on the control socket (`lb down`): withdraw in BGP, detach, remove
 *                   the pins, the VIP routes and the files, return 0
 *
 * Signals are read from a signalfd (the sender's pid goes into the log line) and handled
 * between events, never in the middle of an apply. Every apply holds the apply lock
 * (fp_lb_lock()) across reading the record and writing the maps.
 *
 * Modules plug into the loop through fp_lbd_base() (the event_base) and the hooks below
 * (the metrics server, started once the program runs; the health module, see lbd.c).
 * Userspace only.
 */
#ifndef FLOWPIN_LBD_H
#define FLOWPIN_LBD_H

#include <stdbool.h>
#include <time.h>
#include <flowpin/addr.h>
#include <flowpin/config.h>
#include <flowpin/effective.h>
#include <flowpin/lbnode.h>

struct fp_lbd;
struct event_base;

struct fp_lbd_hooks {
	/*
	 * Once the program runs and the pid file is written, before the loop. Non-zero: `up`
	 * fails (a program this daemon loaded is detached again; one it took over keeps
	 * running, as after a crash).
	 */
	int (*started)(struct fp_lbd *d, void *arg);
	/* After every apply of the daemon (SIGHUP, run-time change): 0 or its error. */
	void (*applied)(void *arg, int err);
	/* Before the pins go at stop, and on every failure after started(). */
	void (*stopping)(void *arg);
	void *arg;
	/* A module binds a TCP/UDP port below 1024 in started(): keep CAP_NET_BIND_SERVICE. */
	bool bind_service;
};

/*
 * fp_lbd_run - `flowpin lb up`: the daemon on @n (paths, device, sources, XDP mode)
 * with @config (as given on the command line). Returns the exit status: 0 after a
 * clean stop, 1 on error (said through fp_log). @hooks may be NULL.
 */
int fp_lbd_run(const struct fp_lbnode *n, const char *config, const struct fp_lbd_hooks *hooks);

/*
 * The status model: per VIP its generation, per backend its config state, override,
 * health (from the health module; "unchecked" without one), effective state and when
 * that last changed. Rebuilt by the loop after every apply and health change, behind one
 * mutex; readable from any thread (the metrics server's) between started() and
 * stopping().
 */
struct fp_lbd_backend_status {
	__u32 id;
	struct fp_addr addr;
	enum fp_backend_state config;	 /* the file's */
	enum fp_override override;	 /* run time */
	const char *health;		 /* "unchecked", "unknown", "up", "down" (static) */
	bool health_down;		 /* what the effective state took from health */
	struct timespec health_since;	 /* CLOCK_REALTIME; 0 when unchecked */
	char health_reason[160];	 /* the health module's last reason */
	enum fp_backend_state effective; /* what the node applies */
	struct timespec last_change;	 /* CLOCK_REALTIME of the last change of effective */
	/* The health module's counters (0 when unchecked): transitions of its state, checks
	 * run and failed per kind. Refreshed by fp_lbd_status_refresh_health(). */
	__u64 health_transitions_total;
	__u64 health_probes_total[FP_CHECK_KIND__COUNT];
	__u64 health_failures_total[FP_CHECK_KIND__COUNT];
};

struct fp_lbd_vip_status {
	char name[FP_NAME_MAX];
	struct fp_addr addr;
	__u16 port; /* host order, 0: every port */
	__u8 proto;
	enum fp_pinning pinning;
	__u32 generation;	    /* the VIP's table generation in the maps */
	bool health_ignored;	    /* fail-open: health would leave no active backend */
	__u64 health_ignored_total; /* times the VIP entered fail-open */
	size_t n_backends;
	const struct fp_lbd_backend_status *backends;
};

/*
 * fp_lbd_status_foreach - calls @fn for each VIP, in config order, under the status
 * mutex (keep @fn short; the views are valid during the call only).
 */
void fp_lbd_status_foreach(struct fp_lbd *d,
			   void (*fn)(const struct fp_lbd_vip_status *v, void *arg), void *arg);
/*
 * fp_lbd_status_refresh_health - copies the health module's current view (state, since,
 * reason, counters) into the status model. The model is otherwise rebuilt only at an
 * apply or a transition, while probe counters move every round: the metrics call this
 * from a timer on fp_lbd_base(). Loop thread only (the health module is not shared).
 */
void fp_lbd_status_refresh_health(struct fp_lbd *d);

/*
 * The control socket <run-dir>/<dev>.ctl (unix stream, 0600, peers of our uid or root
 * only): one JSON object per line in, one per line back, then the daemon closes.
 *   {"cmd":"status"}
 *   {"cmd":"drain"|"undrain"|"disable","backend":"ID or ADDRESS"[,"vip":"NAME"]}
 *   {"cmd":"maintenance","on":true|false[,"deadline_ms":N][,"until_flows":N]}
 *   {"cmd":"down"}  replies {"ok":true,"pid":N}, then detaches and exits (see above)
 * Replies {"ok":true,...} or {"ok":false,"error":"..."}. Requests longer than
 * FP_LBD_MAX_REQUEST bytes are answered with an error.
 */
#define FP_LBD_MAX_REQUEST 4096

/*
 * fp_lbd_request - sends @request (one JSON object, no newline) to the daemon of @n and
 * returns its reply line in *@reply (malloc'd, without the newline). 0, or a negative
 * errno (-ENOENT/-ECONNREFUSED: no daemon answers), said through fp_log.
 */
int fp_lbd_request(const struct fp_lbnode *n, const char *request, char **reply);

/*
 * fp_lbd_fleet - with --config etcd://...: the link to etcd and the report written
 * last (flowpin/fleet.h), from any thread; -ENOENT for a node configured from a file.
 */
struct fp_fleet_state;
struct fp_fleet_report;
int fp_lbd_fleet(struct fp_lbd *d, struct fp_fleet_state *state, struct fp_fleet_report *report);

/* The daemon's event loop, for modules that add events (valid from started() on). */
struct event_base *fp_lbd_base(struct fp_lbd *d);
/* The BGP driver (flowpin/bgpd.h; NULL before started()), for the metrics. */
struct fp_bgpd *fp_lbd_bgpd(struct fp_lbd *d);
/* The node's paths (pin directory, run directory). */
const struct fp_lbnode *fp_lbd_node(const struct fp_lbd *d);

#endif
