/* SPDX-License-Identifier: MIT */
/*
 * A running instance of a flowpin daemon (the LB node's `lb up`, the backend agent) as
 * other processes see it. The one rule: an instance holds an exclusive flock(2) on one
 * path for its whole life, and "is it running?" is "is that path locked?".
 *
 *   LB node        <run-dir>/<dev>.pid, a regular file that also holds the pid
 *   backend agent  <pin-root>/backend, its pin directory (the pid is in its state map)
 *
 * The kernel drops the lock when the process ends, however it ends (kill -9, crash), so a
 * dead daemon is never seen alive: not even when another process has since got its pid,
 * which kill(pid, 0) calls alive. Two starters: the lock admits one. The descriptor is
 * close-on-exec, so a helper the daemon runs never inherits the lock.
 *
 * Functions return 0 (or what they say) or a negative errno; they log nothing.
 * Userspace only.
 */
#ifndef FLOWPIN_INSTANCE_H
#define FLOWPIN_INSTANCE_H

#include <sys/types.h>

struct fp_instance;

/*
 * fp_instance_claim - makes this process the instance at @path, for as long as it lives
 * or until fp_instance_release(). A missing @path is created as a regular file (its
 * directory must exist); an existing directory is locked as it is. A regular file gets
 * this process's pid ("PID\n"). Returns 0, -EBUSY when a live process holds @path (its
 * pid in *@owner when @owner and the file names one, else 0), or another negative errno.
 */
int fp_instance_claim(const char *path, struct fp_instance **out, pid_t *owner);

/*
 * fp_instance_probe - whether a live process holds @path. Returns 1 (its pid in *@pid
 * when @pid and @path is a file naming one, else 0), 0 when @path is missing or nobody
 * holds it (a file left by a dead daemon), or a negative errno.
 */
int fp_instance_probe(const char *path, pid_t *pid);

/* Gives the instance up: a pid file is removed first, then the lock. NULL is fine. */
void fp_instance_release(struct fp_instance *in);

/*
 * fp_instance_signal - the next signal a daemon's loop reads from its signalfd(2)
 * (non-blocking): 1 with *@si filled, 0 when none is pending, or a negative errno
 * (-EIO: a short read).
 */
struct signalfd_siginfo;
int fp_instance_signal(int signal_fd, struct signalfd_siginfo *si);

#endif
