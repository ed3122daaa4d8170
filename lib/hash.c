// SPDX-License-Identifier: MIT
/* Generic SipHash-c-d, written from the SipHash paper (Aumasson & Bernstein, 2012). */
#include <errno.h>
#include <string.h>
#include <flowpin/siphash.h>
#include <flowpin/text.h>

static __u64 load_le64(const __u8 *p)
{
	__u64 v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

__u64 fp_siphash(const struct fp_hash_key *key, const void *data, size_t len, int c_rounds,
		 int d_rounds)
{
	const __u8 *in = data;
	__u64 v0 = key->k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = key->k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = key->k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = key->k1 ^ 0x7465646279746573ULL;
	size_t full = len & ~(size_t)7;
	__u64 m;
	__u8 tail[8] = { 0 };

	for (size_t off = 0; off < full; off += 8) {
		m = load_le64(in + off);
		v3 ^= m;
		for (int r = 0; r < c_rounds; r++)
			FP_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	/* Last word: the remaining 0..7 bytes, and len mod 256 in the top byte. */
	memcpy(tail, in + full, len - full);
	m = load_le64(tail) | ((__u64)(len & 0xff) << 56);
	v3 ^= m;
	for (int r = 0; r < c_rounds; r++)
		FP_SIPROUND(v0, v1, v2, v3);
	v0 ^= m;
	v2 ^= 0xff;
	for (int r = 0; r < d_rounds; r++)
		FP_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

int fp_hash_key_parse(const char *hex, struct fp_hash_key *out)
{
	__u8 bytes[16];

	if (!out || fp_hex_parse(hex, bytes, sizeof(bytes)))
		return -EINVAL;
	out->k0 = load_le64(bytes);
	out->k1 = load_le64(bytes + 8);
	return 0;
}
