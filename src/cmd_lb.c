// SPDX-License-Identifier: MIT
/*
 * flowpin lb: the XDP load balancer on this node. Options and printing: the daemon is
 * lib/lbd.c (flowpin/lbd.h), the node's lifecycle and files lib/lbnode.c
 * (flowpin/lbnode.h), reload, down and the control-socket client lib/lbctl.c
 * (flowpin/lbctl.h), the stats model and the session walk lib/stats.c (flowpin/stats.h).
 * What each command does is its help text (the table at the end).
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
#include <flowpin/backend.h>
#include <flowpin/config.h>
#include <flowpin/lb.h>
#include <flowpin/lbctl.h>
#include <flowpin/lbd.h>
#include <flowpin/fleet.h>
#include <flowpin/text.h>
#include <flowpin/lbnode.h>
#include <flowpin/log.h>
#include <flowpin/maps.h>
#include <flowpin/metrics.h>
#include <flowpin/stats.h>
#include "cli.h"
#include "commands.h"
#include "metrics_server.h"

#define DEFAULT_RUN_DIR "/run/flowpin"

struct lb_opts {
	const char *command; /* "lb up", for messages */
	const char *verb;    /* "up" */
	const char *config;
	const char *vip;
	const char *metrics;   /* --metrics ADDR:PORT, NULL: off */
	const char *target;    /* drain/undrain/disable: BACKEND; maintenance: on|off */
	long long deadline_ms; /* maintenance: -1 the config's default */
	long long until_flows; /* maintenance: -1 the config's default */
	int backend;	       /* -1: any */
	double interval;       /* 0: once */
	int json;
	struct cli_sources sources; /* --source, at most one per family */
	struct fp_lbnode node;	    /* --dev, --pin-root, --run-dir, --xdp-mode, --force */
};

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

static int lb_up(const void *opts)
{
	const struct lb_opts *o = opts;
	struct up_metrics m = { .listen = o->metrics };
	struct fp_lbd_hooks hooks = {
		.started = up_started, /* applies are counted in the maps (fp_lb_apply()) */
		.stopping = up_stopping,
		.arg = &m,
	};
	struct sockaddr_storage ss;

	/* The daemon drops its capabilities before the metrics server binds (sin_port and
	 * sin6_port share their place). */
	if (o->metrics && !fp_metrics_parse_listen(o->metrics, &ss))
		hooks.bind_service = ntohs(((struct sockaddr_in *)&ss)->sin_port) < 1024;
	if (!o->config)
		return cli_usage_error(o->command, NULL, "--config is required\n");
	return fp_lbd_run(&o->node, o->config, &hooks);
}

static int lb_reload(const void *opts)
{
	const struct lb_opts *o = opts;
	char config_abs[PATH_MAX];
	int pid;

	if (fp_lbctl_check_pop(&o->node))
		return 1;
	if (!o->config) {
		pid = fp_lbctl_signal_reload(&o->node);
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
	return fp_lbctl_reload_file(&o->node, config_abs) ? 1 : 0;
}

static int lb_down(const void *opts)
{
	const struct lb_opts *o = opts;
	int pid, r = fp_lbctl_down(&o->node, &pid);

	if (r < 0)
		return 1;
	if (r == FP_LBCTL_DOWN_STOPPED)
		printf("flowpin lb on %s stopped (pid %d)\n", o->node.dev, pid);
	else
		printf("no daemon was running on %s: detached flowpin's program, removed %s and "
		       "the VIP blackhole routes\n",
		       o->node.dev, o->node.pin_dir);
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

/* One backend row of a VIP, printed as text or JSON; rate < 0: no previous sample. */
typedef void (*backend_row)(const struct fp_stats_backend *b, const char *addr, double rate,
			    bool first);

static void each_backend(const struct fp_stats_snapshot *now, const struct fp_stats_snapshot *prev,
			 double secs, __u32 vip_index, backend_row row)
{
	char addr[INET6_ADDRSTRLEN];
	bool first = true;

	for (size_t j = 0; j < now->n_backends; j++) {
		const struct fp_stats_backend *b = &now->backends[j];
		const struct fp_stats_backend *pb;
		struct fp_addr a;

		if (b->vip_index != vip_index)
			continue;
		memcpy(a.a, b->backend.addr, 16);
		pb = fp_stats_find_backend(prev, b->vip_index, b->backend.id);
		row(b, fp_addr_str(&a, addr, sizeof(addr)),
		    pb ? fp_stats_rate(b->traffic.packets, pb->traffic.packets, secs) : -1, first);
		first = false;
	}
}

static void json_backend(const struct fp_stats_backend *b, const char *addr, double rate,
			 bool first)
{
	printf("%s{\"id\":%u,\"address\":\"%s\",\"state\":\"%s\",\"packets\":%llu",
	       first ? "" : ",", b->backend.id, addr, fp_backend_entry_state(&b->backend),
	       (unsigned long long)b->traffic.packets);
	if (rate >= 0)
		printf(",\"packets_per_s\":%.1f", rate);
	if (b->backend.flags & FP_BACKEND_F_REMOTE)
		printf(",\"remote_site\":%u", b->backend.pop + 1);
	printf("}");
}

static void text_backend(const struct fp_stats_backend *b, const char *addr, double rate,
			 bool first)
{
	(void)first;
	printf("  %-8u %-40s %-9s %14llu", b->backend.id, addr, fp_backend_entry_state(&b->backend),
	       (unsigned long long)b->traffic.packets);
	if (rate >= 0)
		printf(" %9.1f", rate);
	/* In no table here: its tickets send packets to its site's LB nodes. */
	if (b->backend.flags & FP_BACKEND_F_REMOTE)
		printf("  (site #%u of the config's pops)", b->backend.pop + 1);
	printf("\n");
}

static void print_node_json(const struct fp_stats_snapshot *s)
{
	unsigned long long v[FP_VERDICT__MAX];
	char layout[8];

	fp_stats_verdicts(s, v);
	printf(",\"verdicts\":{");
	for (int i = 0; i < FP_VERDICT__MAX; i++)
		printf("%s\"%s\":%llu", i ? "," : "", fp_verdict_names[i], v[i]);
	printf("}");
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

/* "name":value for every counter, totals or rates. */
static void json_counters(const struct fp_stats_snapshot *now, const struct fp_stats_snapshot *prev,
			  double secs)
{
	for (int i = 0; i < FP_CNT__MAX; i++) {
		printf("%s\"%s\":", i ? "," : "", fp_counter_names[i]);
		if (prev)
			printf("%.1f", fp_stats_rate(now->counters[i], prev->counters[i], secs));
		else
			printf("%llu", (unsigned long long)now->counters[i]);
	}
}

static void print_stats_json(const struct fp_stats_snapshot *now,
			     const struct fp_stats_snapshot *prev, double secs)
{
	char ep[INET6_ADDRSTRLEN + 8];

	printf("{\"interval\":%.3f,\"counters\":{", secs);
	json_counters(now, NULL, secs);
	printf("}");
	print_node_json(now);
	if (prev) {
		printf(",\"rates\":{");
		json_counters(now, prev, secs);
		printf("}");
	}
	printf(",\"vips\":[");
	for (size_t i = 0; i < now->n_vips; i++) {
		const struct fp_stats_vip *v = &now->vips[i];
		const struct fp_stats_vip *pv = fp_stats_find_vip(prev, v->vip.index);

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
		each_backend(now, prev, secs, v->vip.index, json_backend);
		printf("]}");
	}
	printf("]}\n");
}

/* The node's lines of `lb stats`: what the metrics' node families say. */
static void print_node(const struct fp_stats_snapshot *s)
{
	unsigned long long v[FP_VERDICT__MAX];
	char layout[8], when[64] = "unknown";
	time_t t = (time_t)s->daemon_start_time;
	struct tm tm;

	fp_stats_verdicts(s, v);
	printf("\npackets by verdict: %llu pass, %llu drop, %llu tx, %llu redirect\n",
	       v[FP_VERDICT_PASS], v[FP_VERDICT_DROP], v[FP_VERDICT_TX], v[FP_VERDICT_REDIRECT]);
	printf("sessions: %llu entries (%llu live) of %u; probation: %u live marks, "
	       "array of %u slots (read in %.3f s)\n",
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
	char ep[INET6_ADDRSTRLEN + 8];

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
		each_backend(now, prev, secs, v->vip.index, text_backend);
	}
	fflush(stdout);
}

static int lb_stats(const void *opts)
{
	const struct lb_opts *o = opts;
	const struct fp_lbnode *p = &o->node;
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

static int print_flow(const struct fp_stats_flow *f, void *arg)
{
	const struct fp_flow_key *k = f->key;
	char src[INET6_ADDRSTRLEN + 8], dst[INET6_ADDRSTRLEN + 8], baddr[INET6_ADDRSTRLEN] = "?";
	size_t *shown = arg;

	if (f->backend) {
		struct fp_addr a;

		memcpy(a.a, f->backend->backend.addr, 16);
		fp_addr_str(&a, baddr, sizeof(baddr));
	}
	printf("%-4s src=%s dst=%s backend=%u(%s) gen=%u state=%s idle=%llus\n",
	       cli_proto_name(k->proto), endpoint_str(k->src, ntohs(k->sport), src, sizeof(src)),
	       endpoint_str(k->dst, ntohs(k->dport), dst, sizeof(dst)), f->session->backend, baddr,
	       f->session->generation, fp_session_state_name(f->session->state),
	       (unsigned long long)f->idle_s);
	(*shown)++;
	return 0;
}

static int lb_flows(const void *opts)
{
	const struct lb_opts *o = opts;
	const struct fp_lbnode *p = &o->node;
	struct fp_flow_filter f = { .vip_port = -1, .backend = o->backend };
	struct fp_stats_snapshot maps = {}; /* VIPs and backends, for the backends' addresses */
	struct fp_lb *lb = NULL;
	struct fp_info info = { 0 };
	__u32 probation = 0;
	size_t shown = 0;
	int err, rc = 1;

	if (o->vip && fp_flow_filter_vip(&f, o->vip))
		return cli_usage_error(o->command, NULL,
				       "--vip '%s': expected ADDR, ADDR:PORT or [ADDR6]:PORT\n",
				       o->vip);
	if (fp_lbctl_open_pinned(p, &lb))
		goto out;
	err = fp_stats_take(lb, &maps);
	if (!err)
		err = fp_stats_for_each_flow(lb, &maps, &f, print_flow, &shown);
	if (err) {
		fp_err("%s: reading the session table: %s\n", p->pin_dir, strerror(-err));
		goto out;
	}
	fflush(stdout); /* the count follows the flows, also when both go to a terminal */
	fprintf(stderr, "%zu flows shown\n", shown);
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
	fp_stats_release(&maps);
	return rc;
}

/* ---------------------------------------------------------------------------------- */
/* status, drain, undrain, disable, maintenance: requests to the daemon's control socket */

/* The `bgp` object of a status or maintenance reply, as text. */
static void print_bgp(json_object *bgp)
{
	json_object *m, *c, *as, *on;

	printf("\nbgp: BIRD %s, include %s, alive interface %s, damping %s\n",
	       fp_json_field(bgp, "socket"), fp_json_field(bgp, "include"),
	       fp_json_field(bgp, "alive_interface"), fp_json_field(bgp, "damping"));
	if (json_object_object_get_ex(bgp, "maintenance", &m) &&
	    json_object_object_get_ex(m, "on", &on) && json_object_get_boolean(on))
		printf("  maintenance on since %s, deadline %s, until flows < %s\n",
		       fp_json_field(m, "since"), fp_json_field(m, "deadline"),
		       fp_json_field(m, "until_flows"));
	else
		printf("  maintenance off\n");
	if (json_object_object_get_ex(bgp, "last_configure", &c))
		printf("  last configure: %s at %s: %s (%s replies, %s failures)\n",
		       fp_json_field(c, "result"), fp_json_field(c, "at"),
		       fp_json_field(c, "message"), fp_json_field(c, "configures_total"),
		       fp_json_field(c, "failures_total"));
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
		printf("  %-20s %-9s %-20s %-20s %7s %-10s %5s %5s %5s %s\n",
		       fp_json_field(a, "prefix"), fp_json_field(a, "state"),
		       fp_json_field(a, "reason"), fp_json_field(a, "since"),
		       fp_json_field(a, "penalty"), fp_json_field(a, "suppressed"),
		       fp_json_field(a, "transitions"), fp_json_field(a, "flaps"),
		       fp_json_field(a, "suppressions"), names);
	}
}

static int lb_maintenance(const void *opts)
{
	const struct lb_opts *o = opts;
	json_object *r, *bgp;

	if (!strcmp(o->target, "off") && (o->deadline_ms >= 0 || o->until_flows >= 0))
		return cli_usage_error("lb maintenance off", NULL,
				       "--deadline and --until-flows go with on\n");
	r = fp_lbctl_maintenance(&o->node, !strcmp(o->target, "on"), o->deadline_ms,
				 o->until_flows);
	if (!r)
		return 1;
	if (json_object_object_get_ex(r, "bgp", &bgp) && bgp)
		print_bgp(bgp);
	json_object_put(r);
	return 0;
}

static int lb_status(const void *opts)
{
	const struct lb_opts *o = opts;
	json_object *r = fp_lbctl_status(&o->node), *vips;

	if (!r)
		return 1;
	if (o->json) {
		json_object_object_del(r, "ok");
		printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
		json_object_put(r);
		return 0;
	}
	printf("flowpin lb on %s, pid %s, config %s\n", fp_json_field(r, "dev"),
	       fp_json_field(r, "pid"), fp_json_field(r, "config"));
	{
		json_object *e;

		if (json_object_object_get_ex(r, "etcd", &e) && e)
			fp_fleet_print_status(e, stdout);
	}
	if (json_object_object_get_ex(r, "vips", &vips)) {
		for (size_t i = 0; i < json_object_array_length(vips); i++) {
			json_object *v = json_object_array_get_idx(vips, i), *bs, *ign;
			json_object *port;
			char ep[INET6_ADDRSTRLEN + 8];
			bool v6 = strchr(fp_json_field(v, "address"), ':');

			json_object_object_get_ex(v, "port", &port);
			if (json_object_get_int(port))
				snprintf(ep, sizeof(ep), v6 ? "[%s]:%d" : "%s:%d",
					 fp_json_field(v, "address"), json_object_get_int(port));
			else
				snprintf(ep, sizeof(ep), "%s", fp_json_field(v, "address"));
			printf("\nvip %s %s/%s mode %s generation %s%s\n", fp_json_field(v, "name"),
			       ep, fp_json_field(v, "protocol"), fp_json_field(v, "mode"),
			       fp_json_field(v, "generation"),
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
				       fp_json_field(b, "id"), fp_json_field(b, "address"),
				       fp_json_field(b, "config"), fp_json_field(b, "override"),
				       fp_json_field(b, "health"), fp_json_field(b, "health_since"),
				       fp_json_field(b, "effective"),
				       fp_json_field(b, "health_reason"));
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

static int lb_override(const void *opts)
{
	const struct lb_opts *o = opts;
	json_object *r = fp_lbctl_override(&o->node, o->verb, o->target, o->vip), *changed;

	if (!r)
		return 1;
	if (json_object_object_get_ex(r, "changed", &changed)) {
		for (size_t i = 0; i < json_object_array_length(changed); i++) {
			json_object *c = json_object_array_get_idx(changed, i);

			printf("VIP %s backend %s (%s): override %s\n", fp_json_field(c, "vip"),
			       fp_json_field(c, "backend"), fp_json_field(c, "address"),
			       fp_json_field(c, "override"));
		}
	}
	if (strcmp(fp_json_field(r, "warning"), "-"))
		fp_warn("%s\n", fp_json_field(r, "warning"));
	json_object_put(r);
	return 0;
}

/* ---------------------------------------------------------------------------------- */
/* options                                                                             */

/* --deadline: a duration (fp_duration_parse()), 0 for none, at most 7 days. */
static int take_deadline(struct lb_opts *o, const char *arg)
{
	__u64 ms;

	if (fp_duration_parse(arg, &ms) || ms > 7 * 86400 * 1000ULL)
		return cli_usage_error(o->command, NULL,
				       "--deadline '%s': a duration (90s, 10m, 1h, 500ms; 0: "
				       "none), at most 7 days\n",
				       arg);
	o->deadline_ms = (long long)ms;
	return 0;
}

/* A count or id of digits only, in [min, max]; -1 when it is not. */
static long long number(const char *arg, long long min, long long max)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(arg, &end, 10);
	return *arg && !*end && !errno && n >= min && n <= max ? n : -1;
}

static int lb_option(void *opts, int opt, const char *arg)
{
	struct lb_opts *o = opts;
	struct sockaddr_storage ss;

	switch (opt) {
	case CLI_OPERAND: /* drain/undrain/disable: BACKEND; maintenance: on|off */
		if (!strcmp(o->command, "lb maintenance") && strcmp(arg, "on") &&
		    strcmp(arg, "off"))
			return cli_usage_error(o->command, NULL, "on or off is required\n");
		o->target = arg;
		break;
	case 'c':
		o->config = arg;
		break;
	case 'd':
		o->node.dev = arg;
		break;
	case 'm':
		if (strcmp(arg, "native") && strcmp(arg, "generic"))
			return cli_usage_error(o->command, NULL,
					       "--xdp-mode '%s': native or generic\n", arg);
		o->node.xdp_generic = !strcmp(arg, "generic");
		break;
	case 'p':
		o->node.pin_root = arg;
		break;
	case 'r':
		o->node.run_dir = arg;
		break;
	case 'i':
		return cli_parse_interval(o->command, arg, &o->interval) ? 2 : 0;
	case 'j':
		o->json = 1;
		break;
	case 'F':
		o->node.force = true;
		break;
	case 'N':
		o->node.node_name = arg;
		break;
	case 'S':
		return cli_parse_source(o->command, arg, &o->sources) ? 2 : 0;
	case 'V':
		o->vip = arg;
		break;
	case 'M':
		if (fp_metrics_parse_listen(arg, &ss))
			return cli_usage_error(
				o->command, NULL,
				"--metrics '%s': ADDR:PORT (IPv6 as [ADDR]:PORT, port "
				"1..65535)\n",
				arg);
		o->metrics = arg;
		break;
	case 'D':
		return take_deadline(o, arg);
	case 'E':
		if (number(arg, FP_MIN_SESSION_ENTRIES, FP_MAX_SESSION_ENTRIES) < 0)
			return cli_usage_error(o->command, NULL,
					       "--sessions '%s': entries, %u..%u\n", arg,
					       FP_MIN_SESSION_ENTRIES, FP_MAX_SESSION_ENTRIES);
		o->node.sessions.entries = (__u32)number(arg, 0, FP_MAX_SESSION_ENTRIES);
		o->node.have_session_entries = true;
		break;
	case 'R':
		if (number(arg, 0, FP_MAX_NEW_FLOW_RATE) < 0)
			return cli_usage_error(
				o->command, NULL,
				"--new-flow-rate '%s': per CPU per second, 0..%u (0: "
				"no limit)\n",
				arg, FP_MAX_NEW_FLOW_RATE);
		o->node.sessions.new_flow_rate = (__u32)number(arg, 0, FP_MAX_NEW_FLOW_RATE);
		o->node.have_new_flow_rate = true;
		break;
	case 'U':
		o->until_flows = number(arg, 0, LLONG_MAX);
		if (o->until_flows < 0)
			return cli_usage_error(o->command, NULL,
					       "--until-flows '%s': a count >= 0\n", arg);
		break;
	case 'P':
		o->node.pop = arg;
		break;
	case 'b':
		o->backend = (int)number(arg, 1, FP_MAX_BACKEND_ID);
		if (o->backend < 0)
			return cli_usage_error(o->command, NULL, "--backend '%s': an id, 1..%d\n",
					       arg, FP_MAX_BACKEND_ID);
		break;
	}
	return 0;
}

static const struct option lb_options[] = {
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
	{ "node", required_argument, NULL, 'N' },
	{ "deadline", required_argument, NULL, 'D' },
	{ "until-flows", required_argument, NULL, 'U' },
	{ "sessions", required_argument, NULL, 'E' },
	{ "new-flow-rate", required_argument, NULL, 'R' },
	{ "pop", required_argument, NULL, 'P' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

/* Name, synopsis, the options it takes (their vals above), operand, help, run. */
static const struct cli_verb lb_verbs[] = {
	{ "up",
	  "lb up --config FILE|etcd://HOST:PORT[,...]/PREFIX --dev IFACE [--node NAME]\n"
	  "             [--xdp-mode native|generic] [--source ADDR]...\n"
	  "             [--metrics ADDR:PORT] [--sessions N] [--new-flow-rate R] [--force]\n"
	  "             [--pop NAME] [--pin-root DIR] [--run-dir DIR]",
	  "cdmSMFprERPN", NULL,
	  "Loads the XDP program, pins it and its maps under PIN-ROOT/IFACE/ (mounting bpffs\n"
	  "at /sys/fs/bpf, or at a PIN-ROOT elsewhere, if it is not on one), attaches it to\n"
	  "IFACE, writes RUN-DIR/IFACE.pid and stays in the foreground, one log line per\n"
	  "config apply and per signal.\n"
	  "With etcd://...: the fleet's config is PREFIX/config in etcd (docs/etcd.md), read\n"
	  "at start and watched: every change is validated and applied as a new generation\n"
	  "(a bad one refused, the running one stays); the node's status goes to\n"
	  "PREFIX/status/NODE (--node, default HOSTNAME-IFACE) under a lease. etcd away:\n"
	  "forwarding goes on, the node retries and catches up when it is back.\n"
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
	  "default; IPv6 as [ADDR]:PORT), a fresh snapshot of the pinned maps per scrape.\n"
	  "--sessions N, --new-flow-rate R: over the config's sessions.entries (the session\n"
	  "table's size, one table every CPU shares; 1024..134217728) and sessions.new_flow_rate\n"
	  "(session entries created per CPU per second; 0: no limit).\n"
	  "--pop NAME: the node's site in a config with `pops` (required there, refused\n"
	  "without): its tables and health checks use only that site's backends; a ticket\n"
	  "naming another site's backend goes to that site's LB nodes.\n",
	  lb_up },
	{ "reload",
	  "lb reload --dev IFACE [--config FILE] [--pop NAME] [--pin-root DIR] [--run-dir DIR]",
	  "cdprP", NULL,
	  "With --config: validates FILE, applies it as a new generation through the pinned\n"
	  "maps (no daemon needed), and makes a running daemon re-read FILE on later SIGHUPs.\n"
	  "Without: sends SIGHUP to the daemon, which re-reads its own file.\n"
	  "Every config is applied as the site the node was started as (lb up --pop); --pop\n"
	  "NAME, when given, must be that site: a reload never changes it.\n",
	  lb_reload },
	{ "down", "lb down --dev IFACE [--pin-root DIR] [--run-dir DIR]", "dpr", NULL,
	  "Asks the daemon on RUN-DIR/IFACE.ctl to withdraw its BGP routes, detach, remove the\n"
	  "pins and its files and exit, and waits up to 10 s (an older daemon that does not\n"
	  "know the request: SIGTERM). With no daemon (killed, or ended by SIGTERM), detaches\n"
	  "flowpin's program (never another one) and removes the pins and files itself.\n",
	  lb_down },
	{ "stats", "lb stats --dev IFACE [--interval S] [--json] [--pin-root DIR] [--run-dir DIR]",
	  "dijpr", NULL,
	  "Global counters by name (every decision and every drop/pass reason), packets by\n"
	  "verdict, session-table and probation occupancy, generation and config applies,\n"
	  "the daemon (its pid file in --run-dir) and this build; per VIP (packets, bytes,\n"
	  "backends by state) and per backend (packets). --interval S: every S seconds, with\n"
	  "rates, until interrupted. --json: one JSON object per sample.\n",
	  lb_stats },
	{ "flows", "lb flows --dev IFACE [--vip ADDR[:PORT]] [--backend ID] [--pin-root DIR]",
	  "dVbp", NULL,
	  "The session table, one flow per line: protocol, source, destination (the VIP),\n"
	  "backend id and address, generation, state, idle seconds. IPv6 with a port:\n"
	  "--vip [ADDR]:PORT. The count goes to stderr, with the number of flows in\n"
	  "probation (seen once, no entry yet; not listed).\n",
	  lb_flows },
	{ "status", "lb status --dev IFACE [--json] [--run-dir DIR]", "djr", NULL,
	  "Asks the daemon (its control socket RUN-DIR/IFACE.ctl): per VIP its address, mode\n"
	  "and generation; per backend its id, address, config state, run-time override,\n"
	  "health (state, since, last reason; \"unchecked\" without health checks) and the\n"
	  "effective state the node applies (the most restrictive of the three).\n"
	  "With a bgp section: BIRD's socket, maintenance, the last configure, and per\n"
	  "announced address its state, reason, since, flap penalty and counters.\n"
	  "--json: the daemon's reply, one JSON object.\n",
	  lb_status },
	{ "drain", "lb drain BACKEND --dev IFACE [--vip NAME] [--run-dir DIR]", "dVr",
	  "BACKEND (an id or an address)",
	  "Run-time override: BACKEND (an id or an address) takes no new flows (weight 0) in\n"
	  "VIP NAME, or without --vip in every VIP that has it; its flows stay. Applied by\n"
	  "the daemon as a new generation, without editing the config file, and kept in\n"
	  "RUN-DIR/IFACE.overrides over a restart or crash of the daemon (not over `lb\n"
	  "down`). An unknown backend or VIP changes nothing.\n",
	  lb_override },
	{ "undrain", "lb undrain BACKEND --dev IFACE [--vip NAME] [--run-dir DIR]", "dVr",
	  "BACKEND (an id or an address)",
	  "Removes BACKEND's run-time override (drain or disable): the config file's state\n"
	  "applies again, as a new generation.\n",
	  lb_override },
	{ "disable", "lb disable BACKEND --dev IFACE [--vip NAME] [--run-dir DIR]", "dVr",
	  "BACKEND (an id or an address)",
	  "Run-time override: BACKEND is out of every table, like `state: down` in the file\n"
	  "(its flows break). As drain otherwise.\n",
	  lb_override },
	{ "maintenance",
	  "lb maintenance on|off --dev IFACE [--deadline DURATION] [--until-flows N]\n"
	  "             [--run-dir DIR]",
	  "dDUr", "on or off",
	  "BGP (the config's bgp section): on drains every announced address of the node at\n"
	  "once (announced with the GRACEFUL_SHUTDOWN community: routers prefer other nodes),\n"
	  "then withdraws it once DURATION has passed (e.g. 90s, 10m, 1h; 0: no deadline) or\n"
	  "the node's flows fell below N, whichever comes first (defaults: bgp.maintenance).\n"
	  "off returns every address to what its health says at once. Kept in\n"
	  "RUN-DIR/IFACE.maintenance over a restart or crash of the daemon (not over `lb\n"
	  "down`). Prints the addresses' states.\n",
	  lb_maintenance },
};

static void usage(FILE *out);

static const struct cli_verbs lb_command = {
	{ "lb", "h", lb_options, usage, lb_option },
	lb_verbs,
	sizeof(lb_verbs) / sizeof(lb_verbs[0]),
	"Defaults: --pin-root " FP_DEFAULT_PIN_ROOT ", --run-dir " DEFAULT_RUN_DIR
	". Exit status: 0, 1 error, 2 usage.\n",
};

static void usage(FILE *out)
{
	fprintf(out, "usage: flowpin lb COMMAND [OPTIONS]\n\n");
	cli_verb_synopses(&lb_command, out);
	fprintf(out,
		"\nDefaults: --pin-root %s, --run-dir %s, --xdp-mode native.\n"
		"'flowpin lb COMMAND --help' explains one command. Exit status: 0 done, 1 error, "
		"2 usage.\n",
		FP_DEFAULT_PIN_ROOT, DEFAULT_RUN_DIR);
}

int cmd_lb(int argc, char **argv)
{
	struct lb_opts o = {
		.backend = -1,
		.deadline_ms = -1,
		.until_flows = -1,
		.node = { .pin_root = FP_DEFAULT_PIN_ROOT, .run_dir = DEFAULT_RUN_DIR },
	};
	const struct cli_verb *verb;
	struct fp_lbnode given;
	const char *dev;
	char cmd[32];
	int rc;

	o.command = cmd;
	rc = cli_parse_verb(&lb_command, argc, argv, &o, &verb, cmd, sizeof(cmd));
	if (rc != CLI_RUN)
		return rc;
	o.verb = verb->name;
	dev = o.node.dev;
	if (!dev) {
		fprintf(stderr, "flowpin %s: --dev is required\n", cmd);
		cli_verb_usage(&lb_command, verb, stderr);
		return 2;
	}
	if (strlen(dev) >= IF_NAMESIZE || strchr(dev, '/') || dev[0] == '.')
		return cli_usage_error(cmd, NULL, "--dev '%s' is not an interface name\n", dev);
	/* Those that ask the daemon, or clean up after it, work without the device. */
	if (!if_nametoindex(dev) && verb->run != lb_down && verb->run != lb_status &&
	    verb->run != lb_override && verb->run != lb_maintenance) {
		fp_err("--dev %s: no such interface\n", dev);
		return 1;
	}
	given = o.node; /* fp_lbnode_init() starts from zero */
	if (fp_lbnode_init(&o.node, dev, given.pin_root, given.run_dir))
		return cli_usage_error(cmd, NULL, "--pin-root/--run-dir too long\n");
	o.node.xdp_generic = given.xdp_generic;
	o.node.force = given.force;
	o.node.sessions = given.sessions;
	o.node.have_session_entries = given.have_session_entries;
	o.node.have_new_flow_rate = given.have_new_flow_rate;
	o.node.pop = given.pop;
	o.node.node_name = given.node_name;
	if (!o.node.node_name) {
		static char name[FP_FLEET_NODE_MAX];
		char host[64] = "node";

		gethostname(host, sizeof(host) - 1);
		host[strcspn(host, ".")] = 0;
		snprintf(name, sizeof(name), "%s-%s", host, dev);
		o.node.node_name = name;
	}
	o.node.sources.v4 = o.sources.v4;
	o.node.sources.v6 = o.sources.v6;
	o.node.sources.have_v4 = o.sources.have_v4;
	o.node.sources.have_v6 = o.sources.have_v6;
	return verb->run(&o);
}
