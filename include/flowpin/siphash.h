/* SPDX-License-Identifier: MIT */
/*
 * Generic SipHash-c-d (userspace reference, lib/hash.c).
 * The data plane uses fp_flow_hash() from flowpin/hash.h, an unrolled SipHash-1-3 over
 * the 40-byte flow key; this generic version exists to check it against the SipHash
 * paper's published vectors, and to derive per-backend Maglev permutations.
 */
#ifndef FLOWPIN_SIPHASH_H
#define FLOWPIN_SIPHASH_H

#include <stddef.h>
#include <flowpin/hash.h>

/*
 * fp_siphash - SipHash with @c_rounds compression and @d_rounds finalization rounds
 * over @len bytes of @data, key words as in the paper (k0 = key bytes 0..7 read
 * little-endian). Message words are read little-endian like the reference code, which
 * equals fp_flow_hash()'s host-order reads on little-endian machines.
 */
__u64 fp_siphash(const struct fp_hash_key *key, const void *data, size_t len, int c_rounds,
		 int d_rounds);

/* Parses exactly 32 hex digits into a key (bytes in order, k0 = bytes 0..7 LE). */
int fp_hash_key_parse(const char *hex, struct fp_hash_key *out);

#endif
