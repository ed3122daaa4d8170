/* SPDX-License-Identifier: MIT */
/*
 * flowpin sim: what each pinning method buys across an anycast fleet, decided by the
 * library's own selection code (docs/sim.md). Userspace only.
 *
 * The world: sites, each with LB nodes behind ECMP (hash-threshold or resilient) and
 * servers (the backends of one VIP per site); client prefixes reach a site by anycast
 * catchment. Every LB node holds what its maps would hold: the VIP's value and table
 * of hop pairs, planned by fp_plan_tables()/fp_plan_pairs() over the node's own
 * running state (lib/plan.c, which builds with fp_maglev_build_vip(): the same path as
 * an LB node's apply and `flowpin table`), and the sorted list of fp_vip_active_list()
 * for `none` and `table`. A flow is a flow key hashed with fp_flow_hash() under the
 * fleet key; its packets are decided by the data plane's rules (docs/design.md steps
 * 3-5, the session admission rule, second chance on the backend) whenever something
 * it depends on changes: its LB node, its site, the node's table or sessions.
 *
 * Each flow is decided for every column (a pinning method: none, table, hash,
 * hash+table, full, full+tickets; the lab's QUIC columns too) and every routing
 * variant (BGP shaping on/off x ECMP hash-threshold/resilient) at once, so one run
 * compares them on the same flows and the same events. Functions return 0 or a
 * negative errno.
 */
#ifndef FLOWPIN_SIM_H
#define FLOWPIN_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <flowpin/config.h>
#include <flowpin/maps.h>

#define FP_SIM_MAX_COLUMNS 8
#define FP_SIM_VARIANTS	   4 /* bit 0: BGP shaping, bit 1: resilient ECMP */
#define FP_SIM_V_SHAPING   1
#define FP_SIM_V_RESILIENT 2
#define FP_SIM_MAX_NODES   16  /* LB nodes per site (a session is one bit per node) */
#define FP_SIM_RES_BUCKETS 128 /* buckets of a resilient nexthop group */
#define FP_SIM_NO_NODE	   0xff

/*
 * Causes of change: X(NAME, "name", "what it does in the model"). The scenario file
 * names them under `causes`; docs/sim.md gives each default and its source.
 */
#define FP_SIM_CAUSES(X)                                                                          \
	X(CATCHMENT_FLIP, "catchment-flip",                                                       \
	  "an unstable client prefix flips between its two nearest sites")                        \
	X(BGP_WITHDRAWAL, "bgp-withdrawal",                                                       \
	  "a site's route is withdrawn upstream: its prefixes go elsewhere, then come back")      \
	X(ISP_CONGESTION, "isp-congestion",                                                       \
	  "congestion makes an LB node's health checks flap: its route goes and comes back")      \
	X(INTERCONNECT_FAILURE, "interconnect-failure",                                           \
	  "a link of a site fails: the prefixes it carried go elsewhere, then come back")         \
	X(IX_POLICY, "ix-policy", "a peering policy changes: some prefixes move to another site") \
	X(MULTIPATH, "multipath",                                                                 \
	  "an ISP splitting a prefix over two sites re-hashes: about half its flows move")        \
	X(TRAFFIC_SPIKE, "traffic-spike",                                                         \
	  "a site scales out (LB nodes join ECMP, servers are added), then back in")              \
	X(LB_RESTART, "lb-restart", "an LB node reboots: leaves ECMP, comes back cold")           \
	X(SERVER_DEPLOY, "server-deploy", "a server drains, restarts, comes back")                \
	X(SERVER_FAILURE, "server-failure", "a server dies: health checks take it out")           \
	X(MAINTENANCE, "maintenance", "a site is drained for a maintenance window")               \
	X(SERVER_GONE, "server-gone",                                                             \
	  "the flow's own server died, restarted or left: no method keeps it")                    \
	X(LAB, "lab", "a lab scenario's event")

enum fp_sim_cause {
#define FP_X(name, str, help) FP_SIM_CAUSE_##name,
	FP_SIM_CAUSES(FP_X)
#undef FP_X
		FP_SIM_CAUSE__COUNT
};

/* The causes a scenario sets (those before server-gone), and those a run reports. */
#define FP_SIM_CAUSES_SCENARIO FP_SIM_CAUSE_SERVER_GONE
#define FP_SIM_CAUSES_REPORTED FP_SIM_CAUSE_LAB

extern const char *const fp_sim_cause_names[FP_SIM_CAUSE__COUNT];
extern const char *const fp_sim_cause_help[FP_SIM_CAUSE__COUNT];

/* One column: a pinning method as a VIP would be configured. */
struct fp_sim_column {
	char name[32];
	enum fp_pinning pinning;
	bool ticket; /* TCP tickets (tickets: {bits}), or QUIC-LB server IDs when udp */
	bool udp;    /* QUIC: no second chance (the backend delivers UDP at the first hop) */
	bool no_ts;  /* the client sends no TCP timestamps: tickets never read */
};

/* The six methods of the fleet, as the lab's columns name them. */
extern const struct fp_sim_column fp_sim_methods[6];

/* --- results ------------------------------------------------------------------- */

struct fp_sim_tally {
	double flows, bytes;
};

enum { FP_SIM_ALL = 0, FP_SIM_LONG = 1, FP_SIM_CLASSES = 2 };

struct fp_sim_result {
	unsigned n_variants; /* FP_SIM_VARIANTS in a fleet run, 1 in a lab replay */
	unsigned n_columns;
	struct fp_sim_column columns[FP_SIM_MAX_COLUMNS];
	struct fp_sim_tally total[FP_SIM_CLASSES];
	struct fp_sim_tally broken[FP_SIM_VARIANTS][FP_SIM_MAX_COLUMNS][FP_SIM_CLASSES];
	struct fp_sim_tally by_cause[FP_SIM_VARIANTS][FP_SIM_MAX_COLUMNS][FP_SIM_CAUSE__COUNT]
				    [FP_SIM_CLASSES];
	/* Flows counted apart (their server died or left: no method can keep them). */
	double apart[FP_SIM_VARIANTS][FP_SIM_MAX_COLUMNS];
	unsigned long long events[FP_SIM_CAUSE__COUNT];
	unsigned long long table_builds, peak_flows, flows;
	double cpu_seconds, max_rss_mib;
};

/* "shaping+resilient", "shaping", "resilient", "plain" */
const char *fp_sim_variant_name(unsigned v);

/* --- the world (lib/sim.c) -------------------------------------------------------- */

/* One config version of a site: its VIP (pinning full) and servers, shared by nodes. */
struct fp_sim_cfg {
	unsigned refs;
	struct fp_config cfg;
	struct fp_vip_cfg vip;
	__u16 *list; /* fp_vip_active_list(): what none and table pick from */
	size_t n_list;
	__u8 *state; /* by id (0..FP_MAX_BACKEND_ID): 0 absent, else 1 + enum fp_backend_state */
};

/* What one LB node's maps hold for the VIP: its value and its active half of pairs. */
struct fp_sim_table {
	unsigned refs;
	struct fp_vip vip;
	struct fp_bucket *pairs; /* table_size entries */
};

struct fp_sim_node {
	struct fp_sim_cfg *cfg;	    /* the config it applied last */
	struct fp_sim_table *table; /* NULL before the first apply */
};

struct fp_sim_site {
	struct fp_sim_node nodes[FP_SIM_MAX_NODES];
	unsigned n_nodes;
	struct fp_sim_cfg *cfg;			       /* the site's config now */
	__u32 members[FP_SIM_VARIANTS];		       /* ECMP group per variant: bit per node */
	__u8 res[FP_SIM_VARIANTS][FP_SIM_RES_BUCKETS]; /* resilient groups' buckets */
	/* The last apply (from table, config) -> table, for the other nodes of the site. */
	struct fp_sim_table *memo_from, *memo_to;
	struct fp_sim_cfg *memo_cfg;
	/* The last plan of a config: its table built once for every node, whose own hop
	 * pairs fp_plan_pairs() makes over what each runs (struct fp_plan, lib/sim.c). */
	void *plan;
	struct fp_sim_cfg *plan_cfg;
	struct fp_vip plan_current;
	__u32 *flows; /* indexes of the flows at this site */
	size_t n_flows, cap_flows;
};

struct fp_sim_pin {
	__u16 backend;	/* the server that holds the connection */
	__u16 sessions; /* bit per node of its site: a session entry names the backend */
	__u8 broken;	/* 0, or 1 + the cause that broke it */
	__u8 apart;	/* its server died or left: counted apart */
};

struct fp_sim_flow {
	__u64 hash;   /* fp_flow_hash(): bucket and mod-N position */
	__u32 ecmp;   /* the routers' hash of the flow (another key) */
	__u32 prefix; /* client prefix */
	__u32 pos;    /* index in its site's flow list */
	__u32 rr;     /* state of `table`'s round robin draw for this flow */
	__u16 home;   /* the site it started at (its servers are there) */
	__u16 site;   /* the site its packets reach now */
	__u8 node[FP_SIM_VARIANTS];
	__u8 has_ts;	 /* the client sends TCP timestamps */
	__u8 long_lived; /* websockets, Tor: reported apart */
	__u8 live;
	__u32 pnext, pprev; /* the fleet's per-prefix list (lib/sim_fleet.c) */
	double end, bytes;
	struct fp_sim_pin pin[FP_SIM_VARIANTS][FP_SIM_MAX_COLUMNS];
};

struct fp_sim_world {
	struct fp_hash_key key;	       /* the fleet's hash_key */
	struct fp_hash_key router_key; /* the routers' ECMP hash */
	__u32 table_size;
	unsigned n_variants;
	__u8 variant_flags[FP_SIM_VARIANTS]; /* FP_SIM_V_* */
	unsigned n_columns;
	struct fp_sim_column columns[FP_SIM_MAX_COLUMNS];
	bool cross_site_tickets; /* ids unique fleet-wide: a ticket names a server anywhere */
	struct fp_sim_site *sites;
	unsigned n_sites;
	struct fp_sim_flow *flows;
	size_t n_flows, cap_flows;
	__u32 *free_flows;
	size_t n_free;
	size_t live_flows;
	struct fp_sim_result *result;
	__u64 draws; /* `table` round robin: a new draw per decision */
	bool quiet;  /* flows send nothing (idle): changes are decided when they resume */
};

int fp_sim_world_init(struct fp_sim_world *w, unsigned n_sites, __u32 table_size,
		      const struct fp_hash_key *key, struct fp_sim_result *result);
void fp_sim_world_free(struct fp_sim_world *w);

/*
 * fp_sim_cfg_new - a config version with @n servers (id, weight, state; ids 1..4095,
 * unique). Returns NULL without memory or with a bad server. Release with
 * fp_sim_cfg_put().
 */
struct fp_sim_cfg *fp_sim_cfg_new(const struct fp_sim_world *w, const struct fp_backend_cfg *b,
				  size_t n);
void fp_sim_cfg_put(struct fp_sim_cfg *c);
/* A copy of @c with server @id set to @state (added when absent, weight 100) or removed
 * (@remove). */
struct fp_sim_cfg *fp_sim_cfg_with(const struct fp_sim_world *w, const struct fp_sim_cfg *c,
				   __u16 id, enum fp_backend_state state, bool remove);
/* 0 absent, else 1 + enum fp_backend_state */
static inline __u8 fp_sim_state(const struct fp_sim_cfg *c, __u16 id)
{
	return id <= FP_MAX_BACKEND_ID ? c->state[id] : 0;
}

/*
 * fp_sim_node_apply - node @n of @site applies @cfg as an LB node does: a plan over what
 * it runs (a new generation when the table changes); @cold: a node that starts with
 * empty maps (no previous generation, no sessions: the caller clears them).
 */
int fp_sim_node_apply(struct fp_sim_world *w, unsigned site, unsigned n, struct fp_sim_cfg *cfg,
		      bool cold);
/* Every node of @site applies @cfg, which becomes the site's config. */
int fp_sim_site_apply(struct fp_sim_world *w, unsigned site, struct fp_sim_cfg *cfg,
		      enum fp_sim_cause cause);

/* A free flow slot (index), or -ENOMEM. */
long fp_sim_flow_alloc(struct fp_sim_world *w);
/*
 * fp_sim_flow_start - flow @i (hash, ecmp, prefix, has_ts, bytes filled in) starts at
 * @site: routed to a node per variant, each column picks its server as for a first
 * packet and admits it where its mode does.
 */
int fp_sim_flow_start(struct fp_sim_world *w, size_t i, unsigned site);
/* Flow @i ends: tallied, its slot freed. */
void fp_sim_flow_end(struct fp_sim_world *w, size_t i);

/*
 * fp_sim_decide - the next packet of flow @i in variant @v, after a change of @cause:
 * each column that still holds reaches its server (session, ticket, table, second
 * chance) or the flow is broken by @cause.
 */
void fp_sim_decide(struct fp_sim_world *w, size_t i, unsigned v, enum fp_sim_cause cause);
/* Flow @i breaks in variant @v, every column, by @cause (a blackhole, a dead server). */
void fp_sim_break(struct fp_sim_world *w, size_t i, unsigned v, enum fp_sim_cause cause,
		  bool apart);
/* Flow @i moves to @site (catchment): routed there in every variant, then decided. */
void fp_sim_flow_move(struct fp_sim_world *w, size_t i, unsigned site, enum fp_sim_cause cause);

/*
 * fp_sim_site_members - @site's ECMP group in variant @v becomes @members: flows
 * re-routed (hash-threshold: every flow by its hash; resilient: only the flows of nodes
 * that left), and the moved ones decided.
 */
void fp_sim_site_members(struct fp_sim_world *w, unsigned site, unsigned v, __u32 members,
			 enum fp_sim_cause cause);
/* Node @n of @site lost its sessions (cold start): every flow's bit cleared. */
void fp_sim_node_sessions_lost(struct fp_sim_world *w, unsigned site, unsigned n);
/* Server @id of @site is gone (died, restarted): the flows it holds break, apart. */
void fp_sim_server_gone(struct fp_sim_world *w, unsigned site, __u16 id, enum fp_sim_cause cause);
/* Decides every flow of @site in every variant (after a table change). */
void fp_sim_site_decide(struct fp_sim_world *w, unsigned site, enum fp_sim_cause cause);

/* --- the fleet (lib/sim_fleet.c) ------------------------------------------------- */

struct fp_sim_cause_cfg {
	double rate;	 /* events per unit (prefix, site, node, server) per day */
	double duration; /* seconds: how long the change lasts (0: for good) */
	double share;	 /* the share of prefixes or servers it touches */
	double extra;	 /* traffic-spike: LB nodes added; server-deploy: restart seconds */
	int line;
};

struct fp_sim_params {
	char *path; /* the scenario file, or "(defaults)" */
	unsigned long long seed;
	double duration; /* seconds simulated */
	unsigned long long flows;
	unsigned sites, servers, lb_nodes, prefixes;
	__u32 table_size;
	unsigned ticket_bits;
	double timestamps;	    /* share of clients that send TCP timestamps */
	double under_2s, under_15m; /* flow durations: shares of flows under 2 s and 15 min */
	double rate;		    /* bytes per second per flow (median) */
	double long_share, long_mean, long_rate; /* long-lived flows */
	unsigned flap_interval_ms; /* isp-congestion: health samples, and their period */
	struct fp_sim_cause_cfg causes[FP_SIM_CAUSE__COUNT];
};

void fp_sim_params_default(struct fp_sim_params *p);
/*
 * fp_sim_params_load - a scenario file over the defaults: every problem as
 * FILE:LINE: FIELD: message on @err, all of them; nothing returned on any problem.
 */
int fp_sim_params_load(const char *path, struct fp_sim_params *p, FILE *err);
void fp_sim_params_free(struct fp_sim_params *p);

/* Runs the fleet: @out zeroed and filled (every variant, the six methods). */
int fp_sim_fleet_run(const struct fp_sim_params *p, struct fp_sim_result *out, FILE *progress);

/*
 * fp_sim_flap_moves - how often an LB node's route changes while its health checks
 * fail for half of every @period_ms during @for_ms, by the announcement state machine
 * (lib/announce.c: rise 1, fall 1, one sample per half period) with or without damping.
 * @times (room for @max) gets the offsets (ms) of the changes. Returns their number.
 */
size_t fp_sim_flap_moves(bool damping, unsigned period_ms, unsigned for_ms, double *times,
			 size_t max);

/* --- lab scenarios (lib/sim_lab.c) ----------------------------------------------- */

enum fp_sim_expect { FP_SIM_SURVIVE, FP_SIM_BREAK, FP_SIM_FEW, FP_SIM_ANY };

struct fp_sim_lab_event;

struct fp_sim_lab {
	char *path;
	char name[64];
	unsigned flows;
	double size, rate;
	double idle_at, idle_for; /* idle_for 0: no idle period */
	bool quic;
	__u32 tcp_established, udp_timeout; /* seconds */
	struct fp_sim_lab_event *events;
	size_t n_events;
	/* the route */
	__u32 route_nodes; /* bit per lb node: {to: X} one, {ecmp: [...]} several */
	bool resilient, bgp;
	unsigned prepend[3];
	__u32 active; /* bit per backend id 1..5 active at the start */
	unsigned n_columns;
	struct fp_sim_column columns[FP_SIM_MAX_COLUMNS];
	enum fp_sim_expect expect[FP_SIM_MAX_COLUMNS];
};

/*
 * Loads a lab scenario (a file of lab/scenarios, docs/lab.md): FILE:LINE: FIELD errors.
 * -EOPNOTSUPP when the only problems are keys or event kinds the simulator does not
 * know (a lab newer than the simulator), -EINVAL for anything else.
 */
int fp_sim_lab_load(const char *path, struct fp_sim_lab **out, FILE *err);
void fp_sim_lab_free(struct fp_sim_lab *lab);
/*
 * fp_sim_lab_run - replays @lab on the lab's fleet (three LB nodes, five servers, its
 * hash key and table size): @broken and @total per column (flows counted apart, on a
 * server that died or left, excluded as the lab excludes them).
 */
int fp_sim_lab_run(const struct fp_sim_lab *lab, unsigned long long seed, unsigned *broken,
		   unsigned *total);
/* Whether @broken of @total meets @want (lab/scenario.py expectation_holds()). */
bool fp_sim_expect_holds(enum fp_sim_expect want, unsigned broken, unsigned total);
const char *fp_sim_expect_name(enum fp_sim_expect e);

#endif
