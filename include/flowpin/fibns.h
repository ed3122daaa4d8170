/* SPDX-License-Identifier: MIT */
/*
 * A private network namespace where bpf_fib_lookup() always succeeds.
 *
 * BPF_PROG_TEST_RUN runs an XDP program against the caller's network namespace, so
 * the program's bpf_fib_lookup() sees the host's routes and neighbours: results would
 * depend on the machine, and the host's tables are not ours to change. `flowpin replay`
 * and the benchmark therefore move into a fresh namespace holding one veth pair
 * (fp-test0 <-> fp-test1) with fixed addresses, default routes for both families via a
 * gateway whose neighbour entry is permanent (the next-hop MAC the user chose), and
 * forwarding on. Every backend then resolves to that MAC, leaving by fp-test0, and the
 * real program runs unchanged: no test mode in the data plane.
 *
 * The namespace lives as long as the process (nothing pins it); nothing in it can reach
 * the host's networks.
 */
#ifndef FLOWPIN_FIBNS_H
#define FLOWPIN_FIBNS_H

#include <linux/types.h>

#define FP_FIBNS_DEV "fp-test0"

struct fp_fibns {
	int ifindex;	      /* fp-test0: set it as the test run's ingress_ifindex */
	__u8 own_mac[6];      /* fp-test0's MAC: the source MAC of forwarded frames */
	__u8 next_hop_mac[6]; /* the gateway's MAC: the destination MAC of forwarded frames */
	__u8 own_v4[4];	      /* 192.0.2.1 (TEST-NET-1) */
	__u8 own_v6[16];      /* 2001:db8::1 (documentation prefix) */
};

/* The MACs used when the caller does not choose (locally administered). */
#define FP_FIBNS_OWN_MAC                           \
	{                                          \
		0x02, 0x66, 0x70, 0x00, 0x00, 0x01 \
	}
#define FP_FIBNS_NEXT_HOP_MAC                      \
	{                                          \
		0x02, 0x66, 0x70, 0x00, 0x00, 0xfe \
	}

/*
 * fp_fibns_enter - move the calling process into a new network namespace set up as
 * above, with @next_hop_mac (NULL: FP_FIBNS_NEXT_HOP_MAC) as the gateway's MAC.
 * Needs CAP_NET_ADMIN and the `ip` program. The process must be single-threaded.
 * Returns 0 and fills @out, or a negative errno after printing what failed.
 */
int fp_fibns_enter(const __u8 *next_hop_mac, struct fp_fibns *out);

/* Parses "aa:bb:cc:dd:ee:ff". Returns 0 or -EINVAL. */
int fp_mac_parse(const char *s, __u8 mac[6]);

#endif
