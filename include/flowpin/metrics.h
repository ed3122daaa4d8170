/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition (format 0.0.4) of an LB node's statistics snapshot:
 * what `flowpin lb up --metrics ADDR:PORT` serves on /metrics. Pure: no maps, no I/O,
 * unit-tested without root. Userspace only.
 */
#ifndef FLOWPIN_METRICS_H
#define FLOWPIN_METRICS_H

#include <stddef.h>
#include <stdio.h>
#include <flowpin/lbd.h>
#include <flowpin/stats.h>

/* What the daemon knows beyond the maps (applies are counted in the maps' `info`). */
#include <flowpin/fleet.h>

struct fp_metrics_daemon {
	unsigned long long scrape_errors_total; /* snapshots that failed to read the maps */
	/* The daemon's status model (flowpin/lbd.h), a copy taken for this scrape: config
	 * state, override, health and effective state per backend, fail-open per VIP. */
	const struct fp_lbd_vip_status *status;
	size_t n_status;
	/* --config etcd://...: the link to etcd and what the node applied (flowpin/fleet.h). */
	bool fleet;
	struct fp_fleet_state fleet_state;
	struct fp_fleet_report fleet_report;
};

/* Writes the exposition of @s (and @d, may be NULL) to @out. Returns 0 or -EIO. */
int fp_metrics_write(FILE *out, const struct fp_stats_snapshot *s,
		     const struct fp_metrics_daemon *d);

/* The same into a malloc'd, NUL-terminated buffer (*@len without the NUL). NULL: ENOMEM. */
char *fp_metrics_render(const struct fp_stats_snapshot *s, const struct fp_metrics_daemon *d,
			size_t *len);

/* A label value escaped as the format wants (\\, \", \n) into @buf; truncates safely. */
const char *fp_metrics_escape_label(const char *in, char *buf, size_t len);

/* "ADDR:PORT" (IPv6 in brackets) into a socket address for the endpoint. 0 or -EINVAL. */
struct sockaddr_storage;
int fp_metrics_parse_listen(const char *text, struct sockaddr_storage *ss);

#endif
