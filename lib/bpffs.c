// SPDX-License-Identifier: MIT
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <flowpin/bpffs.h>
#include <flowpin/log.h>

int fp_mkdir_p(const char *dir, mode_t mode)
{
	char path[PATH_MAX];
	size_t len = dir ? strlen(dir) : 0;

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	/* Each prefix ending at a '/', then the whole path. */
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, mode) && errno != EEXIST)
			return -errno;
		path[i] = dir[i];
	}
	return 0;
}

int fp_bpffs_ensure(const char *dir, bool *mounted)
{
	struct statfs st;
	int err;

	if (mounted)
		*mounted = false;
	err = fp_mkdir_p(dir, 0700);
	if (err) {
		fp_err("pin root %s: cannot create it: %s\n", dir, strerror(-err));
		return err;
	}
	if (statfs(dir, &st)) {
		err = -errno;
		fp_err("pin root %s: %s\n", dir, strerror(-err));
		return err;
	}
	if (st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", dir, "bpf", 0, "mode=0700")) {
		err = -errno;
		fp_err("pin root %s: not on bpffs, and mounting one there failed: %s\n", dir,
		       strerror(-err));
		return err;
	}
	fp_info("mounted bpffs at %s\n", dir);
	if (mounted)
		*mounted = true;
	return 0;
}
