// SPDX-License-Identifier: MIT
/* flowpin check: validate a config file; every problem, or a one-line summary. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <flowpin/announce.h>
#include <flowpin/config.h>
#include <flowpin/fleet.h>
#include "cli.h"
#include "commands.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: flowpin check --config FILE|etcd://HOST:PORT[,...]/PREFIX [--lb | "
		"--backend] [--pop NAME]\n"
		"\n"
		"Validates FILE (see examples/flowpin.yaml and docs/config.md) with the same\n"
		"rules and limits as 'flowpin lb up' and 'flowpin backend up'. Prints every\n"
		"problem as FILE:LINE: FIELD: message and exits 1, or prints a one-line\n"
		"summary and exits 0 (warnings, such as a file others may read, go to\n"
		"stderr). Usage errors exit 2.\n"
		"\n"
		"  -c, --config FILE   the config file, or PREFIX/config in etcd (docs/etcd.md)\n"
		"      --lb            only the LB nodes' rules (lb_sources optional)\n"
		"      --backend       only the backends' rules (hash_key optional)\n"
		"      --pop NAME      also as an LB node of site NAME would load it (lb up\n"
		"                      --pop): NAME must be one of the file's `pops`\n"
		"  -h, --help          this text\n"
		"\n"
		"Without --lb or --backend the file must do for both, as a fleet's file does.\n");
}

struct check_opts {
	const char *path;
	int use; /* FP_CONFIG_FOR_* bits; 0: the fleet's */
	const char *pop;
};

static int check_option(void *opts, int opt, const char *arg)
{
	struct check_opts *o = opts;

	if (opt == 'c')
		o->path = arg;
	else if (opt == 'L')
		o->use |= FP_CONFIG_FOR_LB;
	else if (opt == 'B')
		o->use |= FP_CONFIG_FOR_BACKEND;
	else if (opt == 'P')
		o->pop = arg;
	return 0;
}

static const struct option check_options[] = {
	{ "config", required_argument, NULL, 'c' }, { "lb", no_argument, NULL, 'L' },
	{ "backend", no_argument, NULL, 'B' },	    { "pop", required_argument, NULL, 'P' },
	{ "help", no_argument, NULL, 'h' },	    {},
};

static const struct cli_command check_command = {
	"check", "c:h", check_options, usage, check_option,
};

int cmd_check(int argc, char **argv)
{
	struct check_opts o = {};
	struct fp_config *cfg = NULL;
	size_t backends = 0, active = 0, checked = 0, ticketed = 0, quic = 0, plain = 0;
	int rc = cli_parse(&check_command, argc, argv, &o);

	if (rc != CLI_RUN)
		return rc;
	if (optind != argc)
		return cli_usage_error("check", usage, "unexpected argument '%s'\n", argv[optind]);
	if (!o.path)
		return cli_usage_error("check", usage, "--config FILE is required\n");
	if (fp_fleet_load_config(o.path, o.use ? o.use : FP_CONFIG_FOR_FLEET, NULL, &cfg, NULL,
				 stderr))
		return 1;
	if (o.pop && fp_config_select_pop(cfg, o.pop, stderr)) {
		fp_config_free(cfg);
		return 1;
	}
	for (size_t i = 0; i < cfg->n_vips; i++) {
		backends += cfg->vips[i].n_backends;
		checked += cfg->vips[i].health.n_checks > 0;
		ticketed += cfg->vips[i].ticket_bits > 0;
		quic += cfg->vips[i].has_quic_lb;
		plain += cfg->vips[i].has_quic_lb && !cfg->vips[i].quic_lb.encrypted;
		for (size_t j = 0; j < cfg->vips[i].n_backends; j++)
			active += cfg->vips[i].backends[j].state == FP_BACKEND_ACTIVE;
	}
	printf("%s: ok: %zu VIP%s, %zu backend%s (%zu active), table_size %u, encap_port %u, "
	       "%zu LB source prefix%s, health checks on %zu VIP%s",
	       o.path, cfg->n_vips, cfg->n_vips == 1 ? "" : "s", backends, backends == 1 ? "" : "s",
	       active, cfg->table_size, cfg->encap_port, cfg->n_lb_sources,
	       cfg->n_lb_sources == 1 ? "" : "es", checked, checked == 1 ? "" : "s");
	if (ticketed)
		printf(", TCP tickets on %zu VIP%s", ticketed, ticketed == 1 ? "" : "s");
	if (quic) /* plaintext CIDs show observers the server: say how many */
		printf(", QUIC-LB on %zu VIP%s (%zu plaintext)", quic, quic == 1 ? "" : "s", plain);
	if (cfg->n_pops) {
		size_t lbs = 0;

		for (size_t i = 0; i < cfg->n_pops; i++)
			lbs += cfg->pops[i].n_lbs;
		printf(", %zu site%s (%zu LB address%s)", cfg->n_pops, cfg->n_pops == 1 ? "" : "s",
		       lbs, lbs == 1 ? "" : "es");
		if (cfg->pop_selected) {
			size_t remote = 0;

			for (size_t i = 0; i < cfg->n_vips; i++)
				remote += cfg->vips[i].n_remote;
			printf(", as site %s: %zu backend%s here, %zu at other sites",
			       cfg->pops[cfg->local_pop].name, backends, backends == 1 ? "" : "s",
			       remote);
		}
	}
	if (cfg->bgp.enabled) {
		struct fp_bgp_group groups[FP_MAX_VIPS];
		size_t n = fp_bgp_groups(cfg, groups);

		printf(", BGP: %zu address%s announced through %s (damping %s)", n,
		       n == 1 ? "" : "es", cfg->bgp.include, cfg->bgp.damping ? "on" : "off");
	}
	printf("\n");
	fp_config_free(cfg);
	return 0;
}
