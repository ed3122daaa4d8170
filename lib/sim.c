// SPDX-License-Identifier: MIT
/*
 * The simulator's world: sites, LB nodes, their tables, flows, and the data plane's
 * decision for a flow's next packet (flowpin/sim.h, docs/sim.md).
 *
 * Nothing here re-implements a selection rule. A node's table is what lib/plan.c plans
 * over the node's own running state (the builder and the hop pairs an LB node applies,
 * fp_maglev_build_vip() inside); `none` and `table` pick from fp_vip_active_list();
 * buckets are fp_hash_bucket() of fp_flow_hash(); which modes keep sessions and hop
 * lists is pinning.h's. What the world adds is the order of the data plane's steps
 * (docs/design.md "Packet path on an LB node"), stated once in decide_column().
 *
 * Sharing: nodes of a site that apply the same config over the same running table get
 * the same table object (refcounted), so a site of 16 nodes builds once per change.
 * hash, hash+table and full (and full+tickets) read one table: the builder does not
 * look at the pinning mode, only the backends (lib/maglev.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <flowpin/maglev.h>
#include <flowpin/plan.h>
#include <flowpin/sim.h>

const char *const fp_sim_cause_names[FP_SIM_CAUSE__COUNT] = {
#define FP_X(name, str, help) [FP_SIM_CAUSE_##name] = str,
	FP_SIM_CAUSES(FP_X)
#undef FP_X
};

const char *const fp_sim_cause_help[FP_SIM_CAUSE__COUNT] = {
#define FP_X(name, str, help) [FP_SIM_CAUSE_##name] = help,
	FP_SIM_CAUSES(FP_X)
#undef FP_X
};

const struct fp_sim_column fp_sim_methods[6] = {
	{ .name = "none", .pinning = FP_PIN_NONE },
	{ .name = "table", .pinning = FP_PIN_TABLE },
	{ .name = "hash", .pinning = FP_PIN_HASH },
	{ .name = "hash+table", .pinning = FP_PIN_HASH_TABLE },
	{ .name = "full", .pinning = FP_PIN_FULL },
	{ .name = "full+ticket", .pinning = FP_PIN_FULL, .ticket = true },
};

const char *fp_sim_variant_name(unsigned v)
{
	static const char *const names[FP_SIM_VARIANTS] = { "plain", "shaping", "resilient",
							    "shaping+resilient" };

	return v < FP_SIM_VARIANTS ? names[v] : "?";
}

static __u64 mix64(__u64 x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int fp_sim_world_init(struct fp_sim_world *w, unsigned n_sites, __u32 table_size,
		      const struct fp_hash_key *key, struct fp_sim_result *result)
{
	memset(w, 0, sizeof(*w));
	if (!n_sites || !fp_is_prime(table_size) || !result)
		return -EINVAL;
	w->sites = calloc(n_sites, sizeof(*w->sites));
	if (!w->sites)
		return -ENOMEM;
	w->n_sites = n_sites;
	w->table_size = table_size;
	w->key = *key;
	w->router_key.k0 = mix64(key->k0 ^ 0x726f75746572ULL); /* "router" */
	w->router_key.k1 = mix64(key->k1 ^ 0x65636d70ULL);     /* "ecmp" */
	w->result = result;
	w->n_variants = 1;
	return 0;
}

static void table_put(struct fp_sim_table *t)
{
	if (t && !--t->refs) {
		free(t->pairs);
		free(t);
	}
}

void fp_sim_cfg_put(struct fp_sim_cfg *c)
{
	if (c && !--c->refs) {
		free(c->vip.backends);
		free(c->list);
		free(c->state);
		free(c);
	}
}

static void site_plan_drop(struct fp_sim_site *site);

void fp_sim_world_free(struct fp_sim_world *w)
{
	for (unsigned s = 0; w->sites && s < w->n_sites; s++) {
		struct fp_sim_site *site = &w->sites[s];

		for (unsigned n = 0; n < site->n_nodes; n++) {
			table_put(site->nodes[n].table);
			fp_sim_cfg_put(site->nodes[n].cfg);
		}
		table_put(site->memo_from);
		table_put(site->memo_to);
		fp_sim_cfg_put(site->memo_cfg);
		fp_sim_cfg_put(site->cfg);
		site_plan_drop(site);
		free(site->flows);
	}
	free(w->sites);
	free(w->flows);
	free(w->free_flows);
	memset(w, 0, sizeof(*w));
}

struct fp_sim_cfg *fp_sim_cfg_new(const struct fp_sim_world *w, const struct fp_backend_cfg *b,
				  size_t n)
{
	struct fp_sim_cfg *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->refs = 1;
	c->cfg.path = (char *)"sim";
	c->cfg.have_hash_key = true;
	c->cfg.hash_key = w->key;
	c->cfg.table_size = w->table_size;
	c->cfg.timeouts.tcp_established = FP_DEFAULT_TCP_ESTABLISHED;
	c->cfg.timeouts.tcp_transitory = FP_DEFAULT_TCP_TRANSITORY;
	c->cfg.timeouts.udp = FP_DEFAULT_UDP_TIMEOUT;
	c->cfg.vips = &c->vip;
	c->cfg.n_vips = 1;
	snprintf(c->vip.name, sizeof(c->vip.name), "anycast");
	fp_addr_parse("192.0.2.1", &c->vip.addr);
	c->vip.port = 443;
	c->vip.proto = IPPROTO_TCP;
	c->vip.pinning = FP_PIN_FULL;
	c->vip.backends = calloc(n ? n : 1, sizeof(*b));
	c->list = calloc(n ? n : 1, sizeof(*c->list));
	c->state = calloc(FP_MAX_BACKEND_ID + 1, 1);
	if (!c->vip.backends || !c->list || !c->state)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (!b[i].id || b[i].id > FP_MAX_BACKEND_ID || c->state[b[i].id])
			goto fail;
		c->vip.backends[i] = b[i];
		c->state[b[i].id] = (__u8)(1 + b[i].state);
	}
	c->vip.n_backends = n;
	c->n_list = fp_vip_active_list(&c->vip, c->list);
	return c;
fail:
	c->refs = 1;
	fp_sim_cfg_put(c);
	return NULL;
}

struct fp_sim_cfg *fp_sim_cfg_with(const struct fp_sim_world *w, const struct fp_sim_cfg *c,
				   __u16 id, enum fp_backend_state state, bool remove)
{
	size_t n = c->vip.n_backends, k = 0;
	struct fp_backend_cfg *b = calloc(n + 1, sizeof(*b));
	struct fp_sim_cfg *out;
	bool found = false;

	if (!b)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (c->vip.backends[i].id == id) {
			found = true;
			if (remove)
				continue;
			b[k] = c->vip.backends[i];
			b[k++].state = state;
		} else {
			b[k++] = c->vip.backends[i];
		}
	}
	if (!found && !remove) {
		b[k].id = id;
		b[k].weight = 100;
		b[k].state = state;
		fp_addr_parse("10.0.0.1", &b[k].addr);
		k++;
	}
	out = fp_sim_cfg_new(w, b, k);
	free(b);
	return out;
}

static void site_plan_drop(struct fp_sim_site *site)
{
	if (site->plan) {
		fp_plan_free(site->plan);
		free(site->plan);
		site->plan = NULL;
	}
	fp_sim_cfg_put(site->plan_cfg);
	site->plan_cfg = NULL;
}

/*
 * What node @from runs after applying @cfg (@from NULL: empty maps): lib/plan.c's plan
 * over the node's own running state. The table is built once per config and site: a
 * node with other hop pairs (it restarted cold, or applied another sequence) gets its
 * own pairs from fp_plan_pairs() over its own running table, as its apply would.
 */
static struct fp_sim_table *plan_table(struct fp_sim_world *w, struct fp_sim_site *site,
				       struct fp_sim_table *from, struct fp_sim_cfg *cfg)
{
	struct fp_sim_table *to = NULL;
	struct fp_vip_key key;
	struct fp_vip cur = {};
	struct fp_running run = {
		.keys = &key,
		.vips = &cur,
		.n = from ? 1 : 0,
		.buckets = from ? from->pairs : NULL,
		.table_size = w->table_size,
		.max_vips = 1,
		.generation = from ? from->vip.generation : 0,
	};
	struct fp_vip_plan *p;
	bool changed;

	fp_vip_key_of(&cfg->vip, &key);
	if (from) {
		/* The node's own view, its active half at slot 0 of a one-VIP bucket array. */
		cur = from->vip;
		cur.index = 0;
		cur.slot = 0;
	}
	if (site->plan && site->plan_cfg == cfg &&
	    !((struct fp_plan *)site->plan)->vips[0].current == !from) {
		/* The same config over another running table: same owners, its own pairs. */
		p = &((struct fp_plan *)site->plan)->vips[0];
		changed = !from;
		for (__u32 i = 0; from && i < w->table_size && !changed; i++)
			changed = from->pairs[i].owner != p->owners[i];
	} else {
		site_plan_drop(site);
		site->plan = calloc(1, sizeof(struct fp_plan));
		if (!site->plan)
			return NULL;
		site->plan_current = cur;
		run.vips = &site->plan_current;
		if (fp_plan_tables(&cfg->cfg, &run, site->plan)) {
			site_plan_drop(site);
			return NULL;
		}
		cfg->refs++;
		site->plan_cfg = cfg;
		p = &((struct fp_plan *)site->plan)->vips[0];
		changed = p->changed;
		w->result->table_builds++;
	}
	if (!changed) {
		from->refs++;
		return from;
	}
	to = calloc(1, sizeof(*to));
	if (!to || !(to->pairs = calloc(w->table_size, sizeof(*to->pairs)))) {
		free(to);
		return NULL;
	}
	to->refs = 1;
	/* p->current is the normalized view of whichever node planned first: the same
	 * index, slot and mode as this one's; only the pairs come from @from. */
	fp_plan_pairs(p, &run, to->pairs);
	to->vip = p->value;
	to->vip.generation = (from ? from->vip.generation : 0) + 1;
	to->vip.slot = from ? (from->vip.slot ^ 1) & 1 : 0;
	return to;
}

int fp_sim_node_apply(struct fp_sim_world *w, unsigned s, unsigned n, struct fp_sim_cfg *cfg,
		      bool cold)
{
	struct fp_sim_site *site = &w->sites[s];
	struct fp_sim_node *node = &site->nodes[n];
	struct fp_sim_table *from = cold ? NULL : node->table, *to;

	if (site->memo_to && site->memo_cfg == cfg && site->memo_from == from) {
		to = site->memo_to;
		to->refs++;
	} else {
		to = plan_table(w, site, from, cfg);
		if (!to)
			return -ENOMEM;
		table_put(site->memo_from);
		table_put(site->memo_to);
		fp_sim_cfg_put(site->memo_cfg);
		site->memo_from = from;
		if (from)
			from->refs++;
		site->memo_to = to;
		to->refs++;
		site->memo_cfg = cfg;
		cfg->refs++;
	}
	table_put(node->table);
	node->table = to;
	cfg->refs++;
	fp_sim_cfg_put(node->cfg);
	node->cfg = cfg;
	return 0;
}

int fp_sim_site_apply(struct fp_sim_world *w, unsigned s, struct fp_sim_cfg *cfg,
		      enum fp_sim_cause cause)
{
	struct fp_sim_site *site = &w->sites[s];
	int err;

	for (unsigned n = 0; n < site->n_nodes; n++) {
		err = fp_sim_node_apply(w, s, n, cfg, false);
		if (err)
			return err;
	}
	cfg->refs++;
	fp_sim_cfg_put(site->cfg);
	site->cfg = cfg;
	fp_sim_site_decide(w, s, cause);
	return 0;
}

/* The idx-th node (0-based) of the members, in node order. */
static __u8 nth_member(__u32 members, unsigned idx)
{
	for (unsigned n = 0; n < FP_SIM_MAX_NODES; n++)
		if (members & (1U << n) && !idx--)
			return (__u8)n;
	return FP_SIM_NO_NODE;
}

/* Hash-threshold (RFC 2992): the flow's region of the hash space, one per member. */
static __u8 route_threshold(__u32 members, __u32 ecmp)
{
	unsigned count = (unsigned)__builtin_popcount(members);

	if (!count)
		return FP_SIM_NO_NODE;
	return nth_member(members, (unsigned)(((__u64)ecmp * count) >> 32));
}

static __u8 route_node(const struct fp_sim_world *w, const struct fp_sim_site *site, unsigned v,
		       __u32 ecmp)
{
	if (!site->members[v])
		return FP_SIM_NO_NODE;
	if (w->variant_flags[v] & FP_SIM_V_RESILIENT)
		return site->res[v][ecmp % FP_SIM_RES_BUCKETS];
	return route_threshold(site->members[v], ecmp);
}

/*
 * A resilient group's buckets after a membership change: buckets of a node that left go
 * to the least loaded members; a node that joined takes buckets from the most loaded
 * until the shares are even. A busy bucket keeps its flows where they are (the kernel's
 * idle timer): the caller moves only the flows of nodes that left.
 */
static void resilient_update(__u8 *res, __u32 members)
{
	unsigned load[FP_SIM_MAX_NODES] = { 0 }, count = (unsigned)__builtin_popcount(members);

	if (!count)
		return;
	for (unsigned b = 0; b < FP_SIM_RES_BUCKETS; b++)
		if (res[b] < FP_SIM_MAX_NODES && members & (1U << res[b]))
			load[res[b]]++;
		else
			res[b] = FP_SIM_NO_NODE;
	for (;;) {
		unsigned lo = FP_SIM_MAX_NODES, hi = FP_SIM_MAX_NODES;

		for (unsigned n = 0; n < FP_SIM_MAX_NODES; n++) {
			if (!(members & (1U << n)))
				continue;
			if (lo == FP_SIM_MAX_NODES || load[n] < load[lo])
				lo = n;
			if (hi == FP_SIM_MAX_NODES || load[n] > load[hi])
				hi = n;
		}
		unsigned b;

		for (b = 0; b < FP_SIM_RES_BUCKETS && res[b] != FP_SIM_NO_NODE; b++)
			;
		if (b < FP_SIM_RES_BUCKETS) {
			res[b] = (__u8)lo;
			load[lo]++;
			continue;
		}
		if (load[hi] <= load[lo] + 1)
			break;
		for (b = 0; b < FP_SIM_RES_BUCKETS && res[b] != hi; b++)
			;
		res[b] = (__u8)lo;
		load[hi]--;
		load[lo]++;
	}
}

static void site_list_add(struct fp_sim_world *w, struct fp_sim_site *site, size_t i)
{
	if (site->n_flows == site->cap_flows) {
		size_t cap = site->cap_flows ? 2 * site->cap_flows : 64;
		__u32 *p = realloc(site->flows, cap * sizeof(*p));

		if (!p)
			abort(); /* a few bytes per flow: out of memory is fatal */
		site->flows = p;
		site->cap_flows = cap;
	}
	w->flows[i].pos = (__u32)site->n_flows;
	site->flows[site->n_flows++] = (__u32)i;
}

static void site_list_del(struct fp_sim_world *w, struct fp_sim_site *site, size_t i)
{
	__u32 pos = w->flows[i].pos, last = site->flows[--site->n_flows];

	site->flows[pos] = last;
	w->flows[last].pos = pos;
}

long fp_sim_flow_alloc(struct fp_sim_world *w)
{
	size_t i;

	if (w->n_free) {
		i = w->free_flows[--w->n_free];
	} else {
		if (w->n_flows == w->cap_flows) {
			size_t cap = w->cap_flows ? 2 * w->cap_flows : 1024;
			struct fp_sim_flow *f = realloc(w->flows, cap * sizeof(*f));
			__u32 *fr;

			if (!f)
				return -ENOMEM;
			w->flows = f;
			fr = realloc(w->free_flows, cap * sizeof(*fr));
			if (!fr)
				return -ENOMEM;
			w->free_flows = fr;
			w->cap_flows = cap;
		}
		i = w->n_flows++;
	}
	memset(&w->flows[i], 0, sizeof(w->flows[i]));
	return (long)i;
}

static bool uses_sessions(const struct fp_sim_column *c)
{
	return fp_pinning_uses_sessions(c->pinning);
}

/* `table`'s round robin as one flow sees it: a draw that no earlier decision predicts. */
static __u32 round_robin(struct fp_sim_world *w, struct fp_sim_flow *f)
{
	f->rr = (__u32)mix64(f->hash ^ ++w->draws);
	return f->rr;
}

/* A new flow's first packets at node @n: the server it gets, and its admission. */
static void first_pick(struct fp_sim_world *w, struct fp_sim_flow *f, unsigned v, unsigned c,
		       const struct fp_sim_node *node, __u8 n)
{
	const struct fp_sim_column *col = &w->columns[c];
	struct fp_sim_pin *pin = &f->pin[v][c];
	__u16 pick = FP_NO_BACKEND;
	bool admit = uses_sessions(col);

	if (!fp_pinning_uses_maglev(col->pinning)) {
		if (node->cfg->n_list)
			pick = node->cfg->list[(col->pinning == FP_PIN_NONE
							? (__u32)(f->hash % node->cfg->n_list)
							: round_robin(w, f) % node->cfg->n_list)];
	} else {
		struct fp_bucket b = node->table->pairs[fp_hash_bucket(f->hash, w->table_size)];

		pick = b.owner;
		/* full: a flow of a bucket that moved in the last change is not promoted */
		if (fp_pinning_second_chance(col->pinning) && b.previous != b.owner &&
		    b.previous != FP_NO_BACKEND)
			admit = false;
	}
	pin->backend = pick;
	pin->sessions = admit && pick != FP_NO_BACKEND ? (__u16)(1U << n) : 0;
	if (pick == FP_NO_BACKEND)
		pin->broken = 1 + FP_SIM_CAUSE_LAB; /* nothing to serve it: refused at once */
}

int fp_sim_flow_start(struct fp_sim_world *w, size_t i, unsigned s)
{
	struct fp_sim_flow *f = &w->flows[i];
	struct fp_sim_site *site = &w->sites[s];

	f->home = f->site = (__u16)s;
	f->live = 1;
	site_list_add(w, site, i);
	w->live_flows++;
	if (w->live_flows > w->result->peak_flows)
		w->result->peak_flows = w->live_flows;
	w->result->flows++;
	for (unsigned v = 0; v < w->n_variants; v++) {
		__u8 n = route_node(w, site, v, f->ecmp);

		f->node[v] = n;
		for (unsigned c = 0; c < w->n_columns; c++) {
			if (n == FP_SIM_NO_NODE) {
				f->pin[v][c].broken = 1 + FP_SIM_CAUSE_LAB;
				continue;
			}
			first_pick(w, f, v, c, &site->nodes[n], n);
		}
	}
	return 0;
}

void fp_sim_flow_end(struct fp_sim_world *w, size_t i)
{
	struct fp_sim_flow *f = &w->flows[i];
	struct fp_sim_result *r = w->result;
	unsigned classes = f->long_lived ? 2 : 1;

	if (!f->live)
		return;
	for (unsigned k = 0; k < classes; k++) {
		r->total[k].flows += 1;
		r->total[k].bytes += f->bytes;
	}
	for (unsigned v = 0; v < w->n_variants; v++) {
		for (unsigned c = 0; c < w->n_columns; c++) {
			const struct fp_sim_pin *pin = &f->pin[v][c];

			if (pin->apart)
				r->apart[v][c] += 1;
			if (!pin->broken)
				continue;
			for (unsigned k = 0; k < classes; k++) {
				r->broken[v][c][k].flows += 1;
				r->broken[v][c][k].bytes += f->bytes;
				r->by_cause[v][c][pin->broken - 1][k].flows += 1;
				r->by_cause[v][c][pin->broken - 1][k].bytes += f->bytes;
			}
		}
	}
	site_list_del(w, &w->sites[f->site], i);
	f->live = 0;
	w->live_flows--;
	w->free_flows[w->n_free++] = (__u32)i;
}

static void broke(struct fp_sim_pin *pin, enum fp_sim_cause cause)
{
	if (!pin->broken)
		pin->broken = (__u8)(1 + cause);
}

/*
 * The data plane on flow @f's next packet, for column @c in variant @v: the steps of
 * docs/design.md "Packet path on an LB node" in their order, then the backend's second
 * chance. The flow holds when the packet reaches its server.
 */
static void decide_column(struct fp_sim_world *w, struct fp_sim_flow *f, unsigned v, unsigned c,
			  enum fp_sim_cause cause)
{
	const struct fp_sim_column *col = &w->columns[c];
	struct fp_sim_pin *pin = &f->pin[v][c];
	const struct fp_sim_site *site;
	const struct fp_sim_node *node;
	bool ticket = col->ticket && !col->no_ts && (col->udp || f->has_ts);
	__u16 bit, want = pin->backend;
	__u8 st;

	if (pin->broken)
		return;
	if (f->site != f->home) {
		/*
		 * Another site: its tables name other servers. Only a ticket (or QUIC-LB server
		 * ID) naming a live server of the flow's site, sent there by the cross-site hop
		 * (docs/config.md "pops"), gets it home; that needs ids unique fleet-wide.
		 */
		st = fp_sim_state(w->sites[f->home].cfg, want);
		if (ticket && w->cross_site_tickets &&
		    (st == 1 + FP_BACKEND_ACTIVE || st == 1 + FP_BACKEND_DRAINING))
			return;
		broke(pin, cause);
		return;
	}
	if (f->node[v] == FP_SIM_NO_NODE)
		return; /* no route: no packet arrives (a blackhole is the caller's business) */
	site = &w->sites[f->site];
	node = &site->nodes[f->node[v]];
	bit = (__u16)(1U << f->node[v]);
	st = fp_sim_state(node->cfg, want);

	/* Step 3, tickets, on a session miss; step 4, the session, first. */
	if (uses_sessions(col) && (pin->sessions & bit) && st != 1 + FP_BACKEND_DOWN)
		return;
	if (ticket && (st == 1 + FP_BACKEND_ACTIVE || st == 1 + FP_BACKEND_DRAINING)) {
		if (uses_sessions(col))
			pin->sessions |= bit;
		return;
	}
	/* Step 5: the list (none, table) or the bucket's pair. */
	if (!fp_pinning_uses_maglev(col->pinning)) {
		__u32 n = (__u32)node->cfg->n_list;
		__u16 pick;

		if (!n) {
			broke(pin, cause);
			return;
		}
		pick = node->cfg->list[col->pinning == FP_PIN_NONE ? (__u32)(f->hash % n)
								   : round_robin(w, f) % n];
		if (pick != want) {
			broke(pin, cause);
			return;
		}
		if (uses_sessions(col))
			pin->sessions |= bit;
		return;
	}
	struct fp_bucket b = node->table->pairs[fp_hash_bucket(f->hash, w->table_size)];
	bool moved = b.previous != b.owner && b.previous != FP_NO_BACKEND;

	if (b.owner == want) {
		if (uses_sessions(col) && !(fp_pinning_second_chance(col->pinning) && moved))
			pin->sessions |= bit;
		return;
	}
	/* The owner has no socket for it and forwards to the previous owner (TCP only). */
	if (fp_pinning_second_chance(col->pinning) && !col->udp && moved && b.previous == want)
		return;
	broke(pin, cause);
}

void fp_sim_decide(struct fp_sim_world *w, size_t i, unsigned v, enum fp_sim_cause cause)
{
	if (w->quiet)
		return;
	for (unsigned c = 0; c < w->n_columns; c++)
		decide_column(w, &w->flows[i], v, c, cause);
}

void fp_sim_break(struct fp_sim_world *w, size_t i, unsigned v, enum fp_sim_cause cause, bool apart)
{
	for (unsigned c = 0; c < w->n_columns; c++) {
		struct fp_sim_pin *pin = &w->flows[i].pin[v][c];

		if (apart && !pin->broken)
			pin->apart = 1;
		broke(pin, cause);
	}
}

void fp_sim_flow_move(struct fp_sim_world *w, size_t i, unsigned s, enum fp_sim_cause cause)
{
	struct fp_sim_flow *f = &w->flows[i];

	if (f->site == s)
		return;
	site_list_del(w, &w->sites[f->site], i);
	f->site = (__u16)s;
	site_list_add(w, &w->sites[s], i);
	for (unsigned v = 0; v < w->n_variants; v++) {
		f->node[v] = route_node(w, &w->sites[s], v, f->ecmp);
		fp_sim_decide(w, i, v, cause);
	}
}

void fp_sim_site_members(struct fp_sim_world *w, unsigned s, unsigned v, __u32 members,
			 enum fp_sim_cause cause)
{
	struct fp_sim_site *site = &w->sites[s];
	bool resilient = w->variant_flags[v] & FP_SIM_V_RESILIENT;

	if (site->members[v] == members)
		return;
	site->members[v] = members;
	if (resilient)
		resilient_update(site->res[v], members);
	for (size_t k = 0; k < site->n_flows; k++) {
		size_t i = site->flows[k];
		struct fp_sim_flow *f = &w->flows[i];
		__u8 n = f->node[v];

		if (resilient && n != FP_SIM_NO_NODE && members & (1U << n))
			continue; /* a busy bucket stays */
		n = route_node(w, site, v, f->ecmp);
		if (n == f->node[v])
			continue;
		f->node[v] = n;
		fp_sim_decide(w, i, v, cause);
	}
}

void fp_sim_node_sessions_lost(struct fp_sim_world *w, unsigned s, unsigned n)
{
	struct fp_sim_site *site = &w->sites[s];

	for (size_t k = 0; k < site->n_flows; k++) {
		struct fp_sim_flow *f = &w->flows[site->flows[k]];

		for (unsigned v = 0; v < w->n_variants; v++)
			for (unsigned c = 0; c < w->n_columns; c++)
				f->pin[v][c].sessions &= (__u16) ~(1U << n);
	}
}

void fp_sim_site_decide(struct fp_sim_world *w, unsigned s, enum fp_sim_cause cause)
{
	struct fp_sim_site *site = &w->sites[s];

	for (size_t k = 0; k < site->n_flows; k++)
		for (unsigned v = 0; v < w->n_variants; v++)
			fp_sim_decide(w, site->flows[k], v, cause);
}

void fp_sim_server_gone(struct fp_sim_world *w, unsigned s, __u16 id, enum fp_sim_cause cause)
{
	struct fp_sim_site *site = &w->sites[s];

	for (size_t k = 0; k < site->n_flows; k++) {
		struct fp_sim_flow *f = &w->flows[site->flows[k]];

		if (f->home != s)
			continue;
		for (unsigned v = 0; v < w->n_variants; v++)
			for (unsigned c = 0; c < w->n_columns; c++) {
				struct fp_sim_pin *pin = &f->pin[v][c];

				if (pin->backend != id || pin->broken)
					continue;
				pin->apart = 1;
				broke(pin, cause);
			}
	}
}
