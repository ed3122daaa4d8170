// SPDX-License-Identifier: MIT
/* Snapshots of the LB node's counters, VIPs and backends, and rates: see flowpin/stats.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <flowpin/stats.h>

static int collect_vip(const struct fp_vip_key *key, const struct fp_vip *vip, void *ctx)
{
	struct fp_stats_snapshot *s = ctx;

	if (s->n_vips == FP_VIP_SLOTS_MAX)
		return -E2BIG;
	s->vips[s->n_vips].key = *key;
	s->vips[s->n_vips].vip = *vip;
	s->n_vips++;
	return 0;
}

static int collect_backend(const struct fp_backend_entry *b, const struct fp_traffic *t, void *ctx)
{
	struct fp_stats_snapshot *s = ctx;

	if (s->n_backends == s->cap_backends) {
		size_t want = s->cap_backends ? 2 * s->cap_backends : 64;
		void *mem = realloc(s->backends, want * sizeof(*s->backends));

		if (!mem)
			return -ENOMEM;
		s->backends = mem;
		s->cap_backends = want;
	}
	s->backends[s->n_backends].vip_index = s->collecting_vip;
	s->backends[s->n_backends].backend = *b;
	s->backends[s->n_backends].traffic = *t;
	s->n_backends++;
	return 0;
}

static int cmp_vip_row(const void *a, const void *b)
{
	const struct fp_stats_vip *x = a, *y = b;

	return x->vip.index < y->vip.index ? -1 : x->vip.index > y->vip.index;
}

int fp_stats_take(const struct fp_lb *lb, struct fp_stats_snapshot *s)
{
	int err;

	clock_gettime(CLOCK_MONOTONIC, &s->at);
	s->n_vips = s->n_backends = 0;
	err = fp_lb_read_counters(lb, s->counters);
	if (!err)
		err = fp_lb_for_each_vip(lb, collect_vip, s);
	if (err)
		return err;
	qsort(s->vips, s->n_vips, sizeof(s->vips[0]), cmp_vip_row);
	for (size_t i = 0; i < s->n_vips && !err; i++) {
		err = fp_lb_read_traffic(lb, s->vips[i].vip.index, FP_NO_BACKEND,
					 &s->vips[i].traffic);
		s->collecting_vip = s->vips[i].vip.index;
		if (!err)
			err = fp_lb_for_each_backend(lb, s->vips[i].vip.index, collect_backend, s);
	}
	return err;
}

void fp_stats_release(struct fp_stats_snapshot *s)
{
	if (!s)
		return;
	free(s->backends);
	s->backends = NULL;
	s->n_backends = s->cap_backends = 0;
}

double fp_stats_seconds(const struct fp_stats_snapshot *now, const struct fp_stats_snapshot *prev)
{
	return prev ? (double)(now->at.tv_sec - prev->at.tv_sec) +
			       (double)(now->at.tv_nsec - prev->at.tv_nsec) / 1e9
		    : 0;
}

double fp_stats_rate(__u64 now, __u64 before, double seconds)
{
	return seconds > 0 && now >= before ? (double)(now - before) / seconds : 0;
}

const struct fp_stats_vip *fp_stats_find_vip(const struct fp_stats_snapshot *s, __u32 index)
{
	for (size_t i = 0; s && i < s->n_vips; i++)
		if (s->vips[i].vip.index == index)
			return &s->vips[i];
	return NULL;
}

const struct fp_stats_backend *fp_stats_find_backend(const struct fp_stats_snapshot *s,
						     __u32 vip_index, __u32 id)
{
	for (size_t i = 0; s && i < s->n_backends; i++)
		if (s->backends[i].vip_index == vip_index && s->backends[i].backend.id == id)
			return &s->backends[i];
	return NULL;
}

const struct fp_stats_vip *fp_stats_session_vip(const struct fp_stats_snapshot *s,
						const struct fp_flow_key *k)
{
	const struct fp_stats_vip *any_port = NULL;

	for (size_t i = 0; i < s->n_vips; i++) {
		const struct fp_vip_key *v = &s->vips[i].key;

		if (memcmp(v->addr, k->dst, 16) || v->proto != k->proto)
			continue;
		if (v->port == k->dport)
			return &s->vips[i];
		if (v->port == 0)
			any_port = &s->vips[i];
	}
	return any_port;
}

const char *fp_backend_entry_state(const struct fp_backend_entry *b)
{
	/* The config's names (FP_BACKEND_STATES), and "removed", which no config says. */
	return b->flags & FP_BACKEND_F_DOWN	  ? fp_backend_state_name(FP_BACKEND_DOWN)
	       : b->flags & FP_BACKEND_F_REMOVED  ? "removed"
	       : b->flags & FP_BACKEND_F_DRAINING ? fp_backend_state_name(FP_BACKEND_DRAINING)
						  : fp_backend_state_name(FP_BACKEND_ACTIVE);
}
