/* SPDX-License-Identifier: MIT */
/*
 * The operator's side of an LB node (`flowpin lb reload|down|status|drain|undrain|
 * disable|maintenance`): requests to the daemon's control socket (flowpin/lbd.h) and
 * the sequences that act on the node's pins and files when no daemon does. `flowpin lb`
 * prints what these return; tests may call them directly. Userspace only.
 *
 * Errors are said through fp_log (with the file or pid they concern).
 */
#ifndef FLOWPIN_LBCTL_H
#define FLOWPIN_LBCTL_H

#include <stdbool.h>
#include <json-c/json.h>
#include <flowpin/lb.h>
#include <flowpin/lbnode.h>

/*
 * The daemon's reply to @req ({"ok":true,...}, freed by the caller with
 * json_object_put()), or NULL after saying why: no daemon answers, a reply that is not
 * a JSON object with "ok", or {"ok":false} (its "error" said).
 */
json_object *fp_lbctl_ask(const struct fp_lbnode *n, json_object *req);
/* {"cmd":"status"}. */
json_object *fp_lbctl_status(const struct fp_lbnode *n);
/* {"cmd":@cmd,"backend":@backend[,"vip":@vip]}: @cmd drain, undrain or disable. */
json_object *fp_lbctl_override(const struct fp_lbnode *n, const char *cmd, const char *backend,
			       const char *vip);
/* {"cmd":"maintenance","on":@on[,"deadline_ms":N][,"until_flows":N]} (< 0: left out). */
json_object *fp_lbctl_maintenance(const struct fp_lbnode *n, bool on, long long deadline_ms,
				  long long until_flows);

/* fp_lb_open_pinned() of the node's pins; a missing pin is said with where we looked. */
int fp_lbctl_open_pinned(const struct fp_lbnode *n, struct fp_lb **lb);

/* SIGHUP to the node's daemon (it re-reads its own file). Its pid, or a negative errno. */
int fp_lbctl_signal_reload(const struct fp_lbnode *n);
/*
 * `lb reload --pop NAME`: a reload never changes the node's site; refused (-EINVAL,
 * said why) unless NAME is the site the running node records (struct fp_info pop).
 * 0 without --pop.
 */
int fp_lbctl_check_pop(const struct fp_lbnode *n);

/*
 * `lb reload --config`: under one hold of the apply lock, applies @config_abs (an
 * absolute path) with the run-time overrides through the pinned maps, records it in
 * n->config_file and tells a running daemon (SIGUSR1) to adopt it; a daemon that could
 * not be told is warned about, not an error. A corrupt overrides file applies nothing.
 * Returns 0 or a negative errno.
 */
int fp_lbctl_reload_file(const struct fp_lbnode *n, const char *config_abs);

enum fp_lbctl_down_result {
	FP_LBCTL_DOWN_STOPPED = 0, /* the daemon detached, unpinned and exited */
	FP_LBCTL_DOWN_CLEANED = 1, /* no daemon (or it left its pins): cleaned up here */
};

/*
 * `lb down`: asks the daemon to detach ({"cmd":"down"}; SIGTERM for an older daemon
 * that does not know it) and waits up to 10 s for it to exit; with no daemon, or pins
 * it left, detaches flowpin's program, unpins and removes the node's files and the VIP
 * blackhole routes here. Returns an fp_lbctl_down_result (*@pid: the daemon's, 0 without
 * one) or a negative errno.
 */
int fp_lbctl_down(const struct fp_lbnode *n, int *pid);

#endif
