// SPDX-License-Identifier: MIT
/*
 * The backend program (bpf/backend.bpf.c), run through BPF_PROG_TEST_RUN on crafted
 * encapsulated frames: every branch, both families inside and outside, the exact bytes
 * of the decapsulated or forwarded frame, and the counters (exactly one counter moves
 * by exactly one per packet).
 *
 * The process moves into a private network namespace (lib/fibns.c: fp-test0 with
 * 192.0.2.1 and 2001:db8::1, a default gateway with a fixed MAC, forwarding on) where it
 * binds the VIPs on lo, listens on them and opens real TCP connections, so the program's
 * bpf_skc_lookup_tcp() and bpf_fib_lookup() see real sockets and routes. Nothing leaves
 * the namespace; it dies with the process. Needs root: otherwise every test is skipped;
 * as root, a set-up that fails (program rejected, no namespace) fails the run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <cmocka.h>
#include <flowpin/backend.h>
#include <flowpin/fibns.h>
#include <flowpin/log.h>
#include <flowpin/ticket.h>
#include <flowpin/tunnelprobe.h>
#include <flowpin/wire.h>
#include "common/hash_vectors.h"
#include "common/pkt.h"
#include "common/ticket_vectors.h"

#define ENCAP_PORT 6080
#define VIP_PORT   80

static struct {
	int ready; /* 0: not root, every test skips (as root a failed set-up fails them) */
	struct fp_fibns ns;
	struct fp_backend *be;
	int counters_fd;
	int fds[16];
	int n_fds;
	__u16 est_port_v4; /* client ports of the real established connections */
	__u16 est_port_v6;
	__u16 tkt_port_v4; /* client ports of the real connections to the ticket VIPs */
	__u16 tkt_port_v6;
	struct fp_hash_key ticket_key; /* fp_ticket_key_derive(fp_vector_key) */
	struct fp_backend_opts opts;   /* what fx.be was loaded with */
} fx;

static const char *const vip4 = "10.100.0.1", *const vip6 = "fd00:100::1";
static const char *const client4 = "10.200.0.5", *const client6 = "fd00:200::5";
static const char *const cookie_client4 = "10.200.0.7";
static const char *const lb4 = "192.0.2.10", *const lb6 = "2001:db8::10";
static const char *const self4 = "192.0.2.1", *const self6 = "2001:db8::1";
/* The previous owner: routed through the namespace's default gateway. */
static const char *const other4 = "198.51.100.2", *const other6 = "2001:db8:2::2";
static const char *const stranger4 = "203.0.113.9", *const stranger6 = "2001:db8:bad::9";
/* A configured backend without a route (an unreachable route in the namespace). */
static const char *const unrouted4 = "198.51.100.9";
/* Another VIP, with a backend of its own that is no backend of vip4/vip6. */
static const char *const vip4_other = "10.100.0.2", *const other_vip_backend4 = "198.51.100.3";
/*
 * TCP tickets (flowpin/ticket.h), the fleet key fp_vector_key: the VIP of the published
 * vectors (tests/common/ticket_vectors.h) on port 443 (this host id 5) and 80 (id 255),
 * K = 8; an IPv6 VIP with K = 12 (id 4095); a TCP VIP without tickets (id 5 here too).
 */
static const char *const tvip4 = "198.51.100.10", *const tvip6 = "fd00:300::1";
static const char *const plain_vip4 = "198.51.100.20";

/* ---- helpers --------------------------------------------------------------------- */

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fprintf(stderr, "# set-up command failed (%d): %s\n", rc, cmd);
	return rc == 0 ? 0 : -1;
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
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return AF_INET6;
	}
	return -1;
}

static int keep_fd(int fd)
{
	if (fd >= 0 && fx.n_fds < (int)(sizeof(fx.fds) / sizeof(fx.fds[0])))
		fx.fds[fx.n_fds++] = fd;
	return fd;
}

static int listen_on(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd;

	fd = socket(sock_addr(addr, VIP_PORT, &ss, &len), SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16)) {
		perror("# listen");
		return -1;
	}
	return keep_fd(fd);
}

/* A real connection client -> VIP:80; returns the client's port (host order) or 0. */
static __u16 connect_from(const char *client, const char *vip, int listener)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, conn;

	fd = socket(sock_addr(client, 0, &ss, &len), SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len))
		return 0;
	keep_fd(fd);
	sock_addr(vip, VIP_PORT, &ss, &len);
	if (connect(fd, (struct sockaddr *)&ss, len))
		return 0;
	conn = accept(listener, NULL, NULL);
	if (conn < 0)
		return 0;
	keep_fd(conn);
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return 0;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/*
 * Not root: fx.ready stays 0 and every test skips, saying why. As root every step must
 * work: a failure (the program rejected by the verifier, no namespace) fails the group,
 * never turns into skipped tests that look like a green run.
 */
/*
 * The fleet the agent knows: vip4 and vip6 served by this backend, the previous owner
 * and an unrouted one, both families (an LB writes hops of the outer family, whatever the
 * inner one); vip4_other served by a backend of its own.
 */
static struct fp_backend_cfg fleet_backends[16];
static struct fp_vip_cfg fleet[7];
#define FLEET_VIPS 7

static void fleet_init(void)
{
	const char *const both[] = { self4, self6, other4, other6, unrouted4, NULL };
	size_t n = 0;

	for (size_t i = 0; both[i]; i++) {
		fleet_backends[n].id = (__u32)(n + 1);
		fleet_backends[n].addr = fp_pkt_addr(both[i]);
		fleet_backends[n].weight = 100;
		n++;
	}
	snprintf(fleet[0].name, sizeof(fleet[0].name), "web");
	fleet[0].addr = fp_pkt_addr(vip4);
	fleet[0].backends = fleet_backends;
	fleet[0].n_backends = n;
	snprintf(fleet[1].name, sizeof(fleet[1].name), "web6");
	fleet[1].addr = fp_pkt_addr(vip6);
	fleet[1].backends = fleet_backends;
	fleet[1].n_backends = n;
	fleet_backends[n].id = 1;
	fleet_backends[n].addr = fp_pkt_addr(other_vip_backend4);
	snprintf(fleet[2].name, sizeof(fleet[2].name), "other");
	fleet[2].addr = fp_pkt_addr(vip4_other);
	fleet[2].backends = &fleet_backends[n];
	fleet[2].n_backends = 1;
	n++;
	/* Ticket VIPs: this host (self4/self6) and the previous owner, ids as above. */
	{
		static const struct {
			const char *vip;
			__u16 port;
			__u8 bits;
			__u32 self_id;
			const char *self, *other;
		} t[] = {
			{ tvip4, 443, 8, 5, self4, other4 },
			{ tvip4, 80, 8, 255, self4, other4 },
			{ tvip6, 80, 12, 4095, self6, other6 },
			{ plain_vip4, 80, 0, 5, self4, other4 },
		};

		for (size_t i = 0; i < 4; i++) {
			struct fp_vip_cfg *v = &fleet[3 + i];

			snprintf(v->name, sizeof(v->name), "tickets%zu", i);
			v->addr = fp_pkt_addr(t[i].vip);
			v->port = t[i].port;
			v->proto = IPPROTO_TCP;
			v->ticket_bits = t[i].bits;
			v->backends = &fleet_backends[n];
			v->n_backends = 2;
			fleet_backends[n].id = t[i].self_id;
			fleet_backends[n++].addr = fp_pkt_addr(t[i].self);
			fleet_backends[n].id = 7;
			fleet_backends[n++].addr = fp_pkt_addr(t[i].other);
		}
	}
}

static int setup(void **state)
{
	static struct fp_prefix sources[2];
	static struct fp_addr self[2];
	struct fp_backend_opts opts = { .encap_port = ENCAP_PORT };
	int l4, l6;

	(void)state;
	memset(&fx, 0, sizeof(fx));
	if (geteuid() != 0)
		return 0;
	if (fp_fibns_enter(NULL, &fx.ns))
		return -1;
	/*
	 * nodad: a new IPv6 address is tentative until the kernel's DAD work has run, even
	 * on lo where no DAD happens, and bind() to it fails (EADDRNOTAVAIL) until then: a
	 * group setup that failed under load.
	 */
	if (sh("ip addr add 10.100.0.1/32 dev lo && ip addr add 10.200.0.5/32 dev lo && "
	       "ip addr add 10.200.0.7/32 dev lo && "
	       "ip -6 addr add fd00:100::1/128 dev lo nodad && "
	       "ip -6 addr add fd00:200::5/128 dev lo nodad"))
		return -1;
	/* Always answer with SYN cookies: the syncookie test needs a real one. */
	if (sh("echo 2 > /proc/sys/net/ipv4/tcp_syncookies"))
		return -1;
	if (sh("ip route add unreachable 198.51.100.9/32"))
		return -1;
	/* Ticket VIPs, and the stack's TSval as tickets want it (no per-connection offset). */
	if (sh("ip addr add 198.51.100.10/32 dev lo && ip -6 addr add fd00:300::1/128 dev lo "
	       "nodad && echo 2 > /proc/sys/net/ipv4/tcp_timestamps"))
		return -1;
	l4 = listen_on(vip4);
	l6 = listen_on(vip6);
	if (l4 < 0 || l6 < 0)
		return -1;
	fx.est_port_v4 = connect_from(client4, vip4, l4);
	fx.est_port_v6 = connect_from(client6, vip6, l6);
	fx.tkt_port_v4 = connect_from(client4, tvip4, listen_on(tvip4));
	fx.tkt_port_v6 = connect_from(client6, tvip6, listen_on(tvip6));
	if (!fx.est_port_v4 || !fx.est_port_v6 || !fx.tkt_port_v4 || !fx.tkt_port_v6) {
		fprintf(stderr, "# set-up: no established connection to the VIPs\n");
		return -1;
	}

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
	fleet_init();
	opts.vips = fleet;
	opts.n_vips = FLEET_VIPS;
	opts.hash_key = &fp_vector_key;
	fp_ticket_key_derive(&fp_vector_key, &fx.ticket_key);
	if (fp_backend_load(&opts, &fx.be))
		return -1;
	fx.opts = opts;
	fx.counters_fd = fp_backend_counters_fd(fx.be);
	fx.ready = 1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < fx.n_fds; i++)
		close(fx.fds[i]);
	fp_backend_destroy(fx.be);
	return 0;
}

#define REQUIRE_READY()                                                                    \
	do {                                                                               \
		if (!fx.ready) {                                                           \
			print_message("# needs root (network namespace, BPF): skipped\n"); \
			skip();                                                            \
		}                                                                          \
	} while (0)

/* An inner packet (IP and up, no Ethernet) into @buf; returns its length. */
static size_t inner_packet(struct fp_pkt_spec *s, __u8 *buf)
{
	__u8 frame[FP_PKT_MAX];
	int len = fp_pkt_build(s, frame, sizeof(frame));
	size_t l3 = fp_pkt_l3_offset(s);

	assert_true(len > (int)l3);
	memcpy(buf, frame + l3, (size_t)len - l3);
	return (size_t)len - l3;
}

static struct fp_pkt_spec tcp_spec(const char *src, const char *dst, __u16 sport, __u8 flags)
{
	struct fp_pkt_spec s = { 0 };

	s.src = fp_pkt_addr(src);
	s.dst = fp_pkt_addr(dst);
	s.proto = IPPROTO_TCP;
	s.sport = sport;
	s.dport = VIP_PORT;
	s.tcp_flags = flags;
	s.seq = 1000;
	s.ack = 2000;
	s.payload_len = 100;
	return s;
}

/*
 * The LB's frame around @inner: from @lb to hops[@index] (to hops[0] when @index is out
 * of range), @count hops: what the backend at hops[@index] receives.
 */
static int encap(const __u8 *inner, size_t inner_len, const char *lb, const char *hop0,
		 const char *hop1, __u8 index, __u8 count, __u8 *out)
{
	struct fp_encap_spec e = { 0 };
	int len;

	memcpy(e.dst_mac, fx.ns.own_mac, 6);
	memcpy(e.src_mac, fx.ns.next_hop_mac, 6);
	e.outer_src = fp_pkt_addr(lb);
	e.hash = 0x1234567890abcdefULL;
	e.encap_port = ENCAP_PORT;
	e.hop_count = count;
	e.hops[0] = fp_pkt_addr(hop0);
	if (hop1)
		e.hops[1] = fp_pkt_addr(hop1);
	/* fp_pkt_encap addresses hops[0]; a later index is set afterwards, by hand. */
	e.hop_index = 0;
	len = fp_pkt_encap(&e, inner, inner_len, out, FP_PKT_MAX);
	assert_true(len > 0);
	if (index) {
		int v4 = fp_addr_v4(&e.hops[0]);
		size_t priv = 14 + (v4 ? 20 : 40) + 8 + 4;

		out[priv + 1] = index;
		if (index < count && v4) {
			memcpy(out + 14 + 16, e.hops[index].a + 12, 4);
			fp_pkt_ipv4_fix_csum(out + 14);
		} else if (index < count) {
			memcpy(out + 14 + 24, e.hops[index].a, 16);
		}
	}
	return len;
}

struct run_result {
	__u32 retval;
	__u8 out[FP_PKT_MAX];
	__u32 out_len;
	__u64 delta[FP_BACKEND_NR_COUNTERS];
};

static void run_prog(int prog_fd, const __u8 *frame, size_t len, struct run_result *r)
{
	struct __sk_buff ctx = { 0 };
	__u64 before[FP_BACKEND_NR_COUNTERS], after[FP_BACKEND_NR_COUNTERS];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (__u32)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	int err;

	ctx.ifindex = (__u32)fx.ns.ifindex;
	ctx.ingress_ifindex = (__u32)fx.ns.ifindex;
	assert_int_equal(fp_backend_read_counters(fx.counters_fd, before), 0);
	err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (err)
		fail_msg("test run of a %zu-byte frame: %s", len, strerror(-err));
	assert_int_equal(fp_backend_read_counters(fx.counters_fd, after), 0);
	r->retval = opts.retval;
	r->out_len = opts.data_size_out;
	for (int i = 0; i < FP_BACKEND_NR_COUNTERS; i++)
		r->delta[i] = after[i] - before[i];
}

static void run(const __u8 *frame, size_t len, struct run_result *r)
{
	run_prog(fp_backend_prog_fd(fx.be), frame, len, r);
}

#define NO_COUNTER FP_BACKEND_NR_COUNTERS

/* Exactly @counter and @also (a ticket_* counter, or NO_COUNTER) moved, by one. */
static void assert_counted_also(const struct run_result *r, unsigned int counter, unsigned int also)
{
	for (unsigned int i = 0; i < FP_BACKEND_NR_COUNTERS; i++) {
		if (r->delta[i] != (i == counter || i == also ? 1 : 0))
			fail_msg("counter %s moved by %llu, expected %s (and %s) to move by 1",
				 fp_backend_counter_name(i), (unsigned long long)r->delta[i],
				 fp_backend_counter_name(counter), fp_backend_counter_name(also));
	}
}

/* Exactly @counter moved, by one. */
static void assert_counted(const struct run_result *r, unsigned int counter)
{
	assert_counted_also(r, counter, NO_COUNTER);
}

/*
 * Delivered: the same MACs, the inner family's EtherType, then the inner packet;
 * @counter and @also moved.
 */
static void assert_delivered_also(const struct run_result *r, const __u8 *frame, const __u8 *inner,
				  size_t inner_len, unsigned int counter, unsigned int also)
{
	__u8 want[FP_PKT_MAX];

	assert_counted_also(r, counter, also);
	assert_int_equal(r->retval, TC_ACT_OK);
	memcpy(want, frame, 12);
	want[12] = (inner[0] >> 4) == 4 ? 0x08 : 0x86;
	want[13] = (inner[0] >> 4) == 4 ? 0x00 : 0xdd;
	memcpy(want + 14, inner, inner_len);
	assert_int_equal(r->out_len, 14 + inner_len);
	assert_memory_equal(r->out, want, 14 + inner_len);
}

static void assert_delivered(const struct run_result *r, const __u8 *frame, const __u8 *inner,
			     size_t inner_len, unsigned int counter)
{
	assert_delivered_also(r, frame, inner, inner_len, counter, NO_COUNTER);
}

static void assert_dropped(const struct run_result *r, unsigned int counter)
{
	assert_counted(r, counter);
	assert_int_equal(r->retval, TC_ACT_SHOT);
}

/* ---- deliver branches ------------------------------------------------------------- */

static void syn_delivered(const char *client, const char *vip, const char *lb, const char *self,
			  const char *other)
{
	struct fp_pkt_spec s = tcp_spec(client, vip, 40000, FP_TCP_SYN);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen = inner_packet(&s, inner);
	int len = encap(inner, ilen, lb, self, other, 0, 2, frame);

	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_SYN_LOCAL);
}

static void test_syn_v4_in_v4(void **state)
{
	(void)state;
	REQUIRE_READY();
	syn_delivered("10.9.0.1", vip4, lb4, self4, other4);
}

static void test_syn_v6_in_v6(void **state)
{
	(void)state;
	REQUIRE_READY();
	syn_delivered("fd00:9::1", vip6, lb6, self6, other6);
}

static void test_syn_v4_in_v6(void **state)
{
	(void)state;
	REQUIRE_READY();
	syn_delivered("10.9.0.1", vip4, lb6, self6, other6);
}

static void test_syn_v6_in_v4(void **state)
{
	(void)state;
	REQUIRE_READY();
	syn_delivered("fd00:9::1", vip6, lb4, self4, other4);
}

static void established_delivered(const char *client, const char *vip, __u16 port, const char *lb,
				  const char *self, const char *other)
{
	struct fp_pkt_spec s = tcp_spec(client, vip, port, FP_TCP_ACK | FP_TCP_PSH);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen = inner_packet(&s, inner);
	int len = encap(inner, ilen, lb, self, other, 0, 2, frame);

	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_ESTABLISHED_LOCAL);
}

static void test_established_v4(void **state)
{
	(void)state;
	REQUIRE_READY();
	established_delivered(client4, vip4, fx.est_port_v4, lb4, self4, other4);
	/* Same connection, IPv6 outer header. */
	established_delivered(client4, vip4, fx.est_port_v4, lb6, self6, other6);
}

static void test_established_v6(void **state)
{
	(void)state;
	REQUIRE_READY();
	established_delivered(client6, vip6, fx.est_port_v6, lb6, self6, other6);
	established_delivered(client6, vip6, fx.est_port_v6, lb4, self4, other4);
}

static void test_udp_and_icmp_delivered(void **state)
{
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct fp_pkt_spec s = { 0 };
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	s.src = fp_pkt_addr("10.9.0.1");
	s.dst = fp_pkt_addr(vip4);
	s.proto = IPPROTO_UDP;
	s.sport = 5000;
	s.dport = 443;
	s.payload_len = 64;
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_UDP_LOCAL);

	/* ICMP errors quoting nothing we can look up, and an echo request: delivered. */
	memset(&s, 0, sizeof(s));
	s.src = fp_pkt_addr("10.9.0.254");
	s.dst = fp_pkt_addr(vip4);
	s.proto = IPPROTO_ICMP;
	s.icmp_type = 3;
	s.icmp_code = 4;
	s.icmp_rest = 1400;
	s.payload_len = 28;
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_ICMP_LOCAL);
	s.icmp_type = 8; /* echo request */
	s.icmp_code = 0;
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_ICMP_LOCAL);

	memset(&s, 0, sizeof(s));
	s.src = fp_pkt_addr("fd00:9::fe");
	s.dst = fp_pkt_addr(vip6);
	s.proto = IPPROTO_ICMPV6;
	s.icmp_type = 2; /* packet too big */
	s.icmp_rest = 1280;
	s.payload_len = 48;
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb6, self6, other6, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_ICMP_LOCAL);
}

/* ---- second chance ---------------------------------------------------------------- */

/* The forwarded frame: new MACs, outer destination hops[1], hop index 1, IPv4 csum. */
static void assert_forwarded(const struct run_result *r, const __u8 *frame, size_t len,
			     const char *next)
{
	__u8 want[FP_PKT_MAX];
	struct fp_addr hop = fp_pkt_addr(next);
	int v6 = frame[12] == 0x86;
	size_t priv = 14 + (v6 ? 40 : 20) + 8 + 4;

	assert_counted(r, FP_BACKEND_FORWARDED);
	assert_int_equal(r->retval, TC_ACT_REDIRECT);
	memcpy(want, frame, len);
	memcpy(want, fx.ns.next_hop_mac, 6);
	memcpy(want + 6, fx.ns.own_mac, 6);
	if (v6) {
		memcpy(want + 14 + 24, hop.a, 16);
	} else {
		memcpy(want + 14 + 16, hop.a + 12, 4);
		fp_pkt_ipv4_fix_csum(want + 14);
	}
	want[priv + 1] = 1;
	assert_int_equal(r->out_len, len);
	assert_memory_equal(r->out, want, len);
}

static void unknown_forwarded(const char *client, const char *vip, const char *lb, const char *self,
			      const char *other)
{
	struct fp_pkt_spec s = tcp_spec(client, vip, 4444, FP_TCP_ACK);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen = inner_packet(&s, inner);
	int len = encap(inner, ilen, lb, self, other, 0, 2, frame);

	run(frame, (size_t)len, &r);
	assert_forwarded(&r, frame, (size_t)len, other);
}

static void test_unknown_forwarded(void **state)
{
	(void)state;
	REQUIRE_READY();
	/* A listener exists on the VIP: it must not count as "a socket for this flow". */
	unknown_forwarded("10.9.0.1", vip4, lb4, self4, other4);
	unknown_forwarded("fd00:9::1", vip6, lb6, self6, other6);
	unknown_forwarded("10.9.0.1", vip4, lb6, self6, other6);
	unknown_forwarded("fd00:9::1", vip6, lb4, self4, other4);
}

static void test_last_resort(void **state)
{
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 4444, FP_TCP_ACK);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	/* One hop: nowhere else to go. */
	len = encap(inner, ilen, lb4, self4, NULL, 0, 1, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_LAST_RESORT);
	/* Already the second hop of two. */
	len = encap(inner, ilen, lb6, other6, self6, 1, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_LAST_RESORT);
}

static void test_loop_guard(void **state)
{
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 4444, FP_TCP_ACK);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	/* The next hop is this backend again (either family): delivered, never sent on. */
	len = encap(inner, ilen, lb4, self4, self4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_LOOP_GUARD);
	len = encap(inner, ilen, lb6, self6, self6, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_LOOP_GUARD);
	/* Hop index past the list: delivered, never forwarded, whatever the hop list says. */
	len = encap(inner, ilen, lb4, self4, other4, 2, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_LOOP_GUARD);
	len = encap(inner, ilen, lb6, self6, other6, 255, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_LOOP_GUARD);
	/* ... but an out-of-range index does not excuse another fault: Hlen wrong too. */
	len = encap(inner, ilen, lb4, self4, other4, 2, 2, frame);
	frame[14 + 20 + 8] = fp_gue_hlen(1, 0);
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_MALFORMED);
}

/*
 * An ICMP error quoting the first 28 (IPv4) or 48 (IPv6) bytes of one of our replies
 * (VIP:80 -> @client:@port): frag needed / packet too big, from a router.
 */
static size_t icmp_error(const char *client, __u16 port, const char *vip, __u8 *inner)
{
	struct fp_pkt_spec reply = tcp_spec(vip, client, VIP_PORT, FP_TCP_ACK);
	struct fp_pkt_spec s = { 0 };
	__u8 quoted[FP_PKT_MAX];
	int v6 = !fp_addr_v4(&reply.src);

	reply.dport = port;
	inner_packet(&reply, quoted);
	s.src = fp_pkt_addr(v6 ? "fd00:9::fe" : "10.9.0.254");
	s.dst = reply.src;
	s.proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	s.icmp_type = v6 ? 2 : 3;
	s.icmp_code = v6 ? 0 : 4;
	s.icmp_rest = 1280;
	s.payload = quoted;
	s.payload_len = v6 ? 48 : 28;
	return inner_packet(&s, inner);
}

static void test_icmp_error_follows_flow(void **state)
{
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	/* About the real connection: delivered here, whatever the hop list says. */
	ilen = icmp_error(client4, fx.est_port_v4, vip4, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_ICMP_LOCAL);
	ilen = icmp_error(client6, fx.est_port_v6, vip6, inner);
	len = encap(inner, ilen, lb6, self6, other6, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_ICMP_LOCAL);
	/* About a flow this backend does not have: on to the previous owner. */
	ilen = icmp_error("10.9.0.1", 4444, vip4, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_forwarded(&r, frame, (size_t)len, other4);
	ilen = icmp_error("fd00:9::1", 4444, vip6, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_forwarded(&r, frame, (size_t)len, other4);
	/* ... and with no hop left, delivered as the last resort. */
	ilen = icmp_error("10.9.0.1", 4444, vip4, inner);
	len = encap(inner, ilen, lb4, self4, NULL, 0, 1, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_LAST_RESORT);
}

/* ---- SYN cookies ------------------------------------------------------------------- */

/* Sends a real SYN from cookie_client4:5555 to the VIP; returns the cookie (SYN-ACK seq). */
static int get_cookie(__u32 *cookie)
{
	struct fp_pkt_spec s = tcp_spec(cookie_client4, vip4, 5555, FP_TCP_SYN);
	__u8 ip[FP_PKT_MAX], buf[2048];
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = 0 };
	struct timeval tv = { .tv_sec = 2 };
	size_t ilen;
	int out = -1, in = -1, err = -1;

	s.payload_len = 0;
	ilen = inner_packet(&s, ip);
	inet_pton(AF_INET, vip4, &dst.sin_addr);
	out = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	in = socket(AF_INET, SOCK_RAW, IPPROTO_TCP); /* a copy of every TCP segment */
	if (out < 0 || in < 0 || setsockopt(in, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		goto out;
	if (sendto(out, ip, ilen, 0, (struct sockaddr *)&dst, sizeof(dst)) != (ssize_t)ilen)
		goto out;
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(in, buf, sizeof(buf), 0);
		size_t ihl;

		if (n < 0)
			goto out;
		ihl = (buf[0] & 0x0f) * 4u;
		if ((size_t)n < ihl + 20)
			continue;
		/* From VIP:80 to :5555 with SYN and ACK set. */
		if (buf[ihl] == 0 && buf[ihl + 1] == VIP_PORT && buf[ihl + 2] == 5555 >> 8 &&
		    buf[ihl + 3] == (5555 & 0xff) && (buf[ihl + 13] & 0x12) == 0x12) {
			*cookie = (__u32)buf[ihl + 4] << 24 | (__u32)buf[ihl + 5] << 16 |
				  (__u32)buf[ihl + 6] << 8 | buf[ihl + 7];
			err = 0;
			break;
		}
	}
out:
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	return err;
}

static void test_syncookie(void **state)
{
	struct fp_pkt_spec s = tcp_spec(cookie_client4, vip4, 5555, FP_TCP_ACK);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	__u32 cookie = 0;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	assert_int_equal(get_cookie(&cookie), 0);
	s.seq = 1001;
	s.payload_len = 0;
	/*
	 * A wrong cookie first: no socket, so it goes on to the previous owner. (Flip the
	 * cookie's top bits, its time counter: a small change may only select another MSS.)
	 */
	s.ack = (cookie ^ 0x80000000u) + 1;
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_forwarded(&r, frame, (size_t)len, other4);
	/* The right one completes the handshake here. */
	s.ack = cookie + 1;
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_SYNCOOKIE_LOCAL);
}

/* ---- not ours, not allowed, hostile -------------------------------------------------- */

static void test_not_flowpin_untouched(void **state)
{
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 4444, FP_TCP_ACK);
	__u8 frame[FP_PKT_MAX];
	struct run_result r;
	int len;

	(void)state;
	REQUIRE_READY();
	len = fp_pkt_build(&s, frame, sizeof(frame));
	run(frame, (size_t)len, &r);
	assert_counted(&r, FP_BACKEND_NOT_FLOWPIN);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(r.out_len, len);
	assert_memory_equal(r.out, frame, (size_t)len);

	/* UDP from an LB, but to another port. */
	memset(&s, 0, sizeof(s));
	s.src = fp_pkt_addr(lb6);
	s.dst = fp_pkt_addr(self6);
	s.proto = IPPROTO_UDP;
	s.sport = 40000;
	s.dport = ENCAP_PORT + 1;
	s.payload_len = 80;
	len = fp_pkt_build(&s, frame, sizeof(frame));
	run(frame, (size_t)len, &r);
	assert_counted(&r, FP_BACKEND_NOT_FLOWPIN);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_memory_equal(r.out, frame, (size_t)len);
}

static void test_not_allowed(void **state)
{
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 40000, FP_TCP_SYN);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, stranger4, self4, NULL, 0, 1, frame);
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_NOT_ALLOWED);
	len = encap(inner, ilen, stranger6, self6, NULL, 0, 1, frame);
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_NOT_ALLOWED);
}

/* Rewrites the outer IP and UDP lengths (and IPv4 checksum) after a frame was cut. */
static void fix_outer_lengths(__u8 *frame, size_t len)
{
	int v6 = frame[12] == 0x86;
	__u8 *ip = frame + 14, *udp = ip + (v6 ? 40 : 20);
	size_t ip_len = len - 14, udp_len = ip_len - (v6 ? 40 : 20);

	if (v6) {
		ip[4] = (__u8)((ip_len - 40) >> 8);
		ip[5] = (__u8)(ip_len - 40);
	} else {
		ip[2] = (__u8)(ip_len >> 8);
		ip[3] = (__u8)ip_len;
		fp_pkt_ipv4_fix_csum(ip);
	}
	if (len >= (size_t)(udp - frame) + 8) {
		udp[4] = (__u8)(udp_len >> 8);
		udp[5] = (__u8)udp_len;
	}
}

/*
 * Every prefix of a valid encapsulated frame, outer IP length made consistent: it is
 * either not recognisably ours (cut inside the UDP header: passed on
 * untouched) or dropped as malformed. Never delivered, never forwarded.
 */
static void truncations(const char *lb, const char *self, const char *other, const char *client,
			const char *vip)
{
	struct fp_pkt_spec s = tcp_spec(client, vip, 4444, FP_TCP_ACK);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX], cut[FP_PKT_MAX];
	size_t ilen = inner_packet(&s, inner);
	int len = encap(inner, ilen, lb, self, other, 0, 2, frame);
	/* Before the UDP header is complete the frame may not be recognisably ours. */
	size_t udp_end = 14 + (frame[12] == 0x86 ? 40 : 20) + 8;
	/* Shortest frame that still holds outer headers + the inner IP and TCP headers. */
	size_t full_headers = (size_t)len - s.payload_len;
	struct run_result r;

	for (size_t n = 14 + 20; n < full_headers; n++) {
		/* Padded to the Ethernet minimum like on a wire (and as the test run of a
		 * real device wants); the IP length says where the packet ends. */
		size_t wire = n < 60 ? 60 : n;

		memset(cut, 0, wire);
		memcpy(cut, frame, n);
		fix_outer_lengths(cut, n);
		run(cut, wire, &r);
		if (n < udp_end && r.delta[FP_BACKEND_NOT_FLOWPIN]) {
			assert_counted(&r, FP_BACKEND_NOT_FLOWPIN);
			assert_int_equal(r.retval, TC_ACT_OK);
			assert_memory_equal(r.out, cut, wire);
			continue;
		}
		if (n == udp_end) { /* an empty datagram: what an LB's neighbour probe is */
			assert_dropped(&r, FP_BACKEND_PROBE);
			continue;
		}
		if (r.delta[FP_BACKEND_MALFORMED] != 1)
			fail_msg("frame cut at %zu of %d: not counted as malformed", n, len);
		assert_dropped(&r, FP_BACKEND_MALFORMED);
	}
}

static void test_truncated(void **state)
{
	(void)state;
	REQUIRE_READY();
	truncations(lb4, self4, other4, "10.9.0.1", vip4);
	truncations(lb6, self6, other6, "fd00:9::1", vip6);
	truncations(lb4, self4, other4, "fd00:9::1", vip6);
}

static void test_hostile_headers(void **state)
{
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 4444, FP_TCP_ACK);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX], bad[FP_PKT_MAX];
	struct run_result r;
	size_t ilen = 0, gue = 14 + 20 + 8, priv = gue + 4;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);

	/* Hop count larger than FP_MAX_HOPS / than the packet holds, Hlen to match. */
	memcpy(bad, frame, (size_t)len);
	bad[priv + 2] = 200;
	bad[gue] = (__u8)(2 + 200);
	run(bad, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_MALFORMED);
	/* Hop count 0. */
	memcpy(bad, frame, (size_t)len);
	bad[priv + 2] = 0;
	run(bad, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_MALFORMED);
	/* IPv6 hop flag on an IPv4 outer header (Hlen made consistent with it). */
	memcpy(bad, frame, (size_t)len);
	bad[priv + 3] = FP_PRIV_FLAG_V6;
	bad[gue] = fp_gue_hlen(2, 1);
	run(bad, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_MALFORMED);
	/* GUE says IPv6 inside, the inner header is IPv4. */
	memcpy(bad, frame, (size_t)len);
	bad[gue + 1] = IPPROTO_IPV6;
	run(bad, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_MALFORMED);
	/* Unknown private type. */
	memcpy(bad, frame, (size_t)len);
	bad[priv] = 0x42;
	run(bad, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_MALFORMED);
	/* Outer IPv4 options (an LB writes none): four NOPs, lengths and checksum right. */
	memcpy(bad, frame, 14 + 20);
	memset(bad + 14 + 20, 1, 4);
	memcpy(bad + 14 + 24, frame + 14 + 20, (size_t)len - 14 - 20);
	bad[14] = 0x46;
	bad[14 + 3] += 4; /* tot_len, far below 256 - 4 here */
	fp_pkt_ipv4_fix_csum(bad + 14);
	run(bad, (size_t)len + 4, &r);
	assert_dropped(&r, FP_BACKEND_MALFORMED);
	/* An outer fragment (the LB always sets DF). */
	memcpy(bad, frame, (size_t)len);
	bad[14 + 6] = 0x20; /* MF */
	bad[14 + 7] = 0;
	fp_pkt_ipv4_fix_csum(bad + 14);
	run(bad, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_MALFORMED);
}

static void test_nested_encapsulation(void **state)
{
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 40000, FP_TCP_SYN);
	__u8 inner[FP_PKT_MAX], once[FP_PKT_MAX], twice[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	/* Addressed to a VIP (else it is not_vip before it is nested). */
	len = encap(inner, ilen, lb4, vip4, NULL, 0, 1, once);
	/* The whole encapsulated packet (minus Ethernet) encapsulated again. */
	len = encap(once + 14, (size_t)len - 14, lb4, self4, other4, 0, 2, twice);
	run(twice, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_MALFORMED);
}

/* ---- who may send, where it may go, what is intact ---------------------------------- */

/* Writes the IPv6 literal @v6 at @p (fp_pkt_addr would make ::ffff:a.b.c.d IPv4). */
static void put_v6(__u8 *p, const char *v6)
{
	assert_int_equal(inet_pton(AF_INET6, v6, p), 1);
}

/*
 * Item 10: an IPv6 outer header from the IPv4-mapped form of an allowed IPv4 LB
 * (::ffff:192.0.2.10, allowlist 192.0.2.0/24) is no IPv4 LB: not_allowed. So are
 * special sources even where a prefix would cover them.
 */
static void test_mapped_source_refused(void **state)
{
	const char *const sources6[] = { "::ffff:192.0.2.10", "::ffff:10.200.0.5", "::1", "::",
					 "::192.0.2.10",      "ff02::1",	   NULL };
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 40000, FP_TCP_SYN);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	for (size_t i = 0; sources6[i]; i++) {
		len = encap(inner, ilen, lb6, self6, NULL, 0, 1, frame);
		put_v6(frame + 14 + 8, sources6[i]); /* UDP checksum 0: nothing else to fix */
		run(frame, (size_t)len, &r);
		if (r.delta[FP_BACKEND_NOT_ALLOWED] != 1)
			fail_msg("outer source %s: not refused as not_allowed", sources6[i]);
		assert_dropped(&r, FP_BACKEND_NOT_ALLOWED);
	}
	/* The same packet from the real IPv4 LB is delivered: the refusal is the family. */
	len = encap(inner, ilen, lb4, self4, NULL, 0, 1, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_SYN_LOCAL);
}

/*
 * Item 11: second chance forwards only to a configured backend of the packet's VIP.
 * Every address seen relayed on 2b22c18, a backend of another VIP, and IPv4-mapped or
 * group addresses in an IPv6 list: dropped as bad_hop, nothing sent anywhere.
 */
static void test_no_open_relay(void **state)
{
	const char *const hops4[] = { "203.0.113.77", "8.8.8.8",   "255.255.255.255",  "0.0.0.0",
				      "224.0.0.1",    "127.0.0.1", other_vip_backend4, NULL };
	const char *const hops6[] = { "2001:db8:bad::77",    "ff02::1", "::", "::1",
				      "::ffff:198.51.100.2", NULL };
	struct fp_pkt_spec s4 = tcp_spec("10.9.0.1", vip4, 4444, FP_TCP_ACK);
	struct fp_pkt_spec s6 = tcp_spec("fd00:9::1", vip6, 4444, FP_TCP_ACK);
	__u8 inner4[FP_PKT_MAX], inner6[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen4, ilen6;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen4 = inner_packet(&s4, inner4);
	ilen6 = inner_packet(&s6, inner6);
	for (size_t i = 0; hops4[i]; i++) {
		len = encap(inner4, ilen4, lb4, self4, hops4[i], 0, 2, frame);
		run(frame, (size_t)len, &r);
		if (r.delta[FP_BACKEND_BAD_HOP] != 1)
			fail_msg("next hop %s: not refused as bad_hop (retval %u)", hops4[i],
				 r.retval);
		assert_dropped(&r, FP_BACKEND_BAD_HOP);
		/* Also for an IPv6 inner packet and an ICMP error about an unknown flow. */
		len = encap(inner6, ilen6, lb4, self4, hops4[i], 0, 2, frame);
		run(frame, (size_t)len, &r);
		assert_dropped(&r, FP_BACKEND_BAD_HOP);
	}
	for (size_t i = 0; hops6[i]; i++) {
		len = encap(inner6, ilen6, lb6, self6, other6, 0, 2, frame);
		put_v6(frame + 14 + 40 + 8 + 4 + 4 + 16, hops6[i]); /* hops[1] */
		run(frame, (size_t)len, &r);
		if (r.delta[FP_BACKEND_BAD_HOP] != 1)
			fail_msg("next hop %s: not refused as bad_hop (retval %u)", hops6[i],
				 r.retval);
		assert_dropped(&r, FP_BACKEND_BAD_HOP);
	}
	/* A configured backend of the VIP is still a next hop. */
	len = encap(inner4, ilen4, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_forwarded(&r, frame, (size_t)len, other4);
}

/* Item 11: the inner destination must be a VIP of the config (else the stack routes it). */
static void test_inner_not_a_vip(void **state)
{
	const char *const dsts[] = { "10.100.0.99", "8.8.8.8", self4, NULL };
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	for (size_t i = 0; dsts[i]; i++) {
		struct fp_pkt_spec s = tcp_spec("10.9.0.1", dsts[i], 40000, FP_TCP_SYN);

		ilen = inner_packet(&s, inner);
		len = encap(inner, ilen, lb4, self4, NULL, 0, 1, frame);
		run(frame, (size_t)len, &r);
		if (r.delta[FP_BACKEND_NOT_VIP] != 1)
			fail_msg("inner destination %s: not refused as not_vip", dsts[i]);
		assert_dropped(&r, FP_BACKEND_NOT_VIP);
	}
	/* IPv6 inner packet to the IPv4-mapped form of an IPv4 VIP. */
	{
		struct fp_pkt_spec s = tcp_spec("fd00:9::1", vip6, 40000, FP_TCP_SYN);

		ilen = inner_packet(&s, inner);
		put_v6(inner + 24, "::ffff:10.100.0.1");
		len = encap(inner, ilen, lb6, self6, NULL, 0, 1, frame);
		run(frame, (size_t)len, &r);
		assert_dropped(&r, FP_BACKEND_NOT_VIP);
	}
}

/*
 * Item 11: frames not addressed to this host are not processed: another unicast MAC
 * (a promiscuous device, a switch flooding: not_our_mac), broadcast and multicast MACs,
 * and an outer destination that is not one of this host's addresses (not_local).
 */
static void test_not_addressed_to_us(void **state)
{
	static const __u8 macs[][6] = { { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 },
					{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
					{ 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 },
					{ 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 } };
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 40000, FP_TCP_SYN);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	for (size_t i = 0; i < sizeof(macs) / sizeof(macs[0]); i++) {
		len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
		memcpy(frame, macs[i], 6);
		run(frame, (size_t)len, &r);
		/* Unicast to another MAC: a flooded frame, counted as such; group: not_local. */
		enum fp_backend_counter want =
			i == 0 ? FP_BACKEND_NOT_OUR_MAC : FP_BACKEND_NOT_LOCAL;
		if (r.delta[want] != 1)
			fail_msg("frame to MAC %02x:...:%02x: not refused as %s", macs[i][0],
				 macs[i][5], fp_backend_counter_name(want));
		assert_dropped(&r, want);
	}
	/* Our MAC, another host's IP (both families). */
	len = encap(inner, ilen, lb4, other4, self4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_NOT_LOCAL);
	len = encap(inner, ilen, lb6, stranger6, self6, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_NOT_LOCAL);
	len = encap(inner, ilen, lb4, "255.255.255.255", self4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_NOT_LOCAL);
}

/* Item 12: an outer IPv4 header with a wrong checksum is dropped, not forwarded. */
static void test_bad_outer_checksum(void **state)
{
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 4444, FP_TCP_ACK);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	frame[14 + 10] ^= 0x01; /* the checksum itself */
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_BAD_CHECKSUM);
	/* A corrupted TTL byte (checksum left as it was). */
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	frame[14 + 8] ^= 0x40;
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_BAD_CHECKSUM);
	/* Both bits flipped back: the same frame is forwarded (the checksum was the reason). */
	frame[14 + 8] ^= 0x40;
	run(frame, (size_t)len, &r);
	assert_forwarded(&r, frame, (size_t)len, other4);
}

/*
 * Item 21: `lb up`'s neighbour probe, an empty UDP datagram from an LB to the
 * encapsulation port, has its own counter; it is no malformed packet.
 */
static void test_neighbour_probe(void **state)
{
	const char *const pairs[][2] = { { lb4, self4 }, { lb6, self6 } };
	struct fp_pkt_spec s = { 0 };
	__u8 frame[FP_PKT_MAX];
	struct run_result r;
	int len;

	(void)state;
	REQUIRE_READY();
	for (size_t i = 0; i < 2; i++) {
		memset(&s, 0, sizeof(s));
		memcpy(s.dst_mac, fx.ns.own_mac, 6);
		s.src = fp_pkt_addr(pairs[i][0]);
		s.dst = fp_pkt_addr(pairs[i][1]);
		s.proto = IPPROTO_UDP;
		s.sport = 51000;
		s.dport = ENCAP_PORT;
		s.payload_len = 0;
		len = fp_pkt_build(&s, frame, sizeof(frame));
		run(frame, (size_t)(len < 60 ? 60 : len), &r);
		assert_dropped(&r, FP_BACKEND_PROBE);
	}
	/* From a stranger it is just not allowed. */
	s.src = fp_pkt_addr(stranger6);
	len = fp_pkt_build(&s, frame, sizeof(frame));
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_NOT_ALLOWED);
}

/*
 * Item 13: no route to a configured next hop: the packet is delivered here as it
 * arrived (the route is looked up before any byte changes).
 */
static void test_no_route(void **state)
{
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 4444, FP_TCP_ACK);
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, unrouted4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_NO_ROUTE);
}

/* ---- tunnel probe (step 2b) ------------------------------------------------------- */

#define PROBE_NONCE 0xfeedc0de12345678ULL
#define PROBE_SPORT 51234

/*
 * The datagram an LB node's health checker sends: from @src:@sport to @dst:encap_port,
 * @payload as UDP payload, the UDP checksum its stack computes; padded to the Ethernet
 * minimum. Returns the frame's length on the wire.
 */
static size_t probe_frame(const char *src, const char *dst, __u16 sport, const __u8 *payload,
			  size_t payload_len, __u8 *frame)
{
	struct fp_pkt_spec s = { 0 };
	int len;

	memcpy(s.dst_mac, fx.ns.own_mac, 6);
	memcpy(s.src_mac, fx.ns.next_hop_mac, 6);
	s.src = fp_pkt_addr(src);
	s.dst = fp_pkt_addr(dst);
	s.proto = IPPROTO_UDP;
	s.sport = sport;
	s.dport = ENCAP_PORT;
	s.payload = payload;
	s.payload_len = payload_len;
	memset(frame, 0, 60);
	len = fp_pkt_build(&s, frame, FP_PKT_MAX);
	assert_true(len > 0);
	return len < 60 ? 60 : (size_t)len;
}

static size_t probe_udp_offset(const __u8 *frame)
{
	return 14 + (frame[12] == 0x86 ? 40 : 20);
}

/*
 * The reflection, byte for byte: what comes out is the frame the backend's own stack
 * would have built for the reply (MACs, addresses and ports swapped, ctype 0x81, every
 * checksum computed from scratch by the test's packet builder), of the same size, sent
 * back out (redirect), counted once as tunnel_probe; the LB's check accepts it.
 */
static void probe_reflected(const char *lb, const char *self, int zero_udp_csum)
{
	__u8 req[FP_PROBE_SIZE], rep[FP_PROBE_SIZE], frame[FP_PKT_MAX], want[FP_PKT_MAX];
	struct fp_pkt_spec s = { 0 };
	struct run_result r;
	size_t len, udp;

	assert_int_equal(fp_tunnel_probe_build(req, sizeof(req), PROBE_NONCE), FP_PROBE_SIZE);
	memcpy(rep, req, sizeof(rep));
	rep[offsetof(struct fp_gue_probe, gue.proto)] = FP_GUE_CTYPE_PROBE_REPLY;
	len = probe_frame(lb, self, PROBE_SPORT, req, sizeof(req), frame);
	udp = probe_udp_offset(frame);
	if (zero_udp_csum)
		frame[udp + 6] = frame[udp + 7] = 0;

	memcpy(s.dst_mac, fx.ns.next_hop_mac, 6);
	memcpy(s.src_mac, fx.ns.own_mac, 6);
	s.src = fp_pkt_addr(self);
	s.dst = fp_pkt_addr(lb);
	s.proto = IPPROTO_UDP;
	s.sport = ENCAP_PORT;
	s.dport = PROBE_SPORT;
	s.payload = rep;
	s.payload_len = sizeof(rep);
	memset(want, 0, 60);
	assert_true(fp_pkt_build(&s, want, sizeof(want)) > 0);
	if (zero_udp_csum)
		want[udp + 6] = want[udp + 7] = 0; /* stays "no checksum" */

	run(frame, len, &r);
	assert_counted(&r, FP_BACKEND_TUNNEL_PROBE);
	assert_int_equal(r.retval, TC_ACT_REDIRECT);
	assert_int_equal(r.out_len, len);
	assert_memory_equal(r.out, want, len);
	assert_int_equal(fp_tunnel_probe_check_reply(r.out + udp + 8, sizeof(rep), PROBE_NONCE), 0);
}

static void test_tunnel_probe_reflected(void **state)
{
	(void)state;
	REQUIRE_READY();
	probe_reflected(lb4, self4, 0);
	probe_reflected(lb6, self6, 0);
	probe_reflected(lb4, self4, 1); /* IPv4 without UDP checksum: still none */
	/* Any address of the allowed prefix: 192.0.2.0/24, 2001:db8::/64. */
	probe_reflected("192.0.2.77", self4, 0);
	probe_reflected("2001:db8::77", self6, 0);
}

/* @payload (@len bytes) from @src to @dst: dropped, counted as @counter. */
static void probe_dropped(const char *src, const char *dst, const __u8 *payload, size_t len,
			  unsigned int counter, const char *what)
{
	__u8 frame[FP_PKT_MAX];
	struct run_result r;
	size_t n = probe_frame(src, dst, PROBE_SPORT, payload, len, frame);

	run(frame, n, &r);
	if (r.delta[counter] != 1 || r.retval != TC_ACT_SHOT)
		fail_msg("%s (%s -> %s): verdict %u, not counted as %s", what, src, dst, r.retval,
			 fp_backend_counter_name(counter));
	assert_dropped(&r, counter);
}

/*
 * Hostile probes: never reflected, each with its reason. From a source outside
 * lb_sources (a spoofer using backends as a reflector), a reply (no ping-pong between
 * two backends), truncated, with a payload (the reply would be no bigger, but there is
 * none to carry), unknown control types and magics, malformed GUE headers.
 */
static void test_tunnel_probe_hostile(void **state)
{
	static const __u8 ctypes[] = { 0x00, 0x01, 0x04, 0x29, 0x7f, 0x82, 0xf1, 0xff };
	const char *const pairs[][3] = { { lb4, self4, stranger4 }, { lb6, self6, stranger6 } };
	__u8 req[FP_PROBE_SIZE + 32], bad[FP_PROBE_SIZE + 32], frame[FP_PKT_MAX];
	struct run_result r;
	size_t n;

	(void)state;
	REQUIRE_READY();
	fp_tunnel_probe_build(req, sizeof(req), PROBE_NONCE);
	memset(req + FP_PROBE_SIZE, 0, sizeof(req) - FP_PROBE_SIZE);
	for (size_t i = 0; i < 2; i++) {
		const char *lb = pairs[i][0], *self = pairs[i][1], *stranger = pairs[i][2];

		probe_dropped(stranger, self, req, FP_PROBE_SIZE, FP_BACKEND_NOT_ALLOWED,
			      "probe from a stranger");
		probe_dropped(lb, i ? other6 : other4, req, FP_PROBE_SIZE, FP_BACKEND_NOT_LOCAL,
			      "probe for another host");

		memcpy(bad, req, FP_PROBE_SIZE);
		bad[1] = FP_GUE_CTYPE_PROBE_REPLY;
		probe_dropped(lb, self, bad, FP_PROBE_SIZE, FP_BACKEND_TUNNEL_PROBE_REPLY,
			      "reply arriving");
		probe_dropped(lb, self, bad, 4, FP_BACKEND_TUNNEL_PROBE_REPLY,
			      "truncated reply arriving");

		/* Every shorter datagram that still has the C bit: 1..15 bytes. */
		for (size_t len = 1; len < FP_PROBE_SIZE; len++)
			probe_dropped(lb, self, req, len, FP_BACKEND_TUNNEL_PROBE_TRUNCATED,
				      "truncated probe");
		/*
		 * Frame cut short of what the IP length says: the parser does not take it
		 * for ours (the stack drops it), and it is never reflected.
		 */
		n = probe_frame(lb, self, PROBE_SPORT, req, FP_PROBE_SIZE, frame);
		run(frame, n - 6, &r);
		assert_counted(&r, FP_BACKEND_NOT_FLOWPIN);
		assert_int_equal(r.retval, TC_ACT_OK);

		for (size_t len = FP_PROBE_SIZE + 1; len <= sizeof(req); len += 3)
			probe_dropped(lb, self, req, len, FP_BACKEND_TUNNEL_PROBE_PAYLOAD,
				      "probe with a payload");
		/* Hlen covering the extra bytes: still a payload (a probe is 16 bytes). */
		memcpy(bad, req, sizeof(req));
		bad[0] = FP_GUE_C_BIT | 5;
		probe_dropped(lb, self, bad, FP_PROBE_SIZE + 8, FP_BACKEND_TUNNEL_PROBE_PAYLOAD,
			      "probe with a longer header");

		for (size_t c = 0; c < sizeof(ctypes); c++) {
			memcpy(bad, req, FP_PROBE_SIZE);
			bad[1] = ctypes[c];
			probe_dropped(lb, self, bad, FP_PROBE_SIZE, FP_BACKEND_CONTROL_UNKNOWN,
				      "unknown control type");
		}
		memcpy(bad, req, FP_PROBE_SIZE);
		bad[7] = '2'; /* "fpP2": a probe version this agent does not speak */
		probe_dropped(lb, self, bad, FP_PROBE_SIZE, FP_BACKEND_CONTROL_UNKNOWN,
			      "unknown magic");

		memcpy(bad, req, FP_PROBE_SIZE);
		bad[0] = FP_GUE_C_BIT | 2; /* Hlen short of the nonce */
		probe_dropped(lb, self, bad, FP_PROBE_SIZE, FP_BACKEND_MALFORMED, "Hlen 2");
		memcpy(bad, req, FP_PROBE_SIZE);
		bad[3] = 0x03; /* flags: P and another */
		probe_dropped(lb, self, bad, FP_PROBE_SIZE, FP_BACKEND_MALFORMED, "flags");
		memcpy(bad, req, FP_PROBE_SIZE);
		bad[0] = 0x40 | FP_GUE_C_BIT | 3; /* GUE version 1 */
		probe_dropped(lb, self, bad, FP_PROBE_SIZE, FP_BACKEND_MALFORMED, "GUE version 1");

		/* Source port 0: the reply would go to port 0. */
		n = probe_frame(lb, self, 0, req, FP_PROBE_SIZE, frame);
		run(frame, n, &r);
		assert_dropped(&r, FP_BACKEND_MALFORMED);
		/* A group source MAC: the reply would go to every host of the segment. */
		n = probe_frame(lb, self, PROBE_SPORT, req, FP_PROBE_SIZE, frame);
		memset(frame + 6, 0xff, 6);
		run(frame, n, &r);
		assert_dropped(&r, FP_BACKEND_MALFORMED);
		frame[6] = 0x01; /* multicast: 01:ff:ff:ff:ff:ff */
		run(frame, n, &r);
		assert_dropped(&r, FP_BACKEND_MALFORMED);
		/* UDP checksum zero: "none" on IPv4 (reflected, test above), invalid on IPv6. */
		if (i) {
			n = probe_frame(lb, self, PROBE_SPORT, req, FP_PROBE_SIZE, frame);
			frame[probe_udp_offset(frame) + 6] = frame[probe_udp_offset(frame) + 7] = 0;
			run(frame, n, &r);
			assert_dropped(&r, FP_BACKEND_MALFORMED);
		}
	}
	/* IPv6 extension headers (a swap would not reverse a routing header): refused. */
	{
		struct fp_pkt_spec s = { 0 };

		memcpy(s.dst_mac, fx.ns.own_mac, 6);
		s.src = fp_pkt_addr(lb6);
		s.dst = fp_pkt_addr(self6);
		s.proto = IPPROTO_UDP;
		s.sport = PROBE_SPORT;
		s.dport = ENCAP_PORT;
		s.payload = req;
		s.payload_len = FP_PROBE_SIZE;
		s.n_dest = 1;
		run(frame, (size_t)fp_pkt_build(&s, frame, sizeof(frame)), &r);
		assert_dropped(&r, FP_BACKEND_MALFORMED);
	}
}

/* ---- TCP tickets (bpf/backend_ticket.h) ----------------------------------------------- */

static __u32 clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u32)((__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000);
}

/* TCP option layouts; ts: offset of the timestamp option's kind byte, -1 for "none". */
struct ts_layout {
	const char *what;
	__u8 len;
	__u8 bytes[40];
	int ts;
};

static const struct ts_layout ts_layouts[] = {
	{ "NOP NOP TS (Linux's)", 12, { 1, 1, 8, 10 }, 2 },
	{ "TS first, NOP NOP after", 12, { 8, 10, [10] = 1, [11] = 1 }, 0 },
	{ "NOP TS NOP: the values at odd offsets", 12, { 1, 8, 10, [11] = 1 }, 1 },
	{ "MSS, SACK-permitted, TS (a SYN-ACK's)", 16, { 2, 4, 5, 0xb4, 4, 2, 8, 10 }, 6 },
	{ "NOP NOP SACK block, NOP NOP TS",
	  24,
	  { 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 8, 10 },
	  14 },
	{ "window scale, TS at an odd offset, NOP NOP EOL",
	  16,
	  { 3, 3, 7, 8, 10, [13] = 1, [14] = 1, [15] = 0 },
	  3 },
	{ "EOL before TS: none", 16, { 0, 0, 0, 0, 8, 10 }, -1 },
	{ "TS of length 8: none", 12, { 1, 1, 8, 8, [10] = 1, [11] = 1 }, -1 },
	{ "an option running past the header: none",
	  12,
	  { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 10 },
	  -1 },
	{ "no options", 0, { 0 }, -1 },
};

static void put_be32(__u8 *p, __u32 v)
{
	p[0] = (__u8)(v >> 24);
	p[1] = (__u8)(v >> 16);
	p[2] = (__u8)(v >> 8);
	p[3] = (__u8)v;
}

/* @l's options with TSval @tsval and TSecr @tsecr where the option is. */
static void layout_with(const struct ts_layout *l, __u32 tsval, __u32 tsecr, __u8 *out)
{
	memcpy(out, l->bytes, sizeof(l->bytes));
	if (l->ts >= 0) {
		put_be32(out + l->ts + 2, tsval);
		put_be32(out + l->ts + 6, tsecr);
	}
}

static void ticket_flow(const char *client, const char *vip, __u16 cport, __u16 vport,
			struct fp_flow_key *f)
{
	struct fp_pkt_spec s = tcp_spec(client, vip, cport, FP_TCP_ACK);

	s.dport = vport;
	fp_pkt_flow_key(&s, 0, f);
}

/* A segment VIP:@vport -> @client:@cport with @opts (egress: Ethernet, IP, TCP). */
static int egress_frame(const char *vip, __u16 vport, const char *client, __u16 cport,
			const __u8 *opts, __u8 opts_len, __u8 *out)
{
	struct fp_pkt_spec s = tcp_spec(vip, client, vport, FP_TCP_ACK | FP_TCP_PSH);
	int len;

	s.dport = cport;
	s.tcp_options = opts;
	s.tcp_options_len = opts_len;
	len = fp_pkt_build(&s, out, FP_PKT_MAX);
	assert_true(len > 0);
	return len;
}

/*
 * Egress: the segment from @vip leaves with TSval @want (the rest as it was, the TCP
 * checksum right: the expected frame is built whole with it), or untouched when the
 * layout has no timestamp or @want is @tsval.
 */
static void egress_case(const char *vip, __u16 vport, const char *client, __u16 cport,
			const struct ts_layout *l, __u32 tsval, __u32 want)
{
	__u8 opts[40], frame[FP_PKT_MAX], expect[FP_PKT_MAX];
	struct run_result r;
	int len, want_len;

	layout_with(l, tsval, 0x01020304, opts);
	len = egress_frame(vip, vport, client, cport, opts, l->len, frame);
	layout_with(l, want, 0x01020304, opts);
	want_len = egress_frame(vip, vport, client, cport, opts, l->len, expect);
	run_prog(fp_backend_egress_prog_fd(fx.be), frame, (size_t)len, &r);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_int_equal(r.out_len, (__u32)want_len);
	if (l->ts < 0 || want == tsval) {
		assert_counted_also(&r, NO_COUNTER, NO_COUNTER);
		assert_memory_equal(r.out, frame, (size_t)len);
		return;
	}
	assert_counted(&r, FP_BACKEND_TICKET_WRITTEN);
	if (memcmp(r.out, expect, (size_t)want_len))
		fail_msg("%s: %s -> %s: the egress frame is not the expected one", l->what, vip,
			 client);
}

/* The published vectors, byte for byte, in every option layout. */
static void test_ticket_egress_vectors(void **state)
{
	(void)state;
	REQUIRE_READY();
	/* Vector 1 (tvip4:443, id 5) and 2 (tvip4:80, id 255); K = 8. */
	for (size_t v = 0; v < 2; v++) {
		const struct fp_ticket_vector *t = &fp_ticket_vectors[v];

		assert_string_equal(t->vip, tvip4);
		for (size_t i = 0; i < sizeof(ts_layouts) / sizeof(ts_layouts[0]); i++)
			egress_case(t->vip, t->vip_port, t->client, t->client_port, &ts_layouts[i],
				    t->tsval, t->ticket);
	}
}

/* IPv6, K = 12, id 4095: the ticket from the (vector-checked) C functions. */
static void test_ticket_egress_v6(void **state)
{
	struct fp_flow_key f;
	__u32 tsval = 0xdeadbeef;
	__u64 fh;

	(void)state;
	REQUIRE_READY();
	ticket_flow(client6, tvip6, 41000, 80, &f);
	fh = fp_ticket_flow_hash(&fx.ticket_key, &f);
	for (size_t i = 0; i < sizeof(ts_layouts) / sizeof(ts_layouts[0]); i++)
		egress_case(tvip6, 80, client6, 41000, &ts_layouts[i], tsval,
			    fp_ticket_encode(tsval, fh, 4095, 12));
}

/* Not a ticket VIP of this host: nothing changes, nothing counts. */
static void test_ticket_egress_untouched(void **state)
{
	const struct ts_layout *l = &ts_layouts[0];

	(void)state;
	REQUIRE_READY();
	egress_case(plain_vip4, 80, client4, 40000, l, 0x12345678, 0x12345678); /* no tickets */
	egress_case(vip4, 80, client4, 40000, l, 0x12345678, 0x12345678);	/* proto unset */
	egress_case(tvip4, 8080, client4, 40000, l, 0x12345678, 0x12345678);	/* other port */
	egress_case(self4, 443, "10.9.0.1", 40000, l, 0x12345678, 0x12345678);	/* not a VIP */
	egress_case("10.9.0.1", 40000, tvip4, 443, l, 0x12345678, 0x12345678);	/* towards it */
}

/*
 * Every cut of a ticket segment is safe: untouched while the timestamp option is not
 * whole, rewritten once it is (the egress reads the headers only: the local stack's
 * payload is in page fragments, beyond what the program sees).
 */
static void test_ticket_egress_truncated(void **state)
{
	const struct fp_ticket_vector *t = &fp_ticket_vectors[0];
	__u8 opts[40], frame[FP_PKT_MAX], cut[FP_PKT_MAX], want[FP_PKT_MAX];
	const size_t ts_end = 14 + 20 + 20 + 12; /* the options end with the TSecr */
	struct run_result r;
	int len;

	(void)state;
	REQUIRE_READY();
	layout_with(&ts_layouts[0], t->tsval, 0x01020304, opts);
	len = egress_frame(t->vip, t->vip_port, t->client, t->client_port, opts, 12, frame);
	layout_with(&ts_layouts[0], t->ticket, 0x01020304, opts);
	assert_int_equal(
		egress_frame(t->vip, t->vip_port, t->client, t->client_port, opts, 12, want), len);
	/* A test run needs the IP header. */
	for (size_t n = 14 + 20; n < (size_t)len; n++) {
		memcpy(cut, frame, n);
		run_prog(fp_backend_egress_prog_fd(fx.be), cut, n, &r);
		assert_int_equal(r.retval, TC_ACT_OK);
		if (n < ts_end) {
			assert_counted_also(&r, NO_COUNTER, NO_COUNTER);
			assert_memory_equal(r.out, cut, n);
			continue;
		}
		/* The TSval and the checksum (the whole segment's, payload included). */
		assert_counted(&r, FP_BACKEND_TICKET_WRITTEN);
		assert_memory_equal(r.out, want, n);
	}
}

/* What the egress leaves to others: IPv6 extension headers, IPv4 fragments. */
static void test_ticket_egress_odd_packets(void **state)
{
	const struct fp_ticket_vector *t = &fp_ticket_vectors[0];
	struct fp_pkt_spec s = tcp_spec(tvip6, client6, 80, FP_TCP_ACK);
	__u8 opts[40], frame[FP_PKT_MAX];
	struct run_result r;
	int len;

	(void)state;
	REQUIRE_READY();
	layout_with(&ts_layouts[0], 1, 2, opts);
	s.dport = 41000;
	s.tcp_options = opts;
	s.tcp_options_len = 12;
	s.n_dest = 1;
	len = fp_pkt_build(&s, frame, sizeof(frame));
	assert_true(len > 0);
	run_prog(fp_backend_egress_prog_fd(fx.be), frame, (size_t)len, &r);
	assert_int_equal(r.retval, TC_ACT_OK);
	assert_counted_also(&r, NO_COUNTER, NO_COUNTER);
	assert_memory_equal(r.out, frame, (size_t)len);
	s = tcp_spec(t->vip, t->client, t->vip_port, FP_TCP_ACK);
	s.dport = t->client_port;
	s.tcp_options = opts;
	s.tcp_options_len = 12;
	s.fragment = 1;
	s.more_fragments = 1;
	len = fp_pkt_build(&s, frame, sizeof(frame));
	assert_true(len > 0);
	run_prog(fp_backend_egress_prog_fd(fx.be), frame, (size_t)len, &r);
	assert_counted_also(&r, NO_COUNTER, NO_COUNTER);
	assert_memory_equal(r.out, frame, (size_t)len);
}

/*
 * Ingress: a segment of the real connection @client:@cport -> @vip:80, TSecr @tsecr in
 * layout @l, delivered with TSecr @want (and the checksum right: the expected inner
 * packet is built whole with it); @verdict and @also counted.
 */
static void ingress_case(const char *client, const char *vip, __u16 cport, const char *lb,
			 const char *self, const char *other, const struct ts_layout *l, __u8 flags,
			 __u32 tsecr, __u32 want, unsigned int verdict, unsigned int also)
{
	struct fp_pkt_spec s = tcp_spec(client, vip, cport, flags);
	__u8 opts[40], inner[FP_PKT_MAX], want_inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct run_result r;
	size_t ilen;
	int len;

	layout_with(l, 0x11223344, tsecr, opts);
	s.tcp_options = opts;
	s.tcp_options_len = l->len;
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb, self, other, 0, 2, frame);
	layout_with(l, 0x11223344, want, opts);
	assert_int_equal(inner_packet(&s, want_inner), ilen);
	run(frame, (size_t)len, &r);
	assert_delivered_also(&r, frame, want_inner, ilen, verdict, also);
}

static void ingress_restores(const char *client, const char *vip, __u16 cport, __u16 sid, __u8 bits,
			     const char *lb, const char *self, const char *other)
{
	struct fp_flow_key f;
	__u64 fh;

	ticket_flow(client, vip, cport, 80, &f);
	fh = fp_ticket_flow_hash(&fx.ticket_key, &f);
	for (size_t i = 0; i < sizeof(ts_layouts) / sizeof(ts_layouts[0]); i++) {
		const struct ts_layout *l = &ts_layouts[i];
		/* Sent 1.5 s ago, and one sent just now (the clock of the program's run). */
		__u32 t1 = clock_ms() - 1500, t2 = clock_ms();
		__u32 e1 = fp_ticket_encode(t1, fh, sid, bits),
		      e2 = fp_ticket_encode(t2, fh, sid, bits);

		if (l->ts < 0) {
			ingress_case(client, vip, cport, lb, self, other, l, FP_TCP_ACK, e1, e1,
				     FP_BACKEND_ESTABLISHED_LOCAL, FP_BACKEND_TICKET_NO_TIMESTAMP);
			continue;
		}
		ingress_case(client, vip, cport, lb, self, other, l, FP_TCP_ACK, e1, t1,
			     FP_BACKEND_ESTABLISHED_LOCAL, FP_BACKEND_TICKET_RESTORED);
		ingress_case(client, vip, cport, lb, self, other, l, FP_TCP_ACK | FP_TCP_PSH, e2,
			     t2, FP_BACKEND_ESTABLISHED_LOCAL, FP_BACKEND_TICKET_RESTORED);
		/* A ticket naming the previous owner (id 7) is not ours: left alone. */
		e1 = fp_ticket_encode(t1, fh, 7, bits);
		ingress_case(client, vip, cport, lb, self, other, l, FP_TCP_ACK, e1, e1,
			     FP_BACKEND_ESTABLISHED_LOCAL, FP_BACKEND_TICKET_MISMATCH);
	}
}

static void test_ticket_ingress_restores(void **state)
{
	(void)state;
	REQUIRE_READY();
	ingress_restores(client4, tvip4, fx.tkt_port_v4, 255, 8, lb4, self4, other4);
	ingress_restores(client4, tvip4, fx.tkt_port_v4, 255, 8, lb6, self6, other6);
	ingress_restores(client6, tvip6, fx.tkt_port_v6, 4095, 12, lb6, self6, other6);
	ingress_restores(client6, tvip6, fx.tkt_port_v6, 4095, 12, lb4, self4, other4);
}

/*
 * Forged tickets and tickets of other flows: whatever TSecr a client sends, it is
 * restored only when it names this host for its own flow, which a forger hits 1 time
 * in 2^K; every other value reaches the stack as sent.
 */
static void test_ticket_ingress_forged(void **state)
{
	const struct ts_layout *l = &ts_layouts[0];
	struct fp_flow_key f, other;
	unsigned int restored = 0;
	__u64 fh, oh;
	__u32 t;

	(void)state;
	REQUIRE_READY();
	ticket_flow(client4, tvip4, fx.tkt_port_v4, 80, &f);
	ticket_flow(client4, tvip4, (__u16)(fx.tkt_port_v4 + 1), 80, &other);
	fh = fp_ticket_flow_hash(&fx.ticket_key, &f);
	oh = fp_ticket_flow_hash(&fx.ticket_key, &other);
	t = clock_ms() - 100;
	/*
	 * Tickets for the flow next door (the client's previous connection), and made
	 * under another key (what a client guessing the key sends).
	 */
	for (__u32 i = 0; i < 2 * 256; i++) {
		__u64 made_with = i < 256 ? oh : fh ^ 0x5555555500000000ULL;
		__u32 replayed = fp_ticket_encode(t, made_with, (__u16)(i % 256), 8);
		int ours = fp_ticket_sid(replayed, fh, 8) == 255;

		ingress_case(client4, tvip4, fx.tkt_port_v4, lb4, self4, other4, l, FP_TCP_ACK,
			     replayed,
			     ours ? fp_ticket_restore(replayed, fh, 8, clock_ms()) : replayed,
			     FP_BACKEND_ESTABLISHED_LOCAL,
			     ours ? FP_BACKEND_TICKET_RESTORED : FP_BACKEND_TICKET_MISMATCH);
		restored += ours;
	}
	/* One value of 256 names id 255 under each: exactly one each time. */
	assert_int_equal(restored, 2);
}

/* What tickets leave alone on ingress. */
static void test_ticket_ingress_untouched(void **state)
{
	const struct ts_layout *l = &ts_layouts[0], *none = &ts_layouts[9];
	struct fp_pkt_spec s;
	__u8 opts[40], inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct fp_flow_key f;
	struct run_result r;
	size_t ilen;
	__u32 e;
	int len;

	(void)state;
	REQUIRE_READY();
	/* A SYN: its TSecr (0) echoes nothing; a SYN without timestamps is counted. */
	ingress_case("10.9.0.1", tvip4, 4444, lb4, self4, other4, l, FP_TCP_SYN, 0, 0,
		     FP_BACKEND_SYN_LOCAL, NO_COUNTER);
	ingress_case("10.9.0.1", tvip4, 4444, lb4, self4, other4, none, FP_TCP_SYN, 0, 0,
		     FP_BACKEND_SYN_LOCAL, FP_BACKEND_TICKET_NO_TIMESTAMP);
	/* A VIP without tickets: no ticket counter whatever the TSecr. */
	ingress_case("10.9.0.1", plain_vip4, 4444, lb4, self4, other4, l, FP_TCP_SYN, 5, 5,
		     FP_BACKEND_SYN_LOCAL, NO_COUNTER);
	ingress_case("10.9.0.1", vip4, 4444, lb4, self4, other4, none, FP_TCP_SYN, 5, 5,
		     FP_BACKEND_SYN_LOCAL, NO_COUNTER);

	/*
	 * A ticket naming this host on a flow without a socket here: forwarded to the next
	 * hop with the TSecr as it came (restoring is for the local stack only).
	 */
	ticket_flow("10.9.0.1", tvip4, 4444, 80, &f);
	e = fp_ticket_encode(clock_ms() - 10, fp_ticket_flow_hash(&fx.ticket_key, &f), 255, 8);
	s = tcp_spec("10.9.0.1", tvip4, 4444, FP_TCP_ACK);
	layout_with(l, 1, e, opts);
	s.tcp_options = opts;
	s.tcp_options_len = l->len;
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_forwarded(&r, frame, (size_t)len, other4);
	/* ... and, no hop left, delivered as it came (the stack answers RST). */
	len = encap(inner, ilen, lb4, self4, NULL, 0, 1, frame);
	run(frame, (size_t)len, &r);
	assert_delivered(&r, frame, inner, ilen, FP_BACKEND_LAST_RESORT);
}

/*
 * The counters map is the agent's layout check: a pinned map of another length (an
 * agent of the build before the tunnel probe had 19 counters) is refused by name, not
 * read half.
 */
static void test_counters_of_another_build_refused(void **state)
{
	__u64 out[FP_BACKEND_NR_COUNTERS];
	int fd;

	(void)state;
	REQUIRE_READY();
	fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "old_counters", sizeof(__u32), sizeof(__u64),
			    FP_BACKEND_NR_COUNTERS - 5, NULL);
	assert_true(fd >= 0);
	assert_int_equal(fp_backend_read_counters(fd, out), -EPROTO);
	close(fd);
	assert_int_equal(fp_backend_read_counters(fx.counters_fd, out), 0);
}

/*
 * The pinned `state` map of an agent of another build, whose struct is larger: refused
 * (-EPROTO), and nothing written past the caller's struct. The lookup used to copy the
 * map's own value size into the caller's struct on the stack (`backend down`): 32
 * bytes into 24 here, caught by the guard after it with or without a sanitizer. In a
 * bpffs of this test's own, in a private mount namespace.
 */
static void test_state_of_another_build_refused(void **state)
{
	struct {
		struct fp_backend_attach_info info;
		__u8 guard[64];
	} out;
	__u8 value[sizeof(out.info) + 8], zeros[sizeof(out.guard)] = { 0 };
	char dir[] = "/tmp/flowpin-test-state.XXXXXX", path[64];
	__u32 zero = 0;
	int fd, err;

	(void)state;
	REQUIRE_READY();
	assert_int_equal(unshare(CLONE_NEWNS), 0);
	assert_int_equal(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(mount("bpf", dir, "bpf", 0, "mode=0700"), 0);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "state", sizeof(__u32), sizeof(value), 1, NULL);
	assert_true(fd >= 0);
	memset(value, 0x5a, sizeof(value));
	assert_int_equal(bpf_map_update_elem(fd, &zero, value, BPF_ANY), 0);
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);
	memset(&out, 0, sizeof(out));
	err = fp_backend_read_state(dir, &out.info);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	assert_memory_equal(out.guard, zeros, sizeof(zeros));
	assert_int_equal(err, -EPROTO);
}

/*
 * fp_backend_update(): the running program takes another config in place. The maps hold
 * exactly the new sets (a backend dropped from the VIP is no next hop any more, one
 * added is; an LB source dropped is refused), and back; what the loaded program cannot
 * take is refused with nothing changed: another encap_port, another ticket key while
 * it writes tickets, tickets on a program loaded without.
 */
static void test_update_in_place(void **state)
{
	struct fp_pkt_spec s = tcp_spec("10.9.0.1", vip4, 4444, FP_TCP_ACK);
	struct fp_vip_cfg vips[FLEET_VIPS];
	struct fp_backend_opts want = fx.opts, bad;
	struct fp_backend *plain = NULL;
	__u8 inner[FP_PKT_MAX], frame[FP_PKT_MAX];
	struct fp_hash_key other_key = { 1, 2 };
	struct run_result r;
	size_t ilen;
	int len;

	(void)state;
	REQUIRE_READY();
	ilen = inner_packet(&s, inner);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_forwarded(&r, frame, (size_t)len, other4);

	/* web without other4 (its first two backends: self4, self6), one LB prefix. */
	memcpy(vips, fx.opts.vips, sizeof(vips));
	vips[0].n_backends = 2;
	want.vips = vips;
	want.n_lb_sources = 1; /* 192.0.2.0/24 only */
	assert_int_equal(fp_backend_update(fx.be, &want, &fx.opts), 0);
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_BAD_HOP);
	/* web6 kept other6; the IPv6 LB source is gone. */
	len = encap(inner, ilen, lb6, self6, other6, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_NOT_ALLOWED);

	/* Needs a restart: refused, the maps as they were (other4 still no next hop). */
	bad = fx.opts;
	bad.encap_port = ENCAP_PORT + 1;
	assert_int_equal(fp_backend_update(fx.be, &bad, &want), -EINVAL);
	bad = fx.opts;
	bad.hash_key = &other_key;
	assert_int_equal(fp_backend_update(fx.be, &bad, &want), -EINVAL);
	len = encap(inner, ilen, lb4, self4, other4, 0, 2, frame);
	run(frame, (size_t)len, &r);
	assert_dropped(&r, FP_BACKEND_BAD_HOP);

	/* Back to the fixture's config: other4 is a next hop again. */
	assert_int_equal(fp_backend_update(fx.be, &fx.opts, &want), 0);
	run(frame, (size_t)len, &r);
	assert_forwarded(&r, frame, (size_t)len, other4);

	/* A program loaded without tickets cannot take them. */
	want = fx.opts;
	want.n_vips = 3; /* web, web6, other: no ticket VIPs */
	assert_int_equal(fp_backend_load(&want, &plain), 0);
	assert_int_equal(fp_backend_ticket_vips(plain), 0);
	assert_int_equal(fp_backend_check_update(plain, &fx.opts), -EINVAL);
	assert_int_equal(fp_backend_check_update(plain, &want), 0);
	/* Without tickets the hash key is nobody's concern. */
	want.hash_key = &other_key;
	assert_int_equal(fp_backend_check_update(plain, &want), 0);
	fp_backend_destroy(plain);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syn_v4_in_v4),
		cmocka_unit_test(test_syn_v6_in_v6),
		cmocka_unit_test(test_syn_v4_in_v6),
		cmocka_unit_test(test_syn_v6_in_v4),
		cmocka_unit_test(test_established_v4),
		cmocka_unit_test(test_established_v6),
		cmocka_unit_test(test_udp_and_icmp_delivered),
		cmocka_unit_test(test_unknown_forwarded),
		cmocka_unit_test(test_last_resort),
		cmocka_unit_test(test_loop_guard),
		cmocka_unit_test(test_icmp_error_follows_flow),
		cmocka_unit_test(test_syncookie),
		cmocka_unit_test(test_not_flowpin_untouched),
		cmocka_unit_test(test_not_allowed),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_nested_encapsulation),
		cmocka_unit_test(test_mapped_source_refused),
		cmocka_unit_test(test_no_open_relay),
		cmocka_unit_test(test_inner_not_a_vip),
		cmocka_unit_test(test_not_addressed_to_us),
		cmocka_unit_test(test_bad_outer_checksum),
		cmocka_unit_test(test_neighbour_probe),
		cmocka_unit_test(test_no_route),
		cmocka_unit_test(test_tunnel_probe_reflected),
		cmocka_unit_test(test_tunnel_probe_hostile),
		cmocka_unit_test(test_ticket_egress_vectors),
		cmocka_unit_test(test_ticket_egress_v6),
		cmocka_unit_test(test_ticket_egress_untouched),
		cmocka_unit_test(test_ticket_egress_truncated),
		cmocka_unit_test(test_ticket_egress_odd_packets),
		cmocka_unit_test(test_ticket_ingress_restores),
		cmocka_unit_test(test_ticket_ingress_forged),
		cmocka_unit_test(test_ticket_ingress_untouched),
		cmocka_unit_test(test_counters_of_another_build_refused),
		cmocka_unit_test(test_state_of_another_build_refused),
		cmocka_unit_test(test_update_in_place),
	};

	fp_log_route_libbpf();
	return cmocka_run_group_tests(tests, setup, teardown);
}
