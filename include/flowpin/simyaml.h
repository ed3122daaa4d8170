/* SPDX-License-Identifier: MIT */
/*
 * The simulator's YAML files (fleet scenarios, lab scenarios): libyaml's document API as
 * lib/config.c uses it, so every node keeps its line, and every problem reported as
 * FILE:LINE: FIELD: message, all of them, in line order, before anything runs.
 * Userspace only (lib/sim_yaml.c).
 */
#ifndef FLOWPIN_SIMYAML_H
#define FLOWPIN_SIMYAML_H

#include <stdbool.h>
#include <stdio.h>
#include <yaml.h>

#define FP_SIM_YAML_MAX_BYTES (1 << 20) /* a scenario is a page, not a megabyte */
#define FP_SIM_FIELD_MAX      128

struct fp_sim_yaml {
	const char *path;
	yaml_document_t doc;
	bool loaded;
	int errors;
	int unknown;	 /* of them, unknown keys (a newer file than this reader) */
	char **problems; /* "FILE:LINE: FIELD: message", with their lines */
	size_t *lines;
	size_t n_problems;
};

/* Reads and parses @path; the root node, or NULL (reported). */
yaml_node_t *fp_sim_yaml_open(struct fp_sim_yaml *y, const char *path);
/* Prints every problem in line order on @err, frees everything; returns the errors. */
int fp_sim_yaml_close(struct fp_sim_yaml *y, FILE *err);

void fp_sim_yaml_report(struct fp_sim_yaml *y, const yaml_node_t *at, const char *field,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
size_t fp_sim_yaml_line(const yaml_node_t *n);

/*
 * Walks mapping @node against @keys: @values[i] the node of keys[i] or NULL. Unknown
 * and repeated keys are errors. Returns false when @node is no mapping (reported).
 */
bool fp_sim_yaml_fields(struct fp_sim_yaml *y, const yaml_node_t *node, const char *prefix,
			const char *const *keys, size_t n_keys, yaml_node_t **values);
yaml_node_t *fp_sim_yaml_item(struct fp_sim_yaml *y, yaml_node_item_t item);
/* A scalar's text, or NULL (reported) */
const char *fp_sim_yaml_scalar(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field);
/* A number in [min, max] (plain decimal, a fraction allowed when @fraction). */
bool fp_sim_yaml_number(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field, double min,
			double max, bool fraction, double *out);
/* A duration ("500ms", "30", "30s", "10m", "24h"; fp_duration_parse()) in seconds. */
bool fp_sim_yaml_duration(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field,
			  double min, double max, double *out);
bool fp_sim_yaml_bool(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field, bool *out);

#endif
