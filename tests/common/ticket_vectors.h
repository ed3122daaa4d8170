/* SPDX-License-Identifier: MIT */
/*
 * TCP ticket test vectors (flowpin/ticket.h): one copy for the unit tier
 * (tests/unit/test_ticket.c) and the BPF tier (the backend's egress and ingress
 * programs, the LB's ticket decode). Any implementation of the ticket (another node,
 * another language) must reproduce these numbers.
 *
 * Fleet key: fp_vector_key (hash_key 000102030405060708090a0b0c0d0e0f).
 * Ticket key: fp_ticket_key_derive(fleet) = SipHash-1-3 under the fleet key of the
 * 40-byte label "flowpin TCP ticket key, issue 11, word " + '0' (k0) or '1' (k1) (the
 * label's text is part of these vectors: never edit it in flowpin/ticket.h).
 * fh = SipHash-1-3 of the TCP flow key (client -> VIP) under the ticket key;
 * tsval' = ((tsval + (u32)fh) << bits) | ((sid ^ (fh >> 32)) & (2^bits - 1)).
 *
 * Computed with an independent Python model of SipHash (checked against the SipHash
 * paper's 2-4 vectors and flowpin's published flow hash) before the C code ran.
 */
#ifndef FLOWPIN_TESTS_TICKET_VECTORS_H
#define FLOWPIN_TESTS_TICKET_VECTORS_H

#include <flowpin/hash.h>

static const struct fp_hash_key fp_vector_ticket_key = {
	.k0 = 0xe9539806dd5f0090ULL,
	.k1 = 0x444dddc0e55f3947ULL,
};

struct fp_ticket_vector {
	const char *client, *vip;    /* address literals */
	__u16 client_port, vip_port; /* host order */
	__u64 fh;		     /* fp_ticket_flow_hash() of the TCP flow */
	__u32 tsval;		     /* what the backend's stack sent */
	__u16 sid;
	__u8 bits;
	__u32 ticket; /* the TSval on the wire (and the TSecr the client echoes) */
};

static const struct fp_ticket_vector fp_ticket_vectors[] = {
	{ "192.0.2.1", "198.51.100.10", 40000, 443, 0x02eb3e8e696e9685ULL, 0x12345678, 5, 8,
	  0xa2ecfd8b },
	{ "203.0.113.77", "198.51.100.10", 51515, 80, 0x0d3b06fa3e9bb8ddULL, 0xfffffff0, 255, 8,
	  0x9bb8cd05 },
	{ "2001:db8::1", "2001:db8::10", 40000, 443, 0x5ca367bf816923bbULL, 0x00000001, 1, 1,
	  0x02d24778 },
	{ "2001:db8:1::abcd", "2001:db8::10", 5353, 443, 0xec803efa9cabddebULL, 0x80000000, 4095,
	  12, 0xbddeb105 },
};

#endif
