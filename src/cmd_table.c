// SPDX-License-Identifier: MIT
/*
 * flowpin table: what the bucket tables of a config look like, and what a change would
 * move — each backend's slots and share, and with --previous, how many buckets change
 * owner against the fewest any table could move, and from whom to whom.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <flowpin/config.h>
#include <flowpin/maglev.h>
#include "cli.h"
#include "commands.h"

#define MATRIX_MAX_COLUMNS 12 /* wider changes are listed as pairs */
#define PAIRS_MAX_LINES	   40

static void usage(FILE *out)
{
	fprintf(out,
		"usage: flowpin table --config FILE [--previous FILE] [--vip NAME]\n"
		"\n"
		"Builds each VIP's bucket table from FILE and prints every backend's slots and\n"
		"share (ideal = weight / sum of active weights). With --previous, compares with\n"
		"the tables of the config now in service: buckets that change owner, the ideal\n"
		"(the fewest any table could move for the new shares), their ratio, and a\n"
		"from -> to count of the moved buckets (id 0 = no backend).\n"
		"\n"
		"  -c, --config FILE     the new config\n"
		"  -p, --previous FILE   the config in service now\n"
		"  -V, --vip NAME        only this VIP\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: 0 done, 1 error, 2 usage.\n");
}

/* "ADDR port P/PROTO" or "ADDR all ports/PROTO". Returns @buf. */
static const char *vip_str(const struct fp_vip_cfg *vip, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	fp_addr_str(&vip->addr, addr, sizeof(addr));
	if (vip->port)
		snprintf(buf, len, "%s port %u/%s", addr, vip->port, cli_proto_name(vip->proto));
	else
		snprintf(buf, len, "%s all ports/%s", addr, cli_proto_name(vip->proto));
	return buf;
}

static void print_vip_header(const struct fp_config *cfg, const struct fp_vip_cfg *vip)
{
	char desc[INET6_ADDRSTRLEN + 32];

	printf("vip %s: %s, pinning %s, table_size %u, %s, share_tolerance %u%%\n", vip->name,
	       vip_str(vip, desc, sizeof(desc)), fp_pinning_name(vip->pinning), cfg->table_size,
	       FP_TABLE_CONSTRUCTION, cfg->share_tolerance);
}

/* Slots per backend id; @counts has FP_MAX_BACKEND_ID + 1 entries. */
static void count_slots(const __u16 *table, __u32 m, __u32 *counts)
{
	memset(counts, 0, (FP_MAX_BACKEND_ID + 1) * sizeof(*counts));
	for (__u32 i = 0; i < m; i++)
		counts[table[i] <= FP_MAX_BACKEND_ID ? table[i] : 0]++;
}

/* A backend's part of the new flows: its new-flow weight, or 1 if it has one and the
 * pinning mode ignores weights. */
static __u32 share_weight(const struct fp_backend_cfg *b, bool weighted)
{
	__u32 w = fp_backend_new_flow_weight(b);

	return weighted ? w : w > 0;
}

/*
 * Every backend's slots of @m and its share; the ideal share is weight / sum of active
 * weights, or 1 / number of active backends when the pinning mode ignores weights.
 */
static void print_shares(const struct fp_vip_cfg *vip, const __u32 *counts, __u32 m, bool weighted)
{
	double active_weight = 0;
	int width = 7; /* "address" */
	char addr[64];

	for (size_t i = 0; i < vip->n_backends; i++) {
		int len = (int)strlen(fp_addr_str(&vip->backends[i].addr, addr, sizeof(addr)));

		width = len > width ? len : width;
		active_weight += share_weight(&vip->backends[i], weighted);
	}
	printf("  %5s  %-*s %6s  %-8s %8s %8s %8s\n", "id", width, "address", "weight", "state",
	       "slots", "share", "ideal");
	for (size_t i = 0; i < vip->n_backends; i++) {
		const struct fp_backend_cfg *b = &vip->backends[i];
		double ideal =
			active_weight > 0 ? 100.0 * share_weight(b, weighted) / active_weight : 0;

		printf("  %5u  %-*s %6u  %-8s %8u %7.3f%% %7.3f%%\n", b->id, width,
		       fp_addr_str(&b->addr, addr, sizeof(addr)), b->weight,
		       fp_backend_state_name(b->state), counts[b->id], 100.0 * counts[b->id] / m,
		       ideal);
	}
	if (counts[FP_NO_BACKEND])
		printf("  %u slots have no backend (no active backend with weight)\n",
		       counts[FP_NO_BACKEND]);
}

struct move {
	__u16 from, to;
	__u32 count;
};

static int by_pair(const void *a, const void *b)
{
	const struct move *x = a, *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return x->to < y->to ? -1 : x->to > y->to;
}

static int by_count(const void *a, const void *b)
{
	const struct move *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return by_pair(a, b);
}

/* Distinct from (or @to) ids of @moves into @out, sorted; returns how many. */
static size_t distinct_ids(const struct move *moves, size_t n, bool to, __u16 *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		__u16 id = to ? moves[i].to : moves[i].from;
		size_t j = 0;

		while (j < k && out[j] != id)
			j++;
		if (j == k)
			out[k++] = id;
	}
	for (size_t i = 1; i < k; i++) /* insertion sort: k is small where it matters */
		for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
			__u16 t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return k;
}

static void print_moves(struct move *moves, size_t n)
{
	__u16 *rows = calloc(n ? n : 1, sizeof(*rows)), *cols = calloc(n ? n : 1, sizeof(*cols));
	size_t n_rows, n_cols;

	if (!rows || !cols) {
		fprintf(stderr, "flowpin table: out of memory\n");
		goto out;
	}
	n_rows = distinct_ids(moves, n, false, rows);
	n_cols = distinct_ids(moves, n, true, cols);
	if (n_cols <= MATRIX_MAX_COLUMNS) {
		printf("  moved buckets, from (rows) -> to (columns):\n  %9s", "from\\to");
		for (size_t c = 0; c < n_cols; c++)
			printf(" %7u", cols[c]);
		printf("\n");
		for (size_t r = 0; r < n_rows; r++) {
			printf("  %9u", rows[r]);
			for (size_t c = 0; c < n_cols; c++) {
				__u32 count = 0;

				for (size_t i = 0; i < n; i++)
					if (moves[i].from == rows[r] && moves[i].to == cols[c])
						count = moves[i].count;
				if (count)
					printf(" %7u", count);
				else
					printf(" %7s", ".");
			}
			printf("\n");
		}
		goto out;
	}
	qsort(moves, n, sizeof(*moves), by_count);
	printf("  moved buckets, %zu from -> to pairs (largest first):\n", n);
	for (size_t i = 0; i < n && i < PAIRS_MAX_LINES; i++)
		printf("    %5u -> %-5u %8u\n", moves[i].from, moves[i].to, moves[i].count);
	if (n > PAIRS_MAX_LINES)
		printf("    ... %zu more pairs\n", n - PAIRS_MAX_LINES);
out:
	free(rows);
	free(cols);
}

/*
 * Compares two tables of one size. The ideal is the fewest buckets any table with the
 * new slot counts could move: each backend must lose what it has beyond its new count.
 */
static int print_change(const __u16 *prev, const __u16 *next, __u32 m, const __u32 *prev_counts,
			const __u32 *counts)
{
	__u32 moved = fp_table_disruption(prev, next, m), ideal = 0;
	struct move *moves = NULL;
	size_t n_moves = 0;

	for (__u32 id = 0; id <= FP_MAX_BACKEND_ID; id++)
		if (prev_counts[id] > counts[id])
			ideal += prev_counts[id] - counts[id];
	printf("  change: %u of %u buckets move (%.3f%%), ideal %u (%.3f%%), ratio ", moved, m,
	       100.0 * moved / m, ideal, 100.0 * ideal / m);
	if (ideal)
		printf("%.3f\n", (double)moved / ideal);
	else
		printf("%s\n", moved ? "inf" : "-");
	if (!moved)
		return 0;
	moves = calloc(moved, sizeof(*moves));
	if (!moves)
		return -ENOMEM;
	for (__u32 i = 0; i < m; i++)
		if (prev[i] != next[i])
			moves[n_moves++] = (struct move){ prev[i], next[i], 1 };
	qsort(moves, n_moves, sizeof(*moves), by_pair);
	size_t k = 0;

	for (size_t i = 0; i < n_moves; i++) {
		if (k && moves[k - 1].from == moves[i].from && moves[k - 1].to == moves[i].to)
			moves[k - 1].count++;
		else
			moves[k++] = moves[i];
	}
	print_moves(moves, k);
	free(moves);
	return 0;
}

static const struct fp_vip_cfg *find_vip(const struct fp_config *cfg, const struct fp_vip_cfg *v)
{
	for (size_t i = 0; i < cfg->n_vips; i++) {
		const struct fp_vip_cfg *o = &cfg->vips[i];

		if (o->proto == v->proto && o->port == v->port &&
		    !memcmp(&o->addr, &v->addr, sizeof(o->addr)))
			return o;
	}
	return NULL;
}

/*
 * none and table use no bucket table: the data plane picks from the sorted list of
 * active backends, by flow hash mod N (none) or round robin for new flows (table).
 * Each active backend gets one position of N.
 */
static void print_list_shares(const struct fp_vip_cfg *vip, const __u16 *list, size_t n,
			      __u32 *counts)
{
	memset(counts, 0, (FP_MAX_BACKEND_ID + 1) * sizeof(*counts));
	for (size_t i = 0; i < n; i++)
		counts[list[i]] = 1;
	print_shares(vip, counts, n ? (__u32)n : 1, false);
	if (!n)
		printf("  no active backend: every new flow is dropped (drop_no_backend)\n");
	else if (vip->pinning == FP_PIN_NONE)
		printf("  pinning none: no bucket table; flow hash mod %zu over the active "
		       "backends above, in id order\n",
		       n);
	else
		printf("  pinning table: no bucket table; new flows round-robin over the %zu "
		       "active backends above, the session table keeps established ones\n",
		       n);
}

/*
 * What a change does to a none/table VIP, or to one whose pinning moves between the
 * bucket table modes and these. For none, the share of flow hashes whose backend changes:
 * exact over a * b consecutive hash values, which cover every (h mod a, h mod b) pair.
 */
static void print_list_change(const struct fp_vip_cfg *old, const struct fp_vip_cfg *vip)
{
	__u16 *a = calloc(old->n_backends + 1, sizeof(*a)),
	      *b = calloc(vip->n_backends + 1, sizeof(*b));
	size_t na, nb;
	__u64 moved = 0;

	if (!a || !b) {
		fprintf(stderr, "flowpin table: out of memory\n");
		goto out;
	}
	if (old->pinning != vip->pinning &&
	    (!fp_pinning_uses_maglev(old->pinning) || !fp_pinning_uses_maglev(vip->pinning))) {
		printf("  change: pinning %s -> %s: flows without a session entry get a new "
		       "backend choice\n",
		       fp_pinning_name(old->pinning), fp_pinning_name(vip->pinning));
		goto out;
	}
	na = fp_vip_active_list(old, a);
	nb = fp_vip_active_list(vip, b);
	if (vip->pinning == FP_PIN_TABLE) {
		printf("  change: %zu -> %zu active backends; the session table keeps "
		       "established flows on theirs, new flows round-robin\n",
		       na, nb);
		goto out;
	}
	if (!na || !nb) {
		printf("  change: %zu -> %zu active backends: every flow %s\n", na, nb,
		       nb ? "gets a backend again" : "is dropped");
		goto out;
	}
	for (__u64 h = 0; h < (__u64)na * nb; h++)
		moved += a[h % na] != b[h % nb];
	printf("  change: %.3f%% of flows move (hash mod %zu -> mod %zu, no session table)\n",
	       100.0 * (double)moved / (double)(na * nb), na, nb);
out:
	free(a);
	free(b);
}

static int show(const struct fp_config *cfg, const struct fp_config *prev, const char *only)
{
	__u16 *table = calloc(cfg->table_size, sizeof(*table));
	__u16 *prev_table = prev ? calloc(prev->table_size, sizeof(*prev_table)) : NULL;
	__u32 *counts = calloc(FP_MAX_BACKEND_ID + 1, sizeof(*counts));
	__u32 *prev_counts = calloc(FP_MAX_BACKEND_ID + 1, sizeof(*prev_counts));
	__u16 list[FP_MAX_BACKEND_ID];
	bool same_hashing;
	size_t shown = 0;
	int ret = -ENOMEM;

	if (!table || !counts || !prev_counts || (prev && !prev_table))
		goto out;
	same_hashing = prev && prev->table_size == cfg->table_size &&
		       !memcmp(&prev->hash_key, &cfg->hash_key, sizeof(cfg->hash_key));
	for (size_t i = 0; i < cfg->n_vips; i++) {
		const struct fp_vip_cfg *vip = &cfg->vips[i], *old;

		if (only && strcmp(only, vip->name))
			continue;
		if (shown++)
			printf("\n");
		if (!fp_pinning_uses_maglev(vip->pinning)) {
			print_vip_header(cfg, vip);
			print_list_shares(vip, list, fp_vip_active_list(vip, list), counts);
			old = prev ? find_vip(prev, vip) : NULL;
			if (old)
				print_list_change(old, vip);
			else if (prev)
				printf("  change: new VIP (not in %s)\n", prev->path);
			continue;
		}
		ret = fp_maglev_build_vip(cfg, vip, table);
		if (ret)
			goto out;
		count_slots(table, cfg->table_size, counts);
		print_vip_header(cfg, vip);
		print_shares(vip, counts, cfg->table_size, true);
		if (!prev)
			continue;
		old = find_vip(prev, vip);
		if (!old) {
			printf("  change: new VIP (not in %s)\n", prev->path);
			continue;
		}
		if (!fp_pinning_uses_maglev(old->pinning)) {
			print_list_change(old, vip);
			continue;
		}
		if (!same_hashing) {
			printf("  change: %s differs from %s: every flow gets a new bucket; only "
			       "session-table entries keep flows on their backends\n",
			       prev->table_size != cfg->table_size ? "table_size" : "hash_key",
			       prev->path);
			continue;
		}
		ret = fp_maglev_build_vip(prev, old, prev_table);
		if (ret)
			goto out;
		count_slots(prev_table, prev->table_size, prev_counts);
		ret = print_change(prev_table, table, cfg->table_size, prev_counts, counts);
		if (ret)
			goto out;
	}
	for (size_t i = 0; prev && i < prev->n_vips; i++) {
		if (only && strcmp(only, prev->vips[i].name))
			continue;
		if (!find_vip(cfg, &prev->vips[i])) {
			char desc[INET6_ADDRSTRLEN + 32];

			printf("\nvip %s: %s: removed (only in %s)\n", prev->vips[i].name,
			       vip_str(&prev->vips[i], desc, sizeof(desc)), prev->path);
			shown++;
		}
	}
	ret = 0;
	if (only && !shown) {
		fprintf(stderr, "flowpin table: no VIP named '%s'\n", only);
		ret = -ENOENT;
	}
out:
	if (ret == -ENOMEM)
		fprintf(stderr, "flowpin table: out of memory\n");
	free(table);
	free(prev_table);
	free(counts);
	free(prev_counts);
	return ret;
}

struct table_opts {
	const char *path, *previous, *vip;
};

static int table_option(void *opts, int opt, const char *arg)
{
	struct table_opts *o = opts;

	if (opt == 'c')
		o->path = arg;
	else if (opt == 'p')
		o->previous = arg;
	else if (opt == 'V')
		o->vip = arg;
	return 0;
}

static const struct option table_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "previous", required_argument, NULL, 'p' },
	{ "vip", required_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

static const struct cli_command table_command = {
	"table", "c:p:V:h", table_options, usage, table_option,
};

int cmd_table(int argc, char **argv)
{
	struct table_opts o = {};
	struct fp_config *cfg = NULL, *prev = NULL;
	int status = 1, rc = cli_parse(&table_command, argc, argv, &o);

	if (rc != CLI_RUN)
		return rc;
	if (optind != argc)
		return cli_usage_error("table", usage, "unexpected argument '%s'\n", argv[optind]);
	if (!o.path)
		return cli_usage_error("table", usage, "--config FILE is required\n");
	/* Both files are checked before anything is printed, and all their errors shown. */
	if (fp_config_load(o.path, &cfg, stderr) |
	    (o.previous ? fp_config_load(o.previous, &prev, stderr) : 0))
		goto out;
	status = show(cfg, prev, o.vip) ? 1 : 0;
out:
	fp_config_free(cfg);
	fp_config_free(prev);
	return status;
}
