/* SPDX-License-Identifier: MIT */
/*
 * Loader library of the LB node's XDP program (bpf/lb.bpf.c): load, fill, pin, attach,
 * apply new table generations, read counters and sessions. Userspace only.
 *
 * Pinned layout, under a directory chosen by the caller (flowpin lb uses
 * /sys/fs/bpf/flowpin/<dev>/):
 *
 *   prog       the XDP program (attach/detach from another process)
 *   vips       hash  struct fp_vip_key -> struct fp_vip
 *   buckets    array struct fp_bucket_pair, mmapable: a flat struct fp_bucket[]
 *              (flowpin/maps.h: fp_bucket_index)
 *   backends   array struct fp_backend_entry, index vip_index * FP_BACKEND_SLOTS + id
 *   sessions   array of struct fp_session_bucket: flowpin's own set-associative table,
 *              one for every CPU (flowpin/maps.h), flow key -> struct fp_session
 *   probation  array struct fp_probation_mark, mmapable: flows seen once, not yet
 *              promoted to a session entry (bpf/lb.bpf.c "Session admission")
 *   stats      per-CPU array, one struct fp_stats
 *   traffic    per-CPU array struct fp_traffic, same index as backends (id 0 = VIP)
 *   ratelimit  per-CPU array, one struct fp_ratelimit
 *   info       array, one struct fp_info: the settings fixed at load, the flow cache epoch
 *   flow_cache per-CPU array struct fp_flow_cache_entry (flowpin/maps.h)
 *   vip_cache  per-CPU array struct fp_vip_cache_entry (flowpin/maps.h)
 *   vip_addrs  hash  struct fp_vip_addr_key -> struct fp_vip_addr: every VIP address
 *   quic_lb    hash  VIP index -> struct fp_quic_lb: QUIC-LB config of the VIPs that
 *              decode CIDs in XDP (bpf/quic.h)
 *   quic_servers hash struct fp_quic_server_key -> struct fp_quic_server: server ID of a
 *              VIP -> backend id
 *   quic_crypto array of kptrs to the kernel's AES contexts, one per VIP index with a
 *              single-pass key (written by bpf/quic_key.bpf.c only)
 *
 * The directory itself is the apply lock: fp_lb_apply() holds flock(LOCK_EX) on it, so
 * two processes applying configs (SIGHUP in `lb up` and a `lb reload`) cannot
 * interleave their writes.
 *
 * Every function returns 0 or a negative errno and logs the reason through fp_log.
 */
#ifndef FLOWPIN_LB_H
#define FLOWPIN_LB_H

#include <stdbool.h>
#include <flowpin/config.h>
#include <flowpin/flow.h>
#include <flowpin/maps.h>

struct fp_lb;

#define FP_LB_DEFAULT_SESSIONS	    FP_DEFAULT_SESSION_ENTRIES
#define FP_LB_DEFAULT_NEW_FLOW_RATE FP_DEFAULT_NEW_FLOW_RATE /* entries per CPU per second */
#define FP_LB_MIN_PROBATION	    4096
#define FP_LB_MAX_PROBATION	    (1U << 24) /* 128 MiB of marks */

struct fp_lb_opts {
	/*
	 * Outer source addresses (IPv4-mapped for v4). A packet for a backend of a family
	 * without a source address is dropped (counter drop_no_source).
	 */
	struct fp_addr source_v4;
	struct fp_addr source_v6;
	bool have_source_v4, have_source_v6;
	__u32 max_vips;	       /* VIP slots in the maps; 0: 2 x the config's VIPs, >= 8, <= 64 */
	__u32 session_entries; /* 0: FP_LB_DEFAULT_SESSIONS */
	/*
	 * Ceiling on session entries created (flows promoted from probation) per CPU per
	 * second. 0: FP_LB_DEFAULT_NEW_FLOW_RATE; UINT32_MAX: no limit.
	 */
	__u32 new_flow_rate;
	/*
	 * Probation slots (8 bytes each), rounded up to a power of two, at least
	 * FP_LB_MIN_PROBATION, at most FP_LB_MAX_PROBATION. 0: 4 x session_entries.
	 */
	__u32 probation_slots;
	/*
	 * The program will run as generic (skb-mode) XDP. Then it leaves TX-offload
	 * checksums (CHECKSUM_PARTIAL, same-host clients) unfinished: the skb keeps that
	 * state through XDP_TX/redirect and the egress finishes the checksum itself, which
	 * a completed field would spoil. Native XDP frames lose the state: the program
	 * finishes them (bpf/csum.h fp_csum_complete_partial(), counter csum_completed).
	 */
	bool generic_xdp;
	/* The node's site (`lb up --pop`), recorded in `info`; "" without sites. */
	char pop[FP_POP_NAME_LEN];
};

/* The config's `sessions` (flowpin/config.h) as the loader's session_entries and
 * new_flow_rate (its 0, no limit, is the loader's UINT32_MAX). */
void fp_lb_opts_sessions(struct fp_lb_opts *opts, const struct fp_sessions_cfg *s);

enum fp_xdp_mode {
	FP_XDP_NATIVE = 0,
	FP_XDP_GENERIC = 1,
};

/*
 * fp_lb_open - load the program with the settings of @cfg (hash key, table size, encap
 * port, timeouts) and @opts, size the maps, and apply @cfg as the first generation.
 * Not attached, not pinned. @opts may be NULL (no source addresses: only useful to
 * tests of verdicts that never encapsulate).
 */
int fp_lb_open(const struct fp_config *cfg, const struct fp_lb_opts *opts, struct fp_lb **out);

/*
 * fp_lb_open_pinned - the maps (and program) of a running instance pinned under @dir.
 * Apply, counters, sessions and attach work on the result as on a loaded one.
 */
int fp_lb_open_pinned(const char *dir, struct fp_lb **out);

/* fp_lb_pin - pin program and maps under @dir (created, with parents). */
int fp_lb_pin(struct fp_lb *lb, const char *dir);
/* fp_lb_unpin - remove the pins of fp_lb_pin() and @dir itself. Missing pins are fine. */
int fp_lb_unpin(const char *dir);

/*
 * fp_lb_apply - make @cfg the running configuration as a new generation.
 * Reads the current owners back from each VIP's active slot in the maps (so "previous
 * generation" is whatever the node runs now, whoever loaded it), builds the new tables
 * in the inactive slot with pairs (new owner, current owner), writes new backends, then
 * flips each changed VIP with one map update. VIPs are added and removed. A VIP whose
 * table, list and mode do not change is not flipped: its hop pairs stay, so re-applying
 * the same config does not erase the second chance of the last change. A backend
 * dropped from @cfg takes no new flows but keeps its entry, flagged
 * FP_BACKEND_F_REMOVED, while the active table's previous owners or a live session
 * entry name it (checked from the next apply on), so sessions and hop lists still
 * reach it in every mode (state `down` stops both). An id given again gets its entry
 * rewritten whole, with the new address.
 * Refused with -EINVAL, nothing written, when @cfg needs a restart: different hash key,
 * table size, encap port or timeouts, or more VIPs than the maps have slots.
 * *@generation (may be NULL) gets the generation now running.
 */
int fp_lb_apply(struct fp_lb *lb, const struct fp_config *cfg, __u32 *generation);
/*
 * fp_lb_apply() counts every call, and its failures, in `info` (struct fp_info applies,
 * apply_errors). fp_lb_count_apply_error counts an apply refused before it reached
 * fp_lb_apply() (the config file did not load), as one apply and one error.
 */
int fp_lb_count_apply_error(struct fp_lb *lb);

/*
 * fp_lb_lock / fp_lb_unlock - hold the apply lock (flock on the pin directory) across
 * several steps, e.g. an apply and the record of which file it applied. Nested calls
 * (fp_lb_apply() inside) are fine: only the outermost pair takes and drops it.
 */
int fp_lb_lock(struct fp_lb *lb);
void fp_lb_unlock(struct fp_lb *lb);

/*
 * Restart over a running instance (flowpin lb up after the previous daemon was killed):
 *
 * fp_lb_check_config - 0 if @cfg can be applied to the instance @lb (opened from pins)
 * as a new generation; -EINVAL, every reason logged, if it needs a restart (settings
 * fixed at load, or more VIPs than the maps have slots).
 *
 * fp_lb_open_over - load this binary's program over the maps of @running (opened from
 * pins): the same maps, sizes and contents (sessions, counters, tables, generation).
 * @cfg gives the settings fixed at load and must pass fp_lb_check_config(); @opts the
 * outer sources and new-flow rate (its session_entries and max_vips are ignored: the
 * maps keep theirs). Neither attached nor pinned nor applied: swap it in with
 * fp_lb_replace() (or fp_lb_attach() if nothing is attached), then fp_lb_take_over(),
 * then fp_lb_apply().
 *
 * fp_lb_take_over - pin @lb's program under @dir in place of the old one (pinned aside,
 * then renamed: the pin never disappears) and record @opts' settings in `info`.
 */
int fp_lb_check_config(const struct fp_lb *lb, const struct fp_config *cfg);
int fp_lb_open_over(const struct fp_lb *running, const struct fp_config *cfg,
		    const struct fp_lb_opts *opts, struct fp_lb **out);
int fp_lb_take_over(struct fp_lb *lb, const struct fp_lb_opts *opts, const char *dir);
/* Whether the program @prog_id is @lb's, or another program over @lb's maps. */
bool fp_lb_runs_prog(const struct fp_lb *lb, __u32 prog_id);

/*
 * Upgrades (docs/operator-lb.md "Upgrading"):
 *
 * fp_lb_compare_prog - whether @loaded (fp_lb_open_over() over @running's maps) is the
 * program @running runs: the same code (equal kernel tags: the instructions, with map
 * references zeroed, so not the .rodata values) and the same load-time settings (its
 * .rodata against @running's `info` record; NULL @out->setting) .
 *
 * fp_lb_open_pinned_any - the pins under @dir whatever their layout: the program's
 * (required) and the maps' that exist. For fp_lb_runs_prog(), fp_lb_prog_fd(),
 * fp_lb_count_session_keys(), fp_lb_pinned_magic() and fp_lb_close() only: an instance
 * `lb up --force` replaces.
 *
 * fp_lb_count_session_keys - entries of @lb's session table, whatever its layout (by
 * its keys, one syscall a key: for a log line, not for stats).
 * fp_lb_pinned_magic - the layout version (FP_INFO_MAGIC) @lb's `info` map holds.
 *
 * fp_lb_repin - pin @lb (fp_lb_open(), not pinned yet) under @dir in place of the pins
 * there (each pinned aside, then renamed over the old one; on failure the old pins stay),
 * removes the other pins of @dir (an older layout's maps), under the apply lock.
 */
struct fp_lb_prog_cmp {
	__u32 running_id, loaded_id;
	char running_tag[17], loaded_tag[17]; /* hex, as bpftool prints them */
	bool same_code;
	const char *setting; /* the first load-time setting that differs, NULL: none */
};
int fp_lb_compare_prog(const struct fp_lb *running, const struct fp_lb *loaded,
		       struct fp_lb_prog_cmp *out);
int fp_lb_open_pinned_any(const char *dir, struct fp_lb **out);
int fp_lb_count_session_keys(const struct fp_lb *lb, size_t *n);
int fp_lb_pinned_magic(const struct fp_lb *lb, __u32 *magic);
int fp_lb_repin(struct fp_lb *lb, const char *dir);

int fp_lb_attach(struct fp_lb *lb, int ifindex, enum fp_xdp_mode mode);
/*
 * fp_lb_replace - attach @lb's program to @ifindex in @mode in place of @old_prog_fd's,
 * atomically (XDP_FLAGS_REPLACE): the device is never without a program. -EEXIST if
 * @old_prog_fd's program is not the one attached there in @mode.
 */
int fp_lb_replace(struct fp_lb *lb, int ifindex, enum fp_xdp_mode mode, int old_prog_fd);
/* Detaches whatever XDP program is attached to @ifindex in @mode. */
int fp_lb_detach(int ifindex, enum fp_xdp_mode mode);

/* The program's fd, for bpf_prog_test_run_opts (replay, tests, benchmark). */
int fp_lb_prog_fd(const struct fp_lb *lb);
/* The settings fixed at load. */
int fp_lb_info(const struct fp_lb *lb, struct fp_info *out);

/* Global counters summed over CPUs, indexed by enum fp_counter. */
int fp_lb_read_counters(const struct fp_lb *lb, __u64 out[FP_CNT__MAX]);
/* Per VIP (@backend_id 0) or per backend traffic, summed over CPUs. */
int fp_lb_read_traffic(const struct fp_lb *lb, __u32 vip_index, __u32 backend_id,
		       struct fp_traffic *out);

/* Callbacks return 0 to continue, anything else stops the walk and is returned. */
typedef int (*fp_lb_vip_cb)(const struct fp_vip_key *key, const struct fp_vip *vip, void *ctx);
typedef int (*fp_lb_backend_cb)(const struct fp_backend_entry *backend,
				const struct fp_traffic *traffic, void *ctx);
typedef int (*fp_lb_session_cb)(const struct fp_flow_key *key, const struct fp_session *s,
				void *ctx);

int fp_lb_for_each_vip(const struct fp_lb *lb, fp_lb_vip_cb cb, void *ctx);
/* Backends present in a VIP's block (current or previous generation), with traffic. */
int fp_lb_for_each_backend(const struct fp_lb *lb, __u32 vip_index, fp_lb_backend_cb cb, void *ctx);
/* Session entries (not the probation marks kept in the table); last_seen_ns is
 * CLOCK_MONOTONIC (bpf_ktime_get_coarse_ns). */
int fp_lb_for_each_session(const struct fp_lb *lb, fp_lb_session_cb cb, void *ctx);
/* Deletes every session entry and probation mark (flowpin replay --lb-state fresh);
 * invalidates the flow caches. */
int fp_lb_clear_sessions(struct fp_lb *lb);
/* Probation marks still live (first packet within the transitory timeout): those of
 * the probation array and those kept in the session table (flowpin/maps.h
 * FP_SESS_MARK), read through mmaps of both. */
int fp_lb_count_probation(const struct fp_lb *lb, __u32 *live);

struct fp_session_count {
	__u64 entries;	/* entries in the table, expired or not (what takes room) */
	__u64 live;	/* of those, idle for at most their state's timeout */
	__u32 capacity; /* sessions.entries (the table has that many slots, rounded up to
			 * whole buckets of FP_SESSION_WAYS) */
};
/* Counts the session entries: one pass over an mmap of the table (no syscall per
 * entry). */
int fp_lb_count_sessions(const struct fp_lb *lb, struct fp_session_count *out);
/* Zeroes the global, traffic and rate-limit counters (tests, replay). */
int fp_lb_clear_counters(struct fp_lb *lb);

/* Bucket pair of a VIP's active table (tests, replay explanations). */
int fp_lb_read_bucket(const struct fp_lb *lb, const struct fp_vip *vip, __u32 bucket,
		      struct fp_bucket *out);

/* Destroys the handle (the attached program and pins stay). NULL is fine. */
void fp_lb_close(struct fp_lb *lb);

#endif
