// SPDX-License-Identifier: MIT
/*
 * BIRD 2: the include file flowpin writes, the control-socket protocol, and the alive
 * interface (flowpin/bird.h). No birdc: the daemon speaks the socket itself, with a
 * deadline on every wait, so a stopped or stuck BIRD costs at most the timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/if_tun.h>
#include <event2/event.h>
#include <flowpin/bird.h>
#include <flowpin/text.h>

static void say(char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
}

/* ---- the include file ---- */

bool fp_bird_ifname_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > FP_BIRD_IFNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* A comment from outside: printable ASCII only (a newline would end it), cut at 200 bytes. */
static void add_comment(struct fp_text *t, const char *c)
{
	char safe[201];
	size_t n = 0;

	if (!c || !*c)
		return;
	for (; *c && n < sizeof(safe) - 1; c++)
		safe[n++] = (*c >= 0x20 && *c < 0x7f) ? *c : '?';
	safe[n] = '\0';
	fp_text_add(t, " # %s", safe);
}

static void add_protocol(struct fp_text *t, const struct fp_bird_route *routes, size_t n, bool v4,
			 const char *alive_ifname)
{
	fp_text_add(t, "protocol static %s {\n\t%s;\n", v4 ? FP_BIRD_PROTO_V4 : FP_BIRD_PROTO_V6,
		    v4 ? "ipv4" : "ipv6");
	for (size_t i = 0; i < n; i++) {
		const struct fp_bird_route *r = &routes[i];
		char buf[INET6_ADDRSTRLEN];

		if (fp_addr_v4(&r->addr) != v4 || r->state == FP_ANNOUNCE_WITHDRAWN)
			continue;
		fp_text_add(t, "\troute %s/%d ", fp_addr_str(&r->addr, buf, sizeof(buf)),
			    v4 ? 32 : 128);
		if (alive_ifname)
			fp_text_add(t, "via \"%s\"", alive_ifname);
		else
			fp_text_add(t, "blackhole");
		if (r->state == FP_ANNOUNCE_DRAINING)
			fp_text_add(
				t,
				" { bgp_community.add((65535, 0)); }"); /* RFC 8326 GRACEFUL_SHUTDOWN */
		fp_text_add(t, ";");
		add_comment(t, r->comment);
		fp_text_add(t, "%s\n", r->state == FP_ANNOUNCE_DRAINING ? " (draining)" : "");
	}
	fp_text_add(t, "}\n");
}

int fp_bird_include_render(const struct fp_bird_route *routes, size_t n, const char *alive_ifname,
			   char **out)
{
	struct fp_text t = { 0 };

	*out = NULL;
	if (alive_ifname && !fp_bird_ifname_ok(alive_ifname))
		return -EINVAL;
	fp_text_add(
		&t,
		"# The BGP announcements of this flowpin LB node: written by flowpin, replaced\n"
		"# at every change (do not edit). Announced: a route; draining: a route with the\n"
		"# GRACEFUL_SHUTDOWN community (RFC 8326); withdrawn: no route.\n"
		"# docs/operator-lb.md \"BGP stability shaping\".\n");
	add_protocol(&t, routes, n, true, alive_ifname);
	add_protocol(&t, routes, n, false, alive_ifname);
	if (t.failed) {
		free(t.s);
		return -ENOMEM;
	}
	*out = t.s;
	return 0;
}

int fp_bird_include_for(const struct fp_config *cfg, const struct fp_bgp_group *groups,
			const enum fp_announce_state *states, size_t n, char **out)
{
	struct fp_bird_route routes[FP_MAX_VIPS];
	char comments[FP_MAX_VIPS][201];
	int err;

	*out = NULL;
	if (n > FP_MAX_VIPS)
		return -EINVAL;
	for (size_t g = 0; g < n; g++) {
		size_t len = 0;

		comments[g][0] = '\0';
		for (size_t i = 0; i < cfg->n_vips && i < FP_MAX_VIPS; i++) {
			if (!(groups[g].vips & (1ULL << i)))
				continue;
			len += (size_t)snprintf(comments[g] + len, len < 200 ? 201 - len : 0,
						"%s%s", len ? " " : "", cfg->vips[i].name);
			if (len > 200)
				len = 200;
		}
		routes[g] = (struct fp_bird_route){ .addr = groups[g].addr,
						    .state = states[g],
						    .comment = comments[g] };
	}
	err = fp_bird_include_render(
		routes, n, cfg->bgp.alive_interface[0] ? cfg->bgp.alive_interface : NULL, out);
	return err;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t w = write(fd, s, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += w;
		len -= (size_t)w;
	}
	return 0;
}

int fp_bird_include_write(const char *path, const char *text, char *msg, size_t msglen)
{
	char *tmp = NULL, *dir = NULL, *slash;
	int fd = -1, dfd = -1, err = 0;

	if (!path || !*path || !text)
		return -EINVAL;
	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		err = -ENOMEM;
		goto out;
	}
	dir = strdup(path);
	if (!dir) {
		free(tmp);
		tmp = NULL;
		err = -ENOMEM;
		goto out;
	}
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		say(msg, msglen, "%s: cannot create a temporary file: %s", tmp, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	/* BIRD may run as its own user: it must read the file, nothing in it is secret. */
	if (fchmod(fd, 0644))
		err = -errno;
	if (!err)
		err = write_all(fd, text, strlen(text));
	if (!err && fsync(fd))
		err = -errno;
	if (err) {
		say(msg, msglen, "%s: cannot write: %s", tmp, strerror(-err));
		goto out;
	}
	if (close(fd)) {
		fd = -1;
		err = -errno;
		say(msg, msglen, "%s: cannot write: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path)) {
		err = -errno;
		say(msg, msglen, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* The rename itself durable: BIRD re-reads the file after a reboot too. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
	err = 0;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(dir);
	return err;
}

/* ---- replies ---- */

void fp_bird_reply_init(struct fp_bird_reply *r)
{
	memset(r, 0, sizeof(*r));
}

void fp_bird_reply_free(struct fp_bird_reply *r)
{
	if (!r)
		return;
	free(r->text);
	fp_bird_reply_init(r);
}

static int append_text(struct fp_bird_reply *r, const char *s, size_t n)
{
	if (r->len + n + 2 > FP_BIRD_MAX_REPLY)
		return -E2BIG;
	if (r->len + n + 2 > r->cap) {
		size_t cap = r->cap ? r->cap : 1024;
		char *t;

		while (cap < r->len + n + 2)
			cap *= 2;
		t = realloc(r->text, cap);
		if (!t)
			return -ENOMEM;
		r->text = t;
		r->cap = cap;
	}
	memcpy(r->text + r->len, s, n);
	r->len += n;
	r->text[r->len++] = '\n';
	r->text[r->len] = '\0';
	return 0;
}

/*
 * One line without its newline: "DDDD-text", "DDDD text" (the last), " text" (goes
 * on), "+..." (an asynchronous message, only after `echo`: ignored).
 */
static int parse_line(struct fp_bird_reply *r, const char *l, size_t n)
{
	int code = 0;

	if (n && l[0] == '+')
		return 0;
	if (n && l[0] == ' ')
		return append_text(r, l + 1, n - 1);
	if (n < 5)
		return -EPROTO;
	for (int i = 0; i < 4; i++) {
		if (l[i] < '0' || l[i] > '9')
			return -EPROTO;
		code = code * 10 + (l[i] - '0');
	}
	if (l[4] != '-' && l[4] != ' ')
		return -EPROTO;
	r->code = code;
	if (code >= 8000 && !r->error)
		r->error = code;
	if (l[4] == ' ')
		r->done = true;
	return append_text(r, l + 5, n - 5);
}

int fp_bird_reply_feed(struct fp_bird_reply *r, const char *buf, size_t len, size_t *used)
{
	size_t i = 0;
	int err;

	*used = 0;
	if (r->done)
		return 1;
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t take = nl ? (size_t)(nl - (buf + i)) : len - i;
		size_t room = sizeof(r->partial) - 1 - r->partial_len;

		/* Keep what fits of a long line (a route's attributes): its head is enough. */
		if (take > room) {
			memcpy(r->partial + r->partial_len, buf + i, room);
			r->partial_len += room;
			r->overlong = true;
		} else {
			memcpy(r->partial + r->partial_len, buf + i, take);
			r->partial_len += take;
		}
		i += take;
		if (!nl)
			break;
		i++; /* the newline */
		err = parse_line(r, r->partial, r->partial_len);
		r->partial_len = 0;
		r->overlong = false;
		if (err)
			return err;
		if (r->done) {
			*used = i;
			return 1;
		}
	}
	*used = i;
	return 0;
}

/* ---- the connection ---- */

struct fp_bird {
	int fd;
	int timeout_ms;
	char version[32];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char buf[4096]; /* bytes read past the last reply */
	size_t buf_len;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for @events on @fd until @deadline (CLOCK_MONOTONIC ms). 0, -ETIMEDOUT or -errno. */
static int wait_for(int fd, short events, long long deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		long long left = deadline - now_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			return 0;
	}
}

/* Reads one reply into @r before @deadline. */
static int read_reply(struct fp_bird *b, struct fp_bird_reply *r, long long deadline)
{
	size_t used;
	int ret;

	for (;;) {
		if (b->buf_len) {
			ret = fp_bird_reply_feed(r, b->buf, b->buf_len, &used);
			memmove(b->buf, b->buf + used, b->buf_len - used);
			b->buf_len -= used;
			if (ret)
				return ret < 0 ? ret : 0;
		}
		ret = wait_for(b->fd, POLLIN, deadline);
		if (ret)
			return ret;
		ssize_t n = recv(b->fd, b->buf, sizeof(b->buf), 0);

		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		b->buf_len = (size_t)n;
	}
}

static const char *why_connect(int err)
{
	switch (err) {
	case -ENOENT:
		return " (no socket there: is BIRD running, with -s this path?)";
	case -ECONNREFUSED:
		return " (nobody listens on it: BIRD died or was stopped)";
	case -ETIMEDOUT:
		return " (BIRD did not answer in time: stopped or stuck)";
	case -EACCES:
		return " (permission: BIRD's socket belongs to its user and group)";
	default:
		return "";
	}
}

int fp_bird_connect(const char *path, int timeout_ms, struct fp_bird **out, char *msg,
		    size_t msglen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fp_bird_reply hello;
	struct fp_bird *b;
	long long deadline;
	int err;

	*out = NULL;
	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		say(msg, msglen, "BIRD socket %s: path too long (at most %zu bytes)", path,
		    sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (timeout_ms <= 0)
		timeout_ms = FP_BIRD_DEFAULT_TIMEOUT_MS;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->timeout_ms = timeout_ms;
	strcpy(b->path, path);
	strcpy(sa.sun_path, path);
	deadline = now_ms() + timeout_ms;
	b->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->fd < 0) {
		err = -errno;
		goto fail;
	}
	if (connect(b->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		/* A unix socket whose backlog is full says EAGAIN: wait like for TCP. */
		if (err == -EAGAIN || err == -EINPROGRESS) {
			socklen_t len = sizeof(err);

			err = wait_for(b->fd, POLLOUT, deadline);
			if (!err && getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0)
				err = -err;
		}
		if (err)
			goto fail;
	}
	fp_bird_reply_init(&hello);
	err = read_reply(b, &hello, deadline);
	if (!err && (hello.code != 1 || strncmp(hello.text, "BIRD ", 5))) {
		say(msg, msglen, "BIRD socket %s: unexpected greeting '%.80s' (not BIRD?)", path,
		    hello.text ? hello.text : "");
		fp_bird_reply_free(&hello);
		err = -EPROTO;
		goto fail_quiet;
	}
	if (!err)
		sscanf(hello.text + 5, "%31s", b->version);
	fp_bird_reply_free(&hello);
	if (err)
		goto fail;
	*out = b;
	return 0;
fail:
	say(msg, msglen, "BIRD socket %s: %s%s", path, strerror(-err), why_connect(err));
fail_quiet:
	if (b->fd >= 0)
		close(b->fd);
	free(b);
	return err;
}

const char *fp_bird_version(const struct fp_bird *b)
{
	return b->version;
}

int fp_bird_command(struct fp_bird *b, const char *cmd, struct fp_bird_reply *reply, char *msg,
		    size_t msglen)
{
	long long deadline = now_ms() + b->timeout_ms;
	char line[512];
	size_t len, off = 0;
	int err;

	fp_bird_reply_init(reply);
	if (!cmd || strchr(cmd, '\n') || strlen(cmd) + 2 > sizeof(line)) {
		say(msg, msglen, "BIRD command: must be one line of at most %zu bytes",
		    sizeof(line) - 2);
		return -EINVAL;
	}
	len = (size_t)snprintf(line, sizeof(line), "%s\n", cmd);
	while (off < len) {
		ssize_t n = send(b->fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				err = wait_for(b->fd, POLLOUT, deadline);
				if (err)
					goto fail;
				continue;
			}
			err = -errno;
			goto fail;
		}
		off += (size_t)n;
	}
	err = read_reply(b, reply, deadline);
	if (err)
		goto fail;
	return 0;
fail:
	say(msg, msglen, "BIRD socket %s: '%s': %s%s", b->path, cmd, strerror(-err),
	    err == -ETIMEDOUT ? " (no complete reply in time: BIRD stopped or stuck)"
	    : err == -EPROTO  ? " (not BIRD's reply format)"
			      : "");
	return err;
}

void fp_bird_close(struct fp_bird *b)
{
	if (!b)
		return;
	if (b->fd >= 0)
		close(b->fd);
	free(b);
}

/* BIRD's reply without its "Reading configuration from ..." line, on one line. */
static void reply_message(const struct fp_bird_reply *r, char *msg, size_t msglen)
{
	const char *s = r->text ? r->text : "";
	char out[1024];
	size_t o = 0;

	if (!strncmp(s, "Reading configuration from ", 27)) {
		const char *nl = strchr(s, '\n');

		s = nl ? nl + 1 : s;
	}
	for (; *s && o < sizeof(out) - 1; s++)
		out[o++] = *s == '\n' ? (s[1] ? ';' : '\0') : (*s == '\t' ? ' ' : *s);
	out[o] = '\0';
	say(msg, msglen, "%s", out);
}

/* What BIRD's reply to `configure` means: 0 or a negative errno, and @msg in words. */
static int configure_result(const struct fp_bird_reply *r, char *msg, size_t msglen)
{
	char text[1024];

	reply_message(r, text, sizeof(text));
	switch (r->error ? r->error : r->code) {
	case 3: /* Reconfigured */
	case 4: /* Reconfiguration in progress */
	case 5: /* Reconfiguration already in progress, queueing new config */
		say(msg, msglen, "%s", text);
		return 0;
	case 6: /* Reconfiguration ignored, shutting down */
		say(msg, msglen, "BIRD: %s", text);
		return -ESHUTDOWN;
	case 8002: /* the configuration does not parse: FILE:LINE:COLUMN message */
		say(msg, msglen,
		    "BIRD refused the configuration (it keeps running the old one): %s", text);
		return -EINVAL;
	case 8007:
		say(msg, msglen, "BIRD: %s (the socket is restricted)", text);
		return -EACCES;
	default:
		say(msg, msglen, "BIRD answered %04d to 'configure': %s",
		    r->error ? r->error : r->code, text);
		return -EIO;
	}
}

int fp_bird_configure(const char *path, int timeout_ms, char *msg, size_t msglen)
{
	struct fp_bird_reply r;
	struct fp_bird *b;
	int err;

	err = fp_bird_connect(path, timeout_ms, &b, msg, msglen);
	if (err)
		return err;
	err = fp_bird_command(b, "configure", &r, msg, msglen);
	fp_bird_close(b);
	if (!err)
		err = configure_result(&r, msg, msglen);
	fp_bird_reply_free(&r);
	return err;
}

/* ---- configure on an event loop ---- */

struct fp_bird_job {
	struct event *io, *timer;
	int fd;
	enum { JOB_CONNECTING, JOB_HELLO, JOB_REPLY } phase;
	struct fp_bird_reply reply;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	fp_bird_done_fn done;
	void *arg;
};

static void job_free(struct fp_bird_job *j)
{
	if (j->io)
		event_free(j->io);
	if (j->timer)
		event_free(j->timer);
	if (j->fd >= 0)
		close(j->fd);
	fp_bird_reply_free(&j->reply);
	free(j);
}

/* Ends the job: the callback runs last, with the job already gone. */
static void job_finish(struct fp_bird_job *j, int err, const char *msg)
{
	fp_bird_done_fn done = j->done;
	void *arg = j->arg;
	char copy[1024];

	snprintf(copy, sizeof(copy), "%s", msg);
	job_free(j);
	done(err, copy, arg);
}

static void job_fail(struct fp_bird_job *j, int err)
{
	char msg[512];

	if (j->phase == JOB_REPLY)
		say(msg, sizeof(msg), "BIRD socket %s: 'configure': %s%s", j->path, strerror(-err),
		    err == -ETIMEDOUT ? " (no complete reply in time: BIRD stopped or stuck)" : "");
	else
		say(msg, sizeof(msg), "BIRD socket %s: %s%s", j->path, strerror(-err),
		    why_connect(err));
	job_finish(j, err, msg);
}

static void job_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	job_fail(arg, -ETIMEDOUT);
}

/* Feeds what came; returns 1 when the job ended (and is freed). */
static int job_feed(struct fp_bird_job *j, const char *buf, size_t len)
{
	static const char cmd[] = "configure\n";
	char msg[1024];
	size_t used;
	int ret;

	while (len) {
		ret = fp_bird_reply_feed(&j->reply, buf, len, &used);
		buf += used;
		len -= used;
		if (ret < 0) {
			job_fail(j, ret);
			return 1;
		}
		if (ret == 0)
			return 0;
		if (j->phase == JOB_HELLO) {
			if (j->reply.code != 1 || strncmp(j->reply.text, "BIRD ", 5)) {
				say(msg, sizeof(msg),
				    "BIRD socket %s: unexpected greeting '%.80s' (not BIRD?)",
				    j->path, j->reply.text);
				job_finish(j, -EPROTO, msg);
				return 1;
			}
			/* A few bytes into an empty socket buffer: never partial. */
			if (send(j->fd, cmd, sizeof(cmd) - 1, MSG_NOSIGNAL) != sizeof(cmd) - 1) {
				job_fail(j, errno ? -errno : -EIO);
				return 1;
			}
			fp_bird_reply_free(&j->reply);
			j->phase = JOB_REPLY;
			continue;
		}
		ret = configure_result(&j->reply, msg, sizeof(msg));
		job_finish(j, ret, msg);
		return 1;
	}
	return 0;
}

static void job_io(evutil_socket_t fd, short what, void *arg)
{
	struct fp_bird_job *j = arg;
	char buf[4096];
	ssize_t n;

	(void)what;
	if (j->phase == JOB_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			job_fail(j, err ? -err : -errno);
			return;
		}
		j->phase = JOB_HELLO;
		event_del(j->io);
		event_assign(j->io, event_get_base(j->io), fd, EV_READ | EV_PERSIST, job_io, j);
		event_add(j->io, NULL);
		return;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		job_fail(j, n < 0 ? -errno : -ECONNRESET);
		return;
	}
	job_feed(j, buf, (size_t)n);
}

int fp_bird_configure_start(struct event_base *base, const char *path, int timeout_ms,
			    fp_bird_done_fn done, void *arg, struct fp_bird_job **out, char *msg,
			    size_t msglen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv;
	struct fp_bird_job *j;
	short events = EV_READ | EV_PERSIST;
	int err;

	*out = NULL;
	if (!base || !path || !*path || !done)
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		say(msg, msglen, "BIRD socket %s: path too long (at most %zu bytes)", path,
		    sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	if (timeout_ms <= 0)
		timeout_ms = FP_BIRD_DEFAULT_TIMEOUT_MS;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->done = done;
	j->arg = arg;
	j->phase = JOB_HELLO;
	strcpy(j->path, path);
	strcpy(sa.sun_path, path);
	j->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (j->fd < 0) {
		err = -errno;
		goto fail;
	}
	if (connect(j->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		if (err != -EAGAIN && err != -EINPROGRESS)
			goto fail;
		j->phase = JOB_CONNECTING;
		events = EV_WRITE;
	}
	j->io = event_new(base, j->fd, events, job_io, j);
	j->timer = evtimer_new(base, job_timeout, j);
	if (!j->io || !j->timer) {
		err = -ENOMEM;
		goto fail;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (event_add(j->io, NULL) || evtimer_add(j->timer, &tv)) {
		err = -EIO;
		goto fail;
	}
	*out = j;
	return 0;
fail:
	say(msg, msglen, "BIRD socket %s: %s%s", path, strerror(-err), why_connect(err));
	job_free(j);
	return err;
}

void fp_bird_job_cancel(struct fp_bird_job *j)
{
	if (j)
		job_free(j);
}

int fp_bird_route_state(struct fp_bird *b, const struct fp_addr *addr, enum fp_announce_state *out,
			char *msg, size_t msglen)
{
	bool v4 = fp_addr_v4(addr);
	struct fp_bird_reply r;
	char buf[INET6_ADDRSTRLEN], cmd[128], proto[16];
	int err;

	snprintf(cmd, sizeof(cmd), "show route %s/%d protocol %s all",
		 fp_addr_str(addr, buf, sizeof(buf)), v4 ? 32 : 128,
		 v4 ? FP_BIRD_PROTO_V4 : FP_BIRD_PROTO_V6);
	err = fp_bird_command(b, cmd, &r, msg, msglen);
	if (err) {
		fp_bird_reply_free(&r);
		return err;
	}
	if (r.error) {
		/* 8001 "Network not found" is BIRD's answer for a prefix it has no route to. */
		if (r.error == 8001) {
			*out = FP_ANNOUNCE_WITHDRAWN;
			fp_bird_reply_free(&r);
			return 0;
		}
		say(msg, msglen, "BIRD answered %04d to '%s': %.200s", r.error, cmd,
		    r.text ? r.text : "");
		fp_bird_reply_free(&r);
		return -EIO;
	}
	snprintf(proto, sizeof(proto), "[%s ", v4 ? FP_BIRD_PROTO_V4 : FP_BIRD_PROTO_V6);
	if (!strstr(r.text, proto))
		*out = FP_ANNOUNCE_WITHDRAWN;
	else if (strstr(r.text, "(65535,0)"))
		*out = FP_ANNOUNCE_DRAINING;
	else
		*out = FP_ANNOUNCE_ANNOUNCED;
	fp_bird_reply_free(&r);
	return 0;
}

/* ---- the alive interface ---- */

int fp_bird_alive_open(const char *ifname, char *msg, size_t msglen)
{
	struct ifreq ifr = { 0 };
	int fd, sock = -1, err;

	if (!fp_bird_ifname_ok(ifname)) {
		say(msg, msglen, "alive interface '%s': 1..15 characters of A-Z a-z 0-9 . _ -",
		    ifname ? ifname : "");
		return -EINVAL;
	}
	/* An existing one would be someone else's, or a persistent leftover: refuse. */
	if (if_nametoindex(ifname)) {
		say(msg, msglen,
		    "alive interface %s: exists already (another flowpin, or "
		    "not ours)",
		    ifname);
		return -EEXIST;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		say(msg, msglen, "alive interface %s: /dev/net/tun: %s", ifname, strerror(errno));
		return err;
	}
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	strcpy(ifr.ifr_name, ifname);
	if (ioctl(fd, TUNSETIFF, &ifr)) {
		err = -errno;
		say(msg, msglen, "alive interface %s: TUNSETIFF: %s", ifname, strerror(errno));
		goto fail;
	}
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr)) {
		err = -errno;
		say(msg, msglen, "alive interface %s: %s", ifname, strerror(errno));
		goto fail;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr)) {
		err = -errno;
		say(msg, msglen, "alive interface %s: set up: %s", ifname, strerror(errno));
		goto fail;
	}
	close(sock);
	return fd;
fail:
	if (sock >= 0)
		close(sock);
	close(fd);
	return err;
}
