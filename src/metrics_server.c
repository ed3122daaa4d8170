// SPDX-License-Identifier: MIT
/*
 * The /metrics endpoint of `lb up --metrics`: libmicrohttpd with its internal polling
 * thread (a well-kept HTTP server instead of hand-written HTTP). Each scrape opens the
 * pinned maps and takes a snapshot (lib/stats.c), rendered by lib/metrics.c; the main
 * thread's fp_lb is never shared with this thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <flowpin/lb.h>
#include <flowpin/log.h>
#include "metrics_server.h"

struct metrics_server {
	struct MHD_Daemon *daemon;
	char pin_dir[4096];
	unsigned long long scrape_errors; /* __atomic */
};

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
	struct fp_metrics_daemon d;
	struct fp_lb *lb = NULL;
	char *body = NULL;

	if (!fp_lb_open_pinned(m->pin_dir, &lb) && !fp_stats_take(lb, &s)) {
		fp_stats_take_daemon(&s, getpid()); /* this process is the node's daemon */
		d.scrape_errors_total = __atomic_load_n(&m->scrape_errors, __ATOMIC_RELAXED);
		body = fp_metrics_render(&s, &d, len);
	}
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

struct metrics_server *metrics_server_start(const char *listen, const char *pin_dir)
{
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
		free(m);
		return NULL;
	}
	return m;
}

void metrics_server_stop(struct metrics_server *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->daemon);
	free(m);
}
