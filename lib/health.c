// SPDX-License-Identifier: MIT
/*
 * Health checks of an LB node's backends (flowpin/health.h).
 *
 * Design. One checker per (VIP with checks, backend not `down` in the file). Every
 * `interval` a checker runs one round: all of its VIP's checks at once, each bounded by
 * `timeout`; the round passes when every check passed. Rounds feed a pure state
 * machine (fp_health_state_round(): rise/fall hysteresis, counters, the reason), which
 * is the only thing that decides; a transition is logged with its reason and the
 * daemon's on_change hook runs, which recomputes the effective backend states and
 * applies them as a new generation. The probes:
 *   tcp     non-blocking connect(), closed with a reset (no TIME_WAIT piles up on the
 *           node); success = the handshake completed.
 *   http(s) libcurl's multi interface on the same event_base (CURLMOPT_SOCKETFUNCTION
 *           and CURLMOPT_TIMERFUNCTION); a fresh connection per probe, no proxy from the
 *           environment, no redirects; success = the expected status. With `host`, the
 *           URL names the host (Host header, TLS SNI) and CURLOPT_CONNECT_TO sends it to
 *           the backend's address. TLS certificates are not verified: a check measures
 *           liveness, not identity (docs/security.md "Health checks").
 *   tunnel  a GUE probe (flowpin/tunnelprobe.h) in UDP from the node's outer source
 *           address to backend:encap_port; success = the agent's reflected reply with
 *           our nonce; ECONNREFUSED = port unreachable = no agent.
 * Everything runs in the event_base's thread; nothing here blocks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <flowpin/health.h>
#include <flowpin/log.h>
#if __has_include(<flowpin/tunnelprobe.h>)
#include <flowpin/tunnelprobe.h>
#define HAVE_TUNNEL_PROBE 1
#else
#define HAVE_TUNNEL_PROBE 0
#endif

/* ---------------------------------------------------------------------------------- */
/* The state machine                                                                   */

const char *fp_health_status_name(enum fp_health_status s)
{
	switch (s) {
	case FP_HEALTH_UNKNOWN:
		return "unknown";
	case FP_HEALTH_UP:
		return "up";
	case FP_HEALTH_DOWN:
		return "down";
	}
	return "?";
}

void fp_health_state_init(struct fp_health_state *s, const struct timespec *now)
{
	memset(s, 0, sizeof(*s));
	s->status = FP_HEALTH_UNKNOWN;
	s->since = *now;
	snprintf(s->reason, sizeof(s->reason), "not checked yet");
}

bool fp_health_state_round(struct fp_health_state *s, __u32 rise, __u32 fall, bool ok,
			   const char *reason, const struct timespec *now)
{
	enum fp_health_status to = s->status;

	if (ok) {
		s->failures_in_row = 0;
		if (s->successes_in_row < UINT32_MAX)
			s->successes_in_row++;
		if (s->status != FP_HEALTH_UP && s->successes_in_row >= rise)
			to = FP_HEALTH_UP;
	} else {
		s->successes_in_row = 0;
		if (s->failures_in_row < UINT32_MAX)
			s->failures_in_row++;
		if (s->status != FP_HEALTH_DOWN && s->failures_in_row >= fall)
			to = FP_HEALTH_DOWN;
	}
	snprintf(s->reason, sizeof(s->reason), "%s", reason ? reason : "");
	if (to == s->status)
		return false;
	s->status = to;
	s->since = *now;
	s->transitions_total++;
	return true;
}

void fp_health_state_count_check(struct fp_health_state *s, enum fp_check_kind kind, bool ok)
{
	if ((unsigned)kind >= FP_CHECK_KIND__COUNT)
		return;
	s->probes_total[kind]++;
	if (!ok)
		s->failures_total[kind]++;
}

/* ---------------------------------------------------------------------------------- */
/* Checkers and probes                                                                 */

struct checker;

/* One check of one round, in flight. */
struct probe {
	struct checker *c;
	const struct fp_check_cfg *check;
	int fd;		  /* tcp, tunnel */
	struct event *ev; /* tcp, tunnel: the socket's event, with the timeout */
	CURL *easy;	  /* http, https */
	struct curl_slist *connect_to;
	uint64_t nonce;	       /* tunnel */
	struct timespec start; /* CLOCK_MONOTONIC */
	char error[CURL_ERROR_SIZE];
};

struct checker {
	struct fp_health *h;
	char vip[FP_NAME_MAX];
	uint16_t backend_id;
	struct fp_addr addr;
	__u16 encap_port;
	struct fp_health_cfg hc; /* the VIP's, copied: the config may be freed */
	struct fp_health_state st;
	struct event *timer;
	struct probe *probes[FP_MAX_CHECKS]; /* this round's, NULL once done */
	size_t pending;
	bool round_failed;
	char round_reason[FP_HEALTH_REASON_MAX];
};

struct fp_health {
	struct event_base *base;
	void (*on_change)(void *arg);
	void *arg;
	struct checker **checkers;
	size_t n_checkers;
	CURLM *multi;
	struct event *curl_timer;
	struct fp_addr src4, src6;
	bool have_src4, have_src6;
	uint64_t down_changes; /* transitions to or from down, ever */
};

static void now_realtime(struct timespec *t)
{
	clock_gettime(CLOCK_REALTIME, t);
}

static __attribute__((unused)) long elapsed_ms(const struct timespec *since)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - since->tv_sec) * 1000 + (t.tv_nsec - since->tv_nsec) / 1000000;
}

static struct timeval ms_tv(long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

/* "10.0.0.2:80" or "[2001:db8::2]:80" */
static void addr_port_str(const struct fp_addr *a, __u16 port, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN];

	fp_addr_str(a, s, sizeof(s));
	snprintf(buf, len, fp_addr_v4(a) ? "%s:%u" : "[%s]:%u", s, port);
}

static socklen_t to_sockaddr(const struct fp_addr *a, __u16 port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (fp_addr_v4(a)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a->a + 12, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	memcpy(&sin6->sin6_addr, a->a, 16);
	return sizeof(*sin6);
}

static void probe_free(struct probe *p)
{
	if (!p)
		return;
	if (p->ev)
		event_free(p->ev);
	if (p->fd >= 0)
		close(p->fd);
	if (p->easy) {
		curl_multi_remove_handle(p->c->h->multi, p->easy);
		curl_easy_cleanup(p->easy);
	}
	curl_slist_free_all(p->connect_to);
	free(p);
}

/* The round's verdict: into the state machine; a transition is logged and reported. */
static void round_done(struct checker *c)
{
	char from[16], addr[INET6_ADDRSTRLEN], reason[FP_HEALTH_REASON_MAX];
	struct timespec now;
	bool changed, was_down;
	__u32 row;

	if (!c->round_failed)
		snprintf(reason, sizeof(reason), "%zu of %zu checks passed", c->hc.n_checks,
			 c->hc.n_checks);
	else
		snprintf(reason, sizeof(reason), "%s", c->round_reason);
	snprintf(from, sizeof(from), "%s", fp_health_status_name(c->st.status));
	was_down = c->st.status == FP_HEALTH_DOWN;
	now_realtime(&now);
	changed = fp_health_state_round(&c->st, c->hc.rise, c->hc.fall, !c->round_failed, reason,
					&now);
	if (!changed)
		return;
	row = c->round_failed ? c->st.failures_in_row : c->st.successes_in_row;
	fp_log_event("health: vip %s backend %u (%s): %s -> %s after %u %s round%s in a row: %s\n",
		     c->vip, c->backend_id, fp_addr_str(&c->addr, addr, sizeof(addr)), from,
		     fp_health_status_name(c->st.status), row,
		     c->round_failed ? "failed" : "passed", row == 1 ? "" : "s", reason);
	/* Unknown counts as up (fp_health_backend_up()): only to or from down changes
	 * what the tables hold. */
	if (was_down != (c->st.status == FP_HEALTH_DOWN))
		c->h->down_changes++;
	if (c->h->on_change)
		c->h->on_change(c->h->arg);
}

/* One check finished: counted; the first failure of a round names the round's reason. */
static void probe_done(struct probe *p, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void probe_done(struct probe *p, bool ok, const char *fmt, ...)
{
	struct checker *c = p->c;
	va_list ap;

	fp_health_state_count_check(&c->st, p->check->kind, ok);
	if (!ok && !c->round_failed) {
		c->round_failed = true;
		va_start(ap, fmt);
		vsnprintf(c->round_reason, sizeof(c->round_reason), fmt, ap);
		va_end(ap);
	}
	for (size_t i = 0; i < FP_MAX_CHECKS; i++)
		if (c->probes[i] == p)
			c->probes[i] = NULL;
	probe_free(p);
	if (--c->pending == 0)
		round_done(c);
}

/* -- tcp --------------------------------------------------------------------------- */

static void tcp_event(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	char where[INET6_ADDRSTRLEN + 8];
	int err = 0;
	socklen_t len = sizeof(err);

	addr_port_str(&p->c->addr, p->check->port, where, sizeof(where));
	if (what & EV_TIMEOUT) {
		probe_done(p, false, "tcp %s: no connection within %u ms", where,
			   p->c->hc.timeout_ms);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (err)
		probe_done(p, false, "tcp %s: %s", where, strerror(err));
	else
		probe_done(p, true, "tcp %s: connected", where);
}

static void tcp_start(struct probe *p)
{
	static const struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	struct checker *c = p->c;
	char where[INET6_ADDRSTRLEN + 8];
	struct sockaddr_storage ss;
	socklen_t len = to_sockaddr(&c->addr, p->check->port, &ss);
	struct timeval tv = ms_tv(c->hc.timeout_ms);

	addr_port_str(&c->addr, p->check->port, where, sizeof(where));
	p->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		probe_done(p, false, "tcp %s: socket: %s", where, strerror(errno));
		return;
	}
	/* Closed with a reset: a check every 2 s must not leave TIME_WAIT sockets. */
	setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	if (connect(p->fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		probe_done(p, false, "tcp %s: %s", where, strerror(errno));
		return;
	}
	p->ev = event_new(c->h->base, p->fd, EV_WRITE, tcp_event, p);
	if (!p->ev || event_add(p->ev, &tv)) {
		probe_done(p, false, "tcp %s: out of memory", where);
		return;
	}
}

/* -- tunnel ------------------------------------------------------------------------ */

#if HAVE_TUNNEL_PROBE
static void tunnel_event(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;
	struct checker *c = p->c;
	char where[INET6_ADDRSTRLEN + 8];
	unsigned char buf[256];
	ssize_t n;

	addr_port_str(&c->addr, c->encap_port, where, sizeof(where));
	if (what & EV_TIMEOUT) {
		probe_done(p, false, "tunnel %s: no reply within %u ms", where, c->hc.timeout_ms);
		return;
	}
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == ECONNREFUSED) {
			probe_done(p, false,
				   "tunnel %s: port unreachable (no flowpin agent on the backend)",
				   where);
			return;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			probe_done(p, false, "tunnel %s: %s", where, strerror(errno));
			return;
		}
		if (!fp_tunnel_probe_check_reply(buf, (size_t)n, p->nonce)) {
			probe_done(p, true, "tunnel %s: reflected", where);
			return;
		}
		/* Not the reply to this probe (a late one, or forged): keep waiting. */
	}
	long left = (long)c->hc.timeout_ms - elapsed_ms(&p->start);
	struct timeval tv = ms_tv(left > 0 ? left : 0);

	event_add(p->ev, &tv);
}
#endif

static void tunnel_start(struct probe *p)
{
	struct checker *c = p->c;
	char where[INET6_ADDRSTRLEN + 8];

	addr_port_str(&c->addr, c->encap_port, where, sizeof(where));
#if HAVE_TUNNEL_PROBE
	struct fp_health *h = c->h;
	bool v4 = fp_addr_v4(&c->addr);
	const struct fp_addr *src =
		v4 ? (h->have_src4 ? &h->src4 : NULL) : (h->have_src6 ? &h->src6 : NULL);
	struct sockaddr_storage to, from;
	socklen_t to_len = to_sockaddr(&c->addr, c->encap_port, &to), from_len;
	unsigned char buf[64];
	size_t len;
	struct timeval tv = ms_tv(c->hc.timeout_ms);

	if (!src) {
		probe_done(p, false, "tunnel %s: this node has no IPv%d outer source address",
			   where, v4 ? 4 : 6);
		return;
	}
	from_len = to_sockaddr(src, 0, &from);
	if (getrandom(&p->nonce, sizeof(p->nonce), 0) != sizeof(p->nonce)) {
		probe_done(p, false, "tunnel %s: getrandom: %s", where, strerror(errno));
		return;
	}
	len = fp_tunnel_probe_build(buf, sizeof(buf), p->nonce);
	p->fd = socket(to.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		probe_done(p, false, "tunnel %s: socket: %s", where, strerror(errno));
		return;
	}
	/* From the address backends accept (lb_sources): their agent drops anything else. */
	if (bind(p->fd, (struct sockaddr *)&from, from_len) ||
	    connect(p->fd, (struct sockaddr *)&to, to_len)) {
		probe_done(p, false, "tunnel %s: %s", where, strerror(errno));
		return;
	}
	if (send(p->fd, buf, len, 0) != (ssize_t)len) {
		probe_done(p, false, "tunnel %s: send: %s", where, strerror(errno));
		return;
	}
	p->ev = event_new(h->base, p->fd, EV_READ, tunnel_event, p);
	if (!p->ev || event_add(p->ev, &tv)) {
		probe_done(p, false, "tunnel %s: out of memory", where);
		return;
	}
#else
	probe_done(p, false, "tunnel %s: this build has no tunnel probe", where);
#endif
}

/* -- http, https ------------------------------------------------------------------- */

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * nmemb;
}

static void curl_check_done(struct fp_health *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left))) {
		struct probe *p = NULL;
		char *url = NULL;
		long status = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_EFFECTIVE_URL, &url);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		if (!p)
			continue;
		if (msg->data.result != CURLE_OK) {
			const char *why =
				p->error[0] ? p->error : curl_easy_strerror(msg->data.result);

			if (msg->data.result == CURLE_OPERATION_TIMEDOUT)
				probe_done(p, false, "%s %s: no answer within %u ms",
					   fp_check_kind_name(p->check->kind), url ? url : "",
					   p->c->hc.timeout_ms);
			else
				probe_done(p, false, "%s %s: %s",
					   fp_check_kind_name(p->check->kind), url ? url : "", why);
		} else if (status != p->check->status) {
			probe_done(p, false, "%s %s: status %ld, expected %u",
				   fp_check_kind_name(p->check->kind), url ? url : "", status,
				   p->check->status);
		} else {
			probe_done(p, true, "%s %s: status %ld", fp_check_kind_name(p->check->kind),
				   url ? url : "", status);
		}
	}
}

static void curl_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct fp_health *h = arg;
	int running, flags = 0;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	curl_check_done(h);
}

static void curl_timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct fp_health *h = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_check_done(h);
}

/* CURLMOPT_SOCKETFUNCTION: one persistent event per socket curl watches. */
static int curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *socketp)
{
	struct fp_health *h = arg;
	struct event *ev = socketp;
	short events = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (ev)
			event_free(ev);
		curl_multi_assign(h->multi, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	if (ev)
		event_free(ev);
	ev = event_new(h->base, s, events, curl_socket_event, h);
	if (!ev)
		return -1;
	curl_multi_assign(h->multi, s, ev);
	return event_add(ev, NULL) ? -1 : 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer for the whole multi handle. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct fp_health *h = arg;
	struct timeval tv = ms_tv(timeout_ms > 0 ? timeout_ms : 0);

	(void)multi;
	if (timeout_ms < 0)
		return evtimer_del(h->curl_timer);
	return evtimer_add(h->curl_timer, &tv);
}

static void http_start(struct probe *p)
{
	struct checker *c = p->c;
	const struct fp_check_cfg *k = p->check;
	const char *scheme = k->kind == FP_CHECK_HTTPS ? "https" : "http";
	char url[FP_CHECK_HOST_MAX + FP_CHECK_PATH_MAX + 80], where[INET6_ADDRSTRLEN + 8];
	CURLMcode mc;

	addr_port_str(&c->addr, k->port, where, sizeof(where));
	if (k->host[0]) {
		char connect_to[FP_CHECK_HOST_MAX + INET6_ADDRSTRLEN + 32];

		snprintf(url, sizeof(url), "%s://%s:%u%s", scheme, k->host, k->port, k->path);
		/* HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT; the address in brackets for v6 */
		snprintf(connect_to, sizeof(connect_to), "%s:%u:%s", k->host, k->port, where);
		p->connect_to = curl_slist_append(NULL, connect_to);
		if (!p->connect_to) {
			probe_done(p, false, "%s %s: out of memory", scheme, url);
			return;
		}
	} else {
		snprintf(url, sizeof(url), "%s://%s%s", scheme, where, k->path);
	}
	p->easy = curl_easy_init();
	if (!p->easy) {
		probe_done(p, false, "%s %s: out of memory", scheme, url);
		return;
	}
	curl_easy_setopt(p->easy, CURLOPT_URL, url);
	curl_easy_setopt(p->easy, CURLOPT_PRIVATE, p);
	curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->error);
	curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)c->hc.timeout_ms);
	curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
	/* The backend itself, on a new connection: no proxy, no reuse, no redirect. */
	curl_easy_setopt(p->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(p->easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(p->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(p->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(p->easy, CURLOPT_USERAGENT, "flowpin-health/1");
	curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, discard_body);
	if (k->kind == FP_CHECK_HTTPS) {
		curl_easy_setopt(p->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(p->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (p->connect_to)
		curl_easy_setopt(p->easy, CURLOPT_CONNECT_TO, p->connect_to);
	mc = curl_multi_add_handle(c->h->multi, p->easy);
	if (mc != CURLM_OK) {
		curl_easy_cleanup(p->easy);
		p->easy = NULL;
		probe_done(p, false, "%s %s: %s", scheme, url, curl_multi_strerror(mc));
	}
}

/* -- rounds ------------------------------------------------------------------------ */

static void round_start(evutil_socket_t fd, short what, void *arg)
{
	struct checker *c = arg;
	struct timeval tv = ms_tv(c->hc.interval_ms);
	size_t n = c->hc.n_checks;

	(void)fd;
	(void)what;
	evtimer_add(c->timer, &tv);
	if (c->pending) /* timeout <= interval; curl may be a moment late: skip a round */
		return;
	c->round_failed = false;
	c->round_reason[0] = '\0';
	/* All counted before any starts: a probe may finish at once. */
	c->pending = n;
	for (size_t i = 0; i < n; i++) {
		struct probe *p = calloc(1, sizeof(*p));

		if (!p) {
			c->round_failed = true;
			snprintf(c->round_reason, sizeof(c->round_reason), "out of memory");
			if (--c->pending == 0)
				round_done(c);
			continue;
		}
		p->c = c;
		p->check = &c->hc.checks[i];
		p->fd = -1;
		clock_gettime(CLOCK_MONOTONIC, &p->start);
		c->probes[i] = p;
		switch (p->check->kind) {
		case FP_CHECK_TCP:
			tcp_start(p);
			break;
		case FP_CHECK_HTTP:
		case FP_CHECK_HTTPS:
			http_start(p);
			break;
		case FP_CHECK_TUNNEL:
			tunnel_start(p);
			break;
		}
	}
}

static void checker_free(struct checker *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < FP_MAX_CHECKS; i++)
		probe_free(c->probes[i]);
	if (c->timer)
		event_free(c->timer);
	free(c);
}

/* Same checks, same backend: the state carries over a reload. Lines do not count. */
static bool same_health(const struct fp_health_cfg *a, const struct fp_health_cfg *b)
{
	if (a->interval_ms != b->interval_ms || a->timeout_ms != b->timeout_ms ||
	    a->rise != b->rise || a->fall != b->fall || a->n_checks != b->n_checks)
		return false;
	for (size_t i = 0; i < a->n_checks; i++) {
		const struct fp_check_cfg *x = &a->checks[i], *y = &b->checks[i];

		if (x->kind != y->kind || x->port != y->port || x->status != y->status ||
		    strcmp(x->path, y->path) || strcmp(x->host, y->host))
			return false;
	}
	return true;
}

static struct checker *take_old(struct fp_health *h, const char *vip,
				const struct fp_backend_cfg *b, const struct fp_health_cfg *hc,
				__u16 encap_port)
{
	for (size_t i = 0; i < h->n_checkers; i++) {
		struct checker *c = h->checkers[i];

		if (c && c->backend_id == b->id && !strcmp(c->vip, vip) &&
		    !memcmp(&c->addr, &b->addr, sizeof(c->addr)) && c->encap_port == encap_port &&
		    same_health(&c->hc, hc)) {
			h->checkers[i] = NULL;
			return c;
		}
	}
	return NULL;
}

int fp_health_configure(struct fp_health *h, const struct fp_config *cfg)
{
	struct checker **next = NULL, *c;
	size_t n = 0, made = 0;
	struct timespec now;

	if (!h || !cfg)
		return -EINVAL;
	for (size_t i = 0; i < cfg->n_vips; i++)
		if (cfg->vips[i].health.n_checks)
			n += cfg->vips[i].n_backends;
	next = calloc(n ? n : 1, sizeof(*next));
	if (!next)
		return -ENOMEM;
	/* New checkers first, so a failure leaves the old ones as they were. */
	now_realtime(&now);
	for (size_t i = 0; i < cfg->n_vips; i++) {
		const struct fp_vip_cfg *v = &cfg->vips[i];

		if (!v->health.n_checks)
			continue;
		for (size_t j = 0; j < v->n_backends; j++) {
			const struct fp_backend_cfg *b = &v->backends[j];

			if (b->state == FP_BACKEND_DOWN)
				continue; /* out of every table anyway */
			c = calloc(1, sizeof(*c));
			if (!c)
				goto nomem;
			next[made++] = c;
			c->h = h;
			snprintf(c->vip, sizeof(c->vip), "%s", v->name);
			c->backend_id = (uint16_t)b->id;
			c->addr = b->addr;
			c->encap_port = cfg->encap_port;
			c->hc = v->health;
			fp_health_state_init(&c->st, &now);
			c->timer = evtimer_new(h->base, round_start, c);
			if (!c->timer)
				goto nomem;
		}
	}
	/* Then: unchanged checkers replace their fresh twin, keeping state and timer. */
	for (size_t i = 0; i < made; i++) {
		struct checker *old = take_old(h, next[i]->vip,
					       &(struct fp_backend_cfg){ .id = next[i]->backend_id,
									 .addr = next[i]->addr },
					       &next[i]->hc, next[i]->encap_port);

		if (old) {
			checker_free(next[i]);
			next[i] = old;
			continue;
		}
		/* Spread first rounds over up to a second, so checks do not come in bursts. */
		long interval =
			next[i]->hc.interval_ms < 1000 ? (long)next[i]->hc.interval_ms : 1000;
		struct timeval tv = ms_tv((long)(i * 397 % 100) * interval / 100);

		evtimer_add(next[i]->timer, &tv);
	}
	for (size_t i = 0; i < h->n_checkers; i++)
		checker_free(h->checkers[i]);
	free(h->checkers);
	h->checkers = next;
	h->n_checkers = made;
	return 0;
nomem:
	for (size_t i = 0; i < made; i++)
		checker_free(next[i]);
	free(next);
	return -ENOMEM;
}

struct fp_health *fp_health_new(struct event_base *base, void (*on_change)(void *arg), void *arg)
{
	static bool curl_ready;
	struct fp_health *h;

	if (!base) {
		errno = EINVAL;
		return NULL;
	}
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
			errno = ENOMEM;
			return NULL;
		}
		curl_ready = true;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->base = base;
	h->on_change = on_change;
	h->arg = arg;
	h->multi = curl_multi_init();
	h->curl_timer = evtimer_new(base, curl_timer_event, h);
	if (!h->multi || !h->curl_timer) {
		fp_health_free(h);
		errno = ENOMEM;
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void fp_health_set_sources(struct fp_health *h, const struct fp_addr *v4, const struct fp_addr *v6)
{
	if (!h)
		return;
	h->have_src4 = v4 != NULL;
	h->have_src6 = v6 != NULL;
	if (v4)
		h->src4 = *v4;
	if (v6)
		h->src6 = *v6;
}

bool fp_health_backend_up(const struct fp_health *h, const char *vip, uint16_t backend_id)
{
	if (!h || !vip)
		return true;
	for (size_t i = 0; i < h->n_checkers; i++) {
		const struct checker *c = h->checkers[i];

		if (c->backend_id == backend_id && !strcmp(c->vip, vip))
			return c->st.status != FP_HEALTH_DOWN;
	}
	return true;
}

void fp_health_foreach(const struct fp_health *h,
		       void (*fn)(const struct fp_health_view *v, void *arg), void *arg)
{
	if (!h || !fn)
		return;
	for (size_t i = 0; i < h->n_checkers; i++) {
		const struct checker *c = h->checkers[i];
		struct fp_health_view v = {
			.vip = c->vip,
			.backend_id = c->backend_id,
			.addr = c->addr,
			.state = c->st.status,
			.since = c->st.since,
			.reason = c->st.reason,
			.successes_in_row = c->st.successes_in_row,
			.failures_in_row = c->st.failures_in_row,
			.transitions_total = c->st.transitions_total,
			.n_checks = c->hc.n_checks,
		};

		memcpy(v.probes_total, c->st.probes_total, sizeof(v.probes_total));
		memcpy(v.failures_total, c->st.failures_total, sizeof(v.failures_total));
		fn(&v, arg);
	}
}

uint64_t fp_health_down_changes(const struct fp_health *h)
{
	return h ? h->down_changes : 0;
}

void fp_health_free(struct fp_health *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_checkers; i++)
		checker_free(h->checkers[i]);
	free(h->checkers);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	if (h->curl_timer)
		event_free(h->curl_timer);
	free(h);
}
