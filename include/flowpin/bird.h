/* SPDX-License-Identifier: MIT */
/*
 * Talking to BIRD 2 (the node's BGP speaker): the include file flowpin writes and
 * BIRD's control socket, spoken from C. Userspace only.
 *
 * The include file (docs/operator-lb.md "BGP stability shaping") defines the static
 * protocols flowpin_v4 and flowpin_v6; an announced address is
 * `route PREFIX blackhole;`, a draining one carries the GRACEFUL_SHUTDOWN community
 * (`route PREFIX blackhole { bgp_community.add((65535, 0)); };`), a withdrawn one is
 * absent. With an alive interface the routes are `via "IFNAME"` instead: BIRD drops
 * them when the interface goes away, and the interface is a tun device that lives only
 * as long as the flowpin process holding it (fp_bird_alive_open()), so a crashed daemon
 * is withdrawn without its help.
 *
 * The control socket: BIRD greets with "0001 BIRD <version> ready."; each reply is
 * lines "DDDD-text" (more follow), " text" (continues the previous code) and ends with
 * "DDDD text". 0xxx: done, 1xxx/2xxx: data, 8xxx: run-time error, 9xxx: the command did
 * not parse. Every call here has a deadline (the daemon never hangs on BIRD): the
 * socket is non-blocking and each wait is a poll() bounded by what is left of it.
 */
#ifndef FLOWPIN_BIRD_H
#define FLOWPIN_BIRD_H

#include <stdbool.h>
#include <stddef.h>
#include <flowpin/addr.h>
#include <flowpin/announce.h>

#define FP_BIRD_DEFAULT_SOCKET	   "/run/bird/bird.ctl"
#define FP_BIRD_DEFAULT_TIMEOUT_MS 2000
#define FP_BIRD_MAX_REPLY	   (1 << 20) /* a longer reply is an error (-E2BIG) */
#define FP_BIRD_IFNAME_MAX	   15	     /* IFNAMSIZ - 1 */
#define FP_BIRD_PROTO_V4	   "flowpin_v4"
#define FP_BIRD_PROTO_V6	   "flowpin_v6"

/* One route of the include file. WITHDRAWN routes are left out. */
struct fp_bird_route {
	struct fp_addr addr; /* a /32 (IPv4-mapped) or a /128 */
	enum fp_announce_state state;
	const char *comment; /* e.g. the VIP names; NULL for none (sanitised when written) */
};

/*
 * fp_bird_include_render - the include file's text for @routes, into *@out (malloc'ed,
 * the caller frees). @alive_ifname NULL: blackhole routes; else routes via that
 * interface (a name of 1..15 characters of A-Z a-z 0-9 . _ -). Deterministic: the same
 * routes give the same bytes, so a caller can skip an unchanged file.
 * Returns 0, -EINVAL (a bad interface name) or -ENOMEM.
 */
int fp_bird_include_render(const struct fp_bird_route *routes, size_t n, const char *alive_ifname,
			   char **out);

/*
 * fp_bird_include_for - the include file for @cfg's announced addresses (@groups from
 * fp_bgp_groups()) in @states (one per group), via cfg->bgp.alive_interface when set;
 * each route's comment names its VIPs. Returns as fp_bird_include_render().
 */
int fp_bird_include_for(const struct fp_config *cfg, const struct fp_bgp_group *groups,
			const enum fp_announce_state *states, size_t n, char **out);

/*
 * fp_bird_include_write - writes @text to @path atomically: a temporary file in the same
 * directory, fsync, rename over @path, fsync of the directory. BIRD (and a reader)
 * sees the old file or the new one, never a part. Returns 0 or a negative errno with a
 * message in @msg.
 */
int fp_bird_include_write(const char *path, const char *text, char *msg, size_t msglen);

/* A reply from BIRD, and the parser that builds it from bytes as they come. */
struct fp_bird_reply {
	int code;   /* the last line's code (0..9999) */
	int error;  /* the first 8xxx/9xxx code seen, or 0 */
	char *text; /* each line's text without its code, '\n'-terminated; NUL-terminated */
	size_t len, cap;
	bool done;
	/* parser state */
	char partial[512];
	size_t partial_len;
	bool overlong; /* the current line was cut (kept: its first 511 bytes) */
};

void fp_bird_reply_init(struct fp_bird_reply *r);
void fp_bird_reply_free(struct fp_bird_reply *r);
/*
 * fp_bird_reply_feed - parses @len bytes of BIRD's output. Returns 1 when the reply
 * is complete (*@used: the bytes it took; the rest belongs to the next reply), 0 when
 * more is needed (all taken), -EPROTO for a line that is no reply line, -E2BIG past
 * FP_BIRD_MAX_REPLY, -ENOMEM.
 */
int fp_bird_reply_feed(struct fp_bird_reply *r, const char *buf, size_t len, size_t *used);

struct fp_bird;

/*
 * fp_bird_connect - connects to BIRD's control socket at @path and reads its greeting,
 * within @timeout_ms (also the deadline of each later command on this connection).
 * Returns 0 and *@out, or -ENOENT (no socket: BIRD not running, or another path),
 * -ECONNREFUSED (a socket nobody listens on: BIRD died), -ETIMEDOUT (BIRD did not
 * answer: stopped or stuck), -EACCES, -ENAMETOOLONG, -EPROTO (not BIRD); @msg says
 * which in words.
 */
int fp_bird_connect(const char *path, int timeout_ms, struct fp_bird **out, char *msg,
		    size_t msglen);
/* The version BIRD's greeting named ("2.0.12"). */
const char *fp_bird_version(const struct fp_bird *b);
/*
 * fp_bird_command - sends @cmd (one line, no newline in it) and reads the whole reply
 * into @reply (initialised here; free it with fp_bird_reply_free() whatever this
 * returns). Returns 0 when a reply came (look at reply->code / reply->error), or
 * -ETIMEDOUT, -EPIPE/-ECONNRESET (BIRD went away), -EPROTO, -E2BIG, -EINVAL (@cmd).
 * After an error the connection is unusable: close it.
 */
int fp_bird_command(struct fp_bird *b, const char *cmd, struct fp_bird_reply *reply, char *msg,
		    size_t msglen);
void fp_bird_close(struct fp_bird *b);

/*
 * fp_bird_configure - connect, `configure` (BIRD re-reads its config file, includes and
 * all; atomic: a config that does not parse leaves the running one as it was), close.
 * Returns 0 when BIRD took the new config (reconfigured, or queued behind a
 * reconfiguration in progress), -EINVAL when BIRD refused it: @msg holds BIRD's own
 * message ("FILE:LINE:COLUMN message"); -ESHUTDOWN (BIRD is shutting down), -EACCES,
 * or fp_bird_connect()'s and fp_bird_command()'s errors.
 */
int fp_bird_configure(const char *path, int timeout_ms, char *msg, size_t msglen);

/*
 * fp_bird_configure_start - the same `configure` on the daemon's event loop, never
 * blocking it: connects, and returns at once; @done runs once, from @base, with 0 or
 * the negative errno fp_bird_configure() would return and its message (valid during the
 * call). A failure found at once (-ENOENT: no socket, -ECONNREFUSED: BIRD dead,
 * -ENAMETOOLONG, -ENOMEM) is returned here instead, with @msg, and @done never runs.
 * *@out is the job, valid until @done runs; fp_bird_job_cancel() ends it without @done
 * (for a daemon stopping, or a newer configure replacing it).
 */
struct event_base;
struct fp_bird_job;
typedef void (*fp_bird_done_fn)(int err, const char *msg, void *arg);
int fp_bird_configure_start(struct event_base *base, const char *path, int timeout_ms,
			    fp_bird_done_fn done, void *arg, struct fp_bird_job **out, char *msg,
			    size_t msglen);
void fp_bird_job_cancel(struct fp_bird_job *j);

/*
 * fp_bird_route_state - what BIRD has for @addr from flowpin's protocols
 * (`show route PREFIX protocol flowpin_v4|6 all`): WITHDRAWN (no route), DRAINING (it
 * carries (65535, 0)) or ANNOUNCED. Returns 0 or a fp_bird_command() error.
 */
int fp_bird_route_state(struct fp_bird *b, const struct fp_addr *addr, enum fp_announce_state *out,
			char *msg, size_t msglen);

/*
 * fp_bird_alive_open - creates the tun device @ifname without TUNSETPERSIST and sets
 * it up: it exists while the returned descriptor is open, so it disappears when the
 * process exits in any way (kill -9 included) and BIRD withdraws the routes via it.
 * Needs CAP_NET_ADMIN. Returns the descriptor (close it to withdraw on purpose) or a
 * negative errno (-EEXIST: an interface of that name exists) with @msg.
 */
int fp_bird_alive_open(const char *ifname, char *msg, size_t msglen);

/* Whether @name can be an interface name in the include file (1..15 of A-Z a-z 0-9 . _ -). */
bool fp_bird_ifname_ok(const char *name);

#endif
