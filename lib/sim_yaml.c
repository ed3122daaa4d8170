// SPDX-License-Identifier: MIT
/*
 * YAML for the simulator's files, the way lib/config.c reads a config: the whole file
 * (capped) through libyaml's document API, problems collected with their lines and
 * printed at the end in line order, one per line, control characters escaped.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <flowpin/config.h>
#include <flowpin/simyaml.h>

size_t fp_sim_yaml_line(const yaml_node_t *n)
{
	return n ? n->start_mark.line + 1 : 1; /* libyaml counts from 0 */
}

static void add_problem(struct fp_sim_yaml *y, size_t line, const char *field, const char *msg)
{
	char **p = realloc(y->problems, (y->n_problems + 1) * sizeof(*p));
	size_t *l = realloc(y->lines, (y->n_problems + 1) * sizeof(*l));
	char text[1024];
	size_t o = 0;

	if (p)
		y->problems = p;
	if (l)
		y->lines = l;
	y->errors++;
	if (!p || !l)
		return;
	snprintf(text, sizeof(text), "%s:%zu: %s: %s", y->path, line, field, msg);
	/* Values and keys come from the file: one problem, one line. */
	for (char *c = text; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	o = y->n_problems++;
	y->problems[o] = strdup(text);
	y->lines[o] = line;
}

void fp_sim_yaml_report(struct fp_sim_yaml *y, const yaml_node_t *at, const char *field,
			const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	add_problem(y, fp_sim_yaml_line(at), field, msg);
}

yaml_node_t *fp_sim_yaml_open(struct fp_sim_yaml *y, const char *path)
{
	yaml_parser_t parser;
	unsigned char *buf = NULL;
	yaml_node_t *root = NULL;
	size_t len = 0;
	FILE *f;

	memset(y, 0, sizeof(*y));
	y->path = path;
	f = fopen(path, "r");
	if (!f) {
		add_problem(y, 0, "file", strerror(errno));
		return NULL;
	}
	buf = malloc(FP_SIM_YAML_MAX_BYTES + 1);
	if (buf)
		len = fread(buf, 1, FP_SIM_YAML_MAX_BYTES + 1, f);
	fclose(f);
	if (!buf) {
		add_problem(y, 0, "file", "out of memory");
		return NULL;
	}
	if (len > FP_SIM_YAML_MAX_BYTES) {
		add_problem(y, 1, "yaml", "larger than 1 MiB: no scenario is that big");
		free(buf);
		return NULL;
	}
	if (!yaml_parser_initialize(&parser)) {
		free(buf);
		add_problem(y, 0, "yaml", "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, buf, len);
	if (!yaml_parser_load(&parser, &y->doc)) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s%s%s",
			 parser.problem ? parser.problem : "syntax error",
			 parser.context ? " " : "", parser.context ? parser.context : "");
		add_problem(y, parser.problem_mark.line + 1, "yaml", msg);
	} else {
		y->loaded = true;
		root = yaml_document_get_root_node(&y->doc);
		if (!root)
			add_problem(y, 1, "yaml", "empty file: expected a mapping");
	}
	yaml_parser_delete(&parser);
	free(buf);
	return root;
}

int fp_sim_yaml_close(struct fp_sim_yaml *y, FILE *err)
{
	int errors = y->errors;

	/* Insertion sort by line: a handful of problems, stable. */
	for (size_t i = 1; i < y->n_problems; i++) {
		for (size_t j = i; j > 0 && y->lines[j - 1] > y->lines[j]; j--) {
			char *t = y->problems[j];
			size_t l = y->lines[j];

			y->problems[j] = y->problems[j - 1];
			y->lines[j] = y->lines[j - 1];
			y->problems[j - 1] = t;
			y->lines[j - 1] = l;
		}
	}
	for (size_t i = 0; i < y->n_problems; i++) {
		if (err && y->problems[i])
			fprintf(err, "%s\n", y->problems[i]);
		free(y->problems[i]);
	}
	free(y->problems);
	free(y->lines);
	if (y->loaded)
		yaml_document_delete(&y->doc);
	memset(y, 0, sizeof(*y));
	return errors;
}

yaml_node_t *fp_sim_yaml_item(struct fp_sim_yaml *y, yaml_node_item_t item)
{
	return yaml_document_get_node(&y->doc, item);
}

bool fp_sim_yaml_fields(struct fp_sim_yaml *y, const yaml_node_t *node, const char *prefix,
			const char *const *keys, size_t n_keys, yaml_node_t **values)
{
	char field[FP_SIM_FIELD_MAX];

	memset(values, 0, n_keys * sizeof(*values));
	if (node->type != YAML_MAPPING_NODE) {
		fp_sim_yaml_report(y, node, *prefix ? prefix : "(top level)",
				   "must be a mapping (key: value lines), got a %s",
				   node->type == YAML_SCALAR_NODE ? "scalar" : "list");
		return false;
	}
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&y->doc, p->value);
		const char *name;
		size_t i;

		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			fp_sim_yaml_report(y, k, *prefix ? prefix : "(top level)",
					   "keys must be plain names");
			continue;
		}
		name = (const char *)k->data.scalar.value;
		snprintf(field, sizeof(field), "%s%s%s", prefix, *prefix ? "." : "", name);
		for (i = 0; i < n_keys; i++)
			if (!strcmp(name, keys[i]))
				break;
		if (i == n_keys) {
			char known[512] = "";

			for (size_t j = 0; j < n_keys; j++) {
				strncat(known, keys[j], sizeof(known) - strlen(known) - 1);
				if (j + 1 < n_keys)
					strncat(known, ", ", sizeof(known) - strlen(known) - 1);
			}
			fp_sim_yaml_report(y, k, field, "unknown key (known: %s)", known);
			y->unknown++;
			continue;
		}
		if (values[i]) {
			fp_sim_yaml_report(y, k, field, "duplicate key (first at line %zu)",
					   fp_sim_yaml_line(values[i]));
			continue;
		}
		values[i] = v;
	}
	return true;
}

const char *fp_sim_yaml_scalar(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE) {
		fp_sim_yaml_report(y, n, field, "must be a value, got a %s",
				   n->type == YAML_MAPPING_NODE ? "mapping" : "list");
		return NULL;
	}
	s = (const char *)n->data.scalar.value;
	if (strlen(s) != n->data.scalar.length) {
		fp_sim_yaml_report(y, n, field, "text with a NUL byte");
		return NULL;
	}
	return s;
}

bool fp_sim_yaml_number(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field, double min,
			double max, bool fraction, double *out)
{
	const char *s = fp_sim_yaml_scalar(y, n, field);
	size_t len;
	double v;
	char *end;

	if (!s)
		return false;
	len = strlen(s);
	/* Plain decimals only: no signs, hex, inf or nan. */
	if (!len || len > 24 || strspn(s, fraction ? "0123456789.e-" : "0123456789") != len ||
	    !(s[0] >= '0' && s[0] <= '9'))
		goto bad;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > max)
		goto bad;
	*out = v;
	return true;
bad:
	fp_sim_yaml_report(y, n, field, "must be %s %g..%g, got '%s'",
			   fraction ? "a number" : "an integer", min, max, s);
	return false;
}

bool fp_sim_yaml_duration(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field,
			  double min, double max, double *out)
{
	const char *s = fp_sim_yaml_scalar(y, n, field);
	__u64 ms;

	if (!s)
		return false;
	if (fp_duration_parse(s, &ms) || ms / 1000.0 < min || ms / 1000.0 > max) {
		fp_sim_yaml_report(
			y, n, field,
			"must be a duration (500ms, 30s, 10m, 24h) from %gs to %gs, got '%s'", min,
			max, s);
		return false;
	}
	*out = (double)ms / 1000.0;
	return true;
}

bool fp_sim_yaml_bool(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field, bool *out)
{
	const char *s = fp_sim_yaml_scalar(y, n, field);

	if (!s)
		return false;
	if (!strcmp(s, "true") || !strcmp(s, "false")) {
		*out = s[0] == 't';
		return true;
	}
	fp_sim_yaml_report(y, n, field, "must be true or false, got '%s'", s);
	return false;
}
