/* SPDX-License-Identifier: MIT */
/*
 * The LB node's statistics model: a snapshot of every counter, VIP and backend (with
 * their traffic) read from the pinned maps at one moment, and per-second rates between
 * two snapshots. `flowpin lb stats` and `flows` print it; a metrics endpoint would
 * export the same. Userspace only.
 */
#ifndef FLOWPIN_STATS_H
#define FLOWPIN_STATS_H

#include <stddef.h>
#include <time.h>
#include <flowpin/lb.h>
#include <flowpin/maps.h>

struct fp_stats_vip {
	struct fp_vip_key key;
	struct fp_vip vip;
	struct fp_traffic traffic;
};

struct fp_stats_backend {
	__u32 vip_index;
	struct fp_backend_entry backend;
	struct fp_traffic traffic;
};

/* Zero-initialise; release with fp_stats_release(). Can be taken again in place. */
struct fp_stats_snapshot {
	__u64 counters[FP_CNT__MAX];
	struct fp_stats_vip vips[FP_VIP_SLOTS_MAX]; /* by VIP index */
	size_t n_vips;
	struct fp_stats_backend *backends; /* grouped by VIP, in the VIPs' order */
	size_t n_backends, cap_backends;
	__u32 collecting_vip; /* fp_lb_for_each_backend's callback gets no VIP */
	struct timespec at;   /* CLOCK_MONOTONIC */
};

/* Reads counters, VIPs and backends of @lb into @s. Returns 0 or a negative errno. */
int fp_stats_take(const struct fp_lb *lb, struct fp_stats_snapshot *s);
void fp_stats_release(struct fp_stats_snapshot *s);

/* Seconds from @prev to @now; 0 without @prev. */
double fp_stats_seconds(const struct fp_stats_snapshot *now, const struct fp_stats_snapshot *prev);
/* Per second; 0 without a previous figure (or after a counter reset). */
double fp_stats_rate(__u64 now, __u64 before, double seconds);

/* Rows by VIP index, by (VIP index, backend id); NULL when absent or @s is NULL. */
const struct fp_stats_vip *fp_stats_find_vip(const struct fp_stats_snapshot *s, __u32 index);
const struct fp_stats_backend *fp_stats_find_backend(const struct fp_stats_snapshot *s,
						     __u32 vip_index, __u32 id);
/* The VIP a session belongs to: exact port first, then the VIP's all-ports entry. */
const struct fp_stats_vip *fp_stats_session_vip(const struct fp_stats_snapshot *s,
						const struct fp_flow_key *k);

/* "active", "draining", "down" or "removed", from a `backends` entry's flags. */
const char *fp_backend_entry_state(const struct fp_backend_entry *b);

#endif
