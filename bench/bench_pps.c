// SPDX-License-Identifier: MIT
/*
 * Throughput of the LB's XDP program with real frames, one LB core, against a floor.
 *
 * Method (docs/design.md "Measuring speed"): in a private network namespace
 * (flowpin/fibns.h: the veth pair fp-test0 <-> fp-test1, bpf_fib_lookup() resolving every
 * backend to a next hop out of fp-test0), the program under test runs in native XDP on
 * fp-test0 and the sink (bpf/pps.bpf.c fp_pps_sink) on fp-test1. The generator is
 * BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (what xdp-trafficgen does) of
 * bpf/pps.bpf.c fp_pps_gen on fp-test1, from this process pinned to the first CPU: each
 * frame it returns with XDP_TX leaves fp-test1 and reaches fp-test0's receive ring.
 * fp-test0's NAPI runs threaded (/sys/class/net/fp-test0/threaded), its thread pinned to
 * the second CPU: that core runs the LB and nothing else of the harness. What the LB
 * sends back (XDP_TX) reaches the sink, which counts it and drops it.
 *
 * Programs in fp-test0's place, measured in turn, round after round: the floor (XDP_TX
 * and nothing else), the encapsulating floor of bench_xdp (bpf/floor.bpf.c: parse,
 * encapsulate to one backend, XDP_TX), and flowpin (loaded by lib/lb.c with 10 IPv4
 * backends) on a `full` VIP and on a `hash+table` VIP, each with few and with many
 * established flows. Frames: 60 bytes (64 with the FCS), IPv4/UDP (bpf/pps.h), flows
 * in turn. Every flow is established before any is measured (two packets each through
 * BPF_PROG_TEST_RUN: probation, then promotion; the session table sized for all of
 * them, no new-flow rate limit), so the windows measure the session hit path; the
 * counters say how many packets hit.
 *
 * Figures: packets per second counted by the sink in a window (median over the
 * rounds), their ratio to the floor's in the same round (median of the ratios), the
 * LB thread's CPU time per packet (its /proc schedstat run time over the window,
 * divided by the packets: the program plus the veth's receive and transmit work), and
 * how busy that thread was (run time / window): at 100% the LB core is the limit, below
 * it the generator is.
 *
 *   bench_pps            3 rounds of 10 s windows, 1,000 and 1,000,000 flows
 *   bench_pps --smoke    1 round of 2 s windows, 1,000 and 100,000 flows
 *   bench_pps --check    no timing: sends 1,024 frames in batches through the floor
 *                        and through flowpin and checks that the sink got each, as it
 *                        should (the test suite's smoke check, tests/bpf/test_bench_pps.c);
 *                        exit 77 when it cannot run here, with the reason
 * FP_PPS_ROUNDS, FP_PPS_SECONDS, FP_PPS_FLOWS (the large flow count) override.
 * The generator and the LB core's NAPI thread run at nice -20, and that NAPI polls
 * again after 20 us before it sleeps (place_threads() says why; FP_PPS_DEFER).
 * FP_PPS_SINK=cpu0 runs the sink's NAPI threaded on the first CPU (with the generator)
 * instead of in the softirq the LB thread's transmit raises on the second.
 *
 * Prints one markdown section on stdout; bench/run collects it into bench/results.md.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <flowpin/config.h>
#include <flowpin/fibns.h>
#include <flowpin/lb.h>
#include "../bpf/pps.h"
#include "floor.skel.h"
#include "pps.skel.h"

#define SKIP	77
#define LB_DEV	"fp-test0"
#define GEN_DEV "fp-test1"
#define CHUNK	(1U << 18) /* frames per live test run in a window */
/*
 * The check's runs: each test run has a page pool of its own (a live-frames batch, 64,
 * of pages), so a run of 256 frames uses every page four times, and puts at most 256
 * frames in flight: no more than the veth's receive ring holds, so none can be dropped.
 */
#define CHECK_BATCHES 4
#define CHECK_BATCH   256
#define SMALL_FLOWS   1000

/* 10 IPv4 backends; the published example key (allow_example_key: a benchmark). */
static const char config_yaml[] = "hash_key: 000102030405060708090a0b0c0d0e0f\n"
				  "table_size: 65537\n"
				  "encap_port: 6080\n"
				  "sessions: { entries: %u, new_flow_rate: 0 }\n"
				  "vips:\n"
				  "  - name: full\n"
				  "    address: 198.51.100.10\n"
				  "    port: 443\n"
				  "    protocol: udp\n"
				  "    pinning: full\n"
				  "    backends: &b\n"
				  "      - { id: 1, address: 10.20.0.1 }\n"
				  "      - { id: 2, address: 10.20.0.2 }\n"
				  "      - { id: 3, address: 10.20.0.3 }\n"
				  "      - { id: 4, address: 10.20.0.4 }\n"
				  "      - { id: 5, address: 10.20.0.5 }\n"
				  "      - { id: 6, address: 10.20.0.6 }\n"
				  "      - { id: 7, address: 10.20.0.7 }\n"
				  "      - { id: 8, address: 10.20.0.8 }\n"
				  "      - { id: 9, address: 10.20.0.9 }\n"
				  "      - { id: 10, address: 10.20.0.10 }\n"
				  "  - name: hashtable\n"
				  "    address: 198.51.100.11\n"
				  "    port: 443\n"
				  "    protocol: udp\n"
				  "    pinning: hash+table\n"
				  "    backends: *b\n"
				  "allow_example_key: true\n";
#define VIP_FULL    0xc633640aU /* 198.51.100.10 */
#define VIP_HT	    0xc633640bU /* 198.51.100.11 */
#define BACKEND_NET 0x0a140000U /* 10.20.0.0/24 */

enum prog_kind { K_TX, K_FLOOR, K_LB };

struct variant {
	const char *name;
	enum prog_kind kind;
	__u32 vip; /* host order */
	int many;  /* the large flow count, else SMALL_FLOWS */
};

static const struct variant variants[] = {
	{ "floor (XDP_TX)", K_TX, VIP_FULL, 0 },
	{ "encapsulating floor (bpf/floor.bpf.c)", K_FLOOR, VIP_FULL, 0 },
	{ "flowpin `full`", K_LB, VIP_FULL, 0 },
	{ "flowpin `hash+table`", K_LB, VIP_HT, 0 },
	{ "flowpin `full`", K_LB, VIP_FULL, 1 },
	{ "flowpin `hash+table`", K_LB, VIP_HT, 1 },
};
#define N_VARIANTS (int)(sizeof(variants) / sizeof(variants[0]))
#define MAX_ROUNDS 15

struct sample {
	double pps, offered, ns_per_pkt, busy, hit, cache, other;
};

struct harness {
	struct pps *pps;
	struct floor *floor;
	struct fp_lb *lb;
	struct fp_fibns ns;
	int gen_ifindex;
	int lb_thread, sink_thread; /* pids, 0: none */
	__u8 frame[FP_PPS_FRAME_LEN];
	__u32 big_flows;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static unsigned env_uint(const char *name, unsigned def)
{
	const char *s = getenv(name);

	return s && *s ? (unsigned)strtoul(s, NULL, 0) : def;
}

/* Run time of thread @pid in ns (/proc/PID/schedstat), 0 if unreadable. */
static __u64 thread_ns(int pid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

/* Pids of the kernel threads whose name starts with "napi/@dev-", up to @max. */
static int napi_threads(const char *dev, int *pids, int max)
{
	char prefix[32], path[300], comm[64];
	struct dirent *e;
	DIR *d = opendir("/proc");
	int n = 0;

	snprintf(prefix, sizeof(prefix), "napi/%s-", dev);
	while (d && (e = readdir(d)) && n < max) {
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, prefix, strlen(prefix)))
			pids[n++] = atoi(e->d_name);
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static int write_file(const char *path, const char *value)
{
	FILE *f = fopen(path, "w");
	int err = 0;

	if (!f)
		return -errno;
	if (fputs(value, f) < 0)
		err = -EIO;
	if (fclose(f))
		err = -errno;
	return err;
}

static int pin_cpu(int pid, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(pid, sizeof(set), &set) ? -errno : 0;
}

/*
 * Makes @dev's NAPI threaded and returns its thread's pid in *@pid: the new "napi/DEV-"
 * thread (names are not unique across namespaces, so the one that was not there before).
 */
static int thread_napi(const char *dev, int *pid)
{
	int before[64], after[64], nb, na, found = 0;
	char path[128];
	int err;

	nb = napi_threads(dev, before, 64);
	snprintf(path, sizeof(path), "/sys/class/net/%s/threaded", dev);
	err = write_file(path, "1");
	if (err) {
		fprintf(stderr, "bench_pps: %s: %s\n", path, strerror(-err));
		return err;
	}
	na = napi_threads(dev, after, 64);
	for (int i = 0; i < na; i++) {
		int old = 0;

		for (int j = 0; j < nb; j++)
			old |= after[i] == before[j];
		if (!old) {
			*pid = after[i];
			found++;
		}
	}
	if (found != 1) {
		fprintf(stderr, "bench_pps: %d new NAPI threads of %s, expected 1\n", found, dev);
		return -ESRCH;
	}
	return 0;
}

/* The frame of flow @f to @vip (host order), as fp_pps_gen writes it. */
static void build_frame(const struct harness *h, __u32 vip, __u32 f, __u8 *out)
{
	__u32 saddr;
	__u16 sport;
	__be32 a;
	__be16 p;

	memcpy(out, h->frame, FP_PPS_FRAME_LEN);
	fp_pps_flow(f, &saddr, &sport);
	a = htonl(saddr);
	memcpy(out + FP_PPS_L3_OFF + 12, &a, 4);
	a = htonl(vip);
	memcpy(out + FP_PPS_L3_OFF + 16, &a, 4);
	p = htons(sport);
	memcpy(out + FP_PPS_L4_OFF, &p, 2);
	p = fp_pps_ip_csum(out + FP_PPS_L3_OFF);
	memcpy(out + FP_PPS_L3_OFF + 10, &p, 2);
}

/* The generated frame template: to fp-test0's MAC, from a made-up one, 60 bytes. */
static void build_template(struct harness *h)
{
	static const __u8 src_mac[6] = { 0x02, 0x66, 0x70, 0x00, 0x00, 0x02 };
	__u8 *f = h->frame;

	memset(f, 0, sizeof(h->frame));
	memcpy(f, h->ns.own_mac, 6);
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	f[14] = 0x45; /* IPv4, IHL 5 */
	f[16] = 0;    /* total length 46 */
	f[17] = FP_PPS_FRAME_LEN - FP_PPS_L3_OFF;
	f[20] = 0x40; /* DF */
	f[22] = 64;   /* TTL */
	f[23] = 17;   /* UDP */
	f[FP_PPS_L4_OFF + 2] = FP_PPS_DPORT >> 8;
	f[FP_PPS_L4_OFF + 3] = FP_PPS_DPORT & 0xff;
	f[FP_PPS_L4_OFF + 5] = FP_PPS_FRAME_LEN - FP_PPS_L4_OFF; /* UDP length; csum 0 */
}

/* Two packets of each of flows 0..@n-1 to @vip through flowpin: probation, promotion. */
static int establish(struct harness *h, __u32 vip, __u32 n)
{
	int fd = fp_lb_prog_fd(h->lb);
	__u8 frame[FP_PPS_FRAME_LEN], out[FP_PPS_FRAME_LEN + 256];

	for (__u32 f = 0; f < n; f++) {
		build_frame(h, vip, f, frame);
		for (int k = 0; k < 2; k++) {
			struct xdp_md ctx = { .data_end = FP_PPS_FRAME_LEN,
					      .ingress_ifindex = (__u32)h->ns.ifindex };
			LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame,
				    .data_size_in = FP_PPS_FRAME_LEN, .data_out = out,
				    .data_size_out = sizeof(out), .ctx_in = &ctx,
				    .ctx_size_in = sizeof(ctx), .repeat = 1);

			if (bpf_prog_test_run_opts(fd, &run))
				return -errno;
			if (run.retval != XDP_TX) {
				fprintf(stderr, "bench_pps: flow %u: verdict %u, not XDP_TX\n", f,
					run.retval);
				return -EPROTO;
			}
		}
	}
	return 0;
}

/* Puts @kind's program in fp-test0's native XDP (replacing what runs there). */
static int attach(struct harness *h, enum prog_kind kind)
{
	int fd = kind == K_TX	   ? bpf_program__fd(h->pps->progs.fp_pps_tx)
		 : kind == K_FLOOR ? bpf_program__fd(h->floor->progs.fp_floor)
				   : fp_lb_prog_fd(h->lb);
	int err = bpf_xdp_attach(h->ns.ifindex, fd, XDP_FLAGS_DRV_MODE, NULL);

	if (err)
		fprintf(stderr, "bench_pps: attaching to %s: %s\n", LB_DEV, strerror(-err));
	return err;
}

/* @repeat live frames from the generator (flows and VIP as set in its state). */
static int generate(struct harness *h, __u32 repeat)
{
	struct xdp_md ctx = { .data_end = FP_PPS_FRAME_LEN,
			      .ingress_ifindex = (__u32)h->gen_ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = h->frame, .data_size_in = FP_PPS_FRAME_LEN,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = repeat,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);

	if (bpf_prog_test_run_opts(bpf_program__fd(h->pps->progs.fp_pps_gen), &run))
		return -errno;
	return 0;
}

static void set_flows(struct harness *h, const struct variant *v)
{
	h->pps->bss->gen.vip = htonl(v->vip);
	h->pps->bss->gen.flows = v->many ? h->big_flows : SMALL_FLOWS;
	h->pps->bss->gen.next = 0;
}

/* One window of @secs seconds of @v (already attached). */
static int window(struct harness *h, const struct variant *v, double secs, struct sample *s)
{
	volatile struct sink_state *sink = &h->pps->bss->sink;
	__u64 c0[FP_CNT__MAX], c1[FP_CNT__MAX];
	__u64 f0, o0, g0, cpu0, f1, o1, g1, cpu1;
	double t0, t1;
	int err;

	set_flows(h, v);
	/* Warm up: pages allocated, caches and the flow cache as they will be. */
	err = generate(h, CHUNK / 4);
	if (err)
		return err;
	if (fp_lb_read_counters(h->lb, c0))
		return -EIO;
	f0 = sink->frames;
	o0 = sink->other;
	g0 = h->pps->bss->gen.sent;
	cpu0 = thread_ns(h->lb_thread);
	t0 = now();
	do {
		err = generate(h, CHUNK);
		if (err)
			return err;
		t1 = now();
	} while (t1 - t0 < secs);
	f1 = sink->frames;
	o1 = sink->other;
	g1 = h->pps->bss->gen.sent;
	cpu1 = thread_ns(h->lb_thread);
	if (fp_lb_read_counters(h->lb, c1))
		return -EIO;
	s->pps = (double)(f1 - f0) / (t1 - t0);
	s->offered = (double)(g1 - g0) / (t1 - t0);
	s->ns_per_pkt = f1 > f0 ? (double)(cpu1 - cpu0) / (double)(f1 - f0) : 0;
	s->busy = (double)(cpu1 - cpu0) / 1e9 / (t1 - t0);
	s->other = (double)(o1 - o0);
	s->hit = s->cache = -1;
	if (v->kind == K_LB) {
		double tx = (double)(c1[FP_CNT_TX] - c0[FP_CNT_TX]);

		s->hit = tx ? (double)(c1[FP_CNT_SESSION_HIT] - c0[FP_CNT_SESSION_HIT]) / tx : 0;
		s->cache = tx ? (double)(c1[FP_CNT_FLOW_CACHE_HIT] - c0[FP_CNT_FLOW_CACHE_HIT]) / tx
			      : 0;
	}
	return 0;
}

/*
 * The test suite's check: CHECK_BATCHES runs of CHECK_BATCH frames through @v, each run
 * waited for at the sink, then every frame counted as it should be: all received, all of the expected kind, and for flowpin all
 * sent by XDP_TX and all session hits.
 */
static int check(struct harness *h, const struct variant *v)
{
	volatile struct sink_state *sink = &h->pps->bss->sink;
	__u64 c0[FP_CNT__MAX], c1[FP_CNT__MAX];
	__u64 f0 = sink->frames, e0 = sink->encap, p0 = sink->plain, o0 = sink->other;
	__u64 g0 = h->pps->bss->gen.sent, sent = 0, got = 0, want, hits;
	int err;

	err = attach(h, v->kind);
	if (err)
		return err;
	set_flows(h, v);
	if (fp_lb_read_counters(h->lb, c0))
		return -EIO;
	for (int b = 0; b < CHECK_BATCHES; b++) {
		double t0 = now();

		err = generate(h, CHECK_BATCH);
		if (err) {
			fprintf(stderr, "bench_pps: live frames: %s\n", strerror(-err));
			return err;
		}
		sent += CHECK_BATCH;
		/* Liveness only: the frames are in flight for microseconds. */
		while ((got = sink->frames - f0) < sent && now() - t0 < 5)
			usleep(1000);
		if (got < sent)
			break;
	}
	if (fp_lb_read_counters(h->lb, c1))
		return -EIO;
	want = v->kind == K_TX ? sink->plain - p0 : sink->encap - e0;
	hits = c1[FP_CNT_SESSION_HIT] - c0[FP_CNT_SESSION_HIT];
	printf("%s: generated %llu, sink received %llu, of the expected kind %llu, other %llu",
	       v->name, (unsigned long long)(h->pps->bss->gen.sent - g0), (unsigned long long)got,
	       (unsigned long long)want, (unsigned long long)(sink->other - o0));
	if (v->kind == K_LB)
		printf(", flowpin tx %llu, session hits %llu",
		       (unsigned long long)(c1[FP_CNT_TX] - c0[FP_CNT_TX]),
		       (unsigned long long)hits);
	printf("\n");
	if (h->pps->bss->gen.sent - g0 != sent || got != sent || want != sent || sink->other != o0)
		return -EPROTO;
	if (v->kind == K_LB && (c1[FP_CNT_TX] - c0[FP_CNT_TX] != sent || hits != sent))
		return -EPROTO;
	return 0;
}

static void print_machine(void)
{
	char model[256] = "unknown CPU", line[512];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && colon) {
			snprintf(model, sizeof(model), "%s", colon + 2);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	uname(&u);
	printf("Machine: %s, %ld CPUs online, Linux %s %s.\n", model, sysconf(_SC_NPROCESSORS_ONLN),
	       u.release, u.machine);
}

static void print_flows(__u32 n)
{
	if (n >= 1000000 && n % 1000000 == 0)
		printf("%uM", n / 1000000);
	else if (n >= 1000 && n % 1000 == 0)
		printf("%uk", n / 1000);
	else
		printf("%u", n);
}

/* A section saying why nothing was measured (bench/run keeps stdout). */
static int not_measured(int mode_check, const char *why)
{
	if (mode_check) {
		printf("cannot run: %s\n", why);
		return SKIP;
	}
	fprintf(stderr, "bench_pps: %s\n", why);
	printf("## Real-frame throughput (bench/bench_pps.c)\n\nNot measured: %s.\n\n", why);
	return 1;
}

static int setup(struct harness *h, int mode_check, int smoke)
{
	char cfg_path[] = "/tmp/flowpin-bench-pps-XXXXXX", yaml[sizeof(config_yaml) + 32];
	struct fp_config *cfg = NULL;
	struct fp_lb_opts opts = { .have_source_v4 = true };
	int fd, err;

	/* Two VIPs, each with every flow established: a table 4x their number (the
	 * set-associative table starts replacing entries of full bucket pairs from about
	 * half full, flowpin/maps.h). */
	h->big_flows =
		mode_check ? SMALL_FLOWS : env_uint("FP_PPS_FLOWS", smoke ? 100000 : 1000000);
	if (h->big_flows < SMALL_FLOWS || h->big_flows > (1U << 24))
		h->big_flows = SMALL_FLOWS;
	snprintf(yaml, sizeof(yaml), config_yaml, 8 * h->big_flows);
	fd = mkstemp(cfg_path);
	if (fd < 0 || write(fd, yaml, strlen(yaml)) < 0) {
		perror("bench_pps: config");
		return -EIO;
	}
	close(fd);
	err = fp_config_load(cfg_path, &cfg, stderr);
	unlink(cfg_path);
	if (err)
		return err;
	err = fp_fibns_enter(NULL, &h->ns);
	if (err)
		goto out;
	/* sysfs of this namespace (its /sys/class/net), in a mount namespace of our own. */
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("sysfs", "/sys", "sysfs", 0, NULL)) {
		err = -errno;
		fprintf(stderr, "bench_pps: sysfs of the namespace: %s\n", strerror(errno));
		goto out;
	}
	h->gen_ifindex = (int)if_nametoindex(GEN_DEV);
	build_template(h);

	h->pps = pps__open();
	if (!h->pps) {
		err = -errno;
		goto out;
	}
	memcpy((void *)h->pps->rodata->orig_eth, h->frame, 14);
	h->pps->rodata->backend_net = BACKEND_NET;
	h->pps->rodata->vip_lo = VIP_FULL;
	h->pps->rodata->vip_hi = VIP_HT;
	h->pps->rodata->encap_port = cfg->encap_port;
	err = pps__load(h->pps);
	if (err)
		goto out;

	h->floor = floor__open();
	if (!h->floor) {
		err = -errno;
		goto out;
	}
	{
		__be32 b4 = htonl(BACKEND_NET + 1);

		memcpy((void *)&h->floor->rodata->backend_v4, &b4, 4);
		memcpy((void *)&h->floor->rodata->source_v4, h->ns.own_v4, 4);
		memcpy((void *)h->floor->rodata->own_mac, h->ns.own_mac, 6);
		memcpy((void *)h->floor->rodata->next_hop_mac, h->ns.next_hop_mac, 6);
		h->floor->rodata->encap_port = cfg->encap_port;
	}
	err = floor__load(h->floor);
	if (err)
		goto out;

	fp_lb_opts_sessions(&opts, &cfg->sessions);
	fp_addr_from_v4(opts.source_v4.a, *(const __be32 *)h->ns.own_v4);
	err = fp_lb_open(cfg, &opts, &h->lb);
	if (err)
		goto out;

	err = bpf_xdp_attach(h->gen_ifindex, bpf_program__fd(h->pps->progs.fp_pps_sink),
			     XDP_FLAGS_DRV_MODE, NULL);
	if (err) {
		fprintf(stderr, "bench_pps: native XDP on %s: %s\n", GEN_DEV, strerror(-err));
		goto out;
	}
	err = attach(h, K_TX);
	if (err)
		goto out;
out:
	fp_config_free(cfg);
	return err;
}

static char defer_timeout[32] = "20000", defer_count[32] = "100";

/* Native XDP of veth, threaded NAPI on the second CPU, generator on the first. */
static int place_threads(struct harness *h)
{
	const char *sink_mode = getenv("FP_PPS_SINK");
	int err;

	err = pin_cpu(0, 0);
	/*
	 * The LB core's NAPI polls again after 20 us (up to 100 empty polls) instead of
	 * sleeping until the generator's next batch wakes it: on the 2-CPU VM of
	 * bench/results.md each cross-CPU wake-up cost so much that the thread sat idle
	 * half the time while its receive ring overflowed (floor 0.6-1.4 Mpps at 30-45%
	 * busy; with this, 2.3 Mpps). FP_PPS_DEFER="TIMEOUT_NS COUNT" changes it ("0 0":
	 * off).
	 */
	if (!err) {
		const char *d = getenv("FP_PPS_DEFER");

		if (d && sscanf(d, "%31s %31s", defer_timeout, defer_count) != 2)
			return -EINVAL;
		err = write_file("/sys/class/net/" LB_DEV "/gro_flush_timeout", defer_timeout);
		if (!err)
			err = write_file("/sys/class/net/" LB_DEV "/napi_defer_hard_irqs",
					 defer_count);
		if (err)
			fprintf(stderr, "bench_pps: NAPI deferral of %s: %s\n", LB_DEV,
				strerror(-err));
	}
	if (!err)
		err = thread_napi(LB_DEV, &h->lb_thread);
	if (!err)
		err = pin_cpu(h->lb_thread, 1);
	if (!err && sink_mode && !strcmp(sink_mode, "cpu0")) {
		err = thread_napi(GEN_DEV, &h->sink_thread);
		if (!err)
			err = pin_cpu(h->sink_thread, 0);
	}
	/*
	 * Nice -20 for the generator and the LB core's thread: on a machine shared with
	 * other work, a thread at nice 0 got a third of its core, the receive ring
	 * overflowed while it waited, and its time per packet measured its wake-ups (a
	 * thread that empties the ring and sleeps pays one per few packets) more than the
	 * program. Others still run, slowly, for the windows' length.
	 */
	if (!err && (setpriority(PRIO_PROCESS, 0, -20) ||
		     setpriority(PRIO_PROCESS, (id_t)h->lb_thread, -20) ||
		     (h->sink_thread && setpriority(PRIO_PROCESS, (id_t)h->sink_thread, -20))))
		err = -errno;
	return err;
}

int main(int argc, char **argv)
{
	int mode_check = argc > 1 && !strcmp(argv[1], "--check");
	int smoke = argc > 1 && !strcmp(argv[1], "--smoke");
	unsigned rounds = env_uint("FP_PPS_ROUNDS", smoke ? 1 : 3);
	double secs = env_uint("FP_PPS_SECONDS", smoke ? 2 : 10);
	static struct sample samples[N_VARIANTS][MAX_ROUNDS];
	struct harness h = {};
	double t_establish;
	int err, rc = 1;

	if (argc > 1 && !mode_check && !smoke) {
		fprintf(stderr, "usage: bench_pps [--smoke | --check]\n");
		return 2;
	}
	if (rounds < 1 || rounds > MAX_ROUNDS)
		rounds = 3;
	if (geteuid() != 0)
		return not_measured(mode_check, "needs root (network namespace, native XDP)");
	if (!mode_check && sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return not_measured(mode_check, "needs two CPUs (generator, LB core)");

	err = setup(&h, mode_check, smoke);
	if (err) {
		rc = not_measured(mode_check, "the harness could not be set up (stderr says why)");
		goto out;
	}
	if (!mode_check && place_threads(&h)) {
		rc = not_measured(mode_check, "threaded NAPI or CPU pinning failed (stderr)");
		goto out;
	}

	t_establish = now();
	err = establish(&h, VIP_FULL, h.big_flows);
	if (!err)
		err = establish(&h, VIP_HT, h.big_flows);
	if (err) {
		fprintf(stderr, "bench_pps: establishing flows: %s\n", strerror(-err));
		goto out;
	}
	t_establish = now() - t_establish;

	if (mode_check) {
		/* Whether live frames work here at all: a kernel without them says EINVAL. */
		err = generate(&h, 1);
		if (err == -EINVAL || err == -EOPNOTSUPP) {
			rc = not_measured(1, "BPF_F_TEST_XDP_LIVE_FRAMES refused by this kernel");
			goto out;
		}
		usleep(100000);
		rc = 0;
		if (check(&h, &variants[0]) || check(&h, &variants[2]) || check(&h, &variants[3]))
			rc = 1;
		printf(rc ? "FAILED\n" : "ok\n");
		goto out;
	}

	for (unsigned r = 0; r < rounds; r++) {
		for (int v = 0; v < N_VARIANTS; v++) {
			err = attach(&h, variants[v].kind);
			if (!err)
				err = window(&h, &variants[v], secs, &samples[v][r]);
			if (err) {
				fprintf(stderr, "bench_pps: %s: %s\n", variants[v].name,
					strerror(-err));
				goto out;
			}
			fprintf(stderr,
				"bench_pps: round %u %-40s %.2f Mpps, %.0f ns/pkt, busy %.0f%%\n",
				r + 1, variants[v].name, samples[v][r].pps / 1e6,
				samples[v][r].ns_per_pkt, 100 * samples[v][r].busy);
		}
	}

	printf("## Real-frame throughput (bench/bench_pps.c)\n\n");
	print_machine();
	printf("\nMethod: native XDP on a veth pair in a private network namespace. Generator: "
	       "BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (bpf/pps.bpf.c) on the first "
	       "CPU, 60-byte IPv4/UDP frames (64 with the FCS), flows in turn; the program "
	       "under test on the receiving veth, whose NAPI runs threaded, pinned to the "
	       "second CPU (the LB core); a sink program on the peer counts what comes back "
	       "(XDP_TX) and restores each frame's Ethernet header for the generator's next "
	       "use of the page (the sink's NAPI: %s). Every flow is established before the "
	       "windows (table of %u entries, no new-flow rate limit). %u round%s of %.0f s "
	       "windows, the programs in turn in each round; figures are medians over the "
	       "rounds, ratios are taken in each round and their median shown. LB ns/packet: "
	       "the LB core's NAPI thread run time over the packets the sink received (the "
	       "program plus veth receive and transmit); busy: that run time over the window "
	       "(below 100%% the generator, other work on the LB core, or wake-ups set the rate; "
	       "the LB core's NAPI polls again after %s ns, up to %s times, before it sleeps); one "
	       "core's Mpps: 1 / (LB ns/packet), what the LB core would carry if it ran "
	       "nothing else (ratios to the floor's, round by round). Establishing the "
	       "flows (2 x %u, two packets each) took %.1f s.\n\n",
	       h.sink_thread ? "threaded, on the first CPU with the generator"
			     : "the softirq raised by the LB core's transmit, on the LB core",
	       8 * h.big_flows, rounds, rounds > 1 ? "s" : "", secs, defer_timeout, defer_count,
	       h.big_flows, t_establish);
	printf("| program | flows | received Mpps | offered Mpps | / floor | / encapsulating "
	       "floor | LB ns/packet | LB core busy | one core's Mpps (1 / ns) | / floor | "
	       "session hits (flow cache) | target (received / floor) |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
	for (int v = 0; v < N_VARIANTS; v++) {
		double pps[MAX_ROUNDS], off[MAX_ROUNDS], r0[MAX_ROUNDS], r1[MAX_ROUNDS],
			rc[MAX_ROUNDS], ns[MAX_ROUNDS], busy[MAX_ROUNDS], hit[MAX_ROUNDS],
			cache[MAX_ROUNDS], other = 0;
		const struct variant *va = &variants[v];
		char target[48] = "-", hits[48] = "-";

		for (unsigned r = 0; r < rounds; r++) {
			struct sample *s = &samples[v][r];

			pps[r] = s->pps;
			off[r] = s->offered;
			r0[r] = s->pps / samples[0][r].pps;
			r1[r] = s->pps / samples[1][r].pps;
			ns[r] = s->ns_per_pkt;
			rc[r] = samples[0][r].ns_per_pkt / s->ns_per_pkt;
			busy[r] = s->busy;
			hit[r] = s->hit;
			cache[r] = s->cache;
			other += s->other;
		}
		double ratio = median(r0, (int)rounds);

		if (va->kind == K_LB) {
			double want = va->many ? 0.6 : 0.9;

			snprintf(target, sizeof(target), ">= %.1fx floor: %s", want,
				 ratio >= want ? "met" : "missed");
			snprintf(hits, sizeof(hits), "%.1f%% (%.1f%%)",
				 100 * median(hit, (int)rounds), 100 * median(cache, (int)rounds));
		}
		printf("| %s | ", va->name);
		print_flows(va->many ? h.big_flows : SMALL_FLOWS);
		double ns_med = median(ns, (int)rounds);

		printf(" | %.2f | %.2f | %.2fx | %.2fx | %.0f | %.0f%% | %.2f | %.2fx | %s | %s "
		       "|\n",
		       median(pps, (int)rounds) / 1e6, median(off, (int)rounds) / 1e6, ratio,
		       median(r1, (int)rounds), ns_med, 100 * median(busy, (int)rounds),
		       1e3 / ns_med, median(rc, (int)rounds), hits, target);
		if (other)
			printf("\n**%s: the sink got %.0f frames that were neither the generated "
			       "frame nor its encapsulation.**\n\n",
			       va->name, other);
	}
	printf("\nOffered is what the generator handed to the veth; the rest of it was dropped "
	       "at the LB's receive ring (full while the LB core was busy). Frames the floor "
	       "sends back are the generated ones; the others' are encapsulated "
	       "(docs/wire-format.md), 36 bytes longer.\n\n");
	rc = 0;
out:
	fp_lb_close(h.lb);
	floor__destroy(h.floor);
	pps__destroy(h.pps);
	return rc;
}
