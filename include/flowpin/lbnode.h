/* SPDX-License-Identifier: MIT */
/*
 * An LB node's lifecycle around the loader (flowpin/lb.h): where its files and pins
 * are, starting (load, pin, attach), taking over the program and maps of a daemon that
 * died, applying a config file (then the forwarding check and neighbour priming),
 * stopping (detach our own program only, unpin). `flowpin lb` is options, signals and
 * printing around these. Userspace only.
 *
 * Files: <run-dir>/<dev>.pid (the daemon: its pid, locked while it lives, see
 * fp_lbnode_claim()), <run-dir>/<dev>.config (the config path the daemon re-reads on
 * SIGHUP; `lb reload --config` rewrites it; read and written only under the apply lock,
 * so it names the file of the last apply), <run-dir>/<dev>.overrides (run-time
 * drain/disable, also only under the apply lock), <run-dir>/<dev>.ctl (the daemon's
 * control socket, flowpin/lbd.h).
 *
 * Functions return 0 or a negative errno and say why through fp_log; events of the
 * daemon (applied, took over) are fp_log_event() lines.
 */
#ifndef FLOWPIN_LBNODE_H
#define FLOWPIN_LBNODE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <flowpin/addr.h>
#include <flowpin/config.h>
#include <flowpin/effective.h>
#include <flowpin/instance.h>
#include <flowpin/lb.h>

struct fp_lbnode {
	const char *dev;
	const char *pin_root;
	const char *run_dir;
	bool xdp_generic;
	/* Take-over of maps whose state cannot be carried over (another layout, settings
	 * fixed at load): start fresh in place (sessions lost) instead of refusing. */
	bool force;
	struct {
		struct fp_addr v4, v6;
		bool have_v4, have_v6;
	} sources; /* outer source addresses asked for; the rest from the device's */
	/* `lb up --sessions N --new-flow-rate R`: over the config's `sessions`. */
	struct fp_sessions_cfg sessions;
	bool have_session_entries, have_new_flow_rate;
	/* `lb up --pop NAME`: the node's site in a config with `pops` (NULL: none). */
	const char *pop;
	/* --node: this node's name in a fleet configured from etcd (flowpin/fleet.h). */
	const char *node_name;
	char pin_dir[PATH_MAX];	       /* <pin-root>/<dev> */
	char pid_file[PATH_MAX];       /* <run-dir>/<dev>.pid */
	char config_file[PATH_MAX];    /* <run-dir>/<dev>.config */
	char overrides_file[PATH_MAX]; /* <run-dir>/<dev>.overrides (flowpin/effective.h) */
	char ctl_file[PATH_MAX];       /* <run-dir>/<dev>.ctl, the daemon's control socket */
};

/* Fills @n's paths from @dev, @pin_root and @run_dir. Returns 0 or -ENAMETOOLONG. */
int fp_lbnode_init(struct fp_lbnode *n, const char *dev, const char *pin_root, const char *run_dir);

/*
 * Whether @dir is fit to hold the node's files, which root writes and reads back there
 * (pid, record, overrides, maintenance, control socket): a directory owned by root or
 * this euid, writable by nobody else, under ancestors nobody else can rename it in
 * (owned by root or this euid, and not group/other-writable unless sticky). Anyone else
 * who can write there could plant a symlink root then writes through, or a file root
 * obeys. Returns 0 or a negative errno with why in @msg.
 */
int fp_lbnode_check_run_dir(const char *dir, char *msg, size_t msglen);

/*
 * Makes this process the node's daemon: <run-dir>/<dev>.pid created, holding our pid and
 * locked for the process's life (flowpin/instance.h; fp_instance_release() removes it).
 * Returns 0, -EBUSY when a daemon runs on the node, or another negative errno (said why).
 */
int fp_lbnode_claim(const struct fp_lbnode *n, struct fp_instance **out);
/* The pid of the node's live daemon (the pid file's holder, fp_lbnode_claim()), else 0. */
int fp_lbnode_read_pid(const char *path);
/* Writes @path aside under a unique name and renames it in place. */
int fp_lbnode_write_file(const char *path, const char *text);
/* The config path recorded in n->config_file into @path (unchanged without a record). */
void fp_lbnode_read_record(const struct fp_lbnode *n, char *path, size_t len);

/* The command line's settings over @cfg's (n->sessions), for each config the daemon loads. */
void fp_lbnode_settings(const struct fp_lbnode *n, struct fp_config *cfg);

/* One empty datagram per (VIP, backend not down) pair: the kernel resolves next hops. */
void fp_lbnode_prime_neighbours(const struct fp_config *cfg);
/* Warns for each backend family whose forwarding is off on @dev (drop_fib). */
void fp_lbnode_check_forwarding(const struct fp_config *cfg, const char *dev);
/* Backends of every VIP of @cfg, for log lines. */
size_t fp_config_count_backends(const struct fp_config *cfg);

/*
 * Loads @path and applies it as the next generation with the run-time overrides in
 * @overrides (may be NULL; flowpin/effective.h) in effect, health not known; the running
 * config stays on error.
 */
int fp_lbnode_apply_file(struct fp_lb *lb, const char *path, const char *why, const char *dev,
			 const struct fp_overrides *overrides);
/*
 * Applies @applied (@file, the config as loaded from its file, with effective states) as
 * the next generation, logged as "@why: applied FILE, generation N (...)", then the
 * forwarding check, neighbour priming and VIP routes of @file. *@generation (may be
 * NULL): the generation now running.
 */
int fp_lbnode_apply_config(struct fp_lb *lb, const struct fp_config *file,
			   const struct fp_config *applied, const char *why, const char *dev,
			   __u32 *generation);
/* Load, pin, attach; on failure nothing stays behind. */
int fp_lbnode_start(const struct fp_lbnode *n, const struct fp_config *cfg, struct fp_lb **out);
/* Takes over the pinned program and maps of a daemon that died, or refuses (nothing changed). */
int fp_lbnode_take_over(const struct fp_lbnode *n, const struct fp_config *cfg, struct fp_lb **out);
/* Detaches @lb's program from @dev (never someone else's), then removes the pins. */
int fp_lbnode_stop(struct fp_lb *lb, const char *dev, const char *pin_dir);
/* Whether this process's mounts differ from its parent's (`ip netns exec`). */
bool fp_lbnode_private_mounts(void);

#endif
