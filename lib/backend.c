// SPDX-License-Identifier: MIT
/*
 * Loader of the backend agent's tc programs (bpf/backend.bpf.c): settings into rodata
 * (the ticket key among them), allowed LB sources into the LPM trie, the config's sets
 * and TCP tickets into their maps, tc ingress (and egress, with tickets) attach on a
 * clsact qdisc, pinning, counters. The contract is in flowpin/backend.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <flowpin/backend.h>
#include <flowpin/bpffs.h>
#include <flowpin/log.h>
#include <flowpin/ticket.h>
#include <flowpin/wire.h>
#include "backend.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71 /* Linux 5.14; not in Debian 12's libc headers */
#endif

/*
 * libbpf option structs are zeroed and filled by hand (tc_init()) rather than with
 * LIBBPF_OPTS(), which `make lint` (cppcheck, no system headers) cannot expand.
 */

/* Our filter's identity on the device: fixed, so a stale one (crashed run) is replaced. */
#define FP_BACKEND_TC_HANDLE   0xf10
#define FP_BACKEND_TC_PRIORITY 0xf10

struct fp_backend {
	struct backend *skel;
	size_t ticket_vips;	       /* TCP VIPs this host writes tickets for */
	__u16 encap_port;	       /* the program's (rodata): a change needs a restart */
	bool tickets_on;	       /* the program was loaded with tickets (rodata) ... */
	struct fp_hash_key ticket_key; /* ... under this key */
	int ifindex;		       /* 0 when not attached */
	bool egress;		       /* the egress filter is attached too (ticket_vips > 0) */
	bool qdisc_created;	       /* we made the clsact qdisc: remove it on detach */
	char pin_dir[PATH_MAX];	       /* "" when not pinned */
};

#define FP_BACKEND_COUNTER_NAME(id, name, help) name,
#define FP_BACKEND_COUNTER_HELP(id, name, help) help,
static const char *const counter_names[] = { FP_BACKEND_COUNTERS(FP_BACKEND_COUNTER_NAME) };
static const char *const counter_helps[] = { FP_BACKEND_COUNTERS(FP_BACKEND_COUNTER_HELP) };

const char *fp_backend_counter_name(unsigned int counter)
{
	return counter < FP_BACKEND_NR_COUNTERS ? counter_names[counter] : "?";
}

const char *fp_backend_counter_help(unsigned int counter)
{
	return counter < FP_BACKEND_NR_COUNTERS ? counter_helps[counter] : "?";
}

/* The LPM key of @p: its family first (flowpin/backend.h). */
static void src_key(const struct fp_prefix *p, struct fp_backend_src_key *key)
{
	memset(key, 0, sizeof(*key));
	if (fp_addr_v4(&p->addr) && p->len >= 96) {
		key->family = 4;
		key->prefixlen = FP_BACKEND_SRC_FAMILY_BITS + p->len - 96u;
		memcpy(key->addr, p->addr.a + 12, 4);
	} else {
		key->family = 6;
		key->prefixlen = FP_BACKEND_SRC_FAMILY_BITS + p->len;
		memcpy(key->addr, p->addr.a, 16);
	}
	/* Host bits cleared: one prefix is one key, however the config wrote it. */
	for (unsigned int bit = key->prefixlen - FP_BACKEND_SRC_FAMILY_BITS; bit < 128; bit++)
		key->addr[bit / 8] &= (__u8) ~(0x80u >> (bit % 8));
}

/* What one of the program's maps is to hold: @n entries (duplicates allowed). */
struct map_set {
	int fd;
	const char *what;
	size_t key_size, value_size;
	unsigned char *keys, *values; /* n x key_size, n x value_size */
	size_t n, cap;
};

static int set_add(struct map_set *m, const void *key, const void *value)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		unsigned char *k = realloc(m->keys, cap * m->key_size);

		if (!k)
			return -ENOMEM;
		m->keys = k;
		k = realloc(m->values, cap * m->value_size);
		if (!k)
			return -ENOMEM;
		m->values = k;
		m->cap = cap;
	}
	memcpy(m->keys + m->n * m->key_size, key, m->key_size);
	memcpy(m->values + m->n * m->value_size, value, m->value_size);
	m->n++;
	return 0;
}

static void set_free(struct map_set *m)
{
	free(m->keys);
	free(m->values);
	m->keys = m->values = NULL;
	m->n = m->cap = 0;
}

static int cmp_key(const void *a, const void *b, void *size)
{
	return memcmp(a, b, *(size_t *)size);
}

static bool sorted_has(const void *key, const unsigned char *sorted, size_t n, size_t size)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(key, sorted + mid * size, size);

		if (!c)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

/*
 * Makes map @m->fd hold exactly @m's entries: keys it holds that are not among them are
 * deleted first, then every entry is written (an entry in both is replaced in one
 * update, never missing). Deleting first keeps a map within its size bound when the set
 * is replaced whole, and never lets the old and the new set be allowed at once. Returns
 * 0 or a negative errno (message printed, naming @m->what).
 */
static int set_sync(struct map_set *m)
{
	unsigned char *sorted = NULL, *stale = NULL, *key, *next;
	size_t n_stale = 0, cap_stale = 0;
	int err = 0;

	key = calloc(2, m->key_size);
	if (!key)
		return -ENOMEM;
	next = key + m->key_size;
	if (m->n) {
		sorted = malloc(m->n * m->key_size);
		if (!sorted) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(sorted, m->keys, m->n * m->key_size);
		qsort_r(sorted, m->n, m->key_size, cmp_key, &m->key_size);
	}
	/* What the map holds and the set has not: collected, then deleted. */
	for (void *prev = NULL; !bpf_map_get_next_key(m->fd, prev, next); prev = key) {
		memcpy(key, next, m->key_size);
		if (m->n && sorted_has(key, sorted, m->n, m->key_size))
			continue;
		if (n_stale == cap_stale) {
			size_t cap = cap_stale ? 2 * cap_stale : 16;
			unsigned char *t = realloc(stale, cap * m->key_size);

			if (!t) {
				err = -ENOMEM;
				goto out;
			}
			stale = t;
			cap_stale = cap;
		}
		memcpy(stale + n_stale++ * m->key_size, key, m->key_size);
	}
	for (size_t i = 0; i < n_stale; i++) {
		if (bpf_map_delete_elem(m->fd, stale + i * m->key_size) && errno != ENOENT) {
			err = -errno;
			fp_err("backend: cannot remove a stale entry of %s: %s\n", m->what,
			       strerror(-err));
			goto out;
		}
	}
	for (size_t i = 0; i < m->n; i++) {
		if (bpf_map_update_elem(m->fd, m->keys + i * m->key_size,
					m->values + i * m->value_size, BPF_ANY)) {
			err = -errno;
			fp_err("backend: cannot write %s: %s\n", m->what, strerror(-err));
			goto out;
		}
	}
out:
	free(stale);
	free(sorted);
	free(key);
	return err;
}

static bool is_self(const struct fp_backend_opts *opts, const struct fp_addr *a)
{
	for (size_t i = 0; i < opts->n_self_addrs; i++)
		if (!memcmp(&opts->self_addrs[i], a, sizeof(*a)))
			return true;
	return false;
}

/*
 * This host's ticket id on @vip: the id of its first backend entry (an address of this
 * host) when the VIP has tickets. A host listed twice (by its IPv4 and its IPv6 fabric
 * address, say) writes the first entry's id: either names this host, and an LB sends
 * the flow to that entry's address. Returns 1 with *@sid set, 0 when it writes no
 * tickets for @vip.
 */
static int ticket_sid(const struct fp_backend_opts *opts, const struct fp_vip_cfg *vip, __u16 *sid)
{
	if (!vip->ticket_bits || vip->proto != IPPROTO_TCP)
		return 0;
	for (size_t i = 0; i < vip->n_backends; i++) {
		if (is_self(opts, &vip->backends[i].addr)) {
			*sid = (__u16)vip->backends[i].id;
			return 1;
		}
	}
	return 0;
}

/* Counts the VIPs this host writes tickets for; checks that it can. */
static int count_ticket_vips(const struct fp_backend_opts *opts, size_t *n)
{
	*n = 0;
	for (size_t v = 0; v < opts->n_vips; v++) {
		__u16 sid;
		int rc = ticket_sid(opts, &opts->vips[v], &sid);

		if (rc && (sid >> opts->vips[v].ticket_bits || !sid)) {
			fp_err("backend: VIP %s: id %u does not fit a ticket of %u bits\n",
			       opts->vips[v].name, sid, opts->vips[v].ticket_bits);
			return -EINVAL;
		}
		*n += (size_t)rc;
	}
	if (*n && !opts->hash_key) {
		fp_err("backend: %zu VIP%s with TCP tickets on this host, and no hash_key to key "
		       "them under\n",
		       *n, *n == 1 ? "" : "s");
		return -EINVAL;
	}
	return 0;
}

/*
 * The maps' contents from @opts (flowpin/backend.h): lb_sources, self_addrs, vips,
 * next_hops and tickets, the last with every TCP VIP of the config, this host's id where
 * it writes tickets and bits 0 elsewhere (so a port-0 ticket VIP of the same address
 * does not cover it). Each map is made to hold exactly its set (set_sync()).
 */
static int sync_maps(struct fp_backend *b, const struct fp_backend_opts *opts)
{
	struct map_set src = { bpf_map__fd(b->skel->maps.lb_sources), "lb_sources",
			       sizeof(struct fp_backend_src_key), 1 },
		       self = { bpf_map__fd(b->skel->maps.self_addrs), "own addresses",
				sizeof(struct fp_backend_addr), 1 },
		       vips = { bpf_map__fd(b->skel->maps.vips), "VIPs",
				sizeof(struct fp_backend_addr), 1 },
		       hops = { bpf_map__fd(b->skel->maps.next_hops), "backends of the VIPs",
				sizeof(struct fp_backend_hop_key), 1 },
		       tickets = { bpf_map__fd(b->skel->maps.tickets), "tickets",
				   sizeof(struct fp_backend_ticket_key),
				   sizeof(struct fp_backend_ticket) };
	struct map_set *all[] = { &src, &self, &vips, &hops, &tickets };
	const __u8 one = 1;
	int err = 0;

	for (size_t i = 0; i < opts->n_lb_sources && !err; i++) {
		struct fp_backend_src_key key;

		src_key(&opts->lb_sources[i], &key);
		err = set_add(&src, &key, &one);
	}
	for (size_t i = 0; i < opts->n_self_addrs && !err; i++)
		err = set_add(&self, opts->self_addrs[i].a, &one);
	for (size_t v = 0; v < opts->n_vips && !err; v++) {
		const struct fp_vip_cfg *vip = &opts->vips[v];
		struct fp_backend_ticket_key tkey = { .port = htons(vip->port),
						      .proto = IPPROTO_TCP };
		struct fp_backend_ticket t = { 0 };
		__u16 sid;

		err = set_add(&vips, vip->addr.a, &one);
		for (size_t i = 0; i < vip->n_backends && !err; i++) {
			struct fp_backend_hop_key key;

			memcpy(key.vip, vip->addr.a, 16);
			memcpy(key.backend, vip->backends[i].addr.a, 16);
			err = set_add(&hops, &key, &one);
		}
		if (err || vip->proto != IPPROTO_TCP)
			continue;
		memcpy(tkey.vip, vip->addr.a, 16);
		if (ticket_sid(opts, vip, &sid) == 1) {
			t.sid = sid;
			t.bits = vip->ticket_bits;
		}
		err = set_add(&tickets, &tkey, &t);
	}
	if (err)
		fp_err("backend: %s\n", strerror(-err));
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && !err; i++)
		err = set_sync(all[i]);
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		set_free(all[i]);
	return err;
}

/* Distinct (VIP address, backend address) pairs of @opts, an upper bound is enough. */
static size_t count_next_hops(const struct fp_backend_opts *opts)
{
	size_t n = 0;

	for (size_t v = 0; v < opts->n_vips; v++)
		n += opts->vips[v].n_backends;
	return n;
}

/* The bounds of the maps; 0 or a negative errno (message printed). */
static int check_opts(const struct fp_backend_opts *opts)
{
	if ((opts->n_lb_sources && !opts->lb_sources) ||
	    (opts->n_self_addrs && !opts->self_addrs) || (opts->n_vips && !opts->vips))
		return -EINVAL;
	if (opts->n_self_addrs > FP_BACKEND_MAX_SELF) {
		fp_err("backend: %zu own addresses, at most %d\n", opts->n_self_addrs,
		       FP_BACKEND_MAX_SELF);
		return -E2BIG;
	}
	if (opts->n_vips > FP_BACKEND_MAX_VIPS ||
	    count_next_hops(opts) > FP_BACKEND_MAX_NEXT_HOPS) {
		fp_err("backend: %zu VIPs with %zu backends in all; the agent takes at most %d "
		       "VIPs and %d backends in all\n",
		       opts->n_vips, count_next_hops(opts), FP_BACKEND_MAX_VIPS,
		       FP_BACKEND_MAX_NEXT_HOPS);
		return -E2BIG;
	}
	if (opts->n_lb_sources > FP_BACKEND_MAX_LB_SOURCES) {
		fp_err("backend: %zu LB sources, at most %d\n", opts->n_lb_sources,
		       FP_BACKEND_MAX_LB_SOURCES);
		return -E2BIG;
	}
	return 0;
}

int fp_backend_load(const struct fp_backend_opts *opts, struct fp_backend **out)
{
	struct fp_backend *b = NULL;
	int err;

	if (!opts || !out)
		return -EINVAL;
	*out = NULL;
	err = check_opts(opts);
	if (err)
		return err;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->skel = backend__open();
	if (!b->skel) {
		err = -errno;
		fp_err("backend: cannot open the BPF object: %s\n", strerror(-err));
		goto out;
	}
	b->encap_port = opts->encap_port ? opts->encap_port : FP_DEFAULT_ENCAP_PORT;
	b->skel->rodata->encap_port = b->encap_port;
	err = count_ticket_vips(opts, &b->ticket_vips);
	if (err)
		goto out;
	if (b->ticket_vips) {
		fp_ticket_key_derive(opts->hash_key, &b->ticket_key);
		memcpy((void *)&b->skel->rodata->ticket_key, &b->ticket_key, sizeof(b->ticket_key));
		b->skel->rodata->tickets_on = 1;
		b->tickets_on = true;
	}
	err = backend__load(b->skel);
	if (err) {
		/* libbpf has printed the verifier's log (a warning) by now. */
		fp_err("backend: cannot load the BPF program: %s (libbpf's messages above say "
		       "why; 'flowpin -v backend up ...' adds its debug output)\n",
		       strerror(-err));
		goto out;
	}
	err = sync_maps(b, opts);
	if (err)
		goto out;
	*out = b;
	b = NULL;
out:
	fp_backend_destroy(b);
	return err;
}

/* What the loaded program cannot take (rodata); FILE:LINE: FIELD messages from @cfg. */
static int check_restart_needed(const struct fp_backend *b, const struct fp_backend_opts *opts,
				size_t ticket_vips)
{
	const struct fp_config *cfg = opts->cfg;
	const char *path = cfg && cfg->path ? cfg->path : "config";
	__u16 port = opts->encap_port ? opts->encap_port : FP_DEFAULT_ENCAP_PORT;
	int bad = 0;

	if (port != b->encap_port) {
		fp_err("%s:%d: encap_port: %u, the running agent has %u; changing it needs a "
		       "restart (flowpin backend down, then up)\n",
		       path, cfg ? cfg->lines.encap_port : 0, port, b->encap_port);
		bad = 1;
	}
	if (ticket_vips && !b->tickets_on) {
		const struct fp_vip_cfg *vip = NULL;
		__u16 sid;

		for (size_t v = 0; v < opts->n_vips && !vip; v++)
			if (ticket_sid(opts, &opts->vips[v], &sid))
				vip = &opts->vips[v];
		fp_err("%s:%d: vips[%zu].tickets: this host would write TCP tickets for %s; the "
		       "running agent was started without tickets (no egress program, no ticket "
		       "key): turning them on needs a restart (flowpin backend down, then up)\n",
		       path, vip->tickets_line, (size_t)(vip - opts->vips), vip->name);
		bad = 1;
	} else if (ticket_vips) {
		struct fp_hash_key tk;

		fp_ticket_key_derive(opts->hash_key, &tk);
		if (memcmp(&tk, &b->ticket_key, sizeof(tk))) {
			fp_err("%s:%d: hash_key: differs from the running agent's (its TCP tickets "
			       "are keyed under it); changing it needs a restart (flowpin backend "
			       "down, then up)\n",
			       path, cfg ? cfg->lines.hash_key : 0);
			bad = 1;
		}
	}
	return bad ? -EINVAL : 0;
}

int fp_backend_check_update(const struct fp_backend *b, const struct fp_backend_opts *opts)
{
	size_t ticket_vips;
	int err;

	if (!b || !opts)
		return -EINVAL;
	err = check_opts(opts);
	if (!err)
		err = count_ticket_vips(opts, &ticket_vips);
	if (!err)
		err = check_restart_needed(b, opts, ticket_vips);
	return err;
}

int fp_backend_update(struct fp_backend *b, const struct fp_backend_opts *opts,
		      const struct fp_backend_opts *previous)
{
	size_t ticket_vips;
	int err;

	err = fp_backend_check_update(b, opts);
	if (!err)
		err = count_ticket_vips(opts, &ticket_vips);
	if (err)
		return err;
	err = sync_maps(b, opts);
	if (err && previous) {
		/* Nothing half-applied: back to what ran (it fitted a moment ago). */
		if (sync_maps(b, previous))
			fp_err("backend: cannot restore the previous sets either: the maps hold "
			       "part of each; restart the agent\n");
		return err;
	}
	if (!err)
		b->ticket_vips = ticket_vips;
	return err;
}

int fp_backend_prog_fd(const struct fp_backend *b)
{
	return b ? bpf_program__fd(b->skel->progs.fp_backend_ingress) : -EINVAL;
}

int fp_backend_egress_prog_fd(const struct fp_backend *b)
{
	return b ? bpf_program__fd(b->skel->progs.fp_backend_egress) : -EINVAL;
}

size_t fp_backend_ticket_vips(const struct fp_backend *b)
{
	return b ? b->ticket_vips : 0;
}

int fp_backend_counters_fd(const struct fp_backend *b)
{
	return b ? bpf_map__fd(b->skel->maps.counters) : -EINVAL;
}

/*
 * The tc hook (clsact ingress of @ifindex) and our filter's options, zeroed whole:
 * libbpf refuses non-zero bytes past the fields it knows, padding included, which an
 * initialiser leaves unspecified.
 */
static void tc_init(struct bpf_tc_hook *hook, struct bpf_tc_opts *tc, int ifindex)
{
	memset(hook, 0, sizeof(*hook));
	hook->sz = sizeof(*hook);
	hook->ifindex = ifindex;
	hook->attach_point = BPF_TC_INGRESS;
	memset(tc, 0, sizeof(*tc));
	tc->sz = sizeof(*tc);
	tc->handle = FP_BACKEND_TC_HANDLE;
	tc->priority = FP_BACKEND_TC_PRIORITY;
}

int fp_backend_attach(struct fp_backend *b, int ifindex)
{
	struct bpf_tc_hook hook;
	struct bpf_tc_opts tc;
	struct fp_backend_attach_info st = { .pid = (__u32)getpid(),
					     .ifindex = (__u32)ifindex,
					     .handle = FP_BACKEND_TC_HANDLE,
					     .priority = FP_BACKEND_TC_PRIORITY };
	__u32 zero = 0;
	int err;

	if (!b || ifindex <= 0 || b->ifindex)
		return -EINVAL;
	tc_init(&hook, &tc, ifindex);
	tc.flags = BPF_TC_F_REPLACE;
	err = fp_netns_cookie(&st.netns_cookie);
	if (err)
		return err;
	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		fp_err("backend: cannot create the clsact qdisc on ifindex %d: %s\n", ifindex,
		       strerror(-err));
		return err;
	}
	b->qdisc_created = !err;
	tc.prog_fd = fp_backend_prog_fd(b);
	err = bpf_tc_attach(&hook, &tc);
	if (err) {
		fp_err("backend: cannot attach the tc ingress filter on ifindex %d: %s\n", ifindex,
		       strerror(-err));
		goto out;
	}
	b->ifindex = ifindex;
	if (b->ticket_vips) {
		/* TCP tickets: the same handle and priority on the egress side. */
		hook.attach_point = BPF_TC_EGRESS;
		tc.prog_fd = fp_backend_egress_prog_fd(b);
		tc.prog_id = 0;
		err = bpf_tc_attach(&hook, &tc);
		if (err) {
			fp_err("backend: cannot attach the tc egress filter on ifindex %d: %s\n",
			       ifindex, strerror(-err));
			fp_backend_detach(b);
			goto out;
		}
		b->egress = true;
	}
	err = bpf_map_update_elem(bpf_map__fd(b->skel->maps.state), &zero, &st, BPF_ANY);
	if (err) {
		err = -errno;
		fp_err("backend: cannot record the attachment: %s\n", strerror(-err));
		fp_backend_detach(b);
	}
out:
	if (err && b->qdisc_created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
		b->qdisc_created = false;
	}
	return err;
}

int fp_backend_detach(struct fp_backend *b)
{
	struct bpf_tc_hook hook;
	struct bpf_tc_opts tc;
	int err;

	if (!b || !b->ifindex)
		return -EINVAL;
	tc_init(&hook, &tc, b->ifindex);
	err = bpf_tc_detach(&hook, &tc);
	if (err && err != -ENOENT)
		fp_err("backend: cannot detach the tc filter from ifindex %d: %s\n", b->ifindex,
		       strerror(-err));
	if (b->egress) {
		int e;

		tc_init(&hook, &tc, b->ifindex);
		hook.attach_point = BPF_TC_EGRESS;
		e = bpf_tc_detach(&hook, &tc);
		if (e && e != -ENOENT) {
			fp_err("backend: cannot detach the tc egress filter from ifindex %d: %s\n",
			       b->ifindex, strerror(-e));
			if (!err || err == -ENOENT)
				err = e;
		}
		b->egress = false;
	}
	if (b->qdisc_created) {
		/* Both attach points: that is how libbpf removes the qdisc itself. */
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
		b->qdisc_created = false;
	}
	b->ifindex = 0;
	return err == -ENOENT ? 0 : err;
}

/* The pinned maps, in the order of pin_names (fp_backend_unpin_dir). */
static struct bpf_map *pinned_maps(struct fp_backend *b, size_t i)
{
	struct bpf_map *maps[] = { b->skel->maps.counters, b->skel->maps.lb_sources,
				   b->skel->maps.state };

	return i < sizeof(maps) / sizeof(maps[0]) ? maps[i] : NULL;
}

int fp_netns_cookie(__u64 *cookie)
{
	socklen_t len = sizeof(*cookie);
	int fd, err = 0;

	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = -errno;
	close(fd);
	return err;
}

int fp_backend_detach_info(const struct fp_backend_attach_info *info)
{
	struct bpf_tc_hook hook;
	struct bpf_tc_opts tc;
	__u64 cookie;
	int err;

	if (!info || !info->ifindex)
		return -EINVAL;
	/* An ifindex means nothing in another namespace: never touch a stranger's device. */
	err = fp_netns_cookie(&cookie);
	if (err)
		return err;
	if (cookie != info->netns_cookie)
		return -EXDEV;
	tc_init(&hook, &tc, (int)info->ifindex);
	tc.handle = info->handle;
	tc.priority = info->priority;
	err = bpf_tc_detach(&hook, &tc);
	if (err && err != -ENOENT)
		return err;
	/* The egress filter (TCP tickets), if the agent had one: same handle, priority. */
	hook.attach_point = BPF_TC_EGRESS;
	err = bpf_tc_detach(&hook, &tc);
	return err == -ENOENT ? 0 : err;
}

static const char *const pin_names[] = { "counters", "lb_sources", "state" };

int fp_backend_read_state(const char *dir, struct fp_backend_attach_info *info)
{
	char path[PATH_MAX + 16];
	__u32 zero = 0;
	int fd, err = 0;

	struct bpf_map_info map = { 0 };
	__u32 len = sizeof(map);

	snprintf(path, sizeof(path), "%s/state", dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	/* The lookup writes the map's own value size into *info: an agent of another
	 * build (or anything pinned there) must not write past it. */
	if (bpf_obj_get_info_by_fd(fd, &map, &len))
		err = -errno;
	else if (map.type != BPF_MAP_TYPE_ARRAY || map.key_size != sizeof(zero) ||
		 map.value_size != sizeof(*info))
		err = -EPROTO;
	else if (bpf_map_lookup_elem(fd, &zero, info))
		err = -errno;
	close(fd);
	return err;
}

int fp_backend_claim(const char *dir, struct fp_instance **out)
{
	int err = 0;

	/* An agent that exits removes the directory: made again if it went meanwhile. */
	for (int tries = 0; tries < 3; tries++) {
		err = fp_mkdir_p(dir, 0700);
		if (!err)
			err = fp_instance_claim(dir, out, NULL);
		if (err != -ENOENT)
			break;
	}
	return err;
}

int fp_backend_unpin_dir(const char *dir)
{
	char path[PATH_MAX + 64];
	int err = 0;

	for (size_t i = 0; i < sizeof(pin_names) / sizeof(pin_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, pin_names[i]);
		if (unlink(path) && errno != ENOENT) {
			err = -errno;
			fp_warn("backend: cannot unpin %s: %s\n", path, strerror(errno));
		}
	}
	rmdir(dir); /* only if empty: whatever else someone put there stays */
	return err;
}

static void unpin(struct fp_backend *b)
{
	if (!b->pin_dir[0])
		return;
	fp_backend_unpin_dir(b->pin_dir);
	b->pin_dir[0] = '\0';
}

int fp_backend_pin(struct fp_backend *b, const char *dir)
{
	char path[PATH_MAX + 64];
	struct bpf_map *map;
	int err = 0;

	if (!b || !dir || b->pin_dir[0])
		return -EINVAL;
	if (strlen(dir) >= sizeof(b->pin_dir) - 32) /* room for "/<map name>" */
		return -ENAMETOOLONG;
	strcpy(b->pin_dir, dir);
	for (size_t i = 0; (map = pinned_maps(b, i)); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
		/* A pin left by a killed run would make this fail: ours to replace. libbpf
		 * creates @dir itself (one level: the pin root must exist). */
		unlink(path);
		err = bpf_map__pin(map, path);
		if (err) {
			fp_err("backend: cannot pin %s (is %s on a bpffs?): %s\n", path, dir,
			       strerror(-err));
			goto out;
		}
	}
out:
	if (err)
		unpin(b);
	return err;
}

int fp_backend_read_counters(int counters_fd, __u64 out[FP_BACKEND_NR_COUNTERS])
{
	int ncpus = libbpf_num_possible_cpus();
	struct bpf_map_info info = { 0 };
	__u32 info_len = sizeof(info);
	__u64 *values = NULL;
	int err = 0;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	/* The counter list is the layout: an agent of another build has another length. */
	if (bpf_obj_get_info_by_fd(counters_fd, &info, &info_len))
		return -errno;
	if (info.max_entries != FP_BACKEND_NR_COUNTERS || info.value_size != sizeof(__u64))
		return -EPROTO;
	values = calloc((size_t)ncpus, sizeof(*values));
	if (!values)
		return -ENOMEM;
	for (__u32 i = 0; i < FP_BACKEND_NR_COUNTERS; i++) {
		if (bpf_map_lookup_elem(counters_fd, &i, values)) {
			err = -errno;
			goto out;
		}
		out[i] = 0;
		for (int cpu = 0; cpu < ncpus; cpu++)
			out[i] += values[cpu];
	}
out:
	free(values);
	return err;
}

void fp_backend_destroy(struct fp_backend *b)
{
	if (!b)
		return;
	if (b->ifindex)
		fp_backend_detach(b);
	unpin(b);
	backend__destroy(b->skel);
	free(b);
}
