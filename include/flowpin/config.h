/* SPDX-License-Identifier: MIT */
/*
 * flowpin configuration: what the YAML file says, after validation.
 * Userspace only. The example with every field explained: examples/flowpin.yaml.
 */
#ifndef FLOWPIN_CONFIG_H
#define FLOWPIN_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <flowpin/addr.h>
#include <flowpin/hash.h>
#include <flowpin/pinning.h>

#define FP_MAX_VIPS		   64
#define FP_MAX_BACKEND_ID	   4095 /* backend ids are 1..4095: an index into BPF arrays */
#define FP_DEFAULT_TABLE_SIZE	   65537
#define FP_NAME_MAX		   64
#define FP_MAX_TABLE_SIZE	   16777213 /* largest prime < 2^24: 64 MiB of buckets per VIP */
#define FP_MAX_TIMEOUT		   31536000 /* seconds (one year) */
#define FP_DEFAULT_TCP_ESTABLISHED 7200
#define FP_DEFAULT_TCP_TRANSITORY  30
#define FP_DEFAULT_UDP_TIMEOUT	   300
#define FP_MAX_LB_SOURCES	   1024 /* = FP_BACKEND_MAX_LB_SOURCES (flowpin/backend.h) */

/*
 * Caps on the file itself, checked before libyaml builds the document (its scanner is
 * quadratic in nesting, and every value costs memory): far above what a real fleet
 * needs (150,000 backends written as "- {id: N, address: A}" fit), far below what hurts.
 */
#define FP_CONFIG_MAX_BYTES  (16 << 20)
#define FP_CONFIG_MAX_DEPTH  16 /* a flowpin config nests 5 deep */
#define FP_CONFIG_MAX_VALUES (1 << 20)

/*
 * An LB node's bucket array holds VIP slots x 2 generations x table_size buckets of 4
 * bytes: at most this many (4 GiB).
 */
#define FP_MAX_BUCKETS (0xffffffffU / 4)

/* enum fp_pinning, its names and properties: flowpin/pinning.h. */

/* A backend's `state` in the config: X(NAME, value, "config name", meaning). */
#define FP_BACKEND_STATES(X)                                                                      \
	X(ACTIVE, 0, "active", "takes new flows")                                                 \
	X(DRAINING, 1, "draining", "keeps its flows, takes no new ones (weight 0 in new tables)") \
	X(DOWN, 2, "down", "out of every table")

enum fp_backend_state {
#define FP_X(name, value, str, help) FP_BACKEND_##name = value,
	FP_BACKEND_STATES(FP_X)
#undef FP_X
};

#define FP_BACKEND_STATE_COUNT_X(name, value, str, help) +1
#define FP_BACKEND_STATE__COUNT				 (0 FP_BACKEND_STATES(FP_BACKEND_STATE_COUNT_X))

/* The states' names, indexed by value; lib/config.c. */
extern const char *const fp_backend_state_names[FP_BACKEND_STATE__COUNT];

struct fp_backend_cfg {
	__u32 id; /* stable id, 1..FP_MAX_BACKEND_ID, unique within a VIP */
	struct fp_addr addr;
	__u32 weight; /* 1..65535, default 100 */
	enum fp_backend_state state;
	int line; /* where it was defined, for messages */
};

struct fp_vip_cfg {
	char name[FP_NAME_MAX];
	struct fp_addr addr;
	__u16 port; /* host order; 0 = all ports */
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	enum fp_pinning pinning;
	bool hash_addresses_only; /* port-0 VIPs: hash (src, dst, proto), so fragments follow */
	struct fp_backend_cfg *backends;
	size_t n_backends;
	int line;
};

struct fp_timeouts {
	__u32 tcp_established; /* seconds idle before a TCP session entry expires (default 7200) */
	__u32 tcp_transitory;  /* after FIN/RST, and half-open entries (default 30) */
	__u32 udp;	       /* UDP flows (default 300) */
};

struct fp_config {
	char *path;
	bool have_hash_key;	     /* always for FP_CONFIG_FOR_LB; backends need none */
	struct fp_hash_key hash_key; /* fleet-wide secret, 32 hex digits in the file */
	__u32 table_size;	     /* prime, >= 100 x backends of the largest VIP */
	__u16 encap_port;	     /* host order */
	struct fp_timeouts timeouts;
	struct fp_prefix *lb_sources; /* backend side: encapsulated packets only from these */
	size_t n_lb_sources;
	struct fp_vip_cfg *vips;
	size_t n_vips;
	/*
	 * Where each top-level setting is (the top-level mapping's line when it is left at
	 * its default), for the messages of whoever applies the config ("needs a restart").
	 */
	struct {
		int hash_key, table_size, encap_port, timeouts, lb_sources, vips;
	} lines;
};

/*
 * Who reads the file decides a few rules; the rest apply to everyone.
 *   LB       hash_key required (and not a published one, unless allow_example_key);
 *            table_size x VIP slots must fit the bucket array.
 *   BACKEND  hash_key optional (backends never use it); lb_sources required, at most
 *            FP_MAX_LB_SOURCES.
 *   FLEET    both: the file every node of a fleet loads (what `flowpin check` checks).
 */
enum fp_config_for {
	FP_CONFIG_FOR_LB = 1,
	FP_CONFIG_FOR_BACKEND = 2,
	FP_CONFIG_FOR_FLEET = 3,
};

/*
 * fp_config_load - parse and validate a config file.
 * Every problem is printed to @err as "FILE:LINE: FIELD: message", all of them, not only
 * the first. Returns 0 and sets *@out, or a negative errno (-EINVAL for a bad file,
 * -ENOENT/-EACCES ... when it cannot be read) and leaves *@out NULL.
 */
int fp_config_load(const char *path, struct fp_config **out, FILE *err); /* FOR_LB */
int fp_config_load_for(const char *path, enum fp_config_for use, struct fp_config **out, FILE *err);
void fp_config_free(struct fp_config *cfg);

/*
 * VIP slots an LB node reserves for @n_vips VIPs: twice as many (so reloads can add VIPs
 * without a restart), at least 8, at most FP_MAX_VIPS.
 */
__u32 fp_config_vip_slots(size_t n_vips);
/* Largest table_size that fits FP_MAX_BUCKETS with @slots VIP slots. */
__u32 fp_config_max_table_size(__u32 slots);

const char *fp_pinning_name(enum fp_pinning p);
const char *fp_backend_state_name(enum fp_backend_state s);

#endif
