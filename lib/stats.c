// SPDX-License-Identifier: MIT
/* Snapshots of the LB node's counters, VIPs and backends, and rates: see flowpin/stats.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <flowpin/stats.h>

/* build/gen/flowpin_version.h, written by the Makefile from git (FP_VERSION, FP_COMMIT);
 * builds without it (fuzzing objects) say "unknown". */
#if __has_include("flowpin_version.h")
#include "flowpin_version.h"
#endif
#ifndef FP_VERSION
#define FP_VERSION "unknown"
#endif
#ifndef FP_COMMIT
#define FP_COMMIT "unknown"
#endif

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

void fp_stats_count_states(struct fp_stats_snapshot *s)
{
	for (size_t i = 0; i < s->n_vips; i++) {
		struct fp_stats_vip *v = &s->vips[i];

		memset(v->backends, 0, sizeof(v->backends));
		for (size_t j = 0; j < s->n_backends; j++)
			if (s->backends[j].vip_index == v->vip.index)
				v->backends[fp_backend_entry_state_of(&s->backends[j].backend)]++;
	}
}

int fp_stats_take(const struct fp_lb *lb, struct fp_stats_snapshot *s)
{
	struct timespec done;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &s->at);
	s->n_vips = s->n_backends = 0;
	err = fp_lb_read_counters(lb, s->counters);
	if (!err)
		err = fp_lb_info(lb, &s->info);
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
	fp_stats_count_states(s);
	if (!err)
		err = fp_lb_count_sessions(lb, &s->sessions);
	if (!err)
		err = fp_lb_count_probation(lb, &s->probation_live);
	clock_gettime(CLOCK_MONOTONIC, &done);
	s->took =
		(double)(done.tv_sec - s->at.tv_sec) + (double)(done.tv_nsec - s->at.tv_nsec) / 1e9;
	return err;
}

int fp_stats_process_start_time(int pid, double *out)
{
	char path[64], buf[1024], *p;
	unsigned long long start_ticks = 0, btime = 0;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;
	int field;

	*out = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: count after the last ')'.
	 * starttime is field 22, in clock ticks since boot. */
	p = strrchr(buf, ')');
	if (!p || hz <= 0)
		return -EINVAL;
	for (field = 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	if (field != 22 || sscanf(p, "%llu", &start_ticks) != 1)
		return -EINVAL;
	f = fopen("/proc/stat", "re");
	if (!f)
		return -errno;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	if (!btime)
		return -EINVAL;
	*out = (double)btime + (double)start_ticks / (double)hz;
	return 0;
}

void fp_stats_take_daemon(struct fp_stats_snapshot *s, int pid)
{
	s->daemon_pid = pid > 0 ? pid : 0;
	if (!s->daemon_pid || fp_stats_process_start_time(pid, &s->daemon_start_time))
		s->daemon_start_time = 0;
}

const char *fp_build_version(void)
{
	return FP_VERSION;
}

const char *fp_build_commit(void)
{
	return FP_COMMIT;
}

const char *fp_layout_name(__u32 magic, char buf[8])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(magic >> (24 - 8 * i));

		buf[i] = c >= 0x21 && c <= 0x7e && c != '"' && c != '\\' ? c : '?';
	}
	buf[4] = '\0';
	return buf;
}

const char *const fp_verdict_names[FP_VERDICT__MAX] = { "pass", "drop", "tx", "redirect" };

const char *fp_counter_verdict(int counter)
{
	const char *name;

	if (counter < 0 || counter >= FP_CNT__MAX)
		return NULL;
	/* bpf/lb.bpf.c returns every packet through VERDICT(action, counter): the pass_*
	 * and drop_* counters, tx and redirect (encapsulated), icmp_too_big (the reply
	 * goes back out with XDP_TX). tests/bpf/test_lb_cli.c checks that these add up
	 * to the packets sent. */
	switch (counter) {
	case FP_CNT_TX:
	case FP_CNT_ICMP_TOO_BIG:
		return fp_verdict_names[FP_VERDICT_TX];
	case FP_CNT_REDIRECT:
		return fp_verdict_names[FP_VERDICT_REDIRECT];
	case FP_CNT_POP_DROP_SOURCE: /* names fixed for the lab's bounds: not drop_* */
	case FP_CNT_POP_DROP_LOOP:
	case FP_CNT_POP_DROP_INVALID:
		return fp_verdict_names[FP_VERDICT_DROP];
	}
	name = fp_counter_names[counter];
	if (!strncmp(name, "pass_", 5))
		return fp_verdict_names[FP_VERDICT_PASS];
	if (!strncmp(name, "drop_", 5))
		return fp_verdict_names[FP_VERDICT_DROP];
	return NULL;
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

enum fp_entry_state fp_backend_entry_state_of(const struct fp_backend_entry *b)
{
	return b->flags & FP_BACKEND_F_DOWN	  ? FP_ENTRY_DOWN
	       : b->flags & FP_BACKEND_F_REMOVED  ? FP_ENTRY_REMOVED
	       : b->flags & FP_BACKEND_F_DRAINING ? FP_ENTRY_DRAINING
						  : FP_ENTRY_ACTIVE;
}

const char *fp_entry_state_name(enum fp_entry_state state)
{
	/* The config's names (FP_BACKEND_STATES), and "removed", which no config says. */
	switch (state) {
	case FP_ENTRY_ACTIVE:
		return fp_backend_state_name(FP_BACKEND_ACTIVE);
	case FP_ENTRY_DRAINING:
		return fp_backend_state_name(FP_BACKEND_DRAINING);
	case FP_ENTRY_DOWN:
		return fp_backend_state_name(FP_BACKEND_DOWN);
	default:
		return "removed";
	}
}

const char *fp_backend_entry_state(const struct fp_backend_entry *b)
{
	return fp_entry_state_name(fp_backend_entry_state_of(b));
}

void fp_stats_verdicts(const struct fp_stats_snapshot *s, unsigned long long out[FP_VERDICT__MAX])
{
	memset(out, 0, FP_VERDICT__MAX * sizeof(out[0]));
	for (int i = 0; i < FP_CNT__MAX; i++)
		for (int v = 0; v < FP_VERDICT__MAX; v++)
			if (fp_counter_verdict(i) &&
			    !strcmp(fp_counter_verdict(i), fp_verdict_names[v]))
				out[v] += s->counters[i];
}

const char *fp_session_state_name(__u8 state)
{
	static const char *const names[] = {
		[FP_SESS_UDP] = "udp",
		[FP_SESS_TCP_SYN] = "syn",
		[FP_SESS_TCP_EST] = "established",
		[FP_SESS_TCP_CLOSING] = "closing",
	};

	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

struct flow_walk {
	const struct fp_stats_snapshot *s;
	const struct fp_flow_filter *f;
	fp_stats_flow_cb cb;
	void *arg;
	__u64 now_ns;
};

static int walk_flow(const struct fp_flow_key *k, const struct fp_session *session, void *ctx)
{
	struct flow_walk *w = ctx;
	const struct fp_flow_filter *f = w->f;
	const struct fp_stats_vip *vip;
	struct fp_stats_flow flow = { .key = k, .session = session };

	if (f->by_vip && memcmp(k->dst, f->vip.a, 16))
		return 0;
	if (f->vip_port >= 0 && ntohs(k->dport) != f->vip_port)
		return 0;
	if (f->backend >= 0 && session->backend != f->backend)
		return 0;
	vip = fp_stats_session_vip(w->s, k);
	if (vip)
		flow.backend = fp_stats_find_backend(w->s, vip->vip.index, session->backend);
	flow.idle_s = w->now_ns > session->last_seen_ns
			      ? (w->now_ns - session->last_seen_ns) / 1000000000ULL
			      : 0;
	return w->cb(&flow, w->arg);
}

int fp_stats_for_each_flow(const struct fp_lb *lb, const struct fp_stats_snapshot *s,
			   const struct fp_flow_filter *f, fp_stats_flow_cb cb, void *arg)
{
	struct flow_walk w = { s, f, cb, arg, 0 };
	struct timespec ts;

	/* Sessions stamp bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	w.now_ns = (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
	return fp_lb_for_each_session(lb, walk_flow, &w);
}

int fp_flow_filter_vip(struct fp_flow_filter *f, const char *endpoint)
{
	if (fp_endpoint_parse(endpoint, &f->vip, &f->vip_port))
		return -EINVAL;
	f->by_vip = true;
	return 0;
}
