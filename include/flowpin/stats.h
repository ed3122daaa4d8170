/* SPDX-License-Identifier: MIT */
/*
 * The LB node's statistics model: a snapshot of every counter, VIP and backend (with
 * their traffic) read from the pinned maps at one moment, and per-second rates between
 * two snapshots. `flowpin lb stats` and `flows` print it; the metrics endpoint
 * (lib/metrics.c) exports the same. Userspace only.
 */
#ifndef FLOWPIN_STATS_H
#define FLOWPIN_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <flowpin/addr.h>
#include <flowpin/lb.h>
#include <flowpin/maps.h>

/* States of a `backends` entry, from its flags (fp_backend_entry_state()). */
enum fp_entry_state {
	FP_ENTRY_ACTIVE,
	FP_ENTRY_DRAINING,
	FP_ENTRY_DOWN,
	FP_ENTRY_REMOVED,
	FP_ENTRY__MAX
};

struct fp_stats_vip {
	struct fp_vip_key key;
	struct fp_vip vip;
	struct fp_traffic traffic;
	unsigned int backends[FP_ENTRY__MAX]; /* entries of the VIP by state */
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
	/* `info`: settings fixed at load, last generation, applies and apply errors. */
	struct fp_info info;
	/* Occupancy: session entries and live probation marks (every slot of both read
	 * through an mmap): exact counts, not estimates. */
	struct fp_session_count sessions;
	__u32 probation_live;
	double took; /* seconds fp_stats_take() took (the cost of a scrape) */
	/* The daemon of the node (fp_stats_take_daemon()); 0 = none running. */
	int daemon_pid;
	double daemon_start_time; /* seconds since the epoch; 0 = unknown */
};

/* Reads counters, VIPs, backends, `info` and the occupancy of @lb into @s.
 * Returns 0 or a negative errno. */
int fp_stats_take(const struct fp_lb *lb, struct fp_stats_snapshot *s);
void fp_stats_release(struct fp_stats_snapshot *s);
/* Fills each VIP's backends[] (entries by state) from the backend rows (fp_stats_take()
 * does). */
void fp_stats_count_states(struct fp_stats_snapshot *s);
/* Records the daemon @pid (0: none) and its start time (from /proc) in @s. */
void fp_stats_take_daemon(struct fp_stats_snapshot *s, int pid);
/* Start time of process @pid in seconds since the epoch (/proc/PID/stat starttime and
 * /proc/stat btime). 0 or a negative errno. */
int fp_stats_process_start_time(int pid, double *out);

/* What this binary is: version (git describe at build time), commit, the map layout it
 * reads (FP_INFO_MAGIC as its four characters, e.g. "flp9"). "unknown" outside git. */
const char *fp_build_version(void);
const char *fp_build_commit(void);
const char *fp_layout_name(__u32 magic, char buf[8]);

/*
 * The XDP action a decision counter stands for: "pass", "drop", "tx" or "redirect";
 * NULL for the informational counters (session_hit, probation_insert ...). Every packet
 * lands in exactly one decision counter, so these are a partition of the packets seen.
 */
const char *fp_counter_verdict(int counter);

/* Packets by verdict: the decision counters summed by fp_counter_verdict(). */
enum { FP_VERDICT_PASS, FP_VERDICT_DROP, FP_VERDICT_TX, FP_VERDICT_REDIRECT, FP_VERDICT__MAX };
extern const char *const fp_verdict_names[FP_VERDICT__MAX]; /* "pass", "drop", "tx", ... */
void fp_stats_verdicts(const struct fp_stats_snapshot *s, unsigned long long out[FP_VERDICT__MAX]);

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
enum fp_entry_state fp_backend_entry_state_of(const struct fp_backend_entry *b);
const char *fp_entry_state_name(enum fp_entry_state state);

/* "udp", "syn", "established", "closing" (enum fp_tcp_state); "?" for another value. */
const char *fp_session_state_name(__u8 state);

/* Which sessions `lb flows` shows. Zero-initialised with vip_port and backend -1: all. */
struct fp_flow_filter {
	bool by_vip;
	struct fp_addr vip;
	int vip_port; /* -1: any */
	int backend;  /* -1: any */
};

/* --vip ADDR[:PORT] (fp_endpoint_parse()) into @f. 0 or -EINVAL. */
int fp_flow_filter_vip(struct fp_flow_filter *f, const char *endpoint);

/* One session of the table, with what the snapshot knows of it. */
struct fp_stats_flow {
	const struct fp_flow_key *key;
	const struct fp_session *session;
	const struct fp_stats_backend *backend; /* NULL: no longer in the VIP's block */
	__u64 idle_s;				/* since its last refresh */
};

typedef int (*fp_stats_flow_cb)(const struct fp_stats_flow *flow, void *arg);

/* Calls @cb for each session of @lb that @f selects, @s giving VIPs and backends. Returns
 * 0, what @cb returned (not 0: stops), or a negative errno. */
int fp_stats_for_each_flow(const struct fp_lb *lb, const struct fp_stats_snapshot *s,
			   const struct fp_flow_filter *f, fp_stats_flow_cb cb, void *arg);

#endif
