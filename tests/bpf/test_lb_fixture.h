/* SPDX-License-Identifier: MIT */
/*
 * Shared by the tests/bpf/test_lb*.c programs: configs built in memory, the real
 * program loaded through lib/lb.c, packets run with bpf_prog_test_run_opts inside a
 * private network namespace (flowpin/fibns.h) where every backend resolves to a fixed
 * next-hop MAC through fp-test0, the ingress device of every test run.
 *
 * Not root: every test calls skip(). Root but the namespace cannot be built: the group
 * setup fails, which cmocka reports as a failure.
 */
#ifndef FLOWPIN_TEST_LB_FIXTURE_H
#define FLOWPIN_TEST_LB_FIXTURE_H

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <flowpin/config.h>
#include <flowpin/fibns.h>
#include <flowpin/hash.h>
#include <flowpin/lb.h>
#include <flowpin/log.h>
#include <flowpin/maglev.h>
#include <flowpin/stats.h>
#include <flowpin/wire.h>
#include "common/pkt.h"

#define T_MAX_VIPS     8
#define T_MAX_BACKENDS 8

struct t_config {
	struct fp_config cfg;
	struct fp_vip_cfg vips[T_MAX_VIPS];
	struct fp_backend_cfg backends[T_MAX_VIPS][T_MAX_BACKENDS];
};

static struct fp_fibns t_ns;
static int t_root;

static const struct fp_hash_key t_key = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

static inline void t_config_init(struct t_config *t, __u32 table_size)
{
	memset(t, 0, sizeof(*t));
	t->cfg.path = "test.yaml";
	t->cfg.hash_key = t_key;
	t->cfg.table_size = table_size;
	t->cfg.share_tolerance = FP_DEFAULT_SHARE_TOLERANCE;
	t->cfg.encap_port = FP_DEFAULT_ENCAP_PORT;
	t->cfg.timeouts.tcp_established = 7200;
	t->cfg.timeouts.tcp_transitory = 30;
	t->cfg.timeouts.udp = 300;
	t->cfg.vips = t->vips;
}

static inline struct fp_vip_cfg *t_add_vip(struct t_config *t, const char *addr, __u16 port,
					   __u8 proto, enum fp_pinning mode)
{
	struct fp_vip_cfg *v;

	assert_true(t->cfg.n_vips < T_MAX_VIPS);
	v = &t->vips[t->cfg.n_vips];
	snprintf(v->name, sizeof(v->name), "vip%zu", t->cfg.n_vips);
	v->addr = fp_pkt_addr(addr);
	v->port = port;
	v->proto = proto;
	v->pinning = mode;
	v->backends = t->backends[t->cfg.n_vips];
	v->line = (int)t->cfg.n_vips + 1;
	t->cfg.n_vips++;
	return v;
}

static inline struct fp_backend_cfg *t_add_backend(struct fp_vip_cfg *v, __u32 id, const char *addr)
{
	struct fp_backend_cfg *b;

	assert_true(v->n_backends < T_MAX_BACKENDS);
	b = &v->backends[v->n_backends++];
	b->id = id;
	b->addr = fp_pkt_addr(addr);
	b->weight = 100;
	b->state = FP_BACKEND_ACTIVE;
	b->line = 100 + (int)id;
	return b;
}

/*
 * A client's packet to @v from @sport: source 198.51.100.7 or 2001:db8:c::7 (the VIP's
 * family), destination port the VIP's or 8080 for a port-0 VIP, @payload bytes.
 */
static inline struct fp_pkt_spec t_client_spec(const struct fp_vip_cfg *v, __u16 sport, __u8 flags,
					       size_t payload)
{
	struct fp_pkt_spec s = {};

	s.src = fp_pkt_addr(fp_addr_v4(&v->addr) ? "198.51.100.7" : "2001:db8:c::7");
	s.dst = v->addr;
	s.proto = v->proto;
	s.sport = sport;
	s.dport = v->port ? v->port : 8080;
	s.tcp_flags = flags;
	s.payload_len = payload;
	return s;
}

/* Packets t_run() sent through the program since the last t_open(). */
static __u64 t_runs;

static inline struct fp_lb *t_open(const struct t_config *t)
{
	struct fp_lb_opts opts = {};
	struct fp_lb *lb = NULL;

	memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
	memcpy(opts.source_v4.a + 12, t_ns.own_v4, 4);
	memcpy(opts.source_v6.a, t_ns.own_v6, 16);
	opts.have_source_v4 = opts.have_source_v6 = true;
	opts.session_entries = 65536;
	opts.new_flow_rate = UINT32_MAX;
	assert_int_equal(fp_lb_open(&t->cfg, &opts, &lb), 0);
	assert_non_null(lb);
	t_runs = 0;
	return lb;
}

/* One packet through the program. Returns the XDP verdict; *out_len the output size. */
static inline int t_run(struct fp_lb *lb, const __u8 *in, size_t len, __u8 *out, __u32 *out_len)
{
	struct xdp_md ctx = { .data = 0, .data_end = (__u32)len, .ingress_ifindex = t_ns.ifindex };
	static __u8 scratch[FP_PKT_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)len,
		    .data_out = out ? out : scratch, .data_size_out = FP_PKT_MAX, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(fp_lb_prog_fd(lb), &o), 0);
	t_runs++;
	if (out_len)
		*out_len = o.data_size_out;
	return (int)o.retval;
}

static inline int t_run_spec(struct fp_lb *lb, const struct fp_pkt_spec *s, __u8 *out,
			     __u32 *out_len)
{
	__u8 in[FP_PKT_MAX];
	int n = fp_pkt_build(s, in, sizeof(in));

	assert_true(n > 0);
	return t_run(lb, in, (size_t)n, out, out_len);
}

/* The Maglev owner table of a VIP as configured, computed independently of lib/lb.c. */
static inline void t_maglev(const struct t_config *t, const struct fp_vip_cfg *v, __u16 *table)
{
	struct fp_maglev_backend mb[T_MAX_BACKENDS];
	size_t n = 0;

	for (size_t i = 0; i < v->n_backends; i++) {
		if (v->backends[i].state == FP_BACKEND_DOWN)
			continue;
		mb[n].id = v->backends[i].id;
		mb[n].weight =
			v->backends[i].state == FP_BACKEND_ACTIVE ? v->backends[i].weight : 0;
		n++;
	}
	assert_int_equal(fp_maglev_build(mb, n, t->cfg.table_size, &t->cfg.hash_key, table), 0);
}

static inline const struct fp_backend_cfg *t_backend(const struct fp_vip_cfg *v, __u16 id)
{
	for (size_t i = 0; i < v->n_backends; i++)
		if (v->backends[i].id == id)
			return &v->backends[i];
	fail_msg("backend id %u not in vip %s", id, v->name);
	return NULL;
}

static inline __u64 t_hash(const struct fp_pkt_spec *s, int addresses_only)
{
	struct fp_flow_key key;

	fp_pkt_flow_key(s, addresses_only, &key);
	return fp_flow_hash(&t_key, &key);
}

/*
 * The exact frame the LB must emit for the packet of @s sent to @hops (backend ids of
 * @v), generation @gen. Returns its length.
 */
static inline int t_expect(const struct fp_pkt_spec *s, const struct fp_vip_cfg *v,
			   const __u16 *hops, int n_hops, __u32 gen, __u8 *buf)
{
	__u8 in[FP_PKT_MAX];
	struct fp_encap_spec e = {};
	size_t l3 = fp_pkt_l3_offset(s);
	int n = fp_pkt_build(s, in, sizeof(in)), len;

	assert_true(n > 0);
	memcpy(e.dst_mac, t_ns.next_hop_mac, 6);
	memcpy(e.src_mac, t_ns.own_mac, 6);
	e.hash = t_hash(s, v->hash_addresses_only);
	e.encap_port = FP_DEFAULT_ENCAP_PORT;
	e.hop_count = (__u8)n_hops;
	for (int i = 0; i < n_hops; i++)
		e.hops[i] = t_backend(v, hops[i])->addr;
	if (fp_addr_v4(&e.hops[0])) {
		memcpy(e.outer_src.a + 10, "\xff\xff", 2);
		memcpy(e.outer_src.a + 12, t_ns.own_v4, 4);
	} else {
		memcpy(e.outer_src.a, t_ns.own_v6, 16);
	}
	e.generation = gen;
	len = fp_pkt_encap(&e, in + l3, (size_t)n - l3, buf, FP_PKT_MAX);
	assert_true(len > 0);
	return len;
}

/* Which backends an LB output frame names: hop count and ids matched by address. */
static inline int t_hops_of(const __u8 *frame, __u32 len, const struct fp_vip_cfg *v, __u16 *hops)
{
	int v6 = frame[12] == 0x86 && frame[13] == 0xdd;
	size_t off = 14 + (v6 ? 40 : 20) + 8 + 4; /* private word */
	size_t hs = v6 ? 16 : 4;
	int count;

	assert_true(len >= off + 8);
	count = frame[off + 2];
	assert_true(count >= 1 && count <= 2);
	assert_true(len >= off + 8 + count * hs);
	for (int i = 0; i < count; i++) {
		const __u8 *a = frame + off + 8 + i * hs;

		hops[i] = 0;
		for (size_t b = 0; b < v->n_backends; b++) {
			const __u8 *ba = v->backends[b].addr.a + (v6 ? 0 : 12);

			if (!memcmp(a, ba, hs) && fp_addr_v4(&v->backends[b].addr) == !v6)
				hops[i] = (__u16)v->backends[b].id;
		}
		assert_int_not_equal(hops[i], 0);
	}
	return count;
}

static inline __u64 t_counter(struct fp_lb *lb, enum fp_counter c)
{
	__u64 all[FP_CNT__MAX];

	assert_int_equal(fp_lb_read_counters(lb, all), 0);
	return all[c];
}

/*
 * Closes @lb after checking that the decision counters (lib/stats.c fp_counter_verdict(),
 * what flowpin_lb_packets_total{verdict,reason} exports) add up to the packets run since
 * t_open(): every packet in exactly one of them. A counter classified wrongly, or a
 * verdict path that counts twice or not at all, fails here.
 */
static inline void t_close(struct fp_lb *lb)
{
	__u64 all[FP_CNT__MAX], decisions = 0;

	assert_int_equal(fp_lb_read_counters(lb, all), 0);
	for (int i = 0; i < FP_CNT__MAX; i++)
		if (fp_counter_verdict(i))
			decisions += all[i];
	if (decisions != t_runs)
		fail_msg("decision counters add up to %llu, %llu packets run",
			 (unsigned long long)decisions, (unsigned long long)t_runs);
	fp_lb_close(lb);
}

static inline int t_group_setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "# not root: every test of this program is skipped\n");
		return 0;
	}
	fp_log_route_libbpf();
	/* One CPU: per-CPU state (round robin, rate limit, LRU lists) is then predictable. */
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		return -1;
	if (fp_fibns_enter(NULL, &t_ns))
		return -1;
	t_root = 1;
	return 0;
}

/*
 * A bpffs of the test program's own, for the tests that pin: a temporary directory with
 * a bpffs mounted on it, in a private mount namespace, so the mount goes with the
 * process even if it crashes and the host never sees it. Never /sys/fs/bpf: on a
 * machine that never mounted bpffs there, nothing can be created in it. Call after
 * t_group_setup() (root only); returns 0 or -1.
 */
static char t_bpffs[64];

static inline int t_bpffs_mount(void)
{
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -1;
	snprintf(t_bpffs, sizeof(t_bpffs), "/tmp/flowpin-test-bpffs-XXXXXX");
	if (!mkdtemp(t_bpffs))
		return -1;
	if (mount("bpf", t_bpffs, "bpf", 0, "mode=0700")) {
		rmdir(t_bpffs);
		t_bpffs[0] = '\0';
		return -1;
	}
	return 0;
}

static inline void t_bpffs_unmount(void)
{
	if (!t_bpffs[0])
		return;
	umount2(t_bpffs, MNT_DETACH);
	rmdir(t_bpffs);
	t_bpffs[0] = '\0';
}

#define T_NEED_ROOT()           \
	do {                    \
		if (!t_root)    \
			skip(); \
	} while (0)

#endif
