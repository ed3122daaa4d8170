// SPDX-License-Identifier: MIT
/* A running daemon instance: an exclusive flock held for life. See flowpin/instance.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <flowpin/instance.h>

struct fp_instance {
	int fd;
	bool is_file; /* a pid file: removed on release */
	dev_t dev;
	ino_t ino;
	char path[PATH_MAX];
};

/* Tries a prober holds its shared lock for, and a claimant's pid takes to appear. */
#define BRIEF_TRIES 20
#define BRIEF_NSEC  (5 * 1000 * 1000)
/* Files locked just as their holder removed them: each means another claimant got in and
 * out meanwhile, so only a crowd of them coming and going makes many. */
#define STALE_TRIES 1000

static void brief_pause(void)
{
	struct timespec ts = { 0, BRIEF_NSEC };

	nanosleep(&ts, NULL);
}

/*
 * flock(@how | LOCK_NB). A prober holds a shared lock for a moment, so an exclusive
 * claim that meets one tries again for up to BRIEF_TRIES pauses before calling the path
 * held. Returns 0, -EWOULDBLOCK or another negative errno.
 */
static int try_lock(int fd, int how)
{
	for (int i = 0;; i++) {
		if (!flock(fd, how | LOCK_NB))
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK || how != LOCK_EX || i == BRIEF_TRIES)
			return -errno;
		brief_pause();
	}
}

/*
 * The pid in the pid file @fd, or 0. A claimant writes it just after taking the lock:
 * a holder whose file is still empty is waited for briefly.
 */
static pid_t file_pid(int fd)
{
	char buf[24], *end;
	long pid;

	for (int i = 0; i < BRIEF_TRIES; i++, brief_pause()) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

		if (n <= 0)
			continue;
		buf[n] = '\0';
		pid = strtol(buf, &end, 10);
		if (end != buf && *end == '\n' && pid > 0 && pid <= INT_MAX)
			return (pid_t)pid;
	}
	return 0;
}

static int open_path(const char *path, bool create)
{
	int fd = open(path, (create ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0 && errno == EISDIR)
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

int fp_instance_claim(const char *path, struct fp_instance **out, pid_t *owner)
{
	struct fp_instance *in;
	struct stat locked, named;
	char text[24];
	int fd = -1, err, len;

	if (owner)
		*owner = 0;
	*out = NULL;
	if (strlen(path) >= sizeof(in->path))
		return -ENAMETOOLONG;
	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	/*
	 * The lock must be on the file the path names once we hold it: a holder that exits
	 * removes its pid file, and a claimant that opened it before then gets a lock on a
	 * file nobody can find any more. Such a claimant opens the path again.
	 */
	for (int tries = 0;; tries++) {
		fd = open_path(path, true);
		if (fd < 0) {
			err = fd;
			goto fail;
		}
		err = try_lock(fd, LOCK_EX);
		if (err == -EWOULDBLOCK) {
			if (owner && !fstat(fd, &locked) && S_ISREG(locked.st_mode))
				*owner = file_pid(fd);
			err = -EBUSY;
			goto fail;
		}
		if (err)
			goto fail;
		if (fstat(fd, &locked)) {
			err = -errno;
			goto fail;
		}
		if (!stat(path, &named) && named.st_dev == locked.st_dev &&
		    named.st_ino == locked.st_ino)
			break;
		close(fd);
		fd = -1;
		if (tries == STALE_TRIES) {
			err = -EAGAIN;
			goto fail;
		}
	}
	in->fd = fd;
	in->is_file = S_ISREG(locked.st_mode);
	in->dev = locked.st_dev;
	in->ino = locked.st_ino;
	strcpy(in->path, path);
	if (in->is_file) {
		len = snprintf(text, sizeof(text), "%d\n", (int)getpid());
		errno = 0;
		if (ftruncate(fd, 0) || pwrite(fd, text, (size_t)len, 0) != len) {
			err = errno ? -errno : -EIO;
			fp_instance_release(in);
			return err;
		}
	}
	*out = in;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(in);
	return err;
}

int fp_instance_probe(const char *path, pid_t *pid)
{
	struct stat st;
	int fd, err;

	if (pid)
		*pid = 0;
	fd = open_path(path, false);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	err = try_lock(fd, LOCK_SH);
	if (!err) {
		/* Nobody holds it: a file a dead daemon left, or a directory nobody runs in. */
		flock(fd, LOCK_UN);
	} else if (err == -EWOULDBLOCK) {
		err = 1;
		if (pid && !fstat(fd, &st) && S_ISREG(st.st_mode))
			*pid = file_pid(fd);
	}
	close(fd);
	return err;
}

void fp_instance_release(struct fp_instance *in)
{
	struct stat st;

	if (!in)
		return;
	/* Only our own file: never one a later instance made after ours was removed. */
	if (in->is_file && !stat(in->path, &st) && st.st_dev == in->dev && st.st_ino == in->ino)
		unlink(in->path);
	close(in->fd);
	free(in);
}

int fp_instance_signal(int signal_fd, struct signalfd_siginfo *si)
{
	for (;;) {
		ssize_t n = read(signal_fd, si, sizeof(*si));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		return n == (ssize_t)sizeof(*si) ? 1 : -EIO;
	}
}
