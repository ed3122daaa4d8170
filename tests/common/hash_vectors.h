/* SPDX-License-Identifier: MIT */
/*
 * flowpin's published flow-hash test vectors: one copy for the unit tier
 * (tests/unit/test_hash.c, against lib/hash.c's generic SipHash) and the BPF tier
 * (the same flows through the XDP program). Any implementation of fp_flow_hash()
 * (another language, another node) must reproduce these numbers.
 *
 * Key: hash_key 000102030405060708090a0b0c0d0e0f in the config file, i.e. the SipHash
 * paper's key, k0 = 0x0706050403020100, k1 = 0x0f0e0d0c0b0a0908.
 * Hash: SipHash-1-3 over the 40-byte struct fp_flow_key (addresses IPv4-mapped, ports
 * big-endian as on the wire, proto, three zero bytes), message words little-endian.
 * bucket = hash % 65537 (the default table size); sport = fp_hash_sport(hash).
 *
 * The expected values were computed with an independent Python model of SipHash
 * (checked against the reference SipHash-2-4 vectors, lengths 0, 15 and 40) before
 * the C code ran, so the C code is tested against them rather than the other way.
 */
#ifndef FLOWPIN_TESTS_HASH_VECTORS_H
#define FLOWPIN_TESTS_HASH_VECTORS_H

#include <string.h>
#include <arpa/inet.h>
#include <flowpin/hash.h>

#define FP_VECTOR_KEY_HEX "000102030405060708090a0b0c0d0e0f"
#define FP_VECTOR_TABLE	  65537

static const struct fp_hash_key fp_vector_key = {
	.k0 = 0x0706050403020100ULL,
	.k1 = 0x0f0e0d0c0b0a0908ULL,
};

struct fp_hash_vector {
	const char *what;
	const char *src; /* address literals, as a packet builder wants them */
	const char *dst;
	__u16 sport; /* host order; 0 for addresses-only VIPs */
	__u16 dport;
	__u8 proto;
	__u64 hash;
	__u32 bucket; /* hash % 65537 */
	__u16 outer_sport;
};

static const struct fp_hash_vector fp_hash_vectors[] = {
	{ "ipv4 tcp", "192.0.2.1", "198.51.100.10", 40000, 443, 6, 0xb6dee93dad34fb25ULL, 32848,
	  0xb6de },
	{ "ipv4 udp (same ports)", "192.0.2.1", "198.51.100.10", 40000, 443, 17,
	  0x102ca4ff62d074c6ULL, 42697, 0x902c },
	{ "ipv4 tcp", "203.0.113.77", "198.51.100.10", 51515, 80, 6, 0x41acc57e8b05e20cULL, 56025,
	  0xc1ac },
	{ "ipv6 tcp", "2001:db8::1", "2001:db8::10", 40000, 443, 6, 0xa0b3d67d425d2e9bULL, 8712,
	  0xa0b3 },
	{ "ipv6 udp", "2001:db8:1::abcd", "2001:db8::10", 5353, 443, 17, 0x20709f5edc10c41dULL,
	  26363, 0xa070 },
	{ "ipv4 udp, addresses only", "192.0.2.1", "198.51.100.53", 0, 0, 17, 0x777bcaa1814ad373ULL,
	  42319, 0xf77b },
	{ "ipv6 tcp, addresses only", "2001:db8:1::abcd", "2001:db8::10", 0, 0, 6,
	  0xd4bd199271d742abULL, 5546, 0xd4bd },
};

#define FP_N_HASH_VECTORS (sizeof(fp_hash_vectors) / sizeof(fp_hash_vectors[0]))

/* Address literal -> 16 bytes, IPv4 as IPv4-mapped. Returns 0 or -1. */
static inline int fp_vector_addr(const char *s, __u8 out[16])
{
	struct in_addr v4;

	if (inet_pton(AF_INET, s, &v4) == 1) {
		fp_addr_from_v4(out, v4.s_addr);
		return 0;
	}
	return inet_pton(AF_INET6, s, out) == 1 ? 0 : -1;
}

/* The flow key a vector describes. Returns 0 or -1 (bad literal in the table). */
static inline int fp_vector_flow_key(const struct fp_hash_vector *v, struct fp_flow_key *key)
{
	memset(key, 0, sizeof(*key));
	if (fp_vector_addr(v->src, key->src) || fp_vector_addr(v->dst, key->dst))
		return -1;
	key->sport = htons(v->sport);
	key->dport = htons(v->dport);
	key->proto = v->proto;
	return 0;
}

#endif
