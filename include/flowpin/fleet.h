/* SPDX-License-Identifier: MIT */
/*
 * A node of a fleet configured from etcd (docs/etcd.md). Keys under PREFIX:
 *
 *   PREFIX/config               the fleet's config (the YAML of a config file)
 *   PREFIX/config.canary        a staged config, for the nodes listed in
 *   PREFIX/config.canary.nodes  node names, one per line
 *   PREFIX/status/NODE          each node's status (JSON), under a lease of the node
 *
 * fp_fleet_pick() says which config a node runs: the canary when the node is listed and
 * the canary exists, else PREFIX/config. `flowpin fleet push` writes them in one
 * transaction (flowpin/fleet.h's fp_fleet_push()).
 *
 * The member runs one thread that does the talking (every etcd call blocks; the
 * daemon's loop never waits on etcd): read PREFIX/config*, hand a config the node does
 * not run yet to the loop (an eventfd on its event_base; the loop applies it and reports
 * back with fp_fleet_member_report()), refresh the status under the lease, then watch
 * PREFIX/config* from the revision it read for at most a few seconds, and again. When
 * etcd cannot be reached: the node keeps what it runs, the member says so (state, log
 * lines on the transitions), retries with exponential backoff (0.5 s doubling to 10 s),
 * and, reaching etcd again, reads the keys afresh: what changed meanwhile is applied.
 * Userspace only.
 */
#ifndef FLOWPIN_FLEET_H
#define FLOWPIN_FLEET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <flowpin/etcd.h>

#define FP_FLEET_NODE_MAX 64

struct event_base;
struct fp_fleet_member;

/* Node names: 1..63 of A-Z a-z 0-9 . _ - (they are etcd keys and list entries). */
bool fp_fleet_node_name_ok(const char *name);

/*
 * fp_fleet_pick - of @kvs (a read of PREFIX/config*), the config @node runs: its index
 * in @kvs and whether it is the canary; -1 when there is no PREFIX/config (nor a canary
 * for @node).
 */
int fp_fleet_pick(const struct fp_etcd_kv *kvs, size_t n, const char *prefix, const char *node,
		  bool *canary);

/*
 * fp_fleet_canaries - the nodes `fleet push --canary N` stages a config for: of @status
 * (a read of PREFIX/status/), the first @count LB nodes ("role": "lb") by name, as
 * "a\nb\n" (malloc'd). Backend agents are named explicitly (--canary-nodes): a canary
 * is an LB change first. NULL with @why when fewer LB nodes report a status.
 */
char *fp_fleet_canaries(const struct fp_etcd_kv *status, size_t n, long count, char *why,
			size_t why_len);

/* What the member hands the loop: valid during the callback only. */
struct fp_fleet_desired {
	const char *name; /* "etcd://.../PREFIX/config[.canary]": for messages */
	const unsigned char *value;
	size_t len;
	int64_t revision; /* the key's mod_revision */
	bool canary;
};

/* What the node reports in PREFIX/status/NODE (fp_fleet_member_report()). */
struct fp_fleet_report {
	int64_t applied_revision; /* 0: none applied from etcd yet */
	bool applied_canary;
	struct timespec applied_at; /* CLOCK_REALTIME */
	__uint32_t generation;	    /* LB nodes: the table generation; backends: configs applied */
	int64_t refused_revision;   /* the last value refused, 0: none since the apply */
	char error[768];	    /* why, "FILE:LINE: FIELD: message" lines */
	char health[160];	    /* "3 up, 1 down" ... */
};

/* The link to etcd, for `lb status` and the metrics. */
struct fp_fleet_state {
	bool reachable;
	struct timespec since; /* CLOCK_REALTIME of the last change of reachable */
	int64_t seen_revision; /* etcd's revision at the last read */
	uint64_t failures_total;
	uint64_t reads_total;
	long backoff_ms;
	char endpoint[FP_ETCD_ENDPOINT_MAX];
	char error[384];
};

/*
 * fp_fleet_member_new - @node of the fleet at @t (with @auth), role "lb" or "backend":
 * @desired runs in @base's thread for every config the node should run and does not
 * (starting after @applied_revision). NULL and errno on failure.
 */
struct fp_fleet_member *
fp_fleet_member_new(struct event_base *base, const struct fp_etcd_target *t,
		    const struct fp_etcd_auth *auth, const char *node, const char *role,
		    int64_t applied_revision,
		    void (*desired)(void *arg, const struct fp_fleet_desired *), void *arg);
/* Starts the thread: 0 or a negative errno. */
int fp_fleet_member_start(struct fp_fleet_member *m);
/* The loop's report after an apply or a refusal: written to etcd at once. */
void fp_fleet_member_report(struct fp_fleet_member *m, const struct fp_fleet_report *r);
void fp_fleet_member_state(struct fp_fleet_member *m, struct fp_fleet_state *out);
/* The report written last (any thread). */
void fp_fleet_member_last_report(struct fp_fleet_member *m, struct fp_fleet_report *out);
/* Stops the thread (its status key expires with the lease) and frees. NULL is fine. */
void fp_fleet_member_free(struct fp_fleet_member *m);

/*
 * The value a node applied last, kept in a run directory: @dir/@name.etcd.yaml (mode
 * 0600) and its revision and key in @dir/@name.etcd.revision ("REV config[.canary]").
 * What SIGHUP re-reads, and what a restart starts from while etcd cannot be reached.
 */
struct fp_fleet_cache {
	char yaml[4096];
	char revision[4096];
};

/* -ENAMETOOLONG when the paths do not fit. */
int fp_fleet_cache_init(struct fp_fleet_cache *c, const char *dir, const char *name);
/* Writes both files (each replaced atomically); a failure is warned about and returned. */
int fp_fleet_cache_write(const struct fp_fleet_cache *c, const void *value, size_t len,
			 int64_t revision, bool canary);

/*
 * What a node does with a config it is given (at start and from the member): how to
 * load it (enum fp_config_for), its own view of a loaded config (@view: NULL = as
 * loaded; on failure *cfg freed and NULL, messages on @err) and how to apply it
 * (@apply: 0 and @cfg taken, or a negative errno with @cfg left to the caller and the
 * reasons said with fp_err(), which fp_fleet_take() captures for the status).
 */
struct fp_config;
struct fp_fleet_node {
	int use;
	int (*view)(void *arg, struct fp_config **cfg, FILE *err);
	int (*apply)(void *arg, struct fp_config *cfg);
	/* A value refused before @apply (YAML, a field, the view): NULL = nothing to do. */
	void (*refused)(void *arg, int err);
	void *arg;
	const struct fp_fleet_cache *cache; /* written after every apply */
};

/* Writes @path (mode 0600) through a temporary file and rename: whole or not at all. */
int fp_fleet_write_private(const char *path, const void *data, size_t len);

/*
 * The member's link to etcd and the node's report as one JSON object (url, node,
 * reachable, since, endpoint, seen_revision, failures_total, backoff_ms, last_error,
 * applied_revision, applied_key, applied_at, refused_revision, refused_error): the
 * "etcd" of `lb status --json` and `backend status --json`; fp_fleet_print_status()
 * writes it for an operator.
 */
struct json_object;
struct json_object *fp_fleet_status_json(struct fp_fleet_member *m, const char *url,
					 const char *node, const struct fp_fleet_report *r);
void fp_fleet_print_status(struct json_object *e, FILE *out);

/*
 * fp_fleet_start_config - `up --config etcd://...`: the config @node starts with (read,
 * checked and viewed as @n says, not applied), from etcd, else (etcd cannot be reached)
 * from @n->cache, saying so; the cache written when it came from etcd. @report gets the
 * applied revision, key and time. 0 or a negative errno (said): -ENOENT when etcd has
 * no PREFIX/config, any error when etcd is unreachable and there is no usable cache.
 */
int fp_fleet_start_config(const struct fp_etcd_target *t, const struct fp_etcd_auth *auth,
			  const char *node, const struct fp_fleet_node *n, struct fp_config **out,
			  struct fp_fleet_report *report);

/*
 * fp_fleet_take - a value handed over by the member (@want, in the loop's thread):
 * loaded, viewed and applied as @n says; on success the cache is written and @report
 * says applied (revision, key, time, no error), else refused (revision and every
 * message of the loader and of @apply, which are also logged). Returns what @apply or
 * the loader returned; the caller sends @report with fp_fleet_member_report().
 */
int fp_fleet_take(const struct fp_fleet_desired *want, const struct fp_fleet_node *n,
		  struct fp_fleet_report *report);

/*
 * fp_fleet_fetch - one read of what @node should run (startup): the value (malloc'd)
 * in *@value, its key's mod_revision, whether it is the canary. -ENOENT: no
 * PREFIX/config; else the errors of fp_etcd_get() (said in fp_etcd_error()).
 */
int fp_fleet_fetch(struct fp_etcd *e, const char *prefix, const char *node, unsigned char **value,
		   size_t *len, int64_t *revision, bool *canary);

/*
 * fp_fleet_load_config - fp_config_load_for() of @source, a file or an etcd://... URL
 * (the config @node runs; NULL: PREFIX/config; credentials from FLOWPIN_ETCD_*), its
 * messages naming the key. *@revision (may be NULL): the key's mod_revision (0 for a
 * file).
 */
int fp_fleet_load_config(const char *source, int use, const char *node, struct fp_config **out,
			 int64_t *revision, FILE *err);

/*
 * fp_fleet_push - writes @text (a config already validated) as PREFIX/config in one
 * transaction that holds only if PREFIX/config is still at @base (its mod_revision; 0:
 * absent): -ESTALE otherwise, nothing written. With @canary_nodes (a list of names, one
 * per line; NULL: none) the text goes to PREFIX/config.canary for those nodes instead,
 * PREFIX/config untouched (still compared); without, any canary is removed (the push
 * is everywhere). *@revision: the store's revision after the write.
 */
int fp_fleet_push(struct fp_etcd *e, const char *prefix, const char *text, size_t len, int64_t base,
		  const char *canary_nodes, int64_t *revision);

#endif
