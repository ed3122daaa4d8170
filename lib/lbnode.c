// SPDX-License-Identifier: MIT
/* An LB node's lifecycle: files, start, take-over, apply, stop. See flowpin/lbnode.h. */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <flowpin/instance.h>
#include <flowpin/lbnode.h>
#include <flowpin/log.h>
#include <flowpin/viproute.h>

int fp_lbnode_init(struct fp_lbnode *n, const char *dev, const char *pin_root, const char *run_dir)
{
	memset(n, 0, sizeof(*n));
	n->dev = dev;
	n->pin_root = pin_root;
	n->run_dir = run_dir;
	if (snprintf(n->pin_dir, sizeof(n->pin_dir), "%s/%s", pin_root, dev) >=
		    (int)sizeof(n->pin_dir) ||
	    snprintf(n->pid_file, sizeof(n->pid_file), "%s/%s.pid", run_dir, dev) >=
		    (int)sizeof(n->pid_file) ||
	    snprintf(n->config_file, sizeof(n->config_file), "%s/%s.config", run_dir, dev) >=
		    (int)sizeof(n->config_file) ||
	    snprintf(n->overrides_file, sizeof(n->overrides_file), "%s/%s.overrides", run_dir,
		     dev) >= (int)sizeof(n->overrides_file) ||
	    snprintf(n->ctl_file, sizeof(n->ctl_file), "%s/%s.ctl", run_dir, dev) >=
		    (int)sizeof(n->ctl_file))
		return -ENAMETOOLONG;
	return 0;
}

/* ---- files: pid file, config record ---- */

int fp_lbnode_read_pid(const char *path)
{
	pid_t pid;

	return fp_instance_probe(path, &pid) == 1 ? (int)pid : 0;
}

int fp_lbnode_claim(const struct fp_lbnode *n, struct fp_instance **out)
{
	pid_t owner;
	int err = fp_instance_claim(n->pid_file, out, &owner);

	if (err == -EBUSY)
		fp_err("%s: flowpin lb already runs on %s (pid %d)\n", n->pid_file, n->dev,
		       (int)owner);
	else if (err)
		fp_err("%s: %s\n", n->pid_file, strerror(-err));
	return err;
}

static bool owner_ok(const struct stat *st)
{
	return st->st_uid == 0 || st->st_uid == geteuid();
}

int fp_lbnode_check_run_dir(const char *dir, char *msg, size_t msglen)
{
	char path[PATH_MAX], *slash;
	struct stat st;

	if (!realpath(dir, path) || stat(path, &st)) {
		int err = errno;

		snprintf(msg, msglen, "%s: %s", dir, strerror(err));
		return -err;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(msg, msglen, "%s: not a directory", dir);
		return -ENOTDIR;
	}
	if (!owner_ok(&st) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(msg, msglen,
			 "%s: owned by uid %u, mode %04o: the run directory must be owned by "
			 "root (or this user) and writable by nobody else",
			 dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	/* realpath: no symlink left, so each prefix is the directory itself. */
	while ((slash = strrchr(path, '/')) != NULL) {
		if (slash == path)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(path, &st)) {
			int err = errno;

			snprintf(msg, msglen, "%s: %s", path, strerror(err));
			return -err;
		}
		if (!owner_ok(&st) ||
		    ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))) {
			snprintf(msg, msglen,
				 "%s: owned by uid %u, mode %04o: others could move the run "
				 "directory %s under it",
				 path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), dir);
			return -EPERM;
		}
		if (slash == path)
			break;
	}
	return 0;
}

/*
 * Written aside and renamed: a reader never sees half a file. The aside name is unique
 * (mkstemp): two writers never write into the same temporary file. Synced before the
 * rename: once this returns 0 (and the daemon answers a request that wrote it), a
 * power cut leaves the new file or the old one, never an empty one.
 */
int fp_lbnode_write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	if (fchmod(fd, 0644) || fputs(text, f) < 0 || fflush(f) || fsync(fd))
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/*
 * The config the node runs, as recorded in <run-dir>/<dev>.config, into @path (left as
 * it is when there is no record). Read and written only under the apply lock, so the
 * record always names the file of the last apply.
 */
void fp_lbnode_read_record(const struct fp_lbnode *n, char *path, size_t len)
{
	char recorded[PATH_MAX] = "";
	FILE *f = fopen(n->config_file, "r");

	if (!f)
		return;
	if (fgets(recorded, sizeof(recorded), f))
		recorded[strcspn(recorded, "\n")] = 0;
	fclose(f);
	if (recorded[0])
		snprintf(path, len, "%s", recorded);
}

/* ---- starting, applying, stopping, taking over ---- */

/*
 * The XDP program takes next-hop MACs from the kernel's neighbour table and cannot
 * resolve one itself (an unresolved next hop is dropped and counted, drop_no_neigh).
 * One empty UDP datagram to each backend's encapsulation port makes the kernel resolve
 * (ARP/ND) the next hop towards it. Backends' agents drop it and count it as `probe`:
 * one per (VIP, backend) pair per config apply (`lb reload` applies twice: the command,
 * then the daemon on SIGUSR1).
 */
void fp_lbnode_prime_neighbours(const struct fp_config *cfg)
{
	int s4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	for (size_t v = 0; v < cfg->n_vips; v++) {
		for (size_t b = 0; b < cfg->vips[v].n_backends; b++) {
			const struct fp_backend_cfg *be = &cfg->vips[v].backends[b];
			char addr[INET6_ADDRSTRLEN];
			ssize_t n;

			if (be->state == FP_BACKEND_DOWN)
				continue;
			if (fp_addr_v4(&be->addr)) {
				struct sockaddr_in sa = { .sin_family = AF_INET,
							  .sin_port = htons(cfg->encap_port) };

				memcpy(&sa.sin_addr, be->addr.a + 12, 4);
				n = sendto(s4, "", 0, MSG_DONTWAIT, (struct sockaddr *)&sa,
					   sizeof(sa));
			} else {
				struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
							   .sin6_port = htons(cfg->encap_port) };

				memcpy(&sa.sin6_addr, be->addr.a, 16);
				n = sendto(s6, "", 0, MSG_DONTWAIT, (struct sockaddr *)&sa,
					   sizeof(sa));
			}
			if (n < 0)
				fp_warn("backend %u (%s) of VIP %s: neighbour probe not sent: %s\n",
					be->id, fp_addr_str(&be->addr, addr, sizeof(addr)),
					cfg->vips[v].name, strerror(errno));
		}
	}
	if (s4 >= 0)
		close(s4);
	if (s6 >= 0)
		close(s6);
}

size_t fp_config_count_backends(const struct fp_config *cfg)
{
	size_t n = 0;

	for (size_t v = 0; v < cfg->n_vips; v++)
		n += cfg->vips[v].n_backends;
	return n;
}

/*
 * bpf_fib_lookup() answers BPF_FIB_LKUP_RET_FWD_DISABLED (drop_fib for every packet)
 * unless the ingress device forwards the backend's family: warn about each family that
 * has backends in @cfg and forwarding off on @dev. Warned, not set: turning a node into
 * a router is the operator's decision (docs/operator-lb.md, docs/security.md).
 */
void fp_lbnode_check_forwarding(const struct fp_config *cfg, const char *dev)
{
	bool family[2] = { false, false }; /* IPv4, IPv6 backends */

	for (size_t v = 0; v < cfg->n_vips; v++)
		for (size_t b = 0; b < cfg->vips[v].n_backends; b++)
			family[fp_addr_v4(&cfg->vips[v].backends[b].addr) ? 0 : 1] = true;
	for (int i = 0; i < 2; i++) {
		const char *ip = i ? "ipv6" : "ipv4";
		char path[128], value[16] = "";
		FILE *f;

		if (!family[i])
			continue;
		snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/forwarding", ip, dev);
		f = fopen(path, "r");
		if (!f)
			continue; /* no such family on this kernel or device: nothing to check */
		if (!fgets(value, sizeof(value), f))
			value[0] = 0;
		fclose(f);
		if (value[0] != '0')
			continue;
		fp_warn("net.%s.conf.%s.forwarding is 0: the kernel's FIB lookup refuses to route "
			"for a device that does not forward, so every packet for an IPv%d "
			"backend is dropped (drop_fib). Enable it: sysctl -w "
			"net.%s.conf.%s.forwarding=1 (flowpin does not change it, see "
			"docs/operator-lb.md)\n",
			ip, dev, i ? 6 : 4, ip, dev);
	}
}

/*
 * The config's `sessions` (with the command line's, fp_lbnode_settings()) against what
 * runs: the table's size is the map's, fixed at its creation; the new-flow rate is a
 * constant of the program (@rate: check it too; a take-over loads the program again with
 * the new one). 0, or -EINVAL after a FILE:LINE: message.
 */
static int check_sessions(const struct fp_lb *lb, const struct fp_config *cfg, bool rate)
{
	const char *path = cfg->path ? cfg->path : "config";
	struct fp_info info;
	int err = fp_lb_info(lb, &info);

	if (err)
		return err;
	if (info.session_entries != cfg->sessions.entries) {
		fp_err("%s:%d: sessions.entries: %u, the running program has %u; changing it "
		       "needs a restart with a new session table (`flowpin lb up --force`, or "
		       "down and up): every session is lost\n",
		       path, cfg->lines.sessions_entries, cfg->sessions.entries,
		       info.session_entries);
		return -EINVAL;
	}
	if (rate && info.new_flow_rate != cfg->sessions.new_flow_rate) {
		fp_err("%s:%d: sessions.new_flow_rate: %u, the running program has %u; changing "
		       "it needs a restart of the daemon (a new `flowpin lb up` takes the program "
		       "over with it, sessions kept)\n",
		       path, cfg->lines.sessions_new_flow_rate, cfg->sessions.new_flow_rate,
		       info.new_flow_rate);
		return -EINVAL;
	}
	return 0;
}

int fp_lbnode_apply_config(struct fp_lb *lb, const struct fp_config *file,
			   const struct fp_config *applied, const char *why, const char *dev,
			   __u32 *generation)
{
	__u32 gen = 0;
	int err = check_sessions(lb, applied, true);

	if (err)
		fp_lb_count_apply_error(lb);
	else
		err = fp_lb_apply(lb, applied, &gen);

	if (err) {
		fp_log_event("%s: %s not applied (%s); the running config stays\n", why, file->path,
			     strerror(-err));
		return err;
	}
	fp_log_event("%s: applied %s, generation %u (%zu VIPs, %zu backends)\n", why, file->path,
		     gen, file->n_vips, fp_config_count_backends(file));
	fp_lbnode_check_forwarding(file, dev);
	fp_lbnode_prime_neighbours(applied);
	fp_vip_routes_sync(file); /* logs its own errors; the program drops anyway */
	if (generation)
		*generation = gen;
	return 0;
}

/* Makes @cfg the view of the site the running node was started as (`info`). */
static int select_running_pop(struct fp_lb *lb, struct fp_config *cfg)
{
	struct fp_info info;
	int err = fp_lb_info(lb, &info);

	if (err)
		return err;
	info.pop[sizeof(info.pop) - 1] = '\0';
	return fp_config_select_pop(cfg, info.pop[0] ? info.pop : NULL, stderr);
}

/*
 * Loads @path and applies it as the next generation, @overrides in effect. The running
 * config stays on error. @dev: the LB's device, for the forwarding check.
 */
int fp_lbnode_apply_file(struct fp_lb *lb, const char *path, const char *why, const char *dev,
			 const struct fp_overrides *overrides)
{
	struct fp_config *cfg = NULL, *applied = NULL;
	int err;

	err = fp_config_load(path, &cfg, stderr);
	if (!err)
		err = select_running_pop(lb, cfg);
	if (err) {
		fp_log_event("%s: %s refused (%s); the running config stays\n", why, path,
			     strerror(-err));
		fp_lb_count_apply_error(lb);
		fp_config_free(cfg);
		return err;
	}
	err = fp_effective_config(cfg, overrides, NULL, NULL, &applied, NULL);
	if (err)
		fp_log_event("%s: %s not applied (%s); the running config stays\n", why, path,
			     strerror(-err));
	else
		err = fp_lbnode_apply_config(lb, cfg, applied, why, dev, NULL);
	fp_config_free(applied);
	fp_config_free(cfg);
	return err;
}

/* The first address of each family on @dev (IPv6: not link-local), unless given. */
static void default_sources(const char *dev, struct fp_lb_opts *opts)
{
	struct ifaddrs *ifa_list, *ifa;

	if (getifaddrs(&ifa_list))
		return;
	for (ifa = ifa_list; ifa; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || strcmp(ifa->ifa_name, dev))
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET && !opts->have_source_v4) {
			const struct sockaddr_in *sin = (const void *)ifa->ifa_addr;

			fp_addr_from_v4(opts->source_v4.a, sin->sin_addr.s_addr);
			opts->have_source_v4 = true;
		} else if (ifa->ifa_addr->sa_family == AF_INET6 && !opts->have_source_v6) {
			const struct sockaddr_in6 *sin6 = (const void *)ifa->ifa_addr;

			if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr))
				continue;
			memcpy(opts->source_v6.a, &sin6->sin6_addr, 16);
			opts->have_source_v6 = true;
		}
	}
	freeifaddrs(ifa_list);
}

/* Warns once about backends of a family the node has no outer source address for. */
static void check_sources(const struct fp_config *cfg, const struct fp_lb_opts *opts,
			  const char *dev)
{
	for (size_t v = 0; v < cfg->n_vips; v++) {
		for (size_t b = 0; b < cfg->vips[v].n_backends; b++) {
			const struct fp_backend_cfg *be = &cfg->vips[v].backends[b];
			int v4 = fp_addr_v4(&be->addr);

			if ((v4 && opts->have_source_v4) || (!v4 && opts->have_source_v6))
				continue;
			fp_warn("%s:%d: backend %u of VIP %s is IPv%d, but %s has no IPv%d address "
				"and no --source was given: its packets will be dropped "
				"(drop_no_source)\n",
				cfg->path ? cfg->path : "config", be->line, be->id,
				cfg->vips[v].name, v4 ? 4 : 6, dev, v4 ? 4 : 6);
			return;
		}
	}
}

/*
 * In a fleet of sites, the other sites accept cross-site hops only from the addresses
 * the sender's site lists in `lbs`: warns for an outer source this node would use that
 * its own site does not list.
 */
static void check_pop_sources(const struct fp_config *cfg, const struct fp_lb_opts *opts)
{
	const struct fp_pop_cfg *pop;
	const struct fp_addr *src[2] = { opts->have_source_v4 ? &opts->source_v4 : NULL,
					 opts->have_source_v6 ? &opts->source_v6 : NULL };
	char buf[INET6_ADDRSTRLEN];

	if (!cfg->pop_selected)
		return;
	pop = &cfg->pops[cfg->local_pop];
	for (int f = 0; f < 2; f++) {
		bool listed = false;

		if (!src[f])
			continue;
		for (size_t i = 0; i < pop->n_lbs && !listed; i++)
			listed = !memcmp(&pop->lbs[i], src[f], sizeof(*src[f]));
		if (!listed)
			fp_warn("%s:%d: pops: this node's outer source %s is not in site %s's lbs: "
				"the other sites drop its cross-site packets (pop_drop_source)\n",
				cfg->path ? cfg->path : "config", pop->line,
				fp_addr_str(src[f], buf, sizeof(buf)), pop->name);
	}
}

void fp_lbnode_settings(const struct fp_lbnode *n, struct fp_config *cfg)
{
	if (n->have_session_entries)
		cfg->sessions.entries = n->sessions.entries;
	if (n->have_new_flow_rate)
		cfg->sessions.new_flow_rate = n->sessions.new_flow_rate;
}

/* The loader's options from the command line, sources defaulted from @n->dev. */
static void loader_opts(const struct fp_lbnode *n, const struct fp_config *cfg,
			struct fp_lb_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->source_v4 = n->sources.v4;
	opts->source_v6 = n->sources.v6;
	opts->have_source_v4 = n->sources.have_v4;
	opts->have_source_v6 = n->sources.have_v6;
	opts->generic_xdp = n->xdp_generic;
	if (n->pop)
		snprintf(opts->pop, sizeof(opts->pop), "%s", n->pop);
	opts->session_entries = cfg->sessions.entries;
	opts->new_flow_rate =
		cfg->sessions.new_flow_rate ? cfg->sessions.new_flow_rate : UINT32_MAX;
	default_sources(n->dev, opts);
	check_sources(cfg, opts, n->dev);
	check_pop_sources(cfg, opts);
}

/* Load, pin, attach; on failure nothing stays behind. */
int fp_lbnode_start(const struct fp_lbnode *n, const struct fp_config *cfg, struct fp_lb **out)
{
	struct fp_lb_opts opts;
	struct fp_lb *lb = NULL;
	int ifindex = (int)if_nametoindex(n->dev);
	int err, pinned = 0;

	loader_opts(n, cfg, &opts);
	err = fp_lb_open(cfg, &opts, &lb);
	if (err) {
		fp_err("%s: cannot load the XDP program: %s\n", n->dev, strerror(-err));
		goto out;
	}
	err = fp_lb_pin(lb, n->pin_dir);
	if (err) {
		fp_err("%s: cannot pin the maps: %s\n", n->pin_dir, strerror(-err));
		goto out;
	}
	pinned = 1;
	err = fp_lb_attach(lb, ifindex, n->xdp_generic ? FP_XDP_GENERIC : FP_XDP_NATIVE);
	if (err)
		fp_err("%s: cannot attach the XDP program (%s mode): %s\n", n->dev,
		       n->xdp_generic ? "generic" : "native", strerror(-err));
out:
	if (err) {
		if (pinned)
			fp_lb_unpin(n->pin_dir);
		fp_lb_close(lb);
		return err;
	}
	*out = lb;
	return 0;
}

/* ID of the XDP program attached to @ifindex and its mode (0: none). */
static __u32 attached_id(int ifindex, enum fp_xdp_mode *mode)
{
	struct bpf_xdp_query_opts q;

	memset(&q, 0, sizeof(q)); /* padding too: libbpf checks it */
	q.sz = sizeof(q);
	if (ifindex <= 0 || bpf_xdp_query(ifindex, 0, &q))
		return 0;
	if (q.drv_prog_id) {
		*mode = FP_XDP_NATIVE;
		return q.drv_prog_id;
	}
	if (q.skb_prog_id) {
		*mode = FP_XDP_GENERIC;
		return q.skb_prog_id;
	}
	return 0;
}

/*
 * Detaches flowpin's program from @dev, only if the program attached there is the one
 * of @lb (never someone else's), then removes the pins.
 */
int fp_lbnode_stop(struct fp_lb *lb, const char *dev, const char *pin_dir)
{
	enum fp_xdp_mode mode = FP_XDP_NATIVE;
	int ifindex = (int)if_nametoindex(dev);
	__u32 id = attached_id(ifindex, &mode);
	int err = 0;

	if (id && fp_lb_runs_prog(lb, id)) {
		err = fp_lb_detach(ifindex, mode);
		if (err)
			fp_err("%s: cannot detach: %s\n", dev, strerror(-err));
	} else if (id) {
		fp_warn("%s: the XDP program attached there (id %u) is not flowpin's: left alone\n",
			dev, id);
	}
	if (!err) {
		err = fp_lb_unpin(pin_dir);
		if (err)
			fp_err("%s: cannot remove the pins: %s\n", pin_dir, strerror(-err));
	}
	return err;
}

/*
 * Whether this process's mounts differ from its parent's: `ip netns exec` unshares the
 * mount namespace and then execs us, so the shell that ran it does not see our mounts.
 */
bool fp_lbnode_private_mounts(void)
{
	char parent_ns[64];
	struct stat self, parent;

	snprintf(parent_ns, sizeof(parent_ns), "/proc/%d/ns/mnt", (int)getppid());
	if (stat("/proc/self/ns/mnt", &self) || stat(parent_ns, &parent))
		return false;
	return self.st_ino != parent.st_ino || self.st_dev != parent.st_dev;
}

/* What `up` says when it cannot take over a running instance without losing state. */
static void refuse_adopt(const struct fp_lbnode *n, const char *why)
{
	fp_err("%s: a flowpin program runs there with its maps pinned under %s, and %s: "
	       "refused, nothing changed; the running program keeps forwarding with its "
	       "sessions. To start fresh (sessions and counters lost, flows without a session "
	       "re-hashed): flowpin lb down --dev %s --pin-root %s --run-dir %s, then up\n",
	       n->dev, n->pin_dir, why, n->dev, n->pin_root, n->run_dir);
}

/* The same, when `lb up --force` would start fresh without a gap. */
static void refuse_state(const struct fp_lbnode *n, const char *why)
{
	fp_err("%s: a flowpin program runs there with its maps pinned under %s, and %s: "
	       "their state cannot be carried over. Refused, nothing changed; the running "
	       "program keeps forwarding with its sessions. `flowpin lb up --force` starts "
	       "fresh: this program and new, empty maps replace them in place (never "
	       "detached), every session is lost (established flows re-hashed: in `table` "
	       "mode most of them move) and the counters start at 0\n",
	       n->dev, n->pin_dir, why);
}

/*
 * An fd of the attached program @id for the atomic replace. Its pin (opened in @old)
 * when it is the attached one: that needs only CAP_BPF, where BPF_PROG_GET_FD_BY_ID
 * needs CAP_SYS_ADMIN, which the unit does not grant. By id only when the pinned
 * program is another one (a restart died between attach and pin). Refused (message
 * printed) when neither works.
 */
static int attached_prog_fd(const struct fp_lbnode *n, const struct fp_lb *old, __u32 id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	char why[192];
	int fd;

	if (!bpf_obj_get_info_by_fd(fp_lb_prog_fd(old), &info, &len) && info.id == id) {
		fd = fcntl(fp_lb_prog_fd(old), F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			fd = -errno;
			refuse_adopt(n, "the new program could not be swapped in");
		}
		return fd;
	}
	fd = bpf_prog_get_fd_by_id(id);
	if (fd >= 0)
		return fd;
	fd = -errno;
	snprintf(why, sizeof(why),
		 "the attached program (id %u) is not the pinned one (id %u) and cannot be "
		 "opened by its id (%s%s)",
		 id, info.id, strerror(-fd), fd == -EPERM ? ": that needs CAP_SYS_ADMIN" : "");
	refuse_adopt(n, why);
	return fd;
}

/*
 * Whether the program attached to @n->dev (id into @id, 0: none) may be replaced by a
 * program of ours without a gap: flowpin's (@old's, or another over @old's maps) and
 * in the XDP mode asked for. Refused (message printed) when not.
 */
static int check_attached(const struct fp_lbnode *n, const struct fp_lb *old, __u32 *id,
			  enum fp_xdp_mode *mode)
{
	enum fp_xdp_mode want = n->xdp_generic ? FP_XDP_GENERIC : FP_XDP_NATIVE;
	char why[160];

	*mode = want;
	*id = attached_id((int)if_nametoindex(n->dev), mode);
	if (*id && !fp_lb_runs_prog(old, *id)) {
		snprintf(why, sizeof(why),
			 "the XDP program attached to %s (id %u) is not flowpin's", n->dev, *id);
		refuse_adopt(n, why);
		return -EBUSY;
	}
	if (*id && *mode != want) {
		snprintf(why, sizeof(why),
			 "it is attached in %s mode (--xdp-mode %s cannot be swapped in without "
			 "a gap)",
			 *mode == FP_XDP_GENERIC ? "generic" : "native",
			 want == FP_XDP_GENERIC ? "generic" : "native");
		refuse_adopt(n, why);
		return -EINVAL;
	}
	return 0;
}

static __u32 prog_id(const struct fp_lb *lb)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	return bpf_obj_get_info_by_fd(fp_lb_prog_fd(lb), &info, &len) ? 0 : info.id;
}

/*
 * Swaps @lb's program in for the attached @id (@old's, or another over its maps) in one
 * atomic replace, or attaches it when nothing is attached (@id 0). *@old_fd: the
 * replaced program's fd (-1: none), for swapping back.
 */
static int swap_in(const struct fp_lbnode *n, const struct fp_lb *old, struct fp_lb *lb, __u32 id,
		   enum fp_xdp_mode mode, int *old_fd)
{
	int ifindex = (int)if_nametoindex(n->dev);

	*old_fd = -1;
	if (!id)
		return fp_lb_attach(lb, ifindex, mode);
	*old_fd = attached_prog_fd(n, old, id);
	if (*old_fd < 0) {
		int err = *old_fd;

		*old_fd = -1;
		return err;
	}
	return fp_lb_replace(lb, ifindex, mode, *old_fd);
}

/*
 * `lb up --force` over an instance whose state cannot be carried over (@why): this
 * binary's program with new, empty maps replaces it in place (one atomic replace, never
 * detached), the new pins replace the old ones. Its sessions are lost and counted.
 */
static int start_fresh(const struct fp_lbnode *n, const struct fp_config *cfg,
		       const struct fp_lb *old, const char *why, struct fp_lb **out)
{
	int ifindex = (int)if_nametoindex(n->dev);
	struct fp_lb_opts opts;
	struct fp_lb *lb = NULL;
	enum fp_xdp_mode mode;
	size_t dropped = 0;
	int err, old_fd = -1;
	bool counted;
	__u32 id;

	err = check_attached(n, old, &id, &mode);
	if (err)
		return err;
	counted = !fp_lb_count_session_keys(old, &dropped);
	loader_opts(n, cfg, &opts);
	err = fp_lb_open(cfg, &opts, &lb);
	if (err) {
		fp_err("%s: --force: cannot load the XDP program: %s; nothing changed\n", n->dev,
		       strerror(-err));
		goto out;
	}
	err = swap_in(n, old, lb, id, mode, &old_fd);
	if (err) {
		fp_err("%s: --force: the new program could not be swapped in: %s; nothing "
		       "changed\n",
		       n->dev, strerror(-err));
		goto out;
	}
	err = fp_lb_repin(lb, n->pin_dir);
	if (err) {
		/* Back to the program the old pins name, so `down` can still detach it. */
		if (old_fd >= 0 &&
		    !fp_lb_replace((struct fp_lb *)old, ifindex, mode, fp_lb_prog_fd(lb)))
			fp_err("%s: --force: the new pins could not be made: swapped back, "
			       "nothing changed\n",
			       n->dev);
		else if (id)
			fp_err("%s: the new program runs but is not pinned: `flowpin lb down` "
			       "cannot detach it; use ip link set dev %s xdp off\n",
			       n->dev, n->dev);
		else
			fp_lb_detach(ifindex, mode);
		goto out;
	}
	if (counted)
		fp_log_event("started fresh on %s (--force; %s): program %u replaced in place by "
			     "%u (never detached), new maps pinned, %zu session entries dropped\n",
			     n->dev, why, id, prog_id(lb), dropped);
	else
		fp_log_event("started fresh on %s (--force; %s): program %u replaced in place by "
			     "%u (never detached), new maps pinned, its session entries (not "
			     "countable) dropped\n",
			     n->dev, why, id, prog_id(lb));
out:
	if (old_fd >= 0)
		close(old_fd);
	if (err) {
		fp_lb_close(lb);
		return err;
	}
	*out = lb;
	return 0;
}

/*
 * A previous `lb up` on this device died without `down` (SIGKILL, crash, OOM): its
 * program still forwards and its maps are pinned. Take them over without a gap: this
 * binary's program is loaded over the pinned maps (sessions, counters, tables and the
 * generation kept). The same program (equal kernel tags) with the same load-time
 * settings is adopted as it runs; another one (a new build: an upgrade, or other
 * settings) is swapped in with one atomic replace (XDP_FLAGS_REPLACE) and pinned in
 * place of the old one. The caller then applies the config as a new generation.
 * Refused, nothing changed, when that cannot be done without losing state or a gap:
 * maps of another layout (FP_INFO_MAGIC or their shapes), settings fixed at load that
 * differ, more VIPs than the maps hold (those three start fresh with n->force), another
 * XDP mode, someone else's program attached.
 */
int fp_lbnode_take_over(const struct fp_lbnode *n, const struct fp_config *cfg, struct fp_lb **out)
{
	int ifindex = (int)if_nametoindex(n->dev);
	struct fp_lb *old = NULL, *lb = NULL;
	struct fp_lb_prog_cmp cmp;
	enum fp_xdp_mode mode;
	struct fp_lb_opts opts;
	size_t sessions = 0;
	int err, old_fd = -1;
	__u32 id, magic = 0;
	char why[192];

	err = fp_lb_open_pinned(n->pin_dir, &old);
	if (err == -EPROTO) { /* another FP_INFO_MAGIC, said above */
		err = fp_lb_open_pinned_any(n->pin_dir, &old);
		if (err) {
			refuse_adopt(n, "its pins cannot be opened");
			goto out;
		}
		fp_lb_pinned_magic(old, &magic);
		snprintf(why, sizeof(why),
			 "its maps have another layout (version %#x, this build's %#x: another "
			 "flowpin version)",
			 magic, FP_INFO_MAGIC);
		goto layout;
	}
	if (err) {
		refuse_adopt(n, "its pins cannot be opened");
		goto out;
	}
	if (fp_lb_check_config(old, cfg) || check_sessions(old, cfg, false)) {
		snprintf(why, sizeof(why), "--config changes settings fixed at load (above)");
		goto layout;
	}
	err = check_attached(n, old, &id, &mode);
	if (err)
		goto out;
	loader_opts(n, cfg, &opts);
	err = fp_lb_open_over(old, cfg, &opts, &lb);
	if (err == -EPROTO) {
		snprintf(why, sizeof(why),
			 "its maps have another shape than this build's under the same layout "
			 "version %#x (above)",
			 FP_INFO_MAGIC);
		goto layout;
	}
	if (err) {
		refuse_adopt(n, "this program cannot be loaded over its maps");
		goto out;
	}
	err = fp_lb_compare_prog(old, lb, &cmp);
	if (err) {
		refuse_adopt(n, "its program cannot be compared with this one");
		goto out;
	}
	fp_lb_count_session_keys(old, &sessions);
	if (id && id == cmp.running_id && cmp.same_code && !cmp.setting) {
		/* This very program with these settings runs: nothing to swap. */
		fp_log_event("took over the running instance on %s: the same program (tag %s) "
			     "with the same settings, adopted as it runs (id %u, never "
			     "detached), maps kept (%zu session entries)\n",
			     n->dev, cmp.running_tag, id, sessions);
		fp_lb_close(lb);
		lb = old;
		old = NULL;
		goto out;
	}
	err = swap_in(n, old, lb, id, mode, &old_fd);
	if (err) {
		refuse_adopt(n, "the new program could not be swapped in");
		goto out;
	}
	err = fp_lb_take_over(lb, &opts, n->pin_dir);
	if (err) {
		/* Back to the program the pins name, so `down` can still detach it. */
		if (old_fd >= 0 && !fp_lb_replace(old, ifindex, mode, fp_lb_prog_fd(lb)))
			refuse_adopt(n, "the new program could not be pinned (swapped back)");
		else
			fp_err("%s: the new program runs but is not pinned: `flowpin lb down` "
			       "cannot detach it; use ip link set dev %s xdp off\n",
			       n->dev, n->dev);
		goto out;
	}
	if (!id)
		fp_log_event("took over the pinned maps on %s (%zu session entries); no program "
			     "was attached: attached %u (tag %s)\n",
			     n->dev, sessions, cmp.loaded_id, cmp.loaded_tag);
	else if (!cmp.same_code)
		fp_log_event("upgraded the program on %s: %u (tag %s) replaced in place by %u "
			     "(tag %s), never detached, maps kept (%zu session entries)\n",
			     n->dev, id, cmp.running_tag, cmp.loaded_id, cmp.loaded_tag, sessions);
	else
		fp_log_event("took over the running instance on %s: program %u replaced in place "
			     "by %u (never detached; the same code, tag %s, %s%s), maps kept "
			     "(%zu session entries)\n",
			     n->dev, id, cmp.loaded_id, cmp.loaded_tag,
			     cmp.setting ? cmp.setting
					 : "the attached program was not the pinned one",
			     cmp.setting ? " changed" : "", sessions);
	goto out;
layout:
	if (n->force) {
		err = start_fresh(n, cfg, old, why, &lb);
	} else {
		err = -EPROTO;
		refuse_state(n, why);
	}
out:
	if (old_fd >= 0)
		close(old_fd);
	fp_lb_close(old);
	if (err) {
		fp_lb_close(lb);
		return err;
	}
	*out = lb;
	return 0;
}
