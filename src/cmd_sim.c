// SPDX-License-Identifier: MIT
/*
 * flowpin sim: the fleet simulator (lib/sim*.c, docs/sim.md). Options and printing
 * only: the library runs the fleet or replays lab scenarios; this prints the tables
 * and writes the plot's data and its gnuplot script (and runs gnuplot if it is there).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <flowpin/sim.h>
#include "cli.h"
#include "commands.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: flowpin sim [--scenario FILE] [--flows N] [--sites N] [--servers N]\n"
		"                   [--duration D] [--seed N] [--out DIR] [--check]\n"
		"       flowpin sim --lab SCENARIO.yaml...\n"
		"\n"
		"Simulates an anycast fleet (sites of LB nodes behind ECMP, servers, client\n"
		"prefixes) over a day of BGP, ISP, LB node and server events, with flowpin's own\n"
		"table builder, generations, session and ticket rules, and prints the share of\n"
		"flows (and bytes) each pinning method breaks, per cause and routing variant\n"
		"(BGP shaping on/off, ECMP hash-threshold/resilient), long-lived flows apart.\n"
		"The defaults and their sources: docs/sim.md. --lab replays lab scenarios and\n"
		"compares the prediction with each file's expectations.\n"
		"\n"
		"  -s, --scenario FILE   a scenario (YAML) over the defaults\n"
		"      --flows N         flows over the whole run (default 10,000,000)\n"
		"      --sites N         sites (default 300)\n"
		"      --servers N       servers, spread over the sites (default 10,000)\n"
		"      --duration D      simulated time: 90m, 24h (default 24h)\n"
		"      --seed N          random seed (default 1)\n"
		"  -o, --out DIR         write sim.txt, the plot's data, sim.gp and sim.svg there\n"
		"      --check           validate the scenario only\n"
		"      --lab             the arguments are lab scenarios to replay\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: 0 done (--lab: every prediction meets its file), 1 error or a\n"
		"prediction that does not, 2 usage.\n");
}

struct sim_opts {
	const char *scenario, *out;
	const char *flows, *sites, *servers, *duration, *seed;
	bool check, lab;
};

static int sim_option(void *opts, int opt, const char *arg)
{
	struct sim_opts *o = opts;

	switch (opt) {
	case 's':
		o->scenario = arg;
		break;
	case 'o':
		o->out = arg;
		break;
	case 'F':
		o->flows = arg;
		break;
	case 'S':
		o->sites = arg;
		break;
	case 'V':
		o->servers = arg;
		break;
	case 'D':
		o->duration = arg;
		break;
	case 'R':
		o->seed = arg;
		break;
	case 'C':
		o->check = true;
		break;
	case 'L':
		o->lab = true;
		break;
	}
	return 0;
}

static const struct option sim_options[] = {
	{ "scenario", required_argument, NULL, 's' },
	{ "out", required_argument, NULL, 'o' },
	{ "flows", required_argument, NULL, 'F' },
	{ "sites", required_argument, NULL, 'S' },
	{ "servers", required_argument, NULL, 'V' },
	{ "duration", required_argument, NULL, 'D' },
	{ "seed", required_argument, NULL, 'R' },
	{ "check", no_argument, NULL, 'C' },
	{ "lab", no_argument, NULL, 'L' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

static const struct cli_command sim_command = {
	"sim", "s:o:h", sim_options, usage, sim_option,
};

static bool parse_count(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || !v || v > max)
		return false;
	*out = v;
	return true;
}

static double pct(double part, double whole)
{
	return whole > 0 ? 100 * part / whole : 0;
}

/* The variant the per-cause tables show: everything flowpin offers switched on. */
#define MAIN_VARIANT (FP_SIM_V_SHAPING | FP_SIM_V_RESILIENT)

static void print_result(FILE *out, const struct fp_sim_params *p, const struct fp_sim_result *r)
{
	const struct fp_sim_tally *all = &r->total[FP_SIM_ALL], *lng = &r->total[FP_SIM_LONG];

	fprintf(out,
		"flowpin sim: %llu flows (%.0f long-lived) over %.1f h; %u sites, %u servers, "
		"%u LB nodes per site, %u client prefixes; seed %llu\n",
		r->flows, lng->flows, p->duration / 3600, p->sites, p->servers, p->lb_nodes,
		p->prefixes, p->seed);
	fprintf(out, "events:");
	for (unsigned c = 0; c < FP_SIM_CAUSES_SCENARIO; c++)
		fprintf(out, " %s %llu%s", fp_sim_cause_names[c], r->events[c],
			c + 1 < FP_SIM_CAUSES_SCENARIO ? "," : "\n");
	fprintf(out, "tables built: %llu; peak live flows: %llu; %.1f s CPU, %.0f MiB max RSS\n\n",
		r->table_builds, r->peak_flows, r->cpu_seconds, r->max_rss_mib);

	for (unsigned k = 0; k < FP_SIM_CLASSES; k++) {
		const struct fp_sim_tally *t = k == FP_SIM_ALL ? all : lng;

		fprintf(out,
			"%s: broken flows %% (broken bytes %%) per method and routing variant\n\n",
			k == FP_SIM_ALL ? "all flows" : "long-lived flows only");
		fprintf(out, "| method |");
		for (unsigned v = 0; v < r->n_variants; v++)
			fprintf(out, " %s |", fp_sim_variant_name(v));
		fprintf(out, "\n|---|");
		for (unsigned v = 0; v < r->n_variants; v++)
			fprintf(out, "---|");
		fprintf(out, "\n");
		for (unsigned c = 0; c < r->n_columns; c++) {
			fprintf(out, "| %s |", r->columns[c].name);
			for (unsigned v = 0; v < r->n_variants; v++)
				fprintf(out, " %.3f (%.2f) |",
					pct(r->broken[v][c][k].flows, t->flows),
					pct(r->broken[v][c][k].bytes, t->bytes));
			fprintf(out, "\n");
		}
		fprintf(out, "\n");
	}
	fprintf(out, "per cause (%s): broken flows %% / broken bytes %%; long-lived flows %%\n\n",
		fp_sim_variant_name(MAIN_VARIANT));
	fprintf(out, "| cause |");
	for (unsigned c = 0; c < r->n_columns; c++)
		fprintf(out, " %s |", r->columns[c].name);
	fprintf(out, "\n|---|");
	for (unsigned c = 0; c < r->n_columns; c++)
		fprintf(out, "---|");
	fprintf(out, "\n");
	for (unsigned cause = 0; cause < FP_SIM_CAUSES_REPORTED; cause++) {
		fprintf(out, "| %s |", fp_sim_cause_names[cause]);
		for (unsigned c = 0; c < r->n_columns; c++) {
			const struct fp_sim_tally *b = r->by_cause[MAIN_VARIANT][c][cause];

			fprintf(out, " %.3f / %.2f; %.2f |", pct(b[FP_SIM_ALL].flows, all->flows),
				pct(b[FP_SIM_ALL].bytes, all->bytes),
				pct(b[FP_SIM_LONG].flows, lng->flows));
		}
		fprintf(out, "\n");
	}
	fprintf(out,
		"\nflows counted apart (their server died or restarted; no method keeps them): "
		"%.3f %%\n",
		pct(r->apart[MAIN_VARIANT][4], all->flows));
	if (p->servers >= (1U << p->ticket_bits))
		fprintf(out,
			"full+ticket: %u servers do not fit %u-bit ticket ids, so a ticket cannot "
			"name a "
			"server of another site: tickets help within a site only (docs/sim.md)\n",
			p->servers, p->ticket_bits);
}

/* One data file: a row per method, a column per cause; @k the class, @bytes or flows. */
static int write_dat(const char *dir, const char *name, const struct fp_sim_result *r, unsigned k,
		     bool bytes)
{
	const struct fp_sim_tally *t = &r->total[k];
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "method");
	for (unsigned cause = 0; cause < FP_SIM_CAUSES_REPORTED; cause++)
		fprintf(f, "\t%s", fp_sim_cause_names[cause]);
	fprintf(f, "\n");
	for (unsigned c = 0; c < r->n_columns; c++) {
		fprintf(f, "%s", r->columns[c].name);
		for (unsigned cause = 0; cause < FP_SIM_CAUSES_REPORTED; cause++) {
			const struct fp_sim_tally *b = &r->by_cause[MAIN_VARIANT][c][cause][k];

			fprintf(f, "\t%.6f",
				pct(bytes ? b->bytes : b->flows, bytes ? t->bytes : t->flows));
		}
		fprintf(f, "\n");
	}
	return fclose(f) ? -errno : 0;
}

static int write_variants(const char *dir, const struct fp_sim_result *r)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sim-variants.dat", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "method");
	for (unsigned v = 0; v < r->n_variants; v++)
		fprintf(f, "\t%s", fp_sim_variant_name(v));
	fprintf(f, "\n");
	for (unsigned c = 0; c < r->n_columns; c++) {
		fprintf(f, "%s", r->columns[c].name);
		for (unsigned v = 0; v < r->n_variants; v++)
			fprintf(f, "\t%.6f",
				pct(r->broken[v][c][FP_SIM_ALL].flows, r->total[FP_SIM_ALL].flows));
		fprintf(f, "\n");
	}
	return fclose(f) ? -errno : 0;
}

static const char gnuplot_script[] =
	"# flowpin sim: the plot of one run (gnuplot; `flowpin sim --out DIR` writes the data)\n"
	"set terminal svg size 1200,900 dynamic font 'sans,11' background '#ffffff'\n"
	"set output 'sim.svg'\n"
	"set datafile separator '\\t'\n"
	"set termoption noenhanced\n"
	"# one colour per cause (12), the routing variants take the first four\n"
	"colours = '#4e79a7 #f28e2b #e15759 #76b7b2 #59a14f #edc948 #b07aa1 #ff9da7 #9c755f "
	"#bab0ac #1b1b1b #17becf'\n"
	"do for [i=1:12] { set linetype i lc rgb word(colours, i) }\n"
	"set key autotitle columnhead\n"
	"set style data histograms\n"
	"set style histogram rowstacked\n"
	"set style fill solid 0.85 border -1\n"
	"set boxwidth 0.7\n"
	"set key outside right top vertical font ',9'\n"
	"set grid ytics\n"
	"set xtics rotate by -30\n"
	"set xrange [-0.6:5.6]\n"
	"set multiplot layout 2,2 title '%s'\n"
	"set ylabel 'broken flows (%%)'\n"
	"set title 'all flows, by cause (%s)'\n"
	"plot for [i=2:13] 'sim-flows.dat' using i:xtic(1)\n"
	"set ylabel 'broken bytes (%%)'\n"
	"set title 'bytes of broken flows, by cause'\n"
	"unset key\n"
	"plot for [i=2:13] 'sim-bytes.dat' using i:xtic(1)\n"
	"set ylabel 'broken flows (%%)'\n"
	"set title 'long-lived flows (websockets, Tor), by cause'\n"
	"plot for [i=2:13] 'sim-long.dat' using i:xtic(1)\n"
	"set style histogram clustered gap 1\n"
	"set title 'all flows, per routing variant'\n"
	"set key inside right top autotitle columnhead\n"
	"plot for [i=2:5] 'sim-variants.dat' using i:xtic(1)\n"
	"unset multiplot\n";

static int write_plot(const char *dir, const struct fp_sim_params *p, const struct fp_sim_result *r)
{
	char path[4096], title[256];
	int err, status;
	pid_t pid;
	FILE *f;

	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	err = write_dat(dir, "sim-flows.dat", r, FP_SIM_ALL, false);
	err = err ? err : write_dat(dir, "sim-bytes.dat", r, FP_SIM_ALL, true);
	err = err ? err : write_dat(dir, "sim-long.dat", r, FP_SIM_LONG, false);
	err = err ? err : write_variants(dir, r);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/sim.gp", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	snprintf(title, sizeof(title), "flowpin sim: %llu flows, %.0f h, %u sites, %u servers",
		 r->flows, p->duration / 3600, p->sites, p->servers);
	fprintf(f, gnuplot_script, title, fp_sim_variant_name(MAIN_VARIANT));
	if (fclose(f))
		return -errno;
	snprintf(path, sizeof(path), "%s/sim.txt", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	print_result(f, p, r);
	fclose(f);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (chdir(dir) == 0)
			execlp("gnuplot", "gnuplot", "sim.gp", (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		fprintf(stderr,
			"flowpin sim: gnuplot is not installed (apt-get install gnuplot-nox): "
			"%s/sim.gp and its data written, no plot\n",
			dir);
		return 0;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "flowpin sim: gnuplot failed on %s/sim.gp\n", dir);
		return -EIO;
	}
	printf("plot: %s/sim.svg (data and gnuplot script beside it)\n", dir);
	return 0;
}

static int run_lab(int argc, char **argv)
{
	unsigned failed = 0;

	printf("| scenario | column | predicted broken | lab expects | agrees "
	       "|\n|---|---|---|---|---|\n");
	for (int i = optind; i < argc; i++) {
		unsigned broken[FP_SIM_MAX_COLUMNS], total[FP_SIM_MAX_COLUMNS];
		struct fp_sim_lab *lab;

		if (fp_sim_lab_load(argv[i], &lab, stderr))
			return 1;
		if (fp_sim_lab_run(lab, 1, broken, total)) {
			fprintf(stderr, "flowpin sim: %s: the replay failed\n", argv[i]);
			fp_sim_lab_free(lab);
			return 1;
		}
		for (unsigned c = 0; c < lab->n_columns; c++) {
			bool ok = fp_sim_expect_holds(lab->expect[c], broken[c], total[c]);

			printf("| %s | %s | %u/%u | %s | %s |\n", lab->name, lab->columns[c].name,
			       broken[c], total[c], fp_sim_expect_name(lab->expect[c]),
			       ok ? "yes" : "NO");
			failed += !ok;
		}
		fp_sim_lab_free(lab);
	}
	printf("\n%u predictions disagree with the lab's expectations\n", failed);
	return failed ? 1 : 0;
}

int cmd_sim(int argc, char **argv)
{
	struct sim_opts o = {};
	struct fp_sim_params p;
	struct fp_sim_result *r;
	unsigned long long v;
	int rc = cli_parse(&sim_command, argc, argv, &o), err;

	if (rc != CLI_RUN)
		return rc;
	if (o.lab) {
		if (optind == argc)
			return cli_usage_error("sim", usage, "--lab needs scenario files\n");
		return run_lab(argc, argv);
	}
	if (optind != argc)
		return cli_usage_error("sim", usage, "unexpected argument '%s'\n", argv[optind]);
	fp_sim_params_default(&p);
	if (o.scenario && fp_sim_params_load(o.scenario, &p, stderr))
		return 1;
	if (o.flows && !parse_count(o.flows, 1000000000ULL, &p.flows))
		return cli_usage_error("sim", usage, "--flows: 1..1000000000, got '%s'\n", o.flows);
	if (o.sites) {
		if (!parse_count(o.sites, 10000, &v))
			return cli_usage_error("sim", usage, "--sites: 1..10000, got '%s'\n",
					       o.sites);
		p.sites = (unsigned)v;
	}
	if (o.servers) {
		if (!parse_count(o.servers, 10000000, &v))
			return cli_usage_error("sim", usage, "--servers: 1..10000000, got '%s'\n",
					       o.servers);
		p.servers = (unsigned)v;
	}
	if (o.seed && !parse_count(o.seed, ~0ULL, &p.seed))
		return cli_usage_error("sim", usage, "--seed: a positive integer, got '%s'\n",
				       o.seed);
	if (o.duration) {
		__u64 ms;

		if (fp_duration_parse(o.duration, &ms) || ms < 1000 || ms > 30ULL * 86400000)
			return cli_usage_error("sim", usage, "--duration: 1s..720h, got '%s'\n",
					       o.duration);
		p.duration = (double)ms / 1000;
	}
	if (p.servers < p.sites || (p.servers + p.sites - 1) / p.sites * 2 > FP_MAX_BACKEND_ID ||
	    (unsigned long long)p.table_size < 100ULL * ((p.servers + p.sites - 1) / p.sites)) {
		fprintf(stderr,
			"flowpin sim: %u servers over %u sites: from 1 to %d per site, and "
			"table_size %u at least 100 x that\n",
			p.servers, p.sites, FP_MAX_BACKEND_ID / 2, p.table_size);
		fp_sim_params_free(&p);
		return 1;
	}
	if (o.check) {
		printf("%s: ok\n", o.scenario ? o.scenario : "(defaults)");
		fp_sim_params_free(&p);
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		fp_sim_params_free(&p);
		return 1;
	}
	err = fp_sim_fleet_run(&p, r, stderr);
	if (err) {
		fprintf(stderr, "flowpin sim: %s\n", strerror(-err));
		rc = 1;
		goto out;
	}
	print_result(stdout, &p, r);
	if (o.out && (err = write_plot(o.out, &p, r))) {
		fprintf(stderr, "flowpin sim: %s: %s\n", o.out, strerror(-err));
		rc = 1;
		goto out;
	}
	rc = 0;
out:
	free(r);
	fp_sim_params_free(&p);
	return rc;
}
