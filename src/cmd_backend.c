// SPDX-License-Identifier: MIT
/*
 * flowpin backend: the tc agent on a backend (bpf/backend.bpf.c through lib/backend.c).
 *
 *   up     bind the config's VIPs on lo, set the sysctls DSR (and TCP tickets) need
 *          (printed, old -> new), attach the programs to the device's tc ingress (and
 *          egress, with TCP tickets), pin its maps under
 *          <pin-root>/backend/, stay in the foreground; SIGTERM/SIGINT undo everything
 *   down   ask the running agent to undo everything (SIGTERM), or clean up after one
 *          that died (filter and pins)
 *   stats  the counters, once or every S seconds
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <flowpin/backend.h>
#include <flowpin/bpffs.h>
#include <flowpin/config.h>
#include <flowpin/etcd.h>
#include <flowpin/fleet.h>
#include <flowpin/instance.h>
#include <flowpin/lbnode.h>
#include <flowpin/log.h>
#include <flowpin/text.h>
#include "cli.h"
#include "commands.h"

extern char **environ;

#define DEFAULT_RUN_DIR "/run/flowpin"

struct backend_opts {
	const char *command; /* "backend up", for messages */
	const char *config;
	const char *dev;
	const char *pin_root;
	const char *run_dir; /* the etcd cache (with --config etcd://...) */
	const char *node;    /* the node's name in etcd */
	double interval;
	bool json;
};

static const struct cli_verb backend_verbs[5];

static void usage(FILE *out)
{
	for (size_t i = 0; i < sizeof(backend_verbs) / sizeof(backend_verbs[0]); i++)
		fprintf(out, "%s flowpin %s\n", i ? "      " : "usage:", backend_verbs[i].synopsis);
	fprintf(out,
		"\n"
		"up     binds the config's VIPs on lo (/32, /128), sets the sysctls direct server\n"
		"       return needs (arp_ignore=1, arp_announce=2, rp_filter 1 -> 2, forwarding "
		"on\n"
		"       IFACE for the second-chance forward; with TCP tickets on a VIP of this\n"
		"       host, tcp_timestamps=2; each printed as old -> new), attaches the\n"
		"       decapsulating tc program to IFACE's ingress (with tickets, the ticket\n"
		"       writer to its egress), pins its maps under DIR/backend/ (mounting bpffs\n"
		"       if needed) and stays in the foreground. SIGTERM or SIGINT undoes all\n"
		"       of it.\n"
		"reload asks the running agent (SIGHUP) to re-read its config; what it can\n"
		"       take (VIPs, LB sources, backends, tickets) is applied in place, flows\n"
		"       kept; anything else (encap_port, the ticket key, tickets turned on) is\n"
		"       refused and the running config stays.\n"
		"status what the running agent runs: its generation, the last config it refused\n"
		"       and, with etcd, whether etcd answers and which revision it applied\n"
		"       (RUN-DIR/backend-NODE.status, rewritten every 2 s). Exit status 1 when\n"
		"       no agent runs in the pin root.\n"
		"down   stops the running 'backend up' (which undoes everything); if it died,\n"
		"       removes its tc filter and pins (its VIPs and sysctls stay: say so).\n"
		"stats  prints the counters (docs/backend.md); with --interval, every S seconds\n"
		"       with the per-second rate, until interrupted.\n"
		"\n"
		"  -c, --config FILE     the flowpin config (vips, lb_sources, encap_port), or\n"
		"                        etcd://HOST:PORT[,...]/PREFIX: PREFIX/config (or\n"
		"                        config.canary for a canary node), followed while the\n"
		"                        agent runs, status under PREFIX/status/NODE "
		"(docs/etcd.md)\n"
		"  -n, --node NAME       the node's name in etcd (default HOSTNAME-IFACE)\n"
		"  -r, --run-dir DIR     the agent's status (DIR/backend-NODE.status) and the "
		"etcd\n"
		"                        value applied last (DIR/backend-NODE.etcd.yaml);\n"
		"                        default %s\n"
		"  -d, --dev IFACE       the fabric interface the LB nodes' packets arrive on\n"
		"  -p, --pin-root DIR    default %s\n"
		"  -i, --interval S      seconds between stats lines (stats only)\n"
		"  -j, --json            status as JSON\n"
		"  -h, --help            this text\n"
		"\n"
		"Exit status: 0 done, 1 error, 2 usage.\n",
		DEFAULT_RUN_DIR, FP_DEFAULT_PIN_ROOT);
}

/* ---- sysctls and VIPs: every change remembered, undone in reverse order ------------- */

#define MAX_SYSCTLS 12

struct undo {
	struct {
		char path[160];
		char old[32];
	} sysctl[MAX_SYSCTLS];
	int n_sysctl;
	struct fp_addr vip[FP_MAX_VIPS];
	int n_vip;
};

static int read_sysctl(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	int err = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		err = ferror(f) ? -EIO : -ENODATA;
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return err;
}

static int write_sysctl(const char *path, const char *value)
{
	FILE *f = fopen(path, "w");
	int err = 0;

	if (!f)
		return -errno;
	if (fputs(value, f) < 0)
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	return err;
}

/* "/proc/sys/net/ipv4/conf/all/arp_ignore" -> "net.ipv4.conf.all.arp_ignore" */
static const char *sysctl_name(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s", path + strlen("/proc/sys/"));
	for (char *p = buf; *p; p++)
		if (*p == '/')
			*p = '.';
	return buf;
}

/*
 * Sets @path to @want when @change_if(current) says so; prints old -> new and why.
 * Returns 0 or a negative errno (message printed).
 */
static int set_sysctl(struct undo *u, const char *path, const char *want,
		      int (*change_if)(long current), const char *why)
{
	char old[32], name[160];
	int err;

	err = read_sysctl(path, old, sizeof(old));
	if (err) {
		fp_err("sysctl %s: cannot read: %s\n", sysctl_name(path, name, sizeof(name)),
		       strerror(-err));
		return err;
	}
	if (!change_if(strtol(old, NULL, 10)))
		return 0;
	if (u->n_sysctl == MAX_SYSCTLS)
		return -E2BIG;
	err = write_sysctl(path, want);
	if (err) {
		fp_err("sysctl %s: cannot set %s: %s\n", sysctl_name(path, name, sizeof(name)),
		       want, strerror(-err));
		return err;
	}
	snprintf(u->sysctl[u->n_sysctl].path, sizeof(u->sysctl[0].path), "%s", path);
	snprintf(u->sysctl[u->n_sysctl].old, sizeof(u->sysctl[0].old), "%s", old);
	u->n_sysctl++;
	printf("sysctl %s: %s -> %s (%s)\n", sysctl_name(path, name, sizeof(name)), old, want, why);
	return 0;
}

static int below_1(long v)
{
	return v < 1;
}
static int not_2(long v)
{
	return v != 2;
}
static int is_1(long v)
{
	return v == 1;
}
static int is_0(long v)
{
	return v == 0;
}

/*
 * TCP tickets: the ingress restores the TSecr's top bits from the TCP clock, which is
 * only the stack's timestamp clock without the per-connection random offset of
 * tcp_timestamps=1 (flowpin/ticket.h). 0 would send no timestamps at all: no tickets.
 */
static int set_ticket_sysctls(struct undo *u)
{
	return set_sysctl(u, "/proc/sys/net/ipv4/tcp_timestamps", "2", not_2,
			  "TCP tickets: timestamps without a random offset per connection, so "
			  "the ticket's top bits come back from the clock");
}

static int set_dsr_sysctls(struct undo *u, const char *dev)
{
	const char *scopes[] = { "all", dev };
	char path[160];
	int err = 0;

	for (int i = 0; i < 2 && !err; i++) {
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/arp_ignore", scopes[i]);
		err = set_sysctl(u, path, "1", below_1,
				 "answer ARP only for addresses of the asking interface: the VIPs "
				 "on lo stay silent");
		if (err)
			break;
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/arp_announce", scopes[i]);
		err = set_sysctl(u, path, "2", not_2, "never use a VIP as the ARP source address");
		if (err)
			break;
		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", scopes[i]);
		err = set_sysctl(u, path, "2", is_1,
				 "loose: clients reach the VIP through the tunnel, not by the "
				 "route back to them");
	}
	if (err)
		return err;
	/* bpf_fib_lookup() refuses to answer for a device that does not forward. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", dev);
	err = set_sysctl(u, path, "1", is_0, "second chance: forward to the next hop");
	if (err)
		return err;
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/forwarding", dev);
	return set_sysctl(u, path, "1", is_0, "second chance: forward to the next hop");
}

static void restore_sysctls(struct undo *u)
{
	char name[160];

	while (u->n_sysctl > 0) {
		u->n_sysctl--;
		const char *path = u->sysctl[u->n_sysctl].path, *old = u->sysctl[u->n_sysctl].old;
		int err = write_sysctl(path, old);

		if (err)
			fp_err("sysctl %s: cannot restore %s: %s\n",
			       sysctl_name(path, name, sizeof(name)), old, strerror(-err));
		else
			printf("sysctl %s: restored %s\n", sysctl_name(path, name, sizeof(name)),
			       old);
	}
}

/* Runs `ip ARGS...` quietly. Returns 0, or the exit status / negative errno. */
static int run_ip(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	int status, err;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	/* `up` blocks SIGTERM until it is set up; `ip` must not inherit that. */
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	err = posix_spawnp(&pid, "ip", &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (err)
		return -err;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -EINTR;
}

static int vip_on_lo(const struct fp_addr *vip, const char *verb)
{
	char addr[INET6_ADDRSTRLEN + 8];
	char *argv[] = {
		"ip", fp_addr_v4(vip) ? "-4" : "-6", "addr", (char *)verb, addr, "dev", "lo", NULL
	};

	fp_addr_str(vip, addr, sizeof(addr) - 5);
	strcat(addr, fp_addr_v4(vip) ? "/32" : "/128");
	return run_ip(argv);
}

static int vip_present(const struct fp_addr *vip)
{
	struct ifaddrs *list, *ifa;
	int found = 0;

	if (getifaddrs(&list))
		return 0;
	for (ifa = list; ifa && !found; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || strcmp(ifa->ifa_name, "lo"))
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET && fp_addr_v4(vip))
			found = !memcmp(&((struct sockaddr_in *)ifa->ifa_addr)->sin_addr,
					vip->a + 12, 4);
		else if (ifa->ifa_addr->sa_family == AF_INET6 && !fp_addr_v4(vip))
			found = !memcmp(&((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, vip->a,
					16);
	}
	freeifaddrs(list);
	return found;
}

static int bind_vips(struct undo *u, const struct fp_config *cfg)
{
	char buf[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < cfg->n_vips; i++) {
		const struct fp_addr *vip = &cfg->vips[i].addr;
		int seen = 0, rc;

		for (int j = 0; j < u->n_vip; j++)
			seen |= !memcmp(&u->vip[j], vip, sizeof(*vip));
		if (seen)
			continue; /* same address, another port or protocol */
		if (vip_present(vip)) {
			printf("VIP %s: already on lo, left as it is\n",
			       fp_addr_str(vip, buf, sizeof(buf)));
			continue;
		}
		rc = vip_on_lo(vip, "add");
		if (rc) {
			fp_err("%s:%d: vips: cannot add %s to lo (ip addr add: %s)\n", cfg->path,
			       cfg->vips[i].line, fp_addr_str(vip, buf, sizeof(buf)),
			       rc < 0 ? strerror(-rc) : "failed");
			return rc < 0 ? rc : -EIO;
		}
		u->vip[u->n_vip++] = *vip;
		printf("VIP %s: bound on lo\n", fp_addr_str(vip, buf, sizeof(buf)));
	}
	return 0;
}

static void unbind_vips(struct undo *u)
{
	char buf[INET6_ADDRSTRLEN];

	while (u->n_vip > 0) {
		const struct fp_addr *vip = &u->vip[--u->n_vip];

		if (vip_on_lo(vip, "del"))
			fp_err("VIP %s: cannot remove it from lo\n",
			       fp_addr_str(vip, buf, sizeof(buf)));
		else
			printf("VIP %s: removed from lo\n", fp_addr_str(vip, buf, sizeof(buf)));
	}
}

/*
 * The backend's own addresses: encapsulated packets must be addressed to one of them,
 * and the loop guard never forwards to one. Every address of every interface, lo
 * included (routed fabrics put the host's address there), but the loopback range
 * (127/8, ::1), the config's VIPs and those the agent bound (@u, may be NULL): never an
 * outer destination or a hop.
 */
static int own_addresses(const struct fp_config *cfg, const struct undo *u, struct fp_addr *out,
			 size_t cap, size_t *n)
{
	struct ifaddrs *list, *ifa;

	*n = 0;
	if (getifaddrs(&list))
		return -errno;
	for (ifa = list; ifa; ifa = ifa->ifa_next) {
		struct fp_addr a = { { 0 } };

		int vip = 0;

		if (!ifa->ifa_addr)
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET)
			fp_addr_from_v4(a.a,
					((struct sockaddr_in *)ifa->ifa_addr)->sin_addr.s_addr);
		else if (ifa->ifa_addr->sa_family == AF_INET6)
			memcpy(a.a, &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, 16);
		else
			continue;
		for (size_t v = 0; v < cfg->n_vips && !vip; v++)
			vip = !memcmp(&cfg->vips[v].addr, &a, sizeof(a));
		/* A VIP this agent bound and is about to remove (a reload) is none either. */
		for (int v = 0; u && v < u->n_vip && !vip; v++)
			vip = !memcmp(&u->vip[v], &a, sizeof(a));
		if (vip || (fp_addr_v4(&a) && a.a[12] == 127) ||
		    (!fp_addr_v4(&a) && !memcmp(a.a, &in6addr_loopback, 16)))
			continue;
		if (*n == cap) {
			fp_warn("more than %zu own addresses: packets to the others are dropped "
				"(not_local)\n",
				cap);
			break;
		}
		out[(*n)++] = a;
	}
	freeifaddrs(list);
	return 0;
}

/* ---- where the agent's pins are ---------------------------------------------------- */

static int pin_dir(const char *pin_root, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/%s", pin_root, FP_BACKEND_PIN_SUBDIR) >= len) {
		fp_err("--pin-root %s: path too long\n", pin_root);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* ---- up: the agent ------------------------------------------------------------------ */

/*
 * The running agent: one libevent loop for signals (a signalfd: SIGHUP re-reads,
 * SIGTERM/SIGINT undo everything) and, with --config etcd://..., the fleet member's
 * hand-over (flowpin/fleet.h: its thread does every etcd call). Every config it takes
 * after `up` goes through agent_apply(): checked whole, then the program's maps updated
 * in place (fp_backend_update()), VIPs bound on lo before their packets are accepted and
 * removed after; anything refused leaves the running config as it was.
 */
struct agent {
	const struct backend_opts *o;
	struct fp_config *cfg; /* the config the agent runs */
	struct fp_addr self[FP_BACKEND_MAX_SELF];
	size_t n_self;
	struct fp_backend *be;
	struct undo *u;
	struct event_base *base;
	struct event *signal_ev;
	int signal_fd;
	int rc;
	unsigned int generation; /* configs applied, 1 at up */
	/* --config etcd://... */
	bool from_etcd;
	struct fp_etcd_target etcd;
	struct fp_etcd_auth etcd_auth;
	struct fp_fleet_cache cache;
	struct fp_fleet_member *fleet;
	struct fp_fleet_report report;
	/* RUN-DIR/backend-NODE.status: what `backend status` shows, rewritten every few s. */
	char status_path[PATH_MAX];
	struct event *status_ev;
	struct timespec applied_at;				    /* the running config's */
	char refused[sizeof(((struct fp_fleet_report *)0)->error)]; /* the last refusal */
};

#define STATUS_EVERY_S 2

static void opts_of(const struct fp_config *cfg, const struct fp_addr *self, size_t n_self,
		    struct fp_backend_opts *bo)
{
	memset(bo, 0, sizeof(*bo));
	bo->encap_port = cfg->encap_port;
	bo->lb_sources = cfg->lb_sources;
	bo->n_lb_sources = cfg->n_lb_sources;
	bo->self_addrs = self;
	bo->n_self_addrs = n_self;
	bo->vips = cfg->vips;
	bo->n_vips = cfg->n_vips;
	bo->hash_key = cfg->have_hash_key ? &cfg->hash_key : NULL;
	bo->cfg = cfg;
}

static size_t backends_in_all(const struct fp_config *cfg)
{
	size_t n = 0;

	for (size_t v = 0; v < cfg->n_vips; v++)
		n += cfg->vips[v].n_backends;
	return n;
}

static bool cfg_has_vip(const struct fp_config *cfg, const struct fp_addr *a)
{
	for (size_t v = 0; v < cfg->n_vips; v++)
		if (!memcmp(&cfg->vips[v].addr, a, sizeof(*a)))
			return true;
	return false;
}

/* VIPs this agent bound on lo that @cfg no longer has: removed (after the maps follow). */
static void unbind_gone_vips(struct undo *u, const struct fp_config *cfg)
{
	char buf[INET6_ADDRSTRLEN];

	for (int i = 0; i < u->n_vip;) {
		if (cfg_has_vip(cfg, &u->vip[i])) {
			i++;
			continue;
		}
		if (vip_on_lo(&u->vip[i], "del"))
			fp_err("VIP %s: cannot remove it from lo\n",
			       fp_addr_str(&u->vip[i], buf, sizeof(buf)));
		else
			printf("VIP %s: removed from lo (no longer in the config)\n",
			       fp_addr_str(&u->vip[i], buf, sizeof(buf)));
		u->vip[i] = u->vip[--u->n_vip];
	}
}

/*
 * Takes @cfg (loaded for a backend) as the running config: 0 and @cfg owned by the
 * agent, or a negative errno with nothing changed (@cfg left to the caller; the reasons
 * said with fp_err(), FILE:LINE: FIELD where a field is at fault).
 */
static int agent_apply(struct agent *a, struct fp_config *cfg, const char *why)
{
	struct fp_addr *self = calloc(FP_BACKEND_MAX_SELF, sizeof(*self));
	struct fp_backend_opts want, running;
	int n_vip_before = a->u->n_vip, err;
	size_t n_self;

	if (!self)
		return -ENOMEM;
	/* Own addresses afresh: a renumbered host is followed at every apply. */
	err = own_addresses(cfg, a->u, self, FP_BACKEND_MAX_SELF, &n_self);
	if (err)
		goto out;
	opts_of(cfg, self, n_self, &want);
	opts_of(a->cfg, a->self, a->n_self, &running);
	err = fp_backend_check_update(a->be, &want);
	/* New VIPs on lo before the program accepts their packets... */
	if (!err)
		err = bind_vips(a->u, cfg);
	if (!err)
		err = fp_backend_update(a->be, &want, &running);
	if (err) {
		/* ...and gone again when refused: only those bound just now. */
		while (a->u->n_vip > n_vip_before) {
			char buf[INET6_ADDRSTRLEN];
			const struct fp_addr *vip = &a->u->vip[--a->u->n_vip];

			if (!vip_on_lo(vip, "del"))
				printf("VIP %s: removed from lo again\n",
				       fp_addr_str(vip, buf, sizeof(buf)));
		}
		goto out;
	}
	/* ...and old ones off lo once the program no longer takes them. */
	unbind_gone_vips(a->u, cfg);
	memcpy(a->self, self, n_self * sizeof(*self));
	a->n_self = n_self;
	fp_config_free(a->cfg);
	a->cfg = cfg;
	a->generation++;
	clock_gettime(CLOCK_REALTIME, &a->applied_at);
	a->refused[0] = '\0';
	fp_log_event("%s: applied %s as generation %u: %zu VIP%s, %zu backend%s in all, %zu LB "
		     "source prefix%s, %zu own address%s, TCP tickets on %zu VIP%s\n",
		     why, cfg->path, a->generation, cfg->n_vips, cfg->n_vips == 1 ? "" : "s",
		     backends_in_all(cfg), backends_in_all(cfg) == 1 ? "" : "s", cfg->n_lb_sources,
		     cfg->n_lb_sources == 1 ? "" : "es", n_self, n_self == 1 ? "" : "es",
		     fp_backend_ticket_vips(a->be), fp_backend_ticket_vips(a->be) == 1 ? "" : "s");
out:
	free(self);
	return err;
}

/*
 * The agent's status for `backend status`: who, what it runs, its last refusal and,
 * with etcd, the link (fp_fleet_status_json()). Written whole (rename) or not at all.
 */
static void status_write(struct agent *a)
{
	json_object *o;
	const char *text;
	char at[32] = "";
	struct tm tm;

	if (!a->status_path[0])
		return;
	o = json_object_new_object();
	gmtime_r(&a->applied_at.tv_sec, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "node", json_object_new_string(a->o->node));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "dev", json_object_new_string(a->o->dev));
	json_object_object_add(o, "config", json_object_new_string(a->o->config));
	json_object_object_add(o, "generation", json_object_new_int64(a->generation));
	json_object_object_add(o, "applied_at", json_object_new_string(at));
	json_object_object_add(o, "vips", json_object_new_int64((int64_t)a->cfg->n_vips));
	json_object_object_add(o, "backends",
			       json_object_new_int64((int64_t)backends_in_all(a->cfg)));
	json_object_object_add(o, "ticket_vips",
			       json_object_new_int64((int64_t)fp_backend_ticket_vips(a->be)));
	json_object_object_add(o, "refused", json_object_new_string(a->refused));
	if (a->fleet)
		json_object_object_add(
			o, "etcd",
			fp_fleet_status_json(a->fleet, a->etcd.url, a->o->node, &a->report));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (fp_fleet_write_private(a->status_path, text, strlen(text)))
		a->status_path[0] = '\0'; /* said once at start-up; not every few seconds */
	json_object_put(o);
}

static void on_status_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	status_write(arg);
}

/* The agent's line in the fleet's status (PREFIX/status/NODE), written by the member. */
static void agent_report(struct agent *a)
{
	if (!a->fleet)
		return;
	a->report.generation = a->generation;
	snprintf(a->report.health, sizeof(a->report.health),
		 "%zu VIPs, %zu backends, tickets on %zu", a->cfg->n_vips, backends_in_all(a->cfg),
		 fp_backend_ticket_vips(a->be));
	fp_fleet_member_report(a->fleet, &a->report);
}

static int fleet_apply(void *arg, struct fp_config *cfg)
{
	return agent_apply(arg, cfg, "etcd");
}

static void fleet_node(struct agent *a, struct fp_fleet_node *n)
{
	*n = (struct fp_fleet_node){ FP_CONFIG_FOR_BACKEND, NULL, fleet_apply, NULL, a, &a->cache };
}

static void on_fleet_desired(void *arg, const struct fp_fleet_desired *want)
{
	struct agent *a = arg;
	struct fp_fleet_node n;

	fleet_node(a, &n);
	if (fp_fleet_take(want, &n, &a->report))
		snprintf(a->refused, sizeof(a->refused), "%s", a->report.error);
	fflush(stdout);
	agent_report(a);
	status_write(a);
}

/*
 * SIGHUP: the file again, or with etcd the value applied last (the cache). A refusal's
 * messages (loader's and the agent's) are kept for `backend status` too.
 */
static void on_sighup(struct agent *a, pid_t from)
{
	const char *path = a->from_etcd ? a->cache.yaml : a->o->config;
	struct fp_config *cfg = NULL;
	char *msgs = NULL;
	size_t msgs_len = 0, loader_len;
	FILE *capture = open_memstream(&msgs, &msgs_len);
	int err;

	fp_log_event("SIGHUP from pid %d: re-reading %s\n", (int)from, path);
	err = fp_config_load_for(path, FP_CONFIG_FOR_BACKEND, &cfg, capture ? capture : stderr);
	if (capture)
		fflush(capture);
	loader_len = msgs_len;
	if (!err) {
		fp_log_capture(capture);
		err = agent_apply(a, cfg, "reload");
		fp_log_capture(NULL);
	}
	if (capture)
		fclose(capture);
	if (msgs && loader_len)
		fwrite(msgs, 1, loader_len, stderr);
	if (err) {
		fp_log_event("reload: %s refused (%s); the running config stays\n", path,
			     strerror(-err));
		snprintf(a->refused, sizeof(a->refused), "%s",
			 msgs && msgs_len ? msgs : strerror(-err));
		fp_config_free(cfg);
	}
	free(msgs);
	fflush(stdout);
	status_write(a);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct signalfd_siginfo si;
	int n;

	(void)what;
	while ((n = fp_instance_signal(fd, &si)) > 0) {
		if (si.ssi_signo == SIGHUP) {
			on_sighup(a, (pid_t)si.ssi_pid);
			continue;
		}
		printf("flowpin backend: %s, undoing\n", strsignal((int)si.ssi_signo));
		event_base_loopbreak(a->base);
		return;
	}
	if (n < 0) {
		fp_err("signalfd: %s\n", strerror(-n));
		a->rc = 1;
		event_base_loopbreak(a->base);
	}
}

/* RUN-DIR made if missing, and fit (owned by root or us, writable by nobody else). */
static int run_dir_ready(const char *dir, char *why, size_t len)
{
	int err = fp_mkdir_p(dir, 0755);

	if (err) {
		snprintf(why, len, "%s: %s", dir, strerror(-err));
		return err;
	}
	return fp_lbnode_check_run_dir(dir, why, len);
}

/* RUN-DIR/backend-NODE.status, the file `backend status` reads. */
static int status_path(const struct backend_opts *o, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/backend-%s.status", o->run_dir, o->node) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * --config etcd://...: where the cache lives (RUN-DIR/backend-NODE.etcd.yaml: agents in
 * namespaces of one host share the file system, their node names differ) and the config
 * the agent starts with (etcd, else that cache). 0 or a negative errno (said).
 */
static int etcd_start(struct agent *a, struct fp_config **cfg)
{
	const struct backend_opts *o = a->o;
	struct fp_fleet_node n;
	char why[256], name[FP_FLEET_NODE_MAX + 16];
	int err;

	if (fp_etcd_parse_url(o->config, &a->etcd, why, sizeof(why)) ||
	    fp_etcd_auth_from_env(&a->etcd_auth, why, sizeof(why))) {
		fp_err("--config %s: %s\n", o->config, why);
		return -EINVAL;
	}
	if (!fp_fleet_node_name_ok(o->node)) {
		fp_err("--node '%s': 1..63 of A-Z a-z 0-9 . _ - (the node's name in etcd)\n",
		       o->node);
		return -EINVAL;
	}
	err = run_dir_ready(o->run_dir, why, sizeof(why));
	if (err) {
		fp_err("--run-dir %s\n", why);
		return err;
	}
	snprintf(name, sizeof(name), "backend-%s", o->node);
	if (fp_fleet_cache_init(&a->cache, o->run_dir, name)) {
		fp_err("--run-dir %s: path too long\n", o->run_dir);
		return -ENAMETOOLONG;
	}
	a->from_etcd = true;
	fleet_node(a, &n);
	return fp_fleet_start_config(&a->etcd, &a->etcd_auth, o->node, &n, cfg, &a->report);
}

static int agent_loop(struct agent *a, const sigset_t *signals)
{
	a->base = event_base_new();
	if (!a->base)
		return -ENOMEM;
	a->signal_fd = signalfd(-1, signals, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->signal_fd < 0) {
		fp_err("signalfd: %s\n", strerror(errno));
		return -errno;
	}
	a->signal_ev = event_new(a->base, a->signal_fd, EV_READ | EV_PERSIST, on_signal, a);
	if (!a->signal_ev || event_add(a->signal_ev, NULL))
		return -ENOMEM;
	if (a->from_etcd) {
		a->fleet =
			fp_fleet_member_new(a->base, &a->etcd, &a->etcd_auth, a->o->node, "backend",
					    a->report.applied_revision, on_fleet_desired, a);
		if (!a->fleet || fp_fleet_member_start(a->fleet)) {
			fp_err("etcd: cannot start following %s\n", a->etcd.url);
			return -ENOMEM;
		}
		agent_report(a);
	}
	if (a->status_path[0]) {
		struct timeval every = { STATUS_EVERY_S, 0 };

		a->status_ev = event_new(a->base, -1, EV_PERSIST, on_status_timer, a);
		if (!a->status_ev || event_add(a->status_ev, &every))
			return -ENOMEM;
		status_write(a);
	}
	if (event_base_dispatch(a->base) < 0)
		return -EIO;
	return a->rc ? -EIO : 0;
}

static int backend_up(const void *opts)
{
	const struct backend_opts *o = opts;
	struct agent a = { .o = o, .signal_fd = -1, .generation = 1 };
	struct fp_backend_attach_info info;
	struct fp_backend_opts bo;
	struct fp_instance *self_instance = NULL;
	char dir[PATH_MAX], why[PATH_MAX + 128];
	sigset_t stop;
	int ifindex, err;
	bool attached = false;

	/* Signals wait until set-up is complete (or failed): the loop reads them then. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	sigprocmask(SIG_BLOCK, &stop, NULL);

	/* Backends never hash: hash_key is needed for tickets only; lb_sources is required. */
	if (fp_etcd_is_url(o->config))
		err = etcd_start(&a, &a.cfg);
	else
		err = fp_config_load_for(o->config, FP_CONFIG_FOR_BACKEND, &a.cfg, stderr);
	if (err)
		goto out;
	ifindex = (int)if_nametoindex(o->dev);
	if (!ifindex) {
		err = -errno;
		fp_err("--dev %s: no such interface\n", o->dev);
		goto out;
	}
	a.u = calloc(1, sizeof(*a.u));
	if (!a.u) {
		err = -ENOMEM;
		goto out;
	}
	err = fp_bpffs_ensure(o->pin_root, NULL);
	if (!err)
		err = pin_dir(o->pin_root, dir, sizeof(dir));
	if (err)
		goto out;
	err = fp_backend_claim(dir, &self_instance);
	if (err == -EBUSY) {
		if (fp_backend_read_state(dir, &info))
			info.pid = 0;
		fp_err("%s: a backend agent is running already (pid %u); 'flowpin backend down "
		       "--pin-root %s' first\n",
		       dir, info.pid, o->pin_root);
	} else if (err) {
		fp_err("%s: %s\n", dir, strerror(-err));
	}
	if (err)
		goto out;
	/* The status file: with etcd the run directory is fit already; from a file the
	 * agent runs without one rather than not at all. */
	if (!fp_etcd_is_url(o->config) && !fp_fleet_node_name_ok(o->node)) {
		fp_warn("--node '%s': not a node name: no status for `backend status`\n", o->node);
	} else if (!fp_etcd_is_url(o->config) && run_dir_ready(o->run_dir, why, sizeof(why))) {
		fp_warn("--run-dir %s: no status for `backend status`\n", why);
	} else if (status_path(o, a.status_path, sizeof(a.status_path))) {
		a.status_path[0] = '\0';
		fp_warn("--run-dir %s: path too long: no status for `backend status`\n",
			o->run_dir);
	}
	err = own_addresses(a.cfg, NULL, a.self, FP_BACKEND_MAX_SELF, &a.n_self);
	if (err)
		goto out;

	opts_of(a.cfg, a.self, a.n_self, &bo);
	err = fp_backend_load(&bo, &a.be);
	if (err)
		goto out;
	err = bind_vips(a.u, a.cfg);
	if (!err)
		err = set_dsr_sysctls(a.u, o->dev);
	if (!err && fp_backend_ticket_vips(a.be))
		err = set_ticket_sysctls(a.u);
	if (!err) {
		err = fp_backend_attach(a.be, ifindex);
		attached = !err;
	}
	if (!err)
		err = fp_backend_pin(a.be, dir);
	if (err)
		goto out;
	printf("flowpin backend: up on %s (encap_port %u, %zu LB source prefix%s, %zu own "
	       "address%s, TCP tickets on %zu VIP%s), maps in %s; SIGHUP re-reads %s; SIGTERM "
	       "or 'flowpin backend down' undoes it\n",
	       o->dev, a.cfg->encap_port, a.cfg->n_lb_sources, a.cfg->n_lb_sources == 1 ? "" : "es",
	       a.n_self, a.n_self == 1 ? "" : "es", fp_backend_ticket_vips(a.be),
	       fp_backend_ticket_vips(a.be) == 1 ? "" : "s", dir,
	       a.from_etcd ? "the value applied last" : o->config);
	if (a.from_etcd)
		printf("flowpin backend: following %s as node %s (status under %s/status/%s)\n",
		       a.etcd.url, o->node, a.etcd.prefix, o->node);
	fflush(stdout);
	clock_gettime(CLOCK_REALTIME, &a.applied_at);
	err = agent_loop(&a, &stop);
out:
	/* The member first: no hand-over arrives while everything is undone. */
	fp_fleet_member_free(a.fleet);
	fp_backend_destroy(a.be); /* detach and unpin first: no packet meets a half state */
	if (attached)
		printf("tc filter: detached from %s, maps unpinned\n", o->dev);
	if (a.u) {
		restore_sysctls(a.u);
		unbind_vips(a.u);
	}
	free(a.u);
	fp_config_free(a.cfg);
	if (a.status_path[0])
		unlink(a.status_path);
	if (a.status_ev)
		event_free(a.status_ev);
	if (a.signal_ev)
		event_free(a.signal_ev);
	if (a.signal_fd >= 0)
		close(a.signal_fd);
	if (a.base)
		event_base_free(a.base);
	if (self_instance) {
		rmdir(dir); /* made by the claim; already gone after unpinning */
		fp_instance_release(self_instance);
	}
	fflush(stdout);
	return err ? 1 : 0;
}

/* ---- status ---------------------------------------------------------------------------- */

/* What the running agent wrote last (RUN-DIR/backend-NODE.status), checked alive. */
static int backend_status(const void *opts)
{
	const struct backend_opts *o = opts;
	char path[PATH_MAX], dir[PATH_MAX], pid[16];
	struct fp_backend_attach_info info;
	json_object *s, *e;
	int alive;

	if (pin_dir(o->pin_root, dir, sizeof(dir)) ||
	    status_path(o, path, sizeof(path)) == -ENAMETOOLONG)
		return 1;
	alive = fp_instance_probe(dir, NULL) == 1;
	s = json_object_from_file(path);
	if (!s || !json_object_is_type(s, json_type_object)) {
		fp_err("%s: no status (%s): is 'flowpin backend up' running as node %s with this "
		       "--run-dir?\n",
		       path,
		       alive ? "an agent runs in the pin root, as another node?" : "not running",
		       o->node);
		json_object_put(s);
		return 1;
	}
	/* Agents of one host share RUN-DIR: the file must be the pin root's agent's. */
	if (alive && !fp_backend_read_state(dir, &info)) {
		snprintf(pid, sizeof(pid), "%u", info.pid);
		if (strcmp(pid, fp_json_field(s, "pid"))) {
			fp_err("%s: the status of pid %s, not of the agent in %s (pid %s): agents "
			       "of one host need their own --node (or --run-dir)\n",
			       path, fp_json_field(s, "pid"), dir, pid);
			json_object_put(s);
			return 1;
		}
	}
	if (o->json) {
		json_object_object_add(s, "running", json_object_new_boolean(alive));
		printf("%s\n", json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN));
	} else {
		printf("flowpin backend: node %s, pid %s on %s%s: config %s, generation %s since "
		       "%s: %s VIPs, %s backends in all, tickets on %s VIPs\n",
		       fp_json_field(s, "node"), fp_json_field(s, "pid"), fp_json_field(s, "dev"),
		       alive ? "" : " (NOT RUNNING: the status of an agent that died)",
		       fp_json_field(s, "config"), fp_json_field(s, "generation"),
		       fp_json_field(s, "applied_at"), fp_json_field(s, "vips"),
		       fp_json_field(s, "backends"), fp_json_field(s, "ticket_vips"));
		if (strcmp(fp_json_field(s, "refused"), "-"))
			printf("  last refused (the running config stayed):\n    %s\n",
			       fp_json_field(s, "refused"));
		if (json_object_object_get_ex(s, "etcd", &e))
			fp_fleet_print_status(e, stdout);
	}
	json_object_put(s);
	return alive ? 0 : 1;
}

/* ---- reload ---------------------------------------------------------------------------- */

/* SIGHUP to the running agent: it re-reads its file (with etcd, the value applied last). */
static int backend_reload(const void *opts)
{
	const struct backend_opts *o = opts;
	struct fp_backend_attach_info info;
	char dir[PATH_MAX];
	int err;

	if (pin_dir(o->pin_root, dir, sizeof(dir)))
		return 1;
	err = fp_backend_read_state(dir, &info);
	if (!err && fp_instance_probe(dir, NULL) != 1)
		err = -ESRCH;
	if (err) {
		fp_err("%s: no running backend agent (%s)\n", dir,
		       err == -ENOENT || err == -ESRCH ? "not running" : strerror(-err));
		return 1;
	}
	if (kill((pid_t)info.pid, SIGHUP)) {
		fp_err("cannot signal the agent (pid %u): %s\n", info.pid, strerror(errno));
		return 1;
	}
	printf("flowpin backend: asked the agent (pid %u) to re-read its config; its output "
	       "says what it applied or refused\n",
	       info.pid);
	return 0;
}

/* ---- down ----------------------------------------------------------------------------- */

static int backend_down(const void *opts)
{
	const struct backend_opts *o = opts;
	struct fp_backend_attach_info info;
	struct fp_instance *instance;
	char dir[PATH_MAX];
	int err;

	err = pin_dir(o->pin_root, dir, sizeof(dir));
	if (err)
		return 1;
	err = fp_backend_read_state(dir, &info);
	if (err == -ENOENT) {
		printf("flowpin backend: nothing pinned in %s: not running\n", dir);
		return 0;
	}
	if (err) {
		fp_err("%s/state: %s\n", dir, strerror(-err));
		return 1;
	}
	if (fp_instance_probe(dir, NULL) == 1) {
		if (kill((pid_t)info.pid, SIGTERM)) {
			fp_err("cannot signal the agent (pid %u): %s\n", info.pid, strerror(errno));
			return 1;
		}
		/* It undoes everything itself; its pins vanish last but one step. */
		for (int i = 0; i < 100 && fp_instance_probe(dir, NULL) == 1; i++) {
			struct timespec ts = { 0, 100 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
		if (fp_instance_probe(dir, NULL) == 1) {
			fp_err("the agent (pid %u) is still running 10 s after SIGTERM\n",
			       info.pid);
			return 1;
		}
		printf("flowpin backend: agent (pid %u) stopped, everything undone\n", info.pid);
		return 0;
	}
	/* Gone: clean up as the instance, so no `backend up` starts in the middle of it. */
	err = fp_instance_claim(dir, &instance, NULL);
	if (err) {
		fp_err("%s: %s\n", dir, strerror(-err));
		return 1;
	}
	err = fp_backend_detach_info(&info);
	if (err)
		fp_instance_release(instance);
	if (err == -EXDEV) {
		fp_err("the agent (pid %u) is gone and was attached in another network namespace: "
		       "run 'flowpin backend down' there\n",
		       info.pid);
		return 1;
	}
	if (err) {
		fp_err("the agent (pid %u) is gone; cannot detach its tc filter from ifindex %u: "
		       "%s\n",
		       info.pid, info.ifindex, strerror(-err));
		return 1;
	}
	fp_backend_unpin_dir(dir);
	fp_instance_release(instance);
	printf("flowpin backend: the agent (pid %u) was gone; removed its tc filter and pins. "
	       "Its VIPs on lo and sysctl changes are still in place (only the agent knew the "
	       "old values)\n",
	       info.pid);
	return 0;
}

/* ---- stats ---------------------------------------------------------------------------- */

static int backend_stats(const void *opts)
{
	const struct backend_opts *o = opts;
	__u64 now[FP_BACKEND_NR_COUNTERS], prev[FP_BACKEND_NR_COUNTERS];
	char dir[PATH_MAX], path[PATH_MAX + 16];
	int fd, err, first = 1;

	if (pin_dir(o->pin_root, dir, sizeof(dir)))
		return 1;
	snprintf(path, sizeof(path), "%s/counters", dir);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fp_err("%s: %s (is 'flowpin backend up' running with this --pin-root?)\n", path,
		       strerror(errno));
		return 1;
	}
	if (o->interval > 0)
		cli_block_stop_signals();
	for (;;) {
		err = fp_backend_read_counters(fd, now);
		if (err == -EPROTO) {
			fp_err("%s: not the %d counters of this flowpin: the agent running is of "
			       "another build (restart it: flowpin backend down, then up)\n",
			       path, FP_BACKEND_NR_COUNTERS);
			break;
		}
		if (err) {
			fp_err("%s: %s\n", path, strerror(-err));
			break;
		}
		if (o->interval <= 0) {
			for (int i = 0; i < FP_BACKEND_NR_COUNTERS; i++)
				printf("%-18s %12llu  %s\n", fp_backend_counter_name(i),
				       (unsigned long long)now[i], fp_backend_counter_help(i));
			break;
		}
		if (!first) {
			for (int i = 0; i < FP_BACKEND_NR_COUNTERS; i++)
				printf("%s%s %llu (%.1f/s)", i ? ", " : "",
				       fp_backend_counter_name(i), (unsigned long long)now[i],
				       (double)(now[i] - prev[i]) / o->interval);
			printf("\n");
			fflush(stdout);
		}
		memcpy(prev, now, sizeof(prev));
		first = 0;
		if (cli_wait_stop(o->interval))
			break;
	}
	close(fd);
	return err ? 1 : 0;
}

/* ---- dispatch ------------------------------------------------------------------------- */

static int backend_option(void *opts, int opt, const char *arg)
{
	struct backend_opts *o = opts;

	switch (opt) {
	case 'c':
		o->config = arg;
		break;
	case 'd':
		o->dev = arg;
		break;
	case 'p':
		o->pin_root = arg;
		break;
	case 'r':
		o->run_dir = arg;
		break;
	case 'n':
		o->node = arg;
		break;
	case 'j':
		o->json = true;
		break;
	case 'i':
		if (cli_parse_interval(o->command, arg, &o->interval))
			return 2;
		break;
	}
	return 0;
}

static const struct option backend_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "dev", required_argument, NULL, 'd' },
	{ "pin-root", required_argument, NULL, 'p' },
	{ "interval", required_argument, NULL, 'i' },
	{ "run-dir", required_argument, NULL, 'r' },
	{ "node", required_argument, NULL, 'n' },
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{},
};

/* Name, synopsis, the options it takes (their vals above), operand, help, run. */
static const struct cli_verb backend_verbs[5] = {
	{ "up",
	  "backend up --config FILE|etcd://HOST:PORT[,...]/PREFIX --dev IFACE [--pin-root DIR] "
	  "[--node NAME] [--run-dir DIR]",
	  "cdprn", NULL, NULL, backend_up },
	{ "reload", "backend reload [--pin-root DIR]", "p", NULL, NULL, backend_reload },
	{ "status",
	  "backend status --dev IFACE|--node NAME [--run-dir DIR] [--pin-root DIR] [--json]",
	  "dnrpj", NULL, NULL, backend_status },
	{ "down", "backend down [--pin-root DIR]", "p", NULL, NULL, backend_down },
	{ "stats", "backend stats [--pin-root DIR] [--interval S]", "pi", NULL, NULL,
	  backend_stats },
};

static const struct cli_verbs backend_command = {
	{ "backend", "c:d:p:r:n:i:jh", backend_options, usage, backend_option },
	backend_verbs,
	sizeof(backend_verbs) / sizeof(backend_verbs[0]),
	NULL,
};

int cmd_backend(int argc, char **argv)
{
	struct backend_opts o = { .pin_root = FP_DEFAULT_PIN_ROOT, .run_dir = DEFAULT_RUN_DIR };
	static char name[FP_FLEET_NODE_MAX];
	const struct cli_verb *verb;
	char cmd[32];
	int rc;

	o.command = cmd;
	rc = cli_parse_verb(&backend_command, argc, argv, &o, &verb, cmd, sizeof(cmd));
	if (rc != CLI_RUN)
		return rc;
	if (verb->run == backend_up && (!o.config || !o.dev))
		return cli_usage_error(cmd, NULL, "--config FILE and --dev IFACE are required\n");
	if (verb->run == backend_status && !o.dev && !o.node)
		return cli_usage_error(cmd, NULL, "--dev IFACE or --node NAME is required\n");
	if (verb->run == backend_status && o.node && !fp_fleet_node_name_ok(o.node))
		return cli_usage_error(cmd, NULL, "--node '%s': 1..63 of A-Z a-z 0-9 . _ -\n",
				       o.node);
	if ((verb->run == backend_up || verb->run == backend_status) && !o.node) {
		/* As an LB node's: HOSTNAME-DEV. */
		char host[64] = "node";

		gethostname(host, sizeof(host) - 1);
		host[strcspn(host, ".")] = 0;
		snprintf(name, sizeof(name), "%s-%s", host, o.dev);
		o.node = name;
	}
	return verb->run(&o);
}
