// SPDX-License-Identifier: MIT
/* The LB node daemon's event loop: signals and its modules. See flowpin/lbd.h. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <event2/event.h>
#include <flowpin/bpffs.h>
#include <flowpin/config.h>
#include <flowpin/lb.h>
#include <flowpin/lbd.h>
#include <flowpin/lbnode.h>
#include <flowpin/log.h>
#include <flowpin/viproute.h>

struct fp_lbd {
	const struct fp_lbnode *node;
	struct fp_lbd_hooks hooks;
	struct fp_lb *lb;
	struct event_base *base;
	struct event *signal_ev;
	int signal_fd;
	sigset_t signals;
	char config_abs[PATH_MAX]; /* the file SIGHUP re-reads (the record, under the lock) */
	int rc;			   /* exit status once the loop ends */
};

struct event_base *fp_lbd_base(struct fp_lbd *d)
{
	return d->base;
}

const struct fp_lbnode *fp_lbd_node(const struct fp_lbd *d)
{
	return d->node;
}

static void hook_applied(struct fp_lbd *d, int err)
{
	if (d->hooks.applied)
		d->hooks.applied(d->hooks.arg, err);
}

static void hook_stopping(struct fp_lbd *d)
{
	if (d->hooks.stopping)
		d->hooks.stopping(d->hooks.arg);
	d->hooks.stopping = NULL; /* once */
}

/* SIGHUP: the recorded file, read under the lock: a `lb reload --config` that ran since
 * is what SIGHUP re-reads, whether or not its SIGUSR1 came. */
static void on_sighup(struct fp_lbd *d, pid_t from)
{
	int err;

	fp_lb_lock(d->lb);
	fp_lbnode_read_record(d->node, d->config_abs, sizeof(d->config_abs));
	fp_log_event("SIGHUP from pid %d: re-reading %s\n", (int)from, d->config_abs);
	err = fp_lbnode_apply_file(d->lb, d->config_abs, "reload", d->node->dev);
	fp_lb_unlock(d->lb);
	hook_applied(d, err);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct fp_lbd *d = arg;
	struct signalfd_siginfo si;
	ssize_t n;

	(void)what;
	for (;;) {
		n = read(fd, &si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n != (ssize_t)sizeof(si)) {
			fp_err("signalfd: %s\n", n < 0 ? strerror(errno) : "short read");
			d->rc = 1;
			event_base_loopbreak(d->base);
			return;
		}
		if (si.ssi_signo == SIGHUP) {
			on_sighup(d, (pid_t)si.ssi_pid);
		} else if (si.ssi_signo == SIGUSR1) {
			fp_lbnode_adopt_config(d->node, d->config_abs, sizeof(d->config_abs),
					       (pid_t)si.ssi_pid);
		} else {
			fp_log_event("%s from pid %d: detaching from %s\n",
				     strsignal((int)si.ssi_signo), (int)si.ssi_pid, d->node->dev);
			d->rc = 0;
			event_base_loopbreak(d->base);
			return;
		}
	}
}

/*
 * Signals are blocked in every thread (before any module starts one) and read from a
 * signalfd in the loop: no handler runs mid-apply, and the log names the sender.
 */
static int signals_open(struct fp_lbd *d)
{
	sigemptyset(&d->signals);
	sigaddset(&d->signals, SIGHUP);
	sigaddset(&d->signals, SIGUSR1);
	sigaddset(&d->signals, SIGTERM);
	sigaddset(&d->signals, SIGINT);
	if (sigprocmask(SIG_BLOCK, &d->signals, NULL)) {
		fp_err("sigprocmask: %s\n", strerror(errno));
		return -errno;
	}
	d->signal_fd = signalfd(-1, &d->signals, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->signal_fd < 0) {
		fp_err("signalfd: %s\n", strerror(errno));
		return -errno;
	}
	return 0;
}

static int signals_watch(struct fp_lbd *d)
{
	d->signal_ev = event_new(d->base, d->signal_fd, EV_READ | EV_PERSIST, on_signal, d);
	if (!d->signal_ev || event_add(d->signal_ev, NULL)) {
		fp_err("event loop: cannot watch signals\n");
		return -ENOMEM;
	}
	return 0;
}

/* Load or take over, apply, record: the node runs @cfg when this returns 0. */
static int node_up(struct fp_lbd *d, const struct fp_config *cfg, bool *adopted, bool *files)
{
	const struct fp_lbnode *p = d->node;
	char pid_text[32], prog_pin[PATH_MAX + 8];
	int err;

	/* Pins and no daemon: the previous one died; its program may still forward. */
	snprintf(prog_pin, sizeof(prog_pin), "%s/prog", p->pin_dir);
	*adopted = !access(prog_pin, F_OK);
	err = *adopted ? fp_lbnode_take_over(p, cfg, &d->lb) : fp_lbnode_start(p, cfg, &d->lb);
	if (err)
		return err;
	/* Apply (adopted: the config as a new generation) and record under one lock, so
	 * the record names the file that runs even with a `lb reload` at the same time. */
	snprintf(pid_text, sizeof(pid_text), "%d\n", (int)getpid());
	fp_lb_lock(d->lb);
	err = *adopted ? fp_lbnode_apply_file(d->lb, d->config_abs, "up", p->dev) : 0;
	if (err) {
		fp_lb_unlock(d->lb);
		fp_err("%s: the running program keeps its previous generation\n", p->dev);
		return err;
	}
	err = fp_lbnode_write_file(p->pid_file, pid_text);
	if (!err)
		err = fp_lbnode_write_file(p->config_file, d->config_abs);
	fp_lb_unlock(d->lb);
	*files = true;
	if (err) {
		fp_err("%s: %s\n", p->pid_file, strerror(-err));
		if (!*adopted)
			fp_lbnode_stop(d->lb, p->dev, p->pin_dir);
		return err;
	}
	return 0;
}

int fp_lbd_run(const struct fp_lbnode *n, const char *config, const struct fp_lbd_hooks *hooks)
{
	struct fp_lbd daemon = { .node = n, .signal_fd = -1, .rc = 1 }, *d = &daemon;
	struct fp_config *cfg = NULL;
	bool mounted = false, adopted = false, files = false;
	int err, pid;

	if (hooks)
		d->hooks = *hooks;
	if (!realpath(config, d->config_abs)) {
		fp_err("--config %s: %s\n", config, strerror(errno));
		return 1;
	}
	if (fp_config_load(d->config_abs, &cfg, stderr))
		return 1;
	pid = fp_lbnode_read_pid(n->pid_file);
	if (pid > 0) {
		fp_err("%s: flowpin lb already runs on %s (pid %d)\n", n->pid_file, n->dev, pid);
		goto out;
	}
	err = fp_mkdir_p(n->run_dir, 0755);
	if (err) {
		fp_err("--run-dir %s: %s\n", n->run_dir, strerror(-err));
		goto out;
	}
	/* `ip netns exec` remounts /sys: the lab passes a pin root of its own. */
	if (fp_bpffs_ensure(n->pin_root, &mounted))
		goto out;
	if (mounted && fp_lbnode_private_mounts())
		fp_warn("mounted a bpffs for %s in a private mount namespace (ip netns exec?): "
			"other flowpin commands will not see the pins; mount bpffs there "
			"beforehand\n",
			n->pin_root);
	/* Before any thread (metrics) exists, so none of them takes a signal. */
	if (signals_open(d))
		goto out;
	d->base = event_base_new();
	if (!d->base) {
		fp_err("event loop: cannot create it\n");
		goto out;
	}
	if (signals_watch(d))
		goto out;
	if (node_up(d, cfg, &adopted, &files))
		goto out;
	if (!adopted) {
		fp_lbnode_check_forwarding(cfg, n->dev);
		fp_lbnode_prime_neighbours(cfg);
	}
	/* After the program runs, so a module's first look finds the maps. Failing: as if
	 * up had failed. */
	if (d->hooks.started && d->hooks.started(d, d->hooks.arg)) {
		d->hooks.stopping = NULL; /* started() cleaned up after itself */
		if (!adopted)
			fp_lbnode_stop(d->lb, n->dev, n->pin_dir);
		goto out;
	}
	/* Kept over a restart or crash: the kernel refuses VIP traffic while detached. */
	fp_vip_routes_sync(cfg);
	fp_log_event(
		"up on %s (%s XDP), pinned under %s, config %s: %zu VIPs, %zu backends, pid %d\n",
		n->dev, n->xdp_generic ? "generic" : "native", n->pin_dir, d->config_abs,
		cfg->n_vips, fp_config_count_backends(cfg), (int)getpid());
	/* From here on a daemon: its warnings and errors are stamped like its events. */
	fp_log_timestamps = true;

	if (event_base_dispatch(d->base) < 0) {
		fp_err("event loop: %s\n", strerror(errno));
		d->rc = 1;
	}
	/* Before the pins go: a scrape in flight still finds them. */
	hook_stopping(d);
	if (d->rc) {
		fp_lbnode_stop(d->lb, n->dev, n->pin_dir);
		goto out;
	}
	d->rc = 1;
	if (fp_lbnode_stop(d->lb, n->dev, n->pin_dir))
		goto out;
	fp_vip_routes_remove();
	fp_log_event("down: detached from %s, pins removed, VIP blackhole routes removed\n",
		     n->dev);
	d->rc = 0;
out:
	hook_stopping(d);
	if (d->signal_ev)
		event_free(d->signal_ev);
	if (d->base)
		event_base_free(d->base);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	fp_lb_close(d->lb);
	if (files) {
		unlink(n->pid_file);
		unlink(n->config_file);
	}
	fp_config_free(cfg);
	return d->rc;
}
