// SPDX-License-Identifier: MIT
/* Generic SipHash-c-d, written from the SipHash paper (Aumasson & Bernstein, 2012). */
#include <errno.h>
#include <string.h>
#include <flowpin/siphash.h>

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

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int fp_hash_key_parse(const char *hex, struct fp_hash_key *out)
{
	__u8 bytes[16];

	if (!hex || !out || strlen(hex) != 32)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		bytes[i] = (__u8)(hi << 4 | lo);
	}
	out->k0 = load_le64(bytes);
	out->k1 = load_le64(bytes + 8);
	return 0;
}
