// SPDX-License-Identifier: MIT
/* flowpin: one binary, one handler per subcommand (table below). */
#include <stdio.h>
#include <string.h>
#include <flowpin/log.h>
#include "commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *summary;
};

static const struct command commands[] = {
	{ "check", cmd_check, "check --config FILE|etcd://...",
	  "validate a config file, print every error" },
	{ "table", cmd_table, "table --config FILE [--previous FILE]",
	  "each backend's share of the bucket table, and what a change moves" },
	{ "lb", cmd_lb, "lb COMMAND ...",
	  "the XDP load balancer on this node: up, down, reload, stats, flows, status, drain, "
	  "undrain, disable" },
	{ "replay", cmd_replay, "replay --config FILE --in IN.pcap --out OUT.pcap",
	  "run the real XDP program over a capture" },
	{ "backend", cmd_backend, "backend up|down|stats ...",
	  "the tc agent on a backend (decapsulation, second chance)" },
	{ "fleet", cmd_fleet, "fleet status|push --config etcd://...",
	  "a fleet configured from etcd: every node's status, push a config (canary)" },
	{ "quic-lb", cmd_quiclb, "quic-lb encode|decode --config FILE ...",
	  "QUIC-LB connection IDs of a VIP: make one, or read one" },
	{ "sim", cmd_sim, "sim [--scenario FILE] [--out DIR]",
	  "what each pinning method buys across an anycast fleet (simulated)" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: flowpin [-v] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-40s %s\n", commands[i].usage, commands[i].summary);
	fprintf(out, "  %-40s %s\n", "help [COMMAND]", "this text, or a command's own help");
	fprintf(out, "\n'flowpin COMMAND --help' shows each command's options.\n");
}

int main(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			fp_log_verbosity++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "flowpin: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
		i++;
	}
	fp_log_route_libbpf();
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[i], "help")) {
		if (i + 1 >= argc) {
			usage(stdout);
			return 0;
		}
		i++;
		for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
			if (!strcmp(argv[i], commands[c].name)) {
				char *help_argv[] = { argv[i], "--help", NULL };

				return commands[c].run(2, help_argv);
			}
		}
		fprintf(stderr, "flowpin: no command '%s'\n", argv[i]);
		return 2;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
		if (!strcmp(argv[i], commands[c].name))
			return commands[c].run(argc - i, argv + i);
	fprintf(stderr, "flowpin: no command '%s' (try 'flowpin help')\n", argv[i]);
	return 2;
}
