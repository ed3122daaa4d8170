// SPDX-License-Identifier: MIT
/*
 * The fleet: sites, LB nodes, servers and client prefixes; flows arriving over a
 * simulated day; events from each cause at its rate (docs/sim.md gives every default
 * and its source). Event-driven: flows exist only while they live (a heap of their
 * ends), causes are Poisson processes whose events schedule their own follow-ups (a
 * withdrawn route comes back, a drained server restarts); each site shares one table
 * object per config among its nodes (lib/sim.c).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <flowpin/announce.h>
#include <flowpin/hash.h>
#include <flowpin/maglev.h>
#include <flowpin/sim.h>
#include <flowpin/simyaml.h>
#include <flowpin/ticket.h>

#define DAY	  86400.0
#define NONE_IDX  0xffffffffU
#define MAX_SPIKE 4 /* LB nodes a spike may add */

void fp_sim_params_default(struct fp_sim_params *p)
{
	struct fp_sim_cause_cfg *c = p->causes;

	memset(p, 0, sizeof(*p));
	p->seed = 1;
	p->duration = DAY;
	p->flows = 10000000;
	p->sites = 300;
	p->servers = 10000;
	p->lb_nodes = 4;
	p->prefixes = 100000;
	p->table_size = FP_DEFAULT_TABLE_SIZE;
	p->ticket_bits = FP_TICKET_DEFAULT_BITS;
	p->timestamps = 0.7;
	p->under_2s = 0.45;
	p->under_15m = 0.98;
	p->rate = 20000;
	p->long_share = 0.01;
	p->long_mean = 4 * 3600;
	p->long_rate = 1000;
	p->flap_interval_ms = 1000;
	/* rate per unit per day, duration, share, extra: docs/sim.md "Causes" */
	c[FP_SIM_CAUSE_CATCHMENT_FLIP] = (struct fp_sim_cause_cfg){ 180, 0, 0.01, 0, 0 };
	c[FP_SIM_CAUSE_BGP_WITHDRAWAL] = (struct fp_sim_cause_cfg){ 0.02, 600, 1, 0, 0 };
	c[FP_SIM_CAUSE_ISP_CONGESTION] = (struct fp_sim_cause_cfg){ 0.5, 30, 1, 0, 0 };
	c[FP_SIM_CAUSE_INTERCONNECT_FAILURE] = (struct fp_sim_cause_cfg){ 0.05, 1800, 0.3, 0, 0 };
	c[FP_SIM_CAUSE_IX_POLICY] = (struct fp_sim_cause_cfg){ 0.05, 0, 0.2, 0, 0 };
	c[FP_SIM_CAUSE_MULTIPATH] = (struct fp_sim_cause_cfg){ 1, 0, 0.05, 0, 0 };
	c[FP_SIM_CAUSE_TRAFFIC_SPIKE] = (struct fp_sim_cause_cfg){ 0.1, 3600, 0.2, 1, 0 };
	c[FP_SIM_CAUSE_LB_RESTART] = (struct fp_sim_cause_cfg){ 1, 300, 1, 0, 0 };
	c[FP_SIM_CAUSE_SERVER_DEPLOY] = (struct fp_sim_cause_cfg){ 1, 300, 1, 30, 0 };
	c[FP_SIM_CAUSE_SERVER_FAILURE] = (struct fp_sim_cause_cfg){ 0.01, 3600, 1, 0, 0 };
	c[FP_SIM_CAUSE_MAINTENANCE] = (struct fp_sim_cause_cfg){ 0.0333, 7200, 1, 0, 0 };
}

void fp_sim_params_free(struct fp_sim_params *p)
{
	free(p->path);
	p->path = NULL;
}

/* --- the scenario file ------------------------------------------------------------ */

static const char *const top_keys[] = { "seed",	   "duration", "flows", "fleet",
					"clients", "traffic",  "causes" };
static const char *const fleet_keys[] = { "sites",    "servers",    "lb_nodes",
					  "prefixes", "table_size", "ticket_bits" };
static const char *const traffic_keys[] = { "under_2s", "under_15m", "rate", "long_lived" };
static const char *const long_keys[] = { "share", "mean", "rate" };
static const char *const cause_keys[] = { "rate", "duration", "share", "nodes", "restart" };

static void number(struct fp_sim_yaml *y, yaml_node_t *n, const char *field, double min, double max,
		   double *out)
{
	if (n)
		fp_sim_yaml_number(y, n, field, min, max, true, out);
}

static void integer(struct fp_sim_yaml *y, yaml_node_t *n, const char *field, double min,
		    double max, unsigned *out)
{
	double x;

	if (n && fp_sim_yaml_number(y, n, field, min, max, false, &x))
		*out = (unsigned)x;
}

static void duration(struct fp_sim_yaml *y, yaml_node_t *n, const char *field, double min,
		     double max, double *out)
{
	if (n)
		fp_sim_yaml_duration(y, n, field, min, max, out);
}

static void load_cause(struct fp_sim_yaml *y, yaml_node_t *node, const char *name,
		       struct fp_sim_cause_cfg *c)
{
	char field[FP_SIM_FIELD_MAX / 2], f[FP_SIM_FIELD_MAX];
	yaml_node_t *v[5];

	snprintf(field, sizeof(field), "causes.%s", name);
	c->line = (int)fp_sim_yaml_line(node);
	if (!fp_sim_yaml_fields(y, node, field, cause_keys, 5, v))
		return;
	snprintf(f, sizeof(f), "%s.rate", field);
	number(y, v[0], f, 0, 1e6, &c->rate);
	snprintf(f, sizeof(f), "%s.duration", field);
	duration(y, v[1], f, 0, 30 * DAY, &c->duration);
	snprintf(f, sizeof(f), "%s.share", field);
	number(y, v[2], f, 0, 1, &c->share);
	snprintf(f, sizeof(f), "%s.nodes", field);
	if (v[3] && strcmp(name, "traffic-spike"))
		fp_sim_yaml_report(y, v[3], f, "only traffic-spike adds LB nodes");
	else
		number(y, v[3], f, 0, MAX_SPIKE, &c->extra);
	snprintf(f, sizeof(f), "%s.restart", field);
	if (v[4] && strcmp(name, "server-deploy"))
		fp_sim_yaml_report(y, v[4], f, "only server-deploy restarts");
	else
		duration(y, v[4], f, 0, DAY, &c->extra);
}

int fp_sim_params_load(const char *path, struct fp_sim_params *p, FILE *err)
{
	struct fp_sim_params out = *p;
	yaml_node_t *root, *v[7], *fl[6], *t[4], *l[3];
	struct fp_sim_yaml y;
	double x;

	out.path = strdup(path);
	if (!out.path)
		return -ENOMEM;
	root = fp_sim_yaml_open(&y, path);
	if (!root || !fp_sim_yaml_fields(&y, root, "", top_keys, 7, v))
		goto done;
	if (v[0] && fp_sim_yaml_number(&y, v[0], "seed", 0, 1e15, false, &x))
		out.seed = (unsigned long long)x;
	duration(&y, v[1], "duration", 1, 30 * DAY, &out.duration);
	if (v[2] && fp_sim_yaml_number(&y, v[2], "flows", 1, 1e9, false, &x))
		out.flows = (unsigned long long)x;
	if (v[3] && fp_sim_yaml_fields(&y, v[3], "fleet", fleet_keys, 6, fl)) {
		integer(&y, fl[0], "fleet.sites", 1, 10000, &out.sites);
		integer(&y, fl[1], "fleet.servers", 1, 1e7, &out.servers);
		integer(&y, fl[2], "fleet.lb_nodes", 1, FP_SIM_MAX_NODES - MAX_SPIKE,
			&out.lb_nodes);
		integer(&y, fl[3], "fleet.prefixes", 1, 1e8, &out.prefixes);
		integer(&y, fl[4], "fleet.table_size", 7, FP_MAX_TABLE_SIZE, &out.table_size);
		integer(&y, fl[5], "fleet.ticket_bits", FP_TICKET_MIN_BITS, FP_TICKET_MAX_BITS,
			&out.ticket_bits);
		if (fl[4] && !fp_is_prime(out.table_size))
			fp_sim_yaml_report(&y, fl[4], "fleet.table_size", "must be a prime, got %u",
					   out.table_size);
	}
	if (v[4]) {
		static const char *const client_keys[] = { "timestamps" };
		yaml_node_t *c[1];

		if (fp_sim_yaml_fields(&y, v[4], "clients", client_keys, 1, c))
			number(&y, c[0], "clients.timestamps", 0, 1, &out.timestamps);
	}
	if (v[5] && fp_sim_yaml_fields(&y, v[5], "traffic", traffic_keys, 4, t)) {
		number(&y, t[0], "traffic.under_2s", 0.01, 0.99, &out.under_2s);
		number(&y, t[1], "traffic.under_15m", 0.01, 0.9999, &out.under_15m);
		number(&y, t[2], "traffic.rate", 1, 1e10, &out.rate);
		if (out.under_15m <= out.under_2s)
			fp_sim_yaml_report(&y, t[1] ? t[1] : v[5], "traffic.under_15m",
					   "must be above under_2s (%g)", out.under_2s);
		if (t[3] && fp_sim_yaml_fields(&y, t[3], "traffic.long_lived", long_keys, 3, l)) {
			number(&y, l[0], "traffic.long_lived.share", 0, 1, &out.long_share);
			duration(&y, l[1], "traffic.long_lived.mean", 1, 30 * DAY, &out.long_mean);
			number(&y, l[2], "traffic.long_lived.rate", 1, 1e10, &out.long_rate);
		}
	}
	if (v[6]) {
		yaml_node_t *c[FP_SIM_CAUSE__COUNT];

		if (fp_sim_yaml_fields(&y, v[6], "causes", fp_sim_cause_names,
				       FP_SIM_CAUSES_SCENARIO, c))
			for (unsigned i = 0; i < FP_SIM_CAUSES_SCENARIO; i++)
				if (c[i])
					load_cause(&y, c[i], fp_sim_cause_names[i], &out.causes[i]);
	}
	if (out.servers < out.sites)
		fp_sim_yaml_report(&y, v[3] ? v[3] : root, "fleet.servers",
				   "%u servers for %u sites: at least one per site", out.servers,
				   out.sites);
	else if ((out.servers + out.sites - 1) / out.sites * 2 > FP_MAX_BACKEND_ID)
		fp_sim_yaml_report(&y, v[3] ? v[3] : root, "fleet.servers",
				   "%u per site: backend ids are 1..%d per VIP",
				   out.servers / out.sites, FP_MAX_BACKEND_ID / 2);
	else if ((__u64)out.table_size < 100ULL * ((out.servers + out.sites - 1) / out.sites))
		fp_sim_yaml_report(&y, v[3] ? v[3] : root, "fleet.table_size",
				   "%u is below 100 x the servers of a site (docs/config.md)",
				   out.table_size);
done:
	if (fp_sim_yaml_close(&y, err)) {
		free(out.path);
		return -EINVAL;
	}
	fp_sim_params_free(p);
	*p = out;
	return 0;
}

/* --- health flaps, by the announcement state machine ------------------------------- */

size_t fp_sim_flap_moves(bool damping, unsigned period_ms, unsigned for_ms, double *times,
			 size_t max)
{
	struct fp_announce_params params;
	struct fp_announce a;
	struct fp_announce_input in = { .dataplane_ok = true };
	unsigned step = period_ms / 2 ? period_ms / 2 : 1;
	__u64 ns_step = (__u64)step * 1000000ULL, now = FP_NS_PER_SEC;
	bool preferred = true;
	size_t n = 0;

	fp_announce_params_default(&params);
	params.rise = params.fall = 1; /* checks fast enough to follow the flap (the lab's) */
	params.damping = damping;
	fp_announce_init(&a, FP_ANNOUNCE_ANNOUNCED, now);
	/* The flap, then healthy until the route is back (a suppressed route waits). */
	for (__u64 t = 0; t < for_ms + params.max_suppress_ns / 1000000ULL + 2 * step; t += step) {
		bool p;

		in.healthy_backends = t < for_ms ? (unsigned)((t / step) % 2 == 0) : 1;
		now += ns_step;
		p = fp_announce_update(&a, &params, &in, now) == FP_ANNOUNCE_ANNOUNCED;
		if (p != preferred) {
			preferred = p;
			if (n < max)
				times[n] = (double)t;
			n++;
		}
		if (t >= for_ms && preferred)
			break;
	}
	return n < max ? n : max;
}

/* --- random numbers --------------------------------------------------------------- */

static __u64 rnd(__u64 *s)
{
	__u64 x = (*s += 0x9e3779b97f4a7c15ULL);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static double uniform(__u64 *s)
{
	return ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

static double expo(__u64 *s, double mean)
{
	return -mean * log(uniform(s));
}

static double normal(__u64 *s)
{
	return sqrt(-2 * log(uniform(s))) * cos(2 * M_PI * uniform(s));
}

/* The standard normal quantile, by bisection on erfc (precise enough for two fits). */
static double probit(double q)
{
	double lo = -10, hi = 10;

	for (int i = 0; i < 100; i++) {
		double mid = (lo + hi) / 2;

		if (0.5 * erfc(-mid / M_SQRT2) < q)
			lo = mid;
		else
			hi = mid;
	}
	return (lo + hi) / 2;
}

/* --- event heap ------------------------------------------------------------------- */

struct ev {
	double t;
	__u8 cause, phase, variants, in;
	__u32 a, b;
	__u64 seed;
};

struct heap {
	struct ev *v;
	size_t n, cap;
};

static int heap_push(struct heap *h, struct ev e)
{
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 1024;
		struct ev *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	for (i = h->n++; i && h->v[(i - 1) / 2].t > e.t; i = (i - 1) / 2)
		h->v[i] = h->v[(i - 1) / 2];
	h->v[i] = e;
	return 0;
}

static struct ev heap_pop(struct heap *h)
{
	struct ev top = h->v[0], last = h->v[--h->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].t < h->v[c].t)
			c++;
		if (h->v[c].t >= last.t)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

/* --- the fleet's state -------------------------------------------------------------- */

struct fleet {
	const struct fp_sim_params *p;
	struct fp_sim_world w;
	__u64 rng;
	struct heap events, ends;
	/* prefixes */
	__u32 *primary, *alt, *head, *salt;
	__u8 *flip, *shift, *multipath;
	__u32 *unstable, n_unstable, *multi, n_multi;
	__u32 *site_prefix_start, *site_prefixes; /* prefixes whose primary or alt is a site */
	/* sites */
	unsigned *servers, *down, *spiking;
	__u8 *node_out;	    /* [site][node][variant]: reasons the node is down (rebooting, spare) */
	__u8 *node_drained; /* the same layout: health flaps that drain it */
	__u8 *server_busy;  /* [site][id]: a deploy or a failure is under way */
	unsigned max_id;
	double mu, sigma;
};

static __u8 *node_out(struct fleet *F, unsigned s, unsigned n, unsigned v)
{
	return &F->node_out[((size_t)s * FP_SIM_MAX_NODES + n) * FP_SIM_VARIANTS + v];
}

static __u8 *node_drained(struct fleet *F, unsigned s, unsigned n, unsigned v)
{
	return &F->node_drained[((size_t)s * FP_SIM_MAX_NODES + n) * FP_SIM_VARIANTS + v];
}

static void members_update(struct fleet *F, unsigned s, unsigned v, enum fp_sim_cause cause)
{
	__u32 m = 0, up = 0;

	for (unsigned n = 0; n < F->w.sites[s].n_nodes; n++) {
		if (*node_out(F, s, n, v))
			continue;
		up |= 1U << n;
		if (!*node_drained(F, s, n, v))
			m |= 1U << n;
	}
	/* every node up drains: their drained routes still carry the site (a backup,
	 * never a blackhole: RFC 8326, flowpin/announce.h) */
	fp_sim_site_members(&F->w, s, v, m ? m : up, cause);
}

static unsigned other_site(struct fleet *F, __u32 p, unsigned s)
{
	return s == F->primary[p] ? F->alt[p] : F->primary[p];
}

/* Where prefix @p's routes lead now; a multipath prefix's flow by its own hash. */
static unsigned flow_site(struct fleet *F, __u32 p, __u32 ecmp)
{
	unsigned s = (F->flip[p] ^ (F->shift[p] > 0)) ? F->alt[p] : F->primary[p];

	if (F->down[s] && !F->down[other_site(F, p, s)])
		s = other_site(F, p, s);
	if (F->multipath[p] && (rnd(&(__u64){ ecmp ^ ((__u64)F->salt[p] << 32) }) & 1))
		s = other_site(F, p, s);
	return s;
}

/* Every flow of prefix @p goes where its routes lead now. */
static void reconcile(struct fleet *F, __u32 p, enum fp_sim_cause cause)
{
	for (__u32 i = F->head[p]; i != NONE_IDX; i = F->w.flows[i].pnext) {
		unsigned s = flow_site(F, p, F->w.flows[i].ecmp);

		if (s != F->w.flows[i].site)
			fp_sim_flow_move(&F->w, i, s, cause);
	}
}

static void reconcile_site(struct fleet *F, unsigned s, enum fp_sim_cause cause)
{
	for (__u32 k = F->site_prefix_start[s]; k < F->site_prefix_start[s + 1]; k++)
		reconcile(F, F->site_prefixes[k], cause);
}

/* A random subset of @s's prefixes, the same for one @seed (a change and its return). */
static bool in_subset(__u32 p, __u64 seed, double share)
{
	return (double)(rnd(&(__u64){ seed ^ p }) >> 11) / 9007199254740992.0 < share;
}

static int site_cfg_change(struct fleet *F, unsigned s, __u16 id, enum fp_backend_state st,
			   bool remove, enum fp_sim_cause cause)
{
	struct fp_sim_cfg *c = fp_sim_cfg_with(&F->w, F->w.sites[s].cfg, id, st, remove);
	int err;

	if (!c)
		return -ENOMEM;
	err = fp_sim_site_apply(&F->w, s, c, cause);
	fp_sim_cfg_put(c);
	return err;
}

static int schedule(struct fleet *F, struct ev e)
{
	if (e.t >= F->p->duration)
		return 0;
	return heap_push(&F->events, e);
}

/* The next event of cause @c after @t: one Poisson process over all its units. */
static int next_of(struct fleet *F, unsigned c, double t, unsigned units)
{
	const struct fp_sim_cause_cfg *cc = &F->p->causes[c];
	double rate = cc->rate * units / DAY;

	if (rate <= 0 || !units)
		return 0;
	return schedule(F, (struct ev){ .t = t + expo(&F->rng, 1 / rate),
					.cause = (__u8)c,
					.a = (__u32)(rnd(&F->rng) % units),
					.seed = rnd(&F->rng) });
}

static unsigned units_of(struct fleet *F, unsigned c)
{
	switch (c) {
	case FP_SIM_CAUSE_CATCHMENT_FLIP:
		return F->n_unstable;
	case FP_SIM_CAUSE_MULTIPATH:
		return F->n_multi;
	case FP_SIM_CAUSE_LB_RESTART:
	case FP_SIM_CAUSE_ISP_CONGESTION:
		return F->p->sites * F->p->lb_nodes;
	case FP_SIM_CAUSE_SERVER_DEPLOY:
	case FP_SIM_CAUSE_SERVER_FAILURE:
		return F->p->servers;
	default:
		return F->p->sites;
	}
}

/* Server unit @a: its site and id (servers spread evenly, ids 1..n per site). */
static void server_of(struct fleet *F, __u32 a, unsigned *s, __u16 *id)
{
	unsigned per = F->p->servers / F->p->sites, extra = F->p->servers % F->p->sites;
	unsigned big = extra * (per + 1);

	if (a < big) {
		*s = a / (per + 1);
		*id = (__u16)(a % (per + 1) + 1);
	} else {
		*s = extra + (a - big) / per;
		*id = (__u16)((a - big) % per + 1);
	}
}

static int handle(struct fleet *F, struct ev e)
{
	const struct fp_sim_cause_cfg *cc = &F->p->causes[e.cause];
	enum fp_sim_cause cause = e.cause;
	struct fp_sim_world *w = &F->w;
	unsigned s = e.a;
	struct ev next = e;
	int err = 0;

	if (e.phase == 0) {
		w->result->events[cause]++;
		err = next_of(F, cause, e.t, units_of(F, cause));
		if (err)
			return err;
	}
	switch (cause) {
	case FP_SIM_CAUSE_CATCHMENT_FLIP: {
		__u32 p = F->unstable[e.a];

		F->flip[p] ^= 1;
		reconcile(F, p, cause);
		break;
	}
	case FP_SIM_CAUSE_MULTIPATH: {
		__u32 p = F->multi[e.a];

		F->salt[p] = (__u32)rnd(&F->rng);
		reconcile(F, p, cause);
		break;
	}
	case FP_SIM_CAUSE_BGP_WITHDRAWAL:
	case FP_SIM_CAUSE_MAINTENANCE:
		if (e.phase == 0) {
			F->down[s]++;
			next.phase = 1;
			next.t = e.t + cc->duration;
			err = schedule(F, next);
		} else {
			F->down[s]--;
		}
		reconcile_site(F, s, cause);
		break;
	case FP_SIM_CAUSE_INTERCONNECT_FAILURE:
	case FP_SIM_CAUSE_IX_POLICY:
		for (__u32 k = F->site_prefix_start[s]; k < F->site_prefix_start[s + 1]; k++) {
			__u32 p = F->site_prefixes[k];

			if (F->primary[p] != s || !in_subset(p, e.seed, cc->share))
				continue;
			if (cause == FP_SIM_CAUSE_IX_POLICY) {
				/* for good: the other site becomes the nearer one */
				F->primary[p] = F->alt[p];
				F->alt[p] = s;
			} else {
				F->shift[p] += e.phase == 0 ? 1 : -1;
			}
		}
		if (cause == FP_SIM_CAUSE_INTERCONNECT_FAILURE && e.phase == 0 &&
		    cc->duration > 0) {
			next.phase = 1;
			next.t = e.t + cc->duration;
			err = schedule(F, next);
		}
		reconcile_site(F, s, cause);
		break;
	case FP_SIM_CAUSE_ISP_CONGESTION:
		if (e.phase == 0) {
			/* One node's checks flap: its route moves as the announcement machine
			 * says, with damping where BGP shaping runs and without elsewhere. */
			unsigned node = e.a % F->p->lb_nodes;
			double times[512];

			s = e.a / F->p->lb_nodes;
			for (unsigned shaped = 0; shaped < 2 && !err; shaped++) {
				size_t n = fp_sim_flap_moves(shaped, F->p->flap_interval_ms,
							     (unsigned)(cc->duration * 1000), times,
							     512);
				__u8 vars = 0;

				for (unsigned v = 0; v < w->n_variants; v++)
					if (!(w->variant_flags[v] & FP_SIM_V_SHAPING) == !shaped)
						vars |= (__u8)(1U << v);
				for (size_t k = 0; k < n && !err; k++)
					err = schedule(F, (struct ev){ .t = e.t + times[k] / 1000,
								       .cause = (__u8)cause,
								       .phase = 1,
								       .variants = vars,
								       .in = (__u8)(k % 2),
								       .a = s,
								       .b = node });
			}
		} else {
			for (unsigned v = 0; v < w->n_variants; v++) {
				__u8 *o = node_drained(F, s, e.b, v);

				if (!(e.variants & (1U << v)))
					continue;
				*o = (__u8)(e.in ? *o - (*o > 0) : *o + 1);
				members_update(F, s, v, cause);
			}
		}
		break;
	case FP_SIM_CAUSE_LB_RESTART: {
		unsigned node = e.phase == 0 ? e.a % F->p->lb_nodes : e.b;

		s = e.phase == 0 ? e.a / F->p->lb_nodes : e.a;
		if (e.phase == 0) {
			/* Planned: drained first (the flows move while it still forwards), then
			 * it goes down with its sessions. */
			for (unsigned v = 0; v < w->n_variants; v++) {
				(*node_out(F, s, node, v))++;
				members_update(F, s, v, cause);
			}
			fp_sim_node_sessions_lost(w, s, node);
			next = (struct ev){ .t = e.t + cc->duration,
					    .cause = e.cause,
					    .phase = 1,
					    .a = s,
					    .b = node };
			err = schedule(F, next);
		} else {
			err = fp_sim_node_apply(w, s, node, w->sites[s].cfg, true);
			for (unsigned v = 0; v < w->n_variants && !err; v++) {
				(*node_out(F, s, node, v))--;
				members_update(F, s, v, cause);
			}
		}
		break;
	}
	case FP_SIM_CAUSE_TRAFFIC_SPIKE: {
		unsigned extra = (unsigned)cc->extra, base = F->servers[s];
		unsigned add = (unsigned)(cc->share * base + 0.5);

		if (e.phase == 0) {
			if (F->spiking[s])
				break;
			F->spiking[s] = 1;
			for (unsigned k = 0; k < add && !err; k++)
				err = site_cfg_change(F, s, (__u16)(base + 1 + k),
						      FP_BACKEND_ACTIVE, false, cause);
			for (unsigned k = 0; k < extra && !err; k++) {
				unsigned node = F->p->lb_nodes + k;

				err = fp_sim_node_apply(w, s, node, w->sites[s].cfg, true);
				for (unsigned v = 0; v < w->n_variants; v++) {
					(*node_out(F, s, node, v))--;
					members_update(F, s, v, cause);
				}
			}
			next.phase = 1;
			next.t = e.t + cc->duration;
			err = err ? err : schedule(F, next);
		} else if (e.phase == 1) {
			for (unsigned k = 0; k < extra; k++)
				for (unsigned v = 0; v < w->n_variants; v++) {
					(*node_out(F, s, F->p->lb_nodes + k, v))++;
					members_update(F, s, v, cause);
				}
			for (unsigned k = 0; k < add && !err; k++)
				err = site_cfg_change(F, s, (__u16)(base + 1 + k),
						      FP_BACKEND_DRAINING, false, cause);
			next.phase = 2;
			next.t = e.t + F->p->causes[FP_SIM_CAUSE_SERVER_DEPLOY].duration;
			err = err ? err : schedule(F, next);
		} else {
			for (unsigned k = 0; k < add && !err; k++) {
				fp_sim_server_gone(w, s, (__u16)(base + 1 + k),
						   FP_SIM_CAUSE_SERVER_GONE);
				err = site_cfg_change(F, s, (__u16)(base + 1 + k), FP_BACKEND_DOWN,
						      true, cause);
			}
			F->spiking[s] = 0;
		}
		break;
	}
	case FP_SIM_CAUSE_SERVER_DEPLOY:
	case FP_SIM_CAUSE_SERVER_FAILURE: {
		__u16 id = (__u16)e.b;
		__u8 *busy;

		if (e.phase == 0)
			server_of(F, e.a, &s, &id);
		else
			s = e.a;
		busy = &F->server_busy[(size_t)s * (F->max_id + 1) + id];
		if (e.phase == 0) {
			if (*busy)
				break;
			*busy = 1;
		}
		next = (struct ev){
			.cause = e.cause, .phase = (__u8)(e.phase + 1), .a = s, .b = id
		};
		if (cause == FP_SIM_CAUSE_SERVER_DEPLOY && e.phase == 0) {
			err = site_cfg_change(F, s, id, FP_BACKEND_DRAINING, false, cause);
			next.t = e.t + cc->duration;
		} else if ((cause == FP_SIM_CAUSE_SERVER_DEPLOY && e.phase == 1) ||
			   (cause == FP_SIM_CAUSE_SERVER_FAILURE && e.phase == 0)) {
			/* it goes down: what it still holds breaks in every method */
			fp_sim_server_gone(w, s, id, FP_SIM_CAUSE_SERVER_GONE);
			err = site_cfg_change(F, s, id, FP_BACKEND_DOWN, false, cause);
			next.t = e.t +
				 (cause == FP_SIM_CAUSE_SERVER_DEPLOY ? cc->extra : cc->duration);
		} else {
			err = site_cfg_change(F, s, id, FP_BACKEND_ACTIVE, false, cause);
			*busy = 0;
			break;
		}
		err = err ? err : schedule(F, next);
		if (next.t >= F->p->duration)
			*busy = 1; /* never back within the run */
		break;
	}
	default:
		break;
	}
	return err;
}

/* --- flows ------------------------------------------------------------------------- */

static int end_push(struct heap *h, double t, __u32 i)
{
	return heap_push(h, (struct ev){ .t = t, .a = i });
}

static void prefix_link(struct fleet *F, __u32 i)
{
	struct fp_sim_flow *f = &F->w.flows[i];

	f->pprev = NONE_IDX;
	f->pnext = F->head[f->prefix];
	if (f->pnext != NONE_IDX)
		F->w.flows[f->pnext].pprev = i;
	F->head[f->prefix] = i;
}

static void prefix_unlink(struct fleet *F, __u32 i)
{
	struct fp_sim_flow *f = &F->w.flows[i];

	if (f->pprev != NONE_IDX)
		F->w.flows[f->pprev].pnext = f->pnext;
	else
		F->head[f->prefix] = f->pnext;
	if (f->pnext != NONE_IDX)
		F->w.flows[f->pnext].pprev = f->pprev;
}

static int flow_arrive(struct fleet *F, double t)
{
	const struct fp_sim_params *p = F->p;
	long i = fp_sim_flow_alloc(&F->w);
	struct fp_sim_flow *f;
	struct fp_flow_key k = {};
	double d;

	if (i < 0)
		return (int)i;
	f = &F->w.flows[i];
	f->prefix = (__u32)(rnd(&F->rng) % p->prefixes);
	/* a client of the prefix: 10.0.0.0/8 + prefix * 256 + host, any port, to the VIP */
	fp_addr_from_v4(k.src,
			htonl(0x0a000000U + (f->prefix << 8) + (__u32)(rnd(&F->rng) & 0xff)));
	fp_addr_from_v4(k.dst, htonl(0xc0000201U));
	k.sport = htons((__u16)(1024 + rnd(&F->rng) % 64512));
	k.dport = htons(443);
	k.proto = IPPROTO_TCP;
	f->hash = fp_flow_hash(&F->w.key, &k);
	f->ecmp = (__u32)fp_flow_hash(&F->w.router_key, &k);
	f->has_ts = uniform(&F->rng) < p->timestamps;
	if (uniform(&F->rng) < p->long_share) {
		f->long_lived = 1;
		d = expo(&F->rng, p->long_mean);
		f->bytes = 1000 + d * p->long_rate;
	} else {
		d = exp(F->mu + F->sigma * normal(&F->rng));
		if (d > DAY)
			d = DAY;
		f->bytes = 1000 + d * p->rate;
	}
	f->end = t + d;
	prefix_link(F, (__u32)i);
	fp_sim_flow_start(&F->w, (size_t)i, flow_site(F, f->prefix, f->ecmp));
	return end_push(&F->ends, f->end, (__u32)i);
}

static void flow_leave(struct fleet *F, __u32 i)
{
	prefix_unlink(F, i);
	fp_sim_flow_end(&F->w, i);
}

/* --- setup -------------------------------------------------------------------------- */

static int fleet_setup(struct fleet *F)
{
	const struct fp_sim_params *p = F->p;
	struct fp_sim_world *w = &F->w;
	struct fp_hash_key key = { rnd(&F->rng), rnd(&F->rng) };
	unsigned nodes = p->lb_nodes + MAX_SPIKE, per, extra;
	struct fp_backend_cfg *b;
	__u32 *count;
	int err;

	err = fp_sim_world_init(w, p->sites, p->table_size, &key, w->result);
	if (err)
		return err;
	w->n_variants = FP_SIM_VARIANTS;
	for (unsigned v = 0; v < FP_SIM_VARIANTS; v++)
		w->variant_flags[v] = (__u8)v;
	w->n_columns = 6;
	memcpy(w->columns, fp_sim_methods, sizeof(fp_sim_methods));
	/* A ticket names a server anywhere only if ids are unique fleet-wide (docs/sim.md). */
	w->cross_site_tickets = p->servers < (1U << p->ticket_bits);
	per = p->servers / p->sites;
	extra = p->servers % p->sites;
	F->max_id =
		per + 1 + (unsigned)(p->causes[FP_SIM_CAUSE_TRAFFIC_SPIKE].share * (per + 1) + 1);
	F->servers = calloc(p->sites, sizeof(unsigned));
	F->down = calloc(p->sites, sizeof(unsigned));
	F->spiking = calloc(p->sites, sizeof(unsigned));
	F->node_out = calloc((size_t)p->sites * FP_SIM_MAX_NODES * FP_SIM_VARIANTS, 1);
	F->node_drained = calloc((size_t)p->sites * FP_SIM_MAX_NODES * FP_SIM_VARIANTS, 1);
	F->server_busy = calloc((size_t)p->sites * (F->max_id + 1), 1);
	F->primary = calloc(p->prefixes, sizeof(__u32));
	F->alt = calloc(p->prefixes, sizeof(__u32));
	F->head = malloc(p->prefixes * sizeof(__u32));
	F->salt = calloc(p->prefixes, sizeof(__u32));
	F->flip = calloc(p->prefixes, 1);
	F->shift = calloc(p->prefixes, 1);
	F->multipath = calloc(p->prefixes, 1);
	F->unstable = calloc(p->prefixes, sizeof(__u32));
	F->multi = calloc(p->prefixes, sizeof(__u32));
	F->site_prefix_start = calloc(p->sites + 2, sizeof(__u32));
	F->site_prefixes = calloc(2 * (size_t)p->prefixes, sizeof(__u32));
	count = calloc(p->sites + 1, sizeof(__u32));
	b = calloc(F->max_id + 1, sizeof(*b));
	if (!F->servers || !F->down || !F->spiking || !F->node_out || !F->node_drained ||
	    !F->server_busy || !F->primary || !F->alt || !F->head || !F->salt || !F->flip ||
	    !F->shift || !F->multipath || !F->unstable || !F->multi || !F->site_prefix_start ||
	    !F->site_prefixes || !count || !b) {
		err = -ENOMEM;
		goto out;
	}
	for (unsigned s = 0; s < p->sites; s++) {
		struct fp_sim_cfg *c;

		F->servers[s] = per + (s < extra);
		for (unsigned k = 0; k < F->servers[s]; k++) {
			b[k] = (struct fp_backend_cfg){ .id = k + 1, .weight = 100 };
			fp_addr_parse("10.0.0.1", &b[k].addr);
		}
		c = fp_sim_cfg_new(w, b, F->servers[s]);
		if (!c) {
			err = -EINVAL;
			goto out;
		}
		w->sites[s].n_nodes = nodes;
		for (unsigned n = 0; n < nodes && !err; n++)
			err = fp_sim_node_apply(w, s, n, c, true);
		w->sites[s].cfg = c;
		if (err)
			goto out;
		for (unsigned n = p->lb_nodes; n < nodes; n++)
			for (unsigned v = 0; v < FP_SIM_VARIANTS; v++)
				*node_out(F, s, n, v) = 1; /* spare: joins in a traffic spike */
		for (unsigned v = 0; v < FP_SIM_VARIANTS; v++)
			members_update(F, s, v, FP_SIM_CAUSE_LAB);
	}
	for (__u32 pf = 0; pf < p->prefixes; pf++) {
		F->head[pf] = NONE_IDX;
		F->primary[pf] = (__u32)(rnd(&F->rng) % p->sites);
		F->alt[pf] =
			p->sites > 1
				? (F->primary[pf] + 1 + (__u32)(rnd(&F->rng) % (p->sites - 1))) %
					  p->sites
				: F->primary[pf];
		if (uniform(&F->rng) < p->causes[FP_SIM_CAUSE_CATCHMENT_FLIP].share)
			F->unstable[F->n_unstable++] = pf;
		if (uniform(&F->rng) < p->causes[FP_SIM_CAUSE_MULTIPATH].share) {
			F->multipath[pf] = 1;
			F->salt[pf] = (__u32)rnd(&F->rng);
			F->multi[F->n_multi++] = pf;
		}
		count[F->primary[pf]]++;
		if (F->alt[pf] != F->primary[pf])
			count[F->alt[pf]]++;
	}
	for (unsigned s = 0; s < p->sites; s++)
		F->site_prefix_start[s + 1] = F->site_prefix_start[s] + count[s];
	memset(count, 0, (p->sites + 1) * sizeof(*count));
	for (__u32 pf = 0; pf < p->prefixes; pf++) {
		unsigned s = F->primary[pf], a = F->alt[pf];

		F->site_prefixes[F->site_prefix_start[s] + count[s]++] = pf;
		if (a != s)
			F->site_prefixes[F->site_prefix_start[a] + count[a]++] = pf;
	}
	/* flow durations: lognormal through the two published quantiles */
	F->sigma = (log(900) - log(2)) / (probit(p->under_15m) - probit(p->under_2s));
	F->mu = log(2) - F->sigma * probit(p->under_2s);
	for (unsigned c = 0; c < FP_SIM_CAUSES_SCENARIO && !err; c++)
		err = next_of(F, c, 0, units_of(F, c));
out:
	free(count);
	free(b);
	return err;
}

static void fleet_free(struct fleet *F)
{
	fp_sim_world_free(&F->w);
	free(F->events.v);
	free(F->ends.v);
	free(F->primary);
	free(F->alt);
	free(F->head);
	free(F->salt);
	free(F->flip);
	free(F->shift);
	free(F->multipath);
	free(F->unstable);
	free(F->multi);
	free(F->site_prefix_start);
	free(F->site_prefixes);
	free(F->servers);
	free(F->down);
	free(F->spiking);
	free(F->node_out);
	free(F->node_drained);
	free(F->server_busy);
}

int fp_sim_fleet_run(const struct fp_sim_params *p, struct fp_sim_result *out, FILE *progress)
{
	struct fleet F = { .p = p, .rng = p->seed };
	double gap = p->duration / (double)p->flows, next_flow, hour = 3600;
	clock_t start = clock();
	struct rusage ru;
	int err;

	memset(out, 0, sizeof(*out));
	F.w.result = out;
	err = fleet_setup(&F);
	if (err)
		goto done;
	out->n_variants = FP_SIM_VARIANTS;
	out->n_columns = F.w.n_columns;
	memcpy(out->columns, F.w.columns, sizeof(out->columns));
	next_flow = expo(&F.rng, gap);
	for (;;) {
		double te = F.events.n ? F.events.v[0].t : INFINITY;
		double tf = F.ends.n ? F.ends.v[0].t : INFINITY;
		double ta = next_flow < p->duration ? next_flow : INFINITY;
		double t = fmin(te, fmin(tf, ta));

		if (t == INFINITY || t >= p->duration)
			break;
		if (progress && t >= hour) {
			fprintf(progress, "sim: %5.1f h simulated, %llu flows, %zu live\n",
				t / 3600, out->flows, F.w.live_flows);
			hour += 3600 * (p->duration > 4 * 3600 ? 4 : 1);
		}
		if (t == tf) {
			flow_leave(&F, heap_pop(&F.ends).a);
		} else if (t == te) {
			err = handle(&F, heap_pop(&F.events));
		} else {
			err = flow_arrive(&F, t);
			next_flow = t + expo(&F.rng, gap);
		}
		if (err)
			goto done;
	}
	/* what still runs at the end counts as it stands */
	while (F.ends.n)
		flow_leave(&F, heap_pop(&F.ends).a);
done:
	out->cpu_seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
	if (!getrusage(RUSAGE_SELF, &ru))
		out->max_rss_mib = (double)ru.ru_maxrss / 1024;
	fleet_free(&F);
	return err;
}
