// SPDX-License-Identifier: MIT
/*
 * fpclient: the lab's traffic client. Many concurrent HTTP/1.1 downloads of one known
 * file, each from a chosen source address, every byte checked against the content the
 * file must have, one outcome per flow.
 *
 *   fpclient gen --size BYTES --seed N --out FILE
 *   fpclient run --target NAME=ADDR[:PORT] ... --source ADDR ... --flows N --size BYTES
 *                --seed N [--path /data.bin] [--timeout S] [--stall S] [--ramp S]
 *                [--idle-at BYTES --idle-for S] [--out FILE]
 *
 * The content is a function of (seed, offset) so the client can check any byte range
 * without holding the file: byte i = byte (i % 8) of splitmix64(seed ^ (i / 8)).
 *
 * Outcomes: completed, reset (RST, refused, or the server closed early), stalled (no
 * progress for --stall seconds while a response was due), timeout (the flow's deadline
 * passed, or its handshake never finished), corrupted (a byte, status or length was
 * wrong). Broken = anything but completed.
 *
 * With --idle-at the download is two Range requests on the same connection: bytes
 * [0, idle-at), then nothing at all on the wire for --idle-for seconds, then the rest.
 * That is the profile of a long-lived, mostly idle connection: silent longer than an
 * LB's session-table timeout, then busy again.
 *
 * SIGUSR1 pauses reading on every flow (the window closes, the servers stop sending),
 * SIGUSR2 resumes. SIGTERM/SIGINT end the run: open flows count as timeout.
 *
 * Output: one line per flow on --out (or stdout):
 *   flow TARGET SRC SPORT BACKEND OUTCOME BYTES SECONDS TS DETAIL
 * TS: whether the connection negotiated TCP timestamps (TCP_INFO): `ts`, `nots`, or `-`
 * when the handshake never finished (the lab's client without timestamps must show
 * `nots` on every flow, the other client `ts`).
 * and on stderr "fpclient: started N flows" once every flow has been launched, then a
 * summary per target at the end. Exit status 0 when the run itself worked, whatever
 * the flows' outcomes (the runner judges those); 2 for bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "labutil.h"

#define MAX_TARGETS 32
#define MAX_SOURCES 1024
#define HDR_MAX	    2048

enum phase { PH_WAIT, PH_CONNECTING, PH_SENDING, PH_HEADERS, PH_BODY, PH_IDLE, PH_DONE };

struct target {
	char name[32];
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char host[64];
	unsigned n_flows, n_outcome[LAB_OUTCOMES];
};

struct flow {
	int fd;
	int target;
	int source;
	enum phase phase;
	enum lab_outcome outcome;
	char detail[64];
	char backend[32];
	uint16_t sport;
	signed char ts; /* timestamps negotiated: 1, 0, -1 = handshake not finished */
	uint64_t range_start, range_end; /* current request: bytes [start, end) */
	uint64_t received;		 /* body bytes of the current request so far */
	uint64_t total;			 /* body bytes verified over the whole flow */
	char req[256];
	size_t req_len, req_sent;
	char hdr[HDR_MAX];
	size_t hdr_len;
	double t_launch, t_progress, t_idle_until, t_end;
};

static struct target targets[MAX_TARGETS];
static int n_targets;
static struct sockaddr_storage sources[MAX_SOURCES];
static int n_sources;
static struct flow *flows;
static unsigned n_flows_total;
static uint64_t opt_size, opt_seed = 1, opt_idle_at;
static double opt_idle_for, opt_timeout = 120, opt_stall = 3, opt_ramp = 1;
static const char *opt_path = "/data.bin";
static volatile sig_atomic_t sig_pause, sig_resume, sig_stop;
static bool paused;
static int epfd = -1;

/* "NAME=ADDR[:PORT]" with ADDR an IPv4 literal or an IPv6 literal in [brackets]. */
static int parse_target(const char *arg, struct target *t)
{
	char buf[128], *eq, *addr, *port_s = NULL;
	unsigned long port = 80;

	if (strlen(arg) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, arg);
	eq = strchr(buf, '=');
	if (!eq || eq == buf || (size_t)(eq - buf) >= sizeof(t->name))
		return -EINVAL;
	*eq = '\0';
	snprintf(t->name, sizeof(t->name), "%s", buf);
	addr = eq + 1;
	memset(&t->addr, 0, sizeof(t->addr));
	if (addr[0] == '[') {
		char *close = strchr(addr, ']');
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;

		if (!close)
			return -EINVAL;
		*close = '\0';
		if (close[1] == ':')
			port_s = close + 2;
		else if (close[1])
			return -EINVAL;
		addr++;
		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -EINVAL;
		t->addr_len = sizeof(*s6);
		snprintf(t->host, sizeof(t->host), "[%s]", addr);
	} else {
		char *colon = strchr(addr, ':');
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr;

		if (colon) {
			*colon = '\0';
			port_s = colon + 1;
		}
		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -EINVAL;
		t->addr_len = sizeof(*s4);
		snprintf(t->host, sizeof(t->host), "%s", addr);
	}
	if (port_s) {
		char *end;

		port = strtoul(port_s, &end, 10);
		if (*end || port == 0 || port > 65535)
			return -EINVAL;
	}
	if (t->addr.ss_family == AF_INET)
		((struct sockaddr_in *)&t->addr)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&t->addr)->sin6_port = htons(port);
	return 0;
}

static void finish(struct flow *f, enum lab_outcome o, const char *detail)
{
	if (f->outcome != OUT_RUNNING)
		return;
	f->outcome = o;
	f->phase = PH_DONE;
	f->t_end = lab_now();
	snprintf(f->detail, sizeof(f->detail), "%s", detail && *detail ? detail : "-");
	if (f->fd >= 0) {
		/* Broken flows end with an RST so no server keeps sending into a dead flow. */
		if (o != OUT_COMPLETED) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(f->fd);
		f->fd = -1;
	}
}

static void finish_errno(struct flow *f, int err, const char *where)
{
	char d[64];

	snprintf(d, sizeof(d), "%s:%s", where, strerrorname_np(err) ?: "?");
	if (err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH)
		finish(f, OUT_TIMEOUT, d);
	else
		finish(f, OUT_RESET, d);
}

static void set_events(struct flow *f)
{
	struct epoll_event ev = { .data.ptr = f };

	switch (f->phase) {
	case PH_CONNECTING:
	case PH_SENDING:
		ev.events = EPOLLOUT;
		break;
	case PH_HEADERS:
	case PH_BODY:
		ev.events = paused ? 0 : EPOLLIN;
		break;
	default:
		ev.events = 0; /* idle: nothing expected; errors still reported */
		break;
	}
	epoll_ctl(epfd, EPOLL_CTL_MOD, f->fd, &ev);
}

static void start_request(struct flow *f, uint64_t start, uint64_t end)
{
	const struct target *t = &targets[f->target];
	bool ranged = start != 0 || end != opt_size;

	f->range_start = start;
	f->range_end = end;
	f->received = 0;
	f->hdr_len = 0;
	if (ranged)
		f->req_len = snprintf(
			f->req, sizeof(f->req),
			"GET %s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%llu-%llu\r\n\r\n", opt_path,
			t->host, (unsigned long long)start, (unsigned long long)(end - 1));
	else
		f->req_len = snprintf(f->req, sizeof(f->req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
				      opt_path, t->host);
	f->req_sent = 0;
	f->phase = PH_SENDING;
	f->t_progress = lab_now();
	set_events(f);
}

static void launch(struct flow *f)
{
	const struct target *t = &targets[f->target];
	const struct sockaddr_storage *src = &sources[f->source];
	socklen_t src_len = src->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						      : sizeof(struct sockaddr_in6);
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = f };
	int one = 1, fd;
	struct sockaddr_storage local;
	socklen_t local_len = sizeof(local);

	f->t_launch = f->t_progress = lab_now();
	fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		finish_errno(f, errno, "socket");
		return;
	}
	f->fd = fd;
	/* Port chosen at connect time, per 4-tuple: many flows share one source address. */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)src, src_len) < 0) {
		finish_errno(f, errno, "bind");
		return;
	}
	if (connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) < 0 &&
	    errno != EINPROGRESS) {
		finish_errno(f, errno, "connect");
		return;
	}
	if (getsockname(fd, (struct sockaddr *)&local, &local_len) == 0)
		f->sport = ntohs(local.ss_family == AF_INET
					 ? ((struct sockaddr_in *)&local)->sin_port
					 : ((struct sockaddr_in6 *)&local)->sin6_port);
	f->phase = PH_CONNECTING;
	epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Parses a complete response header. Returns the body bytes already in hdr, or -1. */
static long parse_headers(struct flow *f, size_t hdr_end)
{
	bool ranged = f->range_start != 0 || f->range_end != opt_size;
	int want_status = ranged ? 206 : 200;
	int status = 0;
	unsigned long long clen = ~0ULL;
	char *line, *save = NULL;

	f->hdr[hdr_end - 2] = '\0'; /* cut at the blank line */
	line = strtok_r(f->hdr, "\r\n", &save);
	if (!line || sscanf(line, "HTTP/1.%*d %d", &status) != 1 || status != want_status) {
		char d[64];

		snprintf(d, sizeof(d), "status:%d", status);
		finish(f, OUT_CORRUPTED, d);
		return -1;
	}
	while ((line = strtok_r(NULL, "\r\n", &save))) {
		if (!strncasecmp(line, "Content-Length:", 15))
			clen = strtoull(line + 15, NULL, 10);
		else if (!strncasecmp(line, "X-Backend:", 10))
			sscanf(line + 10, " %31s", f->backend);
	}
	if (clen != f->range_end - f->range_start) {
		finish(f, OUT_CORRUPTED, "content-length");
		return -1;
	}
	return 0;
}

static void on_body(struct flow *f, const uint8_t *data, size_t len)
{
	char d[64];

	if (lab_check_piece(opt_seed, f->range_start + f->received,
			    f->range_end - f->range_start - f->received, data, len, d, sizeof(d))) {
		finish(f, OUT_CORRUPTED, d);
		return;
	}
	f->received += len;
	f->total += len;
	f->t_progress = lab_now();
	if (f->received < f->range_end - f->range_start)
		return;
	if (f->range_end == opt_size) {
		finish(f, OUT_COMPLETED, NULL);
		return;
	}
	/* First piece done: go silent, then ask for the rest on the same connection. */
	f->phase = PH_IDLE;
	f->t_idle_until = lab_now() + opt_idle_for;
	set_events(f);
}

static void on_readable(struct flow *f)
{
	static uint8_t buf[65536];

	for (int rounds = 0; rounds < 4 && f->phase != PH_DONE; rounds++) {
		ssize_t n = recv(f->fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			finish_errno(f, errno, "recv");
			return;
		}
		if (n == 0) {
			finish(f, OUT_RESET, f->phase == PH_IDLE ? "eof-idle" : "eof");
			return;
		}
		if (f->phase == PH_IDLE) {
			finish(f, OUT_CORRUPTED, "data-while-idle");
			return;
		}
		if (f->phase == PH_BODY) {
			on_body(f, buf, n);
			continue;
		}
		/* PH_HEADERS: collect until the blank line, then the rest is body. */
		size_t room = sizeof(f->hdr) - 1 - f->hdr_len;
		size_t take = (size_t)n < room ? (size_t)n : room;
		char *end;

		memcpy(f->hdr + f->hdr_len, buf, take);
		f->hdr_len += take;
		f->hdr[f->hdr_len] = '\0';
		end = strstr(f->hdr, "\r\n\r\n");
		if (!end) {
			if (f->hdr_len >= sizeof(f->hdr) - 1)
				finish(f, OUT_CORRUPTED, "header-too-long");
			else if ((size_t)n > take)
				finish(f, OUT_CORRUPTED, "header-overflow");
			continue;
		}
		size_t hdr_end = end - f->hdr + 4;
		size_t body_in_hdr = f->hdr_len - hdr_end;
		uint8_t body[HDR_MAX];

		memcpy(body, f->hdr + hdr_end, body_in_hdr);
		if (parse_headers(f, hdr_end) < 0)
			return;
		f->phase = PH_BODY;
		f->t_progress = lab_now();
		if (body_in_hdr)
			on_body(f, body, body_in_hdr);
		if (f->phase == PH_BODY && (size_t)n > take)
			on_body(f, buf + take, n - take);
	}
}

static void on_writable(struct flow *f)
{
	if (f->phase == PH_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			finish_errno(f, err, "connect");
			return;
		}
		struct tcp_info ti;

		len = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		if (!getsockopt(f->fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
			f->ts = (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) ? 1 : 0;
		uint64_t first_end = opt_idle_at && opt_idle_at < opt_size ? opt_idle_at : opt_size;

		start_request(f, 0, first_end);
		return;
	}
	if (f->phase != PH_SENDING)
		return;
	ssize_t n = send(f->fd, f->req + f->req_sent, f->req_len - f->req_sent, MSG_NOSIGNAL);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			finish_errno(f, errno, "send");
		return;
	}
	f->req_sent += n;
	f->t_progress = lab_now();
	if (f->req_sent == f->req_len) {
		f->phase = PH_HEADERS;
		set_events(f);
	}
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		sig_pause = 1;
	else if (sig == SIGUSR2)
		sig_resume = 1;
	else
		sig_stop = 1;
}

static void set_paused(bool p)
{
	double t = lab_now();

	paused = p;
	for (unsigned i = 0; i < n_flows_total; i++) {
		struct flow *f = &flows[i];

		if (f->fd < 0 || f->phase == PH_DONE)
			continue;
		/* A pause is not a stall: progress is measured from the resume. */
		f->t_progress = t;
		set_events(f);
	}
}

static int cmd_gen(int argc, char **argv)
{
	uint64_t size = 0, seed = 1;
	const char *out = NULL;
	static uint8_t buf[1 << 16];
	FILE *fp;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			if (lab_parse_u64(argv[++i], &size))
				goto bad;
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			if (lab_parse_u64(argv[++i], &seed))
				goto bad;
		} else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
			out = argv[++i];
		} else {
			goto bad;
		}
	}
	if (!out || !size)
		goto bad;
	fp = fopen(out, "wb");
	if (!fp) {
		fprintf(stderr, "fpclient gen: %s: %s\n", out, strerror(errno));
		return 1;
	}
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);

		lab_content(seed, off, buf, n);
		if (fwrite(buf, 1, n, fp) != n) {
			ret = 1;
			break;
		}
		off += n;
	}
	if (fclose(fp) || ret) {
		fprintf(stderr, "fpclient gen: %s: write failed\n", out);
		return 1;
	}
	return 0;
bad:
	fprintf(stderr, "usage: fpclient gen --size BYTES --seed N --out FILE\n");
	return 2;
}

static void usage_run(void)
{
	fprintf(stderr,
		"usage: fpclient run --target NAME=ADDR[:PORT] ... --source ADDR ... --flows N\n"
		"                    --size BYTES --seed N [--path P] [--timeout S] [--stall S]\n"
		"                    [--ramp S] [--idle-at BYTES --idle-for S] [--out FILE]\n"
		"  --flows is per target; IPv6 targets use the IPv6 sources, IPv4 the IPv4 ones\n");
}

static int cmd_run(int argc, char **argv)
{
	uint64_t per_target = 0;
	const char *out_path = NULL;
	FILE *out = stdout;
	struct epoll_event events[256];
	int src_of_family[2] = { 0, 0 };
	double t0;
	unsigned launched = 0, open_flows;
	bool announced = false;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int err = 0;

		if (!v) {
			fprintf(stderr, "fpclient run: %s needs a value\n", a);
			usage_run();
			return 2;
		}
		i++;
		if (!strcmp(a, "--target")) {
			if (n_targets == MAX_TARGETS)
				err = -E2BIG;
			else
				err = parse_target(v, &targets[n_targets++]);
		} else if (!strcmp(a, "--source")) {
			if (n_sources == MAX_SOURCES)
				err = -E2BIG;
			else
				err = lab_parse_addr(v, &sources[n_sources++]);
		} else if (!strcmp(a, "--flows")) {
			err = lab_parse_u64(v, &per_target);
		} else if (!strcmp(a, "--size")) {
			err = lab_parse_u64(v, &opt_size);
		} else if (!strcmp(a, "--seed")) {
			err = lab_parse_u64(v, &opt_seed);
		} else if (!strcmp(a, "--path")) {
			opt_path = v;
		} else if (!strcmp(a, "--timeout")) {
			err = lab_parse_double(v, &opt_timeout);
		} else if (!strcmp(a, "--stall")) {
			err = lab_parse_double(v, &opt_stall);
		} else if (!strcmp(a, "--ramp")) {
			err = lab_parse_double(v, &opt_ramp);
		} else if (!strcmp(a, "--idle-at")) {
			err = lab_parse_u64(v, &opt_idle_at);
		} else if (!strcmp(a, "--idle-for")) {
			err = lab_parse_double(v, &opt_idle_for);
		} else if (!strcmp(a, "--out")) {
			out_path = v;
		} else {
			fprintf(stderr, "fpclient run: unknown option '%s'\n", a);
			usage_run();
			return 2;
		}
		if (err) {
			fprintf(stderr, "fpclient run: %s: bad value '%s'\n", a, v);
			return 2;
		}
	}
	for (int s = 0; s < n_sources; s++)
		src_of_family[sources[s].ss_family == AF_INET6]++;
	if (!n_targets || !per_target || !opt_size) {
		fprintf(stderr, "fpclient run: --target, --flows and --size are required\n");
		usage_run();
		return 2;
	}
	for (int t = 0; t < n_targets; t++) {
		if (!src_of_family[targets[t].addr.ss_family == AF_INET6]) {
			fprintf(stderr, "fpclient run: target %s: no --source of its family\n",
				targets[t].name);
			return 2;
		}
	}
	if (out_path) {
		out = fopen(out_path, "w");
		if (!out) {
			fprintf(stderr, "fpclient run: %s: %s\n", out_path, strerror(errno));
			return 1;
		}
	}

	/* Two sockets per flow at most (ours), plus slack. */
	struct rlimit rl = { .rlim_cur = 65536, .rlim_max = 65536 };

	setrlimit(RLIMIT_NOFILE, &rl);
	n_flows_total = per_target * n_targets;
	flows = calloc(n_flows_total, sizeof(*flows));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!flows || epfd < 0) {
		fprintf(stderr, "fpclient run: out of memory\n");
		ret = 1;
		goto out;
	}
	/* Interleave targets so every VIP sees the same launch times. */
	int next_src[2] = { 0, 0 };

	for (unsigned i = 0; i < n_flows_total; i++) {
		struct flow *f = &flows[i];
		int fam;

		f->fd = -1;
		f->ts = -1;
		f->target = i % n_targets;
		fam = targets[f->target].addr.ss_family == AF_INET6;
		/* Round-robin over the sources of the target's family (checked above). */
		f->source = lab_next_source(sources, n_sources, fam, &next_src[fam]);
		targets[f->target].n_flows++;
		snprintf(f->backend, sizeof(f->backend), "-");
	}

	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	t0 = lab_now();
	open_flows = n_flows_total;
	while (open_flows) {
		double t = lab_now();
		int n;

		if (sig_stop)
			break;
		if (sig_pause) {
			sig_pause = 0;
			set_paused(true);
		}
		if (sig_resume) {
			sig_resume = 0;
			set_paused(false);
		}
		/* Launch flows evenly over the ramp so the handshakes do not all collide. */
		unsigned due = opt_ramp > 0 ? (unsigned)((t - t0) / opt_ramp * n_flows_total) + 1
					    : n_flows_total;

		if (due > n_flows_total)
			due = n_flows_total;
		while (launched < due)
			launch(&flows[launched++]);
		if (launched == n_flows_total && !announced) {
			fprintf(stderr, "fpclient: started %u flows\n", n_flows_total);
			announced = true;
		}

		n = epoll_wait(epfd, events, 256, 50);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "fpclient run: epoll_wait: %s\n", strerror(errno));
			ret = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct flow *f = events[i].data.ptr;

			if (f->phase == PH_DONE)
				continue;
			if (events[i].events & (EPOLLERR | EPOLLHUP) && f->phase != PH_HEADERS &&
			    f->phase != PH_BODY) {
				int err = 0;
				socklen_t len = sizeof(err);

				getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
				if (err)
					finish_errno(f, err, "socket");
				else
					finish(f, OUT_RESET, "hangup");
				continue;
			}
			if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(f);
			if (f->phase != PH_DONE && events[i].events & EPOLLOUT)
				on_writable(f);
		}

		/* Timers: idle periods ending, stalls, deadlines. */
		t = lab_now();
		open_flows = n_flows_total - launched;
		for (unsigned i = 0; i < launched; i++) {
			struct flow *f = &flows[i];

			if (f->phase == PH_DONE)
				continue;
			open_flows++;
			if (t - f->t_launch > opt_timeout) {
				finish(f, OUT_TIMEOUT, "deadline");
			} else if (f->phase == PH_IDLE) {
				if (t >= f->t_idle_until && !paused)
					start_request(f, f->range_end, opt_size);
			} else if (!paused && t - f->t_progress > opt_stall) {
				static const char *where[] = { "wait", "connect", "send", "headers",
							       "body", "idle",	  "done" };

				finish(f, f->phase == PH_CONNECTING ? OUT_TIMEOUT : OUT_STALLED,
				       where[f->phase]);
			}
			if (f->phase == PH_DONE)
				open_flows--;
		}
	}

	for (unsigned i = 0; i < n_flows_total; i++) {
		struct flow *f = &flows[i];
		char src[INET6_ADDRSTRLEN];

		if (f->outcome == OUT_RUNNING) {
			if (!f->t_launch)
				f->t_launch = lab_now();
			finish(f, OUT_TIMEOUT, sig_stop ? "stopped" : "not-finished");
		}
		targets[f->target].n_outcome[f->outcome]++;
		fprintf(out, "flow %s %s %u %s %s %llu %.3f %s %s\n", targets[f->target].name,
			lab_addr_str(&sources[f->source], src, sizeof(src)), f->sport, f->backend,
			lab_outcome_name[f->outcome], (unsigned long long)f->total, f->t_end - t0,
			f->ts < 0 ? "-"
			: f->ts	  ? "ts"
				  : "nots",
			f->detail);
	}
	for (int t = 0; t < n_targets; t++) {
		const struct target *tg = &targets[t];

		lab_print_summary("fpclient", tg->name, tg->n_flows, tg->n_outcome);
	}
out:
	if (out && out != stdout && fclose(out)) {
		fprintf(stderr, "fpclient run: %s: write failed\n", out_path);
		ret = 1;
	}
	if (epfd >= 0)
		close(epfd);
	free(flows);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "gen"))
		return cmd_gen(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	fprintf(stderr,
		"usage: fpclient gen|run ... (see the comment at the top of lab/fpclient.c)\n");
	return 2;
}
