// SPDX-License-Identifier: MIT
/*
 * QUIC-LB connection IDs (flowpin/quiclb.h), written from draft-ietf-quic-load-balancers-21
 * sections 3 (first octet), 5.2-5.5 (CID format, server and load balancer actions).
 *
 * Three encodings of the plaintext block P = server ID || nonce (P_len = 5..19 octets):
 *   plaintext    P as is (no key);
 *   single pass  AES-128-ECB(key, P) when P_len == 16;
 *   four pass    otherwise: a four-round Feistel network over the two halves of P, each
 *                round AES-128-ECB(key, expand(half, P_len, pass)) truncated to a half
 *                and XORed into the other half (round_function() below).
 * Odd P_len splits the middle octet between the halves: the left half owns its high
 * nibble, the right half its low one, and each half's nibble of the other side is kept
 * zero after every round (clear_overlap()).
 *
 * AES runs through OpenSSL's EVP interface with one cached context per thread per key
 * (aes_block()): an LB or a server decodes or encodes millions of CIDs under one key.
 * The draft's known errata are in docs/quic-lb.md; this code follows the text where it
 * is self-consistent and its worked example, never a vector alone.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <openssl/evp.h>
#include <flowpin/quiclb.h>

int fp_quiclb_cfg_check(const struct fp_quiclb_cfg *c)
{
	if (!c || c->config_id > FP_QUICLB_MAX_CONFIG_ID || c->server_id_len < FP_QUICLB_MIN_SID ||
	    c->server_id_len > FP_QUICLB_MAX_SID || c->nonce_len < FP_QUICLB_MIN_NONCE ||
	    c->nonce_len > FP_QUICLB_MAX_NONCE ||
	    c->server_id_len + c->nonce_len > FP_QUICLB_MAX_PLAINTEXT)
		return -EINVAL;
	return 0;
}

/*
 * One AES-128-ECB block of @in under @key into @out. The context is per thread and kept
 * with its key: setting the key again costs the key schedule, so it is only redone when
 * the key changes. Returns 0 or -EIO.
 */
static int aes_block(const __u8 key[FP_QUICLB_KEY_LEN], const __u8 in[FP_QUICLB_BLOCK],
		     __u8 out[FP_QUICLB_BLOCK], bool decrypt)
{
	static __thread EVP_CIPHER_CTX *ctx;
	static __thread __u8 ctx_key[FP_QUICLB_KEY_LEN];
	static __thread int ctx_dir = -1; /* 1 encrypt, 0 decrypt, -1 none */
	int enc = decrypt ? 0 : 1, n = 0;

	if (!ctx) {
		ctx = EVP_CIPHER_CTX_new();
		if (!ctx)
			return -EIO;
	}
	if (ctx_dir != enc || memcmp(ctx_key, key, FP_QUICLB_KEY_LEN)) {
		ctx_dir = -1;
		if (EVP_CipherInit_ex(ctx, EVP_aes_128_ecb(), NULL, key, NULL, enc) != 1 ||
		    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
			return -EIO;
		memcpy(ctx_key, key, FP_QUICLB_KEY_LEN);
		ctx_dir = enc;
	}
	if (EVP_CipherUpdate(ctx, out, &n, in, FP_QUICLB_BLOCK) != 1 || n != FP_QUICLB_BLOCK)
		return -EIO;
	return 0;
}

/*
 * The four-pass halves: left and right, half_len = ceil(P_len / 2) octets each. With an
 * odd P_len the left half's last low nibble and the right half's first high nibble are
 * the overlap that belongs to the other side and is kept zero.
 */
struct halves {
	__u8 left[FP_QUICLB_BLOCK], right[FP_QUICLB_BLOCK];
	size_t len, half_len;
};

static void split(struct halves *h, const __u8 *p, size_t len)
{
	memset(h, 0, sizeof(*h));
	h->len = len;
	h->half_len = (len + 1) / 2;
	memcpy(h->left, p, h->half_len);
	memcpy(h->right, p + len - h->half_len, h->half_len);
	if (len & 1) {
		h->left[h->half_len - 1] &= 0xf0;
		h->right[0] &= 0x0f;
	}
}

/* The inverse of split(): the halves, the overlap nibbles merged, into @p. */
static void join(const struct halves *h, __u8 *p)
{
	memcpy(p, h->left, h->half_len);
	memcpy(p + h->len - h->half_len, h->right, h->half_len);
	if (h->len & 1)
		p[h->half_len - 1] = (__u8)(h->left[h->half_len - 1] | h->right[0]);
}

static void clear_overlap(struct halves *h, bool left)
{
	if (!(h->len & 1))
		return;
	if (left)
		h->left[h->half_len - 1] &= 0xf0;
	else
		h->right[0] &= 0x0f;
}

/*
 * One Feistel round: @dst ^= truncate(AES(key, expand(P_len, pass, src)), half_len),
 * where expand() is src's half_len octets, zeros, then P_len and the pass number as the
 * block's last two octets (the draft's ExpandResult since -19). The overlap nibble of
 * the destination half is cleared afterwards.
 */
static int round_function(const __u8 *key, struct halves *h, int pass, bool into_left)
{
	const __u8 *src = into_left ? h->right : h->left;
	__u8 *dst = into_left ? h->left : h->right;
	__u8 in[FP_QUICLB_BLOCK] = { 0 }, out[FP_QUICLB_BLOCK];
	int ret;

	memcpy(in, src, h->half_len);
	in[FP_QUICLB_BLOCK - 2] = (__u8)h->len;
	in[FP_QUICLB_BLOCK - 1] = (__u8)pass;
	ret = aes_block(key, in, out, false);
	if (ret)
		return ret;
	for (size_t i = 0; i < h->half_len; i++)
		dst[i] ^= out[i];
	clear_overlap(h, into_left);
	return 0;
}

/* Rounds in order: pass 1 writes the right half, 2 the left, 3 the right, 4 the left. */
static int four_pass_encrypt(const __u8 *key, __u8 *p, size_t len)
{
	struct halves h;
	int ret = 0;

	split(&h, p, len);
	for (int pass = 1; pass <= 4 && !ret; pass++)
		ret = round_function(key, &h, pass, !(pass & 1));
	if (!ret)
		join(&h, p);
	return ret;
}

/*
 * The rounds backwards, for the server ID only: after passes 4, 3, 2 the left half is
 * left_0, which holds octets 0..len/2-1 whole (with an odd len also the middle octet's
 * high nibble). Pass 1 (right_0) is needed only when the server ID is longer than that,
 * i.e. longer than the nonce (the draft's "fourth decryption pass").
 */
static int four_pass_decrypt_sid(const __u8 *key, const __u8 *ct, size_t len, size_t sid_len,
				 __u8 *server_id)
{
	__u8 p[FP_QUICLB_MAX_PLAINTEXT];
	struct halves h;
	int ret = 0;

	split(&h, ct, len);
	for (int pass = 4; pass >= 2 && !ret; pass--)
		ret = round_function(key, &h, pass, !(pass & 1));
	if (!ret && sid_len > len / 2)
		ret = round_function(key, &h, 1, false);
	if (ret)
		return ret;
	join(&h, p);
	memcpy(server_id, p, sid_len);
	return 0;
}

int fp_quiclb_encode(const struct fp_quiclb_cfg *c, const __u8 *server_id, const __u8 *nonce,
		     __u8 *cid, size_t *cid_len)
{
	size_t len;
	__u8 *p;
	int ret;

	if (fp_quiclb_cfg_check(c) || !server_id || !cid || !cid_len)
		return -EINVAL;
	len = (size_t)c->server_id_len + c->nonce_len;
	p = cid + 1;
	/*
	 * The first octet: config rotation bits, then the length of the rest (the draft's
	 * length self-description). Every CID of a config has that same length, so the five
	 * bits tell an observer nothing the packet's length field does not.
	 */
	cid[0] = (__u8)(c->config_id << FP_QUICLB_CR_SHIFT | len);
	memcpy(p, server_id, c->server_id_len);
	if (nonce)
		memcpy(p + c->server_id_len, nonce, c->nonce_len);
	else if (getrandom(p + c->server_id_len, c->nonce_len, 0) != (ssize_t)c->nonce_len)
		return -EIO;
	if (!c->encrypted)
		ret = 0;
	else if (len == FP_QUICLB_BLOCK)
		ret = aes_block(c->key, p, p, false);
	else
		ret = four_pass_encrypt(c->key, p, len);
	if (ret) {
		memset(cid, 0, 1 + len);
		return ret;
	}
	*cid_len = 1 + len;
	return 0;
}

int fp_quiclb_decode(const struct fp_quiclb_cfg *c, const __u8 *cid, size_t cid_len,
		     __u8 *server_id)
{
	__u8 block[FP_QUICLB_BLOCK];
	size_t len;
	int ret;

	if (fp_quiclb_cfg_check(c) || !cid || !server_id)
		return -EINVAL;
	if (cid_len < 1)
		return -EINVAL;
	if (FP_QUICLB_CONFIG_ID(cid[0]) != c->config_id)
		return -ENOENT;
	len = (size_t)c->server_id_len + c->nonce_len;
	if (cid_len < 1 + len)
		return -EINVAL;
	if (!c->encrypted) {
		memcpy(server_id, cid + 1, c->server_id_len);
		return 0;
	}
	if (len != FP_QUICLB_BLOCK)
		return four_pass_decrypt_sid(c->key, cid + 1, len, c->server_id_len, server_id);
	ret = aes_block(c->key, cid + 1, block, true);
	if (ret)
		return ret;
	memcpy(server_id, block, c->server_id_len);
	return 0;
}
