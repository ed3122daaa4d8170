// SPDX-License-Identifier: MIT
/* Loader library of the LB node's XDP program: see flowpin/lb.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <flowpin/bpffs.h>
#include <flowpin/lb.h>
#include <flowpin/log.h>
#include <flowpin/plan.h>
#include <flowpin/siphash.h>
#include <flowpin/ticket.h>
#include "lb.skel.h"
#include "quic_key.skel.h"

#define NSEC 1000000000ULL

/* Names of the pins under the pin directory; the maps' names in bpf/lb.bpf.c. */
enum {
	M_VIPS,
	M_BUCKETS,
	M_BACKENDS,
	M_SESSIONS,
	M_STATS,
	M_TRAFFIC,
	M_RATELIMIT,
	M_INFO,
	M_FLOW_CACHE,
	M_VIP_CACHE,
	M_PROBATION,
	M_VIP_ADDRS,
	M_QUIC_LB,
	M_QUIC_SERVERS,
	M_QUIC_CRYPTO,
	M_POPS,
	M_POP_LBS,
	M_POP_ADDRS,
	M_N
};
static const char *const map_names[M_N] = {
	"vips",	     "buckets",	     "backends",    "sessions",	 "stats",     "traffic",
	"ratelimit", "info",	     "flow_cache",  "vip_cache", "probation", "vip_addrs",
	"quic_lb",   "quic_servers", "quic_crypto", "pops",	 "pop_lbs",   "pop_addrs"
};
#define PROG_PIN "prog"

struct fp_lb {
	struct lb *skel; /* NULL when opened from pins */
	int prog_fd;
	int fd[M_N];
	bool own_fds;		 /* opened from pins: ours to close */
	struct fp_bucket *table; /* the buckets array, mmapped (flowpin/maps.h) */
	size_t table_len;	 /* bytes mapped */
	int lock_fd;		 /* the pin directory (flock target), -1 when not pinned */
	int lock_depth;		 /* lock() calls not yet unlocked */
	int ncpus;
	struct fp_info info; /* settings fixed at load (generation: re-read when applying) */
	/* bpf/quic_key.bpf.c over our quic_crypto map: loaded with the program (the daemon
	 * drops CAP_BPF after its start, and running a loaded program needs none), or at
	 * the first key an instance opened from pins sets. */
	struct quic_key *quic_key;
};

static int map_table(struct fp_lb *lb)
{
	size_t len = (size_t)fp_bucket_pairs(lb->info.max_vips * 2 * lb->info.table_size) *
		     sizeof(struct fp_bucket_pair);
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	len = (len + page - 1) / page * page;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, lb->fd[M_BUCKETS], 0);
	if (p == MAP_FAILED) {
		int err = -errno;

		fp_err("lb: cannot mmap the buckets map: %s\n", strerror(errno));
		return err;
	}
	lb->table = p;
	lb->table_len = len;
	return 0;
}

static int read_info(const struct fp_lb *lb, struct fp_info *out)
{
	struct bpf_map_info map = { 0 };
	__u32 zero = 0, len = sizeof(map);

	if (bpf_obj_get_info_by_fd(lb->fd[M_INFO], &map, &len))
		return -errno;
	/* The lookup writes the map's own value size into *out: the info map of another
	 * layout (a larger struct fp_info) must not write past it. */
	if (map.key_size != sizeof(zero) || map.value_size != sizeof(*out)) {
		fp_err("lb: the pinned maps are from another flowpin version (info values of %u "
		       "bytes, want %zu)\n",
		       map.value_size, sizeof(*out));
		return -EPROTO;
	}
	if (bpf_map_lookup_elem(lb->fd[M_INFO], &zero, out))
		return -errno;
	if (out->magic != FP_INFO_MAGIC) {
		fp_err("lb: the pinned maps are from another flowpin version (magic %#x, want "
		       "%#x)\n",
		       out->magic, FP_INFO_MAGIC);
		return -EPROTO;
	}
	return 0;
}

/*
 * `table` mode's round robin starts at a random place on every CPU: two LB nodes that
 * see the same flows in the same order must not make the same choices by accident
 * (a real fleet's nodes never share that state, and the lab must show it).
 */
static int seed_round_robin(struct fp_lb *lb)
{
	struct fp_ratelimit *per_cpu = calloc(lb->ncpus, sizeof(*per_cpu));
	__u32 zero = 0;
	int err = 0;

	if (!per_cpu)
		return -ENOMEM;
	for (int c = 0; c < lb->ncpus; c++) {
		if (getrandom(&per_cpu[c].round_robin, sizeof(per_cpu[c].round_robin), 0) < 0) {
			err = -errno;
			goto out;
		}
	}
	if (bpf_map_update_elem(lb->fd[M_RATELIMIT], &zero, per_cpu, BPF_ANY))
		err = -errno;
out:
	free(per_cpu);
	return err;
}

/* The skeleton's maps, indexed like map_names[]. */
static void skel_maps(struct lb *skel, struct bpf_map *maps[M_N])
{
	maps[M_VIPS] = skel->maps.vips;
	maps[M_BUCKETS] = skel->maps.buckets;
	maps[M_BACKENDS] = skel->maps.backends;
	maps[M_SESSIONS] = skel->maps.sessions;
	maps[M_STATS] = skel->maps.stats;
	maps[M_TRAFFIC] = skel->maps.traffic;
	maps[M_RATELIMIT] = skel->maps.ratelimit;
	maps[M_INFO] = skel->maps.info;
	maps[M_FLOW_CACHE] = skel->maps.flow_cache;
	maps[M_VIP_CACHE] = skel->maps.vip_cache;
	maps[M_PROBATION] = skel->maps.probation;
	maps[M_VIP_ADDRS] = skel->maps.vip_addrs;
	maps[M_QUIC_LB] = skel->maps.quic_lb;
	maps[M_QUIC_SERVERS] = skel->maps.quic_servers;
	maps[M_QUIC_CRYPTO] = skel->maps.quic_crypto;
	maps[M_POPS] = skel->maps.pops;
	maps[M_POP_LBS] = skel->maps.pop_lbs;
	maps[M_POP_ADDRS] = skel->maps.pop_addrs;
}

/*
 * The kptr of `quic_crypto` (bpf/quic_crypto.h): clang before 15 drops the
 * btf_type_tag("kptr") of struct fp_quic_crypto's member, so the object's BTF has a
 * plain pointer there and the kernel would treat the field as an ordinary 8 bytes
 * (no kptr: the programs could not store or use a crypto context). Before load, the
 * member is pointed at a new PTR -> TYPE_TAG "kptr" -> struct bpf_crypto_ctx, the
 * BTF a newer clang emits. Nothing to do when the tag is already there.
 */
static int restore_kptr_tag(struct bpf_object *obj)
{
	struct btf *btf = bpf_object__btf(obj);
	const struct btf_type *t, *ptr;
	int id, tag, new_ptr;
	__u32 target;

	if (!btf)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, "fp_quic_crypto", BTF_KIND_STRUCT);
	if (id < 0)
		return id;
	t = btf__type_by_id(btf, id);
	if (btf_vlen(t) != 1)
		return -EINVAL;
	ptr = btf__type_by_id(btf, btf_members(t)[0].type);
	if (!ptr || !btf_is_ptr(ptr))
		return -EINVAL;
	target = ptr->type;
	if (btf_is_type_tag(btf__type_by_id(btf, target)))
		return 0;
	tag = btf__add_type_tag(btf, "kptr", target);
	if (tag < 0)
		return tag;
	new_ptr = btf__add_ptr(btf, tag);
	if (new_ptr < 0)
		return new_ptr;
	/* Adding types may move the type data: look the struct up again. */
	t = btf__type_by_id(btf, id);
	((struct btf_member *)btf_members(t))[0].type = new_ptr;
	return 0;
}

/* lb__open() with the kptr restored (restore_kptr_tag()). */
static struct lb *open_skel(void)
{
	struct lb *skel = lb__open();
	int err;

	if (!skel) {
		fp_err("lb: cannot open the BPF object: %s\n", strerror(errno));
		return NULL;
	}
	err = restore_kptr_tag(skel->obj);
	if (err) {
		fp_err("lb: cannot mark the quic_crypto kptr in the object's BTF: %s\n",
		       strerror(-err));
		lb__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

/*
 * Loads bpf/quic_key.bpf.c over our `quic_crypto` map into lb->quic_key, once per
 * instance (at load: the daemon keeps no CAP_BPF afterwards; running it then needs
 * none).
 */
static int quic_key_load(struct fp_lb *lb)
{
	struct quic_key *skel;
	int err;

	if (lb->quic_key)
		return 0;
	skel = quic_key__open();
	if (!skel) {
		err = -errno;
		fp_err("lb: cannot open the QUIC-LB key program: %s\n", strerror(errno));
		return err;
	}
	err = restore_kptr_tag(skel->obj);
	if (!err)
		err = bpf_map__reuse_fd(skel->maps.quic_crypto, lb->fd[M_QUIC_CRYPTO]);
	if (!err)
		err = quic_key__load(skel);
	if (err) {
		fp_err("lb: the kernel refused the QUIC-LB key program: %s (the bpf_crypto kfuncs "
		       "need Linux >= 6.10; run with -v)\n",
		       strerror(-err));
		quic_key__destroy(skel);
		return err;
	}
	lb->quic_key = skel;
	return 0;
}

void fp_lb_opts_sessions(struct fp_lb_opts *opts, const struct fp_sessions_cfg *s)
{
	opts->session_entries = s->entries;
	opts->new_flow_rate = s->new_flow_rate ? s->new_flow_rate : UINT32_MAX;
}

static __u32 effective_new_flow_rate(const struct fp_lb_opts *opts)
{
	return opts->new_flow_rate == UINT32_MAX ? 0
	       : opts->new_flow_rate		 ? opts->new_flow_rate
						 : FP_LB_DEFAULT_NEW_FLOW_RATE;
}

/*
 * The session table's hash key (flowpin/maps.h fp_session_hash()) from the fleet key:
 * word i is SipHash-1-3, under the fleet key, of a fixed label no flow key can equal (its
 * pad bytes are not zero), as fp_ticket_key_derive() does. The same config gives the
 * same key, so a take-over finds every entry in its bucket.
 */
static void session_key_derive(const struct fp_hash_key *fleet, struct fp_session_hash_key *out)
{
	const char text[] = "flowpin session table key, word number ";
	struct fp_flow_key label;

	FP_STATIC_ASSERT(sizeof(text) == sizeof(label), "the label fills a flow key");
	__builtin_memcpy(&label, text, sizeof(label));
	for (int i = 0; i < FP_SESSION_HASH_WORDS; i++) {
		label.pad[2] = (__u8)('0' + i);
		out->k[i] = fp_flow_hash(fleet, &label);
	}
}

/* The program's const volatile settings, before load. */
static void set_program_settings(struct lb *skel, const struct fp_config *cfg,
				 const struct fp_lb_opts *opts)
{
	struct fp_hash_key ticket;

	skel->rodata->hash_k0 = cfg->hash_key.k0;
	skel->rodata->hash_k1 = cfg->hash_key.k1;
	fp_ticket_key_derive(&cfg->hash_key, &ticket);
	skel->rodata->ticket_k0 = ticket.k0;
	skel->rodata->ticket_k1 = ticket.k1;
	skel->rodata->table_size = cfg->table_size;
	skel->rodata->encap_port = cfg->encap_port;
	if (opts->have_source_v4)
		memcpy((void *)&skel->rodata->source_v4, opts->source_v4.a + 12, 4);
	if (opts->have_source_v6)
		memcpy((void *)skel->rodata->source_v6, opts->source_v6.a, 16);
	skel->rodata->timeout_established_ns = cfg->timeouts.tcp_established * NSEC;
	skel->rodata->timeout_transitory_ns = cfg->timeouts.tcp_transitory * NSEC;
	skel->rodata->timeout_udp_ns = cfg->timeouts.udp * NSEC;
	skel->rodata->new_flow_rate = effective_new_flow_rate(opts);
	skel->rodata->complete_partial_csum = !opts->generic_xdp;
	session_key_derive(&cfg->hash_key,
			   (struct fp_session_hash_key *)&skel->rodata->session_key);
}

static void set_info_sources(struct fp_info *info, const struct fp_lb_opts *opts)
{
	memset(info->source_v4, 0, sizeof(info->source_v4));
	memset(info->source_v6, 0, sizeof(info->source_v6));
	if (opts->have_source_v4)
		memcpy(info->source_v4, opts->source_v4.a + 12, 4);
	if (opts->have_source_v6)
		memcpy(info->source_v6, opts->source_v6.a, 16);
	/* The site goes with the sources: a take-over may name another (`lb up --pop`). */
	memcpy(info->pop, opts->pop, sizeof(info->pop));
	info->pop[sizeof(info->pop) - 1] = '\0';
}

int fp_lb_open(const struct fp_config *cfg, const struct fp_lb_opts *opts, struct fp_lb **out)
{
	struct fp_lb_opts none = {};
	struct fp_lb *lb = NULL;
	struct lb *skel = NULL;
	struct bpf_map *maps[M_N];
	__u32 max_vips, sessions, probation, zero = 0;
	int err;

	*out = NULL;
	if (!cfg)
		return -EINVAL;
	if (!opts)
		opts = &none;
	if ((opts->have_source_v4 && !fp_addr_v4(&opts->source_v4)) ||
	    (opts->have_source_v6 && fp_addr_v4(&opts->source_v6))) {
		fp_err("lb: source_v4 must be an IPv4 address and source_v6 an IPv6 one\n");
		return -EINVAL;
	}
	max_vips = opts->max_vips ? opts->max_vips : fp_config_vip_slots(cfg->n_vips);
	if (max_vips > FP_VIP_SLOTS_MAX || max_vips < cfg->n_vips) {
		fp_err("lb: %u VIP slots for %zu VIPs (at most %d)\n", max_vips, cfg->n_vips,
		       FP_VIP_SLOTS_MAX);
		return -EINVAL;
	}
	/* The config loader checked the default slots; this catches opts->max_vips. */
	if (!cfg->table_size || cfg->table_size > fp_config_max_table_size(max_vips)) {
		fp_err("%s:%d: table_size: %u does not fit %u VIP slots (at most %u)\n", cfg->path,
		       cfg->lines.table_size, cfg->table_size, max_vips,
		       fp_config_max_table_size(max_vips));
		return -EINVAL;
	}
	sessions = opts->session_entries ? opts->session_entries : FP_LB_DEFAULT_SESSIONS;
	probation = opts->probation_slots		 ? opts->probation_slots
		    : sessions > FP_LB_MAX_PROBATION / 4 ? FP_LB_MAX_PROBATION
							 : sessions * 4;
	if (probation < FP_LB_MIN_PROBATION)
		probation = FP_LB_MIN_PROBATION;
	if (probation > FP_LB_MAX_PROBATION) {
		fp_err("lb: %u probation slots: at most %u\n", probation, FP_LB_MAX_PROBATION);
		return -EINVAL;
	}
	while (probation & (probation - 1)) /* up to a power of two */
		probation = (probation | (probation - 1)) + 1;

	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	lb->lock_fd = -1;
	lb->prog_fd = -1;
	lb->ncpus = libbpf_num_possible_cpus();
	if (lb->ncpus <= 0) {
		err = lb->ncpus ? lb->ncpus : -EINVAL;
		goto out;
	}

	skel = open_skel();
	if (!skel) {
		err = -errno;
		goto out;
	}
	lb->skel = skel;
	set_program_settings(skel, cfg, opts);
	err = bpf_map__set_max_entries(skel->maps.buckets,
				       fp_bucket_pairs(max_vips * 2 * cfg->table_size));
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.backends, max_vips * FP_BACKEND_SLOTS);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.traffic, max_vips * FP_BACKEND_SLOTS);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.sessions, fp_session_buckets(sessions));
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.probation, probation);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.quic_servers,
					       max_vips * FP_BACKEND_SLOTS);
	skel->rodata->probation_slots = probation;
	skel->rodata->session_buckets = fp_session_buckets(sessions);
	if (err)
		goto out;
	err = lb__load(skel);
	if (err) {
		fp_err("lb: the kernel refused the XDP program or its maps: %s (run with -v)\n",
		       strerror(-err));
		goto out;
	}
	lb->prog_fd = bpf_program__fd(skel->progs.fp_lb);
	skel_maps(skel, maps);
	for (int i = 0; i < M_N; i++)
		lb->fd[i] = bpf_map__fd(maps[i]);
	err = quic_key_load(lb);
	if (err)
		goto out;

	lb->info.magic = FP_INFO_MAGIC;
	lb->info.table_size = cfg->table_size;
	lb->info.max_vips = max_vips;
	lb->info.generation = 0;
	lb->info.cache_epoch = 1;
	lb->info.hash_key.k0 = cfg->hash_key.k0;
	lb->info.hash_key.k1 = cfg->hash_key.k1;
	{
		struct fp_hash_key ticket;

		fp_ticket_key_derive(&cfg->hash_key, &ticket);
		lb->info.ticket_key.k0 = ticket.k0;
		lb->info.ticket_key.k1 = ticket.k1;
	}
	lb->info.encap_port = cfg->encap_port;
	lb->info.session_entries = sessions;
	lb->info.timeout_tcp_established = cfg->timeouts.tcp_established;
	lb->info.timeout_tcp_transitory = cfg->timeouts.tcp_transitory;
	lb->info.timeout_udp = cfg->timeouts.udp;
	lb->info.new_flow_rate = effective_new_flow_rate(opts);
	lb->info.probation_slots = probation;
	set_info_sources(&lb->info, opts);
	if (bpf_map_update_elem(lb->fd[M_INFO], &zero, &lb->info, BPF_ANY)) {
		err = -errno;
		goto out;
	}
	err = seed_round_robin(lb);
	if (err)
		goto out;
	err = map_table(lb);
	if (err)
		goto out;
	err = fp_lb_apply(lb, cfg, NULL);
out:
	if (err) {
		fp_lb_close(lb);
		return err;
	}
	*out = lb;
	return 0;
}

static int pin_path(char *buf, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len) {
		fp_err("lb: pin path too long: %s/%s\n", dir, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * @strict: every pin, the layout this build knows (FP_INFO_MAGIC), the table mapped.
 * Else (an instance to replace whatever its layout): the program's pin, and the maps'
 * pins that exist, as they are; only closing, fp_lb_runs_prog() and the counting and
 * layout readers below work on such an instance.
 */
static int open_pinned(const char *dir, bool strict, struct fp_lb **out)
{
	char path[PATH_MAX];
	struct fp_lb *lb;
	int err = 0;

	*out = NULL;
	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	for (int i = 0; i < M_N; i++)
		lb->fd[i] = -1;
	lb->own_fds = true;
	lb->lock_fd = -1;
	lb->ncpus = libbpf_num_possible_cpus();
	if (lb->ncpus <= 0) {
		err = lb->ncpus ? lb->ncpus : -EINVAL;
		goto out;
	}
	err = pin_path(path, sizeof(path), dir, PROG_PIN);
	if (err)
		goto out;
	lb->prog_fd = bpf_obj_get(path);
	if (lb->prog_fd < 0) {
		err = -errno;
		fp_err("lb: %s: %s (is `flowpin lb up` running?)\n", path, strerror(errno));
		goto out;
	}
	for (int i = 0; i < M_N; i++) {
		err = pin_path(path, sizeof(path), dir, map_names[i]);
		if (err)
			goto out;
		lb->fd[i] = bpf_obj_get(path);
		if (lb->fd[i] < 0 && strict) {
			err = -errno;
			fp_err("lb: %s: %s\n", path, strerror(errno));
			goto out;
		}
	}
	if (!strict)
		goto out;
	err = read_info(lb, &lb->info);
	if (err)
		goto out;
	err = map_table(lb);
	if (err)
		goto out;
	lb->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lb->lock_fd < 0) {
		err = -errno;
		fp_err("lb: %s: %s\n", dir, strerror(errno));
	}
out:
	if (err) {
		fp_lb_close(lb);
		return err;
	}
	*out = lb;
	return 0;
}

int fp_lb_open_pinned(const char *dir, struct fp_lb **out)
{
	return open_pinned(dir, true, out);
}

int fp_lb_open_pinned_any(const char *dir, struct fp_lb **out)
{
	return open_pinned(dir, false, out);
}

/* Pins (index -1: the program, else map i). */
static int pin_one(struct fp_lb *lb, const char *dir, int i)
{
	char path[PATH_MAX];
	int err = pin_path(path, sizeof(path), dir, i < 0 ? PROG_PIN : map_names[i]);

	if (err)
		return err;
	if (bpf_obj_pin(i < 0 ? lb->prog_fd : lb->fd[i], path)) {
		err = -errno;
		fp_err("lb: pinning %s: %s%s\n", path, strerror(errno),
		       errno == EEXIST ? " (another instance pinned there?)" : "");
	}
	return err;
}

int fp_lb_pin(struct fp_lb *lb, const char *dir)
{
	char path[PATH_MAX];
	int err, pinned = -1; /* pins made so far: -1 none, i: program and maps < i */

	if (!lb || !dir)
		return -EINVAL;
	err = fp_mkdir_p(dir, 0700);
	if (err) {
		fp_err("lb: cannot create %s: %s\n", dir, strerror(-err));
		return err;
	}
	for (int i = -1; i < M_N; i++) {
		err = pin_one(lb, dir, i);
		if (err)
			goto out;
		pinned = i + 1;
	}
	if (lb->lock_fd < 0) {
		lb->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (lb->lock_fd < 0) {
			err = -errno;
			fp_err("lb: %s: %s\n", dir, strerror(errno));
		}
	}
out:
	/* On failure remove only what this call pinned: the directory may hold another
	 * instance's pins (EEXIST), which are not ours to remove. */
	for (int i = -1; err && i < pinned; i++)
		if (!pin_path(path, sizeof(path), dir, i < 0 ? PROG_PIN : map_names[i]))
			unlink(path);
	return err;
}

int fp_lb_unpin(const char *dir)
{
	char path[PATH_MAX];
	int err = 0;

	if (!dir)
		return -EINVAL;
	for (int i = -1; i < M_N; i++) {
		err = pin_path(path, sizeof(path), dir, i < 0 ? PROG_PIN : map_names[i]);
		if (err)
			return err;
		if (unlink(path) && errno != ENOENT) {
			err = -errno;
			fp_err("lb: removing %s: %s\n", path, strerror(errno));
			return err;
		}
	}
	if (rmdir(dir) && errno != ENOENT) {
		err = -errno;
		fp_err("lb: removing %s: %s\n", dir, strerror(errno));
	}
	return err;
}

/* ---- applying a configuration ---- */

/* Settings baked into the loaded program: a config that changes them needs a restart. */
static int check_restart_needed(const struct fp_info *info, const struct fp_config *cfg)
{
	const char *path = cfg->path ? cfg->path : "config";
	int bad = 0;

	if (info->hash_key.k0 != cfg->hash_key.k0 || info->hash_key.k1 != cfg->hash_key.k1) {
		fp_err("%s:%d: hash_key: differs from the running program's; changing it needs a "
		       "restart (flowpin lb down, then up)\n",
		       path, cfg->lines.hash_key);
		bad = 1;
	}
	if (info->table_size != cfg->table_size) {
		fp_err("%s:%d: table_size: %u, the running program has %u; changing it needs a "
		       "restart\n",
		       path, cfg->lines.table_size, cfg->table_size, info->table_size);
		bad = 1;
	}
	if (info->encap_port != cfg->encap_port) {
		fp_err("%s:%d: encap_port: %u, the running program has %u; changing it needs a "
		       "restart\n",
		       path, cfg->lines.encap_port, cfg->encap_port, info->encap_port);
		bad = 1;
	}
	if (info->timeout_tcp_established != cfg->timeouts.tcp_established ||
	    info->timeout_tcp_transitory != cfg->timeouts.tcp_transitory ||
	    info->timeout_udp != cfg->timeouts.udp) {
		fp_err("%s:%d: timeouts: differ from the running program's (%u/%u/%u s); changing "
		       "them needs a restart\n",
		       path, cfg->lines.timeouts, info->timeout_tcp_established,
		       info->timeout_tcp_transitory, info->timeout_udp);
		bad = 1;
	}
	return bad ? -EINVAL : 0;
}

/* Whether @cfg can be applied to the program described by @info (else: restart). */
static int check_fits(const struct fp_info *info, const struct fp_config *cfg)
{
	int err = check_restart_needed(info, cfg);

	if (err)
		return err;
	if (cfg->n_vips > info->max_vips) {
		fp_err("%s:%d: vips: %zu VIPs, the running program has room for %u; more needs a "
		       "restart\n",
		       cfg->path, cfg->lines.vips, cfg->n_vips, info->max_vips);
		return -EINVAL;
	}
	return 0;
}

/* Writes the inactive slot of a changed VIP: its pairs, built aside, then copied. */
static int write_slot(struct fp_lb *lb, const struct fp_vip_plan *p, const struct fp_running *run)
{
	__u32 m = lb->info.table_size;
	struct fp_bucket *dst = lb->table + fp_bucket_index(p->value.index, p->value.slot, m, 0);
	struct fp_bucket *pairs = calloc(m, sizeof(*pairs));

	if (!pairs)
		return -ENOMEM;
	fp_plan_pairs(p, run, pairs);
	for (__u32 i = 0; i < m; i++)
		dst[i] = pairs[i];
	free(pairs);
	return 0;
}

/*
 * Every backend of the VIP: this site's, then (fp_config_select_pop()) the other sites',
 * flagged FP_BACKEND_F_REMOTE with their site: in no table, reached only by a ticket.
 */
static int write_backends(struct fp_lb *lb, const struct fp_vip_plan *p)
{
	const struct fp_vip_cfg *v = p->cfg;

	for (size_t i = 0; i < v->n_backends + v->n_remote; i++) {
		const struct fp_backend_cfg *b = &v->backends[i];
		__u32 index = p->value.index * FP_BACKEND_SLOTS + b->id;
		struct fp_backend_entry e = {};

		memcpy(e.addr, b->addr.a, 16);
		e.id = (__u16)b->id;
		e.flags = fp_addr_v4(&b->addr) ? 0 : FP_BACKEND_F_V6;
		if (b->state == FP_BACKEND_DOWN)
			e.flags |= FP_BACKEND_F_DOWN;
		if (b->state == FP_BACKEND_DRAINING)
			e.flags |= FP_BACKEND_F_DRAINING;
		if (i >= v->n_backends) {
			e.flags |= FP_BACKEND_F_REMOTE;
			e.pop = (__u8)b->pop;
		}
		if (bpf_map_update_elem(lb->fd[M_BACKENDS], &index, &e, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int zero_traffic(struct fp_lb *lb, __u32 index)
{
	size_t len = (size_t)lb->ncpus * sizeof(struct fp_traffic);
	void *zeros = calloc(1, len);
	int err = 0;

	if (!zeros)
		return -ENOMEM;
	if (bpf_map_update_elem(lb->fd[M_TRAFFIC], &index, zeros, BPF_ANY))
		err = -errno;
	free(zeros);
	return err;
}

/*
 * Backend entries of a VIP block that neither the config nor the active table (owners
 * and previous owners) names any more. A backend removed from the config takes no new
 * flows, but its established flows keep their session entries, and those keep going
 * to it until they expire (like `draining`; `down` is what cuts flows off). So in a VIP
 * that already ran, such an entry is kept, flagged FP_BACKEND_F_REMOVED (its address
 * and its `down` flag as they were), and emptied at a later apply that finds no live
 * session naming it (never in the apply that removes it: a packet that read the
 * previous table may still be creating one). In a VIP new to this apply the block is
 * emptied at once. The check reads the whole session table (one pass for all VIPs),
 * so only applies that find such an entry pay it. Runs after the flip. An id added
 * again later is rewritten whole by write_backends(): its new address, no REMOVED
 * flag, and the sessions still naming the id follow it there.
 */
struct prune_plan {
	bool *keep;  /* FP_BACKEND_SLOTS: named by the config or the active table */
	bool *named; /* FP_BACKEND_SLOTS: named by a live session (filled only if needed) */
	bool scan;   /* has REMOVED entries that may be emptied: needs the session scan */
};

static bool session_of_vip(const struct fp_flow_key *k, const struct fp_vip_key *v)
{
	return !memcmp(k->dst, v->addr, 16) && k->proto == v->proto &&
	       (!v->port || k->dport == v->port || (!k->sport && !k->dport));
}

static __u64 session_timeout_ns(const struct fp_info *info, __u8 state)
{
	if (state == FP_SESS_TCP_EST)
		return (__u64)info->timeout_tcp_established * NSEC;
	if (state == FP_SESS_UDP)
		return (__u64)info->timeout_udp * NSEC;
	return (__u64)info->timeout_tcp_transitory * NSEC;
}

/*
 * The session table, mmapped (flowpin/maps.h struct fp_session_bucket), read-write for
 * fp_lb_clear_sessions(). @buckets: the map's elements.
 */
static int map_sessions_fd(int fd, struct fp_session_bucket **out, size_t *len, __u32 *buckets)
{
	struct bpf_map_info info;
	__u32 ilen = sizeof(info);
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		return -errno;
	if (info.type != BPF_MAP_TYPE_ARRAY || info.value_size != sizeof(**out) ||
	    !(info.map_flags & BPF_F_MMAPABLE))
		return -EPROTO;
	*buckets = info.max_entries;
	*len = ((size_t)info.max_entries * sizeof(**out) + page - 1) / page * page;
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;

		fp_err("lb: cannot mmap the session table: %s\n", strerror(errno));
		return err;
	}
	*out = p;
	return 0;
}

/*
 * Calls @cb for every entry of the session table, or with @marks for every probation
 * mark kept there instead (flowpin/maps.h FP_SESS_MARK), on a copy of the slot (the data
 * plane may rewrite the slot meanwhile; one being rewritten is skipped). Stops at a
 * non-zero return, which it returns.
 */
static int walk_slots(int fd, int marks, fp_lb_session_cb cb, void *ctx)
{
	struct fp_session_bucket *t;
	size_t len;
	__u32 n;
	int err = map_sessions_fd(fd, &t, &len, &n);

	if (err)
		return err;
	for (__u32 b = 0; !err && b < n; b++) {
		for (int w = 0; w < FP_SESSION_WAYS; w++) {
			struct fp_session_slot slot = t[b].way[w];

			if (!slot.key.proto)
				break; /* slots fill in order */
			if (slot.key.proto == FP_SESSION_WRITING ||
			    (slot.s.state == FP_SESS_MARK) != !!marks)
				continue;
			err = cb(&slot.key, &slot.s, ctx);
			if (err)
				break;
		}
	}
	munmap(t, len);
	return err;
}

static int walk_sessions(int fd, fp_lb_session_cb cb, void *ctx)
{
	return walk_slots(fd, 0, cb, ctx);
}

struct scan_ctx {
	struct fp_lb *lb;
	const struct fp_vip_plan *plans;
	struct prune_plan *pp;
	size_t n;
	__u64 now;
};

static int scan_one(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	struct scan_ctx *c = ctx;

	/* Expired by the data plane's rule, with a second of slack for its clock. */
	if ((__s64)(c->now - s->last_seen_ns) >
	    (__s64)(session_timeout_ns(&c->lb->info, s->state) + NSEC))
		return 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->pp[i].scan && session_of_vip(key, &c->plans[i].key))
			c->pp[i].named[s->backend % FP_BACKEND_SLOTS] = true;
	return 0;
}

/* Marks, per VIP that needs it, the backend ids its live session entries name. */
static int scan_sessions(struct fp_lb *lb, const struct fp_vip_plan *plans, struct prune_plan *pp,
			 size_t n)
{
	struct scan_ctx c = { lb, plans, pp, n, 0 };
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_coarse_ns()'s clock */
	c.now = (__u64)ts.tv_sec * NSEC + (__u64)ts.tv_nsec;
	return walk_sessions(lb->fd[M_SESSIONS], scan_one, &c);
}

static int write_entry(struct fp_lb *lb, __u32 index, const struct fp_backend_entry *e)
{
	return bpf_map_update_elem(lb->fd[M_BACKENDS], &index, e, BPF_ANY) ? -errno : 0;
}

/*
 * A VIP's FP_BACKEND_SLOTS entries of the backends array, read in one system call into
 * @out (FP_BACKEND_SLOTS entries). One lookup per slot was 4095 calls a VIP: with 15
 * VIPs an apply spent a quarter of a second there, holding up the daemon's loop and its
 * health checks.
 */
static int read_vip_backends(const struct fp_lb *lb, __u32 vip_index, struct fp_backend_entry *out)
{
	__u32 first = vip_index * FP_BACKEND_SLOTS, before = first - 1, last = 0;
	__u32 count = FP_BACKEND_SLOTS, *keys = calloc(FP_BACKEND_SLOTS, sizeof(*keys));
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int err = 0;

	if (!keys)
		return -ENOMEM;
	/* An array's batch starts after the key given (none: at index 0); the last VIP's
	 * range ends the array, which the kernel reports as ENOENT with every entry read. */
	if (bpf_map_lookup_batch(lb->fd[M_BACKENDS], first ? &before : NULL, &last, keys, out,
				 &count, &opts) &&
	    errno != ENOENT)
		err = -errno;
	else if (count != FP_BACKEND_SLOTS || keys[0] != first)
		err = -EIO;
	free(keys);
	return err;
}

static int prune_backends(struct fp_lb *lb, const struct fp_vip_plan *plans, size_t n)
{
	__u32 m = lb->info.table_size;
	struct prune_plan *pp = calloc(n ? n : 1, sizeof(*pp));
	struct fp_backend_entry *entries = calloc(FP_BACKEND_SLOTS, sizeof(*entries));
	bool in_cfg[FP_BACKEND_SLOTS];
	bool any_scan = false;
	int err = 0;

	if (!pp || !entries) {
		free(pp);
		free(entries);
		return -ENOMEM;
	}
	/* First pass: mark newly removed entries, find the ones that may be emptied. */
	for (size_t i = 0; !err && i < n; i++) {
		const struct fp_vip_plan *p = &plans[i];
		const struct fp_bucket *active =
			lb->table + fp_bucket_index(p->value.index, p->value.slot, m, 0);

		pp[i].keep = calloc(FP_BACKEND_SLOTS, sizeof(bool));
		pp[i].named = calloc(FP_BACKEND_SLOTS, sizeof(bool));
		if (!pp[i].keep || !pp[i].named) {
			err = -ENOMEM;
			break;
		}
		memset(in_cfg, 0, sizeof(in_cfg));
		for (size_t b = 0; b < p->cfg->n_backends + p->cfg->n_remote; b++)
			in_cfg[p->cfg->backends[b].id] = pp[i].keep[p->cfg->backends[b].id] = true;
		for (__u32 j = 0; j < m; j++) {
			pp[i].keep[active[j].owner % FP_BACKEND_SLOTS] = true;
			pp[i].keep[active[j].previous % FP_BACKEND_SLOTS] = true;
		}
		err = read_vip_backends(lb, p->value.index, entries);
		for (__u32 id = 1; !err && id < FP_BACKEND_SLOTS; id++) {
			__u32 index = p->value.index * FP_BACKEND_SLOTS + id;
			struct fp_backend_entry e = entries[id];

			if (!e.id || !p->exists)
				continue;
			if (in_cfg[id])
				continue; /* write_backends() wrote it whole */
			if (!(e.flags & FP_BACKEND_F_REMOVED)) {
				/* Removed by this apply: kept, whatever names it. */
				pp[i].keep[id] = true;
				e.flags |= FP_BACKEND_F_REMOVED;
				err = write_entry(lb, index, &e);
				if (err)
					break;
			} else if (!pp[i].keep[id]) {
				pp[i].scan = any_scan = true;
			}
		}
	}
	if (!err && any_scan)
		err = scan_sessions(lb, plans, pp, n);
	/* Second pass: empty what nothing names. */
	for (size_t i = 0; !err && i < n; i++) {
		const struct fp_vip_plan *p = &plans[i];

		err = read_vip_backends(lb, p->value.index, entries);
		for (__u32 id = 1; !err && id < FP_BACKEND_SLOTS; id++) {
			__u32 index = p->value.index * FP_BACKEND_SLOTS + id;
			struct fp_backend_entry e = entries[id];

			if (pp[i].keep[id] || pp[i].named[id])
				continue;
			/* An existing VIP: only REMOVED entries of an earlier apply, after the scan. */
			if (!e.id ||
			    (p->exists && (!(e.flags & FP_BACKEND_F_REMOVED) || !pp[i].scan)))
				continue;
			memset(&e, 0, sizeof(e));
			err = write_entry(lb, index, &e);
			if (err)
				break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(pp[i].keep);
		free(pp[i].named);
	}
	free(pp);
	free(entries);
	return err;
}

/*
 * Makes the `vip_addrs` map hold exactly the addresses of @cfg's VIPs (flowpin/maps.h):
 * the program drops what it does not serve on them, unless the address is local.
 * Only unserved packets read it, so the order against the flips does not matter.
 */
static int sync_vip_addrs(struct fp_lb *lb, const struct fp_config *cfg)
{
	struct fp_vip_addr_key key, next, stale[FP_VIP_SLOTS_MAX];
	const struct fp_vip_addr none = { 0 };
	int fd = lb->fd[M_VIP_ADDRS], err;
	size_t n_stale = 0;

	for (size_t i = 0; i < cfg->n_vips; i++) {
		memcpy(key.addr, cfg->vips[i].addr.a, sizeof(key.addr));
		if (bpf_map_update_elem(fd, &key, &none, BPF_ANY)) {
			err = -errno;
			fp_err("lb: writing the address of vip %s: %s\n", cfg->vips[i].name,
			       strerror(errno));
			return err;
		}
	}
	for (err = bpf_map_get_next_key(fd, NULL, &next); !err;
	     err = bpf_map_get_next_key(fd, &key, &next)) {
		bool used = false;

		key = next;
		for (size_t i = 0; i < cfg->n_vips && !used; i++)
			used = !memcmp(key.addr, cfg->vips[i].addr.a, sizeof(key.addr));
		if (!used && n_stale < FP_VIP_SLOTS_MAX)
			stale[n_stale++] = key;
	}
	for (size_t i = 0; i < n_stale; i++)
		if (bpf_map_delete_elem(fd, &stale[i]) && errno != ENOENT)
			return -errno;
	return 0;
}

/*
 * ---- Sites (flowpin/maps.h `pops`, `pop_lbs`, `pop_addrs`; bpf/pop.h) ----
 *
 * Every site's LB addresses, IPv4 ones first, and in `pop_addrs` whether each is this
 * node's site's. New entries are written before stale ones go: a cross-site packet from
 * a site that stays is never refused in between. A config without sites leaves them
 * empty: every cross-site packet is then dropped (pop_drop_source).
 */
static int sync_pops(struct fp_lb *lb, const struct fp_config *cfg)
{
	struct fp_vip_addr_key key, next, stale[FP_POP_SLOTS * FP_POP_LB_SLOTS];
	int fd = lb->fd[M_POP_ADDRS], err;
	size_t n_stale = 0;

	for (__u32 pop = 0; pop < FP_POP_SLOTS; pop++) {
		const struct fp_pop_cfg *c = pop < cfg->n_pops ? &cfg->pops[pop] : NULL;
		struct fp_pop value = {};
		__u32 slot = 0;

		for (int v6 = 0; v6 < 2; v6++) {
			for (size_t i = 0; c && i < c->n_lbs; i++) {
				struct fp_backend_entry e = {};
				__u32 index = pop * FP_POP_LB_SLOTS + slot;

				if (fp_addr_v4(&c->lbs[i]) == v6)
					continue;
				memcpy(e.addr, c->lbs[i].a, 16);
				e.flags = v6 ? FP_BACKEND_F_V6 : 0;
				if (bpf_map_update_elem(lb->fd[M_POP_LBS], &index, &e, BPF_ANY))
					return -errno;
				slot++;
				if (v6)
					value.n_v6++;
				else
					value.n_v4++;
			}
		}
		if (bpf_map_update_elem(lb->fd[M_POPS], &pop, &value, BPF_ANY))
			return -errno;
		for (; slot < FP_POP_LB_SLOTS; slot++) {
			struct fp_backend_entry e = {};
			__u32 index = pop * FP_POP_LB_SLOTS + slot;

			if (bpf_map_update_elem(lb->fd[M_POP_LBS], &index, &e, BPF_ANY))
				return -errno;
		}
		for (size_t i = 0; c && i < c->n_lbs; i++) {
			struct fp_pop_addr a = { .pop = (__u8)pop,
						 .local = cfg->pop_selected &&
							  cfg->local_pop == pop };

			memcpy(key.addr, c->lbs[i].a, sizeof(key.addr));
			if (bpf_map_update_elem(fd, &key, &a, BPF_ANY)) {
				err = -errno;
				fp_err("lb: writing the LB addresses of site %s: %s\n", c->name,
				       strerror(errno));
				return err;
			}
		}
	}
	for (err = bpf_map_get_next_key(fd, NULL, &next); !err;
	     err = bpf_map_get_next_key(fd, &key, &next)) {
		bool used = false;

		key = next;
		for (size_t p = 0; p < cfg->n_pops && !used; p++)
			for (size_t i = 0; i < cfg->pops[p].n_lbs && !used; i++)
				used = !memcmp(key.addr, cfg->pops[p].lbs[i].a, sizeof(key.addr));
		if (!used && n_stale < sizeof(stale) / sizeof(stale[0]))
			stale[n_stale++] = key;
	}
	for (size_t i = 0; i < n_stale; i++)
		if (bpf_map_delete_elem(fd, &stale[i]) && errno != ENOENT)
			return -errno;
	return 0;
}

/*
 * ---- QUIC-LB (bpf/quic.h): per VIP index its config (`quic_lb`), its servers
 * (`quic_servers`) and, for single-pass AES, its kernel AES context (`quic_crypto`) ----
 *
 * AES-128-ECB as the crypto API names it: the table-based generic implementation first
 * (about 2.6x faster than the fixed-time one on machines without AES instructions;
 * docs/security.md weighs its cache-timing exposure), the kernel's default otherwise.
 */
static const char *const quic_aes_algos[] = { "ecb(aes-generic)", "ecb(aes)" };

/* Whether the `quic_crypto` context of a VIP was made with this key (never 0). */
static __u64 quic_key_check(const struct fp_info *info, const __u8 key[FP_QUICLB_KEY_LEN])
{
	struct fp_hash_key k = { info->hash_key.k0, info->hash_key.k1 };

	return fp_siphash(&k, key, FP_QUICLB_KEY_LEN, 2, 4) | 1;
}

struct quic_key_job {
	__u32 index;
	const struct fp_vip_cfg *vip; /* NULL: release the index's context */
};

/* One context made (job->vip's key) or released, through fp_quic_key(). */
static int quic_key_run(int prog_fd, const struct fp_config *cfg, const struct quic_key_job *job)
{
	struct fp_quic_key_args a;
	int err = 0;

	for (size_t i = 0; i < sizeof(quic_aes_algos) / sizeof(quic_aes_algos[0]); i++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &a, .ctx_size_in = sizeof(a));

		memset(&a, 0, sizeof(a));
		a.vip_index = job->index;
		if (job->vip) {
			a.key_len = FP_QUICLB_KEY_LEN;
			memcpy(a.key, job->vip->quic_lb.key, FP_QUICLB_KEY_LEN);
			snprintf(a.algo, sizeof(a.algo), "%s", quic_aes_algos[i]);
		}
		err = bpf_prog_test_run_opts(prog_fd, &o) ? -errno : a.err;
		memset(a.key, 0, sizeof(a.key));
		/* The crypto API answers -ENOENT for an algorithm it does not have. */
		if (err != -ENOENT || !job->vip)
			break;
	}
	if (err && job->vip)
		fp_err("%s:%d: quic_lb.key: the kernel cannot make an AES-128-ECB context for vip "
		       "%s (bpf_crypto_ctx_create: %s); single-pass QUIC-LB in XDP needs Linux >= "
		       "6.10 with the bpf_crypto kfuncs and the ecb(aes) cipher\n",
		       cfg->path, job->vip->quic_lb_line, job->vip->name, strerror(-err));
	else if (err)
		fp_err("lb: releasing the QUIC-LB AES context of VIP index %u: %s\n", job->index,
		       strerror(-err));
	return err;
}

/* Runs @n key jobs through fp_quic_key(). */
static int quic_keys(struct fp_lb *lb, const struct fp_config *cfg, const struct quic_key_job *jobs,
		     size_t n)
{
	int err = n ? quic_key_load(lb) : 0;

	for (size_t i = 0; i < n && !err; i++)
		err = quic_key_run(bpf_program__fd(lb->quic_key->progs.fp_quic_key), cfg, &jobs[i]);
	return err;
}

static void quic_server_key(const struct fp_vip_plan *p, const struct fp_backend_cfg *b,
			    struct fp_quic_server_key *k)
{
	memset(k, 0, sizeof(*k));
	k->vip_index = p->value.index;
	k->len = p->cfg->quic_lb.server_id_len;
	memcpy(k->server_id, b->server_id, k->len);
}

/*
 * Before the flips (a VIP's FP_VIP_F_QUIC_LB appears only once its context, servers
 * and config are in place): AES contexts for new keys first (a kernel that cannot make
 * one fails the apply before anything else is written), then the VIPs' servers, then
 * their configs. @was_aes: indexes whose running config was single-pass, for
 * prune_quic().
 */
static int write_quic(struct fp_lb *lb, const struct fp_config *cfg, const struct fp_plan *plan,
		      const struct fp_info *info, bool was_aes[FP_VIP_SLOTS_MAX])
{
	struct quic_key_job jobs[FP_VIP_SLOTS_MAX];
	size_t n_jobs = 0;
	int err;

	for (__u32 i = 0; i < FP_VIP_SLOTS_MAX; i++) {
		struct fp_quic_lb cur;

		was_aes[i] = !bpf_map_lookup_elem(lb->fd[M_QUIC_LB], &i, &cur) &&
			     cur.mode == FP_QUIC_LB_AES_1PASS;
	}
	for (size_t i = 0; i < plan->n_vips; i++) {
		const struct fp_vip_plan *p = &plan->vips[i];
		struct fp_quic_lb q, cur;

		if (!fp_plan_quic_lb(p->cfg, &q)) {
			if (p->cfg->has_quic_lb)
				fp_warn("%s:%d: quic_lb: four-pass CIDs (server_id_len + nonce_len "
					"!= 16 with a key) are not decoded in XDP: vip %s is "
					"routed "
					"by its pinning mode alone\n",
					cfg->path, p->cfg->quic_lb_line, p->cfg->name);
			continue;
		}
		if (q.mode != FP_QUIC_LB_AES_1PASS)
			continue;
		if (bpf_map_lookup_elem(lb->fd[M_QUIC_LB], &p->value.index, &cur) ||
		    cur.mode != FP_QUIC_LB_AES_1PASS ||
		    cur.key_check != quic_key_check(info, p->cfg->quic_lb.key))
			jobs[n_jobs++] = (struct quic_key_job){ p->value.index, p->cfg };
	}
	err = quic_keys(lb, cfg, jobs, n_jobs);
	if (err)
		return err;
	for (size_t i = 0; i < plan->n_vips; i++) {
		const struct fp_vip_plan *p = &plan->vips[i];
		struct fp_quic_lb q;

		if (!fp_plan_quic_lb(p->cfg, &q))
			continue;
		for (size_t b = 0; b < p->cfg->n_backends + p->cfg->n_remote; b++) {
			struct fp_quic_server v = { .backend = (__u16)p->cfg->backends[b].id };
			struct fp_quic_server_key k;

			quic_server_key(p, &p->cfg->backends[b], &k);
			if (bpf_map_update_elem(lb->fd[M_QUIC_SERVERS], &k, &v, BPF_ANY)) {
				err = -errno;
				fp_err("lb: writing the QUIC-LB servers of vip %s: %s\n",
				       p->cfg->name, strerror(errno));
				return err;
			}
		}
		if (q.mode == FP_QUIC_LB_AES_1PASS)
			q.key_check = quic_key_check(info, p->cfg->quic_lb.key);
		if (bpf_map_update_elem(lb->fd[M_QUIC_LB], &p->value.index, &q, BPF_ANY)) {
			err = -errno;
			fp_err("lb: writing the QUIC-LB config of vip %s: %s\n", p->cfg->name,
			       strerror(errno));
			return err;
		}
	}
	return 0;
}

/* The planned VIP that decodes QUIC-LB CIDs at @index, or NULL. */
static const struct fp_vip_plan *quic_vip(const struct fp_plan *plan, __u32 index,
					  struct fp_quic_lb *q)
{
	for (size_t i = 0; i < plan->n_vips; i++)
		if (plan->vips[i].value.index == index && fp_plan_quic_lb(plan->vips[i].cfg, q))
			return &plan->vips[i];
	return NULL;
}

static bool quic_server_wanted(const struct fp_plan *plan, const struct fp_quic_server_key *k)
{
	const struct fp_vip_plan *p;
	struct fp_quic_lb q;

	p = quic_vip(plan, k->vip_index, &q);
	if (!p || k->len != q.server_id_len)
		return false;
	for (size_t b = 0; b < p->cfg->n_backends + p->cfg->n_remote; b++) {
		struct fp_quic_server_key mine;

		quic_server_key(p, &p->cfg->backends[b], &mine);
		if (!memcmp(&mine, k, sizeof(mine)))
			return true;
	}
	return false;
}

/*
 * After the flips: what no VIP decodes any more goes (configs, servers named by no
 * backend, AES contexts of VIPs without a single-pass key now).
 */
static int prune_quic(struct fp_lb *lb, const struct fp_config *cfg, const struct fp_plan *plan,
		      const bool was_aes[FP_VIP_SLOTS_MAX])
{
	struct quic_key_job jobs[FP_VIP_SLOTS_MAX];
	struct fp_quic_server_key key, next, *stale = NULL;
	size_t n_jobs = 0, n_stale = 0, cap = 0;
	int fd = lb->fd[M_QUIC_SERVERS], err;

	for (__u32 i = 0; i < FP_VIP_SLOTS_MAX; i++) {
		struct fp_quic_lb q;
		bool wanted = quic_vip(plan, i, &q) != NULL;

		if (was_aes[i] && (!wanted || q.mode != FP_QUIC_LB_AES_1PASS))
			jobs[n_jobs++] = (struct quic_key_job){ i, NULL };
		if (!wanted && bpf_map_delete_elem(lb->fd[M_QUIC_LB], &i) && errno != ENOENT)
			return -errno;
	}
	for (err = bpf_map_get_next_key(fd, NULL, &next); !err;
	     err = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		if (quic_server_wanted(plan, &key))
			continue;
		if (n_stale == cap) {
			struct fp_quic_server_key *more;

			cap = cap ? 2 * cap : 64;
			more = realloc(stale, cap * sizeof(*stale));
			if (!more) {
				free(stale);
				return -ENOMEM;
			}
			stale = more;
		}
		stale[n_stale++] = key;
	}
	err = 0;
	for (size_t i = 0; i < n_stale && !err; i++)
		if (bpf_map_delete_elem(fd, &stale[i]) && errno != ENOENT)
			err = -errno;
	free(stale);
	return err ? err : quic_keys(lb, cfg, jobs, n_jobs);
}

/*
 * A config is applied as the node's own site's (fp_config_select_pop() with the site
 * `info` records, `lb up --pop`): never as another site's, never unselected.
 */
static int check_site(const struct fp_info *info, const struct fp_config *cfg)
{
	const char *site = cfg->pop_selected ? cfg->pops[cfg->local_pop].name : "";

	if (!cfg->n_pops && !info->pop[0])
		return 0;
	if (cfg->n_pops && cfg->pop_selected && !strncmp(site, info->pop, sizeof(info->pop)))
		return 0;
	fp_err("%s:%d: pops: the node runs as site '%.*s', the config is %s%s%s\n",
	       cfg->path ? cfg->path : "config", cfg->lines.pops, (int)sizeof(info->pop) - 1,
	       info->pop,
	       !cfg->n_pops	   ? "without sites"
	       : cfg->pop_selected ? "site '"
				   : "",
	       cfg->n_pops && !cfg->pop_selected ? "not made any site's (no --pop)" : site,
	       cfg->pop_selected ? "'" : "");
	return -EINVAL;
}

static int apply_locked(struct fp_lb *lb, const struct fp_config *cfg, __u32 *generation)
{
	struct fp_vip_key cur_keys[FP_VIP_SLOTS_MAX];
	struct fp_vip cur_vals[FP_VIP_SLOTS_MAX];
	bool was_aes[FP_VIP_SLOTS_MAX];
	struct fp_plan plan = {};
	struct fp_running run;
	struct fp_info info;
	size_t n_cur = 0;
	struct fp_vip_key key, next;
	__u32 zero = 0;
	int err;

	err = read_info(lb, &info);
	if (err)
		return err;
	err = check_fits(&info, cfg);
	if (err)
		return err;
	err = check_site(&info, cfg);
	if (err)
		return err;

	/* What runs now. */
	for (err = bpf_map_get_next_key(lb->fd[M_VIPS], NULL, &next); !err;
	     err = bpf_map_get_next_key(lb->fd[M_VIPS], &key, &next)) {
		key = next;
		if (n_cur == FP_VIP_SLOTS_MAX)
			break;
		if (bpf_map_lookup_elem(lb->fd[M_VIPS], &key, &cur_vals[n_cur]))
			continue; /* deleted meanwhile: cannot happen under the lock */
		cur_keys[n_cur] = key;
		n_cur++;
	}
	if (err && err != -ENOENT) {
		fp_err("lb: reading the running VIPs: %s\n", strerror(-err));
		return err;
	}
	run = (struct fp_running){ .keys = cur_keys,
				   .vips = cur_vals,
				   .n = n_cur,
				   .buckets = lb->table,
				   .table_size = lb->info.table_size,
				   .max_vips = info.max_vips,
				   .generation = info.generation };

	/* Plan everything before writing anything: a refused config changes nothing. */
	err = fp_plan_tables(cfg, &run, &plan);
	if (err)
		goto out;

	/* Sites, then backends (other sites' name theirs), then tables, then the flips:
	 * the new tables may name them. */
	err = sync_pops(lb, cfg);
	if (err) {
		fp_err("lb: writing the sites: %s\n", strerror(-err));
		goto out;
	}
	for (size_t i = 0; i < plan.n_vips; i++) {
		err = write_backends(lb, &plan.vips[i]);
		if (err) {
			fp_err("lb: writing backends of vip %s: %s\n", plan.vips[i].cfg->name,
			       strerror(-err));
			goto out;
		}
	}
	/* QUIC-LB servers name backends; a VIP's flag flips on with its table. */
	err = write_quic(lb, cfg, &plan, &info, was_aes);
	if (err)
		goto out;
	for (size_t i = 0; i < plan.n_vips; i++) {
		const struct fp_vip_plan *p = &plan.vips[i];

		if (p->exists && !p->changed)
			continue;
		err = write_slot(lb, p, &run);
		if (err)
			goto out;
		if (!p->exists) {
			err = zero_traffic(lb, p->value.index * FP_BACKEND_SLOTS);
			for (size_t b = 0; !err && b < p->cfg->n_backends; b++)
				err = zero_traffic(lb, p->value.index * FP_BACKEND_SLOTS +
							       p->cfg->backends[b].id);
			if (err)
				goto out;
		}
		/* The flip: one update of the whole value. */
		if (bpf_map_update_elem(lb->fd[M_VIPS], &p->key, &p->value, BPF_ANY)) {
			err = -errno;
			fp_err("lb: switching vip %s: %s\n", p->cfg->name, strerror(errno));
			goto out;
		}
	}
	for (size_t c = 0; c < n_cur; c++) {
		if (plan.removed[c] && bpf_map_delete_elem(lb->fd[M_VIPS], &cur_keys[c]) &&
		    errno != ENOENT) {
			err = -errno;
			goto out;
		}
	}
	err = sync_vip_addrs(lb, cfg);
	if (err)
		goto out;
	err = prune_backends(lb, plan.vips, plan.n_vips);
	if (err)
		goto out;
	err = prune_quic(lb, cfg, &plan, was_aes);
	if (err)
		goto out;
	if (plan.any_change) {
		info.generation = plan.generation;
		if (bpf_map_update_elem(lb->fd[M_INFO], &zero, &info, BPF_ANY)) {
			err = -errno;
			goto out;
		}
		lb->info.generation = plan.generation;
	}
	if (generation)
		*generation = info.generation;
	err = 0;
out:
	fp_plan_free(&plan);
	return err;
}

static int update_info(struct fp_lb *lb, bool applied, int apply_err);

/*
 * Invalidates every CPU's flow cache (flowpin/maps.h struct fp_flow_cache_entry): after
 * the maps changed, never before. Called with the apply lock held.
 */
static int bump_cache_epoch(struct fp_lb *lb)
{
	return update_info(lb, false, 0);
}

/*
 * Bumps the flow cache epoch and, for an apply (@applied), counts it and, when @apply_err,
 * its failure, in one write of `info`. Called with the apply lock held.
 */
static int update_info(struct fp_lb *lb, bool applied, int apply_err)
{
	struct fp_info info;
	__u32 zero = 0;
	int err = read_info(lb, &info);

	if (err)
		return err;
	if (applied) {
		info.applies++;
		info.apply_errors += apply_err != 0;
	}
	info.cache_epoch = info.cache_epoch + 1 ? info.cache_epoch + 1 : 1;
	if (bpf_map_update_elem(lb->fd[M_INFO], &zero, &info, BPF_ANY)) {
		err = -errno;
		fp_err("lb: cannot invalidate the flow cache: %s\n", strerror(errno));
	}
	return err;
}

/* Nested: only the outermost lock()/unlock() pair takes and drops the flock. */
static int lock(struct fp_lb *lb)
{
	int err;

	if (lb->lock_fd >= 0 && lb->lock_depth == 0 && flock(lb->lock_fd, LOCK_EX)) {
		err = -errno;
		fp_err("lb: cannot lock the pin directory: %s\n", strerror(errno));
		return err;
	}
	lb->lock_depth++;
	return 0;
}

static void unlock(struct fp_lb *lb)
{
	if (lb->lock_depth > 0 && --lb->lock_depth == 0 && lb->lock_fd >= 0)
		flock(lb->lock_fd, LOCK_UN);
}

int fp_lb_lock(struct fp_lb *lb)
{
	return lb ? lock(lb) : -EINVAL;
}

void fp_lb_unlock(struct fp_lb *lb)
{
	if (lb)
		unlock(lb);
}

int fp_lb_apply(struct fp_lb *lb, const struct fp_config *cfg, __u32 *generation)
{
	int err, err2;

	if (!lb || !cfg)
		return -EINVAL;
	err = lock(lb);
	if (err)
		return err;
	err = apply_locked(lb, cfg, generation);
	/* Also after a failed apply: it may have written part of the change. */
	err2 = update_info(lb, true, err);
	unlock(lb);
	return err ? err : err2;
}

int fp_lb_count_apply_error(struct fp_lb *lb)
{
	int err;

	if (!lb)
		return -EINVAL;
	err = lock(lb);
	if (err)
		return err;
	err = update_info(lb, true, -EINVAL);
	unlock(lb);
	return err;
}

/* ---- restart: a new program over the pinned maps ---- */

int fp_lb_check_config(const struct fp_lb *lb, const struct fp_config *cfg)
{
	struct fp_info info;
	int err;

	if (!lb || !cfg)
		return -EINVAL;
	err = read_info(lb, &info);
	return err ? err : check_fits(&info, cfg);
}

static const char *map_type_name(__u32 type)
{
	const char *name = libbpf_bpf_map_type_str((enum bpf_map_type)type);

	return name ? name : "unknown";
}

/*
 * The layout check behind FP_INFO_MAGIC: each pinned map has the type, key and value
 * sizes and flags this build's program declares (its size may differ: the maps keep
 * theirs), and the program uses no map that would not be carried over but these four,
 * each new with each program: .rodata (the settings fixed at load, set again from the
 * config and options, and checked equal where they must be), csum_scratch and
 * quic_scratch (scratch space, no state) and icmp_bucket (the ICMP reply rate limiter:
 * a new program starts with a full bucket, one burst). lb.bpf.c has no .data or .bss: a new one would be
 * refused here until it is pinned. -EPROTO, every difference logged, when not.
 */
static int check_shapes(struct lb *skel, struct bpf_map *maps[M_N], const struct fp_lb *running)
{
	struct bpf_map *map;
	int err = 0;

	for (int i = 0; i < M_N; i++) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(running->fd[i], &info, &len))
			return -errno;
		if (info.type == bpf_map__type(maps[i]) &&
		    info.key_size == bpf_map__key_size(maps[i]) &&
		    info.value_size == bpf_map__value_size(maps[i]) &&
		    info.map_flags == bpf_map__map_flags(maps[i]))
			continue;
		fp_err("lb: pinned map %s is a %s of %u-byte keys and %u-byte values (flags %#x); "
		       "this build's is a %s of %u-byte keys and %u-byte values (flags %#x)\n",
		       map_names[i], map_type_name(info.type), info.key_size, info.value_size,
		       info.map_flags, map_type_name(bpf_map__type(maps[i])),
		       bpf_map__key_size(maps[i]), bpf_map__value_size(maps[i]),
		       bpf_map__map_flags(maps[i]));
		err = -EPROTO;
	}
	bpf_object__for_each_map(map, skel->obj)
	{
		bool kept = map == skel->maps.rodata || map == skel->maps.csum_scratch ||
			    map == skel->maps.icmp_bucket || map == skel->maps.quic_scratch ||
			    map == skel->maps.ticket_flow;

		for (int i = 0; i < M_N && !kept; i++)
			kept = map == maps[i];
		if (!kept) {
			fp_err("lb: this build's program uses map %s, which the pins do not "
			       "carry over\n",
			       bpf_map__name(map));
			err = -EPROTO;
		}
	}
	return err;
}

int fp_lb_open_over(const struct fp_lb *running, const struct fp_config *cfg,
		    const struct fp_lb_opts *opts, struct fp_lb **out)
{
	struct fp_lb_opts none = {};
	struct bpf_map *maps[M_N];
	struct fp_lb *lb = NULL;
	int err;

	*out = NULL;
	if (!running || !cfg || running->lock_fd < 0)
		return -EINVAL;
	if (!opts)
		opts = &none;
	err = fp_lb_check_config(running, cfg);
	if (err)
		return err;
	lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	lb->prog_fd = -1;
	lb->ncpus = running->ncpus;
	/* Its own open file description of the directory: flock() is per description. */
	lb->lock_fd = openat(running->lock_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lb->lock_fd < 0) {
		err = -errno;
		goto out;
	}
	lb->skel = open_skel();
	if (!lb->skel) {
		err = -errno;
		goto out;
	}
	set_program_settings(lb->skel, cfg, opts);
	lb->skel->rodata->probation_slots = running->info.probation_slots; /* the map's size */
	lb->skel->rodata->session_buckets = fp_session_buckets(running->info.session_entries);
	skel_maps(lb->skel, maps);
	err = check_shapes(lb->skel, maps, running);
	if (err)
		goto out;
	/* The pinned maps, sizes and contents as they are: sessions, counters, tables. */
	for (int i = 0; i < M_N && !err; i++)
		err = bpf_map__reuse_fd(maps[i], running->fd[i]);
	if (err) {
		fp_err("lb: cannot reuse the pinned maps: %s\n", strerror(-err));
		goto out;
	}
	err = lb__load(lb->skel);
	if (err) {
		fp_err("lb: the kernel refused the XDP program over the pinned maps: %s (run with "
		       "-v)\n",
		       strerror(-err));
		goto out;
	}
	lb->prog_fd = bpf_program__fd(lb->skel->progs.fp_lb);
	for (int i = 0; i < M_N; i++)
		lb->fd[i] = bpf_map__fd(maps[i]);
	err = quic_key_load(lb);
	if (!err)
		err = read_info(lb, &lb->info);
	if (!err)
		err = map_table(lb);
out:
	if (err) {
		fp_lb_close(lb);
		return err;
	}
	*out = lb;
	return 0;
}

int fp_lb_take_over(struct fp_lb *lb, const struct fp_lb_opts *opts, const char *dir)
{
	struct fp_lb_opts none = {};
	char path[PATH_MAX], aside[PATH_MAX];
	__u32 zero = 0;
	int err;

	if (!lb || !dir || !lb->skel)
		return -EINVAL;
	if (!opts)
		opts = &none;
	err = pin_path(path, sizeof(path), dir, PROG_PIN);
	if (!err)
		err = pin_path(aside, sizeof(aside), dir,
			       PROG_PIN "_new" /* no dots in bpffs names */);
	if (err)
		return err;
	/* Pinned aside, then renamed over the old pin: `prog` always names a program. */
	unlink(aside);
	if (bpf_obj_pin(lb->prog_fd, aside) || rename(aside, path)) {
		err = -errno;
		fp_err("lb: pinning the program as %s: %s\n", path, strerror(errno));
		unlink(aside);
		return err;
	}
	err = lock(lb);
	if (err)
		return err;
	err = read_info(lb, &lb->info);
	if (!err) {
		set_info_sources(&lb->info, opts);
		lb->info.new_flow_rate = effective_new_flow_rate(opts);
		if (bpf_map_update_elem(lb->fd[M_INFO], &zero, &lb->info, BPF_ANY))
			err = -errno;
	}
	unlock(lb);
	return err;
}

bool fp_lb_runs_prog(const struct fp_lb *lb, __u32 prog_id)
{
	struct bpf_prog_info info = {};
	struct bpf_map_info minfo = {};
	__u32 len = sizeof(info), mlen = sizeof(minfo), map_ids[64];
	int fd;
	bool ours = false;

	if (!lb || !prog_id)
		return false;
	if (!bpf_obj_get_info_by_fd(lb->prog_fd, &info, &len) && info.id == prog_id)
		return true;
	/* Another program of ours (a restart died between attach and pin): it uses our
	 * `info` map. */
	if (bpf_obj_get_info_by_fd(lb->fd[M_INFO], &minfo, &mlen))
		return false;
	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	len = sizeof(info);
	info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	info.map_ids = (__u64)(unsigned long)map_ids;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
		for (__u32 i = 0; i < info.nr_map_ids && i < 64 && !ours; i++)
			ours = map_ids[i] == minfo.id;
	}
	close(fd);
	return ours;
}

/* ---- upgrade: which program runs, starting fresh ---- */

static int prog_tag(int fd, __u32 *id, char tag[2 * BPF_TAG_SIZE + 1])
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	*id = info.id;
	for (int i = 0; i < BPF_TAG_SIZE; i++)
		snprintf(tag + 2 * i, 3, "%02x", info.tag[i]);
	return 0;
}

/* The first load-time setting of @skel's program that differs from @info's record. */
static const char *setting_differs(const struct lb *skel, const struct fp_info *info)
{
	__be32 v4 = skel->rodata->source_v4;

	if (memcmp(&v4, info->source_v4, 4))
		return "the IPv4 source address";
	if (memcmp((const void *)skel->rodata->source_v6, info->source_v6, 16))
		return "the IPv6 source address";
	if (skel->rodata->new_flow_rate != info->new_flow_rate)
		return "the new-flow rate";
	if (skel->rodata->probation_slots != info->probation_slots)
		return "the probation slots";
	return NULL;
}

int fp_lb_compare_prog(const struct fp_lb *running, const struct fp_lb *loaded,
		       struct fp_lb_prog_cmp *out)
{
	int err;

	if (!running || !loaded || !loaded->skel || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	err = prog_tag(running->prog_fd, &out->running_id, out->running_tag);
	if (!err)
		err = prog_tag(loaded->prog_fd, &out->loaded_id, out->loaded_tag);
	if (err)
		return err;
	/* The kernel's tag hashes the instructions with map references zeroed: the same
	 * build gives the same tag whatever its maps and .rodata values. The settings that
	 * .rodata holds are compared with the record the running program was loaded with
	 * (`info`; the ones fixed at load passed fp_lb_check_config() already). */
	out->same_code = !strcmp(out->running_tag, out->loaded_tag);
	out->setting = setting_differs(loaded->skel, &running->info);
	return 0;
}

static int count_one(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	(void)key;
	(void)s;
	(*(size_t *)ctx)++;
	return 0;
}

int fp_lb_count_session_keys(const struct fp_lb *lb, size_t *n)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	void *key, *next;
	int err;

	*n = 0;
	if (!lb || lb->fd[M_SESSIONS] < 0)
		return -EINVAL;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(lb->fd[M_SESSIONS], &info, &len))
		return -errno;
	/* This layout's table: its occupied slots. */
	if (info.type == BPF_MAP_TYPE_ARRAY && info.value_size == sizeof(struct fp_session_bucket))
		return walk_sessions(lb->fd[M_SESSIONS], count_one, n);
	/* By the map's own key size: an instance of another layout (a hash) is counted too. */
	key = calloc(2, info.key_size ? info.key_size : 1);
	if (!key)
		return -ENOMEM;
	next = (char *)key + info.key_size;
	for (err = bpf_map_get_next_key(lb->fd[M_SESSIONS], NULL, next); !err;
	     err = bpf_map_get_next_key(lb->fd[M_SESSIONS], key, next)) {
		memcpy(key, next, info.key_size);
		(*n)++;
	}
	free(key);
	return err == -ENOENT ? 0 : err;
}

int fp_lb_pinned_magic(const struct fp_lb *lb, __u32 *magic)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), zero = 0;
	void *value;
	int err = 0;

	if (!lb || lb->fd[M_INFO] < 0)
		return -EINVAL;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(lb->fd[M_INFO], &info, &len))
		return -errno;
	if (info.value_size < sizeof(*magic) || info.key_size != sizeof(zero))
		return -EPROTO;
	value = calloc(1, info.value_size);
	if (!value)
		return -ENOMEM;
	if (bpf_map_lookup_elem(lb->fd[M_INFO], &zero, value))
		err = -errno;
	else
		memcpy(magic, value, sizeof(*magic)); /* first in every layout */
	free(value);
	return err;
}

static bool our_pin_name(const char *name)
{
	if (!strcmp(name, PROG_PIN))
		return true;
	for (int i = 0; i < M_N; i++)
		if (!strcmp(name, map_names[i]))
			return true;
	return false;
}

int fp_lb_repin(struct fp_lb *lb, const char *dir)
{
	char path[PATH_MAX], aside[PATH_MAX];
	struct dirent *de;
	int err = 0, made = -1; /* pins made aside: -1 none, i: program and maps < i */
	DIR *d;

	if (!lb || !dir || lb->lock_fd >= 0)
		return -EINVAL;
	lb->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lb->lock_fd < 0) {
		err = -errno;
		fp_err("lb: %s: %s\n", dir, strerror(errno));
		return err;
	}
	err = lock(lb);
	if (err)
		return err;
	/* Everything pinned aside first: a failure leaves the old pins as they were. */
	for (int i = -1; i < M_N && !err; i++) {
		const char *name = i < 0 ? PROG_PIN : map_names[i];

		err = pin_path(aside, sizeof(aside), dir, name);
		if (!err && strlen(aside) + 4 >= sizeof(aside))
			err = -ENAMETOOLONG;
		if (err)
			break;
		strcat(aside, "_new"); /* no dots in bpffs names */
		unlink(aside);
		if (bpf_obj_pin(i < 0 ? lb->prog_fd : lb->fd[i], aside)) {
			err = -errno;
			fp_err("lb: pinning %s: %s\n", aside, strerror(errno));
			break;
		}
		made = i + 1;
	}
	for (int i = -1; i < made; i++) {
		const char *name = i < 0 ? PROG_PIN : map_names[i];

		if (pin_path(path, sizeof(path), dir, name) ||
		    snprintf(aside, sizeof(aside), "%s_new", path) >= (int)sizeof(aside))
			continue;
		if (err) {
			unlink(aside);
		} else if (rename(aside, path)) {
			err = -errno;
			fp_err("lb: renaming %s to %s: %s\n", aside, path, strerror(errno));
		}
	}
	/* Pins of the old layout this one does not have: theirs, not ours to keep. */
	d = err ? NULL : opendir(dir);
	while (d && (de = readdir(d))) {
		if (de->d_type == DT_DIR || our_pin_name(de->d_name))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0))
			fp_warn("lb: %s/%s: not removed: %s\n", dir, de->d_name, strerror(errno));
	}
	if (d)
		closedir(d);
	unlock(lb);
	return err;
}

/* ---- attach ---- */

static __u32 xdp_flags(enum fp_xdp_mode mode)
{
	return mode == FP_XDP_GENERIC ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
}

int fp_lb_attach(struct fp_lb *lb, int ifindex, enum fp_xdp_mode mode)
{
	int err;

	if (!lb || ifindex <= 0)
		return -EINVAL;
	/* Never replace somebody else's program silently. */
	err = bpf_xdp_attach(ifindex, lb->prog_fd, xdp_flags(mode) | XDP_FLAGS_UPDATE_IF_NOEXIST,
			     NULL);
	if (err)
		fp_err("lb: attaching to ifindex %d (%s mode): %s%s\n", ifindex,
		       mode == FP_XDP_GENERIC ? "generic" : "native", strerror(-err),
		       err == -EBUSY ? " (another XDP program is attached)" : "");
	return err;
}

int fp_lb_replace(struct fp_lb *lb, int ifindex, enum fp_xdp_mode mode, int old_prog_fd)
{
	struct bpf_xdp_attach_opts xo;
	int err;

	/* Zeroed whole, padding included: libbpf refuses non-zero bytes past the fields
	 * it knows, and an initialiser leaves padding unspecified (seen with clang). */
	memset(&xo, 0, sizeof(xo));
	xo.sz = sizeof(xo);
	xo.old_prog_fd = old_prog_fd;

	if (!lb || ifindex <= 0 || old_prog_fd < 0)
		return -EINVAL;
	/* One netlink request: the kernel swaps the program only if @old_prog_fd's is the
	 * one attached, and no packet sees the device without a program. */
	err = bpf_xdp_attach(ifindex, lb->prog_fd, xdp_flags(mode) | XDP_FLAGS_REPLACE, &xo);
	if (err)
		fp_err("lb: replacing the XDP program on ifindex %d (%s mode): %s%s\n", ifindex,
		       mode == FP_XDP_GENERIC ? "generic" : "native", strerror(-err),
		       err == -EEXIST ? " (the attached program changed meanwhile)" : "");
	return err;
}

int fp_lb_detach(int ifindex, enum fp_xdp_mode mode)
{
	int err = bpf_xdp_detach(ifindex, xdp_flags(mode), NULL);

	if (err)
		fp_err("lb: detaching from ifindex %d: %s\n", ifindex, strerror(-err));
	return err;
}

/* ---- readers ---- */

int fp_lb_prog_fd(const struct fp_lb *lb)
{
	return lb ? lb->prog_fd : -EINVAL;
}

int fp_lb_info(const struct fp_lb *lb, struct fp_info *out)
{
	if (!lb || !out)
		return -EINVAL;
	return read_info(lb, out);
}

int fp_lb_read_counters(const struct fp_lb *lb, __u64 out[FP_CNT__MAX])
{
	struct fp_stats *per_cpu;
	__u32 zero = 0;
	int err = 0;

	if (!lb || !out)
		return -EINVAL;
	per_cpu = calloc(lb->ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(lb->fd[M_STATS], &zero, per_cpu)) {
		err = -errno;
		goto out;
	}
	memset(out, 0, sizeof(__u64) * FP_CNT__MAX);
	for (int c = 0; c < lb->ncpus; c++)
		for (int i = 0; i < FP_CNT__MAX; i++)
			out[i] += per_cpu[c].count[i];
out:
	free(per_cpu);
	return err;
}

int fp_lb_read_traffic(const struct fp_lb *lb, __u32 vip_index, __u32 backend_id,
		       struct fp_traffic *out)
{
	struct fp_traffic *per_cpu;
	__u32 index = vip_index * FP_BACKEND_SLOTS + backend_id;
	int err = 0;

	if (!lb || !out || backend_id >= FP_BACKEND_SLOTS || vip_index >= lb->info.max_vips)
		return -EINVAL;
	per_cpu = calloc(lb->ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(lb->fd[M_TRAFFIC], &index, per_cpu)) {
		err = -errno;
		goto out;
	}
	memset(out, 0, sizeof(*out));
	for (int c = 0; c < lb->ncpus; c++) {
		out->packets += per_cpu[c].packets;
		out->bytes += per_cpu[c].bytes;
	}
out:
	free(per_cpu);
	return err;
}

int fp_lb_for_each_vip(const struct fp_lb *lb, fp_lb_vip_cb cb, void *ctx)
{
	struct fp_vip_key key, next;
	struct fp_vip vip;
	int err, rc;

	if (!lb || !cb)
		return -EINVAL;
	for (err = bpf_map_get_next_key(lb->fd[M_VIPS], NULL, &next); !err;
	     err = bpf_map_get_next_key(lb->fd[M_VIPS], &key, &next)) {
		key = next;
		if (bpf_map_lookup_elem(lb->fd[M_VIPS], &key, &vip))
			continue;
		rc = cb(&key, &vip, ctx);
		if (rc)
			return rc;
	}
	return err == -ENOENT ? 0 : err;
}

int fp_lb_for_each_backend(const struct fp_lb *lb, __u32 vip_index, fp_lb_backend_cb cb, void *ctx)
{
	struct fp_backend_entry *entries;
	int rc;

	if (!lb || !cb || vip_index >= lb->info.max_vips)
		return -EINVAL;
	entries = calloc(FP_BACKEND_SLOTS, sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	rc = read_vip_backends(lb, vip_index, entries);
	for (__u32 id = 1; !rc && id < FP_BACKEND_SLOTS; id++) {
		struct fp_traffic t;

		if (!entries[id].id)
			continue;
		rc = fp_lb_read_traffic(lb, vip_index, id, &t);
		if (!rc)
			rc = cb(&entries[id], &t, ctx);
	}
	free(entries);
	return rc;
}

int fp_lb_for_each_session(const struct fp_lb *lb, fp_lb_session_cb cb, void *ctx)
{
	if (!lb || !cb)
		return -EINVAL;
	return walk_sessions(lb->fd[M_SESSIONS], cb, ctx);
}

static __u64 monotonic_ns(void);

static __u64 monotonic_ns(void);

struct count_ctx {
	const struct fp_lb *lb;
	struct fp_session_count *out;
	__u64 now;
};

static int count_live(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	struct count_ctx *c = ctx;

	(void)key;
	/* The data plane's rule (bpf/lb.bpf.c session_timeout()): live while idle for at
	 * most the timeout of its state. */
	c->out->live += (__s64)(c->now - s->last_seen_ns) <=
			(__s64)session_timeout_ns(&c->lb->info, s->state);
	c->out->entries++;
	return 0;
}

int fp_lb_count_sessions(const struct fp_lb *lb, struct fp_session_count *out)
{
	struct count_ctx c = { lb, out, monotonic_ns() };
	int err;

	if (!lb || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	err = walk_sessions(lb->fd[M_SESSIONS], count_live, &c);
	out->capacity = lb->info.session_entries;
	if (err)
		fp_err("lb: cannot count the session entries: %s\n", strerror(-err));
	return err;
}

static __u64 monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_coarse_ns()'s clock */
	return (__u64)ts.tv_sec * NSEC + (__u64)ts.tv_nsec;
}

/* The probation array, mmapped (flowpin/maps.h struct fp_probation_mark). */
static int map_probation(const struct fp_lb *lb, struct fp_probation_mark **out, size_t *len)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	*len = ((size_t)lb->info.probation_slots * sizeof(**out) + page - 1) / page * page;
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, lb->fd[M_PROBATION], 0);
	if (p == MAP_FAILED) {
		int err = -errno;

		fp_err("lb: cannot mmap the probation map: %s\n", strerror(errno));
		return err;
	}
	*out = p;
	return 0;
}

struct mark_ctx {
	__u64 now, window;
	__u32 *live;
};

static int count_mark(const struct fp_flow_key *key, const struct fp_session *s, void *ctx)
{
	struct mark_ctx *c = ctx;

	(void)key;
	/* The data plane's rule (bpf/lb.bpf.c mark_live()). */
	*c->live += s->backend != FP_NO_BACKEND &&
		    (__s64)(c->now - s->last_seen_ns) <= (__s64)c->window;
	return 0;
}

int fp_lb_count_probation(const struct fp_lb *lb, __u32 *live)
{
	__u16 now = fp_probation_stamp(monotonic_ns());
	__u32 window = lb ? fp_probation_window(lb->info.timeout_tcp_transitory * NSEC) : 0;
	struct fp_probation_mark *m;
	size_t len;
	int err;

	*live = 0;
	if (!lb)
		return -EINVAL;
	err = map_probation(lb, &m, &len);
	if (err)
		return err;
	/* The data plane's rule (bpf/lb.bpf.c probation_live()). */
	for (__u32 i = 0; i < lb->info.probation_slots; i++)
		if (m[i].backend != FP_NO_BACKEND && (__u16)(now - m[i].stamp) <= window)
			(*live)++;
	munmap(m, len);
	/* And the marks kept in the session table (flowpin/maps.h struct fp_session_bucket). */
	struct mark_ctx c = { monotonic_ns(), (__u64)lb->info.timeout_tcp_transitory * NSEC, live };
	return walk_slots(lb->fd[M_SESSIONS], 1, count_mark, &c);
}

int fp_lb_clear_sessions(struct fp_lb *lb)
{
	struct fp_session_bucket *t;
	struct fp_probation_mark *m;
	size_t len;
	__u32 n;
	int err = 0;

	if (!lb)
		return -EINVAL;
	err = map_sessions_fd(lb->fd[M_SESSIONS], &t, &len, &n);
	if (!err) {
		memset(t, 0, (size_t)n * sizeof(*t));
		munmap(t, len);
	}
	if (!err)
		err = map_probation(lb, &m, &len);
	if (!err) {
		memset(m, 0, (size_t)lb->info.probation_slots * sizeof(*m));
		munmap(m, len);
	}
	/* The flow caches still hold what the deleted entries said. */
	if (!lock(lb)) {
		int e2 = bump_cache_epoch(lb);

		unlock(lb);
		err = err ? err : e2;
	}
	return err;
}

int fp_lb_clear_counters(struct fp_lb *lb)
{
	__u32 zero = 0;
	void *zeros;
	int err = 0;

	if (!lb)
		return -EINVAL;
	/* The largest per-CPU value of the three maps: every update reads a prefix. */
	zeros = calloc(lb->ncpus, sizeof(struct fp_stats));
	if (!zeros)
		return -ENOMEM;
	if (bpf_map_update_elem(lb->fd[M_STATS], &zero, zeros, BPF_ANY) ||
	    bpf_map_update_elem(lb->fd[M_RATELIMIT], &zero, zeros, BPF_ANY))
		err = -errno;
	for (__u32 i = 0; !err && i < lb->info.max_vips * FP_BACKEND_SLOTS; i++)
		if (bpf_map_update_elem(lb->fd[M_TRAFFIC], &i, zeros, BPF_ANY))
			err = -errno;
	free(zeros);
	return err;
}

int fp_lb_read_bucket(const struct fp_lb *lb, const struct fp_vip *vip, __u32 bucket,
		      struct fp_bucket *out)
{
	if (!lb || !vip || !out || bucket >= lb->info.table_size || vip->index >= lb->info.max_vips)
		return -EINVAL;
	*out = lb->table[fp_bucket_index(vip->index, vip->slot & 1, lb->info.table_size, bucket)];
	return 0;
}

void fp_lb_close(struct fp_lb *lb)
{
	if (!lb)
		return;
	if (lb->table)
		munmap(lb->table, lb->table_len);
	if (lb->lock_fd >= 0)
		close(lb->lock_fd);
	if (lb->own_fds) {
		if (lb->prog_fd >= 0)
			close(lb->prog_fd);
		for (int i = 0; i < M_N; i++)
			if (lb->fd[i] >= 0)
				close(lb->fd[i]);
	}
	quic_key__destroy(lb->quic_key);
	lb__destroy(lb->skel);
	free(lb);
}
