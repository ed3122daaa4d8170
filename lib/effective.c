// SPDX-License-Identifier: MIT
/* Effective backend state and run-time overrides. See flowpin/effective.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <flowpin/effective.h>
#include <flowpin/lbnode.h>

static const char *const override_names[] = {
	[FP_OVERRIDE_NONE] = "none",
	[FP_OVERRIDE_DRAIN] = "drain",
	[FP_OVERRIDE_DISABLE] = "disable",
};

const char *fp_override_name(enum fp_override o)
{
	return (unsigned)o < sizeof(override_names) / sizeof(override_names[0]) ? override_names[o]
										: "?";
}

/* How restrictive each state is: active < draining < down. */
static int rank(enum fp_backend_state s)
{
	return s == FP_BACKEND_DOWN ? 2 : s == FP_BACKEND_DRAINING ? 1 : 0;
}

static enum fp_backend_state most_restrictive(enum fp_backend_state a, enum fp_backend_state b)
{
	return rank(a) >= rank(b) ? a : b;
}

enum fp_backend_state fp_effective_state(enum fp_backend_state config, enum fp_override o,
					 bool health_down)
{
	enum fp_backend_state s = config;

	if (o == FP_OVERRIDE_DRAIN)
		s = most_restrictive(s, FP_BACKEND_DRAINING);
	else if (o == FP_OVERRIDE_DISABLE)
		s = most_restrictive(s, FP_BACKEND_DOWN);
	if (health_down)
		s = most_restrictive(s, FP_BACKEND_DRAINING);
	return s;
}

bool fp_effective_vip(const struct fp_effective_in *in, size_t n, enum fp_backend_state *out)
{
	size_t active = 0, active_without_health = 0;

	for (size_t i = 0; i < n; i++) {
		out[i] = fp_effective_state(in[i].config, in[i].override, in[i].health_down);
		active += out[i] == FP_BACKEND_ACTIVE;
		active_without_health += fp_effective_state(in[i].config, in[i].override, false) ==
					 FP_BACKEND_ACTIVE;
	}
	if (active || !active_without_health)
		return false;
	/* Fail-open: health alone would empty the VIP; ignore it for this VIP. */
	for (size_t i = 0; i < n; i++)
		out[i] = fp_effective_state(in[i].config, in[i].override, false);
	return true;
}

/* ---- overrides ---- */

static struct fp_override_entry *find(const struct fp_overrides *o, const char *vip, __u32 backend)
{
	for (size_t i = 0; o && i < o->n; i++)
		if (o->v[i].backend == backend && !strcmp(o->v[i].vip, vip))
			return &o->v[i];
	return NULL;
}

enum fp_override fp_overrides_get(const struct fp_overrides *o, const char *vip, __u32 backend)
{
	const struct fp_override_entry *e = find(o, vip, backend);

	return e ? e->what : FP_OVERRIDE_NONE;
}

int fp_overrides_set(struct fp_overrides *o, const char *vip, __u32 backend, enum fp_override what)
{
	struct fp_override_entry *e = find(o, vip, backend), *v;

	if (strlen(vip) >= FP_NAME_MAX)
		return -EINVAL;
	if (what == FP_OVERRIDE_NONE) {
		if (e) {
			*e = o->v[o->n - 1];
			o->n--;
		}
		return 0;
	}
	if (e) {
		e->what = what;
		return 0;
	}
	if (o->n >= FP_OVERRIDES_MAX)
		return -E2BIG;
	v = realloc(o->v, (o->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	o->v = v;
	e = &o->v[o->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->vip, sizeof(e->vip), "%s", vip);
	e->backend = backend;
	e->what = what;
	return 0;
}

void fp_overrides_free(struct fp_overrides *o)
{
	free(o->v);
	o->v = NULL;
	o->n = 0;
}

/* "VIP ID drain|disable": 0, or -EINVAL. */
static int parse_line(const char *line, char *vip, __u32 *backend, enum fp_override *what)
{
	char name[FP_NAME_MAX + 1], word[16], extra[2];
	unsigned long id;
	char *end;
	char num[16];

	if (sscanf(line, "%64s %15s %15s %1s", name, num, word, extra) != 3 ||
	    strlen(name) >= FP_NAME_MAX)
		return -EINVAL;
	id = strtoul(num, &end, 10);
	if (*end || num[0] < '1' || num[0] > '9' || id > FP_MAX_BACKEND_ID)
		return -EINVAL;
	if (!strcmp(word, "drain"))
		*what = FP_OVERRIDE_DRAIN;
	else if (!strcmp(word, "disable"))
		*what = FP_OVERRIDE_DISABLE;
	else
		return -EINVAL;
	memcpy(vip, name, strlen(name) + 1);
	*backend = (__u32)id;
	return 0;
}

int fp_overrides_load(const char *path, struct fp_overrides *o, FILE *err)
{
	char line[256];
	FILE *f;
	int lineno = 0, rc = 0;

	fp_overrides_free(o);
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f) && lineno < FP_OVERRIDES_MAX) {
		char vip[FP_NAME_MAX];
		enum fp_override what;
		__u32 id;
		bool whole = strchr(line, '\n') || feof(f);

		lineno++;
		if (!whole) { /* longer than any good line: skip the rest of it */
			int c;

			while ((c = fgetc(f)) != EOF && c != '\n')
				;
		}
		if (line[strspn(line, " \t\r\n")] == 0 || line[strspn(line, " \t")] == '#')
			continue;
		if (!whole || parse_line(line, vip, &id, &what)) {
			/* Refused whole: skipping a line would put a drained or disabled
			 * backend back into service. Every bad line is named. */
			if (err)
				fprintf(err, "%s:%d: expected \"VIP BACKEND-ID drain|disable\"\n",
					path, lineno);
			rc = -EINVAL;
			continue;
		}
		if (!rc)
			rc = fp_overrides_set(o, vip, id, what);
		if (rc && rc != -EINVAL)
			break;
	}
	fclose(f);
	if (rc)
		fp_overrides_free(o);
	return rc;
}

int fp_overrides_save(const char *path, const struct fp_overrides *o)
{
	size_t cap = 128 + o->n * (FP_NAME_MAX + 24), len;
	char *text = malloc(cap);
	int err;

	if (!text)
		return -ENOMEM;
	len = (size_t)snprintf(
		text, cap,
		"# flowpin lb run-time overrides (flowpin lb drain|undrain|disable); "
		"VIP BACKEND-ID drain|disable\n");
	for (size_t i = 0; i < o->n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s %u %s\n", o->v[i].vip,
					o->v[i].backend, fp_override_name(o->v[i].what));
	err = fp_lbnode_write_file(path, text);
	free(text);
	return err;
}

static const struct fp_vip_cfg *config_vip(const struct fp_config *cfg, const char *name)
{
	for (size_t v = 0; v < cfg->n_vips; v++)
		if (!strcmp(cfg->vips[v].name, name))
			return &cfg->vips[v];
	return NULL;
}

static bool vip_has(const struct fp_vip_cfg *vip, __u32 id)
{
	for (size_t b = 0; vip && b < vip->n_backends; b++)
		if (vip->backends[b].id == id)
			return true;
	return false;
}

size_t fp_overrides_prune(struct fp_overrides *o, const struct fp_config *cfg,
			  void (*dropped)(const struct fp_override_entry *e, void *arg), void *arg)
{
	size_t kept = 0, n = o->n;

	for (size_t i = 0; i < o->n; i++) {
		if (vip_has(config_vip(cfg, o->v[i].vip), o->v[i].backend)) {
			o->v[kept++] = o->v[i];
			continue;
		}
		if (dropped)
			dropped(&o->v[i], arg);
	}
	o->n = kept;
	return n - kept;
}

/* ---- a whole config ---- */

/* A deep copy that fp_config_free() frees. */
static struct fp_config *config_copy(const struct fp_config *cfg)
{
	struct fp_config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	*c = *cfg;
	c->path = NULL;
	c->lb_sources = NULL;
	c->vips = NULL;
	c->n_vips = 0;
	if (cfg->path && !(c->path = strdup(cfg->path)))
		goto fail;
	if (cfg->n_lb_sources) {
		c->lb_sources = malloc(cfg->n_lb_sources * sizeof(*c->lb_sources));
		if (!c->lb_sources)
			goto fail;
		memcpy(c->lb_sources, cfg->lb_sources, cfg->n_lb_sources * sizeof(*c->lb_sources));
	}
	if (cfg->n_vips) {
		c->vips = calloc(cfg->n_vips, sizeof(*c->vips));
		if (!c->vips)
			goto fail;
	}
	for (size_t v = 0; v < cfg->n_vips; v++) {
		const struct fp_vip_cfg *src = &cfg->vips[v];
		struct fp_vip_cfg *dst = &c->vips[v];

		*dst = *src;
		dst->backends = NULL;
		c->n_vips = v + 1;
		/* Other sites' backends too (fp_config_select_pop()): they follow. */
		size_t n = src->n_backends + src->n_remote;

		if (!n)
			continue;
		dst->backends = malloc(n * sizeof(*dst->backends));
		if (!dst->backends)
			goto fail;
		memcpy(dst->backends, src->backends, n * sizeof(*dst->backends));
	}
	return c;
fail:
	fp_config_free(c);
	return NULL;
}

int fp_effective_config(const struct fp_config *cfg, const struct fp_overrides *o,
			fp_health_up_fn health, void *arg, struct fp_config **out,
			bool *health_ignored)
{
	struct fp_config *c = config_copy(cfg);

	*out = NULL;
	if (!c)
		return -ENOMEM;
	for (size_t v = 0; v < c->n_vips; v++) {
		struct fp_vip_cfg *vip = &c->vips[v];
		struct fp_effective_in *in = calloc(vip->n_backends + 1, sizeof(*in));
		enum fp_backend_state *st = calloc(vip->n_backends + 1, sizeof(*st));
		bool ignored;

		if (!in || !st) {
			free(in);
			free(st);
			fp_config_free(c);
			return -ENOMEM;
		}
		for (size_t b = 0; b < vip->n_backends; b++) {
			in[b].config = vip->backends[b].state;
			in[b].override = fp_overrides_get(o, vip->name, vip->backends[b].id);
			in[b].health_down = health && !health(arg, vip->name, vip->backends[b].id);
		}
		ignored = fp_effective_vip(in, vip->n_backends, st);
		for (size_t b = 0; b < vip->n_backends; b++)
			vip->backends[b].state = st[b];
		if (health_ignored)
			health_ignored[v] = ignored;
		free(in);
		free(st);
	}
	*out = c;
	return 0;
}
