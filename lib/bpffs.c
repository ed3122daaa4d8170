// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
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

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == BPF_FS_MAGIC;
}

/*
 * Whether @dir is FP_BPFFS_MOUNT or below it, judged on the real path of its longest
 * existing prefix (so "/sys/fs//bpf/x" and symlinks count too).
 */
static bool below_default_mount(const char *dir)
{
	static const char top[] = FP_BPFFS_MOUNT;
	char path[PATH_MAX], real[PATH_MAX];
	size_t len = strlen(dir), n = sizeof(top) - 1;
	char *cut;

	if (len >= sizeof(path) || dir[0] != '/')
		return false;
	memcpy(path, dir, len + 1);
	while (!realpath(path, real)) {
		cut = strrchr(path, '/');
		if (!cut || cut == path)
			return false;
		*cut = '\0';
	}
	return !strncmp(real, top, n) && (real[n] == '\0' || real[n] == '/');
}

/*
 * Mounts a bpffs at FP_BPFFS_MOUNT unless one is there, as bpftool does. On a machine
 * that never mounted it, /sys/fs/bpf is an empty read-only sysfs directory: nothing can
 * be created below it. Two flowpin commands starting at once (lb up, backend up) must
 * not stack two mounts, the second hiding the first's pins: the check and the mount run
 * under flock() on the directory. Whoever opened it before the mount holds the sysfs
 * directory, whoever opened it after holds the bpffs root, so the check is made again,
 * by path, once the lock is held. Returns 0 or a negative errno.
 */
static int mount_default(const char *dir, bool *mounted)
{
	int fd, err = 0;

	fd = open(FP_BPFFS_MOUNT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		fp_err("pin root %s: %s: %s\n", dir, FP_BPFFS_MOUNT, strerror(-err));
		return err;
	}
	if (flock(fd, LOCK_EX)) {
		err = -errno;
		fp_err("pin root %s: locking %s: %s\n", dir, FP_BPFFS_MOUNT, strerror(-err));
		goto out;
	}
	if (on_bpffs(FP_BPFFS_MOUNT))
		goto out;
	if (mount("bpf", FP_BPFFS_MOUNT, "bpf", 0, "mode=0700")) {
		err = -errno;
		fp_err("pin root %s: %s is not a bpffs, and mounting one there failed: %s\n", dir,
		       FP_BPFFS_MOUNT, strerror(-err));
		goto out;
	}
	fp_info("mounted bpffs at %s\n", FP_BPFFS_MOUNT);
	if (mounted)
		*mounted = true;
out:
	close(fd); /* drops the lock */
	return err;
}

int fp_bpffs_ensure(const char *dir, bool *mounted)
{
	struct statfs st;
	int err;

	if (mounted)
		*mounted = false;
	if (!dir || !dir[0])
		return -EINVAL;
	/* A pin root that is on a bpffs already is used as it is, wherever it lives. */
	if (on_bpffs(dir))
		return 0;
	if (below_default_mount(dir) && !on_bpffs(FP_BPFFS_MOUNT)) {
		err = mount_default(dir, mounted);
		if (err)
			return err;
	}
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
	/* Any other pin root (the lab's, a test's) gets a bpffs of its own. */
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
