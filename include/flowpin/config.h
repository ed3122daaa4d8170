/* SPDX-License-Identifier: MIT */
/*
 * flowpin configuration: what the YAML file says, after validation.
 * Userspace only. The example with every field explained: examples/flowpin.yaml.
 */
#ifndef FLOWPIN_CONFIG_H
#define FLOWPIN_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <flowpin/addr.h>
#include <flowpin/hash.h>
#include <flowpin/pinning.h>
#include <flowpin/quiclb.h>

#define FP_MAX_VIPS		   64
#define FP_MAX_BACKEND_ID	   4095 /* backend ids are 1..4095: an index into BPF arrays */
#define FP_DEFAULT_TABLE_SIZE	   65537
#define FP_NAME_MAX		   64
#define FP_MAX_TABLE_SIZE	   16777213 /* largest prime < 2^24: 64 MiB of buckets per VIP */
#define FP_MAX_TIMEOUT		   31536000 /* seconds (one year) */
#define FP_DEFAULT_TCP_ESTABLISHED 7200
#define FP_DEFAULT_TCP_TRANSITORY  30
#define FP_DEFAULT_UDP_TIMEOUT	   300
#define FP_MAX_LB_SOURCES	   1024 /* = FP_BACKEND_MAX_LB_SOURCES (flowpin/backend.h) */
/* The LB node's session table (`sessions`, docs/config.md): entries of the one table
 * every CPU shares (flowpin/maps.h struct fp_session_bucket, 64 bytes an entry), and session entries created per CPU per second (0: no limit). */
#define FP_DEFAULT_SESSION_ENTRIES 262144
#define FP_MIN_SESSION_ENTRIES	   1024
#define FP_MAX_SESSION_ENTRIES	   (1U << 27) /* 134,217,728: 8 GiB of entries */
#define FP_DEFAULT_NEW_FLOW_RATE   100000
#define FP_MAX_NEW_FLOW_RATE	   1000000000
/* A fleet of sites (`pops`, docs/config.md): names of 1..31 characters, at most
 * FP_MAX_POPS sites of at most FP_MAX_POP_LBS LB addresses each (= the BPF maps' limits,
 * flowpin/maps.h FP_POP_SLOTS and FP_POP_LB_SLOTS). */
#define FP_MAX_POPS	16
#define FP_MAX_POP_LBS	16
#define FP_POP_NAME_MAX 32

/*
 * Caps on the file itself, checked before libyaml builds the document (its scanner is
 * quadratic in nesting, and every value costs memory): far above what a real fleet
 * needs (150,000 backends written as "- {id: N, address: A}" fit), far below what hurts.
 */
#define FP_CONFIG_MAX_BYTES  (16 << 20)
#define FP_CONFIG_MAX_DEPTH  16 /* a flowpin config nests 5 deep */
#define FP_CONFIG_MAX_VALUES (1 << 20)

/*
 * An LB node's bucket array holds VIP slots x 2 generations x table_size buckets of 4
 * bytes: at most this many (4 GiB).
 */
#define FP_MAX_BUCKETS (0xffffffffU / 4)

/* enum fp_pinning, its names and properties: flowpin/pinning.h. */

/* A backend's `state` in the config: X(NAME, value, "config name", meaning). */
#define FP_BACKEND_STATES(X)                                                                      \
	X(ACTIVE, 0, "active", "takes new flows")                                                 \
	X(DRAINING, 1, "draining", "keeps its flows, takes no new ones (weight 0 in new tables)") \
	X(DOWN, 2, "down", "out of every table")

enum fp_backend_state {
#define FP_X(name, value, str, help) FP_BACKEND_##name = value,
	FP_BACKEND_STATES(FP_X)
#undef FP_X
};

#define FP_BACKEND_STATE_COUNT_X(name, value, str, help) +1
#define FP_BACKEND_STATE__COUNT				 (0 FP_BACKEND_STATES(FP_BACKEND_STATE_COUNT_X))

/* The states' names, indexed by value; lib/config.c. */
extern const char *const fp_backend_state_names[FP_BACKEND_STATE__COUNT];

/*
 * Health checks (docs/config.md "health"): X(NAME, value, "config name"). Every kind
 * probes from the LB node itself, never through a VIP or the XDP program.
 *   tcp     connect to the backend's address and port
 *   http    GET path, the expected status (libcurl)
 *   https   the same over TLS (the certificate is not verified: liveness, not identity)
 *   tunnel  a GUE probe through the encapsulation port, reflected by the backend agent
 */
#define FP_CHECK_KINDS(X)    \
	X(TCP, 0, "tcp")     \
	X(HTTP, 1, "http")   \
	X(HTTPS, 2, "https") \
	X(TUNNEL, 3, "tunnel")

enum fp_check_kind {
#define FP_X(name, value, str) FP_CHECK_##name = value,
	FP_CHECK_KINDS(FP_X)
#undef FP_X
};

#define FP_CHECK_KIND_COUNT_X(name, value, str) +1
#define FP_CHECK_KIND__COUNT			(0 FP_CHECK_KINDS(FP_CHECK_KIND_COUNT_X))

extern const char *const fp_check_kind_names[FP_CHECK_KIND__COUNT];
const char *fp_check_kind_name(enum fp_check_kind k);

/*
 * A duration as the config and the CLI write it: digits, then "ms", "s" (or nothing:
 * seconds), "m" or "h" ("500ms", "2", "2s", "10m", "1h"). *@ms in milliseconds; the
 * caller checks the range. Returns 0 or -EINVAL.
 */
int fp_duration_parse(const char *s, __u64 *ms);

#define FP_MAX_CHECKS		   8	/* per VIP; all must pass */
#define FP_CHECK_PATH_MAX	   256	/* http(s) path, with its '/' */
#define FP_CHECK_HOST_MAX	   254	/* http(s) Host header: a DNS name (253) */
#define FP_DEFAULT_HEALTH_INTERVAL 2000 /* ms; GLB's defaults: 2 s, 1 s, 3, 3 */
#define FP_DEFAULT_HEALTH_TIMEOUT  1000 /* ms */
#define FP_DEFAULT_HEALTH_RISE	   3
#define FP_DEFAULT_HEALTH_FALL	   3
#define FP_MIN_HEALTH_INTERVAL	   100	   /* ms */
#define FP_MAX_HEALTH_INTERVAL	   3600000 /* ms (one hour) */
#define FP_MIN_HEALTH_TIMEOUT	   10	   /* ms */
#define FP_MAX_HEALTH_COUNT	   100	   /* rise and fall */

struct fp_check_cfg {
	enum fp_check_kind kind;
	__u16 port; /* host order; tcp/http/https: resolved (the VIP's port by default); tunnel: 0 */
	__u16 status;		      /* http(s): the expected status (default 200) */
	char path[FP_CHECK_PATH_MAX]; /* http(s): default "/" */
	char host[FP_CHECK_HOST_MAX]; /* http(s): Host header and TLS name; "" = the address */
	int line;
};

/* A VIP's health checks after inheritance from the fleet-wide `health`; no checks = none. */
struct fp_health_cfg {
	__u32 interval_ms, timeout_ms; /* timeout <= interval */
	__u32 rise, fall;	       /* successes to go up, failures to go down (1..100) */
	struct fp_check_cfg checks[FP_MAX_CHECKS];
	size_t n_checks;
	int line; /* the VIP's `health` (or the fleet's, or the VIP's line) */
};

/*
 * BGP announcements (docs/config.md "bgp", docs/operator-lb.md "BGP stability shaping"):
 * where the node's BIRD include file and control socket are, the announcement state
 * machine's rise/fall and damping (flowpin/announce.h, whose defaults these are), the
 * maintenance defaults, and which VIPs are announced. Read by LB nodes only.
 */
#define FP_BGP_PATH_MAX		      256
#define FP_BGP_SOCKET_MAX	      108 /* sun_path */
#define FP_BGP_DEFAULT_INCLUDE	      "/etc/bird/flowpin.conf"
#define FP_BGP_DEFAULT_SOCKET	      "/run/bird/bird.ctl"
#define FP_BGP_DEFAULT_TIMEOUT	      2000   /* ms */
#define FP_BGP_DEFAULT_INTERVAL	      1000   /* ms */
#define FP_BGP_DEFAULT_MAINT_DEADLINE 600000 /* ms (10 min) */

struct fp_bgp_cfg {
	bool enabled; /* the file has a `bgp` section */
	char include[FP_BGP_PATH_MAX];
	char socket[FP_BGP_SOCKET_MAX];
	char alive_interface[16]; /* "" = none: blackhole routes */
	__u32 timeout_ms;	  /* each exchange with BIRD */
	__u32 interval_ms;	  /* the state machine's sample interval */
	__u32 rise, fall;	  /* samples */
	bool damping;
	__u32 penalty, suppress, reuse;
	__u32 half_life_ms, max_suppress_ms;
	__u32 maintenance_deadline_ms; /* `lb maintenance on` without --deadline */
	__u64 maintenance_until_flows; /* ... without --until-flows; 0: deadline only */
	__u64 vips;		       /* bit i: vips[i] is announced (FP_MAX_VIPS <= 64) */
	int line;
};

struct fp_backend_cfg {
	__u32 id; /* stable id, 1..FP_MAX_BACKEND_ID, unique within a VIP */
	struct fp_addr addr;
	__u32 weight; /* 1..65535, default 100 */
	enum fp_backend_state state;
	__u8 server_id[FP_QUICLB_MAX_SID]; /* quic_lb VIPs only: server_id_len octets, rest 0 */
	int pop;			   /* index into fp_config.pops (when n_pops > 0) */
	int line;			   /* where it was defined, for messages */
};

struct fp_vip_cfg {
	char name[FP_NAME_MAX];
	struct fp_addr addr;
	__u16 port; /* host order; 0 = all ports */
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	enum fp_pinning pinning;
	bool hash_addresses_only; /* port-0 VIPs: hash (src, dst, proto), so fragments follow */
	struct fp_backend_cfg *backends;
	size_t n_backends;
	/* After fp_config_select_pop(): the backends of other sites, kept after the local
	 * ones, at backends[n_backends .. n_backends + n_remote). Tables, health checks and
	 * everything that walks backends[0 .. n_backends) see only this site's. */
	size_t n_remote;
	struct fp_health_cfg health; /* the VIP's checks, the fleet-wide ones inherited */
	__u8 ticket_bits;	     /* TCP tickets (flowpin/ticket.h): K; 0 = no tickets */
	int tickets_line;	     /* the VIP's `tickets` (0 without) */
	bool has_quic_lb;	     /* UDP VIPs only; docs/quic-lb.md */
	struct fp_quiclb_cfg quic_lb;
	int quic_lb_line;
	int line;
};

struct fp_timeouts {
	__u32 tcp_established; /* seconds idle before a TCP session entry expires (default 7200) */
	__u32 tcp_transitory;  /* after FIN/RST, and half-open entries (default 30) */
	__u32 udp;	       /* UDP flows (default 300) */
};

struct fp_sessions_cfg {
	__u32 entries;	     /* FP_MIN_SESSION_ENTRIES..FP_MAX_SESSION_ENTRIES */
	__u32 new_flow_rate; /* per CPU per second; 0: no limit */
};

/* One site of the fleet: its name and every LB node address of it (docs/config.md). */
struct fp_pop_cfg {
	char name[FP_POP_NAME_MAX];
	struct fp_addr lbs[FP_MAX_POP_LBS];
	int lb_lines[FP_MAX_POP_LBS]; /* where each is, for messages */
	size_t n_lbs;
	int line;
};

struct fp_config {
	char *path;
	bool have_hash_key;	     /* always for FP_CONFIG_FOR_LB; backends: with tickets */
	struct fp_hash_key hash_key; /* fleet-wide secret, 32 hex digits in the file */
	__u32 table_size;	     /* prime, >= 100 x backends of the largest VIP */
	__u32 share_tolerance;	     /* percent, 0..50: bucket table shares vs weights */
	__u16 encap_port;	     /* host order */
	struct fp_timeouts timeouts;
	struct fp_sessions_cfg sessions; /* LB nodes: fixed at load, `lb up` may override */
	struct fp_prefix *lb_sources;	 /* backend side: encapsulated packets only from these */
	size_t n_lb_sources;
	struct fp_vip_cfg *vips;
	size_t n_vips;
	struct fp_health_cfg health; /* the fleet-wide default (top-level `health`) */
	struct fp_bgp_cfg bgp;
	struct fp_pop_cfg pops[FP_MAX_POPS]; /* `pops`; none: one site, as without */
	size_t n_pops;
	/* fp_config_select_pop(): pops[local_pop] is this node's site (pop_selected). */
	bool pop_selected;
	size_t local_pop;
	/*
	 * Where each top-level setting is (the top-level mapping's line when it is left at
	 * its default), for the messages of whoever applies the config ("needs a restart").
	 */
	struct {
		int hash_key, table_size, encap_port, timeouts, lb_sources, vips, health, bgp, pops;
		int sessions_entries, sessions_new_flow_rate;
	} lines;
};

/*
 * Who reads the file decides a few rules; the rest apply to everyone.
 *   LB       hash_key required (and not a published one, unless allow_example_key);
 *            table_size x VIP slots must fit the bucket array.
 *   BACKEND  hash_key optional unless a VIP has tickets (the ticket is keyed under
 *            it; then not a published one either); lb_sources required, at most
 *            FP_MAX_LB_SOURCES.
 *   FLEET    both: the file every node of a fleet loads (what `flowpin check` checks).
 */
enum fp_config_for {
	FP_CONFIG_FOR_LB = 1,
	FP_CONFIG_FOR_BACKEND = 2,
	FP_CONFIG_FOR_FLEET = 3,
};

/*
 * fp_config_load - parse and validate a config file.
 * Every problem is printed to @err as "FILE:LINE: FIELD: message", all of them, not only
 * the first. Returns 0 and sets *@out, or a negative errno (-EINVAL for a bad file,
 * -ENOENT/-EACCES ... when it cannot be read) and leaves *@out NULL.
 */
int fp_config_load(const char *path, struct fp_config **out, FILE *err); /* FOR_LB */
int fp_config_load_for(const char *path, enum fp_config_for use, struct fp_config **out, FILE *err);
/*
 * fp_config_load_buffer - the same for a config held in memory (an etcd value): @name
 * stands for the file in every message ("etcd://HOST:PORT/PREFIX/config:LINE: ...") and
 * becomes cfg->path. No file mode to warn about: who may read the value is the store's
 * access control.
 */
int fp_config_load_buffer(const char *name, const void *text, size_t len, enum fp_config_for use,
			  struct fp_config **out, FILE *err);
void fp_config_free(struct fp_config *cfg);

/*
 * fp_config_select_pop - makes @cfg the view of an LB node of site @name: every VIP's
 * backends of other sites move behind its own (vip->n_remote), so its tables, health
 * checks and everything else that walks backends[0 .. n_backends) use only this site's.
 * @name NULL: allowed only for a config without `pops`. Errors as "FILE:LINE: FIELD:
 * message" on @err: --pop missing though the file has pops, given though it has none,
 * naming no site. Returns 0 or -EINVAL (then @cfg is unchanged).
 */
int fp_config_select_pop(struct fp_config *cfg, const char *name, FILE *err);
/* The site of index @pop of @cfg, or NULL. */
const struct fp_pop_cfg *fp_config_pop(const struct fp_config *cfg, int pop);

/*
 * VIP slots an LB node reserves for @n_vips VIPs: twice as many (so reloads can add VIPs
 * without a restart), at least 8, at most FP_MAX_VIPS.
 */
__u32 fp_config_vip_slots(size_t n_vips);
/* Largest table_size that fits FP_MAX_BUCKETS with @slots VIP slots. */
__u32 fp_config_max_table_size(__u32 slots);

const char *fp_pinning_name(enum fp_pinning p);
const char *fp_backend_state_name(enum fp_backend_state s);

#endif
