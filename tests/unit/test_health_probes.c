// SPDX-License-Identifier: MIT
/*
 * Health probes against real servers in this process, on 127.0.0.1 / ::1 (no root):
 * each kind passes, and fails for the right reason, checked by the reason text.
 *   tcp     a listener (up); a closed port (refused); a listener whose accept queue is
 *           full, so SYNs are dropped (no connection within the timeout)
 *   http    libmicrohttpd answering 200 or 503 (the expected status decides), the Host
 *           header sent; a listener that never answers (timeout); a closed port
 *   https   libmicrohttpd over TLS with a self-signed certificate made by openssl (up:
 *           not verified); the plain HTTP server (TLS fails)
 *   tunnel  a reflector that answers like the backend agent (up); one that answers with
 *           another nonce (ignored: timeout); a closed UDP port (port unreachable = no
 *           agent); an IPv6 backend without an IPv6 source address
 * And: all checks of a VIP must pass; a reconfigure with the same checks keeps each
 * checker's state, a changed one starts unknown.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <event2/event.h>
#include <microhttpd.h>
#include <flowpin/health.h>
#include <flowpin/wire.h>

/* -- servers ----------------------------------------------------------------------- */

static char last_host[256];

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *c, const char *url,
				    const char *method, const char *version,
				    const char *upload_data, size_t *upload_data_size,
				    void **con_cls)
{
	static char body[] = "flowpin test\n";
	struct MHD_Response *r;
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	unsigned int status = strcmp(url, "/fail") ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
	enum MHD_Result ret;

	(void)cls, (void)method, (void)version, (void)upload_data, (void)upload_data_size;
	(void)con_cls;
	snprintf(last_host, sizeof(last_host), "%s", host ? host : "");
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static struct MHD_Daemon *http_start(const char *key, const char *cert, __u16 *port)
{
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | (key ? MHD_USE_TLS : 0);
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct MHD_Daemon *d;

	if (key)
		d = MHD_start_daemon(flags, 0, NULL, NULL, http_handler, NULL, MHD_OPTION_SOCK_ADDR,
				     (struct sockaddr *)&sin, MHD_OPTION_HTTPS_MEM_KEY, key,
				     MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
	else
		d = MHD_start_daemon(flags, 0, NULL, NULL, http_handler, NULL, MHD_OPTION_SOCK_ADDR,
				     (struct sockaddr *)&sin, MHD_OPTION_END);
	assert_non_null(d);
	*port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	return d;
}

/* A socket of @type bound to 127.0.0.1 (or ::1), port chosen by the kernel. */
static int bound_socket(int family, int type, __u16 *port)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t len =
		family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*port = ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same offset in both */
	return fd;
}

/* A port nothing listens on: bound, then closed (nobody else takes it in a moment). */
static __u16 closed_port(int type)
{
	__u16 port;
	int fd = bound_socket(AF_INET, type, &port);

	close(fd);
	return port;
}

/*
 * A TCP listener whose accept queue is full: listen(0) holds one connection, which we
 * make and never accept; the kernel then drops new SYNs, so a connect() hangs.
 */
static int full_listener(__u16 *port, int *filler)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = bound_socket(AF_INET, SOCK_STREAM, port);

	assert_int_equal(listen(fd, 0), 0);
	sin.sin_port = htons(*port);
	*filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(*filler, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Reflector on the event loop: answers a probe as the backend agent does, or not quite. */
struct reflector {
	int fd;
	bool wrong_nonce;
	int seen;
};

static void reflect(evutil_socket_t fd, short what, void *arg)
{
	struct reflector *r = arg;
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	struct fp_gue_probe probe;
	ssize_t n = recvfrom(fd, &probe, sizeof(probe), 0, (struct sockaddr *)&from, &len);

	(void)what;
	if (n != (ssize_t)sizeof(probe))
		return;
	r->seen++;
	probe.gue.proto = FP_GUE_CTYPE_PROBE_REPLY; /* proto holds the ctype of a control message */
	if (r->wrong_nonce)
		probe.nonce ^= 1;
	sendto(fd, &probe, sizeof(probe), 0, (struct sockaddr *)&from, len);
}

/* -- running the prober ------------------------------------------------------------ */

struct run {
	struct event_base *base;
	struct fp_health *h;
	size_t decided, n;
};

static void count_decided(const struct fp_health_view *v, void *arg)
{
	struct run *r = arg;

	r->n++;
	r->decided += v->state != FP_HEALTH_UNKNOWN;
}

static void on_change(void *arg)
{
	struct run *r = arg;

	r->decided = r->n = 0;
	fp_health_foreach(r->h, count_decided, r);
	if (r->decided == r->n)
		event_base_loopbreak(r->base);
}

/* Runs the loop until every checker has a verdict, at most @ms. */
static void run_until_decided(struct run *r, long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	event_base_loopexit(r->base, &tv);
	event_base_dispatch(r->base);
}

/* One VIP per case, one backend each: the case's checks, rise 1, fall 1. */
struct check_case {
	const char *name;
	const char *addr;
	struct fp_check_cfg checks[3];
	size_t n_checks;
	enum fp_health_status want;
	const char *reason; /* a substring of the reason */
};

static void build_config(struct fp_config *cfg, struct check_case *cases, size_t n, __u16 encap)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->encap_port = encap;
	cfg->vips = calloc(n, sizeof(*cfg->vips));
	assert_non_null(cfg->vips);
	cfg->n_vips = n;
	for (size_t i = 0; i < n; i++) {
		struct fp_vip_cfg *v = &cfg->vips[i];

		snprintf(v->name, sizeof(v->name), "%s", cases[i].name);
		v->backends = calloc(1, sizeof(*v->backends));
		assert_non_null(v->backends);
		v->n_backends = 1;
		v->backends[0].id = (__u32)(i + 1);
		assert_int_equal(fp_addr_parse(cases[i].addr, &v->backends[0].addr), 0);
		v->health.interval_ms = 400;
		v->health.timeout_ms = 300;
		v->health.rise = 1;
		v->health.fall = 1;
		v->health.n_checks = cases[i].n_checks;
		memcpy(v->health.checks, cases[i].checks, sizeof(cases[i].checks));
	}
}

static void free_config(struct fp_config *cfg)
{
	for (size_t i = 0; i < cfg->n_vips; i++)
		free(cfg->vips[i].backends);
	free(cfg->vips);
}

struct verdicts {
	struct check_case *cases;
	size_t n;
};

static void check_verdict(const struct fp_health_view *v, void *arg)
{
	struct verdicts *w = arg;

	for (size_t i = 0; i < w->n; i++) {
		struct check_case *c = &w->cases[i];

		if (strcmp(c->name, v->vip))
			continue;
		print_message("# %-14s %-7s %s\n", v->vip, fp_health_status_name(v->state),
			      v->reason);
		if (v->state != c->want || !strstr(v->reason, c->reason))
			fail_msg("%s: %s (%s), expected %s with '%s'", c->name,
				 fp_health_status_name(v->state), v->reason,
				 fp_health_status_name(c->want), c->reason);
		assert_int_equal(v->transitions_total, 1);
		for (size_t k = 0; k < c->n_checks; k++)
			assert_true(v->probes_total[c->checks[k].kind] >= 1);
		if (c->want == FP_HEALTH_DOWN)
			assert_true(v->failures_in_row >= 1);
		else
			assert_true(v->successes_in_row >= 1);
	}
}

static void run_cases(struct check_case *cases, size_t n, __u16 encap, const struct fp_addr *src4,
		      const struct fp_addr *src6, struct reflector *refl)
{
	struct run r = { .base = event_base_new() };
	struct verdicts w = { cases, n };
	struct event *ev = NULL;
	struct fp_config cfg;

	assert_non_null(r.base);
	if (refl) {
		ev = event_new(r.base, refl->fd, EV_READ | EV_PERSIST, reflect, refl);
		assert_non_null(ev);
		assert_int_equal(event_add(ev, NULL), 0);
	}
	build_config(&cfg, cases, n, encap);
	r.h = fp_health_new(r.base, on_change, &r);
	assert_non_null(r.h);
	fp_health_set_sources(r.h, src4, src6);
	assert_int_equal(fp_health_configure(r.h, &cfg), 0);
	run_until_decided(&r, 3000);
	fp_health_foreach(r.h, check_verdict, &w);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(fp_health_backend_up(r.h, cases[i].name, (uint16_t)(i + 1)),
				 cases[i].want == FP_HEALTH_UP);
	fp_health_free(r.h);
	free_config(&cfg);
	if (ev)
		event_free(ev);
	event_base_free(r.base);
}

#define TCP(p)                                    \
	{                                         \
		.kind = FP_CHECK_TCP, .port = (p) \
	}
#define HTTP(p, path_)                                                           \
	{                                                                        \
		.kind = FP_CHECK_HTTP, .port = (p), .status = 200, .path = path_ \
	}

/* -- tests ------------------------------------------------------------------------- */

static void test_tcp_and_http(void **state)
{
	__u16 http_port, listen_port, full_port, slow_port, closed = closed_port(SOCK_STREAM);
	struct MHD_Daemon *http = http_start(NULL, NULL, &http_port);
	int listener = bound_socket(AF_INET, SOCK_STREAM, &listen_port), filler;
	int full = full_listener(&full_port, &filler);
	int slow = bound_socket(AF_INET, SOCK_STREAM, &slow_port);

	(void)state;
	assert_int_equal(listen(listener, 16), 0);
	assert_int_equal(listen(slow, 16), 0); /* connects, never answers */
	struct check_case cases[] = {
		{ "tcp-open", "127.0.0.1", { TCP(listen_port) }, 1, FP_HEALTH_UP, "1 of 1" },
		{ "tcp-closed",
		  "127.0.0.1",
		  { TCP(closed) },
		  1,
		  FP_HEALTH_DOWN,
		  "Connection refused" },
		{ "tcp-timeout",
		  "127.0.0.1",
		  { TCP(full_port) },
		  1,
		  FP_HEALTH_DOWN,
		  "no connection within 300 ms" },
		{ "http-200", "127.0.0.1", { HTTP(http_port, "/ok") }, 1, FP_HEALTH_UP, "1 of 1" },
		{ "http-503",
		  "127.0.0.1",
		  { HTTP(http_port, "/fail") },
		  1,
		  FP_HEALTH_DOWN,
		  "status 503, expected 200" },
		{ "http-want-503",
		  "127.0.0.1",
		  { { .kind = FP_CHECK_HTTP, .port = http_port, .status = 503, .path = "/fail" } },
		  1,
		  FP_HEALTH_UP,
		  "1 of 1" },
		{ "http-slow",
		  "127.0.0.1",
		  { HTTP(slow_port, "/") },
		  1,
		  FP_HEALTH_DOWN,
		  "no answer within 300 ms" },
		{ "http-closed",
		  "127.0.0.1",
		  { HTTP(closed, "/") },
		  1,
		  FP_HEALTH_DOWN,
		  "Couldn't connect to server" },
		/* All must pass: tcp up, http 503 -> down, for the http check's reason. */
		{ "all-must-pass",
		  "127.0.0.1",
		  { TCP(listen_port), HTTP(http_port, "/fail") },
		  2,
		  FP_HEALTH_DOWN,
		  "/fail: status 503" },
	};
	run_cases(cases, sizeof(cases) / sizeof(cases[0]), 6080, NULL, NULL, NULL);

	/* The Host header (and TLS name) when `host` is set; the connection still goes to
	 * the backend's address. */
	struct check_case host[] = {
		{ "http-host",
		  "127.0.0.1",
		  { { .kind = FP_CHECK_HTTP,
		      .port = http_port,
		      .status = 200,
		      .path = "/ok",
		      .host = "www.example.com" } },
		  1,
		  FP_HEALTH_UP,
		  "1 of 1" },
	};
	last_host[0] = '\0';
	run_cases(host, 1, 6080, NULL, NULL, NULL);
	char want[64];

	snprintf(want, sizeof(want), "www.example.com:%u", http_port);
	assert_string_equal(last_host, want);

	MHD_stop_daemon(http);
	close(listener);
	close(full);
	close(filler);
	close(slow);
}

/* A self-signed certificate from openssl, or a skip when it cannot be made. */
static bool make_cert(char **key, char **cert)
{
	char dir[] = "/tmp/flowpin-test-health.XXXXXX", cmd[512], path[128];
	bool ok = false;
	FILE *f;

	*key = *cert = NULL;
	if (!mkdtemp(dir))
		return false;
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=backend "
		 "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
		 dir, dir);
	if (system(cmd) == 0) {
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/key.pem", dir);
		f = fopen(path, "r");
		if (f && getdelim(key, &len, '\0', f) > 0) {
			fclose(f);
			len = 0;
			snprintf(path, sizeof(path), "%s/cert.pem", dir);
			f = fopen(path, "r");
			ok = f && getdelim(cert, &len, '\0', f) > 0;
		}
		if (f)
			fclose(f);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		ok = false;
	return ok;
}

static void test_https(void **state)
{
	__u16 tls_port, plain_port;
	struct MHD_Daemon *tls, *plain;
	char *key = NULL, *cert = NULL;

	(void)state;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES || !make_cert(&key, &cert)) {
		free(key);
		free(cert);
		skip(); /* libmicrohttpd without TLS, or no openssl: nothing to check against */
	}
	tls = http_start(key, cert, &tls_port);
	plain = http_start(NULL, NULL, &plain_port);
	struct check_case cases[] = {
		{ "https-200",
		  "127.0.0.1",
		  { { .kind = FP_CHECK_HTTPS, .port = tls_port, .status = 200, .path = "/" } },
		  1,
		  FP_HEALTH_UP,
		  "1 of 1" },
		{ "https-503",
		  "127.0.0.1",
		  { { .kind = FP_CHECK_HTTPS, .port = tls_port, .status = 200, .path = "/fail" } },
		  1,
		  FP_HEALTH_DOWN,
		  "status 503, expected 200" },
		{ "https-no-tls",
		  "127.0.0.1",
		  { { .kind = FP_CHECK_HTTPS, .port = plain_port, .status = 200, .path = "/" } },
		  1,
		  FP_HEALTH_DOWN,
		  "SSL" },
	};
	run_cases(cases, sizeof(cases) / sizeof(cases[0]), 6080, NULL, NULL, NULL);
	MHD_stop_daemon(tls);
	MHD_stop_daemon(plain);
	free(key);
	free(cert);
}

/* Each tunnel case needs its own encap_port: one run per case. */
static void tunnel_case(const char *name, const char *addr, struct reflector *refl, __u16 port,
			bool with_source, enum fp_health_status want, const char *reason)
{
	struct check_case c[] = {
		{ name, addr, { { .kind = FP_CHECK_TUNNEL } }, 1, want, reason },
	};
	struct fp_addr src4;

	assert_int_equal(fp_addr_parse("127.0.0.1", &src4), 0);
	run_cases(c, 1, port, with_source ? &src4 : NULL, NULL, refl);
}

static void test_tunnel(void **state)
{
	struct reflector good = { .fd = -1 }, forged = { .fd = -1, .wrong_nonce = true };
	__u16 good_port, forged_port;

	(void)state;
	good.fd = bound_socket(AF_INET, SOCK_DGRAM, &good_port);
	forged.fd = bound_socket(AF_INET, SOCK_DGRAM, &forged_port);
	tunnel_case("tunnel-agent", "127.0.0.1", &good, good_port, true, FP_HEALTH_UP, "1 of 1");
	assert_int_equal(good.seen, 1);
	tunnel_case("tunnel-forged", "127.0.0.1", &forged, forged_port, true, FP_HEALTH_DOWN,
		    "no reply within 300 ms");
	assert_int_equal(forged.seen, 1);
	tunnel_case("tunnel-no-agent", "127.0.0.1", NULL, closed_port(SOCK_DGRAM), true,
		    FP_HEALTH_DOWN, "port unreachable (no flowpin agent on the backend)");
	tunnel_case("tunnel-no-source", "127.0.0.1", &good, good_port, false, FP_HEALTH_DOWN,
		    "this node has no IPv4 outer source address");
	tunnel_case("tunnel-v6", "::1", NULL, good_port, true, FP_HEALTH_DOWN,
		    "this node has no IPv6 outer source address");
	assert_int_equal(good.seen, 1); /* neither of the last two sent anything */
	close(good.fd);
	close(forged.fd);
}

/*
 * A reload with the same checks keeps each checker's state and counters (no new
 * "unknown" window after every SIGHUP); a changed check starts over.
 */
static void test_reconfigure_keeps_state(void **state)
{
	__u16 listen_port, closed = closed_port(SOCK_STREAM);
	int listener = bound_socket(AF_INET, SOCK_STREAM, &listen_port);
	struct check_case cases[] = {
		{ "keep-up", "127.0.0.1", { TCP(listen_port) }, 1, FP_HEALTH_UP, "1 of 1" },
		{ "keep-down", "127.0.0.1", { TCP(closed) }, 1, FP_HEALTH_DOWN, "refused" },
		{ "changed", "127.0.0.1", { TCP(listen_port) }, 1, FP_HEALTH_UP, "1 of 1" },
	};
	struct run r = { .base = event_base_new() };
	struct verdicts w = { cases, 3 };
	struct fp_config cfg;

	(void)state;
	assert_int_equal(listen(listener, 16), 0);
	build_config(&cfg, cases, 3, 6080);
	r.h = fp_health_new(r.base, on_change, &r);
	assert_non_null(r.h);
	assert_int_equal(fp_health_configure(r.h, &cfg), 0);
	run_until_decided(&r, 3000);
	fp_health_foreach(r.h, check_verdict, &w);

	/* Same config again (a SIGHUP), with one VIP's check changed. */
	cfg.vips[2].health.checks[0].port = closed;
	assert_int_equal(fp_health_configure(r.h, &cfg), 0);
	assert_false(fp_health_backend_up(r.h, "keep-down", 2));
	assert_true(fp_health_backend_up(r.h, "keep-up", 1));
	r.decided = r.n = 0;
	fp_health_foreach(r.h, count_decided, &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.decided, 2); /* "changed" starts unknown */
	cases[2].want = FP_HEALTH_DOWN;
	cases[2].reason = "refused";
	run_until_decided(&r, 3000);
	fp_health_foreach(r.h, check_verdict, &w);

	/* A backend `down` in the file is not checked; an unchecked one counts as up. */
	cfg.vips[0].backends[0].state = FP_BACKEND_DOWN;
	cfg.vips[1].health.n_checks = 0;
	assert_int_equal(fp_health_configure(r.h, &cfg), 0);
	r.decided = r.n = 0;
	fp_health_foreach(r.h, count_decided, &r);
	assert_int_equal(r.n, 1);
	assert_true(fp_health_backend_up(r.h, "keep-down", 2));
	fp_health_free(r.h);
	free_config(&cfg);
	event_base_free(r.base);
	close(listener);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_and_http),
		cmocka_unit_test(test_https),
		cmocka_unit_test(test_tunnel),
		cmocka_unit_test(test_reconfigure_keeps_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
