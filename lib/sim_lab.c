// SPDX-License-Identifier: MIT
/*
 * The lab's scenarios (the files of lab/scenarios, docs/lab.md) replayed in the simulator:
 * the same files, the lab's fleet (LB nodes lb1..lb3, backends b1..b5, its hash key and
 * table size), its flows (one set, decided for every column), its events in time
 * order. What the lab measures with real TCP, the simulator predicts from the selection
 * code; tests/unit/test_sim.c holds the prediction to each file's `expect:`.
 *
 * What the lab has and the model leaves out: packet timing (an event is applied at
 * once, between packets), the 3-second stall rule, health-check delays (a failed
 * backend leaves the tables right after it dies; its own flows are counted apart, as
 * the lab counts them), BGP convergence (the router's best route is recomputed at
 * each event). A health flap's route changes come from the announcement state machine
 * (lib/announce.c) and are applied together at the flap's start.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <flowpin/hash.h>
#include <flowpin/siphash.h>
#include <flowpin/sim.h>
#include <flowpin/simyaml.h>

#define LAB_NODES      3
#define LAB_BACKENDS   5
#define LAB_HASH_KEY   "0123456789abcdef0123456789abcdef" /* lab/lablib.py HASH_KEY */
#define LAB_TABLE_SIZE 65537				  /* lab/run's config */
#define LAB_ALL_NODES  ((1U << LAB_NODES) - 1)
#define LAB_SOURCES    32 /* client source addresses (lab/lablib.py N_SOURCES) */
#define LAB_MAX_EVENTS 256

#define LAB_EVENTS(X)                         \
	X(ROUTE, "route")                     \
	X(ECMP, "ecmp")                       \
	X(BACKEND, "backend")                 \
	X(BACKEND_FAIL, "backend-fail")       \
	X(LB_FAIL, "lb-fail")                 \
	X(LB_RECOVER, "lb-recover")           \
	X(LB_RESTART, "lb-restart")           \
	X(LB_UPGRADE, "lb-upgrade")           \
	X(RELOAD, "reload")                   \
	X(PAUSE, "pause")                     \
	X(RESUME, "resume")                   \
	X(BGP_ANNOUNCE, "bgp-announce")       \
	X(BGP_WITHDRAW, "bgp-withdraw")       \
	X(BGP_DRAIN, "bgp-drain")             \
	X(BGP_PREPEND, "bgp-prepend")         \
	X(BGP_MED, "bgp-med")                 \
	X(BGP_CUT, "bgp-cut")                 \
	X(BGP_RESTORE, "bgp-restore")         \
	X(BGP_MAINTENANCE, "bgp-maintenance") \
	X(HEALTH_FLAP, "health-flap")         \
	X(QUIC_MOVE, "quic-move")

enum lab_kind {
#define FP_X(name, str) LAB_##name,
	LAB_EVENTS(FP_X)
#undef FP_X
		LAB__COUNT
};

static const char *const lab_kind_names[LAB__COUNT] = {
#define FP_X(name, str) [LAB_##name] = str,
	LAB_EVENTS(FP_X)
#undef FP_X
};

enum { ACT_ADD, ACT_DRAIN, ACT_REMOVE };

struct fp_sim_lab_event {
	double at;
	enum lab_kind kind;
	__u32 nodes; /* bit per LB node */
	unsigned node, id, action, count, med;
	bool cold, on, migrate;
	double period, span;
	int line;
};

static const char *const expect_names[] = { "survive", "break", "few", "any" };

const char *fp_sim_expect_name(enum fp_sim_expect e)
{
	return e <= FP_SIM_ANY ? expect_names[e] : "?";
}

bool fp_sim_expect_holds(enum fp_sim_expect want, unsigned broken, unsigned total)
{
	if (!total)
		return false; /* no flow measured proves nothing */
	switch (want) {
	case FP_SIM_SURVIVE:
		return broken == 0;
	case FP_SIM_BREAK:
		return broken > 0;
	case FP_SIM_FEW:
		return broken <= (total + 99) / 100;
	default:
		return true;
	}
}

/* The lab's columns: its six TCP modes and the client without timestamps (expected as
 * `full`), or its six QUIC VIPs (lab/lablib.py COLUMNS, QUIC_VIPS). */
static void lab_columns(struct fp_sim_lab *lab)
{
	static const struct {
		const char *name;
		enum fp_pinning pinning;
		bool ticket;
	} quic[] = {
		{ "hash/quic", FP_PIN_HASH, false },
		{ "hash+table/quic", FP_PIN_HASH_TABLE, false },
		{ "full/quic", FP_PIN_FULL, false },
		{ "hash/quic-lb", FP_PIN_HASH, true },
		{ "hash+table/quic-lb", FP_PIN_HASH_TABLE, true },
		{ "full/quic-lb", FP_PIN_FULL, true },
	};

	if (lab->quic) {
		for (unsigned i = 0; i < 6; i++) {
			struct fp_sim_column *c = &lab->columns[i];

			snprintf(c->name, sizeof(c->name), "%s", quic[i].name);
			c->pinning = quic[i].pinning;
			c->ticket = quic[i].ticket;
			c->udp = true;
		}
		lab->n_columns = 6;
		return;
	}
	for (unsigned i = 0; i < 6; i++)
		lab->columns[i] = fp_sim_methods[i];
	lab->columns[6] = fp_sim_methods[5];
	snprintf(lab->columns[6].name, sizeof(lab->columns[6].name), "full+ticket/no-ts");
	lab->columns[6].no_ts = true;
	lab->n_columns = 7;
}

/* "lb2" -> 1 */
static bool node_of(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field, unsigned *out)
{
	const char *s = fp_sim_yaml_scalar(y, n, field);

	if (!s)
		return false;
	if (strlen(s) == 3 && !strncmp(s, "lb", 2) && s[2] >= '1' && s[2] < '1' + LAB_NODES) {
		*out = (unsigned)(s[2] - '1');
		return true;
	}
	fp_sim_yaml_report(y, n, field, "must be lb1..lb%d, got '%s'", LAB_NODES, s);
	return false;
}

/* A node, a list of nodes, or "all": a bit per node. */
static __u32 nodes_of(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field)
{
	__u32 out = 0;
	unsigned k;

	if (n->type == YAML_SCALAR_NODE && !strcmp((const char *)n->data.scalar.value, "all"))
		return LAB_ALL_NODES;
	if (n->type == YAML_SCALAR_NODE)
		return node_of(y, n, field, &k) ? 1U << k : 0;
	if (n->type != YAML_SEQUENCE_NODE) {
		fp_sim_yaml_report(y, n, field, "must be a node, a list of nodes or all");
		return 0;
	}
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
	     i++)
		if (node_of(y, fp_sim_yaml_item(y, *i), field, &k))
			out |= 1U << k;
	return out;
}

static __u32 ids_of(struct fp_sim_yaml *y, const yaml_node_t *n, const char *field)
{
	__u32 out = 0;
	double id;

	if (n->type != YAML_SEQUENCE_NODE) {
		fp_sim_yaml_report(y, n, field, "must be a list of backend ids");
		return 0;
	}
	for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
	     i++)
		if (fp_sim_yaml_number(y, fp_sim_yaml_item(y, *i), field, 1, LAB_BACKENDS, false,
				       &id))
			out |= 1U << (unsigned)id;
	return out;
}

static const char *const event_keys[] = { "node",     "nodes",	"to",	 "action", "id",
					  "how",      "what",	"count", "med",	   "vip",
					  "deadline", "period", "for" };
enum {
	K_NODE,
	K_NODES,
	K_TO,
	K_ACTION,
	K_ID,
	K_HOW,
	K_WHAT,
	K_COUNT,
	K_MED,
	K_VIP,
	K_DEADLINE,
	K_PERIOD,
	K_FOR,
	K__COUNT
};

static const char *text(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : "";
}

static void load_event(struct fp_sim_yaml *y, yaml_node_t *node, size_t idx,
		       struct fp_sim_lab_event *e)
{
	char field[FP_SIM_FIELD_MAX / 2], sub[FP_SIM_FIELD_MAX];
	yaml_node_t *kind_node = NULL, *arg = NULL, *v[K__COUNT];
	double x;

	snprintf(field, sizeof(field), "events[%zu]", idx);
	e->line = (int)fp_sim_yaml_line(node);
	if (node->type != YAML_MAPPING_NODE) {
		fp_sim_yaml_report(y, node, field, "must be a mapping {at: T, KIND: {...}}");
		return;
	}
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = fp_sim_yaml_item(y, p->key), *val = fp_sim_yaml_item(y, p->value);
		const char *name = text(k);

		if (!strcmp(name, "at")) {
			snprintf(sub, sizeof(sub), "%s.at", field);
			fp_sim_yaml_number(y, val, sub, 0, 3600, true, &e->at);
			continue;
		}
		if (kind_node) {
			fp_sim_yaml_report(y, k, field, "one event kind per event ('%s' and '%s')",
					   text(kind_node), name);
			continue;
		}
		kind_node = k;
		arg = val;
	}
	if (!kind_node) {
		fp_sim_yaml_report(y, node, field, "missing the event's kind");
		return;
	}
	for (e->kind = 0; e->kind < LAB__COUNT; e->kind++)
		if (!strcmp(text(kind_node), lab_kind_names[e->kind]))
			break;
	if (e->kind == LAB__COUNT) {
		fp_sim_yaml_report(y, kind_node, field,
				   "event kind '%s' is not replayed by the simulator",
				   text(kind_node));
		y->unknown++;
		return;
	}
	snprintf(field, sizeof(field), "events[%zu].%s", idx, text(kind_node));
	if (!fp_sim_yaml_fields(y, arg, field, event_keys, K__COUNT, v))
		return;
	e->nodes = LAB_ALL_NODES;
	if (v[K_NODE] && node_of(y, v[K_NODE], field, &e->node))
		e->nodes = 1U << e->node;
	if (v[K_NODES])
		e->nodes = nodes_of(y, v[K_NODES], field);
	if (v[K_TO])
		e->nodes = nodes_of(y, v[K_TO], field);
	if (v[K_ID] && fp_sim_yaml_number(y, v[K_ID], field, 1, LAB_BACKENDS, false, &x))
		e->id = (unsigned)x;
	if (v[K_COUNT] && fp_sim_yaml_number(y, v[K_COUNT], field, 0, 8, false, &x))
		e->count = (unsigned)x;
	if (v[K_MED] && fp_sim_yaml_number(y, v[K_MED], field, 0, 1e9, false, &x))
		e->med = (unsigned)x;
	if (v[K_PERIOD])
		fp_sim_yaml_number(y, v[K_PERIOD], field, 0.1, 60, true, &e->period);
	if (v[K_FOR])
		fp_sim_yaml_number(y, v[K_FOR], field, 0.1, 3600, true, &e->span);
	if (!e->period)
		e->period = 1;
	if (v[K_ACTION]) {
		const char *a = text(v[K_ACTION]);

		e->action = !strcmp(a, "drain")	   ? ACT_DRAIN
			    : !strcmp(a, "remove") ? ACT_REMOVE
						   : ACT_ADD;
		e->on = strcmp(a, "off") != 0;
		if (e->kind == LAB_BACKEND && strcmp(a, "add") && strcmp(a, "drain") &&
		    strcmp(a, "remove"))
			fp_sim_yaml_report(y, v[K_ACTION], field, "add, drain or remove, got '%s'",
					   a);
	}
	e->cold = !strcmp(text(v[K_HOW]), "down");
	e->migrate = !strcmp(text(v[K_HOW]), "migrate");
	if ((e->kind == LAB_BACKEND || e->kind == LAB_BACKEND_FAIL) && !e->id)
		fp_sim_yaml_report(y, arg, field, "missing id");
}

static const char *const top_keys[] = { "name",	    "description", "traffic",	    "route",
					"backends", "timeouts",	   "bgp",	    "events",
					"expect",   "health",	   "route_changes", "counters" };
enum {
	T_NAME,
	T_DESC,
	T_TRAFFIC,
	T_ROUTE,
	T_BACKENDS,
	T_TIMEOUTS,
	T_BGP,
	T_EVENTS,
	T_EXPECT,
	T_HEALTH,
	T_ROUTE_CHANGES,
	T_COUNTERS, /* checked by the lab, not replayed */
	T__N
};

static void load_expect(struct fp_sim_yaml *y, yaml_node_t *x, struct fp_sim_lab *lab)
{
	yaml_node_t *v[FP_SIM_MAX_COLUMNS];
	const char *keys[FP_SIM_MAX_COLUMNS];
	unsigned n = 6; /* the no-ts column is expected as full */
	char field[FP_SIM_FIELD_MAX];

	for (unsigned c = 0; c < n; c++)
		keys[c] = lab->columns[c].name;
	if (!fp_sim_yaml_fields(y, x, "expect", keys, n, v))
		return;
	for (unsigned c = 0; c < n; c++) {
		const char *s;
		unsigned e;

		snprintf(field, sizeof(field), "expect.%s", keys[c]);
		if (!v[c]) {
			fp_sim_yaml_report(y, x, field,
					   "missing (every mode's expectation is stated)");
			continue;
		}
		s = fp_sim_yaml_scalar(y, v[c], field);
		for (e = 0; s && e <= FP_SIM_ANY; e++)
			if (!strcmp(s, expect_names[e]))
				break;
		if (!s || e > FP_SIM_ANY) {
			if (s)
				fp_sim_yaml_report(y, v[c], field,
						   "one of survive|break|few|any, got '%s'", s);
			continue;
		}
		lab->expect[c] = (enum fp_sim_expect)e;
	}
	if (!lab->quic)
		lab->expect[6] = lab->expect[4]; /* lab/lablib.py COLUMNS: no-ts as full */
}

int fp_sim_lab_load(const char *path, struct fp_sim_lab **out, FILE *err)
{
	static const char *const traffic_keys[] = { "flows", "size",	"rate", "idle",
						    "quic",  "timeout", "stall" };
	static const char *const route_keys[] = { "to", "ecmp", "group" };
	static const char *const backend_keys[] = { "active", "draining" };
	static const char *const timeout_keys[] = { "tcp_established", "tcp_transitory", "udp" };
	static const char *const bgp_keys[] = { "prepend", "med", "flowpin", "damping" };
	static const char *const idle_keys[] = { "at", "for" };
	struct fp_sim_lab *lab = calloc(1, sizeof(*lab));
	yaml_node_t *root, *v[T__N], *t[7], *r[3], *b[2], *to[3], *g[4], *id[2];
	struct fp_sim_yaml y;
	double x;
	int errors, unknown;

	*out = NULL;
	if (!lab)
		return -ENOMEM;
	lab->path = strdup(path);
	lab->events = calloc(LAB_MAX_EVENTS, sizeof(*lab->events));
	if (!lab->path || !lab->events) {
		fp_sim_lab_free(lab);
		return -ENOMEM;
	}
	lab->flows = 200;
	lab->size = 300000;
	lab->rate = 20000;
	lab->tcp_established = FP_DEFAULT_TCP_ESTABLISHED;
	lab->udp_timeout = FP_DEFAULT_UDP_TIMEOUT;
	lab->route_nodes = 1;
	lab->active = 0x1e; /* b1..b4 (lab/scenario.py) */
	root = fp_sim_yaml_open(&y, path);
	if (!root || !fp_sim_yaml_fields(&y, root, "", top_keys, T__N, v))
		goto done;
	if (v[T_NAME] && fp_sim_yaml_scalar(&y, v[T_NAME], "name"))
		snprintf(lab->name, sizeof(lab->name), "%s", text(v[T_NAME]));
	if (v[T_TRAFFIC] && fp_sim_yaml_fields(&y, v[T_TRAFFIC], "traffic", traffic_keys, 7, t)) {
		/* timeout and stall are the client's timing: not replayed */
		if (t[4])
			fp_sim_yaml_bool(&y, t[4], "traffic.quic", &lab->quic);
		if (t[0] && fp_sim_yaml_number(&y, t[0], "traffic.flows", 1, 5000, false, &x))
			lab->flows = (unsigned)x;
		if (t[1])
			fp_sim_yaml_number(&y, t[1], "traffic.size", 1000, 1 << 30, false,
					   &lab->size);
		if (t[2])
			fp_sim_yaml_number(&y, t[2], "traffic.rate", 1000, 1 << 30, false,
					   &lab->rate);
		if (t[3] && fp_sim_yaml_fields(&y, t[3], "traffic.idle", idle_keys, 2, id)) {
			if (id[0])
				fp_sim_yaml_number(&y, id[0], "traffic.idle.at", 0.5, 3600, true,
						   &lab->idle_at);
			if (id[1])
				fp_sim_yaml_number(&y, id[1], "traffic.idle.for", 0.5, 3600, true,
						   &lab->idle_for);
		}
	}
	lab_columns(lab);
	if (v[T_ROUTE] && fp_sim_yaml_fields(&y, v[T_ROUTE], "route", route_keys, 3, r)) {
		if (r[0])
			lab->route_nodes = nodes_of(&y, r[0], "route.to");
		if (r[1])
			lab->route_nodes = nodes_of(&y, r[1], "route.ecmp");
		lab->resilient = r[2] && !strcmp(text(r[2]), "resilient");
	}
	if (v[T_BACKENDS] &&
	    fp_sim_yaml_fields(&y, v[T_BACKENDS], "backends", backend_keys, 2, b)) {
		lab->active = b[0] ? ids_of(&y, b[0], "backends.active") : 0;
		if (b[1])
			lab->active |= ids_of(&y, b[1], "backends.draining") << 8; /* draining */
	}
	if (v[T_TIMEOUTS] &&
	    fp_sim_yaml_fields(&y, v[T_TIMEOUTS], "timeouts", timeout_keys, 3, to)) {
		if (to[0] &&
		    fp_sim_yaml_number(&y, to[0], "timeouts.tcp_established", 1, 1e7, false, &x))
			lab->tcp_established = (__u32)x;
		if (to[2] && fp_sim_yaml_number(&y, to[2], "timeouts.udp", 1, 1e7, false, &x))
			lab->udp_timeout = (__u32)x;
	}
	if (v[T_BGP] && fp_sim_yaml_fields(&y, v[T_BGP], "bgp", bgp_keys, 4, g)) {
		lab->bgp = true;
		if (g[0] && g[0]->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *p = g[0]->data.mapping.pairs.start;
			     p < g[0]->data.mapping.pairs.top; p++) {
				unsigned n;

				if (node_of(&y, fp_sim_yaml_item(&y, p->key), "bgp.prepend", &n) &&
				    fp_sim_yaml_number(&y, fp_sim_yaml_item(&y, p->value),
						       "bgp.prepend", 0, 8, false, &x))
					lab->prepend[n] = (unsigned)x;
			}
		}
	}
	if (!v[T_EVENTS] || v[T_EVENTS]->type != YAML_SEQUENCE_NODE) {
		fp_sim_yaml_report(&y, v[T_EVENTS] ? v[T_EVENTS] : root, "events",
				   "missing or not a list");
	} else {
		yaml_node_t *ev = v[T_EVENTS];

		for (yaml_node_item_t *i = ev->data.sequence.items.start;
		     i < ev->data.sequence.items.top && lab->n_events < LAB_MAX_EVENTS; i++) {
			struct fp_sim_lab_event *e = &lab->events[lab->n_events];

			load_event(&y, fp_sim_yaml_item(&y, *i), lab->n_events, e);
			if (e->kind >= LAB_BGP_ANNOUNCE && e->kind <= LAB_BGP_MAINTENANCE)
				lab->bgp = true;
			lab->n_events++;
		}
	}
	if (!v[T_EXPECT])
		fp_sim_yaml_report(&y, root, "expect",
				   "missing: a mapping mode -> survive|break|few|any");
	else
		load_expect(&y, v[T_EXPECT], lab);
done:
	unknown = y.unknown;
	errors = fp_sim_yaml_close(&y, err);
	if (errors) {
		fp_sim_lab_free(lab);
		return errors == unknown ? -EOPNOTSUPP : -EINVAL;
	}
	*out = lab;
	return 0;
}

void fp_sim_lab_free(struct fp_sim_lab *lab)
{
	if (!lab)
		return;
	free(lab->path);
	free(lab->events);
	free(lab);
}

/* --- the replay --------------------------------------------------------------------- */

struct lab_route {
	__u32 candidates; /* route.to / route.ecmp, or what a route/ecmp event set */
	bool failed[LAB_NODES], withdrawn[LAB_NODES], drained[LAB_NODES], cut[LAB_NODES];
	unsigned prepend[LAB_NODES], med[LAB_NODES];
	bool bgp;
};

/*
 * The nodes the router sends the VIPs to: the candidates that are up and announce;
 * with BGP, the best of them (not draining before draining, RFC 8326; then the shortest
 * AS path; then the lowest MED), ECMP over the ties.
 */
static __u32 carrying(const struct lab_route *r)
{
	__u32 up = 0, best = 0;
	unsigned best_key = ~0U;

	for (unsigned n = 0; n < LAB_NODES; n++)
		if (r->candidates & (1U << n) && !r->failed[n] && !r->withdrawn[n] && !r->cut[n])
			up |= 1U << n;
	if (!r->bgp)
		return up;
	for (unsigned n = 0; n < LAB_NODES; n++) {
		unsigned key;

		if (!(up & (1U << n)))
			continue;
		key = (r->drained[n] ? 1U << 30 : 0) + (r->prepend[n] << 20) + r->med[n];
		if (key < best_key) {
			best_key = key;
			best = 0;
		}
		if (key == best_key)
			best |= 1U << n;
	}
	return best;
}

static int by_time(const void *a, const void *b)
{
	const struct fp_sim_lab_event *const *x = a, *const *y = b;

	if ((*x)->at != (*y)->at)
		return (*x)->at < (*y)->at ? -1 : 1;
	return (*x)->line - (*y)->line;
}

/* A lab client's flow i: 172.16.1.N (N = 1 + i mod 32), a port from @rng, to the VIP. */
static void lab_flow_key(struct fp_flow_key *k, unsigned i, __u16 sport, bool quic, bool migrated)
{
	memset(k, 0, sizeof(*k));
	fp_addr_from_v4(k->src, htonl(0xac100100U + 1 + (i + (migrated ? 7 : 0)) % LAB_SOURCES));
	fp_addr_from_v4(k->dst, htonl(0x0a640005U)); /* 10.100.0.5 */
	k->sport = htons(sport);
	k->dport = htons(quic ? 443 : 80);
	k->proto = quic ? IPPROTO_UDP : IPPROTO_TCP;
}

static void lab_hash(struct fp_sim_world *w, struct fp_sim_flow *f, const struct fp_flow_key *k)
{
	f->hash = fp_flow_hash(&w->key, k);
	f->ecmp = (__u32)fp_flow_hash(&w->router_key, k);
}

static __u64 next_rand(__u64 *s)
{
	__u64 x = (*s += 0x9e3779b97f4a7c15ULL);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Every node applies a new version of its own config (a backend event on @nodes). */
static int lab_backend(struct fp_sim_world *w, const struct fp_sim_lab_event *e)
{
	struct fp_sim_site *site = &w->sites[0];
	enum fp_backend_state st = e->action == ACT_DRAIN ? FP_BACKEND_DRAINING : FP_BACKEND_ACTIVE;

	if (e->kind == LAB_BACKEND_FAIL)
		st = FP_BACKEND_DOWN;
	for (unsigned n = 0; n < site->n_nodes; n++) {
		struct fp_sim_cfg *c;
		int err;

		if (!(e->nodes & (1U << n)))
			continue;
		c = fp_sim_cfg_with(w, site->nodes[n].cfg, (__u16)e->id, st,
				    e->kind == LAB_BACKEND && e->action == ACT_REMOVE);
		if (!c)
			return -ENOMEM;
		err = fp_sim_node_apply(w, 0, n, c, false);
		if (n == 0 || e->nodes == LAB_ALL_NODES) {
			c->refs++;
			fp_sim_cfg_put(site->cfg);
			site->cfg = c;
		}
		fp_sim_cfg_put(c);
		if (err)
			return err;
	}
	return 0;
}

int fp_sim_lab_run(const struct fp_sim_lab *lab, unsigned long long seed, unsigned *broken,
		   unsigned *total)
{
	const struct fp_sim_lab_event *order[LAB_MAX_EVENTS];
	struct fp_backend_cfg backends[LAB_BACKENDS];
	struct fp_sim_result *result = calloc(1, sizeof(*result));
	struct lab_route route = { .candidates = lab->route_nodes, .bgp = lab->bgp };
	double transfer = lab->size / lab->rate + lab->idle_for;
	double idle_start = lab->idle_at, idle_end = lab->idle_at + lab->idle_for;
	__u32 timeout = lab->quic ? lab->udp_timeout : lab->tcp_established;
	struct fp_sim_world w;
	struct fp_sim_cfg *cfg = NULL;
	struct fp_hash_key key;
	__u64 rng = seed;
	size_t nb = 0;
	bool resumed = lab->idle_for == 0;
	int err;

	if (!result)
		return -ENOMEM;
	fp_hash_key_parse(LAB_HASH_KEY, &key);
	err = fp_sim_world_init(&w, 1, LAB_TABLE_SIZE, &key, result);
	if (err)
		goto out;
	w.n_variants = 1;
	w.variant_flags[0] = lab->resilient ? FP_SIM_V_RESILIENT : 0;
	w.n_columns = lab->n_columns;
	memcpy(w.columns, lab->columns, sizeof(w.columns));
	memcpy(route.prepend, lab->prepend, sizeof(route.prepend));
	for (unsigned id = 1; id <= LAB_BACKENDS; id++) {
		if (!(lab->active & (1U << id)) && !(lab->active & (1U << (id + 8))))
			continue;
		backends[nb] = (struct fp_backend_cfg){
			.id = id,
			.weight = 100,
			.state = lab->active & (1U << id) ? FP_BACKEND_ACTIVE : FP_BACKEND_DRAINING,
		};
		fp_addr_parse("10.99.0.21", &backends[nb].addr);
		nb++;
	}
	cfg = fp_sim_cfg_new(&w, backends, nb);
	if (!cfg) {
		err = -EINVAL;
		goto out;
	}
	w.sites[0].n_nodes = LAB_NODES;
	for (unsigned n = 0; n < LAB_NODES; n++) {
		err = fp_sim_node_apply(&w, 0, n, cfg, true);
		if (err)
			goto out;
	}
	cfg->refs++;
	w.sites[0].cfg = cfg;
	fp_sim_site_members(&w, 0, 0, carrying(&route), FP_SIM_CAUSE_LAB);
	for (unsigned i = 0; i < lab->flows; i++) {
		long f = fp_sim_flow_alloc(&w);
		struct fp_flow_key k;

		if (f < 0) {
			err = (int)f;
			goto out;
		}
		lab_flow_key(&k, i, (__u16)(32768 + next_rand(&rng) % 28000), lab->quic, false);
		lab_hash(&w, &w.flows[f], &k);
		w.flows[f].has_ts = 1;
		w.flows[f].bytes = lab->size;
		w.flows[f].end = transfer;
		fp_sim_flow_start(&w, (size_t)f, 0);
	}

	for (size_t i = 0; i < lab->n_events; i++)
		order[i] = &lab->events[i];
	qsort(order, lab->n_events, sizeof(*order), by_time);
	for (size_t i = 0; i <= lab->n_events; i++) {
		const struct fp_sim_lab_event *e = i < lab->n_events ? order[i] : NULL;
		struct fp_sim_site *site = &w.sites[0];

		/* Idle flows send nothing: what changed meanwhile meets them when they resume,
		 * after their sessions expired if the silence outlasted the timeout. */
		if (!resumed && (!e || e->at >= idle_end)) {
			resumed = true;
			w.quiet = false;
			if (lab->idle_for > timeout)
				for (unsigned n = 0; n < LAB_NODES; n++)
					fp_sim_node_sessions_lost(&w, 0, n);
			fp_sim_site_decide(&w, 0, FP_SIM_CAUSE_LAB);
		}
		if (!e)
			break;
		if (e->at >= transfer)
			continue; /* after every transfer ended */
		w.quiet = !resumed && e->at >= idle_start;
		switch (e->kind) {
		case LAB_ROUTE:
		case LAB_ECMP:
			route.candidates = e->nodes;
			break;
		case LAB_BACKEND:
		case LAB_BACKEND_FAIL:
			for (size_t k = 0; k < site->n_flows; k++) {
				size_t f = site->flows[k];

				for (unsigned c = 0; c < w.n_columns; c++) {
					struct fp_sim_pin *pin = &w.flows[f].pin[0][c];

					if (pin->backend != e->id ||
					    (e->kind == LAB_BACKEND && e->action != ACT_REMOVE))
						continue;
					/* its server died or left: counted apart, as the lab does */
					pin->apart = 1;
					if (e->kind == LAB_BACKEND_FAIL && !pin->broken)
						pin->broken = 1 + FP_SIM_CAUSE_LAB;
				}
			}
			err = lab_backend(&w, e);
			if (err)
				goto out;
			fp_sim_site_decide(&w, 0, FP_SIM_CAUSE_LAB);
			break;
		case LAB_LB_FAIL:
			route.failed[e->node] = true;
			fp_sim_node_sessions_lost(&w, 0, e->node);
			break;
		case LAB_LB_RECOVER:
			route.failed[e->node] = false;
			err = fp_sim_node_apply(&w, 0, e->node, site->nodes[e->node].cfg, true);
			if (err)
				goto out;
			break;
		case LAB_LB_RESTART:
			if (!e->cold)
				break; /* kill/term + up: the maps are taken over as they are */
			fp_sim_node_sessions_lost(&w, 0, e->node);
			err = fp_sim_node_apply(&w, 0, e->node, site->nodes[e->node].cfg, true);
			if (err)
				goto out;
			fp_sim_site_decide(&w, 0, FP_SIM_CAUSE_LAB);
			break;
		case LAB_RELOAD:
			/* The same config again: an unchanged plan flips nothing. */
			for (unsigned n = 0; n < LAB_NODES; n++)
				if (e->nodes & (1U << n)) {
					err = fp_sim_node_apply(&w, 0, n, site->nodes[n].cfg,
								false);
					if (err)
						goto out;
				}
			break;
		case LAB_BGP_ANNOUNCE:
			route.withdrawn[e->node] = route.drained[e->node] = false;
			break;
		case LAB_BGP_WITHDRAW:
			route.withdrawn[e->node] = true;
			break;
		case LAB_BGP_DRAIN:
			route.drained[e->node] = true;
			break;
		case LAB_BGP_MAINTENANCE:
			route.drained[e->node] = e->on;
			break;
		case LAB_BGP_PREPEND:
			route.prepend[e->node] = e->count;
			break;
		case LAB_BGP_MED:
			route.med[e->node] = e->med;
			break;
		case LAB_BGP_CUT:
			route.cut[e->node] = true;
			break;
		case LAB_BGP_RESTORE:
			route.cut[e->node] = false;
			break;
		case LAB_HEALTH_FLAP: {
			double times[512];
			size_t moves = fp_sim_flap_moves(true, (unsigned)(e->period * 1000),
							 (unsigned)(e->span * 1000), times, 512);

			for (size_t m = 0; m < moves; m++) {
				route.drained[e->node] = !route.drained[e->node];
				fp_sim_site_members(&w, 0, 0, carrying(&route), FP_SIM_CAUSE_LAB);
			}
			route.drained[e->node] = false;
			break;
		}
		case LAB_QUIC_MOVE:
			/* rebind: the even-numbered connections get a new port; migrate: the
			 * odd-numbered a new address. A new 4-tuple has no session anywhere. */
			for (size_t k = 0; k < site->n_flows; k++) {
				size_t f = site->flows[k];
				unsigned idx = (unsigned)f;
				struct fp_flow_key key4;

				if ((idx & 1) != (e->migrate ? 1U : 0U))
					continue;
				lab_flow_key(&key4, idx, (__u16)(32768 + next_rand(&rng) % 28000),
					     lab->quic, e->migrate);
				lab_hash(&w, &w.flows[f], &key4);
				for (unsigned c = 0; c < w.n_columns; c++)
					w.flows[f].pin[0][c].sessions = 0;
				w.flows[f].node[0] = FP_SIM_NO_NODE;
			}
			w.sites[0].members[0] = 0; /* re-route every flow by its new hash */
			break;
		case LAB_LB_UPGRADE:
		case LAB_PAUSE:
		case LAB_RESUME:
		case LAB__COUNT:
			break;
		}
		fp_sim_site_members(&w, 0, 0, carrying(&route), FP_SIM_CAUSE_LAB);
	}
	for (unsigned c = 0; c < lab->n_columns; c++) {
		broken[c] = total[c] = 0;
		for (size_t k = 0; k < w.sites[0].n_flows; k++) {
			const struct fp_sim_pin *pin = &w.flows[w.sites[0].flows[k]].pin[0][c];

			if (pin->apart)
				continue;
			total[c]++;
			broken[c] += pin->broken != 0;
		}
	}
	err = 0;
out:
	fp_sim_cfg_put(cfg);
	fp_sim_world_free(&w);
	free(result);
	return err;
}
