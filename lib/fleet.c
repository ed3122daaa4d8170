// SPDX-License-Identifier: MIT
/*
 * A fleet node's link to etcd (flowpin/fleet.h): one thread per node doing every etcd
 * call (they block), the daemon's loop applying what it is handed.
 *
 * Design. The thread cycles: read PREFIX/config* (one range), pick the node's config
 * (fp_fleet_pick()), hand it to the loop when its revision differs from the last one
 * handed over (an eventfd wakes the loop, which takes the value under the mutex), keep
 * the lease alive and write PREFIX/status/NODE, then watch PREFIX/config* from the read's
 * revision + 1 for at most STATUS_EVERY_MS (a report from the loop or a stop cuts the
 * wait short). A watch only says "changed": the next cycle reads again, so nothing
 * depends on the stream (cut, compacted, another member) and a node that was away reads
 * the current keys when it is back. Failures: the state says unreachable (one log line
 * per transition), the thread sleeps 0.5 s doubling to 10 s and starts the cycle again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <flowpin/config.h>
#include <flowpin/fleet.h>
#include <flowpin/log.h>
#include <flowpin/text.h>

#define STATUS_EVERY_MS 3000
#define LEASE_TTL_S	10
#define BACKOFF_MIN_MS	500
#define BACKOFF_MAX_MS	10000

struct fp_fleet_member {
	struct fp_etcd_target t;
	struct fp_etcd *etcd; /* the thread's */
	char node[FP_FLEET_NODE_MAX];
	char role[16];
	void (*desired)(void *arg, const struct fp_fleet_desired *);
	void *arg;
	struct event_base *base;
	struct event *ev;
	int efd;
	pthread_t thread;
	bool started;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;
	bool stop;
	bool report_dirty;
	struct fp_fleet_report report;
	struct fp_fleet_state state;
	int64_t handed_revision; /* the last revision handed to the loop (or applied) */
	/* The pending hand-over (thread -> loop). */
	unsigned char *pending;
	size_t pending_len;
	int64_t pending_revision;
	bool pending_canary, have_pending;
};

bool fp_fleet_node_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (!n || n >= FP_FLEET_NODE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || strchr("._-", name[i])))
			return false;
	return true;
}

/* Whether @node is a line (spaces and commas also separate) of @list. */
static bool listed(const unsigned char *list, size_t len, const char *node)
{
	size_t n = strlen(node);

	for (size_t i = 0; i < len;) {
		size_t j = i;

		while (j < len && !strchr(" \t\r\n,", list[j]))
			j++;
		if (j - i == n && !memcmp(list + i, node, n))
			return true;
		i = j + 1;
	}
	return false;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *fp_fleet_canaries(const struct fp_etcd_kv *status, size_t n, long count, char *why,
			size_t why_len)
{
	char **names = calloc(n + 1, sizeof(*names)), *list = NULL;
	json_object **parsed = calloc(n + 1, sizeof(*parsed));
	size_t lbs = 0, len = 0;

	if (!names || !parsed) {
		snprintf(why, why_len, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = strrchr(status[i].key, '/');
		json_object *role;

		parsed[i] = json_tokener_parse((const char *)status[i].value);
		if (!name || !fp_fleet_node_name_ok(name + 1) || !parsed[i] ||
		    !json_object_object_get_ex(parsed[i], "role", &role) ||
		    strcmp(json_object_get_string(role), "lb"))
			continue;
		names[lbs++] = (char *)name + 1;
	}
	if ((long)lbs < count) {
		snprintf(why, why_len, "only %zu LB node%s a status", lbs,
			 lbs == 1 ? " reports" : "s report");
		goto out;
	}
	qsort(names, lbs, sizeof(*names), by_name);
	for (long i = 0; i < count; i++)
		len += strlen(names[i]) + 1;
	list = calloc(1, len + 1);
	for (long i = 0; list && i < count; i++) {
		strcat(list, names[i]);
		strcat(list, "\n");
	}
	if (!list)
		snprintf(why, why_len, "out of memory");
out:
	for (size_t i = 0; parsed && i < n; i++)
		json_object_put(parsed[i]);
	free(parsed);
	free(names);
	return list;
}

int fp_fleet_pick(const struct fp_etcd_kv *kvs, size_t n, const char *prefix, const char *node,
		  bool *canary)
{
	char config[FP_ETCD_PREFIX_MAX + 32], staged[sizeof(config) + 8],
		nodes[sizeof(config) + 16];
	int main_i = -1, canary_i = -1, nodes_i = -1;

	snprintf(config, sizeof(config), "%s/config", prefix);
	snprintf(staged, sizeof(staged), "%s/config.canary", prefix);
	snprintf(nodes, sizeof(nodes), "%s/config.canary.nodes", prefix);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(kvs[i].key, config))
			main_i = (int)i;
		else if (!strcmp(kvs[i].key, staged))
			canary_i = (int)i;
		else if (!strcmp(kvs[i].key, nodes))
			nodes_i = (int)i;
	}
	*canary =
		canary_i >= 0 && nodes_i >= 0 && listed(kvs[nodes_i].value, kvs[nodes_i].len, node);
	return *canary ? canary_i : main_i;
}

int fp_fleet_fetch(struct fp_etcd *e, const char *prefix, const char *node, unsigned char **value,
		   size_t *len, int64_t *revision, bool *canary)
{
	char key[FP_ETCD_PREFIX_MAX + 16];
	struct fp_etcd_kv *kvs;
	size_t n;
	int i, err;

	*value = NULL;
	snprintf(key, sizeof(key), "%s/config", prefix);
	err = fp_etcd_get(e, key, true, &kvs, &n, NULL);
	if (err)
		return err;
	i = fp_fleet_pick(kvs, n, prefix, node, canary);
	if (i < 0) {
		fp_etcd_kvs_free(kvs, n);
		return -ENOENT;
	}
	*value = kvs[i].value;
	*len = kvs[i].len;
	*revision = kvs[i].mod_revision;
	kvs[i].value = NULL;
	fp_etcd_kvs_free(kvs, n);
	return 0;
}

int fp_fleet_load_config(const char *source, int use, const char *node, struct fp_config **out,
			 int64_t *revision, FILE *err)
{
	struct fp_etcd_target t;
	struct fp_etcd_auth auth;
	char why[256], name[sizeof(t.url) + 32];
	unsigned char *value = NULL;
	int64_t rev = 0;
	size_t len = 0;
	bool canary = false;
	struct fp_etcd *e;
	int ret;

	if (revision)
		*revision = 0;
	if (!fp_etcd_is_url(source))
		return fp_config_load_for(source, (enum fp_config_for)use, out, err);
	*out = NULL;
	if (fp_etcd_parse_url(source, &t, why, sizeof(why)) ||
	    fp_etcd_auth_from_env(&auth, why, sizeof(why))) {
		fprintf(err, "%s: %s\n", source, why);
		return -EINVAL;
	}
	e = fp_etcd_new(&t, &auth);
	if (!e)
		return -ENOMEM;
	ret = fp_fleet_fetch(e, t.prefix, node ? node : "", &value, &len, &rev, &canary);
	if (ret == -ENOENT)
		fprintf(err, "%s/config: no such key in etcd\n", t.url);
	else if (ret)
		fprintf(err, "%s: %s\n", t.url, fp_etcd_error(e));
	fp_etcd_free(e);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "%s/config%s", t.url, canary ? ".canary" : "");
	ret = fp_config_load_buffer(name, value, len, (enum fp_config_for)use, out, err);
	free(value);
	if (!ret && revision)
		*revision = rev;
	return ret;
}

int fp_fleet_push(struct fp_etcd *e, const char *prefix, const char *text, size_t len, int64_t base,
		  const char *canary_nodes, int64_t *revision)
{
	char config[FP_ETCD_PREFIX_MAX + 32], staged[sizeof(config) + 8],
		nodes[sizeof(config) + 16];
	const struct fp_etcd_compare cmp = { config, base };
	struct fp_etcd_op ops[3];

	snprintf(config, sizeof(config), "%s/config", prefix);
	snprintf(staged, sizeof(staged), "%s/config.canary", prefix);
	snprintf(nodes, sizeof(nodes), "%s/config.canary.nodes", prefix);
	if (canary_nodes) {
		ops[0] = (struct fp_etcd_op){ FP_ETCD_PUT, staged, text, len, 0 };
		ops[1] = (struct fp_etcd_op){ FP_ETCD_PUT, nodes, canary_nodes,
					      strlen(canary_nodes), 0 };
		return fp_etcd_txn(e, &cmp, 1, ops, 2, revision);
	}
	ops[0] = (struct fp_etcd_op){ FP_ETCD_PUT, config, text, len, 0 };
	ops[1] = (struct fp_etcd_op){ FP_ETCD_DELETE, staged, NULL, 0, 0 };
	ops[2] = (struct fp_etcd_op){ FP_ETCD_DELETE, nodes, NULL, 0, 0 };
	return fp_etcd_txn(e, &cmp, 1, ops, 3, revision);
}

/* ---- what a node does with a value: start, cache, take ---- */

int fp_fleet_cache_init(struct fp_fleet_cache *c, const char *dir, const char *name)
{
	if ((size_t)snprintf(c->yaml, sizeof(c->yaml), "%s/%s.etcd.yaml", dir, name) >=
		    sizeof(c->yaml) ||
	    (size_t)snprintf(c->revision, sizeof(c->revision), "%s/%s.etcd.revision", dir, name) >=
		    sizeof(c->revision))
		return -ENAMETOOLONG;
	return 0;
}

int fp_fleet_write_private(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX + 8];
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd))
		err = errno ? -errno : -EIO;
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int fp_fleet_cache_write(const struct fp_fleet_cache *c, const void *value, size_t len,
			 int64_t revision, bool canary)
{
	char text[48];
	int err;

	snprintf(text, sizeof(text), "%lld %s\n", (long long)revision,
		 canary ? "config.canary" : "config");
	err = fp_fleet_write_private(c->yaml, value, len);
	if (!err)
		err = fp_fleet_write_private(c->revision, text, strlen(text));
	if (err)
		fp_warn("%s: %s: a restart without etcd will not find this config\n", c->yaml,
			strerror(-err));
	return err;
}

/* Loads @value as @name and makes it the node's view; messages on @err. */
static int load_value(const struct fp_fleet_node *n, const char *name, const void *value,
		      size_t len, struct fp_config **cfg, FILE *err)
{
	int ret = fp_config_load_buffer(name, value, len, (enum fp_config_for)n->use, cfg, err);

	if (!ret && n->view)
		ret = n->view(n->arg, cfg, err);
	return ret;
}

static void report_applied(struct fp_fleet_report *r, int64_t revision, bool canary)
{
	r->applied_revision = revision;
	r->applied_canary = canary;
	clock_gettime(CLOCK_REALTIME, &r->applied_at);
	r->refused_revision = 0;
	r->error[0] = '\0';
}

int fp_fleet_start_config(const struct fp_etcd_target *t, const struct fp_etcd_auth *auth,
			  const char *node, const struct fp_fleet_node *n, struct fp_config **out,
			  struct fp_fleet_report *report)
{
	char name[sizeof(t->url) + 32];
	unsigned char *value = NULL;
	int64_t revision = 0;
	bool canary = false;
	struct fp_etcd *e;
	size_t len = 0;
	int err;

	*out = NULL;
	e = fp_etcd_new(t, auth);
	if (!e)
		return -ENOMEM;
	err = fp_fleet_fetch(e, t->prefix, node, &value, &len, &revision, &canary);
	if (err == -ENOENT) {
		fp_err("%s/config: no such key: push a config first (flowpin fleet push)\n",
		       t->url);
		fp_etcd_free(e);
		return err;
	}
	if (err) {
		FILE *f;

		fp_warn("etcd: %s: %s; starting from the config applied last (%s)\n", t->url,
			fp_etcd_error(e), n->cache->yaml);
		fp_etcd_free(e);
		err = fp_config_load_for(n->cache->yaml, (enum fp_config_for)n->use, out, stderr);
		if (!err && n->view)
			err = n->view(n->arg, out, stderr);
		if (err) {
			fp_err("etcd unreachable and no usable cached config: not starting\n");
			return err;
		}
		f = fopen(n->cache->revision, "r");
		if (f) {
			char key[32] = "";
			long long r = 0;

			if (fscanf(f, "%lld %31s", &r, key) >= 1)
				revision = r;
			canary = !strcmp(key, "config.canary");
			fclose(f);
		}
		report_applied(report, revision, canary);
		return 0;
	}
	fp_etcd_free(e);
	snprintf(name, sizeof(name), "%s/config%s", t->url, canary ? ".canary" : "");
	err = load_value(n, name, value, len, out, stderr);
	if (!err) {
		fp_fleet_cache_write(n->cache, value, len, revision, canary);
		report_applied(report, revision, canary);
		fp_log_event("etcd: %s revision %lld: starting with it\n", name,
			     (long long)revision);
	}
	free(value);
	return err;
}

int fp_fleet_take(const struct fp_fleet_desired *want, const struct fp_fleet_node *n,
		  struct fp_fleet_report *report)
{
	struct fp_config *cfg = NULL;
	char *msgs = NULL;
	size_t msgs_len = 0, loader_len;
	FILE *capture = open_memstream(&msgs, &msgs_len);
	int err;

	fp_log_event("etcd: %s revision %lld: applying\n", want->name, (long long)want->revision);
	err = load_value(n, want->name, want->value, want->len, &cfg, capture ? capture : stderr);
	/* The loader's messages go to the log below; fp_log's own reach it already. */
	if (capture)
		fflush(capture);
	loader_len = msgs_len;
	if (!err) {
		/* What the node refuses (a change that needs a restart) goes to the log and,
		 * captured, into the status. */
		fp_log_capture(capture);
		err = n->apply(n->arg, cfg);
		fp_log_capture(NULL);
		if (err)
			fp_config_free(cfg);
		else
			fp_fleet_cache_write(n->cache, want->value, want->len, want->revision,
					     want->canary);
	} else {
		fp_log_event("etcd: %s revision %lld refused (%s); the running config stays\n",
			     want->name, (long long)want->revision, strerror(-err));
		if (n->refused)
			n->refused(n->arg, err);
	}
	if (capture)
		fclose(capture);
	if (msgs && loader_len)
		fwrite(msgs, 1, loader_len, stderr);
	if (!err) {
		report_applied(report, want->revision, want->canary);
	} else {
		report->refused_revision = want->revision;
		snprintf(report->error, sizeof(report->error), "%s",
			 msgs && msgs_len ? msgs : strerror(-err));
	}
	free(msgs);
	return err;
}

/* ---- the link to etcd as a node's status command shows it ---- */

json_object *fp_fleet_status_json(struct fp_fleet_member *m, const char *url, const char *node,
				  const struct fp_fleet_report *r)
{
	json_object *o = json_object_new_object();
	struct fp_fleet_state st;

	fp_fleet_member_state(m, &st);
	json_object_object_add(o, "url", json_object_new_string(url));
	json_object_object_add(o, "node", json_object_new_string(node));
	json_object_object_add(o, "reachable", json_object_new_boolean(st.reachable));
	json_object_object_add(o, "since", fp_json_time(&st.since));
	json_object_object_add(o, "endpoint", json_object_new_string(st.endpoint));
	json_object_object_add(o, "seen_revision", json_object_new_int64(st.seen_revision));
	json_object_object_add(o, "failures_total",
			       json_object_new_int64((int64_t)st.failures_total));
	json_object_object_add(o, "backoff_ms", json_object_new_int64(st.backoff_ms));
	json_object_object_add(o, "last_error", json_object_new_string(st.error));
	json_object_object_add(o, "applied_revision", json_object_new_int64(r->applied_revision));
	json_object_object_add(
		o, "applied_key",
		json_object_new_string(r->applied_canary ? "config.canary" : "config"));
	json_object_object_add(o, "applied_at", fp_json_time(&r->applied_at));
	json_object_object_add(o, "refused_revision", json_object_new_int64(r->refused_revision));
	json_object_object_add(o, "refused_error", json_object_new_string(r->error));
	return o;
}

void fp_fleet_print_status(json_object *e, FILE *out)
{
	json_object *v;
	bool reachable =
		json_object_object_get_ex(e, "reachable", &v) && json_object_get_boolean(v);

	fprintf(out,
		"etcd %s as node %s: %s since %s (endpoint %s, etcd revision %s, %s failures)\n",
		fp_json_field(e, "url"), fp_json_field(e, "node"),
		reachable ? "reachable" : "UNREACHABLE, forwarding with the config applied last",
		fp_json_field(e, "since"), fp_json_field(e, "endpoint"),
		fp_json_field(e, "seen_revision"), fp_json_field(e, "failures_total"));
	if (!reachable)
		fprintf(out, "  last error: %s; retrying every %s ms at most\n",
			fp_json_field(e, "last_error"), fp_json_field(e, "backoff_ms"));
	fprintf(out, "  applied: %s revision %s at %s\n", fp_json_field(e, "applied_key"),
		fp_json_field(e, "applied_revision"), fp_json_field(e, "applied_at"));
	if (strcmp(fp_json_field(e, "refused_revision"), "0"))
		fprintf(out, "  refused: revision %s:\n    %s\n",
			fp_json_field(e, "refused_revision"), fp_json_field(e, "refused_error"));
}

/* ---- the loop's side ---- */

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct fp_fleet_member *m = arg;
	struct fp_fleet_desired want;
	char name[sizeof(m->t.url) + 32];
	unsigned char *value;
	uint64_t count;

	(void)what;
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&m->lock);
	if (!m->have_pending) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	value = m->pending;
	want = (struct fp_fleet_desired){ name, NULL, m->pending_len, m->pending_revision,
					  m->pending_canary };
	m->pending = NULL;
	m->have_pending = false;
	pthread_mutex_unlock(&m->lock);
	want.value = value;
	snprintf(name, sizeof(name), "%s/config%s", m->t.url, want.canary ? ".canary" : "");
	m->desired(m->arg, &want);
	free(value);
}

void fp_fleet_member_report(struct fp_fleet_member *m, const struct fp_fleet_report *r)
{
	pthread_mutex_lock(&m->lock);
	m->report = *r;
	m->report_dirty = true;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
}

void fp_fleet_member_state(struct fp_fleet_member *m, struct fp_fleet_state *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->state;
	pthread_mutex_unlock(&m->lock);
}

void fp_fleet_member_last_report(struct fp_fleet_member *m, struct fp_fleet_report *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->report;
	pthread_mutex_unlock(&m->lock);
}

/* ---- the thread ---- */

static bool should_stop_watch(void *arg)
{
	struct fp_fleet_member *m = arg;
	bool r;

	pthread_mutex_lock(&m->lock);
	r = m->stop || m->report_dirty;
	pthread_mutex_unlock(&m->lock);
	return r;
}

static void set_reachable(struct fp_fleet_member *m, bool ok, const char *error)
{
	struct fp_fleet_state *s = &m->state;

	pthread_mutex_lock(&m->lock);
	if (s->reachable != ok || !s->since.tv_sec) {
		clock_gettime(CLOCK_REALTIME, &s->since);
		if (ok)
			fp_log_event("etcd: %s reachable at %s\n", m->t.url,
				     fp_etcd_endpoint(m->etcd));
		else
			fp_log_event("etcd: %s unreachable (%s): forwarding goes on with the "
				     "config applied last; retrying with backoff\n",
				     m->t.url, error);
	}
	s->reachable = ok;
	snprintf(s->endpoint, sizeof(s->endpoint), "%s", fp_etcd_endpoint(m->etcd));
	if (ok) {
		s->backoff_ms = 0;
	} else {
		s->failures_total++;
		snprintf(s->error, sizeof(s->error), "%s", error);
		s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (s->backoff_ms > BACKOFF_MAX_MS)
			s->backoff_ms = BACKOFF_MAX_MS;
	}
	pthread_mutex_unlock(&m->lock);
}

static char *status_json(struct fp_fleet_member *m, const struct fp_fleet_report *r)
{
	json_object *o = json_object_new_object();
	struct timespec now;
	char *s;

	clock_gettime(CLOCK_REALTIME, &now);
	json_object_object_add(o, "node", json_object_new_string(m->node));
	json_object_object_add(o, "role", json_object_new_string(m->role));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "applied_revision", json_object_new_int64(r->applied_revision));
	json_object_object_add(
		o, "applied_key",
		json_object_new_string(r->applied_canary ? "config.canary" : "config"));
	json_object_object_add(
		o, "applied_at",
		json_object_new_double((double)r->applied_at.tv_sec + r->applied_at.tv_nsec / 1e9));
	json_object_object_add(o, "generation", json_object_new_int64(r->generation));
	json_object_object_add(o, "refused_revision", json_object_new_int64(r->refused_revision));
	json_object_object_add(o, "error", json_object_new_string(r->error));
	json_object_object_add(o, "health", json_object_new_string(r->health));
	json_object_object_add(o, "time",
			       json_object_new_double((double)now.tv_sec + now.tv_nsec / 1e9));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

/* One cycle; 0, or a negative errno when etcd could not be reached. */
static int cycle(struct fp_fleet_member *m, int64_t *lease)
{
	char key[FP_ETCD_PREFIX_MAX + 16], status_key[FP_ETCD_PREFIX_MAX + FP_FLEET_NODE_MAX + 16];
	struct fp_fleet_report report;
	struct fp_etcd_kv *kvs;
	int64_t revision = 0;
	bool canary;
	size_t n;
	char *json;
	int i, err;

	snprintf(key, sizeof(key), "%s/config", m->t.prefix);
	err = fp_etcd_get(m->etcd, key, true, &kvs, &n, &revision);
	if (err)
		return err;
	set_reachable(m, true, NULL);
	i = fp_fleet_pick(kvs, n, m->t.prefix, m->node, &canary);
	pthread_mutex_lock(&m->lock);
	m->state.seen_revision = revision;
	m->state.reads_total++;
	if (i >= 0 && kvs[i].mod_revision != m->handed_revision) {
		free(m->pending);
		m->pending = kvs[i].value;
		m->pending_len = kvs[i].len;
		m->pending_revision = kvs[i].mod_revision;
		m->pending_canary = canary;
		m->have_pending = true;
		m->handed_revision = kvs[i].mod_revision;
		kvs[i].value = NULL;
		uint64_t one = 1;

		if (write(m->efd, &one, sizeof(one)) < 0)
			fp_warn("etcd: cannot wake the loop: %s\n", strerror(errno));
	}
	pthread_mutex_unlock(&m->lock);
	fp_etcd_kvs_free(kvs, n);

	/* The status, under the node's lease. */
	if (*lease && fp_etcd_lease_keepalive(m->etcd, *lease) == -ENOENT)
		*lease = 0;
	if (!*lease) {
		err = fp_etcd_lease_grant(m->etcd, LEASE_TTL_S, lease);
		if (err)
			return err;
	}
	pthread_mutex_lock(&m->lock);
	report = m->report;
	m->report_dirty = false;
	pthread_mutex_unlock(&m->lock);
	json = status_json(m, &report);
	if (!json)
		return -ENOMEM;
	snprintf(status_key, sizeof(status_key), "%s/status/%s", m->t.prefix, m->node);
	err = fp_etcd_put(m->etcd, status_key, json, strlen(json), *lease);
	free(json);
	if (err)
		return err;
	err = fp_etcd_watch(m->etcd, key, true, revision + 1, STATUS_EVERY_MS, should_stop_watch,
			    m);
	return err == -EINTR || err == -ESTALE || err == 1 ? 0 : err;
}

static void *run(void *arg)
{
	struct fp_fleet_member *m = arg;
	int64_t lease = 0;

	for (;;) {
		struct timespec until;
		long backoff;
		int err;

		pthread_mutex_lock(&m->lock);
		if (m->stop) {
			pthread_mutex_unlock(&m->lock);
			break;
		}
		pthread_mutex_unlock(&m->lock);
		err = cycle(m, &lease);
		if (!err)
			continue;
		set_reachable(m, false, fp_etcd_error(m->etcd));
		pthread_mutex_lock(&m->lock);
		backoff = m->state.backoff_ms;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += backoff / 1000;
		until.tv_nsec += (backoff % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!m->stop && pthread_cond_timedwait(&m->wake, &m->lock, &until) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&m->lock);
	}
	return NULL;
}

struct fp_fleet_member *
fp_fleet_member_new(struct event_base *base, const struct fp_etcd_target *t,
		    const struct fp_etcd_auth *auth, const char *node, const char *role,
		    int64_t applied_revision,
		    void (*desired)(void *arg, const struct fp_fleet_desired *), void *arg)
{
	struct fp_fleet_member *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->t = *t;
	snprintf(m->node, sizeof(m->node), "%s", node);
	snprintf(m->role, sizeof(m->role), "%s", role);
	m->desired = desired;
	m->arg = arg;
	m->base = base;
	m->handed_revision = applied_revision;
	m->report.applied_revision = applied_revision;
	m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	m->etcd = fp_etcd_new(t, auth);
	if (m->efd < 0 || !m->etcd)
		goto fail;
	m->ev = event_new(base, m->efd, EV_READ | EV_PERSIST, on_wake, m);
	if (!m->ev || event_add(m->ev, NULL))
		goto fail;
	return m;
fail:
	fp_fleet_member_free(m);
	errno = ENOMEM;
	return NULL;
}

int fp_fleet_member_start(struct fp_fleet_member *m)
{
	int err = pthread_create(&m->thread, NULL, run, m);

	if (err)
		return -err;
	m->started = true;
	return 0;
}

void fp_fleet_member_free(struct fp_fleet_member *m)
{
	if (!m)
		return;
	if (m->started) {
		pthread_mutex_lock(&m->lock);
		m->stop = true;
		pthread_cond_signal(&m->wake);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
	}
	if (m->ev)
		event_free(m->ev);
	if (m->efd >= 0)
		close(m->efd);
	fp_etcd_free(m->etcd);
	free(m->pending);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->wake);
	free(m);
}
