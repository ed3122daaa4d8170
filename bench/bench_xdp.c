// SPDX-License-Identifier: MIT
/*
 * Per-packet cost of the LB's XDP program, against a floor.
 *
 * Method (docs/design.md "Measuring speed"): BPF_PROG_TEST_RUN with repeat = 1, so every run
 * is one fresh copy of one packet (with repeat > 1 the kernel re-runs the program on the
 * buffer it already rewrote). The kernel reports each run's duration in ns; a round is
 * RUNS runs, its figure the median; the result is the median of ROUNDS round figures,
 * minus the same measurement of an empty XDP program (bpf/empty.bpf.c), which removes
 * the syscall, the copy and the timer. The programs are measured interleaved, round by
 * round, so drift hits them alike. Beside flowpin: the floor (bpf/floor.bpf.c: parse,
 * encapsulate in the same wire format, XDP_TX) and the floor plus bpf_fib_lookup().
 *
 * Runs in a private network namespace (flowpin/fibns.h) so bpf_fib_lookup() resolves.
 * Prints one markdown section on stdout; bench/run collects it into bench/results.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>
#include <linux/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <flowpin/config.h>
#include <flowpin/fibns.h>
#include <flowpin/lb.h>
#include <flowpin/log.h>
#include <flowpin/quiclb.h>
#include <flowpin/ticket.h>
#include "common/pkt.h"
#include "empty.skel.h"
#include "floor.skel.h"

#define ROUNDS	 21
#define RUNS	 1000
#define VARIANTS (ROUNDS * RUNS) /* distinct flows for the paths that must miss */
#define N_PATHS	 19

/* The published example key: a benchmark may use it, with allow_example_key. */
static const char config_yaml[] = "hash_key: 000102030405060708090a0b0c0d0e0f\n"
				  /* A fleet of two sites, this node site a's (fibns: 192.0.2.1). */
				  "pops:\n"
				  "  - { name: a, lbs: [192.0.2.1] }\n"
				  "  - { name: b, lbs: [10.98.0.11, 10.98.0.12] }\n"
				  "table_size: 65537\n"
				  "encap_port: 6080\n"
				  "vips:\n"
				  "  - name: web4\n"
				  "    address: 198.51.100.10\n"
				  "    port: 443\n"
				  "    protocol: tcp\n"
				  "    pinning: full\n"
				  "    backends:\n"
				  "      - { id: 1, address: 10.20.0.1, pop: a }\n"
				  "      - { id: 2, address: 10.20.0.2, pop: a }\n"
				  "      - { id: 3, address: 10.20.0.3, pop: a }\n"
				  "  - name: web6\n"
				  "    address: 2001:db8:100::10\n"
				  "    port: 443\n"
				  "    protocol: tcp\n"
				  "    pinning: full\n"
				  "    backends:\n"
				  "      - { id: 1, address: fd00:20::1, pop: a }\n"
				  "      - { id: 2, address: fd00:20::2, pop: a }\n"
				  "  - name: quic\n"
				  "    address: 198.51.100.10\n"
				  "    port: 443\n"
				  "    protocol: udp\n"
				  "    pinning: full\n"
				  "    backends:\n"
				  "      - { id: 1, address: 10.20.0.1, pop: a }\n"
				  "      - { id: 2, address: 10.20.0.2, pop: a }\n"
				  /* quic_lb set below (set_quic_lb()): plaintext, then AES */
				  "  - name: quicp\n"
				  "    address: 198.51.100.11\n"
				  "    port: 443\n"
				  "    protocol: udp\n"
				  "    pinning: full\n"
				  "    backends:\n"
				  "      - { id: 1, address: 10.20.0.1, pop: a }\n"
				  "      - { id: 2, address: 10.20.0.2, pop: a }\n"
				  "  - name: quica\n"
				  "    address: 198.51.100.12\n"
				  "    port: 443\n"
				  "    protocol: udp\n"
				  "    pinning: full\n"
				  "    backends:\n"
				  "      - { id: 1, address: 10.20.0.1, pop: a }\n"
				  "      - { id: 2, address: 10.20.0.2, pop: a }\n"
				  "  - name: tick4\n"
				  "    address: 198.51.100.13\n"
				  "    port: 443\n"
				  "    protocol: tcp\n"
				  "    pinning: full\n"
				  "    tickets: { bits: 8 }\n"
				  "    backends:\n"
				  "      - { id: 1, address: 10.20.0.1, pop: a }\n"
				  "      - { id: 2, address: 10.20.0.2, pop: a }\n"
				  "      - { id: 3, address: 10.20.0.3, pop: a }\n"
				  "      - { id: 7, address: 10.98.0.21, pop: b }\n"
				  "allow_example_key: true\n";

/* One measured path: its packets (one, or VARIANTS distinct flows) and its results. */
struct path {
	const char *name;
	const char *what;
	__u8 *frames; /* n x FP_PKT_MAX */
	__u32 *lens;
	size_t n;
	double ns[5];	    /* per program: median of round medians */
	char decision[128]; /* flowpin's counters that moved on every run */
};

enum { P_EMPTY, P_FLOOR, P_FLOOR_FIB, P_FLOOR_FIB_HASH, P_FLOWPIN, P_NPROGS };

struct progs {
	int fd[P_NPROGS];
	__u32 expect[P_NPROGS];
	int ifindex;
};

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * One round of one program on one path: RUNS single-packet runs, starting at variant
 * @first. Stores the median duration. Every run must give the expected verdict, so a
 * path that silently fell into a drop is never reported as fast.
 */
static int run_round(const struct progs *pr, int prog, const struct path *p, size_t first,
		     double *median)
{
	static __u32 durations[RUNS];
	static __u8 out[FP_PKT_MAX + 256];

	for (size_t i = 0; i < RUNS; i++) {
		size_t v = p->n == 1 ? 0 : (first + i) % p->n;
		struct xdp_md ctx = { .data_end = p->lens[v], .ingress_ifindex = pr->ifindex };
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = p->frames + v * FP_PKT_MAX,
			    .data_size_in = p->lens[v], .data_out = out,
			    .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);

		if (bpf_prog_test_run_opts(pr->fd[prog], &run))
			return -errno;
		if (run.retval != pr->expect[prog]) {
			fprintf(stderr, "bench_xdp: path %s, program %d: verdict %u, expected %u\n",
				p->name, prog, run.retval, pr->expect[prog]);
			return -EPROTO;
		}
		durations[i] = run.duration;
	}
	qsort(durations, RUNS, sizeof(durations[0]), cmp_u32);
	*median = (durations[RUNS / 2 - 1] + durations[RUNS / 2]) / 2.0;
	return 0;
}

static int measure(const struct progs *pr, struct path *p)
{
	double rounds[P_NPROGS][ROUNDS];
	int err;

	for (int r = 0; r < ROUNDS; r++) {
		for (int prog = 0; prog < P_NPROGS; prog++) {
			err = run_round(pr, prog, p, (size_t)r * RUNS, &rounds[prog][r]);
			if (err)
				return err;
		}
	}
	for (int prog = 0; prog < P_NPROGS; prog++) {
		qsort(rounds[prog], ROUNDS, sizeof(double), cmp_double);
		p->ns[prog] = rounds[prog][ROUNDS / 2];
	}
	return 0;
}

/* Fills @p with @n frames of @base, variant i with source port and address from i. */
static int build_path(struct path *p, const struct fp_pkt_spec *base, size_t n)
{
	p->frames = malloc(n * FP_PKT_MAX);
	p->lens = calloc(n, sizeof(*p->lens));
	if (!p->frames || !p->lens)
		return -ENOMEM;
	p->n = n;
	for (size_t i = 0; i < n; i++) {
		struct fp_pkt_spec s = *base;
		int len;

		if (n > 1) {
			s.sport = (__u16)(1024 + i % 60000);
			s.src.a[15] ^= (__u8)(i / 60000);
			s.src.a[14] ^= (__u8)(i >> 8);
		}
		len = fp_pkt_build(&s, p->frames + i * FP_PKT_MAX, FP_PKT_MAX);
		if (len < 0)
			return len;
		p->lens[i] = (__u32)len;
	}
	return 0;
}

/*
 * Like build_path(), every frame with Linux's data-segment options (NOP NOP TS) whose
 * TSecr is the ticket naming server id @sid (K = 8) for that frame's own flow, as a
 * backend's egress program writes it under the key derived from @fleet.
 */
static int build_ts_path(struct path *p, const struct fp_pkt_spec *base, size_t n,
			 const struct fp_hash_key *fleet, __u16 sid)
{
	struct fp_hash_key key;

	fp_ticket_key_derive(fleet, &key);
	p->frames = malloc(n * FP_PKT_MAX);
	p->lens = calloc(n, sizeof(*p->lens));
	if (!p->frames || !p->lens)
		return -ENOMEM;
	p->n = n;
	for (size_t i = 0; i < n; i++) {
		struct fp_pkt_spec s = *base;
		struct fp_flow_key f;
		__u8 opts[12] = { 1, 1, 8, 10, 0x12, 0x34, 0x56, 0x78 };
		__u32 ticket;
		int len;

		if (n > 1) {
			s.sport = (__u16)(1024 + i % 60000);
			s.src.a[15] ^= (__u8)(i / 60000);
			s.src.a[14] ^= (__u8)(i >> 8);
		}
		fp_pkt_flow_key(&s, 0, &f);
		ticket = fp_ticket_encode(0x01020304, fp_ticket_flow_hash(&key, &f), sid, 8);
		opts[8] = (__u8)(ticket >> 24);
		opts[9] = (__u8)(ticket >> 16);
		opts[10] = (__u8)(ticket >> 8);
		opts[11] = (__u8)ticket;
		s.tcp_options = opts;
		s.tcp_options_len = sizeof(opts);
		len = fp_pkt_build(&s, p->frames + i * FP_PKT_MAX, FP_PKT_MAX);
		if (len < 0)
			return len;
		p->lens[i] = (__u32)len;
	}
	return 0;
}

/*
 * Two flows of @base (source ports from base->sport on) that share one flow-cache slot
 * (flowpin/maps.h fp_flow_cache_slot()), so that alternating them misses the cache on
 * every packet.
 */
static int build_colliding_pair(struct path *p, const struct fp_pkt_spec *base)
{
	struct fp_pkt_spec a = *base, b = *base;
	struct fp_flow_key ka, kb;
	int err;

	fp_pkt_flow_key(&a, 0, &ka);
	for (b.sport = a.sport + 1; b.sport != a.sport; b.sport++) {
		fp_pkt_flow_key(&b, 0, &kb);
		if (fp_flow_cache_slot(&kb) == fp_flow_cache_slot(&ka))
			break;
	}
	if (b.sport == a.sport)
		return -ENOENT;
	err = build_path(p, &a, 1);
	if (err)
		return err;
	free(p->frames);
	free(p->lens);
	p->frames = malloc(2 * FP_PKT_MAX);
	p->lens = calloc(2, sizeof(*p->lens));
	if (!p->frames || !p->lens)
		return -ENOMEM;
	p->n = 2;
	for (int i = 0; i < 2; i++) {
		int len = fp_pkt_build(i ? &b : &a, p->frames + i * FP_PKT_MAX, FP_PKT_MAX);

		if (len < 0)
			return len;
		p->lens[i] = (__u32)len;
	}
	return 0;
}

/* Runs @frame once through flowpin (to create a session before the hit path). */
static int prime(int fd, int ifindex, const __u8 *frame, __u32 len, __u32 expect)
{
	__u8 out[FP_PKT_MAX + 256];
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);

	if (bpf_prog_test_run_opts(fd, &run))
		return -errno;
	return run.retval == expect ? 0 : -EPROTO;
}

/*
 * QUIC-LB on the VIPs quicp (plaintext, 2-octet server IDs) and quica (single-pass AES,
 * 2 + 14 octets), server IDs 0x0101 and 0x0202, and a QUIC short-header payload of
 * 1200 octets whose CID names backend 1 of each, in @plain and @aes.
 */
static int set_quic_lb(struct fp_config *cfg, __u8 plain[1200], __u8 aes[1200])
{
	static const __u8 key[16] = { 0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80,
				      0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f };
	static const __u8 nonce[FP_QUICLB_MAX_NONCE] = { 1, 2, 3,  4,  5,  6,  7,
							 8, 9, 10, 11, 12, 13, 14 };

	for (size_t i = 0; i < cfg->n_vips; i++) {
		struct fp_vip_cfg *v = &cfg->vips[i];
		bool is_aes = !strcmp(v->name, "quica");
		__u8 *payload = is_aes ? aes : plain;
		size_t len = 0;
		int err;

		if (strcmp(v->name, "quicp") && !is_aes)
			continue;
		v->has_quic_lb = true;
		v->quic_lb = (struct fp_quiclb_cfg){ .config_id = 1,
						     .server_id_len = 2,
						     .nonce_len = is_aes ? 14 : 6,
						     .encrypted = is_aes };
		memcpy(v->quic_lb.key, key, sizeof(key));
		for (size_t b = 0; b < v->n_backends; b++)
			memset(v->backends[b].server_id, (int)v->backends[b].id, 2);
		memset(payload, 0, 1200);
		payload[0] = 0x41; /* short header */
		err = fp_quiclb_encode(&v->quic_lb, v->backends[0].server_id, nonce, payload + 1,
				       &len);
		if (err)
			return err;
	}
	return 0;
}

/* Paths whose every run is a flow never seen (no session to establish first). */
static bool path_misses(int i)
{
	return i == 1 || i == 2 || i == 5 || i == 9 || i == 10 || i == 11 || i == 13 || i == 14 ||
	       i == 15 || i == 18;
}

/*
 * Busy node (docs/design.md "Measuring speed"): a node holding many established flows,
 * whose packets come in random order, so a hit finds its session entry cold. Its own
 * instance of the program with a table of BUSY_TABLE entries (1M flows fit), the flows
 * established first (SYN, handshake ACK, one more ACK: `full` creates the entry at the
 * flow's second non-SYN packet, bpf/lb.bpf.c "Session admission"). Frames are built
 * run by run (a million frames would not fit in memory), outside the timed part.
 */
#define BUSY_TABLE    (1U << 21)
#define BUSY_AHEAD    1000 /* hs: SYNs sent this many runs ahead of their ACK */
#define BUSY_MAX_FLOW 1000000U

enum { B_EMPTY, B_FLOOR, B_FLOWPIN, B_NPROGS };

struct busy_path {
	const char *name;
	const char *what;
	__u32 flows;	/* established flows cycled through in random order; 0: new flows */
	bool handshake; /* new flows: the untimed SYN first, the timed ACK BUSY_AHEAD later */
	double ns[B_NPROGS];
	char decision[160];
};

/* Flow @id of the busy paths: 172.16.0.0/12 + id -> 198.51.100.10:443. */
static void busy_frame(__u32 id, __u8 flags, __u8 *buf, __u32 *len)
{
	struct fp_pkt_spec s = {};
	char a[32];
	int n;

	snprintf(a, sizeof(a), "172.%u.%u.%u", 16 + ((id >> 16) & 0x0f), (id >> 8) & 0xff,
		 id & 0xff);
	s.src = fp_pkt_addr(a);
	s.dst = fp_pkt_addr("198.51.100.10");
	s.proto = IPPROTO_TCP;
	s.sport = (__u16)(20000 + (id >> 20));
	s.dport = 443;
	s.tcp_flags = flags;
	n = fp_pkt_build(&s, buf, FP_PKT_MAX);
	*len = n > 0 ? (__u32)n : 0;
}

static int busy_run(int fd, int ifindex, const __u8 *frame, __u32 len, __u32 expect,
		    __u32 *duration)
{
	static __u8 out[FP_PKT_MAX + 256];
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);

	if (bpf_prog_test_run_opts(fd, &run))
		return -errno;
	if (run.retval != expect)
		return -EPROTO;
	*duration = run.duration;
	return 0;
}

/* Random permutations of 0..n-1, concatenated: @need flow ids. */
static __u32 *busy_order(__u32 n, size_t need, unsigned int *seed)
{
	__u32 *order = malloc(need * sizeof(*order)), *perm = malloc(n * sizeof(*perm));
	size_t have = 0;

	if (!order || !perm) {
		free(order);
		free(perm);
		return NULL;
	}
	while (have < need) {
		for (__u32 i = 0; i < n; i++)
			perm[i] = i;
		for (__u32 i = n - 1; i > 0; i--) {
			__u32 j = (__u32)rand_r(seed) % (i + 1), t = perm[i];

			perm[i] = perm[j];
			perm[j] = t;
		}
		for (__u32 i = 0; i < n && have < need; i++)
			order[have++] = perm[i];
	}
	free(perm);
	return order;
}

/*
 * One busy path: ROUNDS rounds, each RUNS runs of every program in turn (order
 * rotating), the same flows for all. A handshake path sends each flow's SYN through
 * flowpin, untimed, BUSY_AHEAD runs before its timed ACK; its flows start at @next_new.
 */
static int busy_measure(const int fd[B_NPROGS], int ifindex, struct busy_path *p,
			const __u32 *order, __u32 *next_new)
{
	static __u32 durations[RUNS];
	static __u8 frame[FP_PKT_MAX];
	double rounds[B_NPROGS][ROUNDS];
	__u32 len, d;
	int err;

	for (int r = 0; r < ROUNDS; r++) {
		__u32 base = *next_new;

		for (int k = 0; k < B_NPROGS; k++) {
			int prog = (k + r) % B_NPROGS;
			__u32 expect = prog == B_EMPTY ? XDP_PASS : XDP_TX;

			for (int i = 0; i < RUNS + BUSY_AHEAD; i++) {
				__u32 id;

				if (p->handshake && prog == B_FLOWPIN && i < RUNS) {
					busy_frame(base + i, FP_TCP_SYN, frame, &len);
					err = busy_run(fd[prog], ifindex, frame, len, XDP_TX, &d);
					if (err)
						return err;
				}
				if (i < BUSY_AHEAD)
					continue;
				id = p->handshake ? base + i - BUSY_AHEAD
						  : order[(size_t)r * RUNS + i - BUSY_AHEAD];
				busy_frame(id, FP_TCP_ACK, frame, &len);
				err = busy_run(fd[prog], ifindex, frame, len, expect,
					       &durations[i - BUSY_AHEAD]);
				if (err)
					return err;
			}
			qsort(durations, RUNS, sizeof(durations[0]), cmp_u32);
			rounds[prog][r] = (durations[RUNS / 2 - 1] + durations[RUNS / 2]) / 2.0;
		}
		if (p->handshake)
			*next_new += RUNS;
	}
	for (int prog = 0; prog < B_NPROGS; prog++) {
		qsort(rounds[prog], ROUNDS, sizeof(double), cmp_double);
		p->ns[prog] = rounds[prog][ROUNDS / 2];
	}
	return 0;
}

/* The kernel's memlock of the program's map @name (/proc/self/fdinfo), or 0. */
static unsigned long long map_memlock(int prog_fd, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ids[64];
	unsigned long long memlock = 0;

	info.nr_map_ids = 64;
	info.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return 0;
	for (__u32 i = 0; i < info.nr_map_ids && i < 64; i++) {
		struct bpf_map_info m = {};
		__u32 mlen = sizeof(m);
		int fd = bpf_map_get_fd_by_id(ids[i]);
		char path[64], line[256];
		FILE *f;

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &m, &mlen) && !strcmp(m.name, name)) {
			snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
			f = fopen(path, "r");
			while (f && fgets(line, sizeof(line), f))
				if (!strncmp(line, "memlock:", 8))
					memlock = strtoull(line + 8, NULL, 10);
			if (f)
				fclose(f);
		}
		close(fd);
	}
	return memlock;
}

/*
 * The busy-node section: hits with 1k, 100k and 1M established flows in random order,
 * the handshake-completing ACK (a whole new connection is it plus the SYN of the main
 * table), and the session table's memory per entry.
 */
static int busy_node(const struct fp_config *cfg, const struct fp_lb_opts *base_opts,
		     const struct progs *pr, double syn_ns, double promotion_ns)
{
	struct busy_path paths[] = {
		{ "hit, 1k flows", "ACK of one of 1,000 established flows, random order", 1000 },
		{ "hit, 100k flows", "the same with 100,000 flows", 100000 },
		{ "hit, 1M flows", "the same with 1,000,000 flows", 1000000 },
		{ "handshake ACK",
		  "the handshake-completing ACK of a new flow, its SYN sent "
		  "(untimed) 1,000 runs earlier",
		  0, true },
	};
	const size_t n_paths = sizeof(paths) / sizeof(paths[0]);
	struct fp_lb_opts opts = *base_opts;
	static __u8 frame[FP_PKT_MAX];
	unsigned int seed = 14;
	__u32 established = 0, next_new = BUSY_MAX_FLOW, len, d;
	unsigned long long mem[2] = {}, probation[2] = {};
	const __u32 mem_entries[2] = { 1000000, 10000000 };
	struct fp_lb *lb = NULL;
	int fd[B_NPROGS], err = 0;
	__u64 before[FP_CNT__MAX], after[FP_CNT__MAX];

	opts.session_entries = BUSY_TABLE;
	err = fp_lb_open(cfg, &opts, &lb);
	if (err) {
		fprintf(stderr, "bench_xdp: busy node: cannot load: %s\n", strerror(-err));
		return err;
	}
	fd[B_EMPTY] = pr->fd[P_EMPTY];
	fd[B_FLOOR] = pr->fd[P_FLOOR];
	fd[B_FLOWPIN] = fp_lb_prog_fd(lb);
	for (size_t i = 0; i < n_paths && !err; i++) {
		struct busy_path *p = &paths[i];
		__u32 *order = NULL;

		/* Establish flows up to this path's count: SYN, ACK (probation), ACK (entry). */
		for (; established < p->flows && !err; established++) {
			static const __u8 flags[3] = { FP_TCP_SYN, FP_TCP_ACK, FP_TCP_ACK };

			for (int k = 0; k < 3 && !err; k++) {
				busy_frame(established, flags[k], frame, &len);
				err = busy_run(fd[B_FLOWPIN], pr->ifindex, frame, len, XDP_TX, &d);
			}
		}
		if (!err && p->flows) {
			order = busy_order(p->flows, (size_t)ROUNDS * RUNS, &seed);
			if (!order)
				err = -ENOMEM;
		}
		if (!err)
			err = fp_lb_read_counters(lb, before);
		if (!err)
			err = busy_measure(fd, pr->ifindex, p, order, &next_new);
		if (!err)
			err = fp_lb_read_counters(lb, after);
		free(order);
		if (err) {
			fprintf(stderr, "bench_xdp: busy path '%s': %s\n", p->name, strerror(-err));
			break;
		}
		/* The counters that moved on every timed run, then those on most. */
		for (int pass = 0; pass < 2; pass++) {
			for (int c = 0; c < FP_CNT__MAX; c++) {
				size_t used = strlen(p->decision);
				__u64 moved = after[c] - before[c], all = (__u64)ROUNDS * RUNS;

				if (c == FP_CNT_TX || (pass == 0 && moved < all) ||
				    (pass == 1 && (moved >= all || moved < all / 100)))
					continue;
				if (pass == 0)
					snprintf(p->decision + used, sizeof(p->decision) - used,
						 "%s%s", used ? " + " : "", fp_counter_names[c]);
				else
					snprintf(p->decision + used, sizeof(p->decision) - used,
						 " (%s on %.2f%%)", fp_counter_names[c],
						 100.0 * (double)moved / (double)all);
			}
		}
	}
	fp_lb_close(lb);
	lb = NULL;
	/* Memory: the kernel's own account of the session table (and probation) sized for
	 * 1M and 10M sessions. */
	for (int m = 0; m < 2 && !err; m++) {
		opts.session_entries = mem_entries[m];
		err = fp_lb_open(cfg, &opts, &lb);
		if (err) {
			fprintf(stderr, "bench_xdp: a table of %u: %s\n", mem_entries[m],
				strerror(-err));
			break;
		}
		mem[m] = map_memlock(fp_lb_prog_fd(lb), "sessions");
		probation[m] = map_memlock(fp_lb_prog_fd(lb), "probation");
		fp_lb_close(lb);
		lb = NULL;
	}
	if (err)
		return err;

	printf("### Busy node (bench/bench_xdp.c)\n\n");
	printf("Method as above (%d rounds of %d runs, interleaved round by round, empty "
	       "subtracted), with the programs empty, floor and flowpin (`pinning: full`, its "
	       "own instance with a session table of %u entries). The flows of a hit path are "
	       "established first (SYN, handshake ACK, one more ACK: the entry is made at the "
	       "flow's second non-SYN packet); each run sends one ACK of a flow drawn in random "
	       "order (concatenated random permutations), so the session entry is cold as on a "
	       "node holding that many flows. Targets of the issue on these rows are ratios to "
	       "Katran, measured side by side by the harness the issue names (section "
	       "below); here: against flowpin's own 1k figure.\n\n",
	       ROUNDS, RUNS, BUSY_TABLE);
	printf("| path | flowpin decision | floor ns | flowpin ns | flowpin / floor | / hit at 1k "
	       "flows |\n|---|---|---:|---:|---:|---:|\n");
	double hit1k = paths[0].ns[B_FLOWPIN] - paths[0].ns[B_EMPTY];
	for (size_t i = 0; i < n_paths; i++) {
		struct busy_path *p = &paths[i];
		double fl = p->ns[B_FLOOR] - p->ns[B_EMPTY], fp = p->ns[B_FLOWPIN] - p->ns[B_EMPTY];

		printf("| %s (%s) | %s | %.0f | %.0f | %.1fx | %.2fx |\n", p->name, p->what,
		       p->decision[0] ? p->decision : "?", fl, fp, fp / fl, fp / hit1k);
	}
	{
		double hs = paths[3].ns[B_FLOWPIN] - paths[3].ns[B_EMPTY];

		printf("\nA whole new connection (the SYN of the main table, %.0f ns, plus the "
		       "handshake ACK): %.0f ns; its first data packet then creates the session "
		       "entry (the promotion row of the main table: %.0f ns).\n",
		       syn_ns, syn_ns + hs, promotion_ns);
	}
	printf("\nSession table memory (the kernel's memlock of the map, /proc/self/fdinfo): "
	       "%u entries %.1f MiB (%.1f bytes an entry), %u entries %.1f MiB (%.1f bytes an "
	       "entry); with the probation array the table's size implies, %.1f and %.1f bytes "
	       "an entry.\n\n",
	       mem_entries[0], mem[0] / 1048576.0, (double)mem[0] / mem_entries[0], mem_entries[1],
	       mem[1] / 1048576.0, (double)mem[1] / mem_entries[1],
	       (double)(mem[0] + probation[0]) / mem_entries[0],
	       (double)(mem[1] + probation[1]) / mem_entries[1]);
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

/*
 * The own-MAC rule (bpf/own_mac.h): what the check costs a frame sent to this node, as
 * the floor with and without it (floors[3] runs it first), and what a frame flooded
 * here (another host's MAC) costs flowpin, which passes it unread. The floor runs
 * twice per round (the second copy shows this run's noise between identical programs).
 * @hit: the session-hit path, its flow established in flowpin.
 */
/*
 * Mean ns per run of @fd over @repeat runs of @frame, which it must pass unchanged
 * (XDP_PASS): with nothing rewritten, repeat > 1 runs the same packet every time, and
 * the kernel's duration (total / repeat) resolves fractions of its clock's step.
 */
static int repeat_ns(int fd, int ifindex, const __u8 *frame, __u32 len, __u32 repeat, double *ns)
{
	static __u8 out[FP_PKT_MAX + 256];
	struct xdp_md ctx = { .data_end = len, .ingress_ifindex = (__u32)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &run))
		return -errno;
	if (run.retval != XDP_PASS)
		return -EPROTO;
	*ns = run.duration;
	return 0;
}

static int own_mac_section(const struct progs *pr, int floor_check_fd, const struct path *hit,
			   const __u8 other_mac[6])
{
	struct path to_us = *hit, flooded = *hit;
	struct progs q = *pr, qf;
	double e, fl, fl2, fc, fp, oe, ofc, ofp;
	int err;

	q.fd[P_FLOOR_FIB] = floor_check_fd;
	q.fd[P_FLOOR_FIB_HASH] = pr->fd[P_FLOOR];
	q.expect[P_FLOOR_FIB] = q.expect[P_FLOOR_FIB_HASH] = XDP_TX;
	qf = q;
	qf.expect[P_FLOOR_FIB] = XDP_PASS;
	qf.expect[P_FLOWPIN] = XDP_PASS;
	flooded.frames = malloc(FP_PKT_MAX);
	if (!flooded.frames)
		return -ENOMEM;
	memcpy(flooded.frames, hit->frames, hit->lens[0]);
	memcpy(flooded.frames, other_mac, 6);
	flooded.n = 1;
	err = measure(&q, &to_us);
	if (!err)
		err = measure(&qf, &flooded);
	if (err) {
		free(flooded.frames);
		return err;
	}
	e = to_us.ns[P_EMPTY];
	fl = to_us.ns[P_FLOOR] - e;
	fc = to_us.ns[P_FLOOR_FIB] - e;
	fl2 = to_us.ns[P_FLOOR_FIB_HASH] - e;
	fp = to_us.ns[P_FLOWPIN] - e;
	oe = flooded.ns[P_EMPTY];
	ofc = flooded.ns[P_FLOOR_FIB] - oe;
	ofp = flooded.ns[P_FLOWPIN] - oe;
	/* The flooded frame again with repeat: empty, floor + check, flowpin, round by
	 * round; each figure the median of ROUNDS means of 20000 runs. */
	double rep_ns[3][ROUNDS];
	const int rep_fd[3] = { pr->fd[P_EMPTY], floor_check_fd, pr->fd[P_FLOWPIN] };

	memcpy(flooded.frames, hit->frames, hit->lens[0]);
	memcpy(flooded.frames, other_mac, 6);
	for (int r = 0; r < ROUNDS && !err; r++)
		for (int i = 0; i < 3 && !err; i++)
			err = repeat_ns(rep_fd[i], pr->ifindex, flooded.frames, hit->lens[0], 20000,
					&rep_ns[i][r]);
	free(flooded.frames);
	if (err)
		return err;
	for (int i = 0; i < 3; i++)
		qsort(rep_ns[i], ROUNDS, sizeof(double), cmp_double);
	printf("### Own-MAC check (bpf/own_mac.h)\n\n");
	printf("The session-hit frame (%s), measured as above, on floor, floor + the own-MAC "
	       "check (bpf/floor.bpf.c own_mac_check: read the receiving device's address "
	       "from its struct net_device, compare), the floor again (same program: this "
	       "run's noise) and flowpin; then the same frame sent to another host's MAC, "
	       "as a switch floods it.\n\n",
	       hit->what);
	printf("| frame | empty ns (subtracted) | floor ns | floor + check ns | floor again ns "
	       "| flowpin ns |\n|---|---:|---:|---:|---:|---:|\n");
	printf("| to this node's MAC | %.0f | %.0f | %.0f | %.0f | %.0f |\n", e, fl, fc, fl2, fp);
	printf("| to another MAC (flooded) | %.0f | %.0f | %.0f (passed) | %.0f | %.0f (passed) "
	       "|\n",
	       oe, flooded.ns[P_FLOOR] - oe, ofc, flooded.ns[P_FLOOR_FIB_HASH] - oe, ofp);
	printf("\nThe check on a frame sent to this node: floor + check / floor = %.3fx "
	       "(%+.1f ns; the floor against itself: %.3fx, %+.1f ns), %.1f%% of flowpin's "
	       "session hit in the same run. A flooded frame costs flowpin %.0f ns, %.2fx "
	       "its session hit: passed before any parsing.\n",
	       fc / fl, fc - fl, fl2 / fl, fl2 - fl, 100.0 * (fc - fl) / fp, ofp, ofp / fp);
	printf("\nThe runs above resolve about 10 ns. The flooded frame once more with repeat "
	       "= 20000 (it is passed unchanged, so every repeat runs the same packet; median "
	       "of %d rounds): empty %.1f ns, floor + check %.1f ns, flowpin %.1f ns. The "
	       "check alone (floor + check minus empty, the frame read and compared, then "
	       "XDP_PASS) costs %.1f ns, %.1f%% of flowpin's session hit above (%.0f ns); "
	       "flowpin passes a flooded frame in %.1f ns (the check, its counter).\n\n",
	       ROUNDS, rep_ns[0][ROUNDS / 2], rep_ns[1][ROUNDS / 2], rep_ns[2][ROUNDS / 2],
	       rep_ns[1][ROUNDS / 2] - rep_ns[0][ROUNDS / 2],
	       100.0 * (rep_ns[1][ROUNDS / 2] - rep_ns[0][ROUNDS / 2]) / fp, fp,
	       rep_ns[2][ROUNDS / 2] - rep_ns[0][ROUNDS / 2]);
	return 0;
}

int main(void)
{
	struct empty *empty = NULL;
	struct floor *floors[4] = {};
	struct fp_config *cfg = NULL;
	struct fp_lb *lb = NULL;
	struct fp_fibns ns;
	struct progs pr = {};
	struct path paths[N_PATHS] = {
		{ "session hit", "IPv4 TCP ACK of an established flow" },
		{ "new flow (SYN)", "IPv4 TCP SYN, a different flow every run" },
		{ "mid-flow miss", "IPv4 TCP ACK, no session (another LB's flow), a different "
				   "flow every run" },
		{ "IPv6 session hit", "IPv6 TCP ACK of an established flow, IPv6 backend" },
		{ "QUIC-sized UDP", "IPv4 UDP, 1200-byte payload, established flow" },
		/* Control for the new-flow figure: the same decision with a warm cache. */
		{ "SYN, one flow repeated", "IPv4 TCP SYN, the same flow every run (no session: "
					    "full mode inserts nothing on SYN)" },
		/* What the flow cache saves, and what a busy node's session hit costs. */
		{ "session hit, flow cache miss",
		  "IPv4 TCP ACK, two established flows sharing one flow-cache slot, alternating: "
		  "VIP and session lookups every run" },
		{ "session hit, many flows", "IPv4 TCP ACK, a different established flow every "
					     "run (cold session table and flow cache lines)" },
		/* The packet that creates a session entry (bpf/lb.bpf.c session admission). */
		{ "promotion", "IPv4 TCP ACK, the second packet of a different flow every run "
			       "(its first put it in probation): creates the session entry" },
		/* QUIC-LB (issue 12): step 3 on a miss; the session hit with quic_lb on. */
		{ "QUIC-LB plaintext, miss",
		  "IPv4 UDP QUIC short header, 1200 bytes, CID naming backend 1 in plaintext "
		  "(2-octet server ID), a different flow every run" },
		{ "QUIC-LB AES, miss", "the same with a single-pass AES-128-ECB CID "
				       "(bpf_crypto_decrypt), a different flow every run" },
		{ "UDP miss, no quic_lb",
		  "IPv4 UDP, 1200 bytes, to a VIP without quic_lb, a "
		  "different flow every run: the same miss without step 3" },
		{ "QUIC-LB session hit", "IPv4 UDP QUIC, 1200 bytes, established flow of the AES "
					 "quic_lb VIP: the QUIC-sized UDP hit with quic_lb on" },
		/* TCP tickets: step 3 on a miss; the session hit with tickets on. */
		{ "TCP ticket, miss", "IPv4 TCP ACK, timestamp option whose TSecr names backend "
				      "1 of a ticket VIP (K = 8), a different flow every run" },
		{ "TCP ticket, forged, miss",
		  "the same, the TSecr naming id 200 (no backend): the decode, then the normal "
		  "path, a different flow every run" },
		{ "TCP miss with timestamps, no tickets",
		  "the same segments to a VIP without tickets, a different flow every run: the "
		  "same miss without step 3" },
		{ "TCP ticket VIP session hit", "IPv4 TCP ACK with the timestamp option, "
						"established flow of the ticket VIP" },
		{ "TCP session hit with timestamps, no tickets",
		  "the same segment shape, established flow of a VIP without tickets" },
		/* Cross-site forwarding: a ticket naming another site's backend. */
		{ "TCP ticket, cross-site miss",
		  "the ticket miss above naming backend 7 of site b: one hop to b's LB node "
		  "(0xF2), a different flow every run" },
	};
	static __u8 quic_plain[1200], quic_aes[1200];
	struct fp_pkt_spec specs[N_PATHS] = {};
	char cfg_path[] = "/tmp/flowpin-bench-XXXXXX";
	int fd, err, rc = 1;

	if (geteuid() != 0) {
		fprintf(stderr, "bench_xdp: needs root (BPF_PROG_TEST_RUN, network namespace)\n");
		printf("## XDP per-packet cost\n\nNot measured: bench_xdp needs root.\n");
		return 1;
	}
	fd = mkstemp(cfg_path);
	if (fd < 0 || write(fd, config_yaml, sizeof(config_yaml) - 1) < 0) {
		perror("bench_xdp: config");
		goto out;
	}
	close(fd);
	err = fp_config_load(cfg_path, &cfg, stderr);
	unlink(cfg_path);
	if (!err)
		err = fp_config_select_pop(cfg, "a", stderr);
	if (err)
		goto out;
	err = set_quic_lb(cfg, quic_plain, quic_aes);
	if (err) {
		fprintf(stderr, "bench_xdp: QUIC-LB CIDs: %s\n", strerror(-err));
		goto out;
	}
	err = fp_fibns_enter(NULL, &ns);
	if (err)
		goto out;
	pr.ifindex = ns.ifindex;

	empty = empty__open_and_load();
	if (!empty) {
		fprintf(stderr, "bench_xdp: cannot load the empty program\n");
		goto out;
	}
	/*
	 * Three floors: the plain one (parse, encapsulate, XDP_TX), + bpf_fib_lookup, + the keyed flow
	 * hash for the outer source port. Each sends everything to backend 1 of the VIP of
	 * the packet's family: the same outer family and size as flowpin's output.
	 */
	for (int i = 0; i < 4; i++) { /* [3]: the plain floor + the own-MAC check */
		floors[i] = floor__open();
		if (!floors[i]) {
			fprintf(stderr, "bench_xdp: cannot open the floor program\n");
			goto out;
		}
		struct fp_addr b4 = fp_pkt_addr("10.20.0.1"), b6 = fp_pkt_addr("fd00:20::1");

		memcpy((void *)&floors[i]->rodata->backend_v4, b4.a + 12, 4);
		memcpy((void *)&floors[i]->rodata->source_v4, ns.own_v4, 4);
		memcpy((void *)floors[i]->rodata->backend_v6, b6.a, 16);
		memcpy((void *)floors[i]->rodata->source_v6, ns.own_v6, 16);
		memcpy((void *)floors[i]->rodata->own_mac, ns.own_mac, 6);
		memcpy((void *)floors[i]->rodata->next_hop_mac, ns.next_hop_mac, 6);
		floors[i]->rodata->fib_lookup = i >= 1 && i <= 2;
		floors[i]->rodata->flow_hash = i == 2;
		floors[i]->rodata->own_mac_check = i == 3;
		floors[i]->rodata->hash_k0 = cfg->hash_key.k0;
		floors[i]->rodata->hash_k1 = cfg->hash_key.k1;
		if (floor__load(floors[i])) {
			fprintf(stderr, "bench_xdp: cannot load the floor program\n");
			goto out;
		}
	}
	struct fp_lb_opts opts = { .have_source_v4 = true,
				   .have_source_v6 = true,
				   /* A benchmark of new flows must not run into the ceiling. */
				   .new_flow_rate = UINT32_MAX };
	if (getenv("FP_BENCH_PROBATION")) /* experiments: probation slots */
		opts.probation_slots = (__u32)strtoul(getenv("FP_BENCH_PROBATION"), NULL, 0);
	fp_addr_from_v4(opts.source_v4.a, *(const __be32 *)ns.own_v4);
	memcpy(opts.source_v6.a, ns.own_v6, 16);
	strcpy(opts.pop, "a");
	err = fp_lb_open(cfg, &opts, &lb);
	if (err) {
		fprintf(stderr, "bench_xdp: cannot load flowpin's XDP program: %s\n",
			strerror(-err));
		goto out;
	}
	pr.fd[P_EMPTY] = bpf_program__fd(empty->progs.fp_empty);
	pr.fd[P_FLOOR] = bpf_program__fd(floors[0]->progs.fp_floor);
	pr.fd[P_FLOOR_FIB] = bpf_program__fd(floors[1]->progs.fp_floor);
	pr.fd[P_FLOOR_FIB_HASH] = bpf_program__fd(floors[2]->progs.fp_floor);
	pr.fd[P_FLOWPIN] = fp_lb_prog_fd(lb);
	pr.expect[P_EMPTY] = XDP_PASS;
	pr.expect[P_FLOOR] = pr.expect[P_FLOOR_FIB] = pr.expect[P_FLOOR_FIB_HASH] = XDP_TX;
	pr.expect[P_FLOWPIN] = XDP_TX;

	for (int i = 0; i < N_PATHS; i++) {
		static const char *const src[N_PATHS] = {
			[3] = "2001:db8:200::7", [6] = "203.0.113.8",	[7] = "203.0.113.9",
			[8] = "203.0.113.10",	 [9] = "203.0.113.11",	[10] = "203.0.113.12",
			[11] = "203.0.113.13",	 [12] = "203.0.113.14", [13] = "203.0.113.15",
			[14] = "203.0.113.16",	 [15] = "203.0.113.17", [16] = "203.0.113.18",
			[17] = "203.0.113.19",	 [18] = "203.0.113.20",
		};
		bool udp = i == 4 || (i >= 9 && i <= 12);

		specs[i].src = fp_pkt_addr(src[i] ? src[i] : "203.0.113.7");
		specs[i].dst =
			fp_pkt_addr(i == 3				       ? "2001:db8:100::10"
				    : i == 9				       ? "198.51.100.11"
				    : i == 10 || i == 12		       ? "198.51.100.12"
				    : i == 13 || i == 14 || i == 16 || i == 18 ? "198.51.100.13"
									       : "198.51.100.10");
		specs[i].proto = udp ? IPPROTO_UDP : IPPROTO_TCP;
		specs[i].sport = i == 5 ? 40001 : 40000;
		specs[i].dport = 443;
		specs[i].tcp_flags = udp ? 0 : (i == 1 || i == 5) ? FP_TCP_SYN : FP_TCP_ACK;
		specs[i].payload_len = udp ? 1200 : 0;
		specs[i].payload = i == 9 ? quic_plain : (i == 10 || i == 12) ? quic_aes : NULL;
	}
	for (int i = 0; i < N_PATHS; i++) {
		if (i == 6)
			err = build_colliding_pair(&paths[i], &specs[i]);
		else if (i >= 13)
			err = build_ts_path(&paths[i], &specs[i], path_misses(i) ? VARIANTS : 1,
					    &cfg->hash_key,
					    i == 14   ? 200
					    : i == 18 ? 7
						      : 1);
		else
			err = build_path(&paths[i], &specs[i],
					 (i == 7 || i == 8 || (path_misses(i) && i != 5)) ? VARIANTS
											  : 1);
		if (err) {
			fprintf(stderr, "bench_xdp: building packets: %s\n", strerror(-err));
			goto out;
		}
	}

	__u64 before[FP_CNT__MAX], after[FP_CNT__MAX];
	for (int i = 0; i < N_PATHS; i++) {
		/*
		 * Establish the flows of a hit path just before measuring it, so the paths
		 * before it see the table they would have seen: the handshake-completing ACK
		 * puts the flow in probation, the next packet creates the session (a SYN
		 * creates nothing in full mode). The promotion path gets the first only.
		 */
		int primes = i == 8 ? 1 : 2;
		for (size_t v = 0; !path_misses(i) && v < paths[i].n * primes; v++) {
			if (prime(pr.fd[P_FLOWPIN], pr.ifindex,
				  paths[i].frames + (v / primes) * FP_PKT_MAX,
				  paths[i].lens[v / primes], XDP_TX)) {
				fprintf(stderr,
					"bench_xdp: cannot establish the flows of path '%s'\n",
					paths[i].name);
				goto out;
			}
		}
		if (fp_lb_read_counters(lb, before))
			goto out;
		err = measure(&pr, &paths[i]);
		if (err || fp_lb_read_counters(lb, after)) {
			fprintf(stderr, "bench_xdp: path '%s': %s\n", paths[i].name,
				strerror(err ? -err : EIO));
			goto out;
		}
		/*
		 * Which decision the path really took: the counters (other than the verdict)
		 * that moved once for every flowpin run, so a path that silently took
		 * another branch shows in the table; then those that moved on most runs
		 * but not all, with their share (the flow cache misses the first run and
		 * one a second; a probation mark may be overwritten before its flow's
		 * second packet).
		 */
		for (int pass = 0; pass < 2; pass++) {
			for (int c = 0; c < FP_CNT__MAX; c++) {
				size_t used = strlen(paths[i].decision);
				__u64 moved = after[c] - before[c], all = (__u64)ROUNDS * RUNS;

				if (c == FP_CNT_TX || (pass == 0 && moved < all) ||
				    (pass == 1 && (moved >= all || moved < all / 2)))
					continue;
				if (pass == 0)
					snprintf(paths[i].decision + used,
						 sizeof(paths[i].decision) - used, "%s%s",
						 used ? " + " : "", fp_counter_names[c]);
				else
					snprintf(paths[i].decision + used,
						 sizeof(paths[i].decision) - used,
						 " (%s on %.2f%% of runs)", fp_counter_names[c],
						 100.0 * (double)moved / (double)all);
			}
		}
	}

	printf("## XDP per-packet cost (bench/bench_xdp.c)\n\n");
	print_machine();
	printf("\nMethod: BPF_PROG_TEST_RUN with repeat = 1 (one fresh copy of one packet per "
	       "run; XDP's repeat would re-run on the rewritten buffer), kernel-reported duration "
	       "of each run; median of %d runs per round, median of %d rounds, minus the empty "
	       "XDP program measured the same way; all programs interleaved round by round, "
	       "in a private network namespace where bpf_fib_lookup() resolves "
	       "(flowpin/fibns.h). Paths that must miss use a different flow on every run. "
	       "flowpin: the real program (`pinning: full`, loaded by lib/lb.c, new-flow rate "
	       "limit off). floor (bpf/floor.bpf.c): parse Ethernet/IP/L4, encapsulate in "
	       "flowpin's wire format (one hop), XDP_TX. floor+fib adds bpf_fib_lookup() for "
	       "the next-hop MAC; floor+fib+hash also derives the outer source port from the "
	       "keyed SipHash-1-3 flow hash.\n\n",
	       RUNS, ROUNDS);
	printf("| path | flowpin decision | empty ns (subtracted) | floor ns | floor+fib ns | "
	       "floor+fib+hash ns | flowpin ns | flowpin / floor | flowpin / floor+fib+hash | "
	       "target (issue) |\n");
	printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
	for (int i = 0; i < N_PATHS; i++) {
		struct path *p = &paths[i];
		double e = p->ns[P_EMPTY], fl = p->ns[P_FLOOR] - e, ff = p->ns[P_FLOOR_FIB] - e,
		       fh = p->ns[P_FLOOR_FIB_HASH] - e, fp = p->ns[P_FLOWPIN] - e;
		char target[32] = "-";

		if (i <= 1)
			snprintf(target, sizeof(target), "<= %.1fx floor: %s", i ? 4.0 : 2.5,
				 fp / fl <= (i ? 4.0 : 2.5) ? "met" : "missed");
		printf("| %s (%s) | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.1fx | %.2fx | %s |\n",
		       p->name, p->what, p->decision[0] ? p->decision : "?", e, fl, ff, fh, fp,
		       fp / fl, fp / fh, target);
	}
	/*
	 * Scale for the figures above, all computed from them: what the helpers cost alone,
	 * and what a never-seen flow costs over the same decision on a warm cache.
	 */
	{
		const struct path *h = &paths[0], *s6 = &paths[3], *syn = &paths[1],
				  *miss = &paths[2], *warm = &paths[5], *lru = &paths[6],
				  *many = &paths[7], *promo = &paths[8];

		printf("\nFor scale: flowpin's IPv4 session hit costs %.0f ns above the floor. "
		       "On their own, bpf_fib_lookup() costs %.0f ns (IPv6: %.0f ns) and the "
		       "SipHash-1-3 flow hash %.0f ns (floor+fib minus floor, floor+fib+hash minus "
		       "floor+fib). A SYN of a flow never seen before costs %.0f ns more than the "
		       "same SYN repeated (same decision, warm cache lines); remembering a flow "
		       "in probation (mid-flow miss) costs %.0f ns more than a SYN, which "
		       "remembers nothing, and promoting it (its next packet: the session "
		       "entry) %.0f ns more than that.\n",
		       h->ns[P_FLOWPIN] - h->ns[P_FLOOR], h->ns[P_FLOOR_FIB] - h->ns[P_FLOOR],
		       s6->ns[P_FLOOR_FIB] - s6->ns[P_FLOOR],
		       h->ns[P_FLOOR_FIB_HASH] - h->ns[P_FLOOR_FIB],
		       syn->ns[P_FLOWPIN] - warm->ns[P_FLOWPIN],
		       miss->ns[P_FLOWPIN] - syn->ns[P_FLOWPIN],
		       promo->ns[P_FLOWPIN] - miss->ns[P_FLOWPIN]);
		printf("\nThe session hit above is answered by the per-CPU flow cache (an "
		       "established flow seen on this CPU within the last second: no VIP or "
		       "session hash lookup). Without it (two flows sharing a cache slot) a "
		       "session hit costs %.0f ns (%.1fx the floor); a different established flow "
		       "every run, whose session entry and cache slot are cold, as on a node "
		       "holding many flows, costs %.0f ns (%.1fx).\n",
		       lru->ns[P_FLOWPIN] - lru->ns[P_EMPTY],
		       (lru->ns[P_FLOWPIN] - lru->ns[P_EMPTY]) /
			       (lru->ns[P_FLOOR] - lru->ns[P_EMPTY]),
		       many->ns[P_FLOWPIN] - many->ns[P_EMPTY],
		       (many->ns[P_FLOWPIN] - many->ns[P_EMPTY]) /
			       (many->ns[P_FLOOR] - many->ns[P_EMPTY]));
	}
	{
		const struct path *plain = &paths[9], *aes = &paths[10], *udp = &paths[11],
				  *hit_off = &paths[4], *hit_on = &paths[12];
		double off = hit_off->ns[P_FLOWPIN] - hit_off->ns[P_EMPTY],
		       on = hit_on->ns[P_FLOWPIN] - hit_on->ns[P_EMPTY];

		printf("\nQUIC-LB (issue 12): on a session miss, step 3 costs %.0f ns with a "
		       "plaintext CID and %.0f ns with a single-pass AES CID (bpf_crypto_decrypt) "
		       "over the same UDP miss to a VIP without quic_lb (%.1fx and %.1fx that "
		       "miss). The session hit with quic_lb on costs %.0f ns, off %.0f ns (%.2fx): "
		       "the same instructions (the flow cache answers before step 2 and step 3 "
		       "runs on a miss only), so a ratio away from 1 is this run's noise.\n",
		       plain->ns[P_FLOWPIN] - udp->ns[P_FLOWPIN],
		       aes->ns[P_FLOWPIN] - udp->ns[P_FLOWPIN],
		       (plain->ns[P_FLOWPIN] - plain->ns[P_EMPTY]) /
			       (udp->ns[P_FLOWPIN] - udp->ns[P_EMPTY]),
		       (aes->ns[P_FLOWPIN] - aes->ns[P_EMPTY]) /
			       (udp->ns[P_FLOWPIN] - udp->ns[P_EMPTY]),
		       on, off, on / off);
	}
	{
		const struct path *hit = &paths[13], *forged = &paths[14], *miss = &paths[15],
				  *on = &paths[16], *off = &paths[17];
		double m = miss->ns[P_FLOWPIN] - miss->ns[P_EMPTY],
		       h = hit->ns[P_FLOWPIN] - hit->ns[P_EMPTY],
		       f = forged->ns[P_FLOWPIN] - forged->ns[P_EMPTY],
		       son = on->ns[P_FLOWPIN] - on->ns[P_EMPTY],
		       soff = off->ns[P_FLOWPIN] - off->ns[P_EMPTY];

		printf("\nTCP tickets (step 3, flowpin/ticket.h): a session miss whose ticket "
		       "names "
		       "a live backend costs %.0f ns, the same miss to a VIP without tickets %.0f "
		       "ns (%.2fx; the ticket replaces the bucket lookup: option walk and "
		       "SipHash-1-3 of the flow instead); a forged ticket (names no backend: the "
		       "decode, then the normal path) %.0f ns (%.2fx, %+.0f ns: what a forged "
		       "flood adds per packet). The session hit on a ticket VIP costs %.0f ns, on "
		       "a VIP without tickets %.0f ns (%.2fx): a session answers before step 3, "
		       "so a ratio away from 1 is this run's noise.\n",
		       h, m, h / m, f, f / m, f - m, son, soff, son / soff);
	}
	{
		const struct path *here = &paths[13], *there = &paths[18], *miss = &paths[15];
		double t = there->ns[P_FLOWPIN] - there->ns[P_EMPTY],
		       h = here->ns[P_FLOWPIN] - here->ns[P_EMPTY],
		       m = miss->ns[P_FLOWPIN] - miss->ns[P_EMPTY];

		printf("\nCross-site forwarding (docs/design.md \"Cross-site forwarding\"): a "
		       "session miss whose ticket names another site's backend, sent one hop to "
		       "that site's LB node, costs %.0f ns; the same miss naming this site's "
		       "backend %.0f ns (%.2fx); the miss to a VIP without tickets %.0f ns "
		       "(%.2fx).\n",
		       t, h, t / h, m, t / m);
	}
	printf("\n");
	err = own_mac_section(&pr, bpf_program__fd(floors[3]->progs.fp_floor), &paths[0],
			      ns.next_hop_mac);
	if (err)
		goto out;
	if (getenv("FP_BENCH_NO_BUSY")) { /* experiments: the main table only */
		rc = 0;
		goto out;
	}
	err = busy_node(cfg, &opts, &pr, paths[1].ns[P_FLOWPIN] - paths[1].ns[P_EMPTY],
			paths[8].ns[P_FLOWPIN] - paths[8].ns[P_EMPTY]);
	if (err)
		goto out;
	rc = 0;
out:
	for (int i = 0; i < N_PATHS; i++) {
		free(paths[i].frames);
		free(paths[i].lens);
	}
	fp_lb_close(lb);
	for (int i = 0; i < 4; i++)
		floor__destroy(floors[i]);
	empty__destroy(empty);
	fp_config_free(cfg);
	return rc;
}
