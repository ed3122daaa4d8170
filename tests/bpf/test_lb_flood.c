// SPDX-License-Identifier: MIT
/*
 * A flood of never-seen tuples against established sessions
 * (docs/security.md "Floods of never-seen flows (session admission)").
 *
 * In every mode with a session table (table, hash+table, full): 2000 legitimate flows
 * are established the way real clients do it (SYN, handshake ACK, a data segment),
 * spread over every CPU; then spoofed ACKs, each from a tuple never seen before, are
 * sent as fast as this machine runs BPF_PROG_TEST_RUN: first by one thread pinned to
 * one CPU, then by one pinned thread per CPU at once. The node runs with its deployed
 * defaults (new-flow rate cap 100k/s per CPU) and a session table far smaller than the
 * flood. Afterwards every established flow must still have its entry and reach the
 * backend it had before the flood, and a flow that starts after the flood must still
 * get an entry. Only API that predates the admission policy is used here, so the test
 * builds and fails on the code before it (2b22c18: 0 of 2000 entries left).
 */
#include <pthread.h>
#include <time.h>
#include "test_lb_fixture.h"

#define TABLE	      4099
#define SESSIONS      16384
#define LEGIT	      2000
#define FLOOD_PER_CPU (8 * SESSIONS) /* each CPU alone sends 8 x the table */
#define MAX_CPUS      64

static struct t_config t;
static int n_cpus;

static struct fp_lb *flood_open(enum fp_pinning mode)
{
	struct fp_lb_opts opts = {};
	struct fp_vip_cfg *v;
	struct fp_lb *lb = NULL;

	t_config_init(&t, TABLE);
	v = t_add_vip(&t, "203.0.113.10", 80, IPPROTO_TCP, mode);
	t_add_backend(v, 1, "10.1.0.1");
	t_add_backend(v, 2, "10.1.0.2");
	t_add_backend(v, 3, "10.1.0.3");
	memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
	memcpy(opts.source_v4.a + 12, t_ns.own_v4, 4);
	opts.have_source_v4 = true;
	opts.session_entries = SESSIONS;
	opts.new_flow_rate = 0; /* the deployed default: 100k new entries/s per CPU */
	assert_int_equal(fp_lb_open(&t.cfg, &opts, &lb), 0);
	return lb;
}

/* A frame of VIP 0 from @src:@sport with @flags (and @payload bytes). */
static int frame(__u8 *f, const char *src, __u16 sport, __u8 flags, size_t payload)
{
	struct fp_pkt_spec s = {};

	s.src = fp_pkt_addr(src);
	s.dst = t.vips[0].addr;
	s.proto = IPPROTO_TCP;
	s.sport = sport;
	s.dport = 80;
	s.tcp_flags = flags;
	s.payload_len = payload;
	return fp_pkt_build(&s, f, FP_PKT_MAX);
}

/* One packet; no cmocka here (runs in worker threads). Returns the verdict or -1. */
static int run_one(int prog_fd, const __u8 *in, __u32 len, __u8 *out)
{
	struct xdp_md ctx = { .data = 0, .data_end = len, .ingress_ifindex = t_ns.ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = out,
		    .data_size_out = FP_PKT_MAX, .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -1;
	return (int)o.retval;
}

/* The backend id an output frame of VIP 0 names first (0: not one of its backends). */
static __u16 first_hop(const __u8 *out)
{
	const __u8 *a = out + 14 + 20 + 8 + 4 + 8; /* IPv4 outer, UDP, GUE, private word */

	for (size_t b = 0; b < t.vips[0].n_backends; b++)
		if (!memcmp(a, t.vips[0].backends[b].addr.a + 12, 4))
			return (__u16)t.vips[0].backends[b].id;
	return 0;
}

struct worker {
	pthread_t thread;
	int cpu;
	int prog_fd;
	int legit; /* 1: establish the legitimate flows i with i % n_cpus == cpu */
	int phase; /* legit: 0 handshake + data, 1 one more data segment */
	__u32 first, count;
	__u16 *backend; /* legit: backend each flow reached, per phase */
	__u32 bad;	/* packets not forwarded, or a flow that changed backend */
	char why[160];	/* the first of them */
	double secs;
};

/* Counts a failure in a worker (no cmocka in threads); the first one is kept in words. */
__attribute__((format(printf, 2, 3))) static void bad(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	if (!w->bad++) {
		va_start(ap, fmt);
		vsnprintf(w->why, sizeof(w->why), fmt, ap);
		va_end(ap);
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void legit_addr(__u32 i, char *a, size_t n, __u16 *sport)
{
	snprintf(a, n, "198.51.100.%u", 1 + i % 250);
	*sport = (__u16)(20000 + i / 250);
}

static void *work(void *arg)
{
	struct worker *w = arg;
	static __thread __u8 f[FP_PKT_MAX], out[FP_PKT_MAX + 256];
	cpu_set_t set;
	char a[32];
	__u16 sport;
	int len;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		bad(w, "CPU %d: sched_setaffinity: %s", w->cpu, strerror(errno));
		return NULL;
	}
	double t0 = now_s();
	if (w->legit) {
		for (__u32 i = (__u32)w->cpu; i < LEGIT; i += (__u32)n_cpus) {
			static const __u8 flags[3] = { FP_TCP_SYN, FP_TCP_ACK,
						       FP_TCP_ACK | FP_TCP_PSH };
			__u16 seen = 0;

			legit_addr(i, a, sizeof(a), &sport);
			for (int p = w->phase ? 2 : 0; p < 3; p++) {
				int v = -1;

				len = frame(f, a, sport, flags[p], p == 2 ? 100 : 0);
				if (len < 0 ||
				    (v = run_one(w->prog_fd, f, (__u32)len, out)) != XDP_TX) {
					bad(w, "flow %u packet %d (phase %d): verdict %d", i, p,
					    w->phase, v);
					continue;
				}
				/* A flow keeps one backend from its SYN on. */
				if (seen && first_hop(out) != seen)
					bad(w, "flow %u packet %d (phase %d): backend %u, then %u",
					    i, p, w->phase, seen, first_hop(out));
				seen = first_hop(out);
			}
			if (w->phase && seen != w->backend[i])
				bad(w, "flow %u (phase 1): backend %u, before %u", i, seen,
				    w->backend[i]);
			w->backend[i] = seen;
		}
	} else {
		/* Spoofed ACKs from 100.0.0.0/8, a tuple never seen before every packet. */
		len = frame(f, "100.0.0.1", 1024, FP_TCP_ACK, 0);
		for (__u32 i = w->first; len > 0 && i < w->first + w->count; i++) {
			/* Source address and port in place: checksums do not matter to the LB. */
			f[14 + 13] = (__u8)i;
			f[14 + 14] = (__u8)(i >> 8);
			f[14 + 15] = (__u8)(i >> 16);
			f[14 + 20] = (__u8)(0x80 | (i >> 24));
			int v = run_one(w->prog_fd, f, (__u32)len, out);

			if (v != XDP_TX)
				bad(w, "spoofed ACK %u: verdict %d", i, v);
		}
	}
	w->secs = now_s() - t0;
	return NULL;
}

/*
 * Runs @n workers (one per CPU from CPU 0) and returns the longest one's seconds.
 * Every thread is joined before anything is checked: a failed check leaves by longjmp,
 * and a worker still running would go on writing its struct worker (and reading its
 * pointers) in a stack frame the test has left, under whatever the next test put there.
 * That is how one worker's "2 packets not forwarded" was followed by "*** stack
 * smashing detected ***".
 */
static double run_workers(struct worker *w, int n)
{
	int started = 0, err = 0;
	double secs = 0;

	for (; started < n && !err; started++)
		err = pthread_create(&w[started].thread, NULL, work, &w[started]);
	if (err)
		started--;
	for (int i = 0; i < started; i++)
		pthread_join(w[i].thread, NULL);
	assert_int_equal(err, 0);
	for (int i = 0; i < n; i++) {
		if (w[i].bad)
			fail_msg("worker on CPU %d: %u packets not forwarded or moved, first: %s",
				 w[i].cpu, w[i].bad, w[i].why);
		if (w[i].secs > secs)
			secs = w[i].secs;
	}
	return secs;
}

/* The legitimate flows (from every CPU, as RSS spreads them), phase 0 or 1. */
static void legit_flows(struct fp_lb *lb, __u16 *backend, int phase)
{
	struct worker w[MAX_CPUS] = {};

	for (int c = 0; c < n_cpus; c++) {
		w[c].cpu = c;
		w[c].prog_fd = fp_lb_prog_fd(lb);
		w[c].legit = 1;
		w[c].phase = phase;
		w[c].backend = backend;
	}
	run_workers(w, n_cpus);
}

struct count_ctx {
	__u32 legit, flood;
};

static int count_entries(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	struct count_ctx *c = ctx;

	(void)s;
	if (key->src[12] == 198)
		c->legit++;
	else if (key->src[12] == 100)
		c->flood++;
	return 0;
}

static struct count_ctx count_now(struct fp_lb *lb)
{
	struct count_ctx c = { 0 };

	assert_int_equal(fp_lb_for_each_session(lb, count_entries, &c), 0);
	return c;
}

/*
 * The flood on @cpus CPUs (1: CPU 0 alone; n_cpus: all at once) against one mode.
 */
static int flood_mode(enum fp_pinning mode, int cpus)
{
	static __u16 backend[LEGIT];
	struct worker w[MAX_CPUS] = {};
	struct fp_lb *lb = flood_open(mode);
	struct count_ctx c;
	__u64 hits;

	legit_flows(lb, backend, 0);
	/*
	 * One more data segment per flow, as every live flow sends: the workers on
	 * different CPUs establish flows at the same moment, and two flows whose
	 * probation marks share a slot can overwrite each other's mark between a
	 * handshake ACK and the next packet; that flow is then promoted by its next
	 * packet. Without this pass that race left 1998 of 2000 on a loaded machine; one
	 * pass still left 1999 once (CI, sanitizer build), so live flows keep sending until
	 * all are promoted (at most 4 segments each). The flood below is what is tested.
	 */
	for (int pass = 0; pass < 4 && (pass == 0 || count_now(lb).legit != LEGIT); pass++)
		legit_flows(lb, backend, 1);
	c = count_now(lb);
	assert_int_equal(c.legit, LEGIT);

	for (int i = 0; i < cpus; i++) {
		w[i].cpu = i;
		w[i].prog_fd = fp_lb_prog_fd(lb);
		w[i].first = (__u32)i * FLOOD_PER_CPU;
		w[i].count = FLOOD_PER_CPU;
	}
	double secs = run_workers(w, cpus);
	c = count_now(lb);
	fprintf(stderr,
		"# %s, flood on %d CPU(s): %u spoofed ACKs in %.2f s (%.0f/s), "
		"%u of %u established entries kept, %u flood entries\n",
		fp_pinning_name(mode), cpus, (unsigned)(cpus * FLOOD_PER_CPU), secs,
		cpus * FLOOD_PER_CPU / secs, c.legit, LEGIT, c.flood);
	if (c.legit != LEGIT) {
		fprintf(stderr,
			"# FAILED: %s, flood on %d CPU(s): %u of %u established entries left\n",
			fp_pinning_name(mode), cpus, c.legit, LEGIT);
		fp_lb_close(lb);
		return 1;
	}

	/* They still route by their entries, to the backend they had. */
	hits = t_counter(lb, FP_CNT_SESSION_HIT);
	legit_flows(lb, backend, 1);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT) - hits, LEGIT);

	/* A flow that starts after the flood still gets its entry. */
	__u8 f[FP_PKT_MAX];
	__u64 before = count_now(lb).legit;
	for (int p = 0; p < 3; p++) {
		static const __u8 flags[3] = { FP_TCP_SYN, FP_TCP_ACK, FP_TCP_ACK | FP_TCP_PSH };
		int len = frame(f, "198.51.100.251", 40000, flags[p], p == 2 ? 100 : 0);

		assert_int_equal(t_run(lb, f, (size_t)len, NULL, NULL), XDP_TX);
	}
	assert_int_equal(count_now(lb).legit, before + 1);
	fp_lb_close(lb);
	return 0;
}

static void test_ack_flood_one_cpu(void **state)
{
	(void)state;
	T_NEED_ROOT();
	/* Every mode runs (and reports its figure) before the test fails. */
	int failed = flood_mode(FP_PIN_TABLE, 1);
	failed += flood_mode(FP_PIN_HASH_TABLE, 1);
	failed += flood_mode(FP_PIN_FULL, 1);
	assert_int_equal(failed, 0);
}

static void test_ack_flood_all_cpus(void **state)
{
	(void)state;
	T_NEED_ROOT();
	if (n_cpus < 2)
		skip(); /* the one-CPU test covers a one-CPU machine */
	int failed = flood_mode(FP_PIN_TABLE, n_cpus);
	failed += flood_mode(FP_PIN_HASH_TABLE, n_cpus);
	failed += flood_mode(FP_PIN_FULL, n_cpus);
	assert_int_equal(failed, 0);
}

static int setup(void **state)
{
	int err = t_group_setup(state);

	n_cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (n_cpus > MAX_CPUS)
		n_cpus = MAX_CPUS;
	if (n_cpus < 1)
		n_cpus = 1;
	return err;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ack_flood_one_cpu),
		cmocka_unit_test(test_ack_flood_all_cpus),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
