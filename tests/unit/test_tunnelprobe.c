// SPDX-License-Identifier: MIT
/*
 * The tunnel probe library (lib/tunnelprobe.c): the exact request bytes of
 * docs/wire-format.md, and a reply check that accepts only the backend's reflection of
 * our own request (bpf/backend.bpf.c changes the control type, nothing else in the
 * payload) and refuses every other datagram.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include <flowpin/tunnelprobe.h>

#define NONCE 0x0123456789abcdefULL

/* docs/wire-format.md, "Tunnel probe": the request with NONCE, and its reply. */
static const uint8_t request_bytes[FP_PROBE_SIZE] = {
	0x23, 0x80, 0x00, 0x01, 0x66, 0x70, 0x50, 0x31,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
};
static const uint8_t reply_bytes[FP_PROBE_SIZE] = {
	0x23, 0x81, 0x00, 0x01, 0x66, 0x70, 0x50, 0x31,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
};

static void test_build_writes_documented_bytes(void **state)
{
	uint8_t buf[64];

	(void)state;
	memset(buf, 0xaa, sizeof(buf));
	/* An odd offset: the caller's buffer need not be aligned. */
	assert_int_equal(fp_tunnel_probe_build(buf + 1, sizeof(buf) - 1, NONCE), FP_PROBE_SIZE);
	assert_memory_equal(buf + 1, request_bytes, sizeof(request_bytes));
	assert_int_equal(buf[0], 0xaa);
	assert_int_equal(buf[1 + FP_PROBE_SIZE], 0xaa); /* nothing past the probe */
}

static void test_build_refuses_short_buffer(void **state)
{
	uint8_t buf[FP_PROBE_SIZE];

	(void)state;
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(fp_tunnel_probe_build(buf, sizeof(buf) - 1, NONCE), 0);
	assert_int_equal(fp_tunnel_probe_build(NULL, sizeof(buf), NONCE), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xaa); /* untouched */
	assert_int_equal(fp_tunnel_probe_build(buf, sizeof(buf), NONCE), FP_PROBE_SIZE);
}

static void test_check_accepts_reflected_reply(void **state)
{
	uint8_t buf[FP_PROBE_SIZE];

	(void)state;
	assert_int_equal(fp_tunnel_probe_check_reply(reply_bytes, sizeof(reply_bytes), NONCE), 0);
	/* What the backend does to our request: the control type, and nothing else. */
	fp_tunnel_probe_build(buf, sizeof(buf), 42);
	buf[offsetof(struct fp_gue_probe, gue.proto)] = FP_GUE_CTYPE_PROBE_REPLY;
	assert_int_equal(fp_tunnel_probe_check_reply(buf, sizeof(buf), 42), 0);
}

static void test_check_refuses_echoed_request(void **state)
{
	(void)state;
	/* A plain UDP echo service on encap_port is no flowpin agent. */
	assert_int_equal(fp_tunnel_probe_check_reply(request_bytes, sizeof(request_bytes), NONCE),
			 -EBADMSG);
}

static void test_check_refuses_other_nonce(void **state)
{
	(void)state;
	assert_int_equal(fp_tunnel_probe_check_reply(reply_bytes, sizeof(reply_bytes), NONCE + 1),
			 -EBADMSG);
	assert_int_equal(fp_tunnel_probe_check_reply(reply_bytes, sizeof(reply_bytes), 0),
			 -EBADMSG);
}

/* Every single-bit change anywhere in the reply makes it somebody else's datagram. */
static void test_check_refuses_every_bit_flip(void **state)
{
	uint8_t buf[FP_PROBE_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(buf, reply_bytes, sizeof(buf));
			buf[i] ^= (uint8_t)(1u << bit);
			if (fp_tunnel_probe_check_reply(buf, sizeof(buf), NONCE) != -EBADMSG)
				fail_msg("reply with byte %zu bit %d flipped accepted", i, bit);
		}
	}
}

static void test_check_refuses_wrong_size(void **state)
{
	uint8_t buf[FP_PROBE_SIZE + 8];

	(void)state;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, reply_bytes, sizeof(reply_bytes));
	for (size_t len = 0; len < FP_PROBE_SIZE; len++)
		if (fp_tunnel_probe_check_reply(buf, len, NONCE) != -EBADMSG)
			fail_msg("reply cut to %zu bytes accepted", len);
	/* The reply is exactly as long as the request: padding is no reply of ours. */
	for (size_t len = FP_PROBE_SIZE + 1; len <= sizeof(buf); len++)
		if (fp_tunnel_probe_check_reply(buf, len, NONCE) != -EBADMSG)
			fail_msg("reply padded to %zu bytes accepted", len);
	assert_int_equal(fp_tunnel_probe_check_reply(NULL, FP_PROBE_SIZE, NONCE), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_writes_documented_bytes),
		cmocka_unit_test(test_build_refuses_short_buffer),
		cmocka_unit_test(test_check_accepts_reflected_reply),
		cmocka_unit_test(test_check_refuses_echoed_request),
		cmocka_unit_test(test_check_refuses_other_nonce),
		cmocka_unit_test(test_check_refuses_every_bit_flip),
		cmocka_unit_test(test_check_refuses_wrong_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
