// SPDX-License-Identifier: MIT
/*
 * Per-packet cost of the backend's tc program (bpf/backend.bpf.c), path by path.
 *
 * Method as bench/bench_xdp.c: BPF_PROG_TEST_RUN with repeat = 1 (the program rewrites
 * the packet; a repeat would run on its own output), the kernel's per-run duration in
 * ns, a round is RUNS runs and its figure the median, the result the median of ROUNDS
 * rounds; paths measured interleaved. The kernel times the program run only (not the
 * skb set-up); the not_flowpin row, which parses Ethernet and IP and returns, is the
 * reference the other rows compare with.
 *
 * Runs in a private network namespace (flowpin/fibns.h) holding the VIP on lo, a
 * listener and one established connection, so the socket lookups and bpf_fib_lookup()
 * see what they see on a backend. Prints one markdown section for bench/run.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <flowpin/backend.h>
#include <flowpin/fibns.h>
#include <flowpin/log.h>
#include <flowpin/ticket.h>
#include <flowpin/tunnelprobe.h>
#include "common/pkt.h"

#define ROUNDS 21
#define RUNS   1000

struct path {
	const char *name;
	unsigned int counter; /* the counter the path must move (checked once); NO_COUNTER */
	int egress;	      /* run the egress program (TCP tickets) */
	__u8 frame[FP_PKT_MAX];
	int len;
	__u32 round[ROUNDS];
};

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static __u32 median(__u32 *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u32);
	return v[n / 2];
}

static __u8 own_mac[6]; /* the namespace device's: frames are addressed to it */

#define NO_COUNTER FP_BACKEND_NR_COUNTERS /* a path that counts nothing */
/* The TCP segments frame() builds: to this VIP port, with these options. */
static __u16 frame_port = 80;
static const __u8 *frame_opts;
static __u8 frame_opts_len;

/* The LB's frame around a TCP segment client:sport -> vip:80 (flags as pkt.h). */
static int frame(struct path *p, const char *lb, const char *hop0, const char *hop1,
		 const char *client, const char *vip, __u16 sport, __u8 flags)
{
	struct fp_pkt_spec s = { 0 };
	struct fp_encap_spec e = { 0 };
	__u8 inner[FP_PKT_MAX];
	int len;

	s.src = fp_pkt_addr(client);
	s.dst = fp_pkt_addr(vip);
	s.proto = IPPROTO_TCP;
	s.sport = sport;
	s.dport = frame_port;
	s.tcp_flags = flags;
	s.tcp_options = frame_opts;
	s.tcp_options_len = frame_opts_len;
	s.payload_len = 100;
	len = fp_pkt_build(&s, inner, sizeof(inner));
	if (len < 0)
		return len;
	if (!lb) { /* not encapsulated at all */
		memcpy(p->frame, inner, (size_t)len);
		return p->len = len;
	}
	e.outer_src = fp_pkt_addr(lb);
	memcpy(e.dst_mac, own_mac, 6);
	e.encap_port = 6080;
	e.hop_count = hop1 ? 2 : 1;
	e.hops[0] = fp_pkt_addr(hop0);
	if (hop1)
		e.hops[1] = fp_pkt_addr(hop1);
	p->len = fp_pkt_encap(&e, inner + 14, (size_t)len - 14, p->frame, sizeof(p->frame));
	return p->len;
}

/* An LB node's tunnel health probe (lib/tunnelprobe.c) from @lb to @self. */
static int probe_frame(struct path *p, const char *lb, const char *self)
{
	struct fp_pkt_spec s = { 0 };
	__u8 probe[FP_PROBE_SIZE];

	memcpy(s.dst_mac, own_mac, 6);
	s.src = fp_pkt_addr(lb);
	s.dst = fp_pkt_addr(self);
	s.proto = IPPROTO_UDP;
	s.sport = 50000;
	s.dport = 6080;
	s.payload = probe;
	s.payload_len = fp_tunnel_probe_build(probe, sizeof(probe), 1);
	memset(p->frame, 0, 60);
	p->len = fp_pkt_build(&s, p->frame, sizeof(p->frame));
	if (p->len > 0 && p->len < 60)
		p->len = 60;
	return p->len;
}

static int run_once(int prog, int ifindex, struct path *p, __u32 *ns, __u32 *retval)
{
	static __u8 out[FP_PKT_MAX];
	struct __sk_buff ctx = { .ifindex = (__u32)ifindex, .ingress_ifindex = (__u32)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p->frame, .data_size_in = (__u32)p->len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);
	int err = bpf_prog_test_run_opts(prog, &opts);

	*ns = opts.duration;
	*retval = opts.retval;
	return err;
}

/* A real connection 10.200.0.5 -> 10.100.0.1:@vport in this namespace; its client port. */
static int connection(__u16 vport, __u16 *port)
{
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(vport) };
	struct sockaddr_in cl = { .sin_family = AF_INET };
	socklen_t len = sizeof(cl);
	int one = 1, l, c;

	inet_pton(AF_INET, "10.100.0.1", &vip.sin_addr);
	inet_pton(AF_INET, "10.200.0.5", &cl.sin_addr);
	l = socket(AF_INET, SOCK_STREAM, 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || c < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&vip, sizeof(vip)) || listen(l, 4) ||
	    bind(c, (struct sockaddr *)&cl, sizeof(cl)) ||
	    connect(c, (struct sockaddr *)&vip, sizeof(vip)) || accept(l, NULL, NULL) < 0 ||
	    getsockname(c, (struct sockaddr *)&cl, &len))
		return -1;
	*port = ntohs(cl.sin_port);
	return 0; /* the sockets live as long as the process */
}

int main(void)
{
	static struct path paths[10];
	struct fp_prefix sources[2];
	struct fp_addr self[2];
	struct fp_backend_cfg backends[4] = { { .id = 1 }, { .id = 2 }, { .id = 3 }, { .id = 4 } };
	/* The VIP on port 80, and on 443 with TCP tickets (K = 8; this host is id 1). */
	struct fp_vip_cfg vip[2] = {
		{ .name = "bench",
		  .port = 80,
		  .proto = IPPROTO_TCP,
		  .backends = backends,
		  .n_backends = 4 },
		{ .name = "tickets",
		  .port = 443,
		  .proto = IPPROTO_TCP,
		  .ticket_bits = 8,
		  .backends = backends,
		  .n_backends = 4 },
	};
	struct fp_hash_key key = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL }, ticket_key;
	__u8 ts_opts[12] = { 1, 1, 8, 10 };
	struct fp_flow_key flow;
	struct fp_pkt_spec fs = { 0 };
	__u16 ticket_port;
	struct fp_backend_opts opts = { .encap_port = 6080 };
	struct fp_backend *be = NULL;
	__u64 before[FP_BACKEND_NR_COUNTERS], after[FP_BACKEND_NR_COUNTERS];
	__u32 runs[RUNS], ns, retval;
	struct fp_fibns fns;
	__u16 port;
	int prog, egress, n = 0, err = 1;

	if (fp_fibns_enter(NULL, &fns) ||
	    system("ip addr add 10.100.0.1/32 dev lo && ip addr add 10.200.0.5/32 dev lo") ||
	    connection(80, &port) || connection(443, &ticket_port)) {
		fprintf(stderr, "bench_backend: namespace set-up failed (root needed)\n");
		return 1;
	}
	sources[0].addr = fp_pkt_addr("192.0.2.0");
	sources[0].len = 96 + 24;
	sources[1].addr = fp_pkt_addr("2001:db8::");
	sources[1].len = 64;
	self[0] = fp_pkt_addr("192.0.2.1");
	self[1] = fp_pkt_addr("2001:db8::1");
	opts.lb_sources = sources;
	opts.n_lb_sources = 2;
	opts.self_addrs = self;
	opts.n_self_addrs = 2;
	/* The VIP with this backend and the previous owner, both families. */
	vip[0].addr = vip[1].addr = fp_pkt_addr("10.100.0.1");
	backends[0].addr = self[0];
	backends[1].addr = self[1];
	backends[2].addr = fp_pkt_addr("198.51.100.2");
	backends[3].addr = fp_pkt_addr("2001:db8:2::2");
	opts.vips = vip;
	opts.n_vips = 2;
	opts.hash_key = &key;
	memcpy(own_mac, fns.own_mac, 6);
	if (fp_backend_load(&opts, &be))
		return 1;
	prog = fp_backend_prog_fd(be);
	egress = fp_backend_egress_prog_fd(be);

	paths[n] = (struct path){ .name = "not_flowpin (plain TCP, passed on)",
				  .counter = FP_BACKEND_NOT_FLOWPIN };
	frame(&paths[n++], NULL, NULL, NULL, "10.9.0.1", "10.100.0.1", 4444, FP_TCP_ACK);
	paths[n] =
		(struct path){ .name = "not_allowed (dropped)", .counter = FP_BACKEND_NOT_ALLOWED };
	frame(&paths[n++], "203.0.113.9", "192.0.2.1", NULL, "10.9.0.1", "10.100.0.1", 4444,
	      FP_TCP_SYN);
	paths[n] =
		(struct path){ .name = "syn_local, IPv4 in IPv4", .counter = FP_BACKEND_SYN_LOCAL };
	frame(&paths[n++], "192.0.2.10", "192.0.2.1", "198.51.100.2", "10.9.0.1", "10.100.0.1",
	      4444, FP_TCP_SYN);
	paths[n] =
		(struct path){ .name = "syn_local, IPv4 in IPv6", .counter = FP_BACKEND_SYN_LOCAL };
	frame(&paths[n++], "2001:db8::10", "2001:db8::1", "2001:db8:2::2", "10.9.0.1", "10.100.0.1",
	      4444, FP_TCP_SYN);
	paths[n] = (struct path){ .name = "established_local (socket lookup)",
				  .counter = FP_BACKEND_ESTABLISHED_LOCAL };
	frame(&paths[n++], "192.0.2.10", "192.0.2.1", "198.51.100.2", "10.200.0.5", "10.100.0.1",
	      port, FP_TCP_ACK);
	paths[n] = (struct path){ .name = "forwarded (lookup, cookie check, FIB, redirect)",
				  .counter = FP_BACKEND_FORWARDED };
	frame(&paths[n++], "192.0.2.10", "192.0.2.1", "198.51.100.2", "10.9.0.1", "10.100.0.1",
	      4444, FP_TCP_ACK);

	paths[n] = (struct path){ .name = "tunnel_probe (reflected to the LB)",
				  .counter = FP_BACKEND_TUNNEL_PROBE };
	probe_frame(&paths[n++], "192.0.2.10", "192.0.2.1");

	/* TCP tickets: the client's echo of a ticket written 1 s ago, restored. */
	fs.src = fp_pkt_addr("10.200.0.5");
	fs.dst = fp_pkt_addr("10.100.0.1");
	fs.proto = IPPROTO_TCP;
	fs.sport = ticket_port;
	fs.dport = 443;
	fp_pkt_flow_key(&fs, 0, &flow);
	fp_ticket_key_derive(&key, &ticket_key);
	{
		struct timespec ts;
		__u32 now, ticket;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (__u32)((__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000);
		ticket =
			fp_ticket_encode(now - 1000, fp_ticket_flow_hash(&ticket_key, &flow), 1, 8);
		ts_opts[8] = (__u8)(ticket >> 24);
		ts_opts[9] = (__u8)(ticket >> 16);
		ts_opts[10] = (__u8)(ticket >> 8);
		ts_opts[11] = (__u8)ticket;
	}
	frame_opts = ts_opts;
	frame_opts_len = sizeof(ts_opts);
	frame_port = 443;
	paths[n] = (struct path){ .name = "established_local, ticket VIP: TSecr restored",
				  .counter = FP_BACKEND_TICKET_RESTORED };
	frame(&paths[n++], "192.0.2.10", "192.0.2.1", "198.51.100.2", "10.200.0.5", "10.100.0.1",
	      ticket_port, FP_TCP_ACK);
	/* Egress: the backend's segments, VIP -> client, with a timestamp option. */
	paths[n] = (struct path){ .name = "egress, ticket VIP: TSval made a ticket",
				  .counter = FP_BACKEND_TICKET_WRITTEN,
				  .egress = 1 };
	frame(&paths[n++], NULL, NULL, NULL, "10.100.0.1", "10.200.0.5", 443, FP_TCP_ACK);
	paths[n] = (struct path){ .name = "egress, VIP without tickets: passed on",
				  .counter = NO_COUNTER,
				  .egress = 1 };
	frame_port = 80;
	frame(&paths[n++], NULL, NULL, NULL, "10.100.0.1", "10.200.0.5", 80, FP_TCP_ACK);
	/* Each path must take the branch it is named after, or its figure means nothing. */
	for (int i = 0; i < n; i++) {
		unsigned int c = paths[i].counter;

		if (paths[i].len <= 0 ||
		    fp_backend_read_counters(fp_backend_counters_fd(be), before) ||
		    run_once(paths[i].egress ? egress : prog, fns.ifindex, &paths[i], &ns,
			     &retval) ||
		    fp_backend_read_counters(fp_backend_counters_fd(be), after) ||
		    (c != NO_COUNTER && after[c] != before[c] + 1) ||
		    (c == NO_COUNTER && memcmp(after, before, sizeof(after)))) {
			fprintf(stderr, "bench_backend: path '%s' did not count %s\n",
				paths[i].name, fp_backend_counter_name(c));
			goto out;
		}
	}
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < n; i++) {
			for (int k = 0; k < RUNS; k++) {
				if (run_once(paths[i].egress ? egress : prog, fns.ifindex,
					     &paths[i], &runs[k], &retval))
					goto out;
			}
			paths[i].round[r] = median(runs, RUNS);
		}
	}
	printf("## Backend tc program, per packet (bench/bench_backend.c)\n\n"
	       "BPF_PROG_TEST_RUN (sched_cls), repeat 1, median of %d rounds of %d runs each; "
	       "ns per packet as the kernel times the program run (the first row is the "
	       "reference: parse and pass).\n\n"
	       "| path | median ns |\n|---|---:|\n",
	       ROUNDS, RUNS);
	for (int i = 0; i < n; i++)
		printf("| %s | %u |\n", paths[i].name, median(paths[i].round, ROUNDS));
	printf("\n");
	err = 0;
out:
	fp_backend_destroy(be);
	return err;
}
