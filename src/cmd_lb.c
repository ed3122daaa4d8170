// SPDX-License-Identifier: MIT
/*
 * flowpin lb: the XDP load balancer on this node.
 *
 *   up      load bpf/lb.bpf.o (lib/lb.c), pin program and maps under <pin-root>/<dev>/,
 *           attach to --dev, then stay in the foreground: SIGHUP re-reads the config,
 *           SIGUSR1 adopts a file `lb reload --config` applied, SIGTERM/SIGINT exit 0
 *           leaving the program attached and pinned (a restart). Over the pins of a
 *           daemon that is gone: take its program and maps over without a gap, or
 *           refuse (fp_lbnode_take_over()).
 *   reload  with --config: validate and apply that file through the pinned maps, record
 *           it and tell the daemon (SIGUSR1), all under the apply lock; without: SIGHUP
 *           the daemon.
 *   down    ask the daemon to detach and unpin ({"cmd":"down"} on its control socket)
 *           and wait; with no daemon left, detach and unpin here.
 *   stats   counters, per VIP and per backend, from the pinned maps.
 *   flows   the session table, like `conntrack -L`.
 *
 * This file is options and printing: the daemon is lib/lbd.c (flowpin/lbd.h), the
 * node's lifecycle and files lib/lbnode.c (flowpin/lbnode.h), reload, down and the
 * control-socket client lib/lbctl.c (flowpin/lbctl.h), the stats model lib/stats.c.
 * Exit status: 0 done, 1 error, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <json-c/json.h>
#include <flowpin/config.h>
#include <flowpin/lb.h>
#include <flowpin/lbctl.h>
#include <flowpin/lbd.h>
#include <flowpin/lbnode.h>
#include <flowpin/log.h>
#include <flowpin/maps.h>
#include <flowpin/stats.h>
#include "cli.h"
#include "commands.h"
#include "metrics_server.h"

#define DEFAULT_PIN_ROOT "/sys/fs/bpf/flowpin"
#define DEFAULT_RUN_DIR	 "/run/flowpin"

struct lb_opts {
	const char *config;
	const char *dev;
	const char *pin_root;
	const char *run_dir;
	const char *vip;
	const char *metrics;   /* --metrics ADDR:PORT, NULL: off */
	const char *command;   /* the subcommand's name */
	const char *target;    /* drain/undrain/disable: BACKEND; maintenance: on|off */
	long long deadline_ms; /* maintenance: -1 the config's default */
	long long until_flows; /* maintenance: -1 the config's default */
	int backend;	       /* -1: any */
	int xdp_generic;
	double interval; /* 0: once */
	int json;
	int force; /* up: start fresh over maps whose state cannot be carried over */
	struct cli_sources sources; /* --source, at most one per family */
};

struct subcommand {
	const char *name;
	int (*run)(const struct lb_opts *o, const struct fp_lbnode *p);
	const char *usage;
	const char *options; /* long options this subcommand accepts: ",a,b," */
	const char *help;
};

static int lb_up(const struct lb_opts *o, const struct fp_lbnode *p);
static int lb_reload(const struct lb_opts *o, const struct fp_lbnode *p);
static int lb_down(const struct lb_opts *o, const struct fp_lbnode *p);
static int lb_stats(const struct lb_opts *o, const struct fp_lbnode *p);
static int lb_flows(const struct lb_opts *o, const struct fp_lbnode *p);
static int lb_status(const struct lb_opts *o, const struct fp_lbnode *p);
static int lb_override(const struct lb_opts *o, const struct fp_lbnode *p);
static int lb_maintenance(const struct lb_opts *o, const struct fp_lbnode *p);

static const struct subcommand subcommands[] = {
	{ "up", lb_up,
	  "lb up --config FILE --dev IFACE [--xdp-mode native|generic] [--source ADDR]...\n"
	  "             [--metrics ADDR:PORT] [--force] [--pin-root DIR] [--run-dir DIR]",
	  ",config,dev,xdp-mode,source,metrics,force,pin-root,run-dir,",
	  "Loads the XDP program, pins it and its maps under PIN-ROOT/IFACE/ (mounting bpffs\n"
	  "at /sys/fs/bpf, or at a PIN-ROOT elsewhere, if it is not on one), attaches it to\n"
	  "IFACE, writes RUN-DIR/IFACE.pid and stays in the foreground, one log line per\n"
	  "config apply and per signal.\n"
	  "  SIGHUP          re-read the config; a bad one is refused, the running one stays\n"
	  "  SIGTERM/SIGINT  exit 0 leaving the program attached, its pins and state files:\n"
	  "                  the next `up` takes it over (systemctl restart is hitless);\n"
	  "                  `flowpin lb down` detaches\n"
	  "Listens on RUN-DIR/IFACE.ctl (mode 0600) for `lb status` and `lb drain|undrain|\n"
	  "disable`, re-applies the overrides RUN-DIR/IFACE.overrides holds, and once running\n"
	  "keeps CAP_NET_ADMIN alone of its capabilities.\n"
	  "After a daemon that is gone (SIGTERM, kill -9, crash): takes its program and maps\n"
	  "over without detaching (sessions and counters kept, config applied as a new\n"
	  "generation): the same program is adopted as it runs, another build's is swapped\n"
	  "in atomically (an upgrade). Refuses, changing nothing, when that would lose them\n"
	  "(another layout, settings fixed at load, another --xdp-mode).\n"
	  "--force: over maps of another layout or settings fixed at load, start fresh\n"
	  "instead: program and maps replaced in place, every session lost (counted).\n"
	  "Warns when IFACE does not forward a family the config has backends of.\n"
	  "--source ADDR: outer source address of the encapsulation, one per family\n"
	  "(default: IFACE's first address of each family).\n"
	  "--metrics ADDR:PORT: serve Prometheus metrics on http://ADDR:PORT/metrics (off by\n"
	  "default; IPv6 as [ADDR]:PORT), a fresh snapshot of the pinned maps per scrape.\n" },
	{ "reload", lb_reload,
	  "lb reload --dev IFACE [--config FILE] [--pin-root DIR] [--run-dir DIR]",
	  ",config,dev,pin-root,run-dir,",
	  "With --config: validates FILE, applies it as a new generation through the pinned\n"
	  "maps (no daemon needed), and makes a running daemon re-read FILE on later SIGHUPs.\n"
	  "Without: sends SIGHUP to the daemon, which re-reads its own file.\n" },
	{ "down", lb_down, "lb down --dev IFACE [--pin-root DIR] [--run-dir DIR]",
	  ",dev,pin-root,run-dir,",
	  "Asks the daemon on RUN-DIR/IFACE.ctl to withdraw its BGP routes, detach, remove the\n"
	  "pins and its files and exit, and waits up to 10 s (an older daemon that does not\n"
	  "know the request: SIGTERM). With no daemon (killed, or ended by SIGTERM), detaches\n"
	  "flowpin's program (never another one) and removes the pins and files itself.\n" },
	{ "stats", lb_stats,
	  "lb stats --dev IFACE [--interval S] [--json] [--pin-root DIR] [--run-dir DIR]",
	  ",dev,interval,json,pin-root,run-dir,",
	  "Global counters by name (every decision and every drop/pass reason), packets by\n"
	  "verdict, session-table and probation occupancy, generation and config applies,\n"
	  "the daemon (its pid file in --run-dir) and this build; per VIP (packets, bytes,\n"
	  "backends by state) and per backend (packets). --interval S: every S seconds, with\n"
	  "rates, until interrupted. --json: one JSON object per sample.\n" },
	{ "flows", lb_flows,
	  "lb flows --dev IFACE [--vip ADDR[:PORT]] [--backend ID] [--pin-root DIR]",
	  ",dev,vip,backend,pin-root,",
	  "The session table, one flow per line: protocol, source, destination (the VIP),\n"
	  "backend id and address, generation, state, idle seconds. IPv6 with a port:\n"
	  "--vip [ADDR]:PORT. The count goes to stderr, with the number of flows in\n"
	  "probation (seen once, no entry yet; not listed).\n" },
	{ "status", lb_status, "lb status --dev IFACE [--json] [--run-dir DIR]",
	  ",dev,json,run-dir,",
	  "Asks the daemon (its control socket RUN-DIR/IFACE.ctl): per VIP its address, mode\n"
	  "and generation; per backend its id, address, config state, run-time override,\n"
	  "health (state, since, last reason; \"unchecked\" without health checks) and the\n"
	  "effective state the node applies (the most restrictive of the three).\n"
	  "With a bgp section: BIRD's socket, maintenance, the last configure, and per\n"
	  "announced address its state, reason, since, flap penalty and counters.\n"
	  "--json: the daemon's reply, one JSON object.\n" },
	{ "drain", lb_override, "lb drain BACKEND --dev IFACE [--vip NAME] [--run-dir DIR]",
	  ",dev,vip,run-dir,",
	  "Run-time override: BACKEND (an id or an address) takes no new flows (weight 0) in\n"
	  "VIP NAME, or without --vip in every VIP that has it; its flows stay. Applied by\n"
	  "the daemon as a new generation, without editing the config file, and kept in\n"
	  "RUN-DIR/IFACE.overrides over a restart or crash of the daemon (not over `lb\n"
	  "down`). An unknown backend or VIP changes nothing.\n" },
	{ "undrain", lb_override, "lb undrain BACKEND --dev IFACE [--vip NAME] [--run-dir DIR]",
	  ",dev,vip,run-dir,",
	  "Removes BACKEND's run-time override (drain or disable): the config file's state\n"
	  "applies again, as a new generation.\n" },
	{ "disable", lb_override, "lb disable BACKEND --dev IFACE [--vip NAME] [--run-dir DIR]",
	  ",dev,vip,run-dir,",
	  "Run-time override: BACKEND is out of every table, like `state: down` in the file\n"
	  "(its flows break). As drain otherwise.\n" },
	{ "maintenance", lb_maintenance,
	  "lb maintenance on|off --dev IFACE [--deadline DURATION] [--until-flows N]\n"
	  "             [--run-dir DIR]",
	  ",dev,deadline,until-flows,run-dir,",
	  "BGP (the config's bgp section): on drains every announced address of the node at\n"
	  "once (announced with the GRACEFUL_SHUTDOWN community: routers prefer other nodes),\n"
	  "then withdraws it once DURATION has passed (e.g. 90s, 10m, 1h; 0: no deadline) or\n"
	  "the node's flows fell below N, whichever comes first (defaults: bgp.maintenance).\n"
	  "off returns every address to what its health says at once. Kept in\n"
	  "RUN-DIR/IFACE.maintenance over a restart or crash of the daemon (not over `lb\n"
	  "down`). Prints the addresses' states.\n" },
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: flowpin lb COMMAND [OPTIONS]\n\n");
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(out, "  flowpin %s\n", subcommands[i].usage);
	fprintf(out,
		"\nDefaults: --pin-root %s, --run-dir %s, --xdp-mode native.\n"
		"'flowpin lb COMMAND --help' explains one command. Exit status: 0 done, 1 error, "
		"2 usage.\n",
		DEFAULT_PIN_ROOT, DEFAULT_RUN_DIR);
}

static void sub_usage(const struct subcommand *s, FILE *out)
{
	fprintf(out, "usage: flowpin %s\n\n%s", s->usage, s->help);
	fprintf(out, "\nDefaults: --pin-root %s, --run-dir %s. Exit status: 0, 1 error, 2 usage.\n",
		DEFAULT_PIN_ROOT, DEFAULT_RUN_DIR);
}

/* The metrics server rides on the daemon's hooks: started once the program runs. */
struct up_metrics {
	const char *listen;
	struct metrics_server *server;
};

static int up_started(struct fp_lbd *d, void *arg)
{
	struct up_metrics *m = arg;

	if (!m->listen)
		return 0;
	m->server = metrics_server_start(m->listen, fp_lbd_node(d)->pin_dir, d);
	return m->server ? 0 : -1;
}

static void up_stopping(void *arg)
{
	struct up_metrics *m = arg;

	metrics_server_stop(m->server);
	m->server = NULL;
}

static int lb_up(const struct lb_opts *o, const struct fp_lbnode *p)
{
	struct up_metrics m = { .listen = o->metrics };
	struct fp_lbd_hooks hooks = {
		.started = up_started, /* applies are counted in the maps (fp_lb_apply()) */
		.stopping = up_stopping,
		.arg = &m,
	};
	struct sockaddr_storage ss;

	/* The daemon drops its capabilities before the metrics server binds. */
	if (o->metrics && !fp_metrics_parse_listen(o->metrics, &ss))
		hooks.bind_service = ntohs(((struct sockaddr_in *)&ss)->sin_port) < 1024;

	if (!o->config) {
		fprintf(stderr, "flowpin lb up: --config is required\n");
		return 2;
	}
	return fp_lbd_run(p, o->config, &hooks);
}

/* ---------------------------------------------------------------------------------- */
/* reload, down (lib/lbctl.c)                                                          */

static int lb_reload(const struct lb_opts *o, const struct fp_lbnode *p)
{
	char config_abs[PATH_MAX];
	int pid;

	if (!o->config) {
		pid = fp_lbctl_signal_reload(p);
		if (pid < 0)
			return 1;
		printf("sent SIGHUP to pid %d: it re-reads its config (its log says how it went)\n",
		       pid);
		return 0;
	}
	if (!realpath(o->config, config_abs)) {
		fp_err("--config %s: %s\n", o->config, strerror(errno));
		return 1;
	}
	return fp_lbctl_reload_file(p, config_abs) ? 1 : 0;
}

static int lb_down(const struct lb_opts *o, const struct fp_lbnode *p)
{
	int pid, r = fp_lbctl_down(p, &pid);

	if (r < 0)
		return 1;
	if (r == FP_LBCTL_DOWN_STOPPED)
		printf("flowpin lb on %s stopped (pid %d)\n", o->dev, pid);
	else
		printf("no daemon was running on %s: detached flowpin's program, removed %s and "
		       "the VIP blackhole routes\n",
		       o->dev, p->pin_dir);
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* stats, flows                                                                        */

/* cli_endpoint_str() of an address as the maps hold it. */
static const char *endpoint_str(const __u8 addr16[16], __u16 port, char *buf, size_t len)
{
	struct fp_addr a;

	memcpy(a.a, addr16, 16);
	return cli_endpoint_str(&a, port, buf, len);
}

/* Packets by verdict (the decision counters summed by XDP action). */
static void verdict_totals(const struct fp_stats_snapshot *s, unsigned long long out[4])
{
	static const char *const verdicts[4] = { "pass", "drop", "tx", "redirect" };

	memset(out, 0, 4 * sizeof(out[0]));
	for (int i = 0; i < FP_CNT__MAX; i++)
		for (int v = 0; v < 4; v++)
			if (fp_counter_verdict(i) && !strcmp(fp_counter_verdict(i), verdicts[v]))
				out[v] += s->counters[i];
}

static void print_node_json(const struct fp_stats_snapshot *s)
{
	unsigned long long v[4];
	char layout[8];

	verdict_totals(s, v);
	printf(",\"verdicts\":{\"pass\":%llu,\"drop\":%llu,\"tx\":%llu,\"redirect\":%llu}", v[0],
	       v[1], v[2], v[3]);
	printf(",\"node\":{\"layout\":\"%s\",\"generation\":%u,\"applies\":%llu,"
	       "\"apply_errors\":%llu,\"daemon_pid\":%d,\"daemon_start_time\":%.2f,"
	       "\"read_seconds\":%.6f,\"version\":\"%s\",\"commit\":\"%s\"}",
	       fp_layout_name(s->info.magic, layout), s->info.generation,
	       (unsigned long long)s->info.applies, (unsigned long long)s->info.apply_errors,
	       s->daemon_pid, s->daemon_start_time, s->took, fp_build_version(), fp_build_commit());
	printf(",\"sessions\":{\"entries\":%llu,\"live\":%llu,\"capacity\":%u}",
	       (unsigned long long)s->sessions.entries, (unsigned long long)s->sessions.live,
	       s->sessions.capacity);
	printf(",\"probation\":{\"live\":%u,\"slots\":%u}", s->probation_live,
	       s->info.probation_slots);
}

static void print_stats_json(const struct fp_stats_snapshot *now,
			     const struct fp_stats_snapshot *prev, double secs)
{
	char ep[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];

	printf("{\"interval\":%.3f,\"counters\":{", secs);
	for (int i = 0; i < FP_CNT__MAX; i++)
		printf("%s\"%s\":%llu", i ? "," : "", fp_counter_names[i],
		       (unsigned long long)now->counters[i]);
	printf("}");
	print_node_json(now);
	if (prev) {
		printf(",\"rates\":{");
		for (int i = 0; i < FP_CNT__MAX; i++)
			printf("%s\"%s\":%.1f", i ? "," : "", fp_counter_names[i],
			       fp_stats_rate(now->counters[i], prev->counters[i], secs));
		printf("}");
	}
	printf(",\"vips\":[");
	for (size_t i = 0; i < now->n_vips; i++) {
		const struct fp_stats_vip *v = &now->vips[i];
		const struct fp_stats_vip *pv = fp_stats_find_vip(prev, v->vip.index);
		int first = 1;

		endpoint_str(v->key.addr, ntohs(v->key.port), ep, sizeof(ep));
		printf("%s{\"vip\":\"%s\",\"protocol\":\"%s\",\"pinning\":\"%s\","
		       "\"generation\":%u,\"packets\":%llu,\"bytes\":%llu",
		       i ? "," : "", ep, cli_proto_name(v->key.proto),
		       fp_pinning_name(v->vip.pinning), v->vip.generation,
		       (unsigned long long)v->traffic.packets,
		       (unsigned long long)v->traffic.bytes);
		printf(",\"backend_states\":{");
		for (int st = 0; st < FP_ENTRY__MAX; st++)
			printf("%s\"%s\":%u", st ? "," : "", fp_entry_state_name(st),
			       v->backends[st]);
		printf("}");
		if (pv)
			printf(",\"packets_per_s\":%.1f,\"bits_per_s\":%.1f",
			       fp_stats_rate(v->traffic.packets, pv->traffic.packets, secs),
			       8 * fp_stats_rate(v->traffic.bytes, pv->traffic.bytes, secs));
		printf(",\"backends\":[");
		for (size_t j = 0; j < now->n_backends; j++) {
			const struct fp_stats_backend *b = &now->backends[j];
			const struct fp_stats_backend *pb;
			struct fp_addr a;

			if (b->vip_index != v->vip.index)
				continue;
			memcpy(a.a, b->backend.addr, 16);
			printf("%s{\"id\":%u,\"address\":\"%s\",\"state\":\"%s\",\"packets\":%llu",
			       first ? "" : ",", b->backend.id, fp_addr_str(&a, addr, sizeof(addr)),
			       fp_backend_entry_state(&b->backend),
			       (unsigned long long)b->traffic.packets);
			pb = fp_stats_find_backend(prev, b->vip_index, b->backend.id);
			if (pb)
				printf(",\"packets_per_s\":%.1f",
				       fp_stats_rate(b->traffic.packets, pb->traffic.packets,
						     secs));
			printf("}");
			first = 0;
		}
		printf("]}");
	}
	printf("]}\n");
}

/* The node's lines of `lb stats`: what the metrics' node families say. */
static void print_node(const struct fp_stats_snapshot *s)
{
	unsigned long long v[4];
	char layout[8], when[64] = "unknown";
	time_t t = (time_t)s->daemon_start_time;
	struct tm tm;

	verdict_totals(s, v);
	printf("\npackets by verdict: %llu pass, %llu drop, %llu tx, %llu redirect\n", v[0], v[1],
	       v[2], v[3]);
	printf("sessions: %llu entries (%llu live) of %u; probation: %u live marks of %u slots "
	       "(read in %.3f s)\n",
	       (unsigned long long)s->sessions.entries, (unsigned long long)s->sessions.live,
	       s->sessions.capacity, s->probation_live, s->info.probation_slots, s->took);
	printf("generation %u; applies %llu, %llu failed; layout %s\n", s->info.generation,
	       (unsigned long long)s->info.applies, (unsigned long long)s->info.apply_errors,
	       fp_layout_name(s->info.magic, layout));
	if (s->daemon_start_time > 0 && gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (s->daemon_pid)
		printf("daemon pid %d, started %s; ", s->daemon_pid, when);
	else
		printf("no daemon running; ");
	printf("flowpin %s (commit %s)\n", fp_build_version(), fp_build_commit());
}

static void print_stats(const struct fp_stats_snapshot *now, const struct fp_stats_snapshot *prev,
			int json)
{
	double secs = fp_stats_seconds(now, prev);
	char ep[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];

	if (json) {
		print_stats_json(now, prev, secs);
		fflush(stdout);
		return;
	}
	if (prev)
		printf("-- rates over %.1f s\n", secs);
	printf("%-22s %16s%s\n", "counter", "total", prev ? "          /s" : "");
	for (int i = 0; i < FP_CNT__MAX; i++) {
		printf("%-22s %16llu", fp_counter_names[i], (unsigned long long)now->counters[i]);
		if (prev)
			printf(" %11.1f", fp_stats_rate(now->counters[i], prev->counters[i], secs));
		printf("  %s\n", fp_counter_help[i]);
	}
	print_node(now);
	for (size_t i = 0; i < now->n_vips; i++) {
		const struct fp_stats_vip *v = &now->vips[i];
		const struct fp_stats_vip *pv = fp_stats_find_vip(prev, v->vip.index);

		endpoint_str(v->key.addr, ntohs(v->key.port), ep, sizeof(ep));
		printf("\nvip %s/%s pinning %s generation %u: %llu packets, %llu bytes", ep,
		       cli_proto_name(v->key.proto), fp_pinning_name(v->vip.pinning),
		       v->vip.generation, (unsigned long long)v->traffic.packets,
		       (unsigned long long)v->traffic.bytes);
		if (pv)
			printf(", %.1f packets/s, %.0f bits/s",
			       fp_stats_rate(v->traffic.packets, pv->traffic.packets, secs),
			       8 * fp_stats_rate(v->traffic.bytes, pv->traffic.bytes, secs));
		printf("\n  backends: %u active, %u draining, %u down, %u removed",
		       v->backends[FP_ENTRY_ACTIVE], v->backends[FP_ENTRY_DRAINING],
		       v->backends[FP_ENTRY_DOWN], v->backends[FP_ENTRY_REMOVED]);
		printf("\n  %-8s %-40s %-9s %14s%s\n", "backend", "address", "state", "packets",
		       prev ? "        /s" : "");
		for (size_t j = 0; j < now->n_backends; j++) {
			const struct fp_stats_backend *b = &now->backends[j];
			const struct fp_stats_backend *pb;
			struct fp_addr a;

			if (b->vip_index != v->vip.index)
				continue;
			memcpy(a.a, b->backend.addr, 16);
			printf("  %-8u %-40s %-9s %14llu", b->backend.id,
			       fp_addr_str(&a, addr, sizeof(addr)),
			       fp_backend_entry_state(&b->backend),
			       (unsigned long long)b->traffic.packets);
			pb = fp_stats_find_backend(prev, b->vip_index, b->backend.id);
			if (pb)
				printf(" %9.1f", fp_stats_rate(b->traffic.packets,
							       pb->traffic.packets, secs));
			printf("\n");
		}
	}
	fflush(stdout);
}

static int lb_stats(const struct lb_opts *o, const struct fp_lbnode *p)
{
	struct fp_stats_snapshot a = {}, b = {};
	struct fp_stats_snapshot *now = &a, *prev = &b;
	struct fp_lb *lb = NULL;
	int rc = 1;

	if (fp_lbctl_open_pinned(p, &lb))
		goto out;
	if (fp_stats_take(lb, now)) {
		fp_err("%s: cannot read the counters\n", p->pin_dir);
		goto out;
	}
	fp_stats_take_daemon(now, fp_lbnode_read_pid(p->pid_file));
	if (o->interval <= 0) {
		print_stats(now, NULL, o->json);
		rc = 0;
		goto out;
	}
	cli_block_stop_signals();
	while (!cli_wait_stop(o->interval)) {
		struct fp_stats_snapshot *t;

		t = prev;
		prev = now;
		now = t;
		if (fp_stats_take(lb, now)) {
			fp_err("%s: cannot read the counters (did the daemon stop?)\n", p->pin_dir);
			goto out;
		}
		fp_stats_take_daemon(now, fp_lbnode_read_pid(p->pid_file));
		print_stats(now, prev, o->json);
		if (!o->json)
			printf("\n");
	}
	rc = 0;
out:
	fp_lb_close(lb);
	fp_stats_release(&a);
	fp_stats_release(&b);
	return rc;
}

struct flows_filter {
	int by_vip;
	struct fp_addr vip;
	int vip_port; /* -1: any */
	int backend;  /* -1: any */
	size_t shown;
	struct fp_stats_snapshot maps; /* VIPs and backends, for the backends' addresses */
	__u64 now_ns;
};

static const char *const session_state_names[] = {
	[FP_SESS_UDP] = "udp",
	[FP_SESS_TCP_SYN] = "syn",
	[FP_SESS_TCP_EST] = "established",
	[FP_SESS_TCP_CLOSING] = "closing",
};

static int print_flow(const struct fp_flow_key *k, const struct fp_session *s, void *arg)
{
	struct flows_filter *f = arg;
	char src[INET6_ADDRSTRLEN + 8], dst[INET6_ADDRSTRLEN + 8], baddr[INET6_ADDRSTRLEN] = "?";
	const struct fp_stats_vip *vip;
	const struct fp_stats_backend *b = NULL;
	__u64 idle =
		f->now_ns > s->last_seen_ns ? (f->now_ns - s->last_seen_ns) / 1000000000ULL : 0;

	if (f->by_vip && memcmp(k->dst, f->vip.a, 16))
		return 0;
	if (f->vip_port >= 0 && ntohs(k->dport) != f->vip_port)
		return 0;
	if (f->backend >= 0 && s->backend != f->backend)
		return 0;
	vip = fp_stats_session_vip(&f->maps, k);
	if (vip)
		b = fp_stats_find_backend(&f->maps, vip->vip.index, s->backend);
	if (b) {
		struct fp_addr a;

		memcpy(a.a, b->backend.addr, 16);
		fp_addr_str(&a, baddr, sizeof(baddr));
	}
	printf("%-4s src=%s dst=%s backend=%u(%s) gen=%u state=%s idle=%llus\n",
	       cli_proto_name(k->proto), endpoint_str(k->src, ntohs(k->sport), src, sizeof(src)),
	       endpoint_str(k->dst, ntohs(k->dport), dst, sizeof(dst)), s->backend, baddr,
	       s->generation,
	       s->state < sizeof(session_state_names) / sizeof(session_state_names[0])
		       ? session_state_names[s->state]
		       : "?",
	       (unsigned long long)idle);
	f->shown++;
	return 0;
}

/* "ADDR", "ADDR:PORT" (IPv4), "[ADDR]:PORT" or "ADDR" (IPv6). */
static int parse_vip_filter(const char *s, struct flows_filter *f)
{
	char buf[INET6_ADDRSTRLEN + 8], *colon, *end;
	long port = -1;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -EINVAL;
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close)
			return -EINVAL;
		*close = 0;
		if (close[1] == ':') {
			port = strtol(close + 2, &end, 10);
			if (*end || close[2] == 0)
				return -EINVAL;
		} else if (close[1]) {
			return -EINVAL;
		}
		memmove(buf, buf + 1, strlen(buf + 1) + 1);
	} else if ((colon = strchr(buf, ':')) && !strchr(colon + 1, ':')) {
		*colon = 0;
		port = strtol(colon + 1, &end, 10);
		if (*end || colon[1] == 0)
			return -EINVAL;
	}
	if (port > 65535 || fp_addr_parse(buf, &f->vip))
		return -EINVAL;
	f->by_vip = 1;
	f->vip_port = (int)port;
	return 0;
}

static int lb_flows(const struct lb_opts *o, const struct fp_lbnode *p)
{
	struct flows_filter f = { .vip_port = -1, .backend = o->backend };
	struct fp_lb *lb = NULL;
	struct fp_info info = { 0 };
	__u32 probation = 0;
	int err, rc = 1;

	if (o->vip && parse_vip_filter(o->vip, &f)) {
		fprintf(stderr,
			"flowpin lb flows: --vip '%s': expected ADDR, ADDR:PORT or "
			"[ADDR6]:PORT\n",
			o->vip);
		return 2;
	}
	if (fp_lbctl_open_pinned(p, &lb))
		goto out;
	err = fp_stats_take(lb, &f.maps);
	if (!err) {
		struct timespec ts;

		/* Sessions stamp bpf_ktime_get_ns(): CLOCK_MONOTONIC. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		f.now_ns = (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
		err = fp_lb_for_each_session(lb, print_flow, &f);
	}
	if (err) {
		fp_err("%s: reading the session table: %s\n", p->pin_dir, strerror(-err));
		goto out;
	}
	fflush(stdout); /* the count follows the flows, also when both go to a terminal */
	fprintf(stderr, "%zu flows shown\n", f.shown);
	/* Probation keeps a fingerprint of each flow, not its tuple: a count, every VIP. */
	err = fp_lb_count_probation(lb, &probation);
	if (!err)
		err = fp_lb_info(lb, &info);
	if (!err)
		fprintf(stderr,
			"%u flows in probation (first packet seen in the last %u s, all VIPs: "
			"not listed)\n",
			probation, info.timeout_tcp_transitory);
	rc = 0;
out:
	fp_lb_close(lb);
	fp_stats_release(&f.maps);
	return rc;
}

/* ---------------------------------------------------------------------------------- */
/* status, drain, undrain, disable: requests to the daemon's control socket            */

static const char *field(json_object *o, const char *name)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
		return "-";
	s = json_object_get_string(v);
	return s && *s ? s : "-";
}

/* The `bgp` object of a status or maintenance reply, as text. */
static void print_bgp(json_object *bgp)
{
	json_object *m, *c, *as, *on;

	printf("\nbgp: BIRD %s, include %s, alive interface %s, damping %s\n", field(bgp, "socket"),
	       field(bgp, "include"), field(bgp, "alive_interface"), field(bgp, "damping"));
	if (json_object_object_get_ex(bgp, "maintenance", &m) &&
	    json_object_object_get_ex(m, "on", &on) && json_object_get_boolean(on))
		printf("  maintenance on since %s, deadline %s, until flows < %s\n",
		       field(m, "since"), field(m, "deadline"), field(m, "until_flows"));
	else
		printf("  maintenance off\n");
	if (json_object_object_get_ex(bgp, "last_configure", &c))
		printf("  last configure: %s at %s: %s (%s replies, %s failures)\n",
		       field(c, "result"), field(c, "at"), field(c, "message"),
		       field(c, "configures_total"), field(c, "failures_total"));
	printf("  %-20s %-9s %-20s %-20s %7s %-10s %5s %5s %5s %s\n", "prefix", "state", "reason",
	       "since", "penalty", "suppressed", "trans", "flaps", "supp", "vips");
	if (!json_object_object_get_ex(bgp, "addresses", &as))
		return;
	for (size_t i = 0; i < json_object_array_length(as); i++) {
		json_object *a = json_object_array_get_idx(as, i), *vips;
		char names[256] = "";

		if (json_object_object_get_ex(a, "vips", &vips))
			for (size_t j = 0; j < json_object_array_length(vips); j++)
				snprintf(
					names + strlen(names), sizeof(names) - strlen(names),
					"%s%s", j ? "," : "",
					json_object_get_string(json_object_array_get_idx(vips, j)));
		printf("  %-20s %-9s %-20s %-20s %7s %-10s %5s %5s %5s %s\n", field(a, "prefix"),
		       field(a, "state"), field(a, "reason"), field(a, "since"),
		       field(a, "penalty"), field(a, "suppressed"), field(a, "transitions"),
		       field(a, "flaps"), field(a, "suppressions"), names);
	}
}

static int lb_maintenance(const struct lb_opts *o, const struct fp_lbnode *p)
{
	json_object *r, *bgp;

	r = fp_lbctl_maintenance(p, !strcmp(o->target, "on"), o->deadline_ms, o->until_flows);
	if (!r)
		return 1;
	if (json_object_object_get_ex(r, "bgp", &bgp) && bgp)
		print_bgp(bgp);
	json_object_put(r);
	return 0;
}

static int lb_status(const struct lb_opts *o, const struct fp_lbnode *p)
{
	json_object *r = fp_lbctl_status(p), *vips;

	if (!r)
		return 1;
	if (o->json) {
		json_object_object_del(r, "ok");
		printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
		json_object_put(r);
		return 0;
	}
	printf("flowpin lb on %s, pid %s, config %s\n", field(r, "dev"), field(r, "pid"),
	       field(r, "config"));
	if (json_object_object_get_ex(r, "vips", &vips)) {
		for (size_t i = 0; i < json_object_array_length(vips); i++) {
			json_object *v = json_object_array_get_idx(vips, i), *bs, *ign;
			json_object *port;
			char ep[INET6_ADDRSTRLEN + 8];
			bool v6 = strchr(field(v, "address"), ':');

			json_object_object_get_ex(v, "port", &port);
			if (json_object_get_int(port))
				snprintf(ep, sizeof(ep), v6 ? "[%s]:%d" : "%s:%d",
					 field(v, "address"), json_object_get_int(port));
			else
				snprintf(ep, sizeof(ep), "%s", field(v, "address"));
			printf("\nvip %s %s/%s mode %s generation %s%s\n", field(v, "name"), ep,
			       field(v, "protocol"), field(v, "mode"), field(v, "generation"),
			       json_object_object_get_ex(v, "health_ignored", &ign) &&
					       json_object_get_boolean(ign)
				       ? " (health ignored: fail-open)"
				       : "");
			printf("  %-7s %-39s %-8s %-8s %-9s %-20s %-9s %s\n", "backend", "address",
			       "config", "override", "health", "health since", "effective",
			       "last reason");
			if (!json_object_object_get_ex(v, "backends", &bs))
				continue;
			for (size_t j = 0; j < json_object_array_length(bs); j++) {
				json_object *b = json_object_array_get_idx(bs, j);

				printf("  %-7s %-39s %-8s %-8s %-9s %-20s %-9s %s\n",
				       field(b, "id"), field(b, "address"), field(b, "config"),
				       field(b, "override"), field(b, "health"),
				       field(b, "health_since"), field(b, "effective"),
				       field(b, "health_reason"));
			}
		}
	}
	{
		json_object *bgp;

		if (json_object_object_get_ex(r, "bgp", &bgp) && bgp)
			print_bgp(bgp);
	}
	json_object_put(r);
	return 0;
}

static int lb_override(const struct lb_opts *o, const struct fp_lbnode *p)
{
	json_object *r = fp_lbctl_override(p, o->command, o->target, o->vip), *changed;

	if (!r)
		return 1;
	if (json_object_object_get_ex(r, "changed", &changed)) {
		for (size_t i = 0; i < json_object_array_length(changed); i++) {
			json_object *c = json_object_array_get_idx(changed, i);

			printf("VIP %s backend %s (%s): override %s\n", field(c, "vip"),
			       field(c, "backend"), field(c, "address"), field(c, "override"));
		}
	}
	if (strcmp(field(r, "warning"), "-"))
		fp_warn("%s\n", field(r, "warning"));
	json_object_put(r);
	return 0;
}

/* ---------------------------------------------------------------------------------- */

int cmd_lb(int argc, char **argv)
{
	static const struct option all_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "dev", required_argument, NULL, 'd' },
		{ "xdp-mode", required_argument, NULL, 'm' },
		{ "pin-root", required_argument, NULL, 'p' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "interval", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "vip", required_argument, NULL, 'V' },
		{ "backend", required_argument, NULL, 'b' },
		{ "source", required_argument, NULL, 'S' },
		{ "metrics", required_argument, NULL, 'M' },
		{ "force", no_argument, NULL, 'F' },
		{ "deadline", required_argument, NULL, 'D' },
		{ "until-flows", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct lb_opts o = { .pin_root = DEFAULT_PIN_ROOT,
			     .run_dir = DEFAULT_RUN_DIR,
			     .backend = -1,
			     .deadline_ms = -1,
			     .until_flows = -1 };
	const struct subcommand *sub = NULL;
	struct fp_lbnode paths;
	char cmd[16];
	int opt, index;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		if (!strcmp(argv[1], subcommands[i].name))
			sub = &subcommands[i];
	if (!sub) {
		fprintf(stderr, "flowpin lb: no command '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}
	snprintf(cmd, sizeof(cmd), "lb %s", sub->name);
	optind = 1;
	while ((opt = cli_getopt(cmd, argc - 1, argv + 1, "h", all_options, &index)) != -1) {
		char needle[32], *end;

		if (opt == 'h') {
			sub_usage(sub, stdout);
			return 0;
		}
		if (opt == '?') {
			sub_usage(sub, stderr);
			return 2;
		}
		snprintf(needle, sizeof(needle), ",%s,", all_options[index].name);
		if (!strstr(sub->options, needle)) {
			fprintf(stderr, "flowpin lb %s: --%s does not apply here\n", sub->name,
				all_options[index].name);
			sub_usage(sub, stderr);
			return 2;
		}
		switch (opt) {
		case 'c':
			o.config = optarg;
			break;
		case 'd':
			o.dev = optarg;
			break;
		case 'm':
			if (!strcmp(optarg, "native") || !strcmp(optarg, "generic")) {
				o.xdp_generic = !strcmp(optarg, "generic");
				break;
			}
			fprintf(stderr, "flowpin lb %s: --xdp-mode '%s': native or generic\n",
				sub->name, optarg);
			return 2;
		case 'p':
			o.pin_root = optarg;
			break;
		case 'r':
			o.run_dir = optarg;
			break;
		case 'i':
			if (cli_parse_interval(cmd, optarg, &o.interval))
				return 2;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'F':
			o.force = 1;
			break;
		case 'S':
			if (cli_parse_source(cmd, optarg, &o.sources))
				return 2;
			break;
		case 'V':
			o.vip = optarg;
			break;
		case 'M': {
			struct sockaddr_storage ss;

			if (fp_metrics_parse_listen(optarg, &ss)) {
				fprintf(stderr,
					"flowpin lb %s: --metrics '%s': ADDR:PORT (IPv6 as "
					"[ADDR]:PORT, port 1..65535)\n",
					sub->name, optarg);
				return 2;
			}
			o.metrics = optarg;
			break;
		}
		case 'D': {
			double v = strtod(optarg, &end);
			double unit = !strcmp(end, "ms")	   ? 1
				      : !strcmp(end, "s") || !*end ? 1000
				      : !strcmp(end, "m")	   ? 60000
				      : !strcmp(end, "h")	   ? 3600000
								   : -1;

			if (end == optarg || unit < 0 || !(v >= 0) || v * unit > 7 * 86400e3) {
				fprintf(stderr,
					"flowpin lb %s: --deadline '%s': a duration (90s, 10m, 1h, "
					"500ms; 0: none), at most 7 days\n",
					sub->name, optarg);
				return 2;
			}
			o.deadline_ms = (long long)(v * unit);
			break;
		}
		case 'U': {
			long long n = strtoll(optarg, &end, 10);

			if (*end || !*optarg || n < 0) {
				fprintf(stderr, "flowpin lb %s: --until-flows '%s': a count >= 0\n",
					sub->name, optarg);
				return 2;
			}
			o.until_flows = n;
			break;
		}
		case 'b': {
			long id = strtol(optarg, &end, 10);

			if (*end || !*optarg || id < 1 || id > FP_MAX_BACKEND_ID) {
				fprintf(stderr, "flowpin lb %s: --backend '%s': an id, 1..%d\n",
					sub->name, optarg, FP_MAX_BACKEND_ID);
				return 2;
			}
			o.backend = (int)id;
			break;
		}
		}
	}
	o.command = sub->name;
	if (sub->run == lb_override) {
		if (optind >= argc - 1) {
			fprintf(stderr,
				"flowpin lb %s: BACKEND (an id or an address) is required\n",
				sub->name);
			sub_usage(sub, stderr);
			return 2;
		}
		o.target = argv[1 + optind++];
	}
	if (sub->run == lb_maintenance) {
		if (optind >= argc - 1 ||
		    (strcmp(argv[1 + optind], "on") && strcmp(argv[1 + optind], "off"))) {
			fprintf(stderr, "flowpin lb maintenance: on or off is required\n");
			sub_usage(sub, stderr);
			return 2;
		}
		o.target = argv[1 + optind++];
		if (!strcmp(o.target, "off") && (o.deadline_ms >= 0 || o.until_flows >= 0)) {
			fprintf(stderr, "flowpin lb maintenance off: --deadline and --until-flows "
					"go with on\n");
			return 2;
		}
	}
	if (optind < argc - 1) {
		fprintf(stderr, "flowpin lb %s: unexpected argument '%s'\n", sub->name,
			argv[optind + 1]);
		return 2;
	}
	if (!o.dev) {
		fprintf(stderr, "flowpin lb %s: --dev is required\n", sub->name);
		sub_usage(sub, stderr);
		return 2;
	}
	if (strlen(o.dev) >= IF_NAMESIZE || strchr(o.dev, '/') || o.dev[0] == '.') {
		fprintf(stderr, "flowpin lb %s: --dev '%s' is not an interface name\n", sub->name,
			o.dev);
		return 2;
	}
	if (!if_nametoindex(o.dev) && sub->run != lb_down && sub->run != lb_status &&
	    sub->run != lb_override && sub->run != lb_maintenance) {
		fp_err("--dev %s: no such interface\n", o.dev);
		return 1;
	}
	if (fp_lbnode_init(&paths, o.dev, o.pin_root, o.run_dir)) {
		fprintf(stderr, "flowpin lb %s: --pin-root/--run-dir too long\n", sub->name);
		return 2;
	}
	paths.xdp_generic = o.xdp_generic;
	paths.force = o.force;
	paths.sources.v4 = o.sources.v4;
	paths.sources.v6 = o.sources.v6;
	paths.sources.have_v4 = o.sources.have_v4;
	paths.sources.have_v6 = o.sources.have_v6;
	return sub->run(&o, &paths);
}
