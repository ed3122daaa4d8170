// SPDX-License-Identifier: MIT
/*
 * The daemon's BGP driver: announcement state machines sampled on the event loop, the
 * BIRD include file and `configure`, maintenance. See flowpin/bgpd.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <flowpin/bgpd.h>
#include <flowpin/bird.h>
#include <flowpin/log.h>
#include <flowpin/text.h>

struct group {
	struct fp_addr addr;
	uint64_t vips;
	char names[201];
	struct fp_announce a;
};

struct fp_bgpd {
	struct event_base *base;
	char maint_file[4096];
	struct fp_bgpd_ops ops;
	const struct fp_config *cfg;
	struct fp_bgp_cfg bgp; /* a copy: the section as last configured */
	struct fp_announce_params params;
	struct event *tick;
	bool seeded;
	int alive_fd;
	char alive_name[16];

	/* BIRD */
	struct fp_bird_job *job;
	char *written;	/* the include file's text as last written */
	char *applied;	/* the text BIRD last took */
	char *job_text; /* the text the job in flight configures */
	bool write_failed;
	char logged[512]; /* the last failure logged (not repeated every sample) */

	struct fp_maintenance maint;

	/* What status and metrics read (the metrics from their own thread): under lock. */
	pthread_mutex_t lock;
	struct group groups[FP_MAX_VIPS];
	size_t n;
	int last_result; /* 0 ok, negative errno; 1: none yet */
	char last_msg[512];
	struct timespec last_at; /* CLOCK_REALTIME */
	uint64_t configures_total, configure_failures_total;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * FP_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * FP_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* A CLOCK_MONOTONIC time as CLOCK_REALTIME (for people and for the maintenance file). */
static uint64_t mono_to_real(uint64_t mono)
{
	uint64_t now_m = mono_ns(), now_r = real_ns();

	return mono <= now_m ? now_r - (now_m - mono) : now_r + (mono - now_m);
}

static uint64_t real_to_mono(uint64_t real)
{
	uint64_t now_m = mono_ns(), now_r = real_ns();

	if (real <= now_r)
		return now_r - real < now_m ? now_m - (now_r - real) : 1;
	return now_m + (real - now_r);
}

static void prefix_str(const struct fp_addr *a, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN];

	snprintf(buf, len, "%s/%d", fp_addr_str(a, s, sizeof(s)), fp_addr_v4(a) ? 32 : 128);
}

/* ---- maintenance, persisted ---- */

static void maint_save(struct fp_bgpd *b)
{
	char tmp[4200];
	FILE *f;

	if (!b->maint.on) {
		if (unlink(b->maint_file) && errno != ENOENT)
			fp_err("%s: %s\n", b->maint_file, strerror(errno));
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", b->maint_file);
	f = fopen(tmp, "w");
	if (!f) {
		fp_err("%s: %s: maintenance applies, but a restart will not find it\n", tmp,
		       strerror(errno));
		return;
	}
	/* Realtime: the file outlives this process; each a number of ns (0: none). */
	fprintf(f, "on %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", mono_to_real(b->maint.since_ns),
		b->maint.deadline_ns ? mono_to_real(b->maint.deadline_ns) : 0,
		b->maint.until_flows);
	if (fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, b->maint_file)) {
		fp_err("%s: %s: maintenance applies, but a restart will not find it\n",
		       b->maint_file, strerror(errno));
		unlink(tmp);
	}
}

static void maint_load(struct fp_bgpd *b)
{
	uint64_t since, deadline, flows;
	FILE *f = fopen(b->maint_file, "r");

	if (!f)
		return;
	if (fscanf(f, "on %" SCNu64 " %" SCNu64 " %" SCNu64, &since, &deadline, &flows) == 3) {
		b->maint.on = true;
		b->maint.since_ns = real_to_mono(since);
		b->maint.deadline_ns = deadline ? real_to_mono(deadline) : 0;
		b->maint.until_flows = flows;
		fp_log_event("bgp: %s: maintenance kept from the previous daemon\n", b->maint_file);
	} else {
		/* Fail safe: a record we cannot read may have said "on"; announcing again
		 * would pull traffic onto a node in maintenance. Drained, no deadline. */
		b->maint.on = true;
		b->maint.since_ns = mono_ns();
		b->maint.deadline_ns = 0;
		b->maint.until_flows = 0;
		fp_err("%s: not a maintenance record: the node stays in maintenance (drained, "
		       "no deadline) until `flowpin lb maintenance off`\n",
		       b->maint_file);
	}
	fclose(f);
}

/* ---- BIRD ---- */

static void log_failure(struct fp_bgpd *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void log_failure(struct fp_bgpd *b, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&b->lock);
	snprintf(b->last_msg, sizeof(b->last_msg), "%s", msg);
	clock_gettime(CLOCK_REALTIME, &b->last_at);
	b->configure_failures_total++;
	pthread_mutex_unlock(&b->lock);
	if (strcmp(msg, b->logged)) {
		fp_err("bgp: %s (retried every %u ms, logged again when it changes)\n", msg,
		       b->bgp.interval_ms);
		snprintf(b->logged, sizeof(b->logged), "%s", msg);
	}
}

static void sync_bird(struct fp_bgpd *b);

static void configure_done(int err, const char *msg, void *arg)
{
	struct fp_bgpd *b = arg;

	b->job = NULL;
	pthread_mutex_lock(&b->lock);
	b->configures_total++;
	b->last_result = err;
	pthread_mutex_unlock(&b->lock);
	if (err) {
		log_failure(b, "BIRD configure (%s): %s: BIRD keeps its previous config",
			    b->bgp.socket, msg && *msg ? msg : strerror(-err));
		free(b->job_text);
		b->job_text = NULL;
		return; /* the next sample tries again */
	}
	pthread_mutex_lock(&b->lock);
	snprintf(b->last_msg, sizeof(b->last_msg), "%s", msg && *msg ? msg : "ok");
	clock_gettime(CLOCK_REALTIME, &b->last_at);
	pthread_mutex_unlock(&b->lock);
	if (b->logged[0])
		fp_log_event("bgp: BIRD took %s again (%s)\n", b->bgp.include, b->last_msg);
	b->logged[0] = 0;
	free(b->applied);
	b->applied = b->job_text;
	b->job_text = NULL;
	sync_bird(b); /* a change that came while the job ran */
}

/* The include file for the machines' states; `configure` when BIRD has not taken it. */
static void sync_bird(struct fp_bgpd *b)
{
	enum fp_announce_state states[FP_MAX_VIPS];
	struct fp_bgp_group groups[FP_MAX_VIPS];
	char msg[512];
	char *text = NULL;
	int err;

	for (size_t i = 0; i < b->n; i++) {
		groups[i] = (struct fp_bgp_group){ b->groups[i].addr, b->groups[i].vips };
		states[i] = b->groups[i].a.state;
	}
	err = fp_bird_include_for(b->cfg, groups, states, b->n, &text);
	if (err) {
		log_failure(b, "%s: cannot render (%s)", b->bgp.include, strerror(-err));
		return;
	}
	if (!b->written || b->write_failed || strcmp(text, b->written)) {
		err = fp_bird_include_write(b->bgp.include, text, msg, sizeof(msg));
		if (err) {
			b->write_failed = true;
			log_failure(b, "%s", msg);
			free(text);
			return;
		}
		b->write_failed = false;
		free(b->written);
		b->written = text;
	} else {
		free(text);
	}
	if ((b->applied && !strcmp(b->written, b->applied)) || b->job)
		return;
	b->job_text = strdup(b->written);
	if (!b->job_text)
		return;
	err = fp_bird_configure_start(b->base, b->bgp.socket, (int)b->bgp.timeout_ms,
				      configure_done, b, &b->job, msg, sizeof(msg));
	if (err) {
		b->job = NULL;
		free(b->job_text);
		b->job_text = NULL;
		pthread_mutex_lock(&b->lock);
		b->last_result = err;
		pthread_mutex_unlock(&b->lock);
		log_failure(b, "BIRD configure (%s): %s", b->bgp.socket, msg);
	}
}

/* ---- sampling ---- */

static void sample(struct fp_bgpd *b)
{
	struct fp_announce_input in = { .maintenance = b->maint };
	uint64_t now = mono_ns();
	char pfx[64];

	in.dataplane_ok = b->ops.dataplane_ok(b->ops.arg);
	if (b->maint.on && b->maint.until_flows)
		in.flows = b->ops.flows(b->ops.arg);
	for (size_t i = 0; i < b->n; i++) {
		struct group *g = &b->groups[i];
		enum fp_announce_state was = g->a.state;
		enum fp_announce_reason why = g->a.reason;

		in.healthy_backends = UINT32_MAX;
		for (size_t v = 0; v < b->cfg->n_vips && v < FP_MAX_VIPS; v++) {
			uint32_t h;

			if (!(g->vips & (1ULL << v)))
				continue;
			h = b->ops.healthy(b->ops.arg, v);
			if (h < in.healthy_backends)
				in.healthy_backends = h;
		}
		if (in.healthy_backends == UINT32_MAX)
			in.healthy_backends = 0;
		pthread_mutex_lock(&b->lock);
		fp_announce_update(&g->a, &b->params, &in, now);
		pthread_mutex_unlock(&b->lock);
		if (g->a.state != was || g->a.reason != why) {
			prefix_str(&g->addr, pfx, sizeof(pfx));
			fp_log_event("bgp: %s (%s): %s -> %s (%s), penalty %.0f\n", pfx, g->names,
				     fp_announce_state_name(was),
				     fp_announce_state_name(g->a.state),
				     fp_announce_reason_name(g->a.reason),
				     fp_announce_penalty(&g->a, &b->params, now));
		}
	}
	sync_bird(b);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	sample(arg);
}

/* ---- configuration ---- */

struct fp_bgpd *fp_bgpd_new(struct event_base *base, const char *maint_file,
			    const struct fp_bgpd_ops *ops)
{
	struct fp_bgpd *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->base = base;
	b->ops = *ops;
	b->alive_fd = -1;
	b->last_result = 1;
	snprintf(b->maint_file, sizeof(b->maint_file), "%s", maint_file);
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

/* Whether the include file left by a previous daemon announces @pfx. */
static bool include_has(const char *text, const char *pfx)
{
	char needle[80];

	snprintf(needle, sizeof(needle), "\troute %s ", pfx);
	return text && strstr(text, needle);
}

static char *read_small_file(const char *path)
{
	char *buf = NULL;
	size_t cap = 0, len = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *more = realloc(buf, cap + 65536);

			if (!more)
				break;
			buf = more;
			cap += 65536;
		}
		size_t got = fread(buf + len, 1, 4096, f);

		len += got;
		if (!got || len > (1 << 20))
			break;
	}
	fclose(f);
	if (buf)
		buf[len] = 0;
	return buf;
}

/* The first configuration: what BIRD (or the file BIRD was given) has for each group. */
static void seed(struct fp_bgpd *b, struct group *gs, size_t n, uint64_t now)
{
	struct fp_bird *bird = NULL;
	char msg[256], pfx[64];
	char *left = read_small_file(b->bgp.include);
	bool reachable =
		!fp_bird_connect(b->bgp.socket, (int)b->bgp.timeout_ms, &bird, msg, sizeof(msg));

	if (!reachable)
		fp_warn("bgp: BIRD (%s): %s: starting from %s\n", b->bgp.socket, msg,
			left ? "the include file left in place" : "withdrawn");
	for (size_t i = 0; i < n; i++) {
		enum fp_announce_state s = FP_ANNOUNCE_WITHDRAWN;

		prefix_str(&gs[i].addr, pfx, sizeof(pfx));
		if (reachable && fp_bird_route_state(bird, &gs[i].addr, &s, msg, sizeof(msg))) {
			fp_warn("bgp: BIRD: %s: %s\n", pfx, msg);
			fp_bird_close(bird);
			bird = NULL;
			reachable = false;
			s = FP_ANNOUNCE_WITHDRAWN;
		}
		/* With an alive interface, BIRD dropped the routes when the previous daemon's
		 * interface went with it: its include file says what it announced. */
		if (!fp_announce_in_bgp(s) && (!reachable || b->bgp.alive_interface[0]) &&
		    include_has(left, pfx))
			s = FP_ANNOUNCE_ANNOUNCED;
		fp_announce_init(
			&gs[i].a,
			fp_announce_in_bgp(s) ? FP_ANNOUNCE_ANNOUNCED : FP_ANNOUNCE_WITHDRAWN, now);
		if (fp_announce_in_bgp(s))
			fp_log_event("bgp: %s (%s): in BGP already: kept announced\n", pfx,
				     gs[i].names);
	}
	fp_bird_close(bird);
	free(left);
}

int fp_bgpd_configure(struct fp_bgpd *b, const struct fp_config *cfg)
{
	struct fp_bgp_group found[FP_MAX_VIPS];
	struct group *gs = calloc(FP_MAX_VIPS, sizeof(*gs));
	uint64_t now = mono_ns();
	size_t n;

	if (!gs)
		return -ENOMEM;
	b->cfg = cfg;
	if (!cfg->bgp.enabled) {
		if (b->n)
			fp_log_event("bgp: the config has no bgp section any more: flowpin stops "
				     "driving BIRD (its include file stays as it is)\n");
		if (b->tick)
			event_del(b->tick);
		if (b->job)
			fp_bird_job_cancel(b->job);
		b->job = NULL;
		pthread_mutex_lock(&b->lock);
		b->n = 0;
		pthread_mutex_unlock(&b->lock);
		b->bgp = cfg->bgp;
		free(gs);
		return 0;
	}
	n = fp_bgp_groups(cfg, found);
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;

		gs[i].addr = found[i].addr;
		gs[i].vips = found[i].vips;
		for (size_t v = 0; v < cfg->n_vips && v < FP_MAX_VIPS && len < 200; v++)
			if (found[i].vips & (1ULL << v))
				len += (size_t)snprintf(gs[i].names + len,
							sizeof(gs[i].names) - len, "%s%s",
							len ? " " : "", cfg->vips[v].name);
		/* Kept across reloads by address; a new address starts withdrawn. */
		bool kept = false;

		for (size_t j = 0; j < b->n && !kept; j++)
			if (!memcmp(b->groups[j].addr.a, gs[i].addr.a, 16)) {
				gs[i].a = b->groups[j].a;
				kept = true;
			}
		if (!kept && b->seeded)
			fp_announce_init(&gs[i].a, FP_ANNOUNCE_WITHDRAWN, now);
	}
	if (b->seeded && b->alive_fd >= 0 && strcmp(b->alive_name, cfg->bgp.alive_interface))
		fp_warn("bgp: alive_interface changed (%s -> %s): takes a restart of the daemon; "
			"routes stay via %s\n",
			b->alive_name,
			cfg->bgp.alive_interface[0] ? cfg->bgp.alive_interface : "none",
			b->alive_name);
	b->bgp = cfg->bgp;
	if (b->alive_fd >= 0)
		snprintf(b->bgp.alive_interface, sizeof(b->bgp.alive_interface), "%s",
			 b->alive_name);
	fp_bgp_params(&cfg->bgp, &b->params);
	if (!b->seeded) {
		seed(b, gs, n, now);
		maint_load(b);
		if (cfg->bgp.alive_interface[0]) {
			char msg[256];
			int fd = fp_bird_alive_open(cfg->bgp.alive_interface, msg, sizeof(msg));

			if (fd < 0) {
				fp_err("bgp: alive interface: %s\n", msg);
				free(gs);
				return fd;
			}
			b->alive_fd = fd;
			snprintf(b->alive_name, sizeof(b->alive_name), "%s",
				 cfg->bgp.alive_interface);
		}
		b->seeded = true;
		fp_log_event("bgp: %zu address(es) to announce through BIRD (%s, include %s)%s%s, "
			     "damping %s\n",
			     n, cfg->bgp.socket, cfg->bgp.include,
			     b->alive_fd >= 0 ? ", alive interface " : "",
			     b->alive_fd >= 0 ? b->alive_name : "",
			     cfg->bgp.damping ? "on" : "off");
	}
	pthread_mutex_lock(&b->lock);
	memcpy(b->groups, gs, sizeof(b->groups));
	b->n = n;
	pthread_mutex_unlock(&b->lock);
	free(gs);
	/* The include reflects the new names and addresses at the next sample. */
	if (!b->tick)
		b->tick = event_new(b->base, -1, EV_PERSIST, on_tick, b);
	if (!b->tick)
		return -ENOMEM;
	struct timeval tv = { b->bgp.interval_ms / 1000, (b->bgp.interval_ms % 1000) * 1000 };

	event_del(b->tick);
	if (event_add(b->tick, &tv))
		return -ENOMEM;
	return 0;
}

int fp_bgpd_maintenance(struct fp_bgpd *b, bool on, int64_t deadline_ms, int64_t until_flows,
			char *msg, size_t msglen)
{
	if (!b || !b->bgp.enabled) {
		snprintf(msg, msglen, "the config has no bgp section: nothing is announced");
		return -ENOENT;
	}
	if (on) {
		fp_maintenance_start(&b->maint, &b->bgp, mono_ns(), deadline_ms, until_flows);
	} else {
		b->maint.on = false;
	}
	maint_save(b);
	sample(b);
	return 0;
}

/* ---- status and metrics ---- */

static json_object *time_json(uint64_t real)
{
	char buf[32];
	struct tm tm;
	time_t t = (time_t)(real / FP_NS_PER_SEC);

	if (!real)
		return NULL;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_object_new_string(buf);
}

json_object *fp_bgpd_status_json(struct fp_bgpd *b)
{
	json_object *o, *m, *gs, *c;
	uint64_t now = mono_ns();
	char pfx[64];

	if (!b || !b->bgp.enabled)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "include", json_object_new_string(b->bgp.include));
	json_object_object_add(o, "socket", json_object_new_string(b->bgp.socket));
	json_object_object_add(o, "alive_interface",
			       b->alive_fd >= 0 ? json_object_new_string(b->alive_name) : NULL);
	json_object_object_add(o, "damping", json_object_new_boolean(b->params.damping));
	m = json_object_new_object();
	json_object_object_add(m, "on", json_object_new_boolean(b->maint.on));
	if (b->maint.on) {
		json_object_object_add(m, "since", time_json(mono_to_real(b->maint.since_ns)));
		json_object_object_add(m, "deadline",
				       b->maint.deadline_ns
					       ? time_json(mono_to_real(b->maint.deadline_ns))
					       : NULL);
		json_object_object_add(m, "until_flows",
				       json_object_new_int64((int64_t)b->maint.until_flows));
	}
	json_object_object_add(o, "maintenance", m);
	pthread_mutex_lock(&b->lock);
	c = json_object_new_object();
	json_object_object_add(c, "result",
			       json_object_new_string(b->last_result == 1   ? "none yet"
						      : b->last_result == 0 ? "ok"
									    : "error"));
	json_object_object_add(c, "message", json_object_new_string(b->last_msg));
	json_object_object_add(c, "at",
			       time_json((uint64_t)b->last_at.tv_sec * FP_NS_PER_SEC +
					 (uint64_t)b->last_at.tv_nsec));
	json_object_object_add(c, "configures_total",
			       json_object_new_int64((int64_t)b->configures_total));
	json_object_object_add(c, "failures_total",
			       json_object_new_int64((int64_t)b->configure_failures_total));
	json_object_object_add(o, "last_configure", c);
	gs = json_object_new_array();
	for (size_t i = 0; i < b->n; i++) {
		const struct group *g = &b->groups[i];
		json_object *j = json_object_new_object(), *names = json_object_new_array();
		char copy[201], *save = NULL;

		prefix_str(&g->addr, pfx, sizeof(pfx));
		json_object_object_add(j, "prefix", json_object_new_string(pfx));
		snprintf(copy, sizeof(copy), "%s", g->names);
		for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
			json_object_array_add(names, json_object_new_string(t));
		json_object_object_add(j, "vips", names);
		json_object_object_add(j, "state",
				       json_object_new_string(fp_announce_state_name(g->a.state)));
		json_object_object_add(
			j, "reason", json_object_new_string(fp_announce_reason_name(g->a.reason)));
		json_object_object_add(j, "since", time_json(mono_to_real(g->a.since_ns)));
		json_object_object_add(j, "penalty",
				       json_object_new_int64((int64_t)llround(
					       fp_announce_penalty(&g->a, &b->params, now))));
		json_object_object_add(j, "suppressed", json_object_new_boolean(g->a.suppressed));
		json_object_object_add(j, "transitions",
				       json_object_new_int64((int64_t)g->a.transitions));
		json_object_object_add(j, "flaps", json_object_new_int64((int64_t)g->a.flaps));
		json_object_object_add(j, "suppressions",
				       json_object_new_int64((int64_t)g->a.suppressions));
		json_object_array_add(gs, j);
	}
	pthread_mutex_unlock(&b->lock);
	json_object_object_add(o, "addresses", gs);
	return o;
}

char *fp_bgpd_metrics(struct fp_bgpd *b)
{
	static const enum fp_announce_state states[] = { FP_ANNOUNCE_ANNOUNCED,
							 FP_ANNOUNCE_DRAINING,
							 FP_ANNOUNCE_WITHDRAWN };
	struct fp_text t = { 0 };
	uint64_t now = mono_ns();
	char pfx[64];

	if (!b)
		return NULL;
	pthread_mutex_lock(&b->lock);
	if (!b->n) {
		pthread_mutex_unlock(&b->lock);
		return NULL;
	}
#define HEAD(name, type, help) \
	fp_text_add(&t, "# HELP " name " " help "\n# TYPE " name " " type "\n")
	HEAD("flowpin_bgp_state", "gauge",
	     "1 for the announcement state of the address (announced, draining, withdrawn)");
	for (size_t i = 0; i < b->n; i++) {
		prefix_str(&b->groups[i].addr, pfx, sizeof(pfx));
		for (size_t s = 0; s < 3; s++)
			fp_text_add(&t, "flowpin_bgp_state{prefix=\"%s\",state=\"%s\"} %d\n", pfx,
				    fp_announce_state_name(states[s]),
				    b->groups[i].a.state == states[s]);
	}
	HEAD("flowpin_bgp_penalty", "gauge", "Flap penalty of the address, decayed to now");
	for (size_t i = 0; i < b->n; i++) {
		prefix_str(&b->groups[i].addr, pfx, sizeof(pfx));
		fp_text_add(&t, "flowpin_bgp_penalty{prefix=\"%s\"} %.0f\n", pfx,
			    fp_announce_penalty(&b->groups[i].a, &b->params, now));
	}
	HEAD("flowpin_bgp_suppressed", "gauge", "1 while damping holds the address draining");
	for (size_t i = 0; i < b->n; i++) {
		prefix_str(&b->groups[i].addr, pfx, sizeof(pfx));
		fp_text_add(&t, "flowpin_bgp_suppressed{prefix=\"%s\"} %d\n", pfx,
			    b->groups[i].a.suppressed);
	}
#define COUNTER(name, field, help)                                                                \
	HEAD(name, "counter", help);                                                              \
	for (size_t i = 0; i < b->n; i++) {                                                       \
		prefix_str(&b->groups[i].addr, pfx, sizeof(pfx));                                 \
		fp_text_add(&t, name "{prefix=\"%s\"} %" PRIu64 "\n", pfx, b->groups[i].a.field); \
	}
	COUNTER("flowpin_bgp_transitions_total", transitions, "Announcement state changes");
	COUNTER("flowpin_bgp_flaps_total", flaps, "Flaps charged a damping penalty");
	COUNTER("flowpin_bgp_suppressions_total", suppressions, "Times damping began suppressing");
#undef COUNTER
	HEAD("flowpin_bgp_maintenance", "gauge", "1 while `flowpin lb maintenance on` holds");
	fp_text_add(&t, "flowpin_bgp_maintenance %d\n", b->maint.on);
	HEAD("flowpin_bgp_configures_total", "counter", "BIRD configure replies received");
	fp_text_add(&t, "flowpin_bgp_configures_total %" PRIu64 "\n", b->configures_total);
	HEAD("flowpin_bgp_configure_failures_total", "counter",
	     "Include writes and BIRD configures that failed");
	fp_text_add(&t, "flowpin_bgp_configure_failures_total %" PRIu64 "\n",
		    b->configure_failures_total);
	HEAD("flowpin_bgp_last_configure_ok", "gauge",
	     "1 when BIRD took the last include file flowpin sent");
	fp_text_add(&t, "flowpin_bgp_last_configure_ok %d\n", b->last_result == 0);
#undef HEAD
	pthread_mutex_unlock(&b->lock);
	if (t.failed) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

/* ---- stop ---- */

void fp_bgpd_withdraw_all(struct fp_bgpd *b)
{
	enum fp_announce_state none[FP_MAX_VIPS];
	struct fp_bgp_group groups[FP_MAX_VIPS];
	char msg[512], *text = NULL;
	int err;

	if (!b || !b->bgp.enabled || !b->cfg)
		return;
	if (b->job)
		fp_bird_job_cancel(b->job);
	b->job = NULL;
	for (size_t i = 0; i < b->n; i++) {
		groups[i] = (struct fp_bgp_group){ b->groups[i].addr, b->groups[i].vips };
		none[i] = FP_ANNOUNCE_WITHDRAWN;
	}
	err = fp_bird_include_for(b->cfg, groups, none, b->n, &text);
	if (!err)
		err = fp_bird_include_write(b->bgp.include, text, msg, sizeof(msg));
	else
		snprintf(msg, sizeof(msg), "%s", strerror(-err));
	if (!err)
		err = fp_bird_configure(b->bgp.socket, (int)b->bgp.timeout_ms, msg, sizeof(msg));
	if (err)
		fp_err("bgp: withdrawing at down: %s%s\n", msg,
		       b->alive_fd >= 0 ? " (the alive interface goes: BIRD withdraws anyway)"
					: "");
	else
		fp_log_event("bgp: every address withdrawn (%s, BIRD configured)\n",
			     b->bgp.include);
	free(text);
	if (b->alive_fd >= 0)
		close(b->alive_fd);
	b->alive_fd = -1;
	b->maint.on = false;
	maint_save(b);
}

void fp_bgpd_free(struct fp_bgpd *b)
{
	if (!b)
		return;
	if (b->job)
		fp_bird_job_cancel(b->job);
	if (b->tick)
		event_free(b->tick);
	if (b->alive_fd >= 0)
		close(b->alive_fd);
	free(b->written);
	free(b->applied);
	free(b->job_text);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
