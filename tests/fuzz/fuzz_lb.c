// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the LB node's real XDP program (bpf/lb.bpf.c), loaded once through
 * lib/lb.c with a fixed config, every input run as one to eight frames through
 * BPF_PROG_TEST_RUN (tests/fuzz/packet.h: input format, mutations, coverage signal).
 *
 * Set-up as the BPF tests (tests/bpf/test_lb_fixture.h): a private network namespace
 * (lib/fibns.c) where every backend resolves to a fixed next hop through fp-test0, the
 * ingress device of every run; config A applied at load, then config B as a second
 * generation (backends added, one drained, one down), so buckets carry previous owners
 * and `full` mode attaches hop lists. Eight VIPs cover every pinning mode, both
 * families (and backends of the other family), port-0 VIPs hashing addresses.
 * Session state is cleared before each input, so an input reproduces on its own.
 *
 * Oracle: the run fails (abort, "FUZZ ORACLE: ...") when for any frame
 *  - the verdict is not DROP, PASS, TX or REDIRECT, or the test run fails;
 *  - not exactly one verdict counter (pass_*, drop_*, tx*, redirect*, icmp_too_big)
 *    moved, by one, or it is not of the verdict's kind: a packet that leaves uncounted;
 *  - XDP_PASS changed the frame;
 *  - XDP_TX/REDIRECT emitted anything but flowpin's encapsulation (flowpin/wire.h) of
 *    exactly the input's IP packet, from the node's source address, to a backend of
 *    the VIP the inner packet is for (for an ICMP error: the VIP of the flow it
 *    quotes), with every hop of the list a backend of that VIP that is not down. The
 *    TCP/UDP checksum alone may differ, when csum_completed counts it finished for a
 *    same-host sender (item 8); it must be right then;
 *  - counted icmp_too_big (item 4's answer to oversized packets), the frame sent is
 *    anything but an ICMP "fragmentation needed" / "packet too big" to the frame's
 *    source from a VIP or the node, quoting the frame's IP packet, checksum right.
 * Needs root (BPF, network namespace). FP_FUZZ_WRITE_SEEDS=DIR writes the seed frames
 * (tests/common/pkt.h) to DIR and exits, root or not.
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <flowpin/config.h>
#include <flowpin/fibns.h>
#include <flowpin/lb.h>
#include <flowpin/log.h>
#include <flowpin/maps.h>
#include <flowpin/wire.h>
#include "common/pkt.h"
#include "fuzz/oracle.h"
#include "fuzz/packet.h"

#define ENCAP_PORT FP_DEFAULT_ENCAP_PORT
/* Below one page of XDP test-run data: the program sees larger frames only in part
 * under BPF_PROG_TEST_RUN (replay refuses them, src/cmd_replay.c). */
#define MAX_FRAME 3000
#define MAX_BE	  4

struct fz_backend {
	__u32 id; /* 0: no backend in this slot */
	const char *addr;
	int in_a;		       /* in config A (B has every backend) */
	enum fp_backend_state state_b; /* state in config B (A: all active) */
};

struct fz_vip {
	const char *addr;
	__u16 port;
	__u8 proto;
	enum fp_pinning mode;
	int hash_addrs;
	struct fz_backend b[MAX_BE];
};

#define A  FP_BACKEND_ACTIVE
#define DR FP_BACKEND_DRAINING
#define DN FP_BACKEND_DOWN
static const struct fz_vip vips[] = {
	{ "198.51.100.10",
	  80,
	  IPPROTO_TCP,
	  FP_PIN_FULL,
	  0,
	  { { 1, "10.20.0.1", 1, A },
	    { 2, "10.20.0.2", 1, A },
	    { 3, "10.20.0.3", 0, A },
	    { 4, "2001:db8:20::4", 1, DN } } },
	{ "198.51.100.10",
	  0,
	  IPPROTO_UDP,
	  FP_PIN_HASH_TABLE,
	  1,
	  { { 1, "10.20.1.1", 1, A }, { 2, "2001:db8:21::2", 1, A }, { 3, "10.20.1.3", 0, A } } },
	{ "198.51.100.11",
	  443,
	  IPPROTO_TCP,
	  FP_PIN_TABLE,
	  0,
	  { { 1, "10.20.2.1", 1, A }, { 2, "10.20.2.2", 1, DR }, { 3, "10.20.2.3", 0, A } } },
	{ "2001:db8:100::10",
	  443,
	  IPPROTO_TCP,
	  FP_PIN_HASH_TABLE,
	  0,
	  { { 1, "2001:db8:23::1", 1, A },
	    { 2, "10.20.3.2", 1, A },
	    { 3, "2001:db8:23::3", 0, A } } },
	{ "2001:db8:100::10",
	  0,
	  IPPROTO_TCP,
	  FP_PIN_FULL,
	  1,
	  { { 1, "2001:db8:24::1", 1, A },
	    { 2, "2001:db8:24::2", 1, DN },
	    { 3, "2001:db8:24::3", 0, A },
	    { 4, "2001:db8:24::4", 1, A } } },
	{ "198.51.100.12",
	  53,
	  IPPROTO_UDP,
	  FP_PIN_NONE,
	  0,
	  { { 1, "10.20.5.1", 1, A }, { 2, "10.20.5.2", 0, A } } },
	{ "198.51.100.13",
	  80,
	  IPPROTO_TCP,
	  FP_PIN_HASH,
	  0,
	  { { 1, "10.20.6.1", 1, A }, { 2, "10.20.6.2", 0, A } } },
	{ "2001:db8:100::11",
	  4433,
	  IPPROTO_UDP,
	  FP_PIN_FULL,
	  0,
	  { { 1, "2001:db8:27::1", 1, A }, { 2, "2001:db8:27::2", 0, A } } },
};
#undef A
#undef DR
#undef DN
#define N_VIPS (sizeof(vips) / sizeof(vips[0]))

static const char *const client4 = "203.0.113.5", *const client6 = "2001:db8:c::5";

static struct {
	struct fp_fibns ns;
	struct fp_lb *lb;
	struct fp_addr vip[N_VIPS];
	struct fp_addr be[N_VIPS][MAX_BE];
	struct fp_config cfg[2];
	struct fp_vip_cfg vcfg[2][N_VIPS];
	struct fp_backend_cfg bcfg[2][N_VIPS][MAX_BE];
	/* 'p' pass, 'd' drop, 't' tx, 'r' redirect, 'i' ICMP error sent back (tx); 0: other */
	char kind[FP_CNT__MAX];
} fx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

/* ---- the fixture ------------------------------------------------------------------ */

/* Config A (@which 0) or B (1), in memory, as lib/config.c would produce it. */
static void build_config(int which)
{
	struct fp_config *c = &fx.cfg[which];

	memset(c, 0, sizeof(*c));
	c->path = "fuzz.yaml";
	c->hash_key = (struct fp_hash_key){ 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };
	c->table_size = 1031;
	c->share_tolerance = 1; /* the loader's default, FP_DEFAULT_SHARE_TOLERANCE */
	c->encap_port = ENCAP_PORT;
	c->timeouts.tcp_established = 7200;
	c->timeouts.tcp_transitory = 30;
	c->timeouts.udp = 300;
	c->vips = fx.vcfg[which];
	c->n_vips = N_VIPS;
	for (size_t i = 0; i < N_VIPS; i++) {
		struct fp_vip_cfg *v = &fx.vcfg[which][i];

		memset(v, 0, sizeof(*v));
		snprintf(v->name, sizeof(v->name), "vip%zu", i);
		v->addr = fx.vip[i];
		v->port = vips[i].port;
		v->proto = vips[i].proto;
		v->pinning = vips[i].mode;
		v->hash_addresses_only = vips[i].hash_addrs;
		v->backends = fx.bcfg[which][i];
		v->line = (int)i + 1;
		for (size_t j = 0; j < MAX_BE; j++) {
			const struct fz_backend *fb = &vips[i].b[j];
			struct fp_backend_cfg *b = &v->backends[v->n_backends];

			if (!fb->id || (which == 0 && !fb->in_a))
				continue;
			b->id = fb->id;
			b->addr = fx.be[i][j];
			b->weight = 100;
			b->state = which ? fb->state_b : FP_BACKEND_ACTIVE;
			b->line = 100 + (int)j;
			v->n_backends++;
		}
	}
}

static void setup(void)
{
	struct fp_lb_opts opts = {};
	cpu_set_t one;
	__u32 gen = 0;

	fp_log_route_libbpf();
	/* One CPU: per-CPU state (round robin, LRU lists, caches) then stays predictable. */
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		FUZZ_FAIL("sched_setaffinity: %s", strerror(errno));
	if (fp_fibns_enter(NULL, &fx.ns))
		FUZZ_FAIL("cannot build the network namespace");
	build_config(0);
	build_config(1);
	memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
	memcpy(opts.source_v4.a + 12, fx.ns.own_v4, 4);
	memcpy(opts.source_v6.a, fx.ns.own_v6, 16);
	opts.have_source_v4 = opts.have_source_v6 = true;
	opts.session_entries = 4096;
	opts.new_flow_rate = UINT32_MAX;
	if (fp_lb_open(&fx.cfg[0], &opts, &fx.lb))
		FUZZ_FAIL("cannot load the LB program with config A");
	if (fp_lb_apply(fx.lb, &fx.cfg[1], &gen))
		FUZZ_FAIL("cannot apply config B");
	for (int c = 0; c < FP_CNT__MAX; c++) {
		const char *n = fp_counter_names[c];

		if (!strncmp(n, "pass_", 5))
			fx.kind[c] = 'p';
		else if (!strncmp(n, "drop_", 5))
			fx.kind[c] = 'd';
		else if (!strcmp(n, "tx") || !strncmp(n, "tx_", 3))
			fx.kind[c] = 't';
		else if (!strcmp(n, "icmp_too_big")) /* XDP_TX of an ICMP error (item 4) */
			fx.kind[c] = 'i';
		else if (!strncmp(n, "redirect", 8))
			fx.kind[c] = 'r';
	}
}

/* ---- the oracle -------------------------------------------------------------------- */

static int addr_eq(const struct fp_addr *a, const uint8_t *p, int v6)
{
	return v6 ? !fp_addr_v4(a) && !memcmp(a->a, p, 16)
		  : fp_addr_v4(a) && !memcmp(a->a + 12, p, 4);
}

/*
 * The VIP the LB serves an inner IP packet as, by the config (not by the program):
 * (destination, port, protocol), else (destination, 0, protocol); fragments only the
 * port-0 VIP; an ICMP error the VIP of the flow it quotes. -1: none.
 */
static int vip_of(const uint8_t *p, size_t n)
{
	struct fz_ip ip, q;
	const uint8_t *addr;
	int port = -1, v6;
	uint8_t proto;

	if (fz_parse_ip(p, n, &ip))
		return -1;
	v6 = ip.v6;
	if ((ip.proto == IPPROTO_ICMP || ip.proto == IPPROTO_ICMPV6) && !ip.fragment) {
		/*
		 * The quoted packet is a reply: VIP -> client. Read as the program reads it
		 * (parse_icmp_error()): an IPv6 quote is taken at fixed offsets, whatever its
		 * version field says, its extension headers not walked.
		 */
		const uint8_t *qh = p + ip.l4 + 8;
		size_t ql = ip.l4 + 8 < n ? n - ip.l4 - 8 : 0;

		if (!v6) {
			if (fz_parse_ip(qh, ql, &q) || q.v6)
				return -1;
		} else {
			if (ql < 40)
				return -1;
			memset(&q, 0, sizeof(q));
			q.v6 = 1;
			q.src = qh + 8;
			q.proto = qh[6];
			q.l4 = 40;
		}
		addr = q.src;
		proto = q.proto;
		/* A quoted first fragment has its ports (fp_ipv4_has_l4()). */
		if (!q.later_fragment && q.l4 + 2 <= ql)
			port = fz_get16(qh + q.l4);
	} else {
		addr = ip.dst;
		proto = ip.proto;
		if (!ip.fragment && ip.l4 + 4 <= n)
			port = fz_get16(p + ip.l4 + 2);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < N_VIPS; i++) {
			if (vips[i].proto != proto || !addr_eq(&fx.vip[i], addr, v6))
				continue;
			if (pass == 0 && port >= 0 && vips[i].port == port)
				return (int)i;
			if (pass == 1 && vips[i].port == 0)
				return (int)i;
		}
	}
	return -1;
}

/* Is @p (4 or 16 bytes) a backend of VIP @v that may receive packets (not down)? */
static int allowed_backend(int v, const uint8_t *p, int v6, uint32_t *id)
{
	for (size_t j = 0; j < MAX_BE; j++) {
		if (!vips[v].b[j].id || vips[v].b[j].state_b == FP_BACKEND_DOWN)
			continue;
		if (addr_eq(&fx.be[v][j], p, v6)) {
			*id = vips[v].b[j].id;
			return 1;
		}
	}
	return 0;
}

static const char *hex(const uint8_t *p, size_t n)
{
	static char s[3 * 64 + 1];
	size_t o = 0;

	for (size_t i = 0; i < n && i < 64; i++)
		o += (size_t)snprintf(s + o, sizeof(s) - o, "%02x", p[i]);
	return s;
}

/*
 * An ICMP "frag needed" / "packet too big" from the node or a VIP to the frame's source,
 * quoting the start of the frame's IP packet, with a right checksum.
 */
static int icmp_too_big_reply(const uint8_t *in, size_t in_len, const uint8_t *out, size_t out_len)
{
	uint16_t et_in = 0, et_out = 0;
	size_t l3_in = fz_l3(in, in_len, &et_in), l3_out = fz_l3(out, out_len, &et_out);
	struct fz_ip ii, oi;
	const uint8_t *icmp;
	size_t icmp_len, quote;
	int from_ok = 0;
	__u32 sum;

	if (!l3_in || !l3_out || fz_parse_ip(in + l3_in, in_len - l3_in, &ii) ||
	    fz_parse_ip(out + l3_out, out_len - l3_out, &oi) || ii.v6 != oi.v6)
		return 0;
	if (oi.l4 + 8 > out_len - l3_out)
		return 0;
	icmp = out + l3_out + oi.l4;
	if (!oi.v6 && !(oi.proto == IPPROTO_ICMP && icmp[0] == 3 && icmp[1] == 4))
		return 0;
	if (oi.v6 && !(oi.proto == IPPROTO_ICMPV6 && icmp[0] == 2 && icmp[1] == 0))
		return 0;
	if (memcmp(oi.dst, ii.src, oi.v6 ? 16 : 4))
		return 0;
	for (size_t i = 0; i < N_VIPS; i++)
		from_ok |= addr_eq(&fx.vip[i], oi.src, oi.v6);
	from_ok |= !memcmp(oi.src, oi.v6 ? fx.ns.own_v6 : fx.ns.own_v4, oi.v6 ? 16 : 4);
	if (!from_ok)
		return 0;
	/* It quotes the start of the input's IP packet, and its checksum is right. */
	icmp_len = out_len - l3_out - oi.l4;
	quote = icmp_len - 8;
	if (oi.l4 + icmp_len != oi.len || quote > ii.len || l3_in + quote > in_len ||
	    memcmp(icmp + 8, in + l3_in, quote))
		return 0;
	sum = fp_csum_add(0, icmp, icmp_len);
	if (oi.v6) {
		uint8_t len_be[4] = { 0, 0, (uint8_t)(icmp_len >> 8), (uint8_t)icmp_len };

		sum = fp_csum_add(sum, oi.src, 16);
		sum = fp_csum_add(sum, oi.dst, 16);
		sum = fp_csum_add(sum, len_be, 4);
		sum += IPPROTO_ICMPV6;
	}
	return fp_csum_fold(sum) == 0;
}

/*
 * XDP_TX/REDIRECT output: flowpin's encapsulation of exactly the input's IP packet to
 * backends of the inner packet's VIP. Fails the run otherwise.
 */
static void check_encap(const uint8_t *in, size_t in_len, const uint8_t *out, size_t n, int frame,
			int completed)
{
	static const uint8_t zero[16];
	uint16_t et = 0, et_in = 0;
	size_t l3_in, hop_size, off, inner_len, ip_len, csum_off;
	const uint8_t *udp, *gue, *priv, *hops, *inner, *dst;
	uint32_t id;
	int v6, vip, count;
	struct fz_ip ii;

	if (n < 14)
		FUZZ_FAIL("frame %d: TX of %zu bytes", frame, n);
	et = fz_get16(out + 12);
	if (et != 0x0800 && et != 0x86dd) {
		FUZZ_FAIL("frame %d: TX of EtherType %04x, not an encapsulated packet", frame, et);
	}
	if (memcmp(out, fx.ns.next_hop_mac, 6) || memcmp(out + 6, fx.ns.own_mac, 6))
		FUZZ_FAIL("frame %d: TX with MACs %s, not the next hop's", frame, hex(out, 12));
	v6 = et == 0x86dd;
	if (!v6) {
		const uint8_t *ip = out + 14;
		uint8_t copy[20];

		if (n < 14 + 20 || ip[0] != 0x45 || ip[9] != IPPROTO_UDP ||
		    fz_get16(ip + 2) != n - 14 || (fz_get16(ip + 6) & 0xbfff) != 0)
			FUZZ_FAIL("frame %d: TX: outer IPv4 header %s", frame, hex(ip, 20));
		memcpy(copy, ip, 20);
		fp_pkt_ipv4_fix_csum(copy);
		if (memcmp(copy + 10, ip + 10, 2))
			FUZZ_FAIL("frame %d: TX: outer IPv4 checksum wrong", frame);
		if (memcmp(ip + 12, fx.ns.own_v4, 4))
			FUZZ_FAIL("frame %d: TX from %s, not the node's address", frame,
				  hex(ip + 12, 4));
		dst = ip + 16;
		udp = ip + 20;
	} else {
		const uint8_t *ip = out + 14;

		if (n < 14 + 40 || ip[0] >> 4 != 6 || ip[6] != IPPROTO_UDP ||
		    fz_get16(ip + 4) != n - 54)
			FUZZ_FAIL("frame %d: TX: outer IPv6 header %s", frame, hex(ip, 40));
		if (memcmp(ip + 8, fx.ns.own_v6, 16))
			FUZZ_FAIL("frame %d: TX from %s, not the node's address", frame,
				  hex(ip + 8, 16));
		dst = ip + 24;
		udp = ip + 40;
	}
	hop_size = v6 ? 16 : 4;
	off = (size_t)(udp - out);
	if (off + 8 + 4 + 8 + hop_size > n)
		FUZZ_FAIL("frame %d: TX: %zu bytes, too short for the encapsulation", frame, n);
	if (fz_get16(udp + 2) != ENCAP_PORT || fz_get16(udp + 4) != n - off)
		FUZZ_FAIL("frame %d: TX: UDP header %s", frame, hex(udp, 8));
	gue = udp + 8;
	priv = gue + 4;
	hops = priv + 8;
	count = priv[2];
	if (priv[0] != FP_PRIV_TYPE_HOPS || priv[1] != 0 || count < 1 || count > FP_MAX_HOPS ||
	    priv[3] != (v6 ? FP_PRIV_FLAG_V6 : 0) || gue[0] != fp_gue_hlen((__u8)count, v6) ||
	    fz_get16(gue + 2) != FP_GUE_FLAG_PRIV)
		FUZZ_FAIL("frame %d: TX: GUE header and private word %s", frame, hex(gue, 12));
	inner = hops + count * hop_size;
	if (inner > out + n)
		FUZZ_FAIL("frame %d: TX: hop list past the end", frame);
	inner_len = (size_t)(out + n - inner);
	if (gue[1] != (inner_len && inner[0] >> 4 == 6 ? IPPROTO_IPV6 : IPPROTO_IPIP))
		FUZZ_FAIL("frame %d: TX: GUE protocol %u for an IPv%d packet", frame, gue[1],
			  inner_len ? inner[0] >> 4 : 0);
	if (memcmp(hops, dst, hop_size))
		FUZZ_FAIL("frame %d: TX: outer destination %s is not hops[0]", frame,
			  hex(dst, hop_size));

	/*
	 * Exactly the IP packet that came in: nothing added, nothing cut, nothing changed;
	 * but the TCP/UDP checksum when csum_completed says it finished one a same-host
	 * sender left to offload (item 8), and then that checksum must be right.
	 */
	l3_in = fz_l3(in, in_len, &et_in);
	if (!l3_in || fz_parse_ip(in + l3_in, in_len - l3_in, &ii))
		FUZZ_FAIL("frame %d: TX of a frame that is not IP", frame);
	ip_len = ii.len;
	if (inner_len != ip_len || l3_in + ip_len > in_len)
		FUZZ_FAIL("frame %d: TX: the inner packet (%zu bytes) is not the input's IP "
			  "packet (%zu bytes at %zu)",
			  frame, inner_len, ip_len, l3_in);
	csum_off = ii.proto == IPPROTO_TCP ? 16 : ii.proto == IPPROTO_UDP ? 6 : 0;
	for (size_t i = 0; i < inner_len; i++) {
		if (inner[i] == in[l3_in + i])
			continue;
		if (!completed || !csum_off || (i != ii.l4 + csum_off && i != ii.l4 + csum_off + 1))
			FUZZ_FAIL("frame %d: TX: byte %zu of the inner packet changed (%02x -> "
				  "%02x)%s",
				  frame, i, in[l3_in + i], inner[i],
				  completed ? ", not the L4 checksum" : "");
	}
	if (completed) {
		uint8_t len_be[4] = { 0, 0, (uint8_t)((inner_len - ii.l4) >> 8),
				      (uint8_t)(inner_len - ii.l4) };
		__u32 sum;

		if (!csum_off || ii.fragment || ii.l4 + csum_off + 2 > inner_len)
			FUZZ_FAIL("frame %d: csum_completed for a packet without a TCP/UDP "
				  "checksum",
				  frame);
		sum = fp_csum_add(0, inner + ii.l4, inner_len - ii.l4);
		sum = fp_csum_add(sum, ii.src, ii.v6 ? 16 : 4);
		sum = fp_csum_add(sum, ii.dst, ii.v6 ? 16 : 4);
		sum = fp_csum_add(sum, len_be, 4);
		sum += ii.proto;
		if (fp_csum_fold(sum) != 0)
			FUZZ_FAIL("frame %d: csum_completed, but the TCP/UDP checksum is wrong",
				  frame);
	}

	vip = vip_of(inner, inner_len);
	if (vip < 0)
		FUZZ_FAIL("frame %d: TX of a packet that is for no VIP of the config", frame);
	for (int i = 0; i < count; i++) {
		const uint8_t *h = hops + i * hop_size;

		if (!memcmp(h, zero, hop_size) || !allowed_backend(vip, h, v6, &id))
			FUZZ_FAIL("frame %d: TX: hops[%d] = %s is not a live backend of vip%d",
				  frame, i, hex(h, hop_size), vip);
		fz_feature(3072 + (unsigned int)vip * 16 + id * 2 + (unsigned int)i);
	}
	fz_feature(3584 + (unsigned int)count * 2 + (unsigned int)v6);
}

/* One frame through the program, and the oracle. Returns the verdict counter. */
static int run_frame(const uint8_t *in, size_t len, int frame, int prev)
{
	static uint8_t out[FZ_FRAME_CAP + 512];
	__u64 before[FP_CNT__MAX], after[FP_CNT__MAX];
	struct xdp_md ctx = { .data = 0,
			      .data_end = (__u32)len,
			      .ingress_ifindex = (__u32)fx.ns.ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err, verdict = -1, moved = 0, slot = frame < 7 ? frame : 7, completed = 0;
	char want;

	if (fp_lb_read_counters(fx.lb, before))
		FUZZ_FAIL("cannot read the counters");
	err = bpf_prog_test_run_opts(fp_lb_prog_fd(fx.lb), &o);
	if (err)
		FUZZ_FAIL("frame %d: test run of %zu bytes failed: %s", frame, len, strerror(-err));
	if (fp_lb_read_counters(fx.lb, after))
		FUZZ_FAIL("cannot read the counters");

	for (int c = 0; c < FP_CNT__MAX; c++) {
		__u64 d = after[c] - before[c];

		if (!d)
			continue;
		if (fx.kind[c]) {
			if (d != 1)
				FUZZ_FAIL("frame %d: verdict counter %s moved by %llu", frame,
					  fp_counter_names[c], (unsigned long long)d);
			verdict = c;
			moved++;
		} else {
			fz_feature(1024 + (unsigned int)c * 8 + (unsigned int)slot);
			completed |= !strcmp(fp_counter_names[c], "csum_completed");
		}
	}
	if (moved != 1)
		FUZZ_FAIL("frame %d: %d verdict counters moved (a packet must have exactly one)",
			  frame, moved);
	switch (o.retval) {
	case XDP_DROP:
		want = 'd';
		break;
	case XDP_PASS:
		want = 'p';
		break;
	case XDP_TX:
		want = 't';
		break;
	case XDP_REDIRECT:
		want = 'r';
		break;
	default:
		FUZZ_FAIL("frame %d: verdict %u (XDP_ABORTED or unknown)", frame, o.retval);
	}
	if (fx.kind[verdict] != want && !(want == 't' && fx.kind[verdict] == 'i'))
		FUZZ_FAIL("frame %d: verdict %u counted as %s", frame, o.retval,
			  fp_counter_names[verdict]);
	fz_feature((unsigned int)verdict * 8 + (unsigned int)slot);
	fz_feature(256 + (unsigned int)(prev + 1) * 32 + (unsigned int)verdict);

	if (o.retval == XDP_PASS && (o.data_size_out != len || memcmp(in, out, len)))
		FUZZ_FAIL("frame %d: XDP_PASS changed the frame (%zu -> %u bytes)", frame, len,
			  o.data_size_out);
	if (fx.kind[verdict] == 'i') {
		if (!icmp_too_big_reply(in, len, out, o.data_size_out))
			FUZZ_FAIL("frame %d: %s, but the frame sent is no ICMP error to the "
				  "client from a VIP or the node: %s",
				  frame, fp_counter_names[verdict], hex(out, o.data_size_out));
		fz_feature(3600);
	} else if (o.retval == XDP_TX || o.retval == XDP_REDIRECT) {
		check_encap(in, len, out, o.data_size_out, frame, completed);
	}
	return verdict;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_frames f;
	int prev = -1;

	fz_split(data, size, &f, MAX_FRAME);
	if (fp_lb_clear_sessions(fx.lb))
		FUZZ_FAIL("cannot clear the session table");
	for (size_t i = 0; i < f.n; i++) {
		if (f.len[i] < 14) /* the test run refuses less than an Ethernet header */
			continue;
		prev = run_frame(f.buf[i], f.len[i], (int)i, prev);
	}
	return 0;
}

/* ---- structure-aware mutations ------------------------------------------------------ */

/* Points the frame's IP packet at a VIP of its family: address, protocol, port. */
static void retarget(uint8_t *fr, size_t n, uint32_t *r)
{
	uint16_t et = 0;
	size_t l3 = fz_l3(fr, n, &et);
	struct fz_ip ip;
	const struct fz_vip *v;
	size_t tries = 0, i;

	if (!l3 || fz_parse_ip(fr + l3, n - l3, &ip))
		return;
	do {
		i = fz_rand(r) % N_VIPS;
	} while (fp_addr_v4(&fx.vip[i]) == ip.v6 && ++tries < 32);
	if (fp_addr_v4(&fx.vip[i]) == ip.v6)
		return;
	v = &vips[i];
	memcpy((uint8_t *)ip.dst, ip.v6 ? fx.vip[i].a : fx.vip[i].a + 12, ip.v6 ? 16 : 4);
	if (!ip.v6)
		fr[l3 + 9] = v->proto;
	else if (ip.l4 == 40)
		fr[l3 + 6] = v->proto;
	if (!ip.later_fragment && l3 + ip.l4 + 4 <= n)
		fz_put16(fr + l3 + ip.l4 + 2, v->port ? v->port : (uint16_t)fz_rand(r));
}

static void set_tcp_flags(uint8_t *fr, size_t n, uint32_t *r)
{
	static const uint8_t flags[] = {
		0x02, 0x10, 0x12, 0x04, 0x14, 0x01, 0x11, 0x18, 0x00, 0xff
	};
	uint16_t et = 0;
	size_t l3 = fz_l3(fr, n, &et);
	struct fz_ip ip;

	if (!l3 || fz_parse_ip(fr + l3, n - l3, &ip) || ip.proto != IPPROTO_TCP ||
	    l3 + ip.l4 + 14 > n)
		return;
	fr[l3 + ip.l4 + 13] = flags[fz_rand(r) % sizeof(flags)];
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	static struct fz_frames f;
	uint32_t r = seed | 1;
	size_t i, n;

	fz_split(data, size, &f, MAX_FRAME);
	if (!f.n) {
		f.n = 1;
		f.len[0] = 0;
	}
	i = fz_rand(&r) % f.n;
	switch (fz_rand(&r) % 10) {
	case 0: /* the same flow again (flags or payload change later) */
		if (f.n < FZ_MAX_FRAMES) {
			memcpy(f.buf[f.n], f.buf[i], f.len[i]);
			f.len[f.n] = f.len[i];
			i = f.n++;
		}
		break;
	case 1:
		if (f.n > 1) {
			memmove(&f.buf[i], &f.buf[i + 1], (f.n - i - 1) * sizeof(f.buf[0]));
			memmove(&f.len[i], &f.len[i + 1], (f.n - i - 1) * sizeof(f.len[0]));
			f.n--;
			i = 0;
		}
		break;
	case 2:
		set_tcp_flags(f.buf[i], f.len[i], &r);
		break;
	case 3:
		retarget(f.buf[i], f.len[i], &r);
		break;
	default:
		f.len[i] = LLVMFuzzerMutate(f.buf[i], f.len[i], MAX_FRAME);
		break;
	}
	if (fz_rand(&r) % 4)
		fz_repair(f.buf[i], f.len[i], ENCAP_PORT);
	n = fz_join(&f, data, max_size);
	return n ? n : (max_size ? (data[0] = 0, 1) : 0);
}

/* ---- seeds ---------------------------------------------------------------------------- */

static struct fp_pkt_spec spec_to(size_t vip, const char *client, __u16 sport, __u8 flags)
{
	struct fp_pkt_spec s = { 0 };

	s.src = fp_pkt_addr(client);
	s.dst = fp_pkt_addr(vips[vip].addr);
	s.proto = vips[vip].proto;
	s.sport = sport;
	s.dport = vips[vip].port ? vips[vip].port : 8080;
	s.tcp_flags = flags;
	s.seq = 1000;
	s.ack = 2000;
	s.payload_len = flags & FP_TCP_SYN ? 0 : 64;
	return s;
}

static const char *client_of(size_t vip)
{
	return fp_addr_v4(&fx.vip[vip]) ? client4 : client6;
}

/* Appends the frame of @s to @f. */
static void add(struct fz_frames *f, const struct fp_pkt_spec *s)
{
	int n = fp_pkt_build(s, f->buf[f->n], FZ_FRAME_CAP);

	if (n <= 0 || f->n >= FZ_MAX_FRAMES) {
		fprintf(stderr, "seed frame does not build (%d)\n", n);
		exit(1);
	}
	f->len[f->n++] = (size_t)n;
}

static void save(const char *dir, const char *name, struct fz_frames *f)
{
	static uint8_t buf[FZ_MAX_FRAMES * (FZ_FRAME_CAP + 2)];
	size_t n = fz_join(f, buf, sizeof(buf));

	if (fz_write_seed(dir, name, buf, n))
		exit(1);
	f->n = 0;
}

/* An ICMP error from a router about a reply of VIP @vip to its client. */
static void add_icmp_error(struct fz_frames *f, size_t vip)
{
	struct fp_pkt_spec reply = { 0 }, s = { 0 };
	uint8_t frame[256];
	int v6 = !fp_addr_v4(&fx.vip[vip]), n;

	reply.src = fp_pkt_addr(vips[vip].addr);
	reply.dst = fp_pkt_addr(client_of(vip));
	reply.proto = vips[vip].proto;
	reply.sport = vips[vip].port ? vips[vip].port : 8080;
	reply.dport = 40000;
	reply.tcp_flags = FP_TCP_ACK;
	reply.payload_len = 16;
	n = fp_pkt_build(&reply, frame, sizeof(frame));
	s.src = fp_pkt_addr(v6 ? "2001:db8:ee::1" : "192.0.2.254");
	s.dst = reply.src;
	s.proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	s.icmp_type = v6 ? 2 : 3;
	s.icmp_code = v6 ? 0 : 4;
	s.icmp_rest = 1400;
	s.payload = frame + 14;
	s.payload_len = (size_t)n - 14;
	add(f, &s);
}

static void write_seeds(const char *dir)
{
	static struct fz_frames f;
	char name[64];

	for (size_t v = 0; v < N_VIPS; v++) {
		const char *c = client_of(v);
		struct fp_pkt_spec s;

		if (vips[v].proto == IPPROTO_TCP) {
			s = spec_to(v, c, 40000, FP_TCP_SYN);
			add(&f, &s);
			snprintf(name, sizeof(name), "vip%zu-syn", v);
			save(dir, name, &f);
			/* A whole connection: handshake, data, close. */
			s = spec_to(v, c, 40001, FP_TCP_SYN);
			add(&f, &s);
			s = spec_to(v, c, 40001, FP_TCP_ACK);
			add(&f, &s);
			s = spec_to(v, c, 40001, FP_TCP_ACK | FP_TCP_PSH);
			add(&f, &s);
			s = spec_to(v, c, 40001, FP_TCP_FIN | FP_TCP_ACK);
			add(&f, &s);
			snprintf(name, sizeof(name), "vip%zu-connection", v);
			save(dir, name, &f);
			/* Mid-flow (no session: hop lists in full mode), then RST and SYN. */
			s = spec_to(v, c, 40002, FP_TCP_ACK);
			add(&f, &s);
			add(&f, &s);
			s = spec_to(v, c, 40002, FP_TCP_RST);
			add(&f, &s);
			s = spec_to(v, c, 40002, FP_TCP_SYN);
			add(&f, &s);
			s = spec_to(v, c, 40002, FP_TCP_ACK);
			add(&f, &s);
			snprintf(name, sizeof(name), "vip%zu-rst-syn", v);
			save(dir, name, &f);
		} else {
			for (int k = 0; k < 3; k++) {
				s = spec_to(v, c, 40000, 0);
				s.payload_len = 32 + 100 * (size_t)k;
				add(&f, &s);
			}
			snprintf(name, sizeof(name), "vip%zu-udp", v);
			save(dir, name, &f);
		}
		/* Every flow from a new client: table mode's round robin. */
		for (int k = 0; k < 4; k++) {
			s = spec_to(v, c, (__u16)(41000 + k), FP_TCP_SYN);
			add(&f, &s);
		}
		snprintf(name, sizeof(name), "vip%zu-new-flows", v);
		save(dir, name, &f);
		add_icmp_error(&f, v);
		snprintf(name, sizeof(name), "vip%zu-icmp-too-big", v);
		save(dir, name, &f);
		if (vips[v].hash_addrs) {
			s = spec_to(v, c, 40003, 0);
			s.fragment = 1;
			s.more_fragments = 1;
			s.payload_len = 64;
			add(&f, &s);
			s.frag_offset = 72;
			s.more_fragments = 0;
			add(&f, &s);
			snprintf(name, sizeof(name), "vip%zu-fragments", v);
			save(dir, name, &f);
		}
	}
	{
		struct fp_pkt_spec s = spec_to(0, client4, 40010, FP_TCP_SYN);

		s.n_vlan = 1;
		s.vlan_id[0] = 10;
		add(&f, &s);
		s.n_vlan = 2;
		s.vlan_id[1] = 20;
		add(&f, &s);
		s.n_vlan = 0;
		s.ip_options = 8;
		s.tcp_flags = FP_TCP_ACK;
		add(&f, &s);
		save(dir, "vlan-options", &f);

		s = spec_to(3, client6, 40011, FP_TCP_ACK);
		s.n_hbh = 1;
		s.n_dest = 1;
		add(&f, &s);
		save(dir, "ipv6-extension-headers", &f);

		/* IPv6 to the IPv4-mapped form of an IPv4 VIP: dropped, never served. */
		s = spec_to(3, client6, 40012, FP_TCP_SYN);
		s.dport = vips[0].port;
		add(&f, &s); /* pkt.h builds no IPv6 packet to a mapped address: patch it */
		memcpy(f.buf[0] + 14 + 24, fx.vip[0].a, 16);
		save(dir, "ipv6-mapped-vip", &f);

		s = spec_to(0, client4, 40013, 0);
		s.proto = IPPROTO_ICMP;
		s.icmp_type = 8;
		add(&f, &s);
		s = spec_to(0, client4, 40013, FP_TCP_ACK);
		s.dst = fp_pkt_addr("192.0.2.77");
		add(&f, &s);
		s = spec_to(1, client4, 40014, 0);
		s.dport = ENCAP_PORT;
		add(&f, &s);
		save(dir, "not-served", &f);
	}
	/* Full-size packets that no longer fit once encapsulated (item 4: ICMP back). */
	for (size_t v = 0; v < N_VIPS; v += 3) {
		struct fp_pkt_spec s = spec_to(v, client_of(v), 40020, FP_TCP_ACK);

		s.payload_len = fp_addr_v4(&fx.vip[v]) ? 1460 : 1440;
		add(&f, &s);
		s.payload_len = 2400;
		add(&f, &s);
	}
	save(dir, "too-big", &f);

	/* Not IP: an ARP request. */
	f.len[0] = 42;
	memset(f.buf[0], 0xff, 6);
	memcpy(f.buf[0] + 6, "\x02\x00\x00\x00\x00\x01\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01",
	       16);
	memset(f.buf[0] + 22, 0x11, 20);
	f.n = 1;
	save(dir, "arp", &f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("FP_FUZZ_WRITE_SEEDS");

	(void)argc;
	(void)argv;
	for (size_t i = 0; i < N_VIPS; i++) {
		fx.vip[i] = fp_pkt_addr(vips[i].addr);
		for (size_t j = 0; j < MAX_BE; j++)
			if (vips[i].b[j].id)
				fx.be[i][j] = fp_pkt_addr(vips[i].b[j].addr);
	}
	if (seeds) {
		write_seeds(seeds);
		exit(0);
	}
	if (geteuid() != 0) {
		fprintf(stderr, "fuzz_lb: needs root (BPF programs, a network namespace)\n");
		exit(1);
	}
	setup();
	return 0;
}
