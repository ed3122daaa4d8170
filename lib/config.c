// SPDX-License-Identifier: MIT
/*
 * Config loader: YAML (libyaml document API, so every node keeps its line) to a
 * validated struct fp_config. Reports every problem as "FILE:LINE: FIELD: message" and
 * keeps going, so an operator fixes a file in one round; any problem means no config.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <yaml.h>
#include <flowpin/announce.h>
#include <flowpin/backend.h>
#include <flowpin/bird.h>
#include <flowpin/config.h>
#include <flowpin/text.h>
#include <flowpin/maglev.h>
#include <flowpin/maps.h>
#include <flowpin/siphash.h>
#include <flowpin/ticket.h>
#include <flowpin/wire.h>

#define FIELD_MAX 128

/* One problem; all are printed at the end in line order, however they were found. */
struct problem {
	size_t line;
	size_t seq;
	char *text;
};

_Static_assert(FP_MAX_LB_SOURCES == FP_BACKEND_MAX_LB_SOURCES, "one limit, one value");
_Static_assert(FP_MAX_VIPS == FP_VIP_SLOTS_MAX, "one limit, one value");
_Static_assert(FP_POP_NAME_MAX == FP_POP_NAME_LEN, "one limit, one value");

struct loader {
	const char *path;
	enum fp_config_for use;
	int errors;
	yaml_document_t *doc;
	struct problem *problems;
	size_t n_problems, cap_problems;
	bool out_of_memory;
	const struct fp_health_cfg *fleet_health; /* what each VIP's `health` inherits */
	bool fleet_timeout_given;		  /* the fleet's timeout is not the default */
	const yaml_node_t *bgp_vips;		  /* bgp.vips, resolved once the VIPs are loaded */
	bool allow_example_key;			  /* allow_example_key: true */
	bool bgp_not_a_mapping;			  /* reported: nothing below it to check */
	const struct fp_config *cfg;		  /* its pops, loaded before the VIPs */
	bool pops_given;			  /* the file has `pops` (maybe malformed) */
};

/* Rewrites control characters in @s as \n, \t or \xNN, in place, cutting to fit @size. */
static void escape_controls(char *s, size_t size)
{
	char out[1024];
	size_t o = 0;

	for (const unsigned char *c = (const unsigned char *)s; *c && o + 5 < sizeof(out); c++) {
		if (*c == '\n')
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\n");
		else if (*c == '\t')
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\t");
		else if (*c < 0x20 || *c == 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", *c);
		else
			out[o++] = (char)*c;
	}
	out[o] = '\0';
	if (o >= size)
		o = size - 1;
	memcpy(s, out, o);
	s[o] = '\0';
}

static void vreport(struct loader *ld, bool is_error, size_t line, const char *field,
		    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void vreport(struct loader *ld, bool is_error, size_t line, const char *field,
		    const char *fmt, va_list ap)
{
	char msg[512], safe_field[2 * FIELD_MAX];
	struct problem *p;

	if (is_error)
		ld->errors++;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Values and key names come from the file: keep each problem on one line. */
	escape_controls(msg, sizeof(msg));
	snprintf(safe_field, sizeof(safe_field), "%s", field);
	escape_controls(safe_field, sizeof(safe_field));
	if (ld->n_problems == ld->cap_problems) {
		size_t cap = ld->cap_problems ? 2 * ld->cap_problems : 16;

		p = realloc(ld->problems, cap * sizeof(*p));
		if (!p) {
			ld->out_of_memory = true;
			return;
		}
		ld->problems = p;
		ld->cap_problems = cap;
	}
	p = &ld->problems[ld->n_problems];
	p->line = line;
	p->seq = ld->n_problems;
	if (asprintf(&p->text, "%s:%zu: %s: %s%s", ld->path, line, safe_field,
		     is_error ? "" : "warning: ", msg) < 0) {
		ld->out_of_memory = true;
		return;
	}
	ld->n_problems++;
}

static void report(struct loader *ld, size_t line, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void report(struct loader *ld, size_t line, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ld, true, line, field, fmt, ap);
	va_end(ap);
}

/* A problem that does not stop the load (printed, not counted as an error). */
static void warn(struct loader *ld, size_t line, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void warn(struct loader *ld, size_t line, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ld, false, line, field, fmt, ap);
	va_end(ap);
}

static int by_line(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Prints every problem in file order and forgets them. */
static void flush_problems(struct loader *ld, FILE *err)
{
	if (ld->n_problems) /* qsort(NULL, 0) is undefined behaviour (UBSan says so) */
		qsort(ld->problems, ld->n_problems, sizeof(*ld->problems), by_line);
	for (size_t i = 0; i < ld->n_problems; i++) {
		if (err)
			fprintf(err, "%s\n", ld->problems[i].text);
		free(ld->problems[i].text);
	}
	free(ld->problems);
	ld->problems = NULL;
	ld->n_problems = ld->cap_problems = 0;
}

/*
 * Builds a field path ("vips[1].backends[0].weight") into a FIELD_MAX buffer. Paths are
 * short by construction (fixed key names, indices < 4096), and a cut one is still useful.
 */
static void fieldf(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fieldf(char *dst, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, FIELD_MAX, fmt, ap);
	va_end(ap);
}

static size_t line_of(const yaml_node_t *node)
{
	return node->start_mark.line + 1; /* libyaml counts from 0 */
}

/*
 * A scalar's text, or NULL (and an error naming the expectation) for lists/mappings and
 * for text with a NUL byte ("web\0evil" in double quotes): C strings would silently end
 * at it, so the config would say one thing and flowpin read another.
 */
static const char *scalar(struct loader *ld, const yaml_node_t *node, const char *field,
			  const char *expected)
{
	const char *s;

	if (node->type != YAML_SCALAR_NODE) {
		report(ld, line_of(node), field, "must be %s, got a %s", expected,
		       node->type == YAML_MAPPING_NODE ? "mapping" : "list");
		return NULL;
	}
	s = (const char *)node->data.scalar.value;
	if (strlen(s) != node->data.scalar.length) {
		report(ld, line_of(node), field,
		       "must be %s, got text with a NUL byte ('%s\\0...')", expected, s);
		return NULL;
	}
	return s;
}

/*
 * Unsigned decimal in [min, max]. Only digits: YAML's 0x/0o forms and signs are
 * rejected, so "port: 010" cannot silently mean 8.
 */
static int parse_uint(struct loader *ld, const yaml_node_t *node, const char *field,
		      unsigned long long min, unsigned long long max, unsigned long long *out)
{
	const char *s = scalar(ld, node, field, "an integer");
	unsigned long long v = 0;
	size_t n;

	if (!s)
		return -EINVAL;
	n = strlen(s);
	if (n == 0 || n > 19)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto bad;
		v = v * 10 + (unsigned long long)(s[i] - '0');
	}
	if (v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	/* Numbers unquoted (as in "got 0"), anything else quoted so blanks show. */
	if (n && strspn(s, "0123456789") == n)
		report(ld, line_of(node), field, "must be %llu..%llu, got %s", min, max, s);
	else
		report(ld, line_of(node), field, "must be %llu..%llu, got '%s'", min, max, s);
	return -EINVAL;
}

/*
 * Walks a mapping against a list of known keys: values[i] is the node for keys[i] (or
 * NULL). Unknown and repeated keys are errors. Returns 0, or -EINVAL if @node is not a
 * mapping (then nothing below it can be checked).
 */
static int map_fields(struct loader *ld, const yaml_node_t *node, const char *prefix,
		      const char *const *keys, size_t n_keys, yaml_node_t **values)
{
	char field[FIELD_MAX];

	memset(values, 0, n_keys * sizeof(*values));
	if (node->type != YAML_MAPPING_NODE) {
		report(ld, line_of(node), *prefix ? prefix : "(top level)",
		       "must be a mapping (key: value lines), got a %s",
		       node->type == YAML_SCALAR_NODE ? "scalar" : "list");
		return -EINVAL;
	}
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
		const char *name;
		size_t i;

		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			report(ld, line_of(k), *prefix ? prefix : "(top level)",
			       "keys must be plain names");
			continue;
		}
		name = (const char *)k->data.scalar.value;
		fieldf(field, "%s%s%s", prefix, *prefix ? "." : "", name);
		if (strlen(name) != k->data.scalar.length) {
			report(ld, line_of(k), field, "key with a NUL byte ('%s\\0...')", name);
			continue;
		}
		for (i = 0; i < n_keys; i++)
			if (!strcmp(name, keys[i]))
				break;
		if (i == n_keys) {
			char known[256] = "";

			for (size_t j = 0; j < n_keys; j++) {
				strncat(known, keys[j], sizeof(known) - strlen(known) - 1);
				if (j + 1 < n_keys)
					strncat(known, ", ", sizeof(known) - strlen(known) - 1);
			}
			report(ld, line_of(k), field, "unknown key (known: %s)", known);
			continue;
		}
		if (values[i]) {
			report(ld, line_of(k), field, "duplicate key (first at line %zu)",
			       line_of(values[i]));
			continue;
		}
		values[i] = v;
	}
	return 0;
}

static void missing(struct loader *ld, const yaml_node_t *map, const char *prefix, const char *key)
{
	char field[FIELD_MAX];

	fieldf(field, "%s%s%s", prefix, *prefix ? "." : "", key);
	report(ld, line_of(map), field, "missing (required)");
}

/*
 * Why @a cannot be a VIP or a backend, or NULL when it can. Multicast, broadcast and
 * unspecified addresses are no unicast addresses; loopback and IPv6 link-local ones are,
 * but no packet from another host reaches them (and a link-local one needs a link the
 * config cannot name).
 */
static const char not_unicast[] = "not unicast";

static const char *addr_unusable(const struct fp_addr *a)
{
	static const __u8 zero[16], loopback6[16] = { [15] = 1 };

	if (fp_addr_v4(a)) {
		const __u8 *v4 = a->a + 12;

		if (!memcmp(v4, zero, 4) || (v4[0] & 0xf0) == 0xe0 ||
		    (v4[0] == 0xff && v4[1] == 0xff && v4[2] == 0xff && v4[3] == 0xff))
			return not_unicast;
		if (v4[0] == 127)
			return "is a loopback address: no other host reaches it";
		return NULL;
	}
	if (!memcmp(a->a, zero, 16) || a->a[0] == 0xff)
		return not_unicast;
	if (!memcmp(a->a, loopback6, 16))
		return "is a loopback address: no other host reaches it";
	if (a->a[0] == 0xfe && (a->a[1] & 0xc0) == 0x80)
		return "is link-local: the config cannot say on which link";
	return NULL;
}

/* A unicast address literal of either family that other hosts can reach. */
static int parse_addr(struct loader *ld, const yaml_node_t *node, const char *field,
		      struct fp_addr *out)
{
	const char *s = scalar(ld, node, field, "an IPv4 or IPv6 address");
	const char *why;

	if (!s)
		return -EINVAL;
	if (fp_addr_parse(s, out)) {
		report(ld, line_of(node), field, "not an IPv4 or IPv6 address: '%s'", s);
		return -EINVAL;
	}
	why = addr_unusable(out);
	if (why == not_unicast) {
		report(ld, line_of(node), field, "must be a unicast address, got '%s'", s);
		return -EINVAL;
	}
	if (why) {
		report(ld, line_of(node), field, "'%s' %s", s, why);
		return -EINVAL;
	}
	return 0;
}

/* "ADDR/LEN" or a bare address (host prefix). Host bits must be zero. */
static int parse_prefix(struct loader *ld, const yaml_node_t *node, const char *field,
			struct fp_prefix *out)
{
	const char *s = scalar(ld, node, field, "an address prefix");
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	unsigned long len;
	char *end;
	bool v4;

	if (!s)
		return -EINVAL;
	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	slash = strchr(s, '/');
	if (slash)
		buf[slash - s] = '\0';
	if (fp_addr_parse(buf, &out->addr))
		goto bad;
	v4 = fp_addr_v4(&out->addr);
	len = v4 ? 32 : 128;
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9')
			goto bad;
		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (errno || *end || len > (v4 ? 32UL : 128UL)) {
			report(ld, line_of(node), field, "prefix length must be 0..%d, got '%s'",
			       v4 ? 32 : 128, s);
			return -EINVAL;
		}
	}
	out->len = (__u8)(v4 ? 96 + len : len);
	for (unsigned int bit = out->len; bit < 128; bit++) {
		if (out->addr.a[bit / 8] & (0x80 >> (bit % 8))) {
			report(ld, line_of(node), field,
			       "'%s' has bits set after the prefix length (host bits)", s);
			return -EINVAL;
		}
	}
	return 0;
bad:
	report(ld, line_of(node), field, "not an address or ADDRESS/LENGTH prefix: '%s'", s);
	return -EINVAL;
}

/* One of @names (exact spelling); *out = its index. */
static int parse_enum(struct loader *ld, const yaml_node_t *node, const char *field,
		      const char *const *names, size_t n, int *out)
{
	const char *s = scalar(ld, node, field, "a word");
	char known[128] = "";

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(s, names[i])) {
			*out = (int)i;
			return 0;
		}
		strncat(known, names[i], sizeof(known) - strlen(known) - 1);
		if (i + 1 < n)
			strncat(known, i + 2 == n ? " or " : ", ",
				sizeof(known) - strlen(known) - 1);
	}
	report(ld, line_of(node), field, "must be %s, got '%s'", known, s);
	return -EINVAL;
}

const char *const fp_pinning_names[FP_PIN__COUNT] = {
#define FP_X(name, value, str, maglev, sessions, second_chance, help) [value] = str,
	FP_PINNING_MODES(FP_X)
#undef FP_X
};

const char *const fp_backend_state_names[FP_BACKEND_STATE__COUNT] = {
#define FP_X(name, value, str, help) [value] = str,
	FP_BACKEND_STATES(FP_X)
#undef FP_X
};

const char *fp_pinning_name(enum fp_pinning p)
{
	return (unsigned)p < FP_PIN__COUNT ? fp_pinning_names[p] : "?";
}

const char *fp_backend_state_name(enum fp_backend_state s)
{
	return (unsigned)s < FP_BACKEND_STATE__COUNT ? fp_backend_state_names[s] : "?";
}

static const char *const proto_names[] = { "tcp", "udp" };
static const char *const hash_names[] = { "5-tuple", "addresses" };

enum { B_ID, B_ADDRESS, B_WEIGHT, B_STATE, B_SERVER_ID, B_POP, B_N };
static const char *const backend_keys[B_N] = { "id",	"address",   "weight",
					       "state", "server_id", "pop" };

/* The names of the config's sites, "a, b, c", for messages. */
static void pop_names(const struct fp_config *cfg, char *out, size_t size)
{
	out[0] = '\0';
	for (size_t i = 0; i < cfg->n_pops; i++) {
		if (i)
			strncat(out, ", ", size - strlen(out) - 1);
		strncat(out, cfg->pops[i].name, size - strlen(out) - 1);
	}
}

/* A backend's `pop`: required when the file has `pops`, refused when it has none. */
static void load_backend_pop(struct loader *ld, const yaml_node_t *node, const yaml_node_t *pop,
			     const char *prefix, struct fp_backend_cfg *b)
{
	char field[FIELD_MAX], names[FP_MAX_POPS * (FP_POP_NAME_MAX + 2)];
	const char *s;

	b->pop = -1;
	fieldf(field, "%s.pop", prefix);
	if (!ld->pops_given) {
		if (pop)
			report(ld, line_of(pop), field,
			       "the config has no `pops`: a backend's site is named only in a "
			       "fleet of sites");
		return;
	}
	if (!ld->cfg->n_pops)
		return; /* `pops` itself was refused */
	if (!pop) {
		report(ld, line_of(node), field,
		       "missing (required: the config has `pops`, every backend names its "
		       "site)");
		return;
	}
	s = scalar(ld, pop, field, "a site name");
	if (!s)
		return;
	for (size_t i = 0; i < ld->cfg->n_pops; i++) {
		if (!strcmp(ld->cfg->pops[i].name, s)) {
			b->pop = (int)i;
			return;
		}
	}
	pop_names(ld->cfg, names, sizeof(names));
	report(ld, line_of(pop), field, "no site named '%s' in pops (sites: %s)", s, names);
}

/*
 * One backend. Its server_id is checked by the VIP (check_server_ids()), which knows
 * whether it has quic_lb and the length: *@server_id gets the node, or NULL.
 */
static void load_backend(struct loader *ld, const yaml_node_t *node, const char *prefix,
			 struct fp_backend_cfg *b, yaml_node_t **server_id)
{
	yaml_node_t *v[B_N];
	char field[FIELD_MAX];
	unsigned long long n;
	int e;

	b->weight = 100;
	b->state = FP_BACKEND_ACTIVE;
	b->line = (int)line_of(node);
	*server_id = NULL;
	if (map_fields(ld, node, prefix, backend_keys, B_N, v))
		return;
	*server_id = v[B_SERVER_ID];
	load_backend_pop(ld, node, v[B_POP], prefix, b);
#define F(key) (fieldf(field, "%s.%s", prefix, key), field)
	if (!v[B_ID])
		missing(ld, node, prefix, "id");
	else if (!parse_uint(ld, v[B_ID], F("id"), 1, FP_MAX_BACKEND_ID, &n))
		b->id = (__u32)n;
	if (!v[B_ADDRESS])
		missing(ld, node, prefix, "address");
	else
		parse_addr(ld, v[B_ADDRESS], F("address"), &b->addr);
	if (v[B_WEIGHT] && !parse_uint(ld, v[B_WEIGHT], F("weight"), 1, 65535, &n))
		b->weight = (__u32)n;
	if (v[B_STATE] && !parse_enum(ld, v[B_STATE], F("state"), fp_backend_state_names,
				      FP_BACKEND_STATE__COUNT, &e))
		b->state = (enum fp_backend_state)e;
#undef F
}

/* ---------------------------------------------------------------------------------- */
/* health: fleet-wide at the top level, per VIP inheriting it field by field           */

const char *const fp_check_kind_names[FP_CHECK_KIND__COUNT] = {
#define FP_X(name, value, str) [value] = str,
	FP_CHECK_KINDS(FP_X)
#undef FP_X
};

const char *fp_check_kind_name(enum fp_check_kind k)
{
	return (unsigned)k < FP_CHECK_KIND__COUNT ? fp_check_kind_names[k] : "?";
}

int fp_duration_parse(const char *s, __u64 *ms)
{
	size_t digits = strspn(s, "0123456789");
	unsigned long long v = 0, scale = 1000;

	if (digits == 0 || digits > 10)
		return -EINVAL;
	if (!strcmp(s + digits, "ms"))
		scale = 1;
	else if (!strcmp(s + digits, "m"))
		scale = 60 * 1000;
	else if (!strcmp(s + digits, "h"))
		scale = 3600 * 1000;
	else if (strcmp(s + digits, "s") && s[digits])
		return -EINVAL;
	for (size_t i = 0; i < digits; i++)
		v = v * 10 + (unsigned long long)(s[i] - '0');
	*ms = v * scale;
	return 0;
}

/* A duration (fp_duration_parse()) in [min_ms, max_ms]. *out in milliseconds. */
static int parse_duration(struct loader *ld, const yaml_node_t *node, const char *field,
			  __u32 min_ms, __u32 max_ms, __u32 *out)
{
	const char *s = scalar(ld, node, field, "a duration");
	__u64 v;

	if (!s)
		return -EINVAL;
	if (fp_duration_parse(s, &v) || v < min_ms || v > max_ms)
		goto bad;
	*out = (__u32)v;
	return 0;
bad:
	report(ld, line_of(node), field,
	       "must be a duration of %ums..%us (\"2\" or \"2s\" = seconds, \"500ms\", "
	       "\"10m\", \"1h\"), got '%s'",
	       min_ms, max_ms / 1000, s);
	return -EINVAL;
}

/* An HTTP path: '/' then visible ASCII (no blanks: it goes into the request line). */
static bool http_path_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= FP_CHECK_PATH_MAX || s[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

/* A DNS name for the Host header and TLS: letters, digits, '-' and '.', 1..253. */
static bool host_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= FP_CHECK_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
	}
	return true;
}

enum { K_KIND, K_PORT, K_PATH, K_STATUS, K_HOST, K_N };
static const char *const check_keys[K_N] = { "kind", "port", "path", "status", "host" };

/* One check; port 0 = the VIP's port (resolved per VIP). Returns 0 if it is usable. */
static int load_check(struct loader *ld, const yaml_node_t *node, const char *prefix,
		      struct fp_check_cfg *c)
{
	yaml_node_t *v[K_N];
	char field[FIELD_MAX];
	unsigned long long n;
	int e, errors = ld->errors;
	const char *s;

	memset(c, 0, sizeof(*c));
	c->status = 200;
	strcpy(c->path, "/");
	c->line = (int)line_of(node);
	if (map_fields(ld, node, prefix, check_keys, K_N, v))
		return -EINVAL;
#define F(key) (fieldf(field, "%s.%s", prefix, key), field)
	if (!v[K_KIND]) {
		missing(ld, node, prefix, "kind");
		return -EINVAL;
	}
	if (parse_enum(ld, v[K_KIND], F("kind"), fp_check_kind_names, FP_CHECK_KIND__COUNT, &e))
		return -EINVAL;
	c->kind = (enum fp_check_kind)e;
	if (v[K_PORT]) {
		if (c->kind == FP_CHECK_TUNNEL)
			report(ld, line_of(v[K_PORT]), F("port"),
			       "a tunnel check goes to encap_port; it takes no port");
		else if (!parse_uint(ld, v[K_PORT], F("port"), 1, 65535, &n))
			c->port = (__u16)n;
	}
	for (int k = K_PATH; k <= K_HOST; k++) {
		if (v[k] && c->kind != FP_CHECK_HTTP && c->kind != FP_CHECK_HTTPS)
			report(ld, line_of(v[k]), F(check_keys[k]),
			       "only for http and https checks, this one is %s",
			       fp_check_kind_name(c->kind));
	}
	if (c->kind == FP_CHECK_HTTP || c->kind == FP_CHECK_HTTPS) {
		if (v[K_PATH] && (s = scalar(ld, v[K_PATH], F("path"), "a path"))) {
			if (http_path_ok(s))
				strcpy(c->path, s);
			else
				report(ld, line_of(v[K_PATH]), field,
				       "must start with '/' and be 1..%d visible ASCII "
				       "characters (no blanks), got '%s'",
				       FP_CHECK_PATH_MAX - 1, s);
		}
		if (v[K_STATUS] && !parse_uint(ld, v[K_STATUS], F("status"), 100, 599, &n))
			c->status = (__u16)n;
		if (v[K_HOST] && (s = scalar(ld, v[K_HOST], F("host"), "a host name"))) {
			if (host_name_ok(s))
				strcpy(c->host, s);
			else
				report(ld, line_of(v[K_HOST]), field,
				       "must be a host name of 1..%d letters, digits, '-' and "
				       "'.', got '%s'",
				       FP_CHECK_HOST_MAX - 1, s);
		}
	}
#undef F
	return ld->errors == errors ? 0 : -EINVAL;
}

enum { H_INTERVAL, H_TIMEOUT, H_RISE, H_FALL, H_CHECKS, H_N };
static const char *const health_keys[H_N] = { "interval", "timeout", "rise", "fall", "checks" };

/*
 * A `health` mapping over @h (the defaults, or the fleet's for a VIP): the fields it
 * names replace @h's; `checks` replaces the whole list (`checks: []`: none). Sets
 * *checks_given when it names its own checks. A timeout no level gave (*timeout_given
 * false) is the default, cut to the interval when that is shorter.
 */
static void load_health(struct loader *ld, const yaml_node_t *node, const char *prefix,
			struct fp_health_cfg *h, bool *checks_given, bool *timeout_given)
{
	yaml_node_t *v[H_N];
	char field[FIELD_MAX];
	unsigned long long n;

	*checks_given = false;
	h->line = (int)line_of(node);
	if (map_fields(ld, node, prefix, health_keys, H_N, v))
		return;
#define F(key) (fieldf(field, "%s.%s", prefix, key), field)
	if (v[H_INTERVAL])
		parse_duration(ld, v[H_INTERVAL], F("interval"), FP_MIN_HEALTH_INTERVAL,
			       FP_MAX_HEALTH_INTERVAL, &h->interval_ms);
	if (v[H_TIMEOUT]) {
		*timeout_given = true;
		parse_duration(ld, v[H_TIMEOUT], F("timeout"), FP_MIN_HEALTH_TIMEOUT,
			       FP_MAX_HEALTH_INTERVAL, &h->timeout_ms);
	} else if (!*timeout_given && h->timeout_ms > h->interval_ms) {
		h->timeout_ms = h->interval_ms; /* the default timeout, in a short interval */
	}
	if (v[H_RISE] && !parse_uint(ld, v[H_RISE], F("rise"), 1, FP_MAX_HEALTH_COUNT, &n))
		h->rise = (__u32)n;
	if (v[H_FALL] && !parse_uint(ld, v[H_FALL], F("fall"), 1, FP_MAX_HEALTH_COUNT, &n))
		h->fall = (__u32)n;
	/* A probe still running when the next one starts would be counted twice. */
	if ((v[H_INTERVAL] || v[H_TIMEOUT]) && h->timeout_ms > h->interval_ms)
		report(ld, line_of(v[H_TIMEOUT] ? v[H_TIMEOUT] : v[H_INTERVAL]),
		       v[H_TIMEOUT] ? F("timeout") : F("interval"),
		       "timeout (%ums) must not exceed interval (%ums)", h->timeout_ms,
		       h->interval_ms);
	if (v[H_CHECKS]) {
		yaml_node_t *list = v[H_CHECKS];
		yaml_node_item_t *items;
		size_t count;

		fieldf(field, "%s.checks", prefix);
		*checks_given = true;
		h->n_checks = 0;
		if (list->type != YAML_SEQUENCE_NODE) {
			report(ld, line_of(list), field, "must be a list of checks");
			return;
		}
		items = list->data.sequence.items.start;
		count = (size_t)(list->data.sequence.items.top - items);
		if (count > FP_MAX_CHECKS) {
			report(ld, line_of(list), field, "at most %d checks, got %zu",
			       FP_MAX_CHECKS, count);
			return;
		}
		for (size_t i = 0; i < count; i++) {
			char cprefix[FIELD_MAX];

			fieldf(cprefix, "%s.checks[%zu]", prefix, i);
			if (!load_check(ld, yaml_document_get_node(ld->doc, items[i]), cprefix,
					&h->checks[h->n_checks]))
				h->n_checks++;
		}
	}
#undef F
}

/*
 * A VIP's checks: the fleet's, overridden by its own `health`; a check without a port
 * probes the VIP's port, which a VIP of every port (port 0) does not have.
 */
static void load_vip_health(struct loader *ld, const yaml_node_t *node, const char *prefix,
			    struct fp_vip_cfg *vip, size_t vip_index)
{
	struct fp_health_cfg *h = &vip->health;
	bool own_checks = false;
	char field[FIELD_MAX];

	*h = *ld->fleet_health;
	if (!ld->fleet_health->line)
		h->line = vip->line;
	if (node) {
		bool timeout_given = ld->fleet_timeout_given;

		load_health(ld, node, prefix, h, &own_checks, &timeout_given);
	}
	for (size_t i = 0; i < h->n_checks; i++) {
		struct fp_check_cfg *c = &h->checks[i];

		if (c->kind == FP_CHECK_TUNNEL || c->port)
			continue;
		if (vip->port) {
			c->port = vip->port;
			continue;
		}
		if (own_checks) {
			fieldf(field, "%s.checks[%zu].port", prefix, i);
			report(ld, (size_t)c->line, field,
			       "required: the VIP serves every port (port 0), so a %s check "
			       "must name the port it probes",
			       fp_check_kind_name(c->kind));
		} else {
			fieldf(field, "health.checks[%zu].port", i);
			report(ld, (size_t)c->line, field,
			       "required: vips[%zu] (%s) serves every port (port 0) and inherits "
			       "this %s check; give it a port, or give the VIP its own checks",
			       vip_index, vip->name, fp_check_kind_name(c->kind));
		}
	}
}

enum {
	V_NAME,
	V_ADDRESS,
	V_PORT,
	V_PROTOCOL,
	V_PINNING,
	V_HASH,
	V_BACKENDS,
	V_HEALTH,
	V_TICKETS,
	V_QUIC_LB,
	V_N
};
static const char *const vip_keys[V_N] = { "name", "address",  "port",	 "protocol", "pinning",
					   "hash", "backends", "health", "tickets",  "quic_lb" };

enum { TK_BITS, TK_N };
static const char *const ticket_keys[TK_N] = { "bits" };

/*
 * tickets: {bits: K} (TCP VIPs only; `{}` = the defaults). Sets vip->ticket_bits; the
 * backend ids are checked against 2^K once they are loaded (check_ticket_ids).
 */
static void load_tickets(struct loader *ld, const yaml_node_t *node, const char *prefix,
			 struct fp_vip_cfg *vip, bool proto_known)
{
	yaml_node_t *t[TK_N];
	char field[FIELD_MAX];
	unsigned long long n;

	fieldf(field, "%s.tickets", prefix);
	vip->tickets_line = (int)line_of(node);
	if (proto_known && vip->proto != IPPROTO_TCP) {
		report(ld, line_of(node), field,
		       "TCP VIPs only (the ticket travels in the TCP timestamp option)");
		return;
	}
	if (map_fields(ld, node, field, ticket_keys, TK_N, t))
		return;
	vip->ticket_bits = FP_TICKET_DEFAULT_BITS;
	fieldf(field, "%s.tickets.bits", prefix);
	if (t[TK_BITS] &&
	    !parse_uint(ld, t[TK_BITS], field, FP_TICKET_MIN_BITS, FP_TICKET_MAX_BITS, &n))
		vip->ticket_bits = (__u8)n;
}

/* A ticket names a backend by its id in K bits: every id of a ticket VIP is < 2^K. */
static void check_ticket_ids(struct loader *ld, const struct fp_vip_cfg *vip, const char *prefix)
{
	char field[FIELD_MAX];

	if (!vip->ticket_bits)
		return;
	for (size_t i = 0; i < vip->n_backends; i++) {
		const struct fp_backend_cfg *b = &vip->backends[i];

		if (b->id >> vip->ticket_bits) {
			fieldf(field, "%s.backends[%zu].id", prefix, i);
			report(ld, (size_t)b->line, field,
			       "%u does not fit a ticket of %u bits (tickets.bits)", b->id,
			       vip->ticket_bits);
		}
	}
}

/* ---------------------------------------------------------------------------------- */
/* quic_lb: QUIC-LB connection IDs (flowpin/quiclb.h, docs/quic-lb.md)                 */

enum { Q_CONFIG_ID, Q_SERVER_ID_LEN, Q_NONCE_LEN, Q_KEY, Q_N };
static const char *const quic_lb_keys[Q_N] = { "config_id", "server_id_len", "nonce_len", "key" };

/*
 * A VIP's quic_lb, with the draft's limits (include/flowpin/quiclb.h). A bad
 * server_id_len stays 0, and the backends' server_id are then not checked against it.
 */
static void load_quic_lb(struct loader *ld, const yaml_node_t *node, const char *prefix,
			 struct fp_vip_cfg *vip)
{
	struct fp_quiclb_cfg *q = &vip->quic_lb;
	yaml_node_t *v[Q_N];
	char field[FIELD_MAX];
	unsigned long long n;
	const char *s;

	vip->quic_lb_line = (int)line_of(node);
	if (map_fields(ld, node, prefix, quic_lb_keys, Q_N, v))
		return;
	vip->has_quic_lb = true;
#define F(key) (fieldf(field, "%s.%s", prefix, key), field)
	if (vip->proto && vip->proto != IPPROTO_UDP)
		report(ld, line_of(node), prefix,
		       "only for UDP VIPs (QUIC runs over UDP), this VIP's protocol is tcp");
	if (v[Q_CONFIG_ID] && v[Q_CONFIG_ID]->type == YAML_SCALAR_NODE &&
	    !strcmp((const char *)v[Q_CONFIG_ID]->data.scalar.value, "7"))
		report(ld, line_of(v[Q_CONFIG_ID]), F("config_id"),
		       "must be 0..%d, got 7 (0b111 marks unroutable connection IDs)",
		       FP_QUICLB_MAX_CONFIG_ID);
	else if (v[Q_CONFIG_ID] &&
		 !parse_uint(ld, v[Q_CONFIG_ID], F("config_id"), 0, FP_QUICLB_MAX_CONFIG_ID, &n))
		q->config_id = (__u8)n;
	if (!v[Q_SERVER_ID_LEN])
		missing(ld, node, prefix, "server_id_len");
	else if (!parse_uint(ld, v[Q_SERVER_ID_LEN], F("server_id_len"), FP_QUICLB_MIN_SID,
			     FP_QUICLB_MAX_SID, &n))
		q->server_id_len = (__u8)n;
	if (!v[Q_NONCE_LEN])
		missing(ld, node, prefix, "nonce_len");
	else if (!parse_uint(ld, v[Q_NONCE_LEN], F("nonce_len"), FP_QUICLB_MIN_NONCE,
			     FP_QUICLB_MAX_NONCE, &n))
		q->nonce_len = (__u8)n;
	if (q->server_id_len && q->nonce_len &&
	    q->server_id_len + q->nonce_len > FP_QUICLB_MAX_PLAINTEXT)
		report(ld, line_of(v[Q_NONCE_LEN]), F("nonce_len"),
		       "server_id_len + nonce_len must be at most %d (a QUIC v1 connection ID is "
		       "at most %d octets with the first), got %u + %u",
		       FP_QUICLB_MAX_PLAINTEXT, FP_QUICLB_MAX_CID, q->server_id_len, q->nonce_len);
	if (v[Q_KEY] && (s = scalar(ld, v[Q_KEY], F("key"), "32 hex digits"))) {
		if (fp_hex_parse(s, q->key, sizeof(q->key)))
			report(ld, line_of(v[Q_KEY]), field,
			       "must be 32 hex digits (an AES-128 key), got '%s' (%zu characters)",
			       s, strlen(s));
		else
			q->encrypted = true;
	}
#undef F
}

static int by_server_id(const void *a, const void *b)
{
	const struct fp_backend_cfg *const *x = a, *const *y = b;
	int c = memcmp((*x)->server_id, (*y)->server_id, sizeof((*x)->server_id));

	return c ? c : (*x < *y ? -1 : *x > *y);
}

/*
 * Backends' server_id: required on every backend of a quic_lb VIP, exactly
 * server_id_len octets in hex, unique within the VIP (the LB maps it back to one
 * backend); an error on any other VIP. @nodes[i]: backends[i]'s server_id or NULL.
 */
static int check_server_ids(struct loader *ld, struct fp_vip_cfg *vip, const char *prefix,
			    yaml_node_t *const *nodes, const yaml_node_t *quic_lb)
{
	size_t n = vip->n_backends, n_sorted = 0, len = vip->quic_lb.server_id_len;
	char field[FIELD_MAX], hex[2 * FP_QUICLB_MAX_SID + 1];
	const struct fp_backend_cfg **sorted;
	const char *s;

	sorted = calloc(n ? n : 1, sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct fp_backend_cfg *b = &vip->backends[i];

		fieldf(field, "%s.backends[%zu].server_id", prefix, i);
		if (!nodes[i]) {
			if (vip->has_quic_lb)
				report(ld, (size_t)b->line, field,
				       "missing (required: the VIP has quic_lb, line %d)",
				       vip->quic_lb_line);
			continue;
		}
		if (!quic_lb) {
			report(ld, line_of(nodes[i]), field,
			       "only for backends of a VIP with quic_lb");
			continue;
		}
		if (!vip->has_quic_lb || !len)
			continue; /* quic_lb itself is wrong: reported there */
		s = scalar(ld, nodes[i], field, "hex digits");
		if (!s)
			continue;
		if (fp_hex_parse(s, b->server_id, len)) {
			memset(b->server_id, 0, sizeof(b->server_id));
			report(ld, line_of(nodes[i]), field,
			       "must be %zu octet%s in hex (%zu digits, quic_lb.server_id_len), "
			       "got '%s'",
			       len, len == 1 ? "" : "s", 2 * len, s);
			continue;
		}
		sorted[n_sorted++] = b;
	}
	/* Each repeat once, against the first backend with that server_id. */
	if (n_sorted)
		qsort(sorted, n_sorted, sizeof(*sorted), by_server_id);
	for (size_t i = 1, first = 0; i < n_sorted; i++) {
		const struct fp_backend_cfg *b = sorted[i], *o = sorted[first];

		if (memcmp(b->server_id, o->server_id, sizeof(b->server_id))) {
			first = i;
			continue;
		}
		size_t bi = (size_t)(b - vip->backends), oi = (size_t)(o - vip->backends);

		fp_hex(b->server_id, len, hex);
		fieldf(field, "%s.backends[%zu].server_id", prefix, bi);
		report(ld, line_of(nodes[bi]), field,
		       "duplicate server_id %s (also backends[%zu], line %zu)", hex, oi,
		       line_of(nodes[oi]));
	}
	free(sorted);
	return 0;
}

/* 1..max-1 of A-Z a-z 0-9 . _ - */
static bool name_fits(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static bool name_ok(const char *s)
{
	return name_fits(s, FP_NAME_MAX);
}

static int by_address(const void *a, const void *b)
{
	const struct fp_backend_cfg *const *x = a, *const *y = b;
	int c = memcmp(&(*x)->addr, &(*y)->addr, sizeof((*x)->addr));

	return c ? c : (*x < *y ? -1 : *x > *y);
}

/*
 * Ids name backends in tables and maps; addresses are where packets go. Each repeat is
 * reported once, against the first backend with that id or address. Linear in the
 * number of backends for ids (a table indexed by id), n log n for addresses (sorted
 * pointers): a file of thousands of backends is checked at once.
 */
static int check_backend_repeats(struct loader *ld, const struct fp_vip_cfg *vip,
				 const char *prefix)
{
	static const struct fp_addr none;
	size_t first_with_id[FP_MAX_BACKEND_ID + 1];
	const struct fp_backend_cfg **sorted;
	char field[FIELD_MAX], buf[INET6_ADDRSTRLEN];
	size_t n = vip->n_backends, n_sorted = 0;

	for (size_t id = 0; id <= FP_MAX_BACKEND_ID; id++)
		first_with_id[id] = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		const struct fp_backend_cfg *b = &vip->backends[i];
		size_t j;

		if (!b->id || b->id > FP_MAX_BACKEND_ID)
			continue; /* missing or out of range: reported already */
		j = first_with_id[b->id];
		if (j == SIZE_MAX) {
			first_with_id[b->id] = i;
			continue;
		}
		fieldf(field, "%s.backends[%zu].id", prefix, i);
		report(ld, (size_t)b->line, field, "duplicate id %u (also backends[%zu], line %d)",
		       b->id, j, vip->backends[j].line);
	}

	sorted = calloc(n ? n : 1, sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (memcmp(&vip->backends[i].addr, &none, sizeof(none)))
			sorted[n_sorted++] = &vip->backends[i];
	if (n_sorted)
		qsort(sorted, n_sorted, sizeof(*sorted), by_address);
	for (size_t i = 1, first = 0; i < n_sorted; i++) {
		const struct fp_backend_cfg *b = sorted[i], *o = sorted[first];

		if (memcmp(&b->addr, &o->addr, sizeof(b->addr))) {
			first = i;
			continue;
		}
		fieldf(field, "%s.backends[%zu].address", prefix, (size_t)(b - vip->backends));
		report(ld, (size_t)b->line, field,
		       "duplicate address %s (also backends[%zu], line %d)",
		       fp_addr_str(&b->addr, buf, sizeof(buf)), (size_t)(o - vip->backends),
		       o->line);
	}
	free(sorted);
	return 0;
}

static int load_vip(struct loader *ld, const yaml_node_t *node, const char *prefix,
		    struct fp_vip_cfg *vip, size_t vip_index)
{
	yaml_node_t *v[V_N];
	char field[FIELD_MAX];
	unsigned long long n;
	const char *s;
	int e;

	vip->pinning = FP_PIN_FULL;
	vip->line = (int)line_of(node);
	if (map_fields(ld, node, prefix, vip_keys, V_N, v))
		return 0;
#define F(key) (fieldf(field, "%s.%s", prefix, key), field)
	if (!v[V_NAME]) {
		missing(ld, node, prefix, "name");
	} else if ((s = scalar(ld, v[V_NAME], F("name"), "a name"))) {
		if (name_ok(s))
			strcpy(vip->name, s);
		else
			report(ld, line_of(v[V_NAME]), field,
			       "must be 1..%d characters of A-Z a-z 0-9 . _ -, got '%s'",
			       FP_NAME_MAX - 1, s);
	}
	if (!v[V_ADDRESS])
		missing(ld, node, prefix, "address");
	else
		parse_addr(ld, v[V_ADDRESS], F("address"), &vip->addr);
	if (!v[V_PORT]) {
		missing(ld, node, prefix, "port");
	} else if (v[V_PORT]->type == YAML_SCALAR_NODE && v[V_PORT]->data.scalar.length == 3 &&
		   !memcmp(v[V_PORT]->data.scalar.value, "all", 3)) {
		vip->port = 0;
	} else if (!parse_uint(ld, v[V_PORT], F("port"), 0, 65535, &n)) {
		vip->port = (__u16)n;
	}
	if (!v[V_PROTOCOL])
		missing(ld, node, prefix, "protocol");
	else if (!parse_enum(ld, v[V_PROTOCOL], F("protocol"), proto_names, 2, &e))
		vip->proto = e == 0 ? IPPROTO_TCP : IPPROTO_UDP;
	if (v[V_PINNING] &&
	    !parse_enum(ld, v[V_PINNING], F("pinning"), fp_pinning_names, FP_PIN__COUNT, &e))
		vip->pinning = (enum fp_pinning)e;
	if (v[V_HASH] && !parse_enum(ld, v[V_HASH], F("hash"), hash_names, 2, &e)) {
		vip->hash_addresses_only = e == 1;
		if (vip->hash_addresses_only && vip->port != 0)
			report(ld, line_of(v[V_HASH]), field,
			       "'addresses' is only allowed with port 0 (all ports), port is %u",
			       vip->port);
	}
	fieldf(field, "%s.health", prefix);
	load_vip_health(ld, v[V_HEALTH], field, vip, vip_index);
	if (v[V_TICKETS])
		load_tickets(ld, v[V_TICKETS], prefix, vip, v[V_PROTOCOL] && vip->proto);
	if (v[V_QUIC_LB]) {
		fieldf(field, "%s.quic_lb", prefix);
		load_quic_lb(ld, v[V_QUIC_LB], field, vip);
	}
	if (!v[V_BACKENDS]) {
		missing(ld, node, prefix, "backends");
		return 0;
	}
	fieldf(field, "%s.backends", prefix);
	if (v[V_BACKENDS]->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(v[V_BACKENDS]), field, "must be a list of backends");
		return 0;
	}
	yaml_node_item_t *items = v[V_BACKENDS]->data.sequence.items.start;
	size_t count = (size_t)(v[V_BACKENDS]->data.sequence.items.top - items);

	if (count == 0) {
		report(ld, line_of(v[V_BACKENDS]), field,
		       "empty: a VIP needs at least one backend");
		return 0;
	}
	if (count > FP_MAX_BACKEND_ID) {
		report(ld, line_of(v[V_BACKENDS]), field,
		       "at most %d backends (ids are 1..%d), got %zu", FP_MAX_BACKEND_ID,
		       FP_MAX_BACKEND_ID, count);
		return 0;
	}
	vip->backends = calloc(count, sizeof(*vip->backends));
	if (!vip->backends)
		return -ENOMEM;
	vip->n_backends = count;
	yaml_node_t **server_ids = calloc(count, sizeof(*server_ids));
	int ret;

	if (!server_ids)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		char bprefix[FIELD_MAX];

		fieldf(bprefix, "%s.backends[%zu]", prefix, i);
		load_backend(ld, yaml_document_get_node(ld->doc, items[i]), bprefix,
			     &vip->backends[i], &server_ids[i]);
	}
#undef F
	check_ticket_ids(ld, vip, prefix);
	ret = check_server_ids(ld, vip, prefix, server_ids, v[V_QUIC_LB]);
	free(server_ids);
	return ret ? ret : check_backend_repeats(ld, vip, prefix);
}

/* Smallest prime >= n (for a helpful suggestion). */
static __u32 next_prime(__u32 n)
{
	while (n < UINT32_MAX && !fp_is_prime(n))
		n++;
	return n;
}

enum { T_ESTABLISHED, T_TRANSITORY, T_UDP, T_N };
static const char *const timeout_keys[T_N] = { "tcp_established", "tcp_transitory", "udp" };

enum { S_ENTRIES, S_NEW_FLOW_RATE, S_N };
static const char *const session_keys[S_N] = { "entries", "new_flow_rate" };

enum {
	C_HASH_KEY,
	C_ALLOW_EXAMPLE_KEY,
	C_TABLE_SIZE,
	C_ENCAP_PORT,
	C_TIMEOUTS,
	C_LB_SOURCES,
	C_VIPS,
	C_HEALTH,
	C_BGP,
	C_SESSIONS,
	C_TABLE_CONSTRUCTION,
	C_SHARE_TOLERANCE,
	C_POPS,
	C_N
};
static const char *const top_keys[C_N] = { "hash_key",
					   "allow_example_key",
					   "table_size",
					   "encap_port",
					   "timeouts",
					   "lb_sources",
					   "vips",
					   "health",
					   "bgp",
					   "sessions",
					   "table_construction",
					   "share_tolerance",
					   "pops" };

enum { P_NAME, P_LBS, P_N };
static const char *const pop_keys[P_N] = { "name", "lbs" };

/* A site's name: 1..31 of A-Z a-z 0-9 . _ - (its maps and messages hold 32 bytes). */
static bool pop_name_ok(const char *s)
{
	return name_fits(s, FP_POP_NAME_MAX);
}

/*
 * `pops`: the fleet's sites, each with every LB node address of it (the outer
 * destination of cross-site hops to it and the only accepted outer source of hops from
 * it). Names unique; an address belongs to one site only.
 */
static void load_pops(struct loader *ld, const yaml_node_t *node, struct fp_config *cfg)
{
	yaml_node_item_t *items;
	size_t count;
	char field[FIELD_MAX], prefix[FIELD_MAX], buf[INET6_ADDRSTRLEN];

	ld->pops_given = true;
	if (node->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(node), "pops", "must be a list of sites");
		return;
	}
	items = node->data.sequence.items.start;
	count = (size_t)(node->data.sequence.items.top - items);
	if (count == 0 || count > FP_MAX_POPS) {
		report(ld, line_of(node), "pops", "1..%d sites, got %zu", FP_MAX_POPS, count);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const yaml_node_t *item = yaml_document_get_node(ld->doc, items[i]);
		struct fp_pop_cfg *pop = &cfg->pops[i];
		yaml_node_t *v[P_N];
		const char *s;

		fieldf(prefix, "pops[%zu]", i);
		pop->line = (int)line_of(item);
		if (map_fields(ld, item, prefix, pop_keys, P_N, v))
			continue;
		fieldf(field, "%s.name", prefix);
		if (!v[P_NAME]) {
			missing(ld, item, prefix, "name");
		} else if ((s = scalar(ld, v[P_NAME], field, "a site name"))) {
			if (!pop_name_ok(s)) {
				report(ld, line_of(v[P_NAME]), field,
				       "must be 1..%d characters of A-Z a-z 0-9 . _ -, got '%s'",
				       FP_POP_NAME_MAX - 1, s);
			} else {
				for (size_t j = 0; j < i; j++) {
					if (!strcmp(cfg->pops[j].name, s)) {
						report(ld, line_of(v[P_NAME]), field,
						       "duplicate site '%s' (also pops[%zu], line "
						       "%d)",
						       s, j, cfg->pops[j].line);
						break;
					}
				}
				strcpy(pop->name, s);
			}
		}
		fieldf(field, "%s.lbs", prefix);
		if (!v[P_LBS]) {
			missing(ld, item, prefix, "lbs");
			continue;
		}
		if (v[P_LBS]->type != YAML_SEQUENCE_NODE) {
			report(ld, line_of(v[P_LBS]), field, "must be a list of addresses");
			continue;
		}
		yaml_node_item_t *addrs = v[P_LBS]->data.sequence.items.start;
		size_t n = (size_t)(v[P_LBS]->data.sequence.items.top - addrs);

		if (n == 0 || n > FP_MAX_POP_LBS) {
			report(ld, line_of(v[P_LBS]), field, "1..%d LB node addresses, got %zu",
			       FP_MAX_POP_LBS, n);
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			const yaml_node_t *a = yaml_document_get_node(ld->doc, addrs[k]);
			struct fp_addr addr;
			bool repeat = false;

			fieldf(field, "%s.lbs[%zu]", prefix, k);
			if (parse_addr(ld, a, field, &addr))
				continue;
			/* One site per address: it is how a receiving LB knows the sender. */
			for (size_t j = 0; j <= i && !repeat; j++) {
				for (size_t l = 0; l < cfg->pops[j].n_lbs && !repeat; l++) {
					if (memcmp(&cfg->pops[j].lbs[l], &addr, sizeof(addr)))
						continue;
					repeat = true;
					report(ld, line_of(a), field,
					       "duplicate LB address %s (also pops[%zu] '%s', line "
					       "%d)",
					       fp_addr_str(&addr, buf, sizeof(buf)), j,
					       cfg->pops[j].name, cfg->pops[j].line);
				}
			}
			if (!repeat) {
				pop->lb_lines[pop->n_lbs] = (int)line_of(a);
				pop->lbs[pop->n_lbs++] = addr;
			}
		}
	}
	cfg->n_pops = count;
}

/* An LB address that is also a VIP: cross-site hops to it would be taken for traffic
 * to the VIP (and dropped, drop_gue_to_vip). */
static void check_pop_addresses(struct loader *ld, const struct fp_config *cfg)
{
	char field[FIELD_MAX], buf[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < cfg->n_pops; i++) {
		for (size_t k = 0; k < cfg->pops[i].n_lbs; k++) {
			for (size_t v = 0; v < cfg->n_vips; v++) {
				if (memcmp(&cfg->vips[v].addr, &cfg->pops[i].lbs[k],
					   sizeof(struct fp_addr)))
					continue;
				fieldf(field, "pops[%zu].lbs", i);
				report(ld, (size_t)cfg->pops[i].lb_lines[k], field,
				       "%s is the address of vips[%zu] (%s, line %d): an LB "
				       "node's cross-site address cannot be a VIP",
				       fp_addr_str(&cfg->pops[i].lbs[k], buf, sizeof(buf)), v,
				       cfg->vips[v].name, cfg->vips[v].line);
				break;
			}
		}
	}
}

/*
 * Keys published with flowpin: the example's (also the SipHash paper's test key) and the
 * lab's. Whoever knows the key can aim flows at one backend, so an LB node refuses them
 * unless the file says allow_example_key: true (labs and tests).
 */
static const char *const published_keys[] = {
	"000102030405060708090a0b0c0d0e0f", /* examples/flowpin.yaml, tests */
	"0123456789abcdef0123456789abcdef", /* lab/lablib.py */
	"00000000000000000000000000000000", /* a placeholder, not a key */
};

static bool is_published_key(const struct fp_hash_key *key)
{
	for (size_t i = 0; i < sizeof(published_keys) / sizeof(published_keys[0]); i++) {
		struct fp_hash_key k;

		if (!fp_hash_key_parse(published_keys[i], &k) && k.k0 == key->k0 && k.k1 == key->k1)
			return true;
	}
	return false;
}

static int parse_bool(struct loader *ld, const yaml_node_t *node, const char *field, bool *out)
{
	static const char *const names[] = { "false", "true" };
	int e;

	if (parse_enum(ld, node, field, names, 2, &e))
		return -EINVAL;
	*out = e == 1;
	return 0;
}

/*
 * hash_key: required on LB nodes, not a published key there unless allowed; optional on
 * backends (they never hash), but checked when present.
 */
static void load_hash_key(struct loader *ld, const yaml_node_t *root, yaml_node_t *const *v,
			  struct fp_config *cfg)
{
	bool allow = false;
	const char *s;

	if (v[C_ALLOW_EXAMPLE_KEY])
		parse_bool(ld, v[C_ALLOW_EXAMPLE_KEY], "allow_example_key", &allow);
	ld->allow_example_key = allow;
	if (!v[C_HASH_KEY]) {
		if (ld->use & FP_CONFIG_FOR_LB)
			missing(ld, root, "", "hash_key");
		return;
	}
	s = scalar(ld, v[C_HASH_KEY], "hash_key", "32 hex digits");
	if (!s)
		return;
	if (fp_hash_key_parse(s, &cfg->hash_key)) {
		report(ld, line_of(v[C_HASH_KEY]), "hash_key",
		       "must be 32 hex digits (128 bits), got '%s' (%zu characters)", s, strlen(s));
		return;
	}
	cfg->have_hash_key = true;
	if ((ld->use & FP_CONFIG_FOR_LB) && !allow && is_published_key(&cfg->hash_key))
		report(ld, line_of(v[C_HASH_KEY]), "hash_key",
		       "is a key published with flowpin (the example's or the lab's): whoever "
		       "knows it can aim flows at one backend; generate one with "
		       "'od -An -tx1 -N16 /dev/urandom | tr -d \" \\n\"' (a lab or test may "
		       "set allow_example_key: true)");
}

/*
 * A backend with a ticket VIP keys its tickets under hash_key (flowpin/ticket.h): it
 * needs one, and a published one would let anybody read and forge tickets. An LB node
 * checks the same in load_hash_key().
 */
static void check_ticket_key(struct loader *ld, const yaml_node_t *root, yaml_node_t *const *v,
			     const struct fp_config *cfg)
{
	const struct fp_vip_cfg *vip = NULL;

	if (!(ld->use & FP_CONFIG_FOR_BACKEND) || (ld->use & FP_CONFIG_FOR_LB))
		return;
	for (size_t i = 0; i < cfg->n_vips && !vip; i++)
		if (cfg->vips[i].ticket_bits)
			vip = &cfg->vips[i];
	if (!vip)
		return;
	if (!v[C_HASH_KEY])
		report(ld, line_of(root), "hash_key",
		       "missing: vips[%zu] (%s) has tickets (line %d), keyed under the hash key",
		       (size_t)(vip - cfg->vips), vip->name, vip->tickets_line);
	else if (cfg->have_hash_key && !ld->allow_example_key && is_published_key(&cfg->hash_key))
		report(ld, line_of(v[C_HASH_KEY]), "hash_key",
		       "is a key published with flowpin (the example's or the lab's): vips[%zu] "
		       "(%s) has tickets, and whoever knows the key can read and forge them; "
		       "generate one with 'od -An -tx1 -N16 /dev/urandom | tr -d \" \\n\"' (a lab "
		       "or test may set allow_example_key: true)",
		       (size_t)(vip - cfg->vips), vip->name);
}

/* ---------------------------------------------------------------------------------- */
/* bgp: the node's BIRD include file and socket, announcement shaping, announced VIPs  */

enum {
	G_INCLUDE,
	G_SOCKET,
	G_TIMEOUT,
	G_ALIVE,
	G_INTERVAL,
	G_RISE,
	G_FALL,
	G_DAMPING,
	G_MAINTENANCE,
	G_VIPS,
	G_N
};
static const char *const bgp_keys[G_N] = { "include",	  "socket", "timeout", "alive_interface",
					   "interval",	  "rise",   "fall",    "damping",
					   "maintenance", "vips" };
enum { D_ENABLED, D_PENALTY, D_SUPPRESS, D_REUSE, D_HALF_LIFE, D_MAX_SUPPRESS, D_N };
static const char *const damping_keys[D_N] = { "enabled", "penalty",   "suppress",
					       "reuse",	  "half_life", "max_suppress" };
enum { M_DEADLINE, M_UNTIL_FLOWS, M_N };
static const char *const maintenance_keys[M_N] = { "deadline", "until_flows" };

/* An absolute path of at most @size - 1 bytes, printable, into @out. */
static void parse_path(struct loader *ld, const yaml_node_t *node, const char *field, char *out,
		       size_t size)
{
	const char *s = scalar(ld, node, field, "an absolute path");

	if (!s)
		return;
	if (s[0] != '/' || strlen(s) >= size) {
		report(ld, line_of(node), field,
		       "must be an absolute path of at most %zu bytes, got '%s'", size - 1, s);
		return;
	}
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			report(ld, line_of(node), field, "control characters in a path: '%s'", s);
			return;
		}
	}
	strcpy(out, s);
}

static void load_bgp_damping(struct loader *ld, const yaml_node_t *node, struct fp_bgp_cfg *b)
{
	yaml_node_t *v[D_N];
	__u32 *counts[D_N] = {
		[D_PENALTY] = &b->penalty, [D_SUPPRESS] = &b->suppress, [D_REUSE] = &b->reuse
	};
	char field[FIELD_MAX];
	unsigned long long n;

	if (map_fields(ld, node, "bgp.damping", damping_keys, D_N, v))
		return;
	if (v[D_ENABLED])
		parse_bool(ld, v[D_ENABLED], "bgp.damping.enabled", &b->damping);
	for (int i = D_PENALTY; i <= D_REUSE; i++) {
		fieldf(field, "bgp.damping.%s", damping_keys[i]);
		if (v[i] && !parse_uint(ld, v[i], field, 1, 1000000, &n))
			*counts[i] = (__u32)n;
	}
	/* RFC 2439 implementations allow half-lives of minutes to hours; seconds for labs. */
	if (v[D_HALF_LIFE])
		parse_duration(ld, v[D_HALF_LIFE], "bgp.damping.half_life", 1000, 12 * 3600 * 1000,
			       &b->half_life_ms);
	if (v[D_MAX_SUPPRESS])
		parse_duration(ld, v[D_MAX_SUPPRESS], "bgp.damping.max_suppress", 1000,
			       24 * 3600 * 1000, &b->max_suppress_ms);
}

/*
 * The `bgp` mapping: everything but `vips`, which names VIPs and is resolved after
 * them (resolve_bgp_vips()). Defaults: flowpin/announce.h, flowpin/config.h.
 */
static void load_bgp(struct loader *ld, const yaml_node_t *node, struct fp_bgp_cfg *b)
{
	yaml_node_t *v[G_N];
	unsigned long long n;
	const char *s;

	*b = (struct fp_bgp_cfg){
		.include = FP_BGP_DEFAULT_INCLUDE,
		.socket = FP_BGP_DEFAULT_SOCKET,
		.timeout_ms = FP_BGP_DEFAULT_TIMEOUT,
		.interval_ms = FP_BGP_DEFAULT_INTERVAL,
		.rise = FP_ANNOUNCE_DEFAULT_RISE,
		.fall = FP_ANNOUNCE_DEFAULT_FALL,
		.damping = true,
		.penalty = FP_ANNOUNCE_DEFAULT_PENALTY,
		.suppress = FP_ANNOUNCE_DEFAULT_SUPPRESS,
		.reuse = FP_ANNOUNCE_DEFAULT_REUSE,
		.half_life_ms = FP_ANNOUNCE_DEFAULT_HALF_LIFE * 1000,
		.max_suppress_ms = FP_ANNOUNCE_DEFAULT_MAX_SUPPRESS * 1000,
		.maintenance_deadline_ms = FP_BGP_DEFAULT_MAINT_DEADLINE,
	};
	if (!node)
		return;
	b->enabled = true;
	b->line = (int)line_of(node);
	if (map_fields(ld, node, "bgp", bgp_keys, G_N, v)) {
		ld->bgp_not_a_mapping = true;
		return;
	}
	if (v[G_INCLUDE])
		parse_path(ld, v[G_INCLUDE], "bgp.include", b->include, sizeof(b->include));
	if (v[G_SOCKET])
		parse_path(ld, v[G_SOCKET], "bgp.socket", b->socket, sizeof(b->socket));
	if (v[G_TIMEOUT])
		parse_duration(ld, v[G_TIMEOUT], "bgp.timeout", 10, 60000, &b->timeout_ms);
	if (v[G_ALIVE] &&
	    (s = scalar(ld, v[G_ALIVE], "bgp.alive_interface", "an interface name"))) {
		if (fp_bird_ifname_ok(s))
			strcpy(b->alive_interface, s);
		else
			report(ld, line_of(v[G_ALIVE]), "bgp.alive_interface",
			       "must be 1..%d characters of A-Z a-z 0-9 . _ -, got '%s'",
			       FP_BIRD_IFNAME_MAX, s);
	}
	if (v[G_INTERVAL])
		parse_duration(ld, v[G_INTERVAL], "bgp.interval", 100, 60000, &b->interval_ms);
	if (v[G_RISE] && !parse_uint(ld, v[G_RISE], "bgp.rise", 1, 100, &n))
		b->rise = (__u32)n;
	if (v[G_FALL] && !parse_uint(ld, v[G_FALL], "bgp.fall", 1, 100, &n))
		b->fall = (__u32)n;
	if (v[G_DAMPING]) {
		struct fp_announce_params p;
		const char *why;

		load_bgp_damping(ld, v[G_DAMPING], b);
		fp_bgp_params(b, &p);
		if (fp_announce_params_check(&p, &why))
			report(ld, line_of(v[G_DAMPING]), "bgp.damping", "%s", why);
	}
	if (v[G_MAINTENANCE]) {
		yaml_node_t *m[M_N];

		if (!map_fields(ld, v[G_MAINTENANCE], "bgp.maintenance", maintenance_keys, M_N,
				m)) {
			if (m[M_DEADLINE])
				parse_duration(ld, m[M_DEADLINE], "bgp.maintenance.deadline", 1000,
					       24 * 3600 * 1000, &b->maintenance_deadline_ms);
			if (m[M_UNTIL_FLOWS] &&
			    !parse_uint(ld, m[M_UNTIL_FLOWS], "bgp.maintenance.until_flows", 0,
					UINT32_MAX, &n))
				b->maintenance_until_flows = n;
		}
	}
	ld->bgp_vips = v[G_VIPS];
}

/*
 * bgp.vips (required: announcing is opt-in per VIP): names of VIPs, or `all`. One route
 * carries every VIP of an address, so an address is announced for all of its VIPs or
 * for none.
 */
static void resolve_bgp_vips(struct loader *ld, struct fp_config *cfg)
{
	const yaml_node_t *list = ld->bgp_vips;
	char field[FIELD_MAX], buf[INET6_ADDRSTRLEN];
	size_t count;

	_Static_assert(FP_MAX_VIPS <= 64, "bgp.vips is a 64-bit mask");
	if (!cfg->bgp.enabled || ld->bgp_not_a_mapping)
		return;
	if (!list) {
		report(ld, (size_t)cfg->bgp.line, "bgp.vips",
		       "missing (required): the VIPs this node announces, a list of names or "
		       "'all'");
		return;
	}
	if (list->type == YAML_SCALAR_NODE && list->data.scalar.length == 3 &&
	    !memcmp(list->data.scalar.value, "all", 3)) {
		cfg->bgp.vips = cfg->n_vips >= 64 ? ~0ULL : (1ULL << cfg->n_vips) - 1;
		return;
	}
	if (list->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(list), "bgp.vips", "must be a list of VIP names, or 'all'");
		return;
	}
	count = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
	if (!count) {
		report(ld, line_of(list), "bgp.vips",
		       "empty: name at least one VIP (or 'all'), or leave the bgp section out");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item =
			yaml_document_get_node(ld->doc, list->data.sequence.items.start[i]);
		const char *name;
		size_t j;

		fieldf(field, "bgp.vips[%zu]", i);
		if (!item || !(name = scalar(ld, item, field, "a VIP name")))
			continue;
		for (j = 0; j < cfg->n_vips; j++)
			if (cfg->vips[j].name[0] && !strcmp(cfg->vips[j].name, name))
				break;
		if (j == cfg->n_vips) {
			report(ld, line_of(item), field, "no VIP is named '%s'", name);
			continue;
		}
		if (cfg->bgp.vips & (1ULL << j)) {
			report(ld, line_of(item), field, "'%s' is listed twice", name);
			continue;
		}
		cfg->bgp.vips |= 1ULL << j;
	}
	for (size_t i = 0; i < cfg->n_vips; i++) {
		for (size_t j = 0; j < cfg->n_vips; j++) {
			const struct fp_vip_cfg *a = &cfg->vips[i], *b = &cfg->vips[j];

			if (!(cfg->bgp.vips & (1ULL << i)) || (cfg->bgp.vips & (1ULL << j)) ||
			    memcmp(&a->addr, &b->addr, sizeof(a->addr)))
				continue;
			report(ld, line_of(list), "bgp.vips",
			       "'%s' shares address %s with vips[%zu] ('%s', line %d), which is "
			       "not listed: one route carries both, list both or neither",
			       a->name, fp_addr_str(&a->addr, buf, sizeof(buf)), j, b->name,
			       b->line);
		}
	}
}

/* `sessions: {entries: N, new_flow_rate: R}`; each line is the field's, else the root's. */
static void load_sessions(struct loader *ld, const yaml_node_t *root, const yaml_node_t *node,
			  struct fp_config *cfg)
{
	yaml_node_t *f[S_N] = { 0 };
	unsigned long long n;

	cfg->lines.sessions_entries = cfg->lines.sessions_new_flow_rate = (int)line_of(root);
	if (!node || map_fields(ld, node, "sessions", session_keys, S_N, f))
		return;
	if (f[S_ENTRIES]) {
		cfg->lines.sessions_entries = (int)line_of(f[S_ENTRIES]);
		if (!parse_uint(ld, f[S_ENTRIES], "sessions.entries", FP_MIN_SESSION_ENTRIES,
				FP_MAX_SESSION_ENTRIES, &n))
			cfg->sessions.entries = (__u32)n;
	}
	if (f[S_NEW_FLOW_RATE]) {
		cfg->lines.sessions_new_flow_rate = (int)line_of(f[S_NEW_FLOW_RATE]);
		if (!parse_uint(ld, f[S_NEW_FLOW_RATE], "sessions.new_flow_rate", 0,
				FP_MAX_NEW_FLOW_RATE, &n))
			cfg->sessions.new_flow_rate = (__u32)n;
	}
}

static int load_root(struct loader *ld, const yaml_node_t *root, struct fp_config *cfg)
{
	yaml_node_t *v[C_N];
	unsigned long long n;
	char field[FIELD_MAX];
	size_t table_line = 0;
	int err;

	cfg->table_size = FP_DEFAULT_TABLE_SIZE;
	cfg->share_tolerance = FP_DEFAULT_SHARE_TOLERANCE;
	cfg->encap_port = FP_DEFAULT_ENCAP_PORT;
	cfg->timeouts.tcp_established = FP_DEFAULT_TCP_ESTABLISHED;
	cfg->timeouts.tcp_transitory = FP_DEFAULT_TCP_TRANSITORY;
	cfg->timeouts.udp = FP_DEFAULT_UDP_TIMEOUT;
	cfg->sessions.entries = FP_DEFAULT_SESSION_ENTRIES;
	cfg->sessions.new_flow_rate = FP_DEFAULT_NEW_FLOW_RATE;
	cfg->health.interval_ms = FP_DEFAULT_HEALTH_INTERVAL;
	cfg->health.timeout_ms = FP_DEFAULT_HEALTH_TIMEOUT;
	cfg->health.rise = FP_DEFAULT_HEALTH_RISE;
	cfg->health.fall = FP_DEFAULT_HEALTH_FALL;
	ld->fleet_health = &cfg->health;
	if (map_fields(ld, root, "", top_keys, C_N, v))
		return 0;

	/* Where each setting is, for whoever applies the config; a default is the root's. */
	int *line_of_key[C_N] = {
		[C_HASH_KEY] = &cfg->lines.hash_key,
		[C_TABLE_SIZE] = &cfg->lines.table_size,
		[C_ENCAP_PORT] = &cfg->lines.encap_port,
		[C_TIMEOUTS] = &cfg->lines.timeouts,
		[C_LB_SOURCES] = &cfg->lines.lb_sources,
		[C_VIPS] = &cfg->lines.vips,
		[C_HEALTH] = &cfg->lines.health,
		[C_BGP] = &cfg->lines.bgp,
		[C_POPS] = &cfg->lines.pops,
	};

	for (int i = 0; i < C_N; i++)
		if (line_of_key[i])
			*line_of_key[i] = (int)line_of(v[i] ? v[i] : root);
	load_hash_key(ld, root, v, cfg);
	if (v[C_TABLE_SIZE]) {
		table_line = line_of(v[C_TABLE_SIZE]);
		if (!parse_uint(ld, v[C_TABLE_SIZE], "table_size", 3, FP_MAX_TABLE_SIZE, &n)) {
			cfg->table_size = (__u32)n;
			if (!fp_is_prime(cfg->table_size)) {
				report(ld, table_line, "table_size",
				       "must be prime, got %u (next prime: %u)", cfg->table_size,
				       next_prime(cfg->table_size));
			}
		}
	}
	if (v[C_TABLE_CONSTRUCTION]) {
		/*
		 * One value: the field exists so that a binary building other tables refuses
		 * the file instead of silently disagreeing (docs/config.md).
		 */
		const char *s = scalar(ld, v[C_TABLE_CONSTRUCTION], "table_construction", "a word");

		if (s && strcmp(s, FP_TABLE_CONSTRUCTION))
			report(ld, line_of(v[C_TABLE_CONSTRUCTION]), "table_construction",
			       "must be %s, got '%s'%s", FP_TABLE_CONSTRUCTION, s,
			       strcmp(s, "maglev")
				       ? ""
				       : " (this flowpin builds no Maglev tables; every "
					 "node of a fleet must build the same ones)");
	}
	if (v[C_SHARE_TOLERANCE] &&
	    !parse_uint(ld, v[C_SHARE_TOLERANCE], "share_tolerance", 0, FP_MAX_SHARE_TOLERANCE, &n))
		cfg->share_tolerance = (__u32)n;
	if (v[C_ENCAP_PORT] && !parse_uint(ld, v[C_ENCAP_PORT], "encap_port", 1, 65535, &n))
		cfg->encap_port = (__u16)n;
	if (v[C_TIMEOUTS]) {
		yaml_node_t *t[T_N];
		__u32 *dst[T_N] = { &cfg->timeouts.tcp_established, &cfg->timeouts.tcp_transitory,
				    &cfg->timeouts.udp };

		if (!map_fields(ld, v[C_TIMEOUTS], "timeouts", timeout_keys, T_N, t)) {
			for (int i = 0; i < T_N; i++) {
				fieldf(field, "timeouts.%s", timeout_keys[i]);
				if (t[i] && !parse_uint(ld, t[i], field, 1, FP_MAX_TIMEOUT, &n))
					*dst[i] = (__u32)n;
			}
		}
	}
	load_sessions(ld, root, v[C_SESSIONS], cfg);
	if (!v[C_LB_SOURCES] && (ld->use & FP_CONFIG_FOR_BACKEND)) {
		report(ld, line_of(root), "lb_sources",
		       "missing: a backend would drop every encapsulated packet (list the LB "
		       "nodes' addresses)");
	} else if (v[C_LB_SOURCES]) {
		yaml_node_t *list = v[C_LB_SOURCES];
		size_t count = list->type == YAML_SEQUENCE_NODE
				       ? (size_t)(list->data.sequence.items.top -
						  list->data.sequence.items.start)
				       : 0;

		if (list->type != YAML_SEQUENCE_NODE) {
			report(ld, line_of(list), "lb_sources", "must be a list of prefixes");
		} else if (count > FP_MAX_LB_SOURCES) {
			report(ld, line_of(list), "lb_sources",
			       "at most %d prefixes (the backends' allowlist), got %zu",
			       FP_MAX_LB_SOURCES, count);
		} else if (!count && (ld->use & FP_CONFIG_FOR_BACKEND)) {
			report(ld, line_of(list), "lb_sources",
			       "empty: a backend would drop every encapsulated packet (list the "
			       "LB nodes' addresses)");
		} else {
			yaml_node_item_t *items = list->data.sequence.items.start;

			cfg->lb_sources = calloc(count ? count : 1, sizeof(*cfg->lb_sources));
			if (!cfg->lb_sources)
				return -ENOMEM;
			cfg->n_lb_sources = count;
			for (size_t i = 0; i < count; i++) {
				fieldf(field, "lb_sources[%zu]", i);
				parse_prefix(ld, yaml_document_get_node(ld->doc, items[i]), field,
					     &cfg->lb_sources[i]);
			}
		}
	}

	if (v[C_HEALTH]) {
		bool checks_given;

		load_health(ld, v[C_HEALTH], "health", &cfg->health, &checks_given,
			    &ld->fleet_timeout_given);
	}
	load_bgp(ld, v[C_BGP], &cfg->bgp);
	ld->cfg = cfg;
	if (v[C_POPS])
		load_pops(ld, v[C_POPS], cfg);
	if (!v[C_VIPS]) {
		missing(ld, root, "", "vips");
		return 0;
	}
	if (v[C_VIPS]->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(v[C_VIPS]), "vips", "must be a list of VIPs");
		return 0;
	}
	yaml_node_item_t *items = v[C_VIPS]->data.sequence.items.start;
	size_t count = (size_t)(v[C_VIPS]->data.sequence.items.top - items);

	if (count == 0) {
		report(ld, line_of(v[C_VIPS]), "vips", "empty: at least one VIP is needed");
		return 0;
	}
	if (count > FP_MAX_VIPS) {
		report(ld, line_of(v[C_VIPS]), "vips", "at most %d VIPs, got %zu", FP_MAX_VIPS,
		       count);
		return 0;
	}
	cfg->vips = calloc(count, sizeof(*cfg->vips));
	if (!cfg->vips)
		return -ENOMEM;
	cfg->n_vips = count;
	for (size_t i = 0; i < count; i++) {
		char prefix[FIELD_MAX];

		fieldf(prefix, "vips[%zu]", i);
		err = load_vip(ld, yaml_document_get_node(ld->doc, items[i]), prefix, &cfg->vips[i],
			       i);
		if (err)
			return err;
	}

	/* Cross-VIP rules: unique (address, port, protocol) and names, each repeat once. */
	for (size_t i = 0; i < count; i++) {
		struct fp_vip_cfg *a = &cfg->vips[i];
		bool vip_seen = false, name_seen = false;

		for (size_t j = 0; j < i; j++) {
			struct fp_vip_cfg *b = &cfg->vips[j];

			if (!vip_seen && a->proto && a->proto == b->proto && a->port == b->port &&
			    !memcmp(&a->addr, &b->addr, sizeof(a->addr))) {
				vip_seen = true;
				char buf[INET6_ADDRSTRLEN];

				fieldf(field, "vips[%zu]", i);
				report(ld, (size_t)a->line, field,
				       "duplicate VIP %s port %u/%s (also vips[%zu], line %d)",
				       fp_addr_str(&a->addr, buf, sizeof(buf)), a->port,
				       a->proto == IPPROTO_TCP ? "tcp" : "udp", j, b->line);
			}
			if (!name_seen && a->name[0] && !strcmp(a->name, b->name)) {
				name_seen = true;
				fieldf(field, "vips[%zu].name", i);
				report(ld, (size_t)a->line, field,
				       "duplicate name '%s' (also vips[%zu], line %d)", a->name, j,
				       b->line);
			}
		}
	}
	/* Maglev keeps shares within one slot only when M >> N (the paper uses M >= 100 N). */
	for (size_t i = 0; i < count; i++) {
		struct fp_vip_cfg *a = &cfg->vips[i];
		unsigned long long need = 100ULL * a->n_backends;

		if (need > cfg->table_size) {
			report(ld, table_line ? table_line : (size_t)a->line, "table_size",
			       "%u is less than 100 x %zu backends of vips[%zu] (%s); use a prime "
			       ">= %llu, e.g. %u",
			       cfg->table_size, a->n_backends, i, a->name, need,
			       next_prime((__u32)need));
		}
	}
	resolve_bgp_vips(ld, cfg);
	check_pop_addresses(ld, cfg);
	check_ticket_key(ld, root, v, cfg);
	/* An LB node's bucket array holds every VIP slot's two tables. */
	if (ld->use & FP_CONFIG_FOR_LB) {
		__u32 slots = fp_config_vip_slots(count), max = fp_config_max_table_size(slots);

		if (cfg->table_size > max)
			report(ld, table_line ? table_line : line_of(v[C_VIPS]), "table_size",
			       "%u does not fit an LB node's bucket array with %zu VIPs (%u VIP "
			       "slots x 2 tables x table_size <= %u buckets); use at most %u",
			       cfg->table_size, count, slots, FP_MAX_BUCKETS, max);
	}
	return 0;
}

__u32 fp_config_vip_slots(size_t n_vips)
{
	size_t n = n_vips * 2;

	if (n < 8)
		n = 8;
	return n > FP_MAX_VIPS ? FP_MAX_VIPS : (__u32)n;
}

__u32 fp_config_max_table_size(__u32 slots)
{
	__u32 max = slots ? FP_MAX_BUCKETS / 2 / slots : FP_MAX_TABLE_SIZE;

	if (max > FP_MAX_TABLE_SIZE)
		max = FP_MAX_TABLE_SIZE;
	while (max > 3 && !fp_is_prime(max))
		max--;
	return max;
}

/* The line (1-based) and column (1-based, in bytes) of byte @offset of @buf. */
static void position(const unsigned char *buf, size_t len, size_t offset, size_t *line,
		     size_t *column)
{
	const unsigned char *nl;
	size_t start = 0;

	*line = 1;
	if (offset > len)
		offset = len;
	while ((nl = memchr(buf + start, '\n', offset - start))) {
		(*line)++;
		start = (size_t)(nl - buf) + 1;
	}
	*column = offset - start + 1;
}

/*
 * A libyaml error, where it is. Reader errors (invalid UTF-8, control characters) carry
 * a byte offset, not a mark: turn it into the line and column.
 */
static void report_yaml(struct loader *ld, const yaml_parser_t *p, const unsigned char *buf,
			size_t len)
{
	size_t line, column;

	if (p->error == YAML_READER_ERROR) {
		position(buf, len, p->problem_offset, &line, &column);
		if (p->problem_value >= 0)
			report(ld, line, "yaml", "%s (%#04x at column %zu)",
			       p->problem ? p->problem : "unreadable", p->problem_value, column);
		else
			report(ld, line, "yaml", "%s (column %zu)",
			       p->problem ? p->problem : "unreadable", column);
		return;
	}
	report(ld, p->problem_mark.line + 1, "yaml", "%s%s%s",
	       p->problem ? p->problem : "syntax error", p->context ? " " : "",
	       p->context ? p->context : "");
}

/*
 * First pass, over libyaml's events, before it builds the document: caps the nesting
 * depth and the number of values (libyaml's scanner is quadratic in nesting, and every
 * node of the document costs memory), and finds where a second document starts. Stops
 * at the first problem, as libyaml's scanner reads only a little ahead of the event it
 * returns. Returns 0, -EINVAL (reported) or -ENOMEM.
 */
static int prescan(struct loader *ld, const unsigned char *buf, size_t len, size_t *second_doc_line)
{
	size_t depth = 0, values = 0, documents = 0;
	yaml_parser_t parser;
	yaml_event_t event;
	int ret = 0;

	*second_doc_line = 0;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, buf, len);
	for (bool done = false; !done && !ret;) {
		if (!yaml_parser_parse(&parser, &event)) {
			report_yaml(ld, &parser, buf, len);
			ret = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
			break;
		}
		switch (event.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			documents++;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > FP_CONFIG_MAX_DEPTH) {
				report(ld, event.start_mark.line + 1, "yaml",
				       "nested more than %d levels deep (a flowpin config needs 5)",
				       FP_CONFIG_MAX_DEPTH);
				ret = -EINVAL;
			}
			/* fallthrough */
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
			if (++values > FP_CONFIG_MAX_VALUES) {
				report(ld, event.start_mark.line + 1, "yaml",
				       "more than %d values: far more than a flowpin config holds",
				       FP_CONFIG_MAX_VALUES);
				ret = -EINVAL;
			}
			if (documents > 1 && !*second_doc_line)
				*second_doc_line = event.start_mark.line + 1;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&event);
	}
	yaml_parser_delete(&parser);
	return ret;
}

/*
 * Reads the whole file, at most FP_CONFIG_MAX_BYTES. Returns 0, -EFBIG (reported) or a
 * negative errno.
 */
static int read_file(struct loader *ld, FILE *f, unsigned char **out, size_t *out_len)
{
	size_t cap = 64 * 1024, len = 0, line, column;
	unsigned char *buf = malloc(cap), *bigger;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		size_t got;

		if (len == cap) {
			cap = cap * 2 > FP_CONFIG_MAX_BYTES + 1 ? FP_CONFIG_MAX_BYTES + 1 : cap * 2;
			if (len == cap)
				break;
			bigger = realloc(buf, cap);
			if (!bigger) {
				free(buf);
				return -ENOMEM;
			}
			buf = bigger;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (!got) {
			if (ferror(f)) {
				int err = errno ? -errno : -EIO;

				free(buf);
				return err;
			}
			break;
		}
	}
	if (len > FP_CONFIG_MAX_BYTES) {
		position(buf, len, FP_CONFIG_MAX_BYTES, &line, &column);
		report(ld, line, "yaml",
		       "the file is larger than %d bytes (%d MiB): no flowpin "
		       "config is that big",
		       FP_CONFIG_MAX_BYTES, FP_CONFIG_MAX_BYTES >> 20);
		free(buf);
		return -EFBIG;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/*
 * The hash key is the fleet's secret: a file others may read gives it away. Published
 * keys are no secret, so they get no warning (the LB refuses them anyway).
 */
static void check_mode(struct loader *ld, const struct stat *st, const struct fp_config *cfg)
{
	if (!cfg->have_hash_key || is_published_key(&cfg->hash_key) ||
	    !(st->st_mode & (S_IRGRP | S_IROTH)))
		return;
	warn(ld, (size_t)cfg->lines.hash_key, "hash_key",
	     "%s is readable by %s (mode %04o): the hash key is the fleet's secret; "
	     "chmod 600 %s",
	     ld->path, st->st_mode & S_IROTH ? "every user" : "its group",
	     (unsigned int)(st->st_mode & 07777), ld->path);
}

/* QUIC-LB keys published with flowpin: the example's and the draft's test vectors'. */
static const char *const published_quic_lb_keys[] = {
	"3b1c7f0e5d2a49866f10e2d4c5b7a981", /* examples/flowpin.yaml */
	"8f95f09245765f80256934e50c66207f", /* draft-ietf-quic-load-balancers, appendix B */
	"fdf726a9893ec05c0632d3956680baf0", /* the draft's worked example */
	"00000000000000000000000000000000",
};

/*
 * A QUIC-LB key is a secret like hash_key: whoever has it reads every CID's server ID.
 * A published one (unless allow_example_key) and a file others may read are warnings,
 * not errors: the worst case is what a plaintext config shows anyway (docs/security.md).
 */
static void check_quic_lb_keys(struct loader *ld, const struct stat *st,
			       const struct fp_config *cfg)
{
	bool mode_warned = cfg->have_hash_key && !is_published_key(&cfg->hash_key);
	char field[FIELD_MAX];

	for (size_t i = 0; i < cfg->n_vips; i++) {
		const struct fp_vip_cfg *v = &cfg->vips[i];
		bool published = false;

		if (!v->has_quic_lb || !v->quic_lb.encrypted)
			continue;
		fieldf(field, "vips[%zu].quic_lb.key", i);
		for (size_t k = 0;
		     k < sizeof(published_quic_lb_keys) / sizeof(*published_quic_lb_keys); k++) {
			__u8 key[FP_QUICLB_KEY_LEN];

			if (!fp_hex_parse(published_quic_lb_keys[k], key, sizeof(key)) &&
			    !memcmp(key, v->quic_lb.key, sizeof(key)))
				published = true;
		}
		if (published && !ld->allow_example_key)
			warn(ld, (size_t)v->quic_lb_line, field,
			     "is a key published with flowpin or the QUIC-LB draft: anyone can "
			     "read "
			     "the server IDs of its CIDs; generate one with "
			     "'od -An -tx1 -N16 /dev/urandom | tr -d \" \\n\"'");
		if (!published && !mode_warned && (st->st_mode & (S_IRGRP | S_IROTH))) {
			warn(ld, (size_t)v->quic_lb_line, field,
			     "%s is readable by %s (mode %04o): the QUIC-LB key is a secret; "
			     "chmod 600 %s",
			     ld->path, st->st_mode & S_IROTH ? "every user" : "its group",
			     (unsigned int)(st->st_mode & 07777), ld->path);
			mode_warned = true;
		}
	}
}

int fp_config_load(const char *path, struct fp_config **out, FILE *err)
{
	return fp_config_load_for(path, FP_CONFIG_FOR_LB, out, err);
}

/*
 * Parses and validates @buf (@len bytes, ours to free) as the config named @name in
 * every message; @st gives the mode the secrecy warnings look at (NULL: none).
 */
static int load_text(struct loader *ld, const char *name, unsigned char *buf, size_t len,
		     const struct stat *st, struct fp_config **out, FILE *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	bool parser_ready = false, doc_ready = false;
	struct fp_config *cfg = NULL;
	size_t second_doc_line;
	int ret;

	ret = prescan(ld, buf, len, &second_doc_line);
	if (ret)
		goto out;
	if (!yaml_parser_initialize(&parser)) {
		ret = -ENOMEM;
		goto out;
	}
	parser_ready = true;
	yaml_parser_set_input_string(&parser, buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		/* The first pass parsed the same text: only memory can fail here. */
		report_yaml(ld, &parser, buf, len);
		ret = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
		goto out;
	}
	doc_ready = true;
	ld->doc = &doc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);

	if (!root) {
		report(ld, 1, "yaml", "empty file: expected a mapping with hash_key and vips");
		ret = -EINVAL;
		goto out;
	}
	/* A second document would be silently ignored by a loader that reads one. */
	if (second_doc_line)
		report(ld, second_doc_line, "yaml",
		       "a second YAML document ('---'); put everything in one");

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(name))) {
		ret = -ENOMEM;
		goto out;
	}
	ret = load_root(ld, root, cfg);
	if (ret)
		goto out;
	if (ld->out_of_memory) {
		ret = -ENOMEM;
		goto out;
	}
	if (ld->errors) {
		ret = -EINVAL;
		goto out;
	}
	if (st) {
		check_mode(ld, st, cfg);
		check_quic_lb_keys(ld, st, cfg);
	}
	*out = cfg;
	cfg = NULL;
	ret = 0;
out:
	flush_problems(ld, err);
	fp_config_free(cfg);
	if (doc_ready)
		yaml_document_delete(&doc);
	if (parser_ready)
		yaml_parser_delete(&parser);
	free(buf);
	return ret;
}

int fp_config_load_for(const char *path, enum fp_config_for use, struct fp_config **out, FILE *err)
{
	struct loader ld = { .path = path, .use = use };
	unsigned char *buf = NULL;
	size_t len = 0;
	struct stat st;
	FILE *f = NULL;
	int ret;

	if (!path || !out || !(use & FP_CONFIG_FOR_FLEET))
		return -EINVAL;
	*out = NULL;
	f = fopen(path, "r");
	if (!f) {
		ret = -errno;
		if (err)
			fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
		return ret;
	}
	if (fstat(fileno(f), &st) || S_ISDIR(st.st_mode)) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -errno;
		if (err)
			fprintf(err, "%s: cannot read: %s\n", path, strerror(-ret));
		goto out;
	}
	ret = read_file(&ld, f, &buf, &len);
	if (ret == -EFBIG) {
		flush_problems(&ld, err);
		ret = -EINVAL;
		goto out;
	}
	if (ret) {
		if (err)
			fprintf(err, "%s: cannot read: %s\n", path, strerror(-ret));
		goto out;
	}
	ret = load_text(&ld, path, buf, len, &st, out, err);
out:
	fclose(f);
	return ret;
}

const struct fp_pop_cfg *fp_config_pop(const struct fp_config *cfg, int pop)
{
	return pop >= 0 && (size_t)pop < cfg->n_pops ? &cfg->pops[pop] : NULL;
}

int fp_config_select_pop(struct fp_config *cfg, const char *name, FILE *err)
{
	const char *path = cfg->path ? cfg->path : "config";
	char names[FP_MAX_POPS * (FP_POP_NAME_MAX + 2)];
	size_t pop;

	if (!cfg->n_pops) {
		if (!name)
			return 0;
		fprintf(err,
			"%s:%d: pops: --pop %s given, but the config has no sites (no "
			"`pops`)\n",
			path, cfg->lines.pops, name);
		return -EINVAL;
	}
	pop_names(cfg, names, sizeof(names));
	if (!name) {
		fprintf(err,
			"%s:%d: pops: the config is a fleet of sites (%s): --pop NAME is "
			"required\n",
			path, cfg->lines.pops, names);
		return -EINVAL;
	}
	for (pop = 0; pop < cfg->n_pops; pop++)
		if (!strcmp(cfg->pops[pop].name, name))
			break;
	if (pop == cfg->n_pops) {
		fprintf(err, "%s:%d: pops: --pop %s: no such site (sites: %s)\n", path,
			cfg->lines.pops, name, names);
		return -EINVAL;
	}
	if (cfg->pop_selected) {
		if (cfg->local_pop == pop)
			return 0;
		fprintf(err, "%s:%d: pops: --pop %s: the config was made site %s's already\n", path,
			cfg->lines.pops, name, cfg->pops[cfg->local_pop].name);
		return -EINVAL;
	}
	for (size_t v = 0; v < cfg->n_vips; v++) {
		struct fp_vip_cfg *vip = &cfg->vips[v];
		size_t n = vip->n_backends + vip->n_remote, local = 0;
		struct fp_backend_cfg *sorted;

		if (!n)
			continue;
		sorted = malloc(n * sizeof(*sorted));
		if (!sorted)
			return -ENOMEM;
		/* Stable: this site's backends in file order, then the others'. */
		for (size_t b = 0; b < n; b++)
			if (vip->backends[b].pop == (int)pop)
				sorted[local++] = vip->backends[b];
		for (size_t b = 0, r = local; b < n; b++)
			if (vip->backends[b].pop != (int)pop)
				sorted[r++] = vip->backends[b];
		memcpy(vip->backends, sorted, n * sizeof(*sorted));
		free(sorted);
		vip->n_backends = local;
		vip->n_remote = n - local;
	}
	cfg->pop_selected = true;
	cfg->local_pop = pop;
	return 0;
}

int fp_config_load_buffer(const char *name, const void *text, size_t len, enum fp_config_for use,
			  struct fp_config **out, FILE *err)
{
	struct loader ld = { .path = name, .use = use };
	unsigned char *buf;

	if (!name || !out || (!text && len) || !(use & FP_CONFIG_FOR_FLEET))
		return -EINVAL;
	*out = NULL;
	if (len > FP_CONFIG_MAX_BYTES) {
		if (err)
			fprintf(err,
				"%s:1: yaml: the value is larger than %d bytes (%d MiB): no "
				"flowpin config is that big\n",
				name, FP_CONFIG_MAX_BYTES, FP_CONFIG_MAX_BYTES >> 20);
		return -EINVAL;
	}
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	if (len)
		memcpy(buf, text, len);
	return load_text(&ld, name, buf, len, NULL, out, err);
}

void fp_config_free(struct fp_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_vips; i++)
		free(cfg->vips[i].backends);
	free(cfg->vips);
	free(cfg->lb_sources);
	free(cfg->path);
	free(cfg);
}
