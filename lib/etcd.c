// SPDX-License-Identifier: MIT
/*
 * etcd v3 over its gRPC JSON gateway (flowpin/etcd.h).
 *
 * Design. Every call is one HTTP POST of a JSON request to /v3/<service>/<method> on one
 * curl easy handle (connections reused), parsed with json-c. The gateway speaks protobuf
 * JSON: bytes fields (keys, values) in base64, int64 fields as decimal strings, fields
 * at their zero value left out. A transport failure moves to the next endpoint; an
 * answer is final. A watch is the gateway's server stream (one JSON object per line):
 * the first line confirms the watch, any later line with events ends the call, which
 * only says "changed": callers read the keys again, so a watch that is cut, compacted
 * or restarted from another endpoint never loses a change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <flowpin/etcd.h>

/* The largest answer we take: a config of FP_CONFIG_MAX_BYTES in base64 and then some. */
#define MAX_ANSWER (32u << 20)

struct fp_etcd {
	struct fp_etcd_target t;
	struct fp_etcd_auth auth;
	bool https;
	size_t current; /* endpoint index */
	long timeout_ms;
	CURL *curl;
	char token[512]; /* the auth token, "" before authenticating */
	char error[384];
};

struct buf {
	char *p;
	size_t len, cap;
	bool too_big;
};

bool fp_etcd_is_url(const char *s)
{
	return s && !strncmp(s, "etcd://", 7);
}

int fp_etcd_parse_url(const char *url, struct fp_etcd_target *t, char *why, size_t why_len)
{
	const char *p, *slash;

	memset(t, 0, sizeof(*t));
	if (!fp_etcd_is_url(url)) {
		snprintf(why, why_len, "not an etcd://HOST:PORT[,HOST:PORT...]/PREFIX URL");
		return -EINVAL;
	}
	if (strlen(url) >= sizeof(t->url)) {
		snprintf(why, why_len, "too long");
		return -EINVAL;
	}
	snprintf(t->url, sizeof(t->url), "%s", url);
	p = url + 7;
	slash = strchr(p, '/');
	if (!slash || slash == p) {
		snprintf(why, why_len, "expected etcd://HOST:PORT[,HOST:PORT...]/PREFIX");
		return -EINVAL;
	}
	while (p < slash) {
		const char *end = memchr(p, ',', (size_t)(slash - p)), *colon;
		size_t len;

		if (!end)
			end = slash;
		len = (size_t)(end - p);
		colon = NULL;
		for (const char *c = p; c < end; c++)
			if (*c == ':')
				colon = c;
		if (!len || !colon || colon == end - 1 || colon == p) {
			snprintf(why, why_len, "endpoint '%.*s': expected HOST:PORT", (int)len, p);
			return -EINVAL;
		}
		for (const char *c = colon + 1; c < end; c++)
			if (*c < '0' || *c > '9') {
				snprintf(why, why_len, "endpoint '%.*s': the port is not a number",
					 (int)len, p);
				return -EINVAL;
			}
		for (const char *c = p; c < colon; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9') || strchr(".-:[]", *c))) {
				snprintf(why, why_len,
					 "endpoint '%.*s': not a host name or address", (int)len,
					 p);
				return -EINVAL;
			}
		if (t->n_endpoints == FP_ETCD_MAX_ENDPOINTS || len >= FP_ETCD_ENDPOINT_MAX) {
			snprintf(why, why_len, "at most %d endpoints of %d characters",
				 FP_ETCD_MAX_ENDPOINTS, FP_ETCD_ENDPOINT_MAX - 1);
			return -EINVAL;
		}
		memcpy(t->endpoints[t->n_endpoints++], p, len);
		p = end + (end < slash);
		if (end < slash && p == slash) {
			snprintf(why, why_len, "an empty endpoint after ','");
			return -EINVAL;
		}
	}
	/* The prefix: printable, no spaces, no empty path segment; trailing '/' dropped. */
	{
		size_t len = strlen(slash);

		while (len > 1 && slash[len - 1] == '/')
			len--;
		if (len <= 1) {
			snprintf(why, why_len, "no PREFIX after the endpoints (etcd://.../PREFIX)");
			return -EINVAL;
		}
		if (len >= sizeof(t->prefix)) {
			snprintf(why, why_len, "PREFIX longer than %zu characters",
				 sizeof(t->prefix) - 1);
			return -EINVAL;
		}
		for (size_t i = 0; i < len; i++)
			if (slash[i] <= ' ' || slash[i] > '~' ||
			    (slash[i] == '/' && i + 1 < len && slash[i + 1] == '/')) {
				snprintf(why, why_len,
					 "PREFIX: printable characters without spaces or '//'");
				return -EINVAL;
			}
		memcpy(t->prefix, slash, len);
	}
	return 0;
}

static int env_copy(const char *name, char *dst, size_t size, char *why, size_t why_len)
{
	const char *v = getenv(name);

	dst[0] = 0;
	if (!v || !*v)
		return 0;
	if (strlen(v) >= size) {
		snprintf(why, why_len, "%s: longer than %zu characters", name, size - 1);
		return -EINVAL;
	}
	snprintf(dst, size, "%s", v);
	return 0;
}

int fp_etcd_auth_from_env(struct fp_etcd_auth *a, char *why, size_t why_len)
{
	char file[256];
	FILE *f;
	int err;

	memset(a, 0, sizeof(*a));
	err = env_copy("FLOWPIN_ETCD_CACERT", a->cacert, sizeof(a->cacert), why, why_len);
	if (!err)
		err = env_copy("FLOWPIN_ETCD_CERT", a->cert, sizeof(a->cert), why, why_len);
	if (!err)
		err = env_copy("FLOWPIN_ETCD_KEY", a->key, sizeof(a->key), why, why_len);
	if (!err)
		err = env_copy("FLOWPIN_ETCD_USER", a->user, sizeof(a->user), why, why_len);
	if (!err)
		err = env_copy("FLOWPIN_ETCD_PASSWORD_FILE", file, sizeof(file), why, why_len);
	if (err)
		return err;
	if (!!a->cert[0] != !!a->key[0]) {
		snprintf(why, why_len, "FLOWPIN_ETCD_CERT and FLOWPIN_ETCD_KEY go together");
		return -EINVAL;
	}
	if (!!a->user[0] != !!file[0]) {
		snprintf(why, why_len,
			 "FLOWPIN_ETCD_USER and FLOWPIN_ETCD_PASSWORD_FILE go together");
		return -EINVAL;
	}
	if (!file[0])
		return 0;
	f = fopen(file, "r");
	if (!f) {
		err = -errno;
		snprintf(why, why_len, "FLOWPIN_ETCD_PASSWORD_FILE %s: %s", file, strerror(errno));
		return err;
	}
	if (!fgets(a->password, sizeof(a->password), f))
		a->password[0] = 0;
	fclose(f);
	a->password[strcspn(a->password, "\r\n")] = 0;
	if (!a->password[0]) {
		snprintf(why, why_len, "FLOWPIN_ETCD_PASSWORD_FILE %s: empty", file);
		return -EINVAL;
	}
	return 0;
}

struct fp_etcd *fp_etcd_new(const struct fp_etcd_target *t, const struct fp_etcd_auth *auth)
{
	struct fp_etcd *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->t = *t;
	if (auth)
		e->auth = *auth;
	e->https = e->auth.cacert[0] || e->auth.cert[0];
	e->timeout_ms = 3000;
	e->curl = curl_easy_init();
	if (!e->curl) {
		free(e);
		return NULL;
	}
	return e;
}

void fp_etcd_free(struct fp_etcd *e)
{
	if (!e)
		return;
	curl_easy_cleanup(e->curl);
	explicit_bzero(e->auth.password, sizeof(e->auth.password));
	explicit_bzero(e->token, sizeof(e->token));
	free(e);
}

void fp_etcd_set_timeout(struct fp_etcd *e, long ms)
{
	e->timeout_ms = ms > 0 ? ms : 3000;
}

const char *fp_etcd_error(const struct fp_etcd *e)
{
	return e->error;
}

const char *fp_etcd_endpoint(const struct fp_etcd *e)
{
	return e->t.endpoints[e->current];
}

void fp_etcd_kvs_free(struct fp_etcd_kv *kvs, size_t n)
{
	for (size_t i = 0; kvs && i < n; i++) {
		free(kvs[i].key);
		free(kvs[i].value);
	}
	free(kvs);
}

/* ---- base64 and numbers ---- */

static char *b64(const void *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* Decodes @s into a malloc'd NUL-terminated buffer; -EPROTO when not base64. */
static int unb64(const char *s, unsigned char **out, size_t *len)
{
	size_t n = strlen(s), pad = 0;
	unsigned char *p;
	int got;

	if (n % 4)
		return -EPROTO;
	p = malloc(n / 4 * 3 + 1);
	if (!p)
		return -ENOMEM;
	got = n ? EVP_DecodeBlock(p, (const unsigned char *)s, (int)n) : 0;
	if (got < 0) {
		free(p);
		return -EPROTO;
	}
	if (n && s[n - 1] == '=')
		pad++;
	if (n > 1 && s[n - 2] == '=')
		pad++;
	*len = (size_t)got - pad;
	p[*len] = 0;
	*out = p;
	return 0;
}

/* An int64 field: a string of digits (or a number); 0 when absent, as protobuf says. */
static int64_t get_i64(json_object *o, const char *field)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, field, &v))
		return 0;
	if (json_object_is_type(v, json_type_string))
		return strtoll(json_object_get_string(v), NULL, 10);
	return json_object_get_int64(v);
}

/* The key right after every key starting with @key (etcd's range_end for a prefix). */
static char *prefix_end(const char *key, size_t *len)
{
	size_t n = strlen(key);
	char *end = malloc(n + 1);

	if (!end)
		return NULL;
	memcpy(end, key, n + 1);
	while (n && (unsigned char)end[n - 1] == 0xff)
		n--;
	if (!n) { /* every key: "\0" */
		end[0] = 0;
		*len = 1;
		return end;
	}
	end[n - 1]++;
	*len = n;
	return end;
}

static int add_key(json_object *o, const char *field, const void *data, size_t len)
{
	char *s = b64(data, len);

	if (!s)
		return -ENOMEM;
	json_object_object_add(o, field, json_object_new_string(s));
	free(s);
	return 0;
}

static int add_range(json_object *o, const char *key, bool prefix)
{
	int err = add_key(o, "key", key, strlen(key));

	if (!err && prefix) {
		size_t len;
		char *end = prefix_end(key, &len);

		err = end ? add_key(o, "range_end", end, len) : -ENOMEM;
		free(end);
	}
	return err;
}

static void add_i64(json_object *o, const char *field, int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", (long long)v);
	json_object_object_add(o, field, json_object_new_string(s));
}

/* ---- HTTP ---- */

struct stream {
	struct fp_etcd *e;
	struct buf b;
	bool watch;	  /* line by line */
	int watch_result; /* 1 changed, -ESTALE compacted, -EIO canceled */
	bool watch_created;
	bool (*stop)(void *arg);
	void *stop_arg;
	bool stopped;
};

static int watch_line(struct stream *s, const char *line)
{
	json_object *o = json_tokener_parse(line), *r, *ev;
	int result = 0;

	if (!o)
		return -EPROTO;
	if (!json_object_object_get_ex(o, "result", &r)) {
		json_object_put(o);
		return -EIO;
	}
	if (get_i64(r, "compact_revision"))
		result = -ESTALE;
	else if (json_object_object_get_ex(r, "events", &ev) && json_object_array_length(ev) > 0)
		result = 1;
	else if (json_object_object_get_ex(r, "canceled", &ev) && json_object_get_boolean(ev))
		result = -EIO;
	else if (json_object_object_get_ex(r, "created", &ev) && json_object_get_boolean(ev))
		s->watch_created = true;
	json_object_put(o);
	return result;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct stream *s = arg;
	size_t n = size * nmemb;

	if (s->b.len + n + 1 > MAX_ANSWER) {
		s->b.too_big = true;
		return 0;
	}
	if (s->b.len + n + 1 > s->b.cap) {
		size_t cap = (s->b.len + n + 1) * 2;
		char *p = realloc(s->b.p, cap);

		if (!p)
			return 0;
		s->b.p = p;
		s->b.cap = cap;
	}
	memcpy(s->b.p + s->b.len, data, n);
	s->b.len += n;
	s->b.p[s->b.len] = 0;
	if (!s->watch)
		return n;
	/* Whole lines: one JSON object each. */
	for (;;) {
		char *nl = memchr(s->b.p, '\n', s->b.len);
		int r;

		if (!nl)
			break;
		*nl = 0;
		r = nl > s->b.p ? watch_line(s, s->b.p) : 0;
		s->b.len -= (size_t)(nl + 1 - s->b.p);
		memmove(s->b.p, nl + 1, s->b.len + 1);
		if (r) {
			s->watch_result = r;
			return 0; /* ends the transfer */
		}
	}
	return n;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct stream *s = arg;

	(void)a, (void)b, (void)c, (void)d;
	if (s->stop && s->stop(s->stop_arg)) {
		s->stopped = true;
		return 1;
	}
	return 0;
}

/* The answer's error (gateway: {"error":..., "code":N, "message":...}), or NULL. */
static const char *answer_error(json_object *o, int *code)
{
	json_object *v;

	*code = (int)get_i64(o, "code");
	if (json_object_object_get_ex(o, "error", &v) ||
	    json_object_object_get_ex(o, "message", &v))
		return json_object_get_string(v);
	return NULL;
}

static int authenticate(struct fp_etcd *e);

/* etcd 3.4 says some authentication failures with code 3 (invalid argument). */
static bool is_auth_error(const char *msg)
{
	return msg && (strstr(msg, "authentication failed") || strstr(msg, "user name is empty") ||
		       strstr(msg, "invalid auth token") || strstr(msg, "permission denied"));
}

/*
 * POSTs @req to @path on the current endpoint, then the others once each when it cannot
 * be reached. 0 and the parsed answer in *@answer (not for watches), or -errno with
 * e->error set. @timeout_ms 0: the client's.
 */
static int post(struct fp_etcd *e, const char *path, json_object *req, json_object **answer,
		struct stream *s, long timeout_ms)
{
	const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	struct stream local = { .e = e };
	struct curl_slist *headers = NULL;
	int err = -EHOSTUNREACH;
	bool authed_again = false;

	if (!s)
		s = &local;
	if (answer)
		*answer = NULL;
	for (size_t tries = 0; tries < e->t.n_endpoints; tries++) {
		char url[FP_ETCD_ENDPOINT_MAX + 64], auth[600];
		long status = 0;
		CURLcode rc;

		snprintf(url, sizeof(url), "%s://%s%s", e->https ? "https" : "http",
			 e->t.endpoints[e->current], path);
		curl_easy_reset(e->curl);
		curl_slist_free_all(headers);
		headers = curl_slist_append(NULL, "Content-Type: application/json");
		if (e->token[0]) {
			snprintf(auth, sizeof(auth), "Authorization: %s", e->token);
			headers = curl_slist_append(headers, auth);
		}
		free(s->b.p);
		memset(&s->b, 0, sizeof(s->b));
		s->watch_result = 0;
		s->watch_created = false;
		curl_easy_setopt(e->curl, CURLOPT_URL, url);
		curl_easy_setopt(e->curl, CURLOPT_PROXY, ""); /* never the environment's */
		curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS,
				 e->timeout_ms < 1000 ? e->timeout_ms : 1000L);
		curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS,
				 timeout_ms ? timeout_ms : e->timeout_ms);
		curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, s);
		curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPIDLE, 2L);
		curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPINTVL, 1L);
		if (s->stop) {
			curl_easy_setopt(e->curl, CURLOPT_NOPROGRESS, 0L);
			curl_easy_setopt(e->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
			curl_easy_setopt(e->curl, CURLOPT_XFERINFODATA, s);
		}
		if (e->https) {
			if (e->auth.cacert[0])
				curl_easy_setopt(e->curl, CURLOPT_CAINFO, e->auth.cacert);
			if (e->auth.cert[0]) {
				curl_easy_setopt(e->curl, CURLOPT_SSLCERT, e->auth.cert);
				curl_easy_setopt(e->curl, CURLOPT_SSLKEY, e->auth.key);
			}
		}
		rc = curl_easy_perform(e->curl);
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
		if (s->watch) {
			if (s->stopped) {
				err = -EINTR;
				goto out;
			}
			if (s->watch_result) {
				err = s->watch_result;
				goto out;
			}
			if (rc == CURLE_OPERATION_TIMEDOUT && s->watch_created) {
				err = 0; /* nothing changed */
				goto out;
			}
		}
		if (rc == CURLE_WRITE_ERROR && s->b.too_big) {
			snprintf(e->error, sizeof(e->error), "%s: answer larger than %u bytes",
				 e->t.endpoints[e->current], MAX_ANSWER);
			err = -EPROTO;
			goto out;
		}
		if (rc != CURLE_OK || (s->watch && !s->watch_created && status != 200)) {
			if (rc == CURLE_OK) {
				/* An answer, but not a watch: an error object. */
				json_object *o = s->b.p ? json_tokener_parse(s->b.p) : NULL;
				int code;
				const char *msg = o ? answer_error(o, &code) : NULL;

				snprintf(e->error, sizeof(e->error), "%s: HTTP %ld: %s",
					 e->t.endpoints[e->current], status, msg ? msg : "?");
				json_object_put(o);
				err = -EIO;
				goto out;
			}
			snprintf(e->error, sizeof(e->error), "%s: %s", e->t.endpoints[e->current],
				 curl_easy_strerror(rc));
			err = -EHOSTUNREACH;
			e->current = (e->current + 1) % e->t.n_endpoints;
			continue;
		}
		if (s->watch) { /* the stream ended without an event */
			snprintf(e->error, sizeof(e->error), "%s: the watch ended",
				 e->t.endpoints[e->current]);
			err = -EHOSTUNREACH;
			goto out;
		}
		{
			json_object *o = s->b.p ? json_tokener_parse(s->b.p) : NULL;
			const char *msg;
			int code;

			if (!o || !json_object_is_type(o, json_type_object)) {
				snprintf(e->error, sizeof(e->error),
					 "%s: HTTP %ld: not an answer of etcd's JSON gateway",
					 e->t.endpoints[e->current], status);
				json_object_put(o);
				err = -EPROTO;
				goto out;
			}
			msg = answer_error(o, &code);
			if (msg || status != 200) {
				/* 16 UNAUTHENTICATED: the token expired; once more with a new one. */
				if (code == 16 && e->auth.user[0] && !authed_again &&
				    strcmp(path, "/v3/auth/authenticate")) {
					json_object_put(o);
					authed_again = true;
					e->token[0] = 0;
					err = authenticate(e);
					if (err)
						goto out;
					tries--;
					continue;
				}
				snprintf(e->error, sizeof(e->error), "%s: etcd: %s",
					 e->t.endpoints[e->current], msg ? msg : "HTTP error");
				/* msg lives in o: judged before o goes */
				err = code == 16 || code == 7 || is_auth_error(msg) ? -EACCES
										    : -EIO;
				json_object_put(o);
				goto out;
			}
			*answer = o;
			err = 0;
			goto out;
		}
	}
out:
	curl_slist_free_all(headers);
	free(local.b.p);
	return err;
}

static int authenticate(struct fp_etcd *e)
{
	json_object *req = json_object_new_object(), *a = NULL, *tok;
	int err;

	if (!req)
		return -ENOMEM;
	json_object_object_add(req, "name", json_object_new_string(e->auth.user));
	json_object_object_add(req, "password", json_object_new_string(e->auth.password));
	err = post(e, "/v3/auth/authenticate", req, &a, NULL, 0);
	json_object_put(req);
	if (err)
		return err == -EIO ? -EACCES : err;
	if (!json_object_object_get_ex(a, "token", &tok) ||
	    strlen(json_object_get_string(tok)) >= sizeof(e->token)) {
		snprintf(e->error, sizeof(e->error), "%s: etcd: no usable token",
			 e->t.endpoints[e->current]);
		json_object_put(a);
		return -EACCES;
	}
	snprintf(e->token, sizeof(e->token), "%s", json_object_get_string(tok));
	json_object_put(a);
	return 0;
}

/* post() with the token fetched first when a user is configured. */
static int call(struct fp_etcd *e, const char *path, json_object *req, json_object **answer,
		struct stream *s, long timeout_ms)
{
	if (e->auth.user[0] && !e->token[0]) {
		int err = authenticate(e);

		if (err)
			return err;
	}
	return post(e, path, req, answer, s, timeout_ms);
}

static int64_t header_revision(json_object *a)
{
	json_object *h;

	return json_object_object_get_ex(a, "header", &h) ? get_i64(h, "revision") : 0;
}

/* ---- KV ---- */

static int parse_kvs(json_object *a, struct fp_etcd_kv **out, size_t *n)
{
	json_object *kvs;
	size_t count;

	*out = NULL;
	*n = 0;
	if (!json_object_object_get_ex(a, "kvs", &kvs))
		return 0;
	count = json_object_array_length(kvs);
	if (!count)
		return 0;
	*out = calloc(count, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		json_object *kv = json_object_array_get_idx(kvs, i), *k, *v;
		struct fp_etcd_kv *x = &(*out)[i];
		unsigned char *key;
		size_t len;
		int err;

		*n = i + 1;
		if (!json_object_object_get_ex(kv, "key", &k))
			return -EPROTO;
		err = unb64(json_object_get_string(k), &key, &len);
		if (err)
			return err;
		x->key = (char *)key;
		if (json_object_object_get_ex(kv, "value", &v))
			err = unb64(json_object_get_string(v), &x->value, &x->len);
		else
			err = unb64("", &x->value, &x->len);
		if (err)
			return err;
		x->create_revision = get_i64(kv, "create_revision");
		x->mod_revision = get_i64(kv, "mod_revision");
		x->lease = get_i64(kv, "lease");
	}
	return 0;
}

int fp_etcd_get(struct fp_etcd *e, const char *key, bool prefix, struct fp_etcd_kv **kvs, size_t *n,
		int64_t *revision)
{
	json_object *req = json_object_new_object(), *a = NULL;
	int err;

	*kvs = NULL;
	*n = 0;
	if (!req)
		return -ENOMEM;
	err = add_range(req, key, prefix);
	if (!err)
		err = call(e, "/v3/kv/range", req, &a, NULL, 0);
	json_object_put(req);
	if (err)
		return err;
	if (revision)
		*revision = header_revision(a);
	err = parse_kvs(a, kvs, n);
	if (err) {
		snprintf(e->error, sizeof(e->error), "%s: a key or value is not base64",
			 e->t.endpoints[e->current]);
		fp_etcd_kvs_free(*kvs, *n);
		*kvs = NULL;
		*n = 0;
	}
	json_object_put(a);
	return err;
}

int fp_etcd_txn(struct fp_etcd *e, const struct fp_etcd_compare *cmp, size_t n_cmp,
		const struct fp_etcd_op *ops, size_t n_ops, int64_t *revision)
{
	json_object *req = json_object_new_object(), *compare = json_object_new_array(),
		    *success = json_object_new_array(), *a = NULL, *ok;
	int err = 0;

	if (!req || !compare || !success) {
		json_object_put(req);
		json_object_put(compare);
		json_object_put(success);
		return -ENOMEM;
	}
	json_object_object_add(req, "compare", compare);
	json_object_object_add(req, "success", success);
	for (size_t i = 0; !err && i < n_cmp; i++) {
		json_object *c = json_object_new_object();

		json_object_array_add(compare, c);
		err = add_key(c, "key", cmp[i].key, strlen(cmp[i].key));
		json_object_object_add(c, "target", json_object_new_string("MOD"));
		json_object_object_add(c, "result", json_object_new_string("EQUAL"));
		add_i64(c, "mod_revision", cmp[i].mod_revision);
	}
	for (size_t i = 0; !err && i < n_ops; i++) {
		json_object *op = json_object_new_object(), *r = json_object_new_object();

		json_object_array_add(success, op);
		if (ops[i].type == FP_ETCD_PUT) {
			json_object_object_add(op, "request_put", r);
			err = add_key(r, "key", ops[i].key, strlen(ops[i].key));
			if (!err)
				err = add_key(r, "value", ops[i].value, ops[i].len);
			if (ops[i].lease)
				add_i64(r, "lease", ops[i].lease);
		} else {
			json_object_object_add(op, "request_delete_range", r);
			err = add_range(r, ops[i].key, ops[i].type == FP_ETCD_DELETE_PREFIX);
		}
	}
	if (!err)
		err = call(e, "/v3/kv/txn", req, &a, NULL, 0);
	json_object_put(req);
	if (err)
		return err;
	if (revision)
		*revision = header_revision(a);
	err = json_object_object_get_ex(a, "succeeded", &ok) && json_object_get_boolean(ok)
		      ? 0
		      : -ESTALE;
	if (err)
		snprintf(e->error, sizeof(e->error), "etcd: a compare failed: nothing written");
	json_object_put(a);
	return err;
}

int fp_etcd_put(struct fp_etcd *e, const char *key, const void *value, size_t len, int64_t lease)
{
	const struct fp_etcd_op op = { FP_ETCD_PUT, key, value, len, lease };

	return fp_etcd_txn(e, NULL, 0, &op, 1, NULL);
}

/* ---- leases ---- */

int fp_etcd_lease_grant(struct fp_etcd *e, int64_t ttl_s, int64_t *id)
{
	json_object *req = json_object_new_object(), *a = NULL;
	int err;

	if (!req)
		return -ENOMEM;
	add_i64(req, "TTL", ttl_s);
	err = call(e, "/v3/lease/grant", req, &a, NULL, 0);
	json_object_put(req);
	if (err)
		return err;
	*id = get_i64(a, "ID");
	json_object_put(a);
	if (!*id) {
		snprintf(e->error, sizeof(e->error), "%s: etcd granted no lease",
			 e->t.endpoints[e->current]);
		return -EPROTO;
	}
	return 0;
}

int fp_etcd_lease_keepalive(struct fp_etcd *e, int64_t id)
{
	json_object *req = json_object_new_object(), *a = NULL, *r;
	int err;

	if (!req)
		return -ENOMEM;
	add_i64(req, "ID", id);
	/* A client stream of one message: the gateway answers it and closes. */
	err = call(e, "/v3/lease/keepalive", req, &a, NULL, 0);
	json_object_put(req);
	if (err)
		return err;
	/* TTL 0 (left out): the lease is gone. */
	err = json_object_object_get_ex(a, "result", &r) && get_i64(r, "TTL") > 0 ? 0 : -ENOENT;
	json_object_put(a);
	return err;
}

/* ---- watch ---- */

int fp_etcd_watch(struct fp_etcd *e, const char *key, bool prefix, int64_t from, long timeout_ms,
		  bool (*stop)(void *arg), void *arg)
{
	json_object *req = json_object_new_object(), *create = json_object_new_object();
	struct stream s = { .e = e, .watch = true, .stop = stop, .stop_arg = arg };
	int err;

	if (!req || !create) {
		json_object_put(req);
		json_object_put(create);
		return -ENOMEM;
	}
	json_object_object_add(req, "create_request", create);
	err = add_range(create, key, prefix);
	if (from > 0)
		add_i64(create, "start_revision", from);
	if (!err)
		err = call(e, "/v3/watch", req, NULL, &s, timeout_ms);
	json_object_put(req);
	free(s.b.p);
	if (err == -ESTALE)
		snprintf(e->error, sizeof(e->error), "%s: revision %lld compacted",
			 e->t.endpoints[e->current], (long long)from);
	return err;
}
