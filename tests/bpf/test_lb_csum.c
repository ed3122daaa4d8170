// SPDX-License-Identifier: MIT
/*
 * Clients on the LB's own host with TX checksum offload on: their
 * TCP/UDP packets arrive with only the folded pseudo-header sum in the checksum field
 * (CHECKSUM_PARTIAL). The LB must finish the checksum before it encapsulates, so the
 * backend gets exactly the packet a NIC would have sent; finished checksums are left
 * alone, even one that happens to equal the pseudo-header sum.
 */
#include "test_lb_fixture.h"

static struct t_config t_cfg;

static void csum_config(struct t_config *t)
{
	struct fp_vip_cfg *v;

	t_config_init(t, 251);
	v = t_add_vip(t, "203.0.113.90", 80, IPPROTO_TCP, FP_PIN_HASH);
	t_add_backend(v, 1, "10.1.0.1");
	v = t_add_vip(t, "2001:db8:100::90", 443, IPPROTO_TCP, FP_PIN_HASH);
	t_add_backend(v, 1, "2001:db8:200::1");
	v = t_add_vip(t, "203.0.113.91", 0, IPPROTO_UDP, FP_PIN_HASH);
	t_add_backend(v, 1, "2001:db8:200::2");
	v = t_add_vip(t, "2001:db8:100::91", 53, IPPROTO_UDP, FP_PIN_HASH);
	t_add_backend(v, 1, "10.1.0.2");
}

static struct fp_pkt_spec client_to(const struct fp_vip_cfg *v, __u16 sport, size_t payload)
{
	struct fp_pkt_spec s = t_client_spec(v, sport, FP_TCP_ACK | FP_TCP_PSH, payload);

	s.src = fp_pkt_addr(fp_addr_v4(&v->addr) ? "198.51.100.9" : "2001:db8:c::9");
	if (!v->port)
		s.dport = 4433;
	s.seq = 0x11223344;
	s.ack = 0x55667788;
	return s;
}

/* Offset of the L4 checksum field in a frame built from @s (no options, no ext). */
static size_t check_offset(const struct fp_pkt_spec *s)
{
	size_t l4 = fp_pkt_l3_offset(s) + (fp_addr_v4(&s->src) ? 20 : 40);

	return l4 + (s->proto == IPPROTO_TCP ? 16 : 6);
}

/* The folded, uncomplemented pseudo-header sum: what TX offload leaves in the field. */
static __u16 partial_field(const struct fp_pkt_spec *s, size_t l4_len)
{
	__u8 b[4] = { (__u8)(l4_len >> 24), (__u8)(l4_len >> 16), (__u8)(l4_len >> 8),
		      (__u8)l4_len };
	__u32 sum = 0;

	if (fp_addr_v4(&s->src)) {
		sum = fp_csum_add(sum, s->src.a + 12, 4);
		sum = fp_csum_add(sum, s->dst.a + 12, 4);
	} else {
		sum = fp_csum_add(sum, s->src.a, 16);
		sum = fp_csum_add(sum, s->dst.a, 16);
	}
	sum = fp_csum_add(sum, b, 4);
	sum += s->proto;
	return (__u16)~fp_csum_fold(sum);
}

/*
 * A partial checksum in every family pair, TCP and UDP, short, odd-length and
 * multi-chunk (> 512 bytes) segments, with a VLAN tag: the encapsulated inner packet is
 * byte for byte the one with the finished checksum; counted.
 */
static void test_partial_checksum_completed(void **state)
{
	static const size_t sizes[] = { 0, 1, 101, 511, 512, 513, 1024, 1300 };
	__u8 in[FP_PKT_MAX], out[FP_PKT_MAX], want[FP_PKT_MAX];
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	csum_config(&t_cfg);
	lb = t_open(&t_cfg);
	for (size_t i = 0; i < t_cfg.cfg.n_vips; i++) {
		const struct fp_vip_cfg *v = &t_cfg.vips[i];

		for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
			struct fp_pkt_spec s = client_to(v, (__u16)(50000 + z), sizes[z]);
			__u64 done = t_counter(lb, FP_CNT_CSUM_COMPLETED);
			__u32 out_len;
			__u16 owner = v->backends[0].id;

			s.n_vlan = (__u8)(z & 1);
			s.vlan_id[0] = 7;
			int n = fp_pkt_build(&s, in, sizeof(in));
			size_t co = check_offset(&s), l3 = fp_pkt_l3_offset(&s);
			size_t l4_len = (size_t)n - l3 - (fp_addr_v4(&s.src) ? 20 : 40);
			__u16 partial = partial_field(&s, l4_len);
			int want_len = t_expect(&s, v, &owner, 1, 1, want);

			assert_true(n > 0);
			in[co] = partial >> 8;
			in[co + 1] = partial & 0xff;
			assert_int_equal(t_run(lb, in, (size_t)n, out, &out_len), XDP_TX);
			assert_int_equal(out_len, want_len);
			assert_memory_equal(out, want, want_len);
			assert_int_equal(t_counter(lb, FP_CNT_CSUM_COMPLETED) - done, 1);
		}
	}
	fp_lb_close(lb);
}

/*
 * Finished checksums are never touched: ordinary packets, and a packet whose finished
 * checksum equals the pseudo-header sum by construction (a payload word chosen so),
 * which the LB must verify and leave alone.
 */
static void test_finished_checksum_untouched(void **state)
{
	__u8 in[FP_PKT_MAX], out[FP_PKT_MAX], want[FP_PKT_MAX];
	struct fp_lb *lb;
	int collisions = 0;

	(void)state;
	T_NEED_ROOT();
	csum_config(&t_cfg);
	lb = t_open(&t_cfg);
	for (size_t i = 0; i < t_cfg.cfg.n_vips; i++) {
		const struct fp_vip_cfg *v = &t_cfg.vips[i];
		__u8 payload[600];
		struct fp_pkt_spec s = client_to(v, 51000, sizeof(payload));
		__u64 done = t_counter(lb, FP_CNT_CSUM_COMPLETED);
		__u16 owner = v->backends[0].id;
		__u32 out_len;

		for (size_t b = 0; b < sizeof(payload); b++)
			payload[b] = (__u8)(b * 7 + i);
		s.payload = payload;
		/* Ordinary finished checksum. */
		int want_len = t_expect(&s, v, &owner, 1, 1, want);
		int n = fp_pkt_build(&s, in, sizeof(in));
		assert_int_equal(t_run(lb, in, (size_t)n, out, &out_len), XDP_TX);
		assert_int_equal(out_len, want_len);
		assert_memory_equal(out, want, want_len);
		/* Finished checksum == folded pseudo-header sum: change the first payload
		 * word so that the checksum becomes exactly that value. */
		size_t co = check_offset(&s), l3 = fp_pkt_l3_offset(&s);
		size_t l4_len = (size_t)n - l3 - (fp_addr_v4(&s.src) ? 20 : 40);
		__u16 target = partial_field(&s, l4_len);
		__u16 c = (__u16)(in[co] << 8 | in[co + 1]);
		__u32 w = (__u32)(payload[0] << 8 | payload[1]);
		/* New word w' with ~(S + w' - w) == target, S = ~c: w' = w + c - target. */
		w = w + c + (__u16)~target;
		w = (w & 0xffff) + (w >> 16);
		w = (w & 0xffff) + (w >> 16);
		payload[0] = (__u8)(w >> 8);
		payload[1] = (__u8)w;
		want_len = t_expect(&s, v, &owner, 1, 1, want);
		n = fp_pkt_build(&s, in, sizeof(in));
		if ((__u16)(in[co] << 8 | in[co + 1]) != target) {
			/* UDP writes 0 as 0xffff, or the 0/0xffff ambiguity: nothing to test. */
			continue;
		}
		assert_int_equal(t_run(lb, in, (size_t)n, out, &out_len), XDP_TX);
		assert_int_equal(out_len, want_len);
		assert_memory_equal(out, want, want_len);
		assert_int_equal(t_counter(lb, FP_CNT_CSUM_COMPLETED), done);
		collisions++;
	}
	assert_true(collisions >= 2); /* the case was built, not skipped */
	fp_lb_close(lb);
}

/*
 * Generic (skb-mode) XDP: the skb keeps CHECKSUM_PARTIAL through XDP_TX and the egress
 * finishes the checksum at its recorded offset, so the program must leave the field as
 * the sender wrote it (a completed field would come out wrong).
 */
static void test_generic_xdp_leaves_partial(void **state)
{
	__u8 in[FP_PKT_MAX], out[FP_PKT_MAX], want[FP_PKT_MAX];
	struct fp_lb_opts opts = {};
	struct fp_lb *lb = NULL;
	__u32 out_len;

	(void)state;
	T_NEED_ROOT();
	csum_config(&t_cfg);
	memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
	memcpy(opts.source_v4.a + 12, t_ns.own_v4, 4);
	memcpy(opts.source_v6.a, t_ns.own_v6, 16);
	opts.have_source_v4 = opts.have_source_v6 = true;
	opts.new_flow_rate = UINT32_MAX;
	opts.generic_xdp = true;
	assert_int_equal(fp_lb_open(&t_cfg.cfg, &opts, &lb), 0);
	const struct fp_vip_cfg *v = &t_cfg.vips[0];
	struct fp_pkt_spec s = client_to(v, 52000, 700);
	__u16 owner = v->backends[0].id;
	int n = fp_pkt_build(&s, in, sizeof(in)), want_len = t_expect(&s, v, &owner, 1, 1, want);
	size_t co = check_offset(&s), l4_len = (size_t)n - 14 - 20;
	__u16 partial = partial_field(&s, l4_len);
	__u64 done = t_counter(lb, FP_CNT_CSUM_COMPLETED);

	in[co] = partial >> 8;
	in[co + 1] = partial & 0xff;
	/* Expected: the encapsulation of the partial packet, byte for byte. */
	want[want_len - (n - 14) + (int)(co - 14)] = partial >> 8;
	want[want_len - (n - 14) + (int)(co - 14) + 1] = partial & 0xff;
	assert_int_equal(t_run(lb, in, (size_t)n, out, &out_len), XDP_TX);
	assert_int_equal(out_len, want_len);
	assert_memory_equal(out, want, want_len);
	assert_int_equal(t_counter(lb, FP_CNT_CSUM_COMPLETED), done);
	fp_lb_close(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partial_checksum_completed),
		cmocka_unit_test(test_finished_checksum_untouched),
		cmocka_unit_test(test_generic_xdp_leaves_partial),
	};

	return cmocka_run_group_tests(tests, t_group_setup, NULL);
}
