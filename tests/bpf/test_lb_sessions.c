// SPDX-License-Identifier: MIT
/*
 * The session table's size and the per-CPU new-flow rate come from the config
 * (`sessions: {entries: N, new_flow_rate: R}`, docs/config.md): a file read by the real
 * loader (fp_config_load(), fp_lb_opts_sessions(), fp_lb_open()) gives a kernel map of
 * exactly N entries (10 million in 1 GiB) and a program that promotes at most R flows
 * per second on a CPU; a full table replaces the least recently seen entries of a new
 * flow's two buckets, counted (session_evict), and never refuses a flow. The test
 * runs on one CPU (t_group_setup()).
 */
#include <time.h>
#include "test_lb_fixture.h"

static struct fp_config *cfg;

/* An LB config with `sessions` as @sessions (a YAML flow mapping), one TCP VIP. */
static struct fp_lb *open_config(const char *sessions)
{
	char path[] = "/tmp/flowpin-test-sessions-XXXXXX";
	struct fp_lb_opts opts = {};
	struct fp_lb *lb = NULL;
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	assert_non_null(f);
	fprintf(f,
		"hash_key: 000102030405060708090a0b0c0d0e0f\n"
		"allow_example_key: true\n"
		"table_size: 251\n"
		"sessions: %s\n"
		"vips:\n"
		"  - {name: web, address: 203.0.113.10, port: 80, protocol: tcp, pinning: "
		"hash+table,\n"
		"     backends: [{id: 1, address: 10.1.0.1}, {id: 2, address: 10.1.0.2}]}\n",
		sessions);
	fclose(f);
	fp_config_free(cfg);
	cfg = NULL;
	assert_int_equal(fp_config_load(path, &cfg, stderr), 0);
	unlink(path);
	memcpy(opts.source_v4.a + 10, "\xff\xff", 2);
	memcpy(opts.source_v4.a + 12, t_ns.own_v4, 4);
	opts.have_source_v4 = true;
	fp_lb_opts_sessions(&opts, &cfg->sessions);
	assert_int_equal(fp_lb_open(cfg, &opts, &lb), 0);
	assert_int_equal(fp_lb_apply(lb, cfg, NULL), 0);
	return lb;
}

/* max_entries of the program's map @name, as the kernel has it. */
static __u32 kernel_max_entries(struct fp_lb *lb, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ids[64], found = 0;

	info.nr_map_ids = 64;
	info.map_ids = (__u64)(unsigned long)ids;
	assert_int_equal(bpf_obj_get_info_by_fd(fp_lb_prog_fd(lb), &info, &len), 0);
	for (__u32 i = 0; i < info.nr_map_ids && i < 64; i++) {
		struct bpf_map_info m = {};
		__u32 mlen = sizeof(m);
		int fd = bpf_map_get_fd_by_id(ids[i]);

		assert_true(fd >= 0);
		assert_int_equal(bpf_obj_get_info_by_fd(fd, &m, &mlen), 0);
		close(fd);
		if (!strcmp(m.name, name))
			found = m.max_entries;
	}
	assert_true(found > 0);
	return found;
}

/* The kernel's memory accounting of the program's map @name (memlock in fdinfo), bytes. */
static unsigned long long kernel_memlock(struct fp_lb *lb, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ids[64];
	unsigned long long memlock = 0;

	info.nr_map_ids = 64;
	info.map_ids = (__u64)(unsigned long)ids;
	assert_int_equal(bpf_obj_get_info_by_fd(fp_lb_prog_fd(lb), &info, &len), 0);
	for (__u32 i = 0; i < info.nr_map_ids && i < 64; i++) {
		struct bpf_map_info m = {};
		__u32 mlen = sizeof(m);
		int fd = bpf_map_get_fd_by_id(ids[i]);
		char path[64], line[256];
		FILE *f;

		assert_true(fd >= 0);
		assert_int_equal(bpf_obj_get_info_by_fd(fd, &m, &mlen), 0);
		if (!strcmp(m.name, name)) {
			snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
			f = fopen(path, "r");
			assert_non_null(f);
			while (fgets(line, sizeof(line), f))
				if (!strncmp(line, "memlock:", 8))
					memlock = strtoull(line + 8, NULL, 10);
			fclose(f);
		}
		close(fd);
	}
	assert_true(memlock > 0);
	return memlock;
}

/* A packet of flow @n (source 198.51.x.y, port 10000 + n / 65536) to the VIP. */
static struct fp_pkt_spec flow(__u32 n, __u8 flags)
{
	struct fp_pkt_spec s = t_client_spec(&cfg->vips[0], 0, flags, 0);
	char a[32];

	snprintf(a, sizeof(a), "198.51.%u.%u", (n >> 8) & 0xff, n & 0xff);
	s.src = fp_pkt_addr(a);
	s.sport = (__u16)(10000 + (n >> 16));
	return s;
}

/* Flow @n's SYN, then two ACKs: the first non-SYN goes to probation, the second is
 * promoted to a session entry (bpf/lb.bpf.c "Session admission"). XDP_TX each. */
static void promote(struct fp_lb *lb, __u32 n)
{
	struct fp_pkt_spec s = flow(n, FP_TCP_SYN);

	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
	s.tcp_flags = FP_TCP_ACK;
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
	assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
}

static __u64 entries(struct fp_lb *lb)
{
	struct fp_session_count c;

	assert_int_equal(fp_lb_count_sessions(lb, &c), 0);
	return c.entries;
}

/* The configured size is the kernel map's (buckets of FP_SESSION_WAYS slots); the default
 * is 262,144. */
static void test_configured_size(void **state)
{
	struct fp_info info;
	struct fp_lb *lb;

	(void)state;
	T_NEED_ROOT();
	lb = open_config("{entries: 1024, new_flow_rate: 0}");
	assert_int_equal(kernel_max_entries(lb, "sessions"), 1024 / FP_SESSION_WAYS);
	assert_int_equal(fp_lb_info(lb, &info), 0);
	assert_int_equal(info.session_entries, 1024);
	assert_int_equal(info.new_flow_rate, 0);
	assert_int_equal(info.probation_slots, 4096);
	fp_lb_close(lb);

	lb = open_config("{}");
	assert_int_equal(kernel_max_entries(lb, "sessions"),
			 FP_DEFAULT_SESSION_ENTRIES / FP_SESSION_WAYS);
	assert_int_equal(fp_lb_info(lb, &info), 0);
	assert_int_equal(info.new_flow_rate, FP_DEFAULT_NEW_FLOW_RATE);
	fp_lb_close(lb);

	/* Ten million sessions fit in 1 GiB with their probation array (64 bytes an entry,
	 * flowpin/maps.h struct fp_session_slot; probation at its ceiling, not a refusal),
	 * as the kernel accounts them. */
	lb = open_config("{entries: 10000000}");
	assert_int_equal(kernel_max_entries(lb, "sessions"), 10000000 / FP_SESSION_WAYS);
	assert_int_equal(kernel_max_entries(lb, "probation"), FP_LB_MAX_PROBATION);
	{
		unsigned long long s = kernel_memlock(lb, "sessions"),
				   p = kernel_memlock(lb, "probation");

		fprintf(stderr,
			"# 10,000,000 sessions: table %llu bytes (%.1f an entry), probation %llu, "
			"%.1f MiB in all\n",
			s, s / 1e7, p, (double)(s + p) / 1048576.0);
		assert_true(s <= 10000000ULL * 64 + (1ULL << 20));
		assert_true(s + p <= 1ULL << 30);
	}
	fp_lb_close(lb);
}

/*
 * A full table of 1024: 4096 flows promoted, no refusal, no drop; the map never holds
 * more than 1024, the most recent flows keep their entries, the oldest were evicted
 * (session_evict counts them)
 * (they fall back to their bucket: the same backend while the table does not change).
 */
static void test_full_table_evicts_least_recent(void **state)
{
	struct fp_lb *lb;
	__u64 n, hits;

	(void)state;
	T_NEED_ROOT();
	lb = open_config("{entries: 1024, new_flow_rate: 0}");
	for (__u32 i = 0; i < 4096; i++)
		promote(lb, i);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 4096);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_RATE_LIMITED), 0);
	n = entries(lb);
	fprintf(stderr, "# 4096 flows into a table of 1024: %llu entries held\n",
		(unsigned long long)n);
	assert_true(n <= 1024 && n >= 1024 - 2 * 128);
	/* Every promotion that found no room in its two buckets replaced a live entry,
	 * counted (flowpin/maps.h struct fp_session_bucket). */
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_EVICT), 4096 - n);
	hits = t_counter(lb, FP_CNT_SESSION_HIT);
	for (__u32 i = 4096 - 100; i < 4096; i++) {
		struct fp_pkt_spec s = flow(i, FP_TCP_ACK);

		assert_int_equal(t_run_spec(lb, &s, NULL, NULL), XDP_TX);
	}
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_HIT) - hits, 100);
	fp_lb_close(lb);
}

/* new_flow_rate R: R promotions in the CPU's second, the rest counted and not inserted. */
static void test_configured_rate(void **state)
{
	struct timespec t0, t1;
	struct fp_lb *lb;
	double secs;

	(void)state;
	T_NEED_ROOT();
	lb = open_config("{entries: 4096, new_flow_rate: 7}");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (__u32 i = 0; i < 50; i++)
		promote(lb, i);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "# rate 7/s: %llu of 50 promoted in %.3f s\n",
		(unsigned long long)t_counter(lb, FP_CNT_SESSION_INSERT), secs);
	if (secs < 0.9) { /* one window (a second) on this CPU */
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 7);
		assert_int_equal(t_counter(lb, FP_CNT_SESSION_RATE_LIMITED), 43);
		assert_int_equal(entries(lb), 7);
	} else {
		assert_true(t_counter(lb, FP_CNT_SESSION_INSERT) <= 7 * ((__u64)secs + 2));
	}
	fp_lb_close(lb);

	/* 0: no limit. */
	lb = open_config("{entries: 4096, new_flow_rate: 0}");
	for (__u32 i = 0; i < 50; i++)
		promote(lb, i);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_INSERT), 50);
	assert_int_equal(t_counter(lb, FP_CNT_SESSION_RATE_LIMITED), 0);
	fp_lb_close(lb);
}

static int teardown(void **state)
{
	(void)state;
	fp_config_free(cfg);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_configured_size),
		cmocka_unit_test(test_full_table_evicts_least_recent),
		cmocka_unit_test(test_configured_rate),
	};

	return cmocka_run_group_tests(tests, t_group_setup, teardown);
}
