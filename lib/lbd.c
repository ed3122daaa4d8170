// SPDX-License-Identifier: MIT
/*
 * The LB node daemon: one libevent loop for signals, the control socket and the health
 * module; the effective config applied as generations; the status model. See
 * flowpin/lbd.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <flowpin/bgpd.h>
#include <flowpin/bpffs.h>
#include <flowpin/config.h>
#include <flowpin/effective.h>
#include <flowpin/etcd.h>
#include <flowpin/fleet.h>
#include <flowpin/instance.h>
#include <flowpin/lb.h>
#include <flowpin/lbd.h>
#include <flowpin/lbnode.h>
#include <flowpin/log.h>
#include <flowpin/text.h>
#include <flowpin/viproute.h>

/* The health module (lib/health.c) plugs in when its header is in the tree. */
#if defined(__has_include)
#if __has_include(<flowpin/health.h>)
#include <flowpin/health.h>
#define FP_LBD_HEALTH 1
#endif
#endif

#define MAX_CONNECTIONS 16
/* Requests are flat objects: deeper is hostile (json-c's default is 32). */
#define CTL_MAX_DEPTH 4
/* lb maintenance --deadline's bound, for a request sent by other means too. */
#define MAINT_MAX_DEADLINE_MS (7LL * 86400 * 1000)
#define CONN_TIMEOUT_S	      10

struct fp_lbd {
	const struct fp_lbnode *node;
	struct fp_lbd_hooks hooks;
	struct fp_lb *lb;
	struct event_base *base;
	struct event *signal_ev;
	int signal_fd;
	sigset_t signals;
	char config_abs[PATH_MAX]; /* the file SIGHUP re-reads (the record, under the lock) */
	struct fp_config *cfg;	   /* that file, as last applied */
	struct fp_overrides overrides;
	struct fp_health *health;
	struct event *health_ev;      /* applies health transitions, once per loop pass */
	uint64_t health_applied;      /* fp_health_down_changes() the tables follow */
	struct fp_bgpd *bgpd;	      /* BGP announcements (NULL until started) */
	struct fp_instance *instance; /* the node's pid file, locked while we live */
	struct evconnlistener *ctl;
	bool ctl_bound;
	int connections;
	int rc;	     /* exit status once the loop ends */
	bool detach; /* `lb down` asked: detach, withdraw, unpin at exit (else leave it) */

	/* --config etcd://...: the fleet's config from etcd (flowpin/fleet.h). */
	bool from_etcd;
	struct fp_etcd_target etcd;
	struct fp_etcd_auth etcd_auth;
	struct fp_fleet_member *fleet;
	struct fp_fleet_report fleet_report; /* the loop's copy */
	struct fp_fleet_cache etcd_cache;    /* <run-dir>/<dev>.etcd.yaml: applied last */

	/* The status model: written by the loop, read by anyone, under status_lock. */
	pthread_mutex_t status_lock;
	struct fp_lbd_vip_status *vips;
	struct fp_lbd_backend_status *backends; /* every VIP's, in one array */
	size_t n_vips;
};

struct event_base *fp_lbd_base(struct fp_lbd *d)
{
	return d->base;
}

const struct fp_lbnode *fp_lbd_node(const struct fp_lbd *d)
{
	return d->node;
}

struct fp_bgpd *fp_lbd_bgpd(struct fp_lbd *d)
{
	return d->bgpd;
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

/* ---- health ---- */

static bool health_up(void *arg, const char *vip, __u32 backend)
{
#ifdef FP_LBD_HEALTH
	struct fp_lbd *d = arg;

	return !d->health || fp_health_backend_up(d->health, vip, (uint16_t)backend);
#else
	(void)arg, (void)vip, (void)backend;
	return true;
#endif
}

/* ---- the status model ---- */

struct vip_gen {
	const struct fp_vip_cfg *vip;
	__u32 generation;
};

static int find_generation(const struct fp_vip_key *key, const struct fp_vip *vip, void *ctx)
{
	struct vip_gen *g = ctx;

	if (!memcmp(key->addr, g->vip->addr.a, 16) && ntohs(key->port) == g->vip->port &&
	    key->proto == g->vip->proto) {
		g->generation = vip->generation;
		return 1;
	}
	return 0;
}

static const struct fp_lbd_backend_status *old_backend(const struct fp_lbd *d, const char *vip,
						       __u32 id)
{
	for (size_t v = 0; v < d->n_vips; v++) {
		if (strcmp(d->vips[v].name, vip))
			continue;
		for (size_t b = 0; b < d->vips[v].n_backends; b++)
			if (d->vips[v].backends[b].id == id)
				return &d->vips[v].backends[b];
	}
	return NULL;
}

static const struct fp_lbd_vip_status *old_vip(const struct fp_lbd *d, const char *vip)
{
	for (size_t v = 0; v < d->n_vips; v++)
		if (!strcmp(d->vips[v].name, vip))
			return &d->vips[v];
	return NULL;
}

#ifdef FP_LBD_HEALTH
struct health_fill {
	struct fp_lbd_vip_status *vips;
	size_t n_vips;
};

static void fill_health(const struct fp_health_view *h, void *arg)
{
	struct health_fill *f = arg;

	for (size_t v = 0; v < f->n_vips; v++) {
		struct fp_lbd_vip_status *vip = &f->vips[v];

		if (strcmp(vip->name, h->vip))
			continue;
		for (size_t b = 0; b < vip->n_backends; b++) {
			struct fp_lbd_backend_status *s = (void *)&vip->backends[b];

			if (s->id != h->backend_id)
				continue;
			s->health = fp_health_status_name(h->state);
			s->health_since = h->since;
			snprintf(s->health_reason, sizeof(s->health_reason), "%s",
				 h->reason ? h->reason : "");
			s->health_transitions_total = h->transitions_total;
			for (int k = 0; k < FP_CHECK_KIND__COUNT; k++) {
				s->health_probes_total[k] = h->probes_total[k];
				s->health_failures_total[k] = h->failures_total[k];
			}
		}
	}
}
#endif

/*
 * Rebuilds the model from the running config, its effective copy @eff and @ignored
 * (fail-open per VIP), and swaps it in under the mutex. Logs VIPs entering and leaving
 * fail-open.
 */
static void status_rebuild(struct fp_lbd *d, const struct fp_config *eff, const bool *ignored)
{
	const struct fp_config *cfg = d->cfg;
	struct fp_lbd_vip_status *vips = calloc(cfg->n_vips + 1, sizeof(*vips));
	struct fp_lbd_backend_status *all = calloc(fp_config_count_backends(cfg) + 1, sizeof(*all));
	struct timespec now;
	size_t k = 0;

	if (!vips || !all) {
		free(vips);
		free(all);
		fp_warn("status: out of memory, `lb status` shows the previous state\n");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t v = 0; v < cfg->n_vips; v++) {
		const struct fp_vip_cfg *c = &cfg->vips[v];
		const struct fp_lbd_vip_status *was = old_vip(d, c->name);
		struct fp_lbd_vip_status *s = &vips[v];
		struct vip_gen g = { .vip = c };

		snprintf(s->name, sizeof(s->name), "%s", c->name);
		s->addr = c->addr;
		s->port = c->port;
		s->proto = c->proto;
		s->pinning = c->pinning;
		fp_lb_for_each_vip(d->lb, find_generation, &g);
		s->generation = g.generation;
		s->health_ignored = ignored[v];
		s->health_ignored_total = was ? was->health_ignored_total : 0;
		if (ignored[v] && !(was && was->health_ignored)) {
			s->health_ignored_total++;
			fp_log_event("VIP %s: health would leave it no active backend: health "
				     "ignored for this VIP (fail-open), its backends keep their "
				     "config and override states\n",
				     c->name);
		} else if (!ignored[v] && was && was->health_ignored) {
			fp_log_event("VIP %s: health followed again (an active backend is up)\n",
				     c->name);
		}
		s->backends = &all[k];
		s->n_backends = c->n_backends;
		for (size_t b = 0; b < c->n_backends; b++, k++) {
			const struct fp_lbd_backend_status *old =
				old_backend(d, c->name, c->backends[b].id);
			struct fp_lbd_backend_status *bs = &all[k];

			bs->id = c->backends[b].id;
			bs->addr = c->backends[b].addr;
			bs->config = c->backends[b].state;
			bs->override = fp_overrides_get(&d->overrides, c->name, bs->id);
			bs->health = "unchecked";
			bs->health_down = !ignored[v] && !health_up(d, c->name, bs->id);
			bs->effective = eff->vips[v].backends[b].state;
			bs->last_change =
				old && old->effective == bs->effective ? old->last_change : now;
		}
	}
#ifdef FP_LBD_HEALTH
	if (d->health) {
		struct health_fill f = { vips, cfg->n_vips };

		fp_health_foreach(d->health, fill_health, &f);
	}
#endif
	pthread_mutex_lock(&d->status_lock);
	free(d->backends);
	free(d->vips);
	d->vips = vips;
	d->backends = all;
	d->n_vips = cfg->n_vips;
	pthread_mutex_unlock(&d->status_lock);
}

void fp_lbd_status_refresh_health(struct fp_lbd *d)
{
#ifdef FP_LBD_HEALTH
	if (!d->health)
		return;
	pthread_mutex_lock(&d->status_lock);
	struct health_fill f = { d->vips, d->n_vips };

	fp_health_foreach(d->health, fill_health, &f);
	pthread_mutex_unlock(&d->status_lock);
#else
	(void)d;
#endif
}

void fp_lbd_status_foreach(struct fp_lbd *d,
			   void (*fn)(const struct fp_lbd_vip_status *v, void *arg), void *arg)
{
	pthread_mutex_lock(&d->status_lock);
	for (size_t v = 0; v < d->n_vips; v++)
		fn(&d->vips[v], arg);
	pthread_mutex_unlock(&d->status_lock);
}

/* ---- applying the effective config ---- */

static void log_dropped(const struct fp_override_entry *e, void *arg)
{
	(void)arg;
	fp_log_event("override %s of backend %u of VIP %s dropped: the config has no such "
		     "backend any more\n",
		     fp_override_name(e->what), e->backend, e->vip);
}

/*
 * Makes a loaded @cfg the node's view: in a fleet of sites, the site it was started as
 * (lb up --pop); refused (said on @err) when the config and the node disagree about sites.
 * On failure *cfg is freed and NULL. Every config the daemon takes, from a file or from
 * etcd, goes through here.
 */
static int node_view(const struct fp_lbd *d, struct fp_config **cfg, FILE *err)
{
	int ret = fp_config_select_pop(*cfg, d->node->pop, err);

	if (ret) {
		fp_config_free(*cfg);
		*cfg = NULL;
	}
	return ret;
}

/*
 * Applies @cfg (a config file as loaded) with @ov and health in effect, as the next
 * generation ("@why: applied ..."). On success the daemon runs @cfg (ownership taken,
 * unless it is d->cfg already) with @ov (moved into d->overrides) and the model follows;
 * on error nothing changes (the caller keeps @cfg and @ov). Call under the apply lock.
 */
static int apply(struct fp_lbd *d, struct fp_config *cfg, struct fp_overrides *ov, const char *why)
{
	bool *ignored = calloc(cfg->n_vips + 1, sizeof(*ignored));
	struct fp_config *eff = NULL;
	int err = -ENOMEM;

	if (ignored)
		err = fp_effective_config(cfg, ov, health_up, d, &eff, ignored);
	if (err) {
		fp_log_event("%s: %s not applied (%s); the running config stays\n", why, cfg->path,
			     strerror(-err));
		fp_lb_count_apply_error(d->lb);
	} else {
		err = fp_lbnode_apply_config(d->lb, cfg, eff, why, d->node->dev, NULL);
	}
	if (!err) {
		if (cfg != d->cfg) {
			fp_config_free(d->cfg);
			d->cfg = cfg;
#ifdef FP_LBD_HEALTH
			if (d->health && fp_health_configure(d->health, cfg))
				fp_warn("health checks: not reconfigured (out of memory): the "
					"previous checks keep running\n");
#endif
			if (d->bgpd && fp_bgpd_configure(d->bgpd, cfg))
				fp_warn("bgp: not reconfigured (out of memory)\n");
		}
		if (ov != &d->overrides) {
			fp_overrides_free(&d->overrides);
			d->overrides = *ov;
			memset(ov, 0, sizeof(*ov));
		}
		status_rebuild(d, eff, ignored);
	}
	fp_config_free(eff);
	free(ignored);
	hook_applied(d, err);
	return err;
}

/* Saves the overrides; a failure is logged (they apply until the daemon stops). */
static int save_overrides(struct fp_lbd *d)
{
	int err;

	if (!d->overrides.n) {
		if (unlink(d->node->overrides_file) && errno != ENOENT)
			err = -errno;
		else
			err = 0;
	} else {
		err = fp_overrides_save(d->node->overrides_file, &d->overrides);
	}
	if (err)
		fp_err("%s: %s: the overrides apply, but a restart will not find them\n",
		       d->node->overrides_file, strerror(-err));
	return err;
}

/* Copies the daemon's overrides, pruned against @cfg (silently: apply_file() logs what goes). */
static int overrides_for(struct fp_lbd *d, const struct fp_config *cfg, struct fp_overrides *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < d->overrides.n; i++) {
		const struct fp_override_entry *e = &d->overrides.v[i];
		int err = fp_overrides_set(out, e->vip, e->backend, e->what);

		if (err) {
			fp_overrides_free(out);
			return err;
		}
	}
	fp_overrides_prune(out, cfg, NULL, NULL);
	return 0;
}

/*
 * Applies @cfg (loaded, ownership taken on success) with the daemon's overrides (those
 * it still names).
 */
static int apply_loaded(struct fp_lbd *d, struct fp_config *cfg, const char *why)
{
	struct fp_overrides ov;
	int err;

	fp_lbnode_settings(d->node, cfg);
	/* Overrides of backends the file no longer has go only if it applies. */
	err = overrides_for(d, cfg, &ov);
	if (err) {
		hook_applied(d, err);
		return err;
	}
	if (ov.n < d->overrides.n) {
		struct fp_overrides old = { 0 };

		for (size_t i = 0; i < d->overrides.n; i++)
			fp_overrides_set(&old, d->overrides.v[i].vip, d->overrides.v[i].backend,
					 d->overrides.v[i].what);
		err = apply(d, cfg, &ov, why);
		if (!err) {
			/* Saved first: a reader who saw the log line finds the file saved. */
			save_overrides(d);
			fp_overrides_prune(&old, cfg, log_dropped, NULL);
		}
		fp_overrides_free(&old);
	} else {
		err = apply(d, cfg, &ov, why);
	}
	if (err)
		fp_overrides_free(&ov);
	return err;
}

/* Loads @path and applies it with the daemon's overrides (those it still names). */
static int apply_file(struct fp_lbd *d, const char *path, const char *why)
{
	struct fp_config *cfg = NULL;
	int err;

	err = fp_config_load(path, &cfg, stderr);
	if (!err)
		err = node_view(d, &cfg, stderr);
	if (err) {
		fp_log_event("%s: %s refused (%s); the running config stays\n", why, path,
			     strerror(-err));
		fp_lb_count_apply_error(d->lb);
		hook_applied(d, err);
		return err;
	}
	err = apply_loaded(d, cfg, why);
	if (err)
		fp_config_free(cfg);
	return err;
}

/* ---- the fleet's config from etcd ---- */

/* Health of the node's backends in a few words, for the status in etcd. */
struct health_count {
	unsigned int up, down, other;
};

static void count_health(const struct fp_lbd_vip_status *v, void *arg)
{
	struct health_count *c = arg;

	for (size_t b = 0; b < v->n_backends; b++) {
		const char *h = v->backends[b].health;

		if (!strcmp(h, "up"))
			c->up++;
		else if (!strcmp(h, "down"))
			c->down++;
		else
			c->other++;
	}
}

static void fleet_report(struct fp_lbd *d)
{
	struct health_count c = { 0 };
	struct fp_info info;

	if (!d->fleet)
		return;
	fp_lbd_status_foreach(d, count_health, &c);
	snprintf(d->fleet_report.health, sizeof(d->fleet_report.health),
		 "%u up, %u down, %u unchecked/unknown", c.up, c.down, c.other);
	if (d->lb && !fp_lb_info(d->lb, &info))
		d->fleet_report.generation = info.generation;
	fp_fleet_member_report(d->fleet, &d->fleet_report);
}

static int fleet_view(void *arg, struct fp_config **cfg, FILE *err)
{
	return node_view(arg, cfg, err);
}

/* A value from etcd, applied under the apply lock as SIGHUP applies a file. */
static int fleet_apply(void *arg, struct fp_config *cfg)
{
	struct fp_lbd *d = arg;
	int err;

	fp_lb_lock(d->lb);
	err = apply_loaded(d, cfg, "etcd");
	fp_lb_unlock(d->lb);
	return err;
}

static void fleet_refused(void *arg, int err)
{
	struct fp_lbd *d = arg;

	fp_lb_lock(d->lb);
	fp_lb_count_apply_error(d->lb);
	hook_applied(d, err);
	fp_lb_unlock(d->lb);
}

static void fleet_node(struct fp_lbd *d, struct fp_fleet_node *n)
{
	*n = (struct fp_fleet_node){ FP_CONFIG_FOR_LB, fleet_view, fleet_apply,
				     fleet_refused,    d,	   &d->etcd_cache };
}

/* The member hands over a value the node does not run: validate, apply, report. */
static void on_fleet_desired(void *arg, const struct fp_fleet_desired *want)
{
	struct fp_lbd *d = arg;
	struct fp_fleet_node n;

	fleet_node(d, &n);
	if (!fp_fleet_take(want, &n, &d->fleet_report))
		/* SIGHUP re-reads the value applied last. */
		snprintf(d->config_abs, sizeof(d->config_abs), "%s", d->etcd_cache.yaml);
	fleet_report(d);
}

/*
 * `up --config etcd://...`: the config the node starts with, from etcd, else (etcd cannot
 * be reached) from the cache of the value applied last. d->cfg, d->config_abs (the
 * cache) and the report set; 0 or -errno (said).
 */
static int etcd_start_config(struct fp_lbd *d, const char *url)
{
	struct fp_fleet_node n;
	char why[256];

	if (fp_etcd_parse_url(url, &d->etcd, why, sizeof(why)) ||
	    fp_etcd_auth_from_env(&d->etcd_auth, why, sizeof(why))) {
		fp_err("--config %s: %s\n", url, why);
		return -EINVAL;
	}
	if (!fp_fleet_node_name_ok(d->node->node_name)) {
		fp_err("--node '%s': 1..63 of A-Z a-z 0-9 . _ - (the node's name in etcd)\n",
		       d->node->node_name ? d->node->node_name : "");
		return -EINVAL;
	}
	if (fp_fleet_cache_init(&d->etcd_cache, d->node->run_dir, d->node->dev)) {
		fp_err("--run-dir %s: path too long\n", d->node->run_dir);
		return -ENAMETOOLONG;
	}
	d->from_etcd = true;
	fleet_node(d, &n);
	snprintf(d->config_abs, sizeof(d->config_abs), "%s", d->etcd_cache.yaml);
	return fp_fleet_start_config(&d->etcd, &d->etcd_auth, d->node->node_name, &n, &d->cfg,
				     &d->fleet_report);
}

static int etcd_follow(struct fp_lbd *d)
{
	if (!d->from_etcd)
		return 0;
	d->fleet = fp_fleet_member_new(d->base, &d->etcd, &d->etcd_auth, d->node->node_name, "lb",
				       d->fleet_report.applied_revision, on_fleet_desired, d);
	if (!d->fleet || fp_fleet_member_start(d->fleet)) {
		fp_err("etcd: cannot start following %s\n", d->etcd.url);
		return -ENOMEM;
	}
	fleet_report(d);
	return 0;
}

int fp_lbd_fleet(struct fp_lbd *d, struct fp_fleet_state *state, struct fp_fleet_report *report)
{
	if (!d->fleet)
		return -ENOENT;
	fp_fleet_member_state(d->fleet, state);
	if (report)
		fp_fleet_member_last_report(d->fleet, report);
	return 0;
}

/* ---- signals ---- */

/* SIGHUP: the recorded file, read under the lock: a `lb reload --config` that ran since
 * is what SIGHUP re-reads, whether or not its SIGUSR1 came. */
static void on_sighup(struct fp_lbd *d, pid_t from)
{
	fp_lb_lock(d->lb);
	fp_lbnode_read_record(d->node, d->config_abs, sizeof(d->config_abs));
	fp_log_event("SIGHUP from pid %d: re-reading %s\n", (int)from, d->config_abs);
	apply_file(d, d->config_abs, "reload");
	fp_lb_unlock(d->lb);
}

/*
 * SIGUSR1: `lb reload --config` applied a file (with the overrides, not knowing health)
 * and recorded its path: follow it, and apply it once more with health in effect (no
 * new generation where nothing differs).
 */
static void on_sigusr1(struct fp_lbd *d, pid_t from)
{
	char adopted[PATH_MAX] = "";

	fp_lb_lock(d->lb);
	fp_lbnode_read_record(d->node, adopted, sizeof(adopted));
	if (adopted[0] && strcmp(adopted, d->config_abs)) {
		fp_log_event("SIGUSR1 from pid %d: `flowpin lb reload` applied %s; SIGHUP now "
			     "re-reads it\n",
			     (int)from, adopted);
		snprintf(d->config_abs, sizeof(d->config_abs), "%s", adopted);
	} else {
		fp_log_event("SIGUSR1 from pid %d: `flowpin lb reload` applied %s\n", (int)from,
			     d->config_abs);
	}
	apply_file(d, d->config_abs, "adopt");
	fp_lb_unlock(d->lb);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct fp_lbd *d = arg;
	struct signalfd_siginfo si;
	int n;

	(void)what;
	while ((n = fp_instance_signal(fd, &si)) > 0) {
		if (si.ssi_signo == SIGHUP) {
			on_sighup(d, (pid_t)si.ssi_pid);
		} else if (si.ssi_signo == SIGUSR1) {
			on_sigusr1(d, (pid_t)si.ssi_pid);
		} else {
			fp_log_event("%s from pid %d: exiting, leaving the program attached to %s "
				     "with its pins (the next `flowpin lb up` takes it over); "
				     "`flowpin lb down` detaches\n",
				     strsignal((int)si.ssi_signo), (int)si.ssi_pid, d->node->dev);
			d->rc = 0;
			event_base_loopbreak(d->base);
			return;
		}
	}
	if (n < 0) {
		fp_err("signalfd: %s\n", strerror(-n));
		d->rc = 1;
		event_base_loopbreak(d->base);
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

/* ---- the control socket ---- */

struct conn {
	struct fp_lbd *d;
	struct bufferevent *bev;
	pid_t pid;
	uid_t uid;
	bool closing;
	bool down; /* {"cmd":"down"} answered: the loop ends once the reply is out */
};

static void conn_free(struct conn *c)
{
	struct fp_lbd *d = c->d;
	bool down = c->down;

	d->connections--;
	bufferevent_free(c->bev);
	free(c);
	if (down)
		event_base_loopbreak(d->base);
}

static void reply(struct conn *c, json_object *r)
{
	const char *text = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);

	bufferevent_write(c->bev, text, strlen(text));
	bufferevent_write(c->bev, "\n", 1);
	json_object_put(r);
	/* One request per connection: closed once the reply is out (conn_event/write). */
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
}

static void reply_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(struct conn *c, const char *fmt, ...)
{
	json_object *r = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(r, "ok", json_object_new_boolean(0));
	json_object_object_add(r, "error", json_object_new_string(msg));
	reply(c, r);
}

static void status_vip_json(const struct fp_lbd_vip_status *v, void *arg)
{
	json_object *vips = arg, *o = json_object_new_object(), *bs = json_object_new_array();
	char addr[INET6_ADDRSTRLEN];

	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "address",
			       json_object_new_string(fp_addr_str(&v->addr, addr, sizeof(addr))));
	json_object_object_add(o, "port", json_object_new_int(v->port));
	json_object_object_add(o, "protocol",
			       json_object_new_string(v->proto == IPPROTO_TCP ? "tcp" : "udp"));
	json_object_object_add(o, "mode", json_object_new_string(fp_pinning_name(v->pinning)));
	json_object_object_add(o, "generation", json_object_new_int64(v->generation));
	json_object_object_add(o, "health_ignored", json_object_new_boolean(v->health_ignored));
	for (size_t i = 0; i < v->n_backends; i++) {
		const struct fp_lbd_backend_status *b = &v->backends[i];
		json_object *j = json_object_new_object();

		json_object_object_add(j, "id", json_object_new_int(b->id));
		json_object_object_add(
			j, "address",
			json_object_new_string(fp_addr_str(&b->addr, addr, sizeof(addr))));
		json_object_object_add(j, "config",
				       json_object_new_string(fp_backend_state_name(b->config)));
		json_object_object_add(j, "override",
				       json_object_new_string(fp_override_name(b->override)));
		json_object_object_add(j, "health", json_object_new_string(b->health));
		json_object_object_add(j, "health_since", fp_json_time(&b->health_since));
		json_object_object_add(j, "health_reason",
				       json_object_new_string(b->health_reason));
		json_object_object_add(j, "effective",
				       json_object_new_string(fp_backend_state_name(b->effective)));
		json_object_object_add(j, "last_change", fp_json_time(&b->last_change));
		json_object_array_add(bs, j);
	}
	json_object_object_add(o, "backends", bs);
	json_object_array_add(vips, o);
}

static void handle_status(struct conn *c)
{
	json_object *r = json_object_new_object(), *vips = json_object_new_array();

	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "dev", json_object_new_string(c->d->node->dev));
	json_object_object_add(r, "pid", json_object_new_int(getpid()));
	json_object_object_add(r, "config", json_object_new_string(c->d->config_abs));
	fp_lbd_status_foreach(c->d, status_vip_json, vips);
	json_object_object_add(r, "vips", vips);
	if (c->d->bgpd && c->d->cfg->bgp.enabled)
		json_object_object_add(r, "bgp", fp_bgpd_status_json(c->d->bgpd));
	if (c->d->fleet)
		json_object_object_add(r, "etcd",
				       fp_fleet_status_json(c->d->fleet, c->d->etcd.url,
							    c->d->node->node_name,
							    &c->d->fleet_report));
	reply(c, r);
}

/* {"cmd":"maintenance","on":BOOL[,"deadline_ms":N][,"until_flows":N]} (N < 0: default) */
static void handle_maintenance(struct conn *c, json_object *req)
{
	json_object *o, *r;
	int64_t deadline = -1, flows = -1;
	char msg[256];
	bool on;

	if (!json_object_object_get_ex(req, "on", &o) ||
	    !json_object_is_type(o, json_type_boolean)) {
		reply_error(c, "maintenance: no \"on\" boolean");
		return;
	}
	on = json_object_get_boolean(o);
	/* As the CLI bounds them: a deadline past 7 days would overflow ns arithmetic. */
	if (json_object_object_get_ex(req, "deadline_ms", &o)) {
		deadline = json_object_is_type(o, json_type_int) ? json_object_get_int64(o) : -2;
		if (deadline < -1 || deadline > MAINT_MAX_DEADLINE_MS) {
			reply_error(c,
				    "maintenance: \"deadline_ms\": an integer 0..%lld (-1: the "
				    "config's): nothing changed",
				    (long long)MAINT_MAX_DEADLINE_MS);
			return;
		}
	}
	if (json_object_object_get_ex(req, "until_flows", &o)) {
		flows = json_object_is_type(o, json_type_int) ? json_object_get_int64(o) : -2;
		if (flows < -1 || flows == INT64_MAX) {
			reply_error(c, "maintenance: \"until_flows\": an integer >= 0 (-1: the "
				       "config's): nothing changed");
			return;
		}
	}
	if (fp_bgpd_maintenance(c->d->bgpd, on, deadline, flows, msg, sizeof(msg))) {
		reply_error(c, "maintenance: %s: nothing changed", msg);
		return;
	}
	fp_log_event("bgp: maintenance %s, asked by pid %d (uid %u) on the control socket\n",
		     on ? "on" : "off", (int)c->pid, (unsigned)c->uid);
	r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "bgp", fp_bgpd_status_json(c->d->bgpd));
	reply(c, r);
}

/* A backend argument: an id (1..4095) or an address. */
struct backend_arg {
	bool by_id;
	__u32 id;
	struct fp_addr addr;
};

static int parse_backend(const char *s, struct backend_arg *b)
{
	char *end;
	unsigned long id;

	memset(b, 0, sizeof(*b));
	if (s[0] >= '1' && s[0] <= '9') {
		id = strtoul(s, &end, 10);
		if (!*end) {
			if (id > FP_MAX_BACKEND_ID)
				return -EINVAL;
			b->by_id = true;
			b->id = (__u32)id;
			return 0;
		}
	}
	return fp_addr_parse(s, &b->addr) ? -EINVAL : 0;
}

static bool backend_matches(const struct fp_backend_cfg *be, const struct backend_arg *b)
{
	return b->by_id ? be->id == b->id : !memcmp(be->addr.a, b->addr.a, 16);
}

static void handle_override(struct conn *c, const char *cmd, const char *backend, const char *vip)
{
	enum fp_override what = !strcmp(cmd, "drain")	  ? FP_OVERRIDE_DRAIN
				: !strcmp(cmd, "disable") ? FP_OVERRIDE_DISABLE
							  : FP_OVERRIDE_NONE;
	struct fp_lbd *d = c->d;
	const struct fp_config *cfg = d->cfg;
	json_object *r, *changed;
	struct fp_overrides ov;
	struct backend_arg b;
	char addr[INET6_ADDRSTRLEN], why[64];
	size_t matched = 0;
	bool vip_found = false, applied;
	int err;

	if (parse_backend(backend, &b)) {
		reply_error(c, "backend '%s': an id (1..%d) or an address", backend,
			    FP_MAX_BACKEND_ID);
		return;
	}
	for (size_t v = 0; v < cfg->n_vips; v++) {
		if (vip && strcmp(cfg->vips[v].name, vip))
			continue;
		vip_found = true;
		for (size_t i = 0; i < cfg->vips[v].n_backends; i++)
			matched += backend_matches(&cfg->vips[v].backends[i], &b);
	}
	if (vip && !vip_found) {
		reply_error(c, "no VIP named '%s' in %s: nothing changed", vip, cfg->path);
		return;
	}
	if (!matched) {
		if (vip)
			reply_error(c, "VIP %s has no backend %s: nothing changed", vip, backend);
		else
			reply_error(c, "no VIP has a backend %s: nothing changed", backend);
		return;
	}
	err = overrides_for(d, cfg, &ov);
	changed = json_object_new_array();
	for (size_t v = 0; !err && v < cfg->n_vips; v++) {
		const struct fp_vip_cfg *vc = &cfg->vips[v];

		if (vip && strcmp(vc->name, vip))
			continue;
		for (size_t i = 0; !err && i < vc->n_backends; i++) {
			const struct fp_backend_cfg *be = &vc->backends[i];
			json_object *j;

			if (!backend_matches(be, &b))
				continue;
			err = fp_overrides_set(&ov, vc->name, be->id, what);
			fp_log_event("%s backend %u (%s) of VIP %s: asked by pid %d (uid %u) on "
				     "the control socket\n",
				     cmd, be->id, fp_addr_str(&be->addr, addr, sizeof(addr)),
				     vc->name, (int)c->pid, (unsigned)c->uid);
			j = json_object_new_object();
			json_object_object_add(j, "vip", json_object_new_string(vc->name));
			json_object_object_add(j, "backend", json_object_new_int(be->id));
			json_object_object_add(j, "address", json_object_new_string(addr));
			json_object_object_add(j, "override",
					       json_object_new_string(fp_override_name(what)));
			json_object_array_add(changed, j);
		}
	}
	if (err) {
		fp_overrides_free(&ov);
		json_object_put(changed);
		reply_error(c, "%s: %s: nothing changed", cmd, strerror(-err));
		return;
	}
	snprintf(why, sizeof(why), "%s (pid %d)", cmd, (int)c->pid);
	fp_lb_lock(d->lb);
	err = apply(d, d->cfg, &ov, why);
	applied = !err;
	if (applied)
		err = save_overrides(d);
	fp_lb_unlock(d->lb);
	if (!applied) { /* ov is still ours */
		fp_overrides_free(&ov);
		json_object_put(changed);
		reply_error(c, "%s: not applied (%s): nothing changed", cmd, strerror(-err));
		return;
	}
	r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "changed", changed);
	if (err)
		json_object_object_add(r, "warning",
				       json_object_new_string("applied, but not saved: a restart "
							      "will not find this override"));
	reply(c, r);
}

/*
 * {"cmd":"down"} (`flowpin lb down`): the reply goes out, then (conn_free()) the loop
 * ends and fp_lbd_run() withdraws, detaches and unpins; the client waits for the pid
 * file to go.
 */
static void handle_down(struct conn *c)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "ok", json_object_new_boolean(true));
	json_object_object_add(r, "pid", json_object_new_int((int)getpid()));
	fp_log_event("down asked by pid %d (uid %u) on the control socket: detaching from %s\n",
		     (int)c->pid, (unsigned)c->uid, c->d->node->dev);
	reply(c, r);
	c->down = true;
	c->d->detach = true;
	c->d->rc = 0;
}

/*
 * One request: exactly @len bytes of one JSON object (blanks around it), strict JSON,
 * UTF-8, nested at most CTL_MAX_DEPTH deep. A NUL or anything after the object is
 * refused, so the daemon never acts on a prefix of what was sent.
 */
static json_object *parse_request(const char *line, size_t len, const char **why)
{
	json_tokener *tok = json_tokener_new_ex(CTL_MAX_DEPTH);
	json_object *req = NULL;
	size_t end;

	*why = "out of memory";
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	if (memchr(line, '\0', len)) {
		*why = "a NUL byte";
	} else if (!(req = json_tokener_parse_ex(tok, line, (int)len))) {
		*why = json_tokener_get_error(tok) == json_tokener_continue
			       ? "unexpected end of data"
			       : json_tokener_error_desc(json_tokener_get_error(tok));
	} else {
		end = json_tokener_get_parse_end(tok);
		end += strspn(line + end, " \t\r");
		*why = end != len				     ? "something after the object"
		       : !json_object_is_type(req, json_type_object) ? "another JSON type"
								     : NULL;
		if (*why) {
			json_object_put(req);
			req = NULL;
		}
	}
	json_tokener_free(tok);
	return req;
}

static void handle_line(struct conn *c, const char *line, size_t len)
{
	const char *cmd = NULL, *backend = NULL, *vip = NULL, *why;
	json_object *req = parse_request(line, len, &why), *o;

	if (!req) {
		reply_error(c, "not a JSON object (%s)", why);
		goto out;
	}
	if (json_object_object_get_ex(req, "cmd", &o) && json_object_is_type(o, json_type_string))
		cmd = json_object_get_string(o);
	if (json_object_object_get_ex(req, "backend", &o) &&
	    json_object_is_type(o, json_type_string))
		backend = json_object_get_string(o);
	if (json_object_object_get_ex(req, "vip", &o) && json_object_is_type(o, json_type_string))
		vip = json_object_get_string(o);
	if (!cmd) {
		reply_error(c, "no \"cmd\" string");
	} else if (!strcmp(cmd, "status")) {
		handle_status(c);
	} else if (!strcmp(cmd, "maintenance")) {
		handle_maintenance(c, req);
	} else if (!strcmp(cmd, "down")) {
		handle_down(c);
	} else if (!strcmp(cmd, "drain") || !strcmp(cmd, "undrain") || !strcmp(cmd, "disable")) {
		if (!backend)
			reply_error(c, "%s: no \"backend\" string", cmd);
		else
			handle_override(c, cmd, backend, vip);
	} else {
		reply_error(c,
			    "unknown cmd '%.32s' (status, drain, undrain, disable, maintenance, "
			    "down)",
			    cmd);
	}
out:
	json_object_put(req);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = 0;
	char *line;

	if (c->closing)
		return;
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (!line) {
		if (evbuffer_get_length(in) > FP_LBD_MAX_REQUEST)
			reply_error(c, "request longer than %d bytes", FP_LBD_MAX_REQUEST);
		return;
	}
	if (len > FP_LBD_MAX_REQUEST)
		reply_error(c, "request longer than %d bytes", FP_LBD_MAX_REQUEST);
	else
		handle_line(c, line, len);
	free(line);
}

static void conn_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing && !evbuffer_get_length(bufferevent_get_output(bev)))
		conn_free(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev, (void)what;
	conn_free(arg); /* EOF, error or timeout */
}

static void ctl_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		       int socklen, void *arg)
{
	struct fp_lbd *d = arg;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct timeval tv = { CONN_TIMEOUT_S, 0 };
	struct conn *c;

	(void)l, (void)sa, (void)socklen;
	/* 0600 keeps others out; this keeps out whoever got an fd some other way. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
	    (cred.uid != 0 && cred.uid != geteuid()) || d->connections >= MAX_CONNECTIONS) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->d = d;
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	d->connections++;
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	/* Reading stops past one request's worth: conn_read() then answers "too long". */
	bufferevent_setwatermark(c->bev, EV_READ, 0, FP_LBD_MAX_REQUEST + 1);
	bufferevent_enable(c->bev, EV_READ);
}

static int ctl_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

/*
 * Binds <run-dir>/<dev>.ctl (0600). A socket file left by a daemon that died (nobody
 * accepts on it) is replaced; one that answers belongs to a live daemon: refused.
 */
static int ctl_open(struct fp_lbd *d)
{
	const char *path = d->node->ctl_file;
	struct sockaddr_un sun;
	mode_t old_mask;
	int fd, err;

	err = ctl_addr(path, &sun);
	if (err) {
		fp_err("%s: path too long for a unix socket\n", path);
		return err;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		fp_err("%s: another flowpin lb daemon answers there: refused\n", path);
		close(fd);
		return -EADDRINUSE;
	}
	if (errno == ECONNREFUSED) {
		fp_log_event("%s: left by a daemon that is gone: replaced\n", path);
		unlink(path);
	}
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	old_mask = umask(0177);
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ? -errno : 0;
	umask(old_mask);
	if (!err && chmod(path, 0600))
		err = -errno;
	if (err) {
		fp_err("%s: %s\n", path, strerror(-err));
		close(fd);
		return err;
	}
	d->ctl_bound = true;
	d->ctl = evconnlistener_new(d->base, ctl_accept, d,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (!d->ctl) {
		fp_err("%s: cannot listen\n", path);
		close(fd);
		return -ENOMEM;
	}
	return 0;
}

int fp_lbd_request(const struct fp_lbnode *n, const char *request, char **reply_out)
{
	struct sockaddr_un sun;
	size_t cap = 65536, len = 0;
	char *buf = NULL;
	int fd, err;

	*reply_out = NULL;
	err = ctl_addr(n->ctl_file, &sun);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		fp_err("%s: no flowpin lb daemon answers (%s)\n", n->ctl_file, strerror(-err));
		close(fd);
		return err;
	}
	if (write(fd, request, strlen(request)) != (ssize_t)strlen(request) ||
	    write(fd, "\n", 1) != 1) {
		err = -errno;
		goto out;
	}
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t got;

		if (len + 1 >= cap) {
			char *more = realloc(buf, cap * 2);

			if (!more) {
				err = -ENOMEM;
				goto out;
			}
			buf = more;
			cap *= 2;
		}
		/* An apply of large tables takes a while; a daemon that hangs does not. */
		if (poll(&p, 1, 60000) <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		got = read(fd, buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			err = got < 0 ? -errno : 0;
			break;
		}
		len += (size_t)got;
		if (memchr(buf + len - (size_t)got, '\n', (size_t)got))
			break;
	}
	if (!err && !len)
		err = -ECONNRESET;
	if (err) {
		fp_err("%s: no reply from the daemon (%s)\n", n->ctl_file, strerror(-err));
		goto out;
	}
	buf[len] = 0;
	buf[strcspn(buf, "\n")] = 0;
	*reply_out = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

/* ---- capabilities ---- */

/*
 * After the load, attach and take-over, the daemon keeps only what its later work
 * needs (docs/operator-lb.md "Capabilities"): CAP_NET_ADMIN for the VIP blackhole routes
 * (every apply) and the XDP detach at stop. Map writes (reloads, overrides), the pins'
 * removal, the control socket and the health probes need none: the map fds are open,
 * and bpffs and the run directory belong to the daemon's uid. Dropped from the effective,
 * permitted and inheritable sets and the ambient set, and from the bounding set when
 * CAP_SETPCAP allows it (a unit's bounding set is already its grant). Before any thread
 * starts: capabilities are per thread, and new threads inherit the creator's.
 */
static int drop_caps(bool bind_service)
{
	cap_value_t keep[2] = { CAP_NET_ADMIN, CAP_NET_BIND_SERVICE };
	int n_keep = bind_service ? 2 : 1;
	cap_t caps;
	cap_flag_value_t setpcap = CAP_CLEAR;
	int err = 0;

	caps = cap_get_proc();
	if (!caps)
		return -errno;
	cap_get_flag(caps, CAP_SETPCAP, CAP_EFFECTIVE, &setpcap);
	if (setpcap == CAP_SET) {
		for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
			bool kept = false;

			for (int i = 0; i < n_keep; i++)
				kept |= keep[i] == c;
			if (!kept && CAP_IS_SUPPORTED(c) && cap_drop_bound(c) && errno != EINVAL) {
				err = -errno;
				break;
			}
		}
	}
	if (!err) {
		cap_flag_value_t have[2] = { CAP_CLEAR, CAP_CLEAR };
		cap_value_t kept[2];
		int n = 0;

		for (int i = 0; i < n_keep; i++) {
			cap_get_flag(caps, keep[i], CAP_PERMITTED, &have[i]);
			if (have[i] == CAP_SET)
				kept[n++] = keep[i];
		}
		cap_clear(caps);
		if (n)
			cap_set_flag(caps, CAP_EFFECTIVE, n, kept, CAP_SET);
		if (n)
			cap_set_flag(caps, CAP_PERMITTED, n, kept, CAP_SET);
		if (cap_set_proc(caps))
			err = -errno;
	}
	if (!err && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		err = -errno;
	cap_free(caps);
	if (err)
		fp_err("dropping capabilities: %s\n", strerror(-err));
	return err;
}

/* ---- start and stop ---- */

/*
 * The overrides a restart finds (<run-dir>/<dev>.overrides, from a daemon that was
 * killed or crashed), pruned against @cfg with a log line each; saved back if any went.
 */
static int overrides_read(struct fp_lbd *d, const struct fp_config *cfg)
{
	struct fp_overrides loaded = { 0 };
	int err = fp_overrides_load(d->node->overrides_file, &d->overrides, stderr);

	/* Refused, not ignored: starting without them would undrain what an operator
	 * drained. Nothing of the node has changed yet. */
	if (err) {
		fp_err("%s: %s: refused to start; fix the file or remove it (run-time drains of "
		       "the previous daemon)\n",
		       d->node->overrides_file, strerror(-err));
		return err;
	}
	if (d->overrides.n)
		fp_log_event("%s: %zu run-time override(s) kept from the previous daemon\n",
			     d->node->overrides_file, d->overrides.n);
	for (size_t i = 0; i < d->overrides.n; i++)
		fp_overrides_set(&loaded, d->overrides.v[i].vip, d->overrides.v[i].backend,
				 d->overrides.v[i].what);
	if (fp_overrides_prune(&d->overrides, cfg, NULL, NULL)) {
		/* Saved before the lines that say so, as in apply_file(). */
		save_overrides(d);
		fp_overrides_prune(&loaded, cfg, log_dropped, NULL);
	}
	fp_overrides_free(&loaded);
	return 0;
}

/* Load or take over, apply, record: the node runs the effective config when this returns 0. */
static int node_up(struct fp_lbd *d, bool *adopted, bool *files)
{
	const struct fp_lbnode *p = d->node;
	char prog_pin[PATH_MAX + 8];
	bool *ignored = calloc(d->cfg->n_vips + 1, sizeof(*ignored));
	struct fp_config *eff = NULL;
	int err;

	/* Health is not known yet: overrides only. */
	err = ignored ? fp_effective_config(d->cfg, &d->overrides, NULL, NULL, &eff, ignored)
		      : -ENOMEM;
	if (err) {
		fp_err("%s: %s\n", p->dev, strerror(-err));
		goto out;
	}
	/* Pins and no daemon: the previous one died; its program may still forward. */
	snprintf(prog_pin, sizeof(prog_pin), "%s/prog", p->pin_dir);
	*adopted = !access(prog_pin, F_OK);
	err = *adopted ? fp_lbnode_take_over(p, d->cfg, &d->lb) : fp_lbnode_start(p, eff, &d->lb);
	if (err)
		goto out;
	/* Apply (adopted: the config as a new generation) and record under one lock, so
	 * the record names the file that runs even with a `lb reload` at the same time. */
	fp_lb_lock(d->lb);
	err = *adopted ? fp_lbnode_apply_config(d->lb, d->cfg, eff, "up", p->dev, NULL) : 0;
	if (err) {
		fp_lb_unlock(d->lb);
		fp_err("%s: the running program keeps its previous generation\n", p->dev);
		goto out;
	}
	err = fp_lbnode_write_file(p->config_file, d->config_abs);
	fp_lb_unlock(d->lb);
	*files = true;
	if (err) {
		fp_err("%s: %s\n", p->config_file, strerror(-err));
		if (!*adopted)
			fp_lbnode_stop(d->lb, p->dev, p->pin_dir);
		goto out;
	}
	status_rebuild(d, eff, ignored);
out:
	fp_config_free(eff);
	free(ignored);
	return err;
}

#ifdef FP_LBD_HEALTH
/* The effective state follows the health transitions of one loop pass, in one apply. */
static void health_apply(evutil_socket_t fd, short what, void *arg)
{
	struct fp_lbd *d = arg;
	uint64_t changes = fp_health_down_changes(d->health);

	(void)fd;
	(void)what;
	if (changes != d->health_applied) { /* else unknown -> up only: in the tables already */
		fp_lb_lock(d->lb);
		if (!apply(d, d->cfg, &d->overrides, "health"))
			d->health_applied = changes;
		fp_lb_unlock(d->lb);
	}
	fleet_report(d); /* the health in the node's status in etcd */
}

/* A health transition (already logged by the module): applied in the next loop pass. */
static void on_health_change(void *arg)
{
	struct fp_lbd *d = arg;

	if (!event_pending(d->health_ev, EV_TIMEOUT, NULL))
		event_active(d->health_ev, EV_TIMEOUT, 0);
}

static int health_start(struct fp_lbd *d)
{
	struct fp_info info;

	d->health_ev = evtimer_new(d->base, health_apply, d);
	d->health = d->health_ev ? fp_health_new(d->base, on_health_change, d) : NULL;
	if (!d->health) {
		fp_err("health checks: %s\n", strerror(errno));
		return -ENOMEM;
	}
	if (!fp_lb_info(d->lb, &info)) {
		static const __u8 zero[16];
		struct fp_addr v4 = { 0 }, v6 = { 0 };
		bool have4 = memcmp(info.source_v4, zero, 4),
		     have6 = memcmp(info.source_v6, zero, 16);

		fp_addr_from_v4(v4.a, *(const __be32 *)info.source_v4);
		memcpy(v6.a, info.source_v6, 16);
		fp_health_set_sources(d->health, have4 ? &v4 : NULL, have6 ? &v6 : NULL);
	}
	if (fp_health_configure(d->health, d->cfg)) {
		fp_err("health checks: out of memory\n");
		return -ENOMEM;
	}
	return 0;
}
#else
static int health_start(struct fp_lbd *d)
{
	(void)d;
	return 0;
}
#endif

/* ---- BGP announcements (lib/bgpd.c): the inputs of the state machines ---- */

/* Backends of cfg->vips[@v] the node would give new flows to, health included: fail-open
 * keeps forwarding to them, but the address drains (another node may do better). */
static uint32_t bgp_healthy(void *arg, size_t v)
{
	struct fp_lbd *d = arg;
	const struct fp_vip_cfg *vip = &d->cfg->vips[v];
	uint32_t n = 0;

	for (size_t b = 0; b < vip->n_backends; b++)
		n += vip->backends[b].state == FP_BACKEND_ACTIVE &&
		     fp_overrides_get(&d->overrides, vip->name, vip->backends[b].id) ==
			     FP_OVERRIDE_NONE &&
		     health_up(d, vip->name, vip->backends[b].id);
	return n;
}

/* Our program attached to the device, and the device forwarding every family the
 * config has backends of (the kernel's FIB lookup refuses otherwise: drop_fib). */
static bool bgp_dataplane_ok(void *arg)
{
	struct fp_lbd *d = arg;
	struct bpf_xdp_query_opts q;
	int ifindex = (int)if_nametoindex(d->node->dev);
	bool family[2] = { false, false };

	memset(&q, 0, sizeof(q));
	q.sz = sizeof(q);
	if (ifindex <= 0 || bpf_xdp_query(ifindex, 0, &q) ||
	    !fp_lb_runs_prog(d->lb, q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id))
		return false;
	for (size_t v = 0; v < d->cfg->n_vips; v++)
		for (size_t b = 0; b < d->cfg->vips[v].n_backends; b++)
			family[fp_addr_v4(&d->cfg->vips[v].backends[b].addr) ? 0 : 1] = true;
	for (int i = 0; i < 2; i++) {
		char path[128], value[8] = "";
		FILE *f;

		if (!family[i])
			continue;
		snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/forwarding",
			 i ? "ipv6" : "ipv4", d->node->dev);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(value, sizeof(value), f))
			value[0] = 0;
		fclose(f);
		if (value[0] == '0')
			return false;
	}
	return true;
}

static uint64_t bgp_flows(void *arg)
{
	struct fp_lbd *d = arg;
	struct fp_session_count c = { 0 };

	return fp_lb_count_sessions(d->lb, &c) ? UINT64_MAX : c.live;
}

static int bgp_start(struct fp_lbd *d)
{
	const struct fp_bgpd_ops ops = { bgp_healthy, bgp_dataplane_ok, bgp_flows, d };
	char maint[PATH_MAX + 16];

	snprintf(maint, sizeof(maint), "%s/%s.maintenance", d->node->run_dir, d->node->dev);
	d->bgpd = fp_bgpd_new(d->base, maint, &ops);
	if (!d->bgpd) {
		fp_err("bgp: out of memory\n");
		return -ENOMEM;
	}
	return fp_bgpd_configure(d->bgpd, d->cfg);
}

int fp_lbd_run(const struct fp_lbnode *n, const char *config, const struct fp_lbd_hooks *hooks)
{
	struct fp_lbd daemon = { .node = n, .signal_fd = -1, .rc = 1 }, *d = &daemon;
	bool mounted = false, adopted = false, files = false;
	int err;

	pthread_mutex_init(&d->status_lock, NULL);
	if (hooks)
		d->hooks = *hooks;
	if (!fp_etcd_is_url(config)) {
		if (!realpath(config, d->config_abs)) {
			fp_err("--config %s: %s\n", config, strerror(errno));
			return 1;
		}
		if (fp_config_load(d->config_abs, &d->cfg, stderr) || node_view(d, &d->cfg, stderr))
			return 1;
	}
	err = fp_mkdir_p(n->run_dir, 0755);
	if (err) {
		fp_err("--run-dir %s: %s\n", n->run_dir, strerror(-err));
		goto out;
	}
	{
		char why[PATH_MAX + 160];

		if (fp_lbnode_check_run_dir(n->run_dir, why, sizeof(why))) {
			fp_err("--run-dir %s: refused\n", why);
			goto out;
		}
	}
	/* From etcd: after the run directory is known fit, as the cache lives there. */
	if (fp_etcd_is_url(config) && etcd_start_config(d, config))
		goto out;
	fp_lbnode_settings(n, d->cfg);
	/* The node is ours (the pid file, locked for life) or a daemon runs: refused. */
	if (fp_lbnode_claim(n, &d->instance))
		goto out;
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
	/* Before the node changes: a corrupt overrides file or a second daemon is refused with
	 * nothing touched. */
	if (overrides_read(d, d->cfg) || signals_watch(d) || ctl_open(d))
		goto out;
	if (node_up(d, &adopted, &files))
		goto out;
	if (!adopted) {
		fp_lbnode_check_forwarding(d->cfg, n->dev);
		fp_lbnode_prime_neighbours(d->cfg);
	}
	/* After the program runs, so a module's first look finds the maps. Failing: as if
	 * up had failed. */
	/* The etcd member's thread after the drop: capabilities are per thread. */
	if (health_start(d) || bgp_start(d) || drop_caps(d->hooks.bind_service) || etcd_follow(d) ||
	    (d->hooks.started && d->hooks.started(d, d->hooks.arg))) {
		d->hooks.stopping = NULL; /* started() cleaned up after itself */
		if (!adopted)
			fp_lbnode_stop(d->lb, n->dev, n->pin_dir);
		goto out;
	}
	/* Kept over a restart or crash: the kernel refuses VIP traffic while detached. */
	fp_vip_routes_sync(d->cfg);
	fp_log_event(
		"up on %s (%s XDP), pinned under %s, config %s: %zu VIPs, %zu backends, pid %d\n",
		n->dev, n->xdp_generic ? "generic" : "native", n->pin_dir, d->config_abs,
		d->cfg->n_vips, fp_config_count_backends(d->cfg), (int)getpid());
	/* From here on a daemon: its warnings and errors are stamped like its events. */
	fp_log_timestamps = true;

	if (event_base_dispatch(d->base) < 0) {
		fp_err("event loop: %s\n", strerror(errno));
		d->rc = 1;
	}
	/* Before the pins go: a scrape in flight still finds them. */
	hook_stopping(d);
	/*
	 * SIGTERM/SIGINT (systemctl stop and restart) or a loop error: the program keeps
	 * forwarding with its pins, state files, routes and BGP announcements, as after
	 * kill -9; the next `up` takes it over. Only `lb down` (d->detach) goes further.
	 */
	if (!d->detach) {
		files = false; /* the record stays for the next daemon, as after a crash */
		goto out;
	}
	d->rc = 1;
	/* Routers move traffic away before the program goes. */
	fp_bgpd_withdraw_all(d->bgpd);
	if (fp_lbnode_stop(d->lb, n->dev, n->pin_dir))
		goto out;
	fp_vip_routes_remove();
	/* After `down` the next `up` starts from the file alone. */
	unlink(n->overrides_file);
	fp_log_event("down: detached from %s, pins removed, VIP blackhole routes removed\n",
		     n->dev);
	d->rc = 0;
out:
	hook_stopping(d);
	fp_fleet_member_free(d->fleet);
	d->fleet = NULL;
#ifdef FP_LBD_HEALTH
	fp_health_free(d->health);
	if (d->health_ev)
		event_free(d->health_ev);
#endif
	fp_bgpd_free(d->bgpd);
	if (d->ctl)
		evconnlistener_free(d->ctl);
	if (d->ctl_bound)
		unlink(n->ctl_file);
	if (d->signal_ev)
		event_free(d->signal_ev);
	if (d->base)
		event_base_free(d->base);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	fp_lb_close(d->lb);
	if (files)
		unlink(n->config_file);
	fp_instance_release(d->instance); /* the pid file, then the lock */
	fp_config_free(d->cfg);
	fp_overrides_free(&d->overrides);
	free(d->vips);
	free(d->backends);
	pthread_mutex_destroy(&d->status_lock);
	return d->rc;
}
