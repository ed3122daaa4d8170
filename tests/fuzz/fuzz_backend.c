// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the backend agent's real tc program (bpf/backend.bpf.c), loaded once
 * through lib/backend.c with a fixed fleet config, every input run as one to eight
 * frames through BPF_PROG_TEST_RUN (tests/fuzz/packet.h: input format, mutations,
 * coverage signal).
 *
 * Set-up as tests/bpf/test_backend.c: a private network namespace (lib/fibns.c) where
 * the program's bpf_fib_lookup() resolves through a fixed gateway and
 * bpf_skc_lookup_tcp() finds real sockets: VIPs bound on lo, listeners on them and one
 * established connection per family from a fixed client port (so seeds can name it),
 * one configured backend behind an unreachable route.
 *
 * Oracle: the run fails (abort, "FUZZ ORACLE: ...") when for any frame
 *  - the test run fails, or the verdict is not TC_ACT_OK, TC_ACT_SHOT or
 *    TC_ACT_REDIRECT;
 *  - not exactly one counter moved, by one, or it does not match the verdict
 *    (forwarded <-> redirect, a drop reason <-> shot, a delivery <-> ok): a packet that
 *    leaves without a counter;
 *  - not_flowpin changed the frame;
 *  - a delivered frame is not exactly the input's inner packet behind the input's
 *    MACs, or was not addressed to this host (outer destination one of its addresses),
 *    or its inner destination is no VIP of the config (the stack would route it on);
 *  - a forwarded frame (second chance) goes to an address that is not a configured
 *    backend of the inner destination's VIP, or to this host, or was not addressed to
 *    this host, or differs from the input in more than MACs, outer destination, outer
 *    checksums and the hop index (advanced by one).
 *  - a reflected frame (tunnel probe, redirect counted as tunnel_probe) was not a
 *    16-byte probe request from an allowed LB source (192.0.2.0/24, 2001:db8::/64) to
 *    this host's encapsulation port, untagged, without IPv6 extension headers, from
 *    a port other than 0 and a unicast MAC, with a UDP checksum on IPv6; or it is not
 *    exactly the input with MACs, IP addresses and
 *    UDP ports swapped and the control type request -> reply; or its size differs; or
 *    its UDP checksum is not as right as the input's (same sum; none stays none on
 *    IPv4), or its IPv4 header checksum is wrong.
 * Needs root. FP_FUZZ_WRITE_SEEDS=DIR writes the seed frames to DIR and exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <flowpin/backend.h>
#include <flowpin/config.h>
#include <flowpin/fibns.h>
#include <flowpin/log.h>
#include <flowpin/tunnelprobe.h>
#include <flowpin/wire.h>
#include "common/pkt.h"
#include "fuzz/oracle.h"
#include "fuzz/packet.h"

#define ENCAP_PORT 6080
#define VIP_PORT   80
#define MAX_FRAME  3000	 /* below one page of test-run data */
#define EST_PORT   40500 /* client port of the established connections */

static const char *const vip4 = "10.100.0.1", *const vip6 = "fd00:100::1";
static const char *const vip4_other = "10.100.0.2";
static const char *const client4 = "10.200.0.5", *const client6 = "fd00:200::5";
static const char *const lb4 = "192.0.2.10", *const lb6 = "2001:db8::10";
static const char *const self4 = "192.0.2.1", *const self6 = "2001:db8::1";
static const char *const other4 = "198.51.100.2", *const other6 = "2001:db8:2::2";
static const char *const unrouted4 = "198.51.100.9";
static const char *const other_vip_backend4 = "198.51.100.3";
static const char *const stranger4 = "203.0.113.9", *const stranger6 = "2001:db8:bad::9";

/* The fleet: vip4 and vip6 served by both selves, the other hosts and an unrouted
 * backend; vip4_other by a backend of its own. */
static const char *const fleet_backends[] = { "192.0.2.1", "2001:db8::1", "198.51.100.2",
					      "2001:db8:2::2", "198.51.100.9" };
#define N_FLEET (sizeof(fleet_backends) / sizeof(fleet_backends[0]))

static struct {
	struct fp_fibns ns;
	struct fp_backend *be;
	int counters_fd;
	struct fp_backend_cfg backends[N_FLEET + 1];
	struct fp_vip_cfg vips[3];
	/* 'd' deliver, 'p' pass, 'f' forward, 'r' reflect (tunnel probe), 's' shot */
	char kind[FP_BACKEND_NR_COUNTERS];
} fx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

/* ---- the fixture ------------------------------------------------------------------ */

static void fleet_init(void)
{
	for (size_t i = 0; i < N_FLEET; i++) {
		fx.backends[i].id = (__u32)i + 1;
		fx.backends[i].addr = fp_pkt_addr(fleet_backends[i]);
		fx.backends[i].weight = 100;
	}
	fx.backends[N_FLEET].id = 1;
	fx.backends[N_FLEET].addr = fp_pkt_addr(other_vip_backend4);
	fx.backends[N_FLEET].weight = 100;
	snprintf(fx.vips[0].name, sizeof(fx.vips[0].name), "web");
	fx.vips[0].addr = fp_pkt_addr(vip4);
	fx.vips[0].port = VIP_PORT;
	fx.vips[0].proto = IPPROTO_TCP;
	fx.vips[0].backends = fx.backends;
	fx.vips[0].n_backends = N_FLEET;
	snprintf(fx.vips[1].name, sizeof(fx.vips[1].name), "web6");
	fx.vips[1].addr = fp_pkt_addr(vip6);
	fx.vips[1].port = VIP_PORT;
	fx.vips[1].proto = IPPROTO_TCP;
	fx.vips[1].backends = fx.backends;
	fx.vips[1].n_backends = N_FLEET;
	snprintf(fx.vips[2].name, sizeof(fx.vips[2].name), "other");
	fx.vips[2].addr = fp_pkt_addr(vip4_other);
	fx.vips[2].port = 0;
	fx.vips[2].proto = IPPROTO_UDP;
	fx.vips[2].backends = &fx.backends[N_FLEET];
	fx.vips[2].n_backends = 1;
}

static void sh(const char *cmd)
{
	if (system(cmd))
		FUZZ_FAIL("set-up command failed: %s", cmd);
}

static int sock_addr(const char *addr, __u16 port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
		FUZZ_FAIL("bad address %s", addr);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	*len = sizeof(*sin6);
	return AF_INET6;
}

/* A listener on @vip:80 and one connection to it from @client:EST_PORT (kept open). */
static void connection(const char *vip, const char *client)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, l, c;

	l = socket(sock_addr(vip, VIP_PORT, &ss, &len), SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&ss, len) || listen(l, 16))
		FUZZ_FAIL("listen on %s: %s", vip, strerror(errno));
	c = socket(sock_addr(client, EST_PORT, &ss, &len), SOCK_STREAM, 0);
	if (c < 0 || bind(c, (struct sockaddr *)&ss, len))
		FUZZ_FAIL("bind %s: %s", client, strerror(errno));
	sock_addr(vip, VIP_PORT, &ss, &len);
	if (connect(c, (struct sockaddr *)&ss, len) || accept(l, NULL, NULL) < 0)
		FUZZ_FAIL("connect %s -> %s: %s", client, vip, strerror(errno));
}

static void setup(void)
{
	static const char *const deliver[] = {
		"syn_local", "established_local", "syncookie_local", "last_resort", "loop_guard",
		"udp_local", "icmp_local",	  "other_local",     "no_route"
	};
	static const char *const drop[] = { "not_allowed",
					    "malformed",
					    "error",
					    "not_local",
					    "bad_checksum",
					    "not_vip",
					    "bad_hop",
					    "probe",
					    "tunnel_probe_reply",
					    "tunnel_probe_truncated",
					    "tunnel_probe_payload",
					    "control_unknown",
					    "not_our_mac" };
	struct fp_prefix sources[2];
	struct fp_addr self[2];
	struct fp_backend_opts opts = { .encap_port = ENCAP_PORT };

	fp_log_route_libbpf();
	if (fp_fibns_enter(NULL, &fx.ns))
		FUZZ_FAIL("cannot build the network namespace");
	sh("ip addr add 10.100.0.1/32 dev lo && ip addr add 10.100.0.2/32 dev lo && "
	   "ip addr add 10.200.0.5/32 dev lo && ip -6 addr add fd00:100::1/128 dev lo nodad && "
	   "ip -6 addr add fd00:200::5/128 dev lo nodad && "
	   "ip route add unreachable 198.51.100.9/32 && "
	   "echo 2 > /proc/sys/net/ipv4/tcp_syncookies");
	connection(vip4, client4);
	connection(vip6, client6);

	sources[0].addr = fp_pkt_addr("192.0.2.0");
	sources[0].len = 96 + 24;
	sources[1].addr = fp_pkt_addr("2001:db8::");
	sources[1].len = 64;
	self[0] = fp_pkt_addr(self4);
	self[1] = fp_pkt_addr(self6);
	opts.lb_sources = sources;
	opts.n_lb_sources = 2;
	opts.self_addrs = self;
	opts.n_self_addrs = 2;
	opts.vips = fx.vips;
	opts.n_vips = 3;
	if (fp_backend_load(&opts, &fx.be))
		FUZZ_FAIL("cannot load the backend program");
	fx.counters_fd = fp_backend_counters_fd(fx.be);
	/* Counters the oracle does not know (added later) may go with any verdict. */
	for (unsigned int c = 0; c < FP_BACKEND_NR_COUNTERS; c++) {
		const char *n = fp_backend_counter_name(c);

		for (size_t i = 0; i < sizeof(deliver) / sizeof(deliver[0]); i++)
			if (!strcmp(n, deliver[i]))
				fx.kind[c] = 'd';
		for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
			if (!strcmp(n, drop[i]))
				fx.kind[c] = 's';
		if (!strcmp(n, "not_flowpin"))
			fx.kind[c] = 'p';
		if (!strcmp(n, "forwarded"))
			fx.kind[c] = 'f';
		if (!strcmp(n, "tunnel_probe"))
			fx.kind[c] = 'r';
	}
}

/* ---- the oracle -------------------------------------------------------------------- */

static int addr_eq(const struct fp_addr *a, const uint8_t *p, int v6)
{
	return v6 ? !fp_addr_v4(a) && !memcmp(a->a, p, 16)
		  : fp_addr_v4(a) && !memcmp(a->a + 12, p, 4);
}

static int is_self(const uint8_t *p, int v6)
{
	struct fp_addr a = fp_pkt_addr(v6 ? self6 : self4);

	return addr_eq(&a, p, v6);
}

/* Is @hop a configured backend of a VIP at @vip (the inner destination)? */
static int backend_of(const uint8_t *vip, int vip_v6, const uint8_t *hop, int hop_v6)
{
	for (size_t v = 0; v < 3; v++) {
		const struct fp_vip_cfg *c = &fx.vips[v];

		if (!addr_eq(&c->addr, vip, vip_v6))
			continue;
		for (size_t i = 0; i < c->n_backends; i++)
			if (addr_eq(&c->backends[i].addr, hop, hop_v6))
				return 1;
	}
	return 0;
}

static int is_vip(const uint8_t *p, int v6)
{
	for (size_t v = 0; v < 3; v++)
		if (addr_eq(&fx.vips[v].addr, p, v6))
			return 1;
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

/* The encapsulation of a frame, as far as the oracle needs it. 0, or -1: not one. */
struct encap {
	struct fz_ip outer;
	size_t l3, udp, priv, hops, inner; /* offsets in the frame */
	struct fz_ip in;
};

static int parse_encap(const uint8_t *f, size_t n, struct encap *e)
{
	uint16_t et = 0;

	memset(e, 0, sizeof(*e));
	e->l3 = fz_l3(f, n, &et);
	if (e->l3 != 14 || fz_parse_ip(f + 14, n - 14, &e->outer) || e->outer.proto != 17)
		return -1;
	e->udp = 14 + e->outer.l4;
	if (e->udp + 8 + 4 + 8 > n)
		return -1;
	e->priv = e->udp + 12;
	e->hops = e->priv + 8;
	e->inner = e->udp + 8 + 4 + (size_t)(f[e->udp + 8] & 0x1f) * 4;
	if (e->inner >= n || fz_parse_ip(f + e->inner, n - e->inner, &e->in))
		return -1;
	return 0;
}

static void check_delivered(const uint8_t *in, size_t in_len, const uint8_t *out, size_t n,
			    int frame, const char *why)
{
	struct encap e;
	struct fz_ip ip;
	size_t inner_len = n - 14;

	if (n < 14 + 20 || n > in_len || memcmp(out, in, 12))
		FUZZ_FAIL("frame %d: %s: delivered %zu bytes, not the input's inner packet", frame,
			  why, n);
	if (fz_get16(out + 12) != (out[14] >> 4 == 6 ? 0x86dd : 0x0800))
		FUZZ_FAIL("frame %d: %s: EtherType %04x for an IPv%d packet", frame, why,
			  fz_get16(out + 12), out[14] >> 4);
	if (memcmp(out + 14, in + in_len - inner_len, inner_len))
		FUZZ_FAIL("frame %d: %s: delivered bytes are not the input's inner packet", frame,
			  why);
	if (parse_encap(in, in_len, &e))
		FUZZ_FAIL("frame %d: %s: delivered from a frame that is no encapsulation", frame,
			  why);
	if (!is_self(e.outer.dst, e.outer.v6))
		FUZZ_FAIL("frame %d: %s: decapsulated a frame for %s, not this host", frame, why,
			  hex(e.outer.dst, e.outer.v6 ? 16 : 4));
	if (fz_parse_ip(out + 14, inner_len, &ip) || !is_vip(ip.dst, ip.v6))
		FUZZ_FAIL("frame %d: %s: delivered a packet for %s, no VIP of the config", frame,
			  why, ip.dst ? hex(ip.dst, ip.v6 ? 16 : 4) : "(not IP)");
}

static void check_forwarded(const uint8_t *in, size_t in_len, const uint8_t *out, size_t n,
			    int frame)
{
	struct encap ei, eo;
	size_t hs, dst_off, csum_off, udp_csum_off, index_off;

	if (n != in_len || parse_encap(in, in_len, &ei) || parse_encap(out, n, &eo) ||
	    ei.outer.v6 != eo.outer.v6)
		FUZZ_FAIL("frame %d: forwarded %zu bytes of %zu, not the same encapsulation", frame,
			  n, in_len);
	hs = eo.outer.v6 ? 16 : 4;
	if (!is_self(ei.outer.dst, ei.outer.v6))
		FUZZ_FAIL("frame %d: forwarded a frame for %s, not this host", frame,
			  hex(ei.outer.dst, hs));
	if (is_self(eo.outer.dst, eo.outer.v6))
		FUZZ_FAIL("frame %d: forwarded to this host itself", frame);
	if (!backend_of(eo.in.dst, eo.in.v6, eo.outer.dst, eo.outer.v6))
		FUZZ_FAIL("frame %d: forwarded to %s, not a configured backend of the VIP %s",
			  frame, hex(eo.outer.dst, hs), hex(eo.in.dst, eo.in.v6 ? 16 : 4));
	if (out[ei.priv + 1] != in[ei.priv + 1] + 1 || memcmp(out + ei.hops + hs, eo.outer.dst, hs))
		FUZZ_FAIL("frame %d: forwarded with hop index %u (was %u), not to hops[index]",
			  frame, out[ei.priv + 1], in[ei.priv + 1]);
	/* Everything else as it came: MACs, outer destination and checksums aside. */
	dst_off = (size_t)(ei.outer.dst - in);
	csum_off = 14 + 10;
	udp_csum_off = ei.udp + 6;
	index_off = ei.priv + 1;
	for (size_t i = 12; i < n; i++) {
		if ((i >= dst_off && i < dst_off + hs) || i == udp_csum_off ||
		    i == udp_csum_off + 1 || i == index_off ||
		    (!ei.outer.v6 && (i == csum_off || i == csum_off + 1)))
			continue;
		if (in[i] != out[i])
			FUZZ_FAIL("frame %d: forwarding changed byte %zu (%02x -> %02x)", frame, i,
				  in[i], out[i]);
	}
	if (!ei.outer.v6) {
		uint8_t copy[60];
		size_t ihl = (size_t)(out[14] & 15) * 4;

		memcpy(copy, out + 14, ihl);
		fp_pkt_ipv4_fix_csum(copy);
		if (memcmp(copy + 10, out + 24, 2))
			FUZZ_FAIL("frame %d: forwarded with a wrong outer IPv4 checksum", frame);
	}
}

/* Is @p (an outer source) in the fixture's lb_sources, 192.0.2.0/24 or 2001:db8::/64? */
static int lb_source(const uint8_t *p, int v6)
{
	static const uint8_t net4[3] = { 192, 0, 2 };
	static const uint8_t net6[8] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0 };

	return v6 ? !memcmp(p, net6, 8) : !memcmp(p, net4, 3);
}

/* Ones'-complement sum of the UDP pseudo header and segment at @udp (@len bytes). */
static uint16_t udp_sum(const struct fz_ip *ip, const uint8_t *udp, size_t len)
{
	uint8_t pseudo[40] = { 0 };
	size_t alen = ip->v6 ? 16 : 4;
	uint32_t sum;

	memcpy(pseudo, ip->src, alen);
	memcpy(pseudo + alen, ip->dst, alen);
	pseudo[2 * alen + 1] = IPPROTO_UDP;
	pseudo[2 * alen + 2] = (uint8_t)(len >> 8);
	pseudo[2 * alen + 3] = (uint8_t)len;
	sum = fp_csum_add(fp_csum_add(0, pseudo, 2 * alen + 4), udp, len);
	return fp_csum_fold(sum) ? fp_csum_fold(sum) : 0xffff; /* one zero */
}

static void check_reflected(const uint8_t *in, size_t in_len, const uint8_t *out, size_t n,
			    int frame)
{
	struct fz_ip ii, io;
	uint16_t et = 0;
	size_t udp, alen, end;

	if (n != in_len)
		FUZZ_FAIL("frame %d: reflected %zu bytes of %zu", frame, n, in_len);
	if (fz_l3(in, in_len, &et) != 14 || fz_parse_ip(in + 14, in_len - 14, &ii) ||
	    ii.proto != IPPROTO_UDP || ii.fragment || (!ii.v6 && ii.l4 != 20) ||
	    (ii.v6 && ii.l4 != 40))
		FUZZ_FAIL("frame %d: reflected a frame that is no plain UDP datagram", frame);
	alen = ii.v6 ? 16 : 4;
	udp = 14 + ii.l4;
	end = 14 + ii.len;
	if (!lb_source(ii.src, ii.v6))
		FUZZ_FAIL("frame %d: reflected a probe from %s, not an allowed LB source", frame,
			  hex(ii.src, alen));
	if (!is_self(ii.dst, ii.v6) || memcmp(in, fx.ns.own_mac, 6))
		FUZZ_FAIL("frame %d: reflected a probe not addressed to this host", frame);
	if (in[6] & 1)
		FUZZ_FAIL("frame %d: reflected to a group MAC", frame);
	if (ii.v6 && !fz_get16(in + udp + 6))
		FUZZ_FAIL("frame %d: reflected an IPv6 datagram without UDP checksum", frame);
	if (end > in_len || udp + 8 + FP_PROBE_SIZE != end || fz_get16(in + udp + 4) != end - udp ||
	    fz_get16(in + udp + 2) != ENCAP_PORT || !fz_get16(in + udp))
		FUZZ_FAIL("frame %d: reflected a datagram that is no 16-byte probe to port %d",
			  frame, ENCAP_PORT);
	if (in[udp + 8] != FP_PROBE_HLEN_VER || in[udp + 9] != FP_GUE_CTYPE_PROBE_REQUEST ||
	    fz_get16(in + udp + 10) != FP_GUE_FLAG_PRIV || in[udp + 12] != 0x66 ||
	    in[udp + 13] != 0x70 || in[udp + 14] != 0x50 || in[udp + 15] != 0x31)
		FUZZ_FAIL("frame %d: reflected something that is no probe request: %s", frame,
			  hex(in + udp + 8, 8));
	/* Exactly the swaps and the type. */
	if (memcmp(out, in + 6, 6) || memcmp(out + 6, in, 6))
		FUZZ_FAIL("frame %d: reflected with MACs not swapped", frame);
	if (fz_parse_ip(out + 14, n - 14, &io) || memcmp(io.src, ii.dst, alen) ||
	    memcmp(io.dst, ii.src, alen))
		FUZZ_FAIL("frame %d: reflected with addresses not swapped", frame);
	if (fz_get16(out + udp) != fz_get16(in + udp + 2) ||
	    fz_get16(out + udp + 2) != fz_get16(in + udp))
		FUZZ_FAIL("frame %d: reflected with ports not swapped", frame);
	if (out[udp + 9] != FP_GUE_CTYPE_PROBE_REPLY)
		FUZZ_FAIL("frame %d: reflected with control type %02x", frame, out[udp + 9]);
	for (size_t i = 12; i < n; i++) {
		size_t src = (size_t)(ii.src - in), dst = (size_t)(ii.dst - in);

		if ((i >= src && i < src + alen) || (i >= dst && i < dst + alen) ||
		    (i >= udp && i < udp + 4) || i == udp + 6 || i == udp + 7 || i == udp + 9)
			continue;
		if (in[i] != out[i])
			FUZZ_FAIL("frame %d: reflecting changed byte %zu (%02x -> %02x)", frame, i,
				  in[i], out[i]);
	}
	if (!ii.v6) {
		uint8_t copy[20];

		memcpy(copy, out + 14, 20);
		fp_pkt_ipv4_fix_csum(copy);
		if (memcmp(copy + 10, out + 24, 2))
			FUZZ_FAIL("frame %d: reflected with a wrong IPv4 header checksum", frame);
	}
	if (!ii.v6 && !fz_get16(in + udp + 6)) {
		if (fz_get16(out + udp + 6))
			FUZZ_FAIL("frame %d: reflected with a UDP checksum where there was none",
				  frame);
	} else if (udp_sum(&io, out + udp, end - udp) != udp_sum(&ii, in + udp, end - udp)) {
		FUZZ_FAIL("frame %d: reflected UDP checksum less right than the input's", frame);
	}
}

static int run_frame(const uint8_t *in, size_t len, int frame, int prev)
{
	static uint8_t out[FZ_FRAME_CAP + 512];
	__u64 before[FP_BACKEND_NR_COUNTERS], after[FP_BACKEND_NR_COUNTERS];
	struct __sk_buff ctx = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err, counter = -1, moved = 0, slot = frame < 7 ? frame : 7;
	char want;

	ctx.ifindex = (__u32)fx.ns.ifindex;
	ctx.ingress_ifindex = (__u32)fx.ns.ifindex;
	if (fp_backend_read_counters(fx.counters_fd, before))
		FUZZ_FAIL("cannot read the counters");
	err = bpf_prog_test_run_opts(fp_backend_prog_fd(fx.be), &o);
	if (err)
		FUZZ_FAIL("frame %d: test run of %zu bytes failed: %s", frame, len, strerror(-err));
	if (fp_backend_read_counters(fx.counters_fd, after))
		FUZZ_FAIL("cannot read the counters");
	for (int c = 0; c < FP_BACKEND_NR_COUNTERS; c++) {
		__u64 d = after[c] - before[c];

		if (!d)
			continue;
		if (d != 1)
			FUZZ_FAIL("frame %d: counter %s moved by %llu", frame,
				  fp_backend_counter_name((unsigned int)c), (unsigned long long)d);
		counter = c;
		moved++;
	}
	if (moved != 1)
		FUZZ_FAIL("frame %d: %d counters moved (a packet must have exactly one)", frame,
			  moved);
	switch (o.retval) {
	case TC_ACT_OK:
		want = fx.kind[counter] == 'p' ? 'p' : 'd';
		break;
	case TC_ACT_SHOT:
		want = 's';
		break;
	case TC_ACT_REDIRECT:
		want = fx.kind[counter] == 'r' ? 'r' : 'f';
		break;
	default:
		FUZZ_FAIL("frame %d: tc verdict %u", frame, o.retval);
	}
	if (fx.kind[counter] && fx.kind[counter] != want)
		FUZZ_FAIL("frame %d: verdict %u counted as %s", frame, o.retval,
			  fp_backend_counter_name((unsigned int)counter));
	fz_feature((unsigned int)counter * 8 + (unsigned int)slot);
	fz_feature(256 + (unsigned int)(prev + 1) * 32 + (unsigned int)counter);

	if (want == 'p' && (o.data_size_out != len || memcmp(in, out, len)))
		FUZZ_FAIL("frame %d: not_flowpin changed the frame", frame);
	if (want == 'd' && o.retval == TC_ACT_OK)
		check_delivered(in, len, out, o.data_size_out, frame,
				fp_backend_counter_name((unsigned int)counter));
	if (want == 'f')
		check_forwarded(in, len, out, o.data_size_out, frame);
	if (want == 'r')
		check_reflected(in, len, out, o.data_size_out, frame);
	return counter;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz_frames f;
	int prev = -1;

	fz_split(data, size, &f, MAX_FRAME);
	for (size_t i = 0; i < f.n; i++) {
		uint16_t et = f.len[i] >= 14 ? fz_get16(f.buf[i] + 12) : 0;

		/*
		 * The skb test run refuses less than an Ethernet header, and an IPv4 or IPv6
		 * EtherType with less than the fixed IP header behind it (-EINVAL): such
		 * frames cannot be run here.
		 */
		if (f.len[i] < 14 || (et == 0x0800 && f.len[i] < 14 + 20) ||
		    (et == 0x86dd && f.len[i] < 14 + 40))
			continue;
		prev = run_frame(f.buf[i], f.len[i], (int)i, prev);
	}
	return 0;
}

/* ---- structure-aware mutations ------------------------------------------------------ */

static void put_addr(uint8_t *p, const char *literal, int v6)
{
	struct fp_addr a = fp_pkt_addr(literal);

	memcpy(p, v6 ? a.a : a.a + 12, v6 ? 16 : 4);
}

/*
 * Makes an encapsulated frame plausible again: outer destination this host, outer source
 * an LB, inner destination a VIP on port 80, hops[1] one of the interesting addresses.
 */
static void readdress(uint8_t *f, size_t n, uint32_t *r)
{
	static const char *const hops4[] = { "192.0.2.1",    "198.51.100.2", "198.51.100.9",
					     "198.51.100.3", "203.0.113.9",  "255.255.255.255",
					     "0.0.0.0",	     "224.0.0.1" };
	static const char *const hops6[] = { "2001:db8::1",	"2001:db8:2::2",
					     "2001:db8:bad::9", "::ffff:198.51.100.2",
					     "ff02::1",		"::" };
	struct encap e;
	int v6;

	if (parse_encap(f, n, &e))
		return;
	v6 = e.outer.v6;
	switch (fz_rand(r) % 4) {
	case 0:
		put_addr((uint8_t *)e.outer.dst, v6 ? self6 : self4, v6);
		put_addr((uint8_t *)e.outer.src, v6 ? lb6 : lb4, v6);
		memcpy(f, fx.ns.own_mac, 6);
		break;
	case 1:
		put_addr((uint8_t *)e.in.dst, e.in.v6 ? vip6 : (fz_rand(r) & 1 ? vip4 : vip4_other),
			 e.in.v6);
		if (!e.in.later_fragment && e.inner + e.in.l4 + 4 <= n)
			fz_put16(f + e.inner + e.in.l4 + 2, VIP_PORT);
		break;
	case 2:
		if (e.hops + 2 * (v6 ? 16 : 4) <= n)
			put_addr(f + e.hops + (v6 ? 16 : 4),
				 v6 ? hops6[fz_rand(r) % (sizeof(hops6) / sizeof(hops6[0]))]
				    : hops4[fz_rand(r) % (sizeof(hops4) / sizeof(hops4[0]))],
				 v6);
		break;
	default:
		f[e.priv + 1] = (uint8_t)(fz_rand(r) % 3);     /* hop index */
		f[e.priv + 2] = (uint8_t)(1 + fz_rand(r) % 2); /* hop count */
		break;
	}
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
	switch (fz_rand(&r) % 8) {
	case 0:
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
	case 3:
		readdress(f.buf[i], f.len[i], &r);
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

static struct fz_frames seed_frames;

static struct fp_pkt_spec tcp(const char *client, const char *vip, __u16 sport, __u8 flags)
{
	struct fp_pkt_spec s = { 0 };

	s.src = fp_pkt_addr(client);
	s.dst = fp_pkt_addr(vip);
	s.proto = IPPROTO_TCP;
	s.sport = sport;
	s.dport = VIP_PORT;
	s.tcp_flags = flags;
	s.seq = 1000;
	s.ack = 2000;
	s.payload_len = 40;
	return s;
}

/* Appends the LB's frame around the inner packet of @s: from @lb to @hop0 (, @hop1). */
static void add(const struct fp_pkt_spec *s, const char *lb, const char *hop0, const char *hop1)
{
	uint8_t frame[FZ_FRAME_CAP];
	struct fp_encap_spec e = { 0 };
	struct fz_frames *f = &seed_frames;
	int len = fp_pkt_build(s, frame, sizeof(frame));
	size_t l3 = fp_pkt_l3_offset(s);
	int n;

	memcpy(e.dst_mac, fx.ns.own_mac, 6);
	memcpy(e.src_mac, fx.ns.next_hop_mac, 6);
	e.outer_src = fp_pkt_addr(lb);
	e.hash = 0x1234567890abcdefULL;
	e.encap_port = ENCAP_PORT;
	e.hop_count = hop1 ? 2 : 1;
	e.hops[0] = fp_pkt_addr(hop0);
	if (hop1)
		e.hops[1] = fp_pkt_addr(hop1);
	n = len > 0 ? fp_pkt_encap(&e, frame + l3, (size_t)len - l3, f->buf[f->n], FZ_FRAME_CAP)
		    : -1;
	if (n <= 0 || f->n >= FZ_MAX_FRAMES) {
		fprintf(stderr, "seed frame does not build\n");
		exit(1);
	}
	f->len[f->n++] = (size_t)n;
}

/* Appends a tunnel probe datagram (@payload, @len bytes) from @src to @dst. */
static void add_probe(const char *src, const char *dst, const uint8_t *payload, size_t len)
{
	struct fp_pkt_spec s = { 0 };
	struct fz_frames *f = &seed_frames;
	int n;

	memcpy(s.dst_mac, fx.ns.own_mac, 6);
	memcpy(s.src_mac, fx.ns.next_hop_mac, 6);
	s.src = fp_pkt_addr(src);
	s.dst = fp_pkt_addr(dst);
	s.proto = IPPROTO_UDP;
	s.sport = 51234;
	s.dport = ENCAP_PORT;
	s.payload = payload;
	s.payload_len = len;
	if (f->n < FZ_MAX_FRAMES)
		memset(f->buf[f->n], 0, 60);
	n = f->n < FZ_MAX_FRAMES ? fp_pkt_build(&s, f->buf[f->n], FZ_FRAME_CAP) : -1;
	if (n <= 0) {
		fprintf(stderr, "seed frame does not build\n");
		exit(1);
	}
	f->len[f->n++] = (size_t)(n < 60 ? 60 : n); /* padded as on a wire */
}

static void save(const char *dir, const char *name)
{
	static uint8_t buf[FZ_MAX_FRAMES * (FZ_FRAME_CAP + 2)];
	size_t n = fz_join(&seed_frames, buf, sizeof(buf));

	if (fz_write_seed(dir, name, buf, n))
		exit(1);
	seed_frames.n = 0;
}

static void write_seeds(const char *dir)
{
	struct fp_fibns own = { .own_mac = FP_FIBNS_OWN_MAC,
				.next_hop_mac = FP_FIBNS_NEXT_HOP_MAC };
	struct fp_pkt_spec s, reply;
	uint8_t quoted[256];
	int n;

	fx.ns = own;
	for (int v6 = 0; v6 < 2; v6++) {
		const char *lb = v6 ? lb6 : lb4, *self = v6 ? self6 : self4;
		const char *other = v6 ? other6 : other4, *stranger = v6 ? stranger6 : stranger4;
		char name[64];

		for (int inner6 = 0; inner6 < 2; inner6++) {
			const char *c = inner6 ? client6 : client4, *vip = inner6 ? vip6 : vip4;

			s = tcp(c, vip, 41000, FP_TCP_SYN);
			add(&s, lb, self, NULL);
			s = tcp(c, vip, EST_PORT, FP_TCP_ACK); /* the real connection */
			add(&s, lb, self, other);
			s = tcp(c, vip, 41001, FP_TCP_ACK); /* no socket: second chance */
			add(&s, lb, self, other);
			s = tcp(c, vip, 41002, FP_TCP_ACK); /* no socket, no hop left */
			add(&s, lb, self, NULL);
			s = tcp(c, vip, 41003, FP_TCP_ACK | FP_TCP_PSH); /* loop guard */
			add(&s, lb, self, self);
			snprintf(name, sizeof(name), "outer%d-inner%d-tcp", v6 ? 6 : 4,
				 inner6 ? 6 : 4);
			save(dir, name);

			s = tcp(c, vip, 41004, FP_TCP_ACK); /* a hop that is no backend */
			add(&s, lb, self, stranger);
			s = tcp(c, vip, 41005, FP_TCP_RST);
			add(&s, lb, self, other);
			snprintf(name, sizeof(name), "outer%d-inner%d-bad-hop", v6 ? 6 : 4,
				 inner6 ? 6 : 4);
			save(dir, name);

			s = tcp(c, vip, 41006, 0);
			s.proto = IPPROTO_UDP;
			add(&s, lb, self, NULL);
			s.proto = 47; /* GRE: another protocol */
			add(&s, lb, self, NULL);
			/* An ICMP error about a reply of the real connection. */
			reply = tcp(vip, c, VIP_PORT, FP_TCP_ACK);
			reply.dport = EST_PORT;
			n = fp_pkt_build(&reply, quoted, sizeof(quoted));
			s = tcp(inner6 ? "2001:db8:ee::1" : "192.0.2.254", c, 0, 0);
			s.proto = inner6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
			s.icmp_type = inner6 ? 2 : 3;
			s.icmp_code = inner6 ? 0 : 4;
			s.icmp_rest = 1400;
			s.payload = quoted + 14;
			s.payload_len = (size_t)n - 14;
			add(&s, lb, self, other);
			snprintf(name, sizeof(name), "outer%d-inner%d-other", v6 ? 6 : 4,
				 inner6 ? 6 : 4);
			save(dir, name);
		}
		/* Refused: not from an LB, not for this host, not for a VIP. */
		s = tcp(client4, vip4, 41010, FP_TCP_SYN);
		add(&s, stranger, self, NULL);
		add(&s, lb, other, NULL);
		s = tcp(client4, "10.100.0.99", 41011, FP_TCP_SYN);
		add(&s, lb, self, NULL);
		snprintf(name, sizeof(name), "outer%d-refused", v6 ? 6 : 4);
		save(dir, name);
	}
	/* Tunnel probes: reflected, a reply, truncated, with a payload, from a stranger. */
	for (int v6 = 0; v6 < 2; v6++) {
		uint8_t probe[FP_PROBE_SIZE + 8] = { 0 };

		fp_tunnel_probe_build(probe, sizeof(probe), 0x1122334455667788ULL);
		add_probe(v6 ? lb6 : lb4, v6 ? self6 : self4, probe, FP_PROBE_SIZE);
		add_probe(v6 ? lb6 : lb4, v6 ? self6 : self4, probe, FP_PROBE_SIZE - 4);
		add_probe(v6 ? lb6 : lb4, v6 ? self6 : self4, probe, sizeof(probe));
		add_probe(v6 ? stranger6 : stranger4, v6 ? self6 : self4, probe, FP_PROBE_SIZE);
		probe[1] = FP_GUE_CTYPE_PROBE_REPLY;
		add_probe(v6 ? lb6 : lb4, v6 ? self6 : self4, probe, FP_PROBE_SIZE);
		save(dir, v6 ? "outer6-tunnel-probe" : "outer4-tunnel-probe");
	}
	/* vip4_other: its own backend only; 198.51.100.2 is not one of its backends. */
	s = tcp(client4, vip4_other, 41020, FP_TCP_ACK);
	add(&s, lb4, self4, other_vip_backend4);
	add(&s, lb4, self4, other4);
	add(&s, lb4, self4, unrouted4);
	save(dir, "other-vip");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("FP_FUZZ_WRITE_SEEDS");

	(void)argc;
	(void)argv;
	fleet_init();
	if (seeds) {
		write_seeds(seeds);
		exit(0);
	}
	if (geteuid() != 0) {
		fprintf(stderr, "fuzz_backend: needs root (BPF programs, a network namespace)\n");
		exit(1);
	}
	setup();
	return 0;
}
