/* SPDX-License-Identifier: MIT */
/*
 * A small etcd v3 client over etcd's gRPC JSON gateway (served by etcd 3.4 at /v3/...):
 * HTTP POSTs of JSON with libcurl, keys and values in base64, 64-bit numbers as strings.
 * One client is used by one thread at a time (it keeps one curl handle, so connections
 * are reused); every call blocks for at most the client's timeout per endpoint.
 *
 * Endpoints: "etcd://HOST:PORT[,HOST:PORT...]/PREFIX" (IPv6 as [ADDR]:PORT). A call
 * that cannot reach the current endpoint tries the next ones once, in order, and stays
 * with the first that answers. An answer with an error from etcd is not retried.
 *
 * TLS and authentication come from the environment, as etcdctl takes them
 * (ETCDCTL_CACERT ...), so systemd units carry them in an EnvironmentFile:
 *   FLOWPIN_ETCD_CACERT      CA bundle that signed the members' certificates (https)
 *   FLOWPIN_ETCD_CERT, FLOWPIN_ETCD_KEY   client certificate and key (https)
 *   FLOWPIN_ETCD_USER        user name; the password is read from the file named by
 *   FLOWPIN_ETCD_PASSWORD_FILE  (never from the command line or the environment itself)
 * Any of the first three switches the scheme to https. Userspace only.
 */
#ifndef FLOWPIN_ETCD_H
#define FLOWPIN_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FP_ETCD_MAX_ENDPOINTS 8
#define FP_ETCD_ENDPOINT_MAX  128
#define FP_ETCD_PREFIX_MAX    200

struct fp_etcd_target {
	char url[FP_ETCD_MAX_ENDPOINTS * FP_ETCD_ENDPOINT_MAX + FP_ETCD_PREFIX_MAX + 16];
	char endpoints[FP_ETCD_MAX_ENDPOINTS][FP_ETCD_ENDPOINT_MAX]; /* "host:port" */
	size_t n_endpoints;
	char prefix[FP_ETCD_PREFIX_MAX]; /* "/fleet/a": leading '/', no trailing one */
};

struct fp_etcd_auth {
	char cacert[256], cert[256], key[256]; /* "" = none */
	char user[128];
	char password[256];
};

/* "etcd://..." */
bool fp_etcd_is_url(const char *s);
/* Parses @url into @t; -EINVAL with the reason in @why. */
int fp_etcd_parse_url(const char *url, struct fp_etcd_target *t, char *why, size_t why_len);
/* Reads FLOWPIN_ETCD_* (see above); -errno with the reason in @why (password file). */
int fp_etcd_auth_from_env(struct fp_etcd_auth *a, char *why, size_t why_len);

struct fp_etcd;

/* NULL on out of memory. @auth may be NULL. */
struct fp_etcd *fp_etcd_new(const struct fp_etcd_target *t, const struct fp_etcd_auth *auth);
void fp_etcd_free(struct fp_etcd *e);
/* Bound of one request per endpoint (default 3000 ms; connecting 1000 ms at most). */
void fp_etcd_set_timeout(struct fp_etcd *e, long ms);
/* Why the last call failed ("127.0.0.1:2379: Connection refused", "etcd: ..."). */
const char *fp_etcd_error(const struct fp_etcd *e);
/* The endpoint the client talks to now. */
const char *fp_etcd_endpoint(const struct fp_etcd *e);

struct fp_etcd_kv {
	char *key;
	unsigned char *value; /* NUL-terminated for convenience; @len bytes */
	size_t len;
	int64_t create_revision, mod_revision, lease;
};

void fp_etcd_kvs_free(struct fp_etcd_kv *kvs, size_t n);

/*
 * fp_etcd_get - the keys from @key, with every key starting with @key when @prefix.
 * *@kvs (malloc'd, NULL when none) in key order, *@revision the store's revision of the
 * read. 0, or a negative errno: -EHOSTUNREACH (no endpoint answered), -EPROTO (an
 * answer that is not etcd's), -EACCES (authentication), -EIO (etcd said no).
 */
int fp_etcd_get(struct fp_etcd *e, const char *key, bool prefix, struct fp_etcd_kv **kvs, size_t *n,
		int64_t *revision);

enum fp_etcd_op_type { FP_ETCD_PUT, FP_ETCD_DELETE, FP_ETCD_DELETE_PREFIX };

struct fp_etcd_op {
	enum fp_etcd_op_type type;
	const char *key;
	const void *value; /* PUT */
	size_t len;
	int64_t lease; /* PUT: 0 = none */
};

/* A compare: @key's mod_revision equals @mod_revision (0: the key does not exist). */
struct fp_etcd_compare {
	const char *key;
	int64_t mod_revision;
};

/*
 * fp_etcd_txn - one transaction: if every compare holds, every op. 0 and the new
 * revision in *@revision; -ESTALE when a compare failed (nothing written); the errors
 * of fp_etcd_get().
 */
int fp_etcd_txn(struct fp_etcd *e, const struct fp_etcd_compare *cmp, size_t n_cmp,
		const struct fp_etcd_op *ops, size_t n_ops, int64_t *revision);
/* One unconditional put. */
int fp_etcd_put(struct fp_etcd *e, const char *key, const void *value, size_t len, int64_t lease);

/* A lease of @ttl_s seconds: its id in *@id. */
int fp_etcd_lease_grant(struct fp_etcd *e, int64_t ttl_s, int64_t *id);
/* One keep-alive: 0, or -ENOENT when the lease has expired (grant a new one). */
int fp_etcd_lease_keepalive(struct fp_etcd *e, int64_t id);

/*
 * fp_etcd_watch - waits for a change of @key (every key starting with it when @prefix)
 * at revision @from or later, for at most @timeout_ms. 1 when something changed (read
 * it again: the watch says only that), 0 on timeout, -EINTR when @stop returned true
 * (asked about every few hundred milliseconds), else the errors of fp_etcd_get()
 * (-ESTALE: @from was compacted, read again).
 */
int fp_etcd_watch(struct fp_etcd *e, const char *key, bool prefix, int64_t from, long timeout_ms,
		  bool (*stop)(void *arg), void *arg);

#endif
