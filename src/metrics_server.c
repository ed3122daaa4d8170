// SPDX-License-Identifier: MIT
/*
 * The /metrics endpoint of `lb up --metrics`: libmicrohttpd with its internal polling
 * thread (a well-kept HTTP server instead of hand-written HTTP). Each scrape opens the
 * pinned maps and takes a snapshot (lib/stats.c), copies the daemon's status model under
 * its mutex (flowpin/lbd.h), and renders both with lib/metrics.c; the main thread's
 * fp_lb is never shared with this thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <microhttpd.h>
#include <flowpin/bgpd.h>
#include <flowpin/lb.h>
#include <flowpin/lbd.h>
#include <flowpin/log.h>
#include "metrics_server.h"

struct metrics_server {
	struct MHD_Daemon *daemon;
	char pin_dir[4096];
	unsigned long long scrape_errors; /* __atomic */
	struct fp_lbd *lbd;		  /* the status model; NULL: maps only */
	struct event *refresh;		  /* on the daemon's loop: health counters */
};

/* A deep copy of the daemon's status model, taken under its mutex for one scrape. */
struct status_copy {
	struct fp_lbd_vip_status *vips;
	size_t n, cap;
	bool failed;
};

static void copy_vip(const struct fp_lbd_vip_status *v, void *arg)
{
	struct status_copy *c = arg;
	struct fp_lbd_backend_status *b = NULL;

	if (c->failed)
		return;
	if (c->n == c->cap) {
		size_t want = c->cap ? 2 * c->cap : 16;
		void *mem = realloc(c->vips, want * sizeof(*c->vips));

		if (!mem) {
			c->failed = true;
			return;
		}
		c->vips = mem;
		c->cap = want;
	}
	if (v->n_backends) {
		b = malloc(v->n_backends * sizeof(*b));
		if (!b) {
			c->failed = true;
			return;
		}
		memcpy(b, v->backends, v->n_backends * sizeof(*b));
	}
	c->vips[c->n] = *v;
	c->vips[c->n].backends = b;
	c->n++;
}

static void status_copy_free(struct status_copy *c)
{
	for (size_t i = 0; i < c->n; i++)
		free((void *)c->vips[i].backends);
	free(c->vips);
}

static void refresh_health(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	fp_lbd_status_refresh_health(arg);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static char *scrape(struct metrics_server *m, size_t *len)
{
	struct fp_stats_snapshot s = {};
	struct status_copy status = {};
	struct fp_metrics_daemon d = {};
	struct fp_lb *lb = NULL;
	char *body = NULL;

	if (m->lbd)
		fp_lbd_status_foreach(m->lbd, copy_vip, &status);
	if (!status.failed && !fp_lb_open_pinned(m->pin_dir, &lb) && !fp_stats_take(lb, &s)) {
		fp_stats_take_daemon(&s, getpid()); /* this process is the node's daemon */
		d.scrape_errors_total = __atomic_load_n(&m->scrape_errors, __ATOMIC_RELAXED);
		d.status = status.vips;
		d.n_status = status.n;
		d.fleet = m->lbd && !fp_lbd_fleet(m->lbd, &d.fleet_state, &d.fleet_report);
		body = fp_metrics_render(&s, &d, len);
	}
	if (body && m->lbd) {
		/* The BGP driver's series (its own mutex), after the rest. */
		char *bgp = fp_bgpd_metrics(fp_lbd_bgpd(m->lbd));
		size_t extra = bgp ? strlen(bgp) : 0;
		char *more = extra ? realloc(body, *len + extra + 1) : body;

		if (more) {
			memcpy(more + *len, bgp ? bgp : "", extra);
			*len += extra;
			more[*len] = 0;
			body = more;
		}
		free(bgp);
	}
	status_copy_free(&status);
	fp_stats_release(&s);
	fp_lb_close(lb);
	if (!body)
		__atomic_add_fetch(&m->scrape_errors, 1, __ATOMIC_RELAXED);
	return body;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	static char not_found[] = "only /metrics here\n", bad_method[] = "GET or HEAD\n",
		    failed[] = "could not read the pinned maps\n";
	struct metrics_server *m = cls;
	size_t len = 0;
	char *body;

	(void)version, (void)upload_data, (void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, bad_method, strlen(bad_method),
			     MHD_RESPMEM_PERSISTENT, "text/plain");
	if (*upload_data_size)
		return MHD_NO; /* a GET with a body: not ours */
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, not_found, strlen(not_found),
			     MHD_RESPMEM_PERSISTENT, "text/plain");
	body = scrape(m, &len);
	if (!body)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, failed, strlen(failed),
			     MHD_RESPMEM_PERSISTENT, "text/plain");
	return reply(c, MHD_HTTP_OK, body, len, MHD_RESPMEM_MUST_FREE,
		     "text/plain; version=0.0.4; charset=utf-8");
}

struct metrics_server *metrics_server_start(const char *listen, const char *pin_dir,
					    struct fp_lbd *lbd)
{
	const struct timeval second = { 1, 0 };
	struct sockaddr_storage ss;
	struct metrics_server *m;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (fp_metrics_parse_listen(listen, &ss)) {
		fp_err("--metrics %s: not ADDR:PORT (IPv6 as [ADDR]:PORT, port 1..65535)\n",
		       listen);
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		fp_err("--metrics %s: %s\n", listen, strerror(ENOMEM));
		return NULL;
	}
	snprintf(m->pin_dir, sizeof(m->pin_dir), "%s", pin_dir);
	m->lbd = lbd;
	if (lbd) {
		m->refresh = event_new(fp_lbd_base(lbd), -1, EV_PERSIST, refresh_health, lbd);
		if (!m->refresh || event_add(m->refresh, &second)) {
			fp_err("--metrics %s: cannot add the status refresh timer\n", listen);
			if (m->refresh)
				event_free(m->refresh);
			free(m);
			return NULL;
		}
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	/* At most a few scrapers: one thread, a small connection limit, short timeouts. */
	m->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR,
				     (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
				     (unsigned int)16, MHD_OPTION_CONNECTION_TIMEOUT,
				     (unsigned int)10, MHD_OPTION_END);
	if (!m->daemon) {
		fp_err("--metrics %s: cannot listen: %s\n", listen,
		       errno ? strerror(errno) : "libmicrohttpd refused to start");
		if (m->refresh)
			event_free(m->refresh);
		free(m);
		return NULL;
	}
	return m;
}

void metrics_server_stop(struct metrics_server *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->daemon); /* no scrape runs past this: the model is not read again */
	if (m->refresh)
		event_free(m->refresh);
	free(m);
}
