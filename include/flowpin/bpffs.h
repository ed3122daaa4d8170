/* SPDX-License-Identifier: MIT */
/* Pin roots: directories on a BPF filesystem. Userspace only. */
#ifndef FLOWPIN_BPFFS_H
#define FLOWPIN_BPFFS_H

#include <stdbool.h>
#include <sys/types.h>

/* Where bpftool, iproute2 and systemd expect the BPF filesystem. */
#define FP_BPFFS_MOUNT "/sys/fs/bpf"

/* mkdir -p with @mode for every missing component. Returns 0 or a negative errno. */
int fp_mkdir_p(const char *dir, mode_t mode);

/*
 * fp_bpffs_ensure - make @dir exist and be on a bpffs. A @dir on a bpffs already is
 * used as it is. A @dir at or below FP_BPFFS_MOUNT gets a bpffs mounted at
 * FP_BPFFS_MOUNT when none is there (as bpftool does: on a machine that never mounted
 * it, /sys/fs/bpf is a read-only sysfs directory), then is created in it. Any other
 * @dir is created and gets a bpffs of its own mounted on it if it is not on one (`ip
 * netns exec` remounts /sys, hiding /sys/fs/bpf, so the lab passes a pin root of its
 * own). *@mounted (may be NULL) tells whether this call mounted a bpffs. Messages name
 * @dir. Returns 0 or a negative errno.
 */
int fp_bpffs_ensure(const char *dir, bool *mounted);

#endif
