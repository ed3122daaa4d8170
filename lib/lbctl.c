// SPDX-License-Identifier: MIT
/*
 * The operator's side of an LB node: control-socket requests, `lb reload --config` and
 * `lb down` (flowpin/lbctl.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <flowpin/effective.h>
#include <flowpin/lbctl.h>
#include <flowpin/lbd.h>
#include <flowpin/log.h>
#include <flowpin/viproute.h>

json_object *fp_lbctl_ask(const struct fp_lbnode *n, json_object *req)
{
	const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	json_object *r, *ok, *error;
	char *line = NULL;

	if (fp_lbd_request(n, text, &line))
		return NULL;
	r = json_tokener_parse(line);
	if (!r || !json_object_is_type(r, json_type_object) ||
	    !json_object_object_get_ex(r, "ok", &ok)) {
		fp_err("%s: the daemon's reply is not what flowpin expects: %.200s\n", n->ctl_file,
		       line);
		json_object_put(r);
		r = NULL;
	} else if (!json_object_get_boolean(ok)) {
		fp_err("%s\n", json_object_object_get_ex(r, "error", &error)
				       ? json_object_get_string(error)
				       : "refused");
		json_object_put(r);
		r = NULL;
	}
	free(line);
	return r;
}

/* fp_lbctl_ask() of @req, which it consumes. */
static json_object *ask_put(const struct fp_lbnode *n, json_object *req)
{
	json_object *r = fp_lbctl_ask(n, req);

	json_object_put(req);
	return r;
}

json_object *fp_lbctl_status(const struct fp_lbnode *n)
{
	json_object *req = json_object_new_object();

	json_object_object_add(req, "cmd", json_object_new_string("status"));
	return ask_put(n, req);
}

json_object *fp_lbctl_override(const struct fp_lbnode *n, const char *cmd, const char *backend,
			       const char *vip)
{
	json_object *req = json_object_new_object();

	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	json_object_object_add(req, "backend", json_object_new_string(backend));
	if (vip)
		json_object_object_add(req, "vip", json_object_new_string(vip));
	return ask_put(n, req);
}

json_object *fp_lbctl_maintenance(const struct fp_lbnode *n, bool on, long long deadline_ms,
				  long long until_flows)
{
	json_object *req = json_object_new_object();

	json_object_object_add(req, "cmd", json_object_new_string("maintenance"));
	json_object_object_add(req, "on", json_object_new_boolean(on));
	if (deadline_ms >= 0)
		json_object_object_add(req, "deadline_ms", json_object_new_int64(deadline_ms));
	if (until_flows >= 0)
		json_object_object_add(req, "until_flows", json_object_new_int64(until_flows));
	return ask_put(n, req);
}

int fp_lbctl_open_pinned(const struct fp_lbnode *n, struct fp_lb **lb)
{
	/* fp_lb_open_pinned() names the missing pin; add where we looked. */
	int err = fp_lb_open_pinned(n->pin_dir, lb);

	if (err == -ENOENT)
		fp_err("(--dev and --pin-root must match those of `flowpin lb up`)\n");
	return err;
}

int fp_lbctl_check_pop(const struct fp_lbnode *n)
{
	struct fp_lb *lb = NULL;
	struct fp_info info;
	int err;

	if (!n->pop)
		return 0;
	err = fp_lbctl_open_pinned(n, &lb);
	if (!err)
		err = fp_lb_info(lb, &info);
	fp_lb_close(lb);
	if (err)
		return err;
	info.pop[sizeof(info.pop) - 1] = '\0';
	if (!strcmp(info.pop, n->pop))
		return 0;
	fp_err("--pop %s: the node on %s runs as %s%s%s; a reload never changes it (lb down, "
	       "then lb up --pop)\n",
	       n->pop, n->dev, info.pop[0] ? "site '" : "no site", info.pop,
	       info.pop[0] ? "'" : "");
	return -EINVAL;
}

int fp_lbctl_signal_reload(const struct fp_lbnode *n)
{
	int pid = fp_lbnode_read_pid(n->pid_file);

	if (pid <= 0) {
		fp_err("%s: no flowpin lb daemon on %s to signal\n", n->pid_file, n->dev);
		return -ESRCH;
	}
	if (kill(pid, SIGHUP)) {
		int err = -errno;

		fp_err("pid %d: %s\n", pid, strerror(-err));
		return err;
	}
	return pid;
}

int fp_lbctl_reload_file(const struct fp_lbnode *n, const char *config_abs)
{
	struct fp_overrides overrides = { 0 };
	struct fp_lb *lb = NULL;
	int pid, err;

	err = fp_lbctl_open_pinned(n, &lb);
	if (err)
		goto out;
	/*
	 * Apply, record and signal under one hold of the apply lock: two reloads at once
	 * leave the record naming the file whose generation runs (the later one), and the
	 * daemon's SIGHUP, which reads the record under the same lock, re-reads that file.
	 */
	err = fp_lb_lock(lb);
	if (err)
		goto out;
	/* The daemon's run-time overrides stay in effect (read under the lock). */
	err = fp_overrides_load(n->overrides_file, &overrides, stderr);
	if (err) {
		/* Applying without them would undrain what an operator drained. */
		fp_err("%s: %s: nothing applied; fix the file or remove it\n", n->overrides_file,
		       strerror(-err));
		fp_lb_unlock(lb);
		goto out;
	}
	err = fp_lbnode_apply_file(lb, config_abs, "flowpin lb reload", n->dev, &overrides);
	if (err) {
		fp_lb_unlock(lb);
		goto out;
	}
	pid = fp_lbnode_read_pid(n->pid_file);
	if (pid > 0) {
		int werr = fp_lbnode_write_file(n->config_file, config_abs);

		if (werr || kill(pid, SIGUSR1))
			fp_warn("applied, but the daemon (pid %d) was not told (%s): its next "
				"SIGHUP re-reads its old file\n",
				pid, strerror(werr ? -werr : errno));
	}
	fp_lb_unlock(lb);
out:
	fp_overrides_free(&overrides);
	fp_lb_close(lb);
	return err;
}

/* Waits up to 10 s for the daemon's pid file to go: 0, or -ETIMEDOUT. */
static int wait_exit(const struct fp_lbnode *n)
{
	for (int i = 0; i < 100 && fp_lbnode_read_pid(n->pid_file) > 0; i++)
		usleep(100000);
	return fp_lbnode_read_pid(n->pid_file) > 0 ? -ETIMEDOUT : 0;
}

/*
 * Asks the daemon to detach over its control socket ({"cmd":"down"}); SIGTERM alone
 * leaves the program running (a restart). A daemon that does not know "down" (an older
 * build still running after an upgrade) detaches on SIGTERM: that is the fallback.
 */
int fp_lbctl_down(const struct fp_lbnode *n, int *pid_out)
{
	struct fp_lb *lb = NULL;
	int pid = fp_lbnode_read_pid(n->pid_file);
	char *reply = NULL;
	bool asked;
	int err;

	*pid_out = pid > 0 ? pid : 0;
	if (pid > 0) {
		asked = !fp_lbd_request(n, "{\"cmd\":\"down\"}", &reply) && reply &&
			strstr(reply, "\"ok\":true");
		free(reply);
		/* ESRCH: it exited meanwhile (its reply lost): clean up below. */
		if (!asked && kill(pid, SIGTERM) && errno != ESRCH) {
			err = -errno;
			fp_err("pid %d: %s\n", pid, strerror(-err));
			return err;
		}
		err = wait_exit(n);
		if (err) {
			fp_err("pid %d did not exit within 10 s of %s\n", pid,
			       asked ? "`down` on its control socket" : "SIGTERM");
			return err;
		}
		if (access(n->pin_dir, F_OK))
			return FP_LBCTL_DOWN_STOPPED;
		/* Its pins outlived it (it failed to detach, or SIGTERM left them): ours now. */
		fp_warn("pid %d exited leaving %s: detaching here\n", pid, n->pin_dir);
	}
	/* No daemon (killed, crashed): clean up what it left. */
	err = fp_lb_open_pinned(n->pin_dir, &lb);
	if (err == -ENOENT) {
		fp_err("%s: nothing to stop: no daemon (%s) and no pins (%s)\n", n->dev,
		       n->pid_file, n->pin_dir);
		return err;
	}
	if (!err)
		err = fp_lbnode_stop(lb, n->dev, n->pin_dir);
	fp_lb_close(lb);
	if (err) {
		fp_err("%s: %s\n", n->pin_dir, strerror(-err));
		return err;
	}
	unlink(n->pid_file);
	unlink(n->config_file);
	unlink(n->overrides_file);
	unlink(n->ctl_file);
	fp_vip_routes_remove();
	return FP_LBCTL_DOWN_CLEANED;
}
