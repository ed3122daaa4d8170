// SPDX-License-Identifier: MIT
/*
 * Prometheus text exposition of a statistics snapshot: see flowpin/metrics.h.
 *
 * The decision counters (every packet lands in exactly one) are one family with
 * verdict and reason labels, flowpin_lb_packets_total: a sum over the labels is the
 * packets seen. The informational counters (session_insert, probation_evict,
 * flow_cache_hit ...) count events on packets already counted there, so each is a
 * family of its own (flowpin_lb_<name>_total): a sum over a label must mean something.
 * Names follow the Prometheus conventions (flowpin_ prefix, _total counters, seconds,
 * bytes); `promtool check metrics` lints them in tests/bpf/test_lb_cli.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <flowpin/addr.h>
#include <flowpin/config.h>
#include <flowpin/effective.h>
#include <flowpin/health.h>
#include <flowpin/metrics.h>

const char *fp_metrics_escape_label(const char *in, char *buf, size_t len)
{
	size_t o = 0;

	for (; *in && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			buf[o++] = '\\';
			buf[o++] = *in;
		} else if (*in == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *in;
		}
	}
	if (len)
		buf[o < len ? o : len - 1] = '\0';
	return buf;
}

/* HELP text: backslash and newline escaped (quotes are fine there). */
static void write_help(FILE *out, const char *family, const char *help)
{
	fprintf(out, "# HELP %s ", family);
	for (; *help; help++) {
		if (*help == '\\')
			fputs("\\\\", out);
		else if (*help == '\n')
			fputs("\\n", out);
		else
			fputc(*help, out);
	}
	fputc('\n', out);
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	write_help(out, name, help);
	fprintf(out, "# TYPE %s %s\n", name, type);
}

static const char *proto_name(__u8 proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "other";
}

/* vip="ADDR:PORT/PROTO" (port 0: every port), escaped, as `lb stats` names it. */
static void vip_label(const struct fp_vip_key *k, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN], raw[INET6_ADDRSTRLEN + 16];
	struct fp_addr addr;

	memcpy(addr.a, k->addr, 16);
	fp_addr_str(&addr, a, sizeof(a));
	snprintf(raw, sizeof(raw), strchr(a, ':') ? "[%s]:%u/%s" : "%s:%u/%s", a, ntohs(k->port),
		 proto_name(k->proto));
	fp_metrics_escape_label(raw, buf, len);
}

/* The series' labels of a backend row: vip, backend id, address; NULL if its VIP is gone. */
static const char *backend_labels(const struct fp_stats_snapshot *s,
				  const struct fp_stats_backend *b, char *buf, size_t len)
{
	char vip[128], addr_raw[INET6_ADDRSTRLEN], addr[2 * INET6_ADDRSTRLEN];
	const struct fp_stats_vip *v = fp_stats_find_vip(s, b->vip_index);
	struct fp_addr a;

	if (!v)
		return NULL;
	vip_label(&v->key, vip, sizeof(vip));
	memcpy(a.a, b->backend.addr, 16);
	fp_metrics_escape_label(fp_addr_str(&a, addr_raw, sizeof(addr_raw)), addr, sizeof(addr));
	snprintf(buf, len, "vip=\"%s\",backend=\"%u\",address=\"%s\"", vip, b->backend.id, addr);
	return buf;
}

static void write_counters(FILE *out, const struct fp_stats_snapshot *s)
{
	char name[96];

	family(out, "flowpin_lb_packets_total", "counter",
	       "packets the XDP program handled, by verdict (XDP action: pass, drop, tx, "
	       "redirect) and reason (the decision counter of `flowpin lb stats`); every packet "
	       "is in exactly one series");
	for (int i = 0; i < FP_CNT__MAX; i++)
		if (fp_counter_verdict(i))
			fprintf(out,
				"flowpin_lb_packets_total{verdict=\"%s\",reason=\"%s\"} %llu\n",
				fp_counter_verdict(i), fp_counter_names[i],
				(unsigned long long)s->counters[i]);
	for (int i = 0; i < FP_CNT__MAX; i++) {
		if (fp_counter_verdict(i))
			continue;
		snprintf(name, sizeof(name), "flowpin_lb_%s_total", fp_counter_names[i]);
		family(out, name, "counter", fp_counter_help[i]);
		fprintf(out, "%s %llu\n", name, (unsigned long long)s->counters[i]);
	}
}

static void write_node(FILE *out, const struct fp_stats_snapshot *s)
{
	char layout[8], version[128], commit[64];

	family(out, "flowpin_build_info", "gauge",
	       "always 1: the flowpin version (git describe), commit and map layout "
	       "(FP_INFO_MAGIC) of the process serving these metrics");
	fprintf(out, "flowpin_build_info{version=\"%s\",commit=\"%s\",layout=\"%s\"} 1\n",
		fp_metrics_escape_label(fp_build_version(), version, sizeof(version)),
		fp_metrics_escape_label(fp_build_commit(), commit, sizeof(commit)),
		fp_layout_name(FP_INFO_MAGIC, layout));
	family(out, "flowpin_start_time_seconds", "gauge",
	       "start time of the node's daemon (`flowpin lb up`), seconds since the epoch");
	if (s->daemon_start_time > 0)
		fprintf(out, "flowpin_start_time_seconds %.2f\n", s->daemon_start_time);
	family(out, "flowpin_lb_generation", "gauge",
	       "last table generation applied on the node (any VIP)");
	fprintf(out, "flowpin_lb_generation %u\n", s->info.generation);
	family(out, "flowpin_config_applies_total", "counter",
	       "config applies on the node since its maps were created (start, SIGHUP, `lb "
	       "reload`, run-time changes), by any process; kept across restarts");
	fprintf(out, "flowpin_config_applies_total %llu\n", (unsigned long long)s->info.applies);
	family(out, "flowpin_config_apply_errors_total", "counter",
	       "config applies refused or failed: the running generation stayed");
	fprintf(out, "flowpin_config_apply_errors_total %llu\n",
		(unsigned long long)s->info.apply_errors);

	family(out, "flowpin_lb_session_entries", "gauge",
	       "entries in the session table by state: live (idle at most its timeout) or "
	       "expired (still taking room until a new entry of its bucket reuses it)");
	fprintf(out, "flowpin_lb_session_entries{state=\"live\"} %llu\n",
		(unsigned long long)s->sessions.live);
	fprintf(out, "flowpin_lb_session_entries{state=\"expired\"} %llu\n",
		(unsigned long long)(s->sessions.entries - s->sessions.live));
	family(out, "flowpin_lb_session_entries_limit", "gauge",
	       "capacity of the session table (entries); new entries replace the least recently "
	       "seen of their two buckets when both are full (session_evict)");
	fprintf(out, "flowpin_lb_session_entries_limit %u\n", s->sessions.capacity);
	family(out, "flowpin_lb_probation_marks", "gauge",
	       "live probation marks (flows seen once, first packet within the transitory "
	       "timeout), counted exactly over every slot");
	fprintf(out, "flowpin_lb_probation_marks %u\n", s->probation_live);
	family(out, "flowpin_lb_probation_slots", "gauge",
	       "slots of the probation array (one mark each; a new flow overwrites its slot), "
	       "used by flows whose two session buckets have no room for a mark");
	fprintf(out, "flowpin_lb_probation_slots %u\n", s->info.probation_slots);
	family(out, "flowpin_stats_read_duration_seconds", "gauge",
	       "time this scrape took to read the maps (counters, tables, session and "
	       "probation occupancy)");
	fprintf(out, "flowpin_stats_read_duration_seconds %.6f\n", s->took);
}

/* ---- the daemon's status model: config state, override, health, effective state ---- */

/* vip="ADDR:PORT/PROTO" of a status VIP, as vip_label() names a map VIP. */
static void status_vip_label(const struct fp_lbd_vip_status *v, char *buf, size_t len)
{
	struct fp_vip_key k = { .port = htons(v->port), .proto = v->proto };

	memcpy(k.addr, v->addr.a, 16);
	vip_label(&k, buf, len);
}

static void status_backend_labels(const struct fp_lbd_vip_status *v,
				  const struct fp_lbd_backend_status *b, char *buf, size_t len)
{
	char vip[128], addr_raw[INET6_ADDRSTRLEN], addr[2 * INET6_ADDRSTRLEN];

	status_vip_label(v, vip, sizeof(vip));
	fp_metrics_escape_label(fp_addr_str(&b->addr, addr_raw, sizeof(addr_raw)), addr,
				sizeof(addr));
	snprintf(buf, len, "vip=\"%s\",backend=\"%u\",address=\"%s\"", vip, b->id, addr);
}

static double epoch_seconds(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

/* One-hot: @value among @names[0..n), each a sample of @fam. */
static void one_hot(FILE *out, const char *fam, const char *labels, const char *label,
		    const char *const *names, size_t n, const char *value)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s{%s,%s=\"%s\"} %d\n", fam, labels, label, names[i],
			!strcmp(names[i], value));
}

static void write_status(FILE *out, const struct fp_lbd_vip_status *vips, size_t n)
{
	/* The names the daemon's model uses: the config's states, the overrides, the health
	 * module's states and "unchecked" (flowpin/lbd.h). */
	const char *const overrides[] = { fp_override_name(FP_OVERRIDE_NONE),
					  fp_override_name(FP_OVERRIDE_DRAIN),
					  fp_override_name(FP_OVERRIDE_DISABLE) };
	const char *const healths[] = { "unchecked", fp_health_status_name(FP_HEALTH_UNKNOWN),
					fp_health_status_name(FP_HEALTH_UP),
					fp_health_status_name(FP_HEALTH_DOWN) };
	char vip[128], labels[512], name[2 * FP_NAME_MAX];

	family(out, "flowpin_vip_info", "gauge",
	       "always 1: the VIP's name in the config and its pinning mode");
	for (size_t i = 0; i < n; i++) {
		status_vip_label(&vips[i], vip, sizeof(vip));
		fprintf(out, "flowpin_vip_info{vip=\"%s\",name=\"%s\",pinning=\"%s\"} 1\n", vip,
			fp_metrics_escape_label(vips[i].name, name, sizeof(name)),
			fp_pinning_name(vips[i].pinning));
	}
	family(out, "flowpin_vip_health_fail_open", "gauge",
	       "1 while health is ignored for the VIP (fail-open: health alone would leave it "
	       "no active backend)");
	for (size_t i = 0; i < n; i++) {
		status_vip_label(&vips[i], vip, sizeof(vip));
		fprintf(out, "flowpin_vip_health_fail_open{vip=\"%s\"} %d\n", vip,
			vips[i].health_ignored ? 1 : 0);
	}
	family(out, "flowpin_vip_health_fail_open_total", "counter",
	       "times the VIP entered fail-open since the daemon started");
	for (size_t i = 0; i < n; i++) {
		status_vip_label(&vips[i], vip, sizeof(vip));
		fprintf(out, "flowpin_vip_health_fail_open_total{vip=\"%s\"} %llu\n", vip,
			(unsigned long long)vips[i].health_ignored_total);
	}

	/* One family per question, each one-hot over its states (every state present, 0 or
	 * 1: a state a backend left reads 0 at once instead of going stale). */
	const struct {
		const char *name, *label, *help;
		const char *const *states;
		size_t n;
	} hots[] = {
		{ "flowpin_backend_config_state", "state",
		  "1 for the backend's state in the config file (active, draining, down)",
		  fp_backend_state_names, FP_BACKEND_STATE__COUNT },
		{ "flowpin_backend_override", "override",
		  "1 for the backend's run-time override (none, drain, disable: `flowpin lb "
		  "drain|undrain|disable`)",
		  overrides, 3 },
		{ "flowpin_backend_health", "state",
		  "1 for the backend's health (unchecked: no check configured; unknown: no "
		  "verdict yet; up; down)",
		  healths, 4 },
		{ "flowpin_backend_effective_state", "state",
		  "1 for the state the node applies: the most restrictive of config, override "
		  "and health (health ignored while the VIP is in fail-open)",
		  fp_backend_state_names, FP_BACKEND_STATE__COUNT },
	};
	for (size_t h = 0; h < sizeof(hots) / sizeof(hots[0]); h++) {
		family(out, hots[h].name, "gauge", hots[h].help);
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < vips[i].n_backends; j++) {
				const struct fp_lbd_backend_status *b = &vips[i].backends[j];
				const char *value = h == 0   ? fp_backend_state_name(b->config)
						    : h == 1 ? fp_override_name(b->override)
						    : h == 2 ? b->health
							     : fp_backend_state_name(b->effective);

				status_backend_labels(&vips[i], b, labels, sizeof(labels));
				one_hot(out, hots[h].name, labels, hots[h].label, hots[h].states,
					hots[h].n, value ? value : "");
			}
	}
	family(out, "flowpin_backend_health_last_change_timestamp_seconds", "gauge",
	       "when the backend's health state last changed (or its checker started), "
	       "seconds since the epoch; absent while unchecked");
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < vips[i].n_backends; j++) {
			const struct fp_lbd_backend_status *b = &vips[i].backends[j];

			if (!b->health_since.tv_sec)
				continue;
			status_backend_labels(&vips[i], b, labels, sizeof(labels));
			fprintf(out,
				"flowpin_backend_health_last_change_timestamp_seconds{%s} %.3f\n",
				labels, epoch_seconds(&b->health_since));
		}
	family(out, "flowpin_backend_effective_last_change_timestamp_seconds", "gauge",
	       "when the backend's effective state last changed (or the daemon first saw "
	       "it), seconds since the epoch");
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < vips[i].n_backends; j++) {
			const struct fp_lbd_backend_status *b = &vips[i].backends[j];

			status_backend_labels(&vips[i], b, labels, sizeof(labels));
			fprintf(out,
				"flowpin_backend_effective_last_change_timestamp_seconds{%s} "
				"%.3f\n",
				labels, epoch_seconds(&b->last_change));
		}
	family(out, "flowpin_backend_health_transitions_total", "counter",
	       "health state changes of the backend (unknown, up, down) since its checker "
	       "started");
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < vips[i].n_backends; j++) {
			const struct fp_lbd_backend_status *b = &vips[i].backends[j];

			status_backend_labels(&vips[i], b, labels, sizeof(labels));
			fprintf(out, "flowpin_backend_health_transitions_total{%s} %llu\n", labels,
				(unsigned long long)b->health_transitions_total);
		}
	for (int f = 0; f < 2; f++) {
		const char *fam = f ? "flowpin_backend_health_check_failures_total"
				    : "flowpin_backend_health_checks_total";

		family(out, fam, "counter",
		       f ? "health checks of the backend that failed, by kind of check"
			 : "health checks of the backend run, by kind of check (tcp, http, "
			   "https, tunnel)");
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < vips[i].n_backends; j++) {
				const struct fp_lbd_backend_status *b = &vips[i].backends[j];

				status_backend_labels(&vips[i], b, labels, sizeof(labels));
				for (int k = 0; k < FP_CHECK_KIND__COUNT; k++)
					fprintf(out, "%s{%s,check=\"%s\"} %llu\n", fam, labels,
						fp_check_kind_name(k),
						(unsigned long long)(f ? b->health_failures_total[k]
								       : b->health_probes_total
										     [k]));
			}
	}
}

/* A node configured from etcd: whether etcd answers, what the node runs, what it refused. */
static void write_fleet(FILE *out, const struct fp_metrics_daemon *d)
{
	const struct fp_fleet_state *s = &d->fleet_state;
	const struct fp_fleet_report *r = &d->fleet_report;

	family(out, "flowpin_etcd_reachable", "gauge",
	       "1 while etcd answers the node, 0 while it cannot be reached (the node forwards "
	       "with the config applied last and retries with backoff)");
	fprintf(out, "flowpin_etcd_reachable %d\n", s->reachable);
	family(out, "flowpin_etcd_reachable_since_seconds", "gauge",
	       "Unix time of the last change of flowpin_etcd_reachable");
	fprintf(out, "flowpin_etcd_reachable_since_seconds %.3f\n", epoch_seconds(&s->since));
	family(out, "flowpin_etcd_failures_total", "counter",
	       "attempts to reach etcd that failed (each followed by a backoff)");
	fprintf(out, "flowpin_etcd_failures_total %llu\n", (unsigned long long)s->failures_total);
	family(out, "flowpin_etcd_revision", "gauge", "etcd's revision at the node's last read");
	fprintf(out, "flowpin_etcd_revision %lld\n", (long long)s->seen_revision);
	family(out, "flowpin_etcd_applied_revision", "gauge",
	       "mod_revision of the etcd config the node runs");
	fprintf(out, "flowpin_etcd_applied_revision %lld\n", (long long)r->applied_revision);
	family(out, "flowpin_etcd_applied_seconds", "gauge",
	       "Unix time the node applied the etcd config it runs");
	fprintf(out, "flowpin_etcd_applied_seconds %.3f\n", epoch_seconds(&r->applied_at));
	family(out, "flowpin_etcd_refused_revision", "gauge",
	       "mod_revision of the last etcd config the node refused, 0 when it runs the latest");
	fprintf(out, "flowpin_etcd_refused_revision %lld\n", (long long)r->refused_revision);
}

int fp_metrics_write(FILE *out, const struct fp_stats_snapshot *s,
		     const struct fp_metrics_daemon *d)
{
	char vip[128], labels[512];

	write_counters(out, s);
	write_node(out, s);

	family(out, "flowpin_vips", "gauge", "VIPs in the pinned vips map");
	fprintf(out, "flowpin_vips %zu\n", s->n_vips);
	family(out, "flowpin_backends", "gauge", "backend entries of every VIP, any state");
	fprintf(out, "flowpin_backends %zu\n", s->n_backends);

	family(out, "flowpin_vip_generation", "gauge",
	       "table generation active for the VIP (carried in the wire header); changes() "
	       "of it counts the VIP's table changes");
	for (size_t i = 0; i < s->n_vips; i++) {
		vip_label(&s->vips[i].key, vip, sizeof(vip));
		fprintf(out, "flowpin_vip_generation{vip=\"%s\",pinning=\"%s\"} %u\n", vip,
			fp_pinning_name(s->vips[i].vip.pinning), s->vips[i].vip.generation);
	}
	family(out, "flowpin_vip_backends", "gauge",
	       "backend entries of the VIP in the data plane by state (active: in the table; "
	       "draining, down, removed: no new flows)");
	for (size_t i = 0; i < s->n_vips; i++) {
		vip_label(&s->vips[i].key, vip, sizeof(vip));
		for (int st = 0; st < FP_ENTRY__MAX; st++)
			fprintf(out, "flowpin_vip_backends{vip=\"%s\",state=\"%s\"} %u\n", vip,
				fp_entry_state_name(st), s->vips[i].backends[st]);
	}
	family(out, "flowpin_vip_packets_total", "counter",
	       "packets to the VIP the program encapsulated to a backend");
	for (size_t i = 0; i < s->n_vips; i++) {
		vip_label(&s->vips[i].key, vip, sizeof(vip));
		fprintf(out, "flowpin_vip_packets_total{vip=\"%s\"} %llu\n", vip,
			(unsigned long long)s->vips[i].traffic.packets);
	}
	family(out, "flowpin_vip_bytes_total", "counter",
	       "bytes of the client IP packets (before encapsulation) to the VIP sent to a "
	       "backend");
	for (size_t i = 0; i < s->n_vips; i++) {
		vip_label(&s->vips[i].key, vip, sizeof(vip));
		fprintf(out, "flowpin_vip_bytes_total{vip=\"%s\"} %llu\n", vip,
			(unsigned long long)s->vips[i].traffic.bytes);
	}

	/* No state label on the traffic counters: a state change would start a new series
	 * (a counter reset to a scraper). The state is a gauge of its own. */
	family(out, "flowpin_backend_entry_state", "gauge",
	       "1 for the state of the backend's entry in the data plane (active, draining, "
	       "down, removed), 0 for the others");
	for (size_t j = 0; j < s->n_backends; j++) {
		const struct fp_stats_backend *b = &s->backends[j];

		if (!backend_labels(s, b, labels, sizeof(labels)))
			continue;
		for (int st = 0; st < FP_ENTRY__MAX; st++)
			fprintf(out, "flowpin_backend_entry_state{%s,state=\"%s\"} %d\n", labels,
				fp_entry_state_name(st),
				fp_backend_entry_state_of(&b->backend) == (enum fp_entry_state)st);
	}
	for (int f = 0; f < 2; f++) {
		const char *fam =
			f ? "flowpin_backend_bytes_total" : "flowpin_backend_packets_total";

		family(out, fam, "counter",
		       f ? "bytes of the client IP packets (before encapsulation) sent to the "
			   "backend"
			 : "packets sent to the backend");
		for (size_t j = 0; j < s->n_backends; j++) {
			const struct fp_stats_backend *b = &s->backends[j];

			if (!backend_labels(s, b, labels, sizeof(labels)))
				continue;
			fprintf(out, "%s{%s} %llu\n", fam, labels,
				(unsigned long long)(f ? b->traffic.bytes : b->traffic.packets));
		}
	}

	if (d) {
		family(out, "flowpin_scrape_errors_total", "counter",
		       "scrapes that could not read the pinned maps (answered 500)");
		fprintf(out, "flowpin_scrape_errors_total %llu\n", d->scrape_errors_total);
		write_status(out, d->status, d->n_status);
		if (d->fleet)
			write_fleet(out, d);
	}
	return ferror(out) ? -EIO : 0;
}

char *fp_metrics_render(const struct fp_stats_snapshot *s, const struct fp_metrics_daemon *d,
			size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&buf, &n);
	int err;

	if (!out)
		return NULL;
	err = fp_metrics_write(out, s, d);
	if (fclose(out) || err) {
		free(buf);
		return NULL;
	}
	if (len)
		*len = n;
	return buf;
}

int fp_metrics_parse_listen(const char *text, struct sockaddr_storage *ss)
{
	struct fp_addr a;
	int port;

	memset(ss, 0, sizeof(*ss));
	if (fp_endpoint_parse(text, &a, &port) || port < 1)
		return -EINVAL;
	if (fp_addr_v4(&a)) {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		memcpy(&a4->sin_addr, a.a + 12, 4);
		a4->sin_family = AF_INET;
		a4->sin_port = htons((__u16)port);
	} else {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		memcpy(&a6->sin6_addr, a.a, 16);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((__u16)port);
	}
	return 0;
}
