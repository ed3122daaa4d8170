/* SPDX-License-Identifier: MIT */
/* Pin roots: directories on a BPF filesystem. Userspace only. */
#ifndef FLOWPIN_BPFFS_H
#define FLOWPIN_BPFFS_H

#include <stdbool.h>
#include <sys/types.h>

/* mkdir -p with @mode for every missing component. Returns 0 or a negative errno. */
int fp_mkdir_p(const char *dir, mode_t mode);

/*
 * fp_bpffs_ensure - make @dir exist and be on a bpffs, mounting one there if it is not
 * (`ip netns exec` remounts /sys, hiding /sys/fs/bpf, so the lab passes a pin root of
 * its own). *@mounted (may be NULL) tells whether this call mounted it. Messages name
 * @dir. Returns 0 or a negative errno.
 */
int fp_bpffs_ensure(const char *dir, bool *mounted);

#endif
