/* SPDX-License-Identifier: MIT */
/*
 * The LB node daemon (`flowpin lb up`): starts or takes over the node (flowpin/lbnode.h),
 * then runs one libevent event_base until SIGTERM/SIGINT:
 *
 *   SIGHUP          re-read the recorded config (<run-dir>/<dev>.config), apply it
 *   SIGUSR1         `lb reload --config` applied and recorded a file: follow it
 *   SIGTERM/SIGINT  detach our program, remove the pins and the VIP routes, return 0
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
};

/*
 * fp_lbd_run - `flowpin lb up`: the daemon on @n (paths, device, sources, XDP mode)
 * with @config (as given on the command line). Returns the exit status: 0 after a
 * clean stop, 1 on error (said through fp_log). @hooks may be NULL.
 */
int fp_lbd_run(const struct fp_lbnode *n, const char *config, const struct fp_lbd_hooks *hooks);

/* The daemon's event loop, for modules that add events (valid from started() on). */
struct event_base *fp_lbd_base(struct fp_lbd *d);
/* The node's paths (pin directory, run directory). */
const struct fp_lbnode *fp_lbd_node(const struct fp_lbd *d);

#endif
