// SPDX-License-Identifier: MIT
/*
 * flowpin fleet: a fleet configured from etcd (flowpin/fleet.h, docs/etcd.md).
 *   status  every node's status under PREFIX/status/: what it runs, since when, errors
 *   push    validate a file, write it as PREFIX/config (or to canary nodes) in one
 *           transaction compared on the revision it was based on
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>
#include <flowpin/config.h>
#include <flowpin/etcd.h>
#include <flowpin/fleet.h>
#include "cli.h"
#include "commands.h"

struct fleet_opts {
	const char *command;
	const char *url;
	const char *file;
	long long base; /* -1: the current revision */
	long canary;	/* -1: none */
	const char *canary_nodes;
	int json;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: flowpin fleet status --config etcd://HOST:PORT[,...]/PREFIX [--json]\n"
		"       flowpin fleet push FILE --config etcd://... [--base REV]\n"
		"                              [--canary N | --canary-nodes NAME[,NAME...]]\n"
		"\n"
		"A fleet configured from etcd (docs/etcd.md). Credentials: FLOWPIN_ETCD_CACERT,\n"
		"FLOWPIN_ETCD_CERT, FLOWPIN_ETCD_KEY, FLOWPIN_ETCD_USER, "
		"FLOWPIN_ETCD_PASSWORD_FILE.\n");
}

static int take(void *opts, int opt, const char *arg)
{
	struct fleet_opts *o = opts;
	char *end;

	switch (opt) {
	case CLI_OPERAND:
		o->file = arg;
		break;
	case 'c':
		if (!fp_etcd_is_url(arg))
			return cli_usage_error(o->command, NULL,
					       "--config '%s': etcd://HOST:PORT[,...]/PREFIX\n",
					       arg);
		o->url = arg;
		break;
	case 'j':
		o->json = 1;
		break;
	case 'b':
		o->base = strtoll(arg, &end, 10);
		if (*end || o->base < 0)
			return cli_usage_error(o->command, NULL,
					       "--base '%s': a revision (0: the key is new)\n",
					       arg);
		break;
	case 'n':
		o->canary = strtol(arg, &end, 10);
		if (*end || o->canary < 1 || o->canary > 100000)
			return cli_usage_error(o->command, NULL, "--canary '%s': a count >= 1\n",
					       arg);
		break;
	case 'N':
		o->canary_nodes = arg;
		break;
	}
	return 0;
}

static const struct option fleet_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "json", no_argument, NULL, 'j' },
	{ "base", required_argument, NULL, 'b' },
	{ "canary", required_argument, NULL, 'n' },
	{ "canary-nodes", required_argument, NULL, 'N' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

/* What the fleet's keys say now. */
struct fleet_view {
	struct fp_etcd_target t;
	struct fp_etcd *e;
	struct fp_etcd_kv *config; /* PREFIX/config* */
	size_t n_config;
	struct fp_etcd_kv *status; /* PREFIX/status/ */
	size_t n_status;
	int64_t revision, config_revision, canary_revision;
	const struct fp_etcd_kv *canary_nodes;
};

static void view_free(struct fleet_view *v)
{
	fp_etcd_kvs_free(v->config, v->n_config);
	fp_etcd_kvs_free(v->status, v->n_status);
	fp_etcd_free(v->e);
}

static int view_read(const struct fleet_opts *o, struct fleet_view *v, bool with_status)
{
	struct fp_etcd_auth auth;
	char why[256], key[FP_ETCD_PREFIX_MAX + 16];
	int err;

	memset(v, 0, sizeof(*v));
	if (fp_etcd_parse_url(o->url, &v->t, why, sizeof(why)) ||
	    fp_etcd_auth_from_env(&auth, why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", o->url, why);
		return -EINVAL;
	}
	v->e = fp_etcd_new(&v->t, &auth);
	if (!v->e)
		return -ENOMEM;
	snprintf(key, sizeof(key), "%s/config", v->t.prefix);
	err = fp_etcd_get(v->e, key, true, &v->config, &v->n_config, &v->revision);
	if (!err && with_status) {
		snprintf(key, sizeof(key), "%s/status/", v->t.prefix);
		err = fp_etcd_get(v->e, key, true, &v->status, &v->n_status, NULL);
	}
	if (err) {
		fprintf(stderr, "%s: %s\n", o->url, fp_etcd_error(v->e));
		return err;
	}
	snprintf(key, sizeof(key), "%s/config", v->t.prefix);
	for (size_t i = 0; i < v->n_config; i++) {
		const char *k = v->config[i].key + strlen(key);

		if (!*k)
			v->config_revision = v->config[i].mod_revision;
		else if (!strcmp(k, ".canary"))
			v->canary_revision = v->config[i].mod_revision;
		else if (!strcmp(k, ".canary.nodes"))
			v->canary_nodes = &v->config[i];
	}
	return 0;
}

static const char *field_str(json_object *o, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : "";
}

static double field_num(json_object *o, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) ? json_object_get_double(v) : 0;
}

/* "current" (runs the revision it should), "refused" (refused it), "behind". */
static const char *node_state(const struct fleet_view *v, json_object *s, int64_t *want)
{
	struct fp_etcd_kv *config = v->config;
	const char *node = field_str(s, "node");
	bool canary;
	int i = fp_fleet_pick(config, v->n_config, v->t.prefix, node, &canary);

	*want = i >= 0 ? config[i].mod_revision : 0;
	if ((int64_t)field_num(s, "applied_revision") == *want)
		return "current";
	if ((int64_t)field_num(s, "refused_revision") == *want)
		return "refused";
	return "behind";
}

static void print_time(double t, char *buf, size_t len)
{
	time_t sec = (time_t)t;
	struct tm tm;

	if (!t) {
		snprintf(buf, len, "-");
		return;
	}
	gmtime_r(&sec, &tm);
	strftime(buf, len, "%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), len - strlen(buf), ".%03dZ", (int)((t - (double)sec) * 1000));
}

static int fleet_status(const void *opts)
{
	const struct fleet_opts *o = opts;
	struct fleet_view v;
	json_object *out = json_object_new_object(), *nodes = json_object_new_array();
	double first = 0, last = 0, now;
	size_t current = 0;
	struct timespec ts;
	int err = view_read(o, &v, true);

	if (err) {
		view_free(&v);
		json_object_put(out);
		json_object_put(nodes);
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	json_object_object_add(out, "url", json_object_new_string(o->url));
	json_object_object_add(out, "revision", json_object_new_int64(v.revision));
	json_object_object_add(out, "config_revision", json_object_new_int64(v.config_revision));
	json_object_object_add(out, "canary_revision", json_object_new_int64(v.canary_revision));
	json_object_object_add(
		out, "canary_nodes",
		json_object_new_string(v.canary_nodes ? (char *)v.canary_nodes->value : ""));
	if (!o->json) {
		printf("%s: config revision %lld", o->url, (long long)v.config_revision);
		if (v.canary_revision)
			printf(", canary revision %lld for: %s", (long long)v.canary_revision,
			       v.canary_nodes ? (char *)v.canary_nodes->value : "(no nodes)");
		printf("\n%-20s %-8s %-8s %-14s %-5s %-14s %-6s %-8s %s\n", "NODE", "ROLE",
		       "APPLIED", "KEY", "GEN", "APPLIED AT", "AGE", "STATE", "HEALTH / ERROR");
	}
	for (size_t i = 0; i < v.n_status; i++) {
		json_object *s = json_tokener_parse((char *)v.status[i].value);
		char at[32];
		int64_t want;
		const char *state;
		double applied_at;

		if (!s || !json_object_is_type(s, json_type_object)) {
			fprintf(stderr, "%s: not a node's status (JSON), skipped\n",
				v.status[i].key);
			json_object_put(s);
			continue;
		}
		state = node_state(&v, s, &want);
		applied_at = field_num(s, "applied_at");
		if (!strcmp(state, "current")) {
			if (!current || applied_at < first)
				first = applied_at;
			if (!current || applied_at > last)
				last = applied_at;
			current++;
		}
		json_object_object_add(s, "state", json_object_new_string(state));
		json_object_object_add(s, "want_revision", json_object_new_int64(want));
		if (!o->json) {
			const char *error = field_str(s, "error");

			print_time(applied_at, at, sizeof(at));
			printf("%-20s %-8s %-8lld %-14s %-5lld %-14s %-6.1f %-8s %.*s\n",
			       field_str(s, "node"), field_str(s, "role"),
			       (long long)field_num(s, "applied_revision"),
			       field_str(s, "applied_key"), (long long)field_num(s, "generation"),
			       at, now - field_num(s, "time"), state,
			       (int)strcspn(*error ? error : field_str(s, "health"), "\n"),
			       *error ? error : field_str(s, "health"));
		}
		json_object_array_add(nodes, s);
	}
	json_object_object_add(out, "nodes", nodes);
	json_object_object_add(out, "current", json_object_new_int64((int64_t)current));
	json_object_object_add(out, "apply_spread_s",
			       json_object_new_double(current ? last - first : 0));
	if (o->json)
		printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
	else
		printf("%zu of %zu nodes run the revision they should; applied within %.3f s of "
		       "each other\n",
		       current, v.n_status, current ? last - first : 0);
	json_object_put(out);
	view_free(&v);
	return 0;
}

static int fleet_push(const void *opts)
{
	const struct fleet_opts *o = opts;
	struct fp_config *cfg = NULL;
	struct fleet_view v;
	char *text = NULL, *canaries = NULL;
	size_t len = 0;
	int64_t base, revision = 0;
	FILE *f;
	int err, rc = 1;

	/* Validated as every node of the fleet will: both roles' rules. */
	if (fp_config_load_for(o->file, FP_CONFIG_FOR_FLEET, &cfg, stderr)) {
		fprintf(stderr, "%s: not pushed\n", o->file);
		return 1;
	}
	fp_config_free(cfg);
	f = fopen(o->file, "r");
	if (!f || getdelim(&text, &len, '\0', f) < 0) {
		fprintf(stderr, "%s: cannot read: %s\n", o->file, strerror(errno));
		if (f)
			fclose(f);
		free(text);
		return 1;
	}
	fclose(f);
	len = strlen(text);
	if (view_read(o, &v, o->canary > 0))
		goto out;
	base = o->base >= 0 ? o->base : v.config_revision;
	if (base != v.config_revision) {
		fprintf(stderr,
			"%s/config is at revision %lld, not %lld: someone pushed since the config "
			"you based this on; nothing written (see `flowpin fleet status`, merge, "
			"push again with --base %lld)\n",
			o->url, (long long)v.config_revision, (long long)base,
			(long long)v.config_revision);
		goto out;
	}
	if (o->canary > 0) {
		char why[128];

		canaries = fp_fleet_canaries(v.status, v.n_status, o->canary, why, sizeof(why));
		if (!canaries)
			fprintf(stderr, "--canary %ld: %s\n", o->canary, why);
	} else if (o->canary_nodes) {
		canaries = strdup(o->canary_nodes);
		for (char *c = canaries; c && *c; c++)
			if (*c == ',')
				*c = '\n';
	}
	if ((o->canary > 0 || o->canary_nodes) && !canaries)
		goto out;
	err = fp_fleet_push(v.e, v.t.prefix, text, len, base, canaries, &revision);
	if (err == -ESTALE) {
		fprintf(stderr,
			"%s/config moved past revision %lld while pushing: someone pushed at the "
			"same time; nothing written\n",
			o->url, (long long)base);
		goto out;
	}
	if (err) {
		fprintf(stderr, "%s: %s\n", o->url, fp_etcd_error(v.e));
		goto out;
	}
	if (canaries) {
		for (char *c = canaries; *c; c++)
			if (*c == '\n' && c[1])
				*c = ',';
		canaries[strcspn(canaries, "\n")] = 0;
		printf("%s: pushed as %s/config.canary revision %lld for %s (base %lld); `fleet "
		       "push` without --canary rolls it out everywhere\n",
		       o->file, o->url, (long long)revision, canaries, (long long)base);
	} else {
		printf("%s: pushed as %s/config revision %lld (base %lld)\n", o->file, o->url,
		       (long long)revision, (long long)base);
	}
	rc = 0;
out:
	view_free(&v);
	free(text);
	free(canaries);
	return rc;
}

static const struct cli_verb fleet_verbs[] = {
	{ "status", "fleet status --config etcd://HOST:PORT[,...]/PREFIX [--json]", "cj", NULL,
	  "Every node with a status under PREFIX/status/ (LB nodes and backends run with\n"
	  "--config etcd://...; a node gone for 10 s has none): the revision it applied,\n"
	  "from which key (config or config.canary), its generation, when it applied, how\n"
	  "old its status is, whether it runs the revision it should (current, behind,\n"
	  "refused) and its health or the error that refused a value; then how many nodes\n"
	  "are current and the spread of their apply times.",
	  fleet_status },
	{ "push",
	  "fleet push FILE --config etcd://... [--base REV] [--canary N | --canary-nodes "
	  "A,B]",
	  "cbnN", "FILE",
	  "Validates FILE with the fleet's rules (both roles, as `flowpin check`), then\n"
	  "writes it in one transaction that holds only if PREFIX/config is still at\n"
	  "--base REV (default: the revision read just before): a push based on a stale\n"
	  "revision is refused, nothing written. With --canary N (the first N LB nodes\n"
	  "by name with a status) or --canary-nodes, FILE goes to PREFIX/config.canary for\n"
	  "those nodes only; a push without them goes everywhere and ends the canary.",
	  fleet_push },
};

static const struct cli_verbs fleet_command = {
	{ "fleet", "c:jh", fleet_options, usage, take },
	fleet_verbs,
	sizeof(fleet_verbs) / sizeof(*fleet_verbs),
	"Exit status: 0 done, 1 refused or etcd unreachable, 2 usage.\n",
};

int cmd_fleet(int argc, char **argv)
{
	struct fleet_opts o = { .base = -1, .canary = -1 };
	const struct cli_verb *verb;
	char cmd[32];
	int rc;

	o.command = cmd;
	rc = cli_parse_verb(&fleet_command, argc, argv, &o, &verb, cmd, sizeof(cmd));
	if (rc != CLI_RUN)
		return rc;
	if (!o.url)
		return cli_usage_error(cmd, NULL,
				       "--config etcd://HOST:PORT[,...]/PREFIX is required\n");
	if (o.canary > 0 && o.canary_nodes)
		return cli_usage_error(cmd, NULL, "--canary or --canary-nodes, not both\n");
	return verb->run(&o);
}
