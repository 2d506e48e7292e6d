/*
 * io.c - the real and the fault-injecting I/O layers (io.h).
 *
 * The real layer is a direct mapping onto the system calls with EINTR
 * retried and errors returned as -errno. It keeps no state.
 *
 * The fault layer counts every call per kind (and in NV_IO_ANY) with
 * relaxed atomics, and decides per call whether to inject: an armed kind
 * fails its k-th call after arming (and every later one when sticky). A
 * short write transfers the first half for real and reports the short
 * count, which is what a filling disk does before ENOSPC.
 *
 * For the power-cut simulation it remembers, per file opened for writing,
 * the size at its last fdatasync; renames and unlinks follow the path.
 * nv__io_fault_powercut() truncates each file back to that size. This
 * models the loss of unsynced appends (the failure mode that matters for
 * an append-only log); it does not roll back directory operations or
 * garble pages.
 */
#include "persistence/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- real */

static int
real_open(const nv_io_ops *io, const char *path, int flags, unsigned mode)
{
	int fd;
	do
		fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

static int
real_close(const nv_io_ops *io, int fd)
{
	/* Linux closes the descriptor even when close reports EINTR; never
	 * retry (the number may already belong to another open). */
	return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

static ssize_t
real_pread(const nv_io_ops *io, int fd, void *buf, size_t n, uint64_t off)
{
	ssize_t r;
	do
		r = pread(fd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static ssize_t
real_pwrite(const nv_io_ops *io, int fd, const void *buf, size_t n,
	    uint64_t off)
{
	ssize_t r;
	do
		r = pwrite(fd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static int
real_fdatasync(const nv_io_ops *io, int fd)
{
	/* EINTR is not retried here on purpose: after a failed sync the
	 * caller must not trust the descriptor (see store.h). fdatasync does
	 * not return EINTR on Linux anyway. */
	return fdatasync(fd) < 0 ? -errno : 0;
}

static int
real_ftruncate(const nv_io_ops *io, int fd, uint64_t len)
{
	int r;
	do
		r = ftruncate(fd, (off_t)len);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static int
real_fsize(const nv_io_ops *io, int fd, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int
real_rename(const nv_io_ops *io, const char *from, const char *to)
{
	return rename(from, to) < 0 ? -errno : 0;
}

static int
real_link(const nv_io_ops *io, const char *from, const char *to)
{
	return link(from, to) < 0 ? -errno : 0;
}

static int
real_unlink(const nv_io_ops *io, const char *path)
{
	return unlink(path) < 0 ? -errno : 0;
}

static int
real_mkdir(const nv_io_ops *io, const char *path, unsigned mode)
{
	return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int
real_fsync_dir(const nv_io_ops *io, const char *path)
{
	int fd = real_open(io, path, O_RDONLY | O_DIRECTORY, 0);
	int r;
	if (fd < 0)
		return fd;
	r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int
real_list_dir(const nv_io_ops *io, const char *path, nv_io_dir_fn fn, void *arg)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int r = 0;

	if (d == NULL)
		return -errno;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		r = fn(de->d_name, arg);
		if (r != 0)
			break;
		errno = 0;
	}
	if (de == NULL && errno != 0)
		r = -errno;
	closedir(d);
	return r;
}

static int
real_lock(const nv_io_ops *io, const char *path)
{
	int fd = real_open(io, path, O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK ? -EWOULDBLOCK : -e;
	}
	return fd;
}

const nv_io_ops nv__io_real = {
    .version = NV_IO_OPS_VERSION,
    .name = "real",
    .open = real_open,
    .close = real_close,
    .pread = real_pread,
    .pwrite = real_pwrite,
    .fdatasync = real_fdatasync,
    .ftruncate = real_ftruncate,
    .fsize = real_fsize,
    .rename = real_rename,
    .link = real_link,
    .unlink = real_unlink,
    .mkdir = real_mkdir,
    .fsync_dir = real_fsync_dir,
    .list_dir = real_list_dir,
    .lock = real_lock,
};

/* ---------------------------------------------------------------- faults */

#define F(io) ((nv_io_fault *)(io))
#define R(io) (F(io)->real)

/* Counts a call of kind and returns 0 to pass it through, or -errno to
 * fail it; *shortw is set when a write must be made short instead. */
static int
fault_check(const nv_io_ops *io, nv_io_kind kind, bool *shortw)
{
	nv_io_fault *f = F(io);
	nv_io_kind ks[2] = {kind, NV_IO_ANY};
	uint64_t n[2];

	if (shortw)
		*shortw = false;
	/* Acquire: pairs with the release store in nv__io_fault_hold; the
	 * wait itself is under hold_mu, so a release is never missed. */
	if (__atomic_load_n(&f->held[kind], __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&f->held[NV_IO_ANY], __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&f->hold_mu);
		f->parked++;
		pthread_cond_broadcast(&f->hold_cv); /* parked changed */
		while (__atomic_load_n(&f->held[kind], __ATOMIC_RELAXED) ||
		       __atomic_load_n(&f->held[NV_IO_ANY], __ATOMIC_RELAXED))
			pthread_cond_wait(&f->hold_cv, &f->hold_mu);
		f->parked--;
		pthread_mutex_unlock(&f->hold_mu);
	}
	/* Relaxed: test counters; arming happens while quiescent. Both are
	 * counted before either decides, so NV_IO_ANY sees every call. */
	for (int i = 0; i < 2; i++)
		n[i] =
		    __atomic_add_fetch(&f->calls[ks[i]], 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		nv_io_kind k = ks[i];
		/* Acquire: pairs with the release store of kth in arm, which
		 * publishes armed_at, err and flags. */
		uint64_t kth = __atomic_load_n(&f->kth[k], __ATOMIC_ACQUIRE);
		uint64_t nth;
		unsigned flags;
		if (kth == 0)
			continue;
		flags = f->flags[k];
		nth = n[i] - f->armed_at[k];
		if (nth < kth || (nth > kth && !(flags & NV_IO_FAULT_STICKY)))
			continue;
		__atomic_add_fetch(&f->injected, 1, __ATOMIC_RELAXED);
		if (nth == kth && kind == NV_IO_WRITE && shortw &&
		    (flags & NV_IO_FAULT_SHORT)) {
			*shortw = true;
			continue;
		}
		return -f->err[k];
	}
	return 0;
}

static void
files_lock(nv_io_fault *f)
{
	while (__atomic_exchange_n(&f->files_lock, 1, __ATOMIC_ACQUIRE))
		; /* test-only, held for a few instructions */
}

static void
files_unlock(nv_io_fault *f)
{
	__atomic_store_n(&f->files_lock, 0, __ATOMIC_RELEASE);
}

static struct nv_io_fault_file *
file_by_fd(nv_io_fault *f, int fd)
{
	for (int i = 0; i < NV_IO_FAULT_FILES; i++)
		if (f->files[i].path[0] && f->files[i].fd == fd)
			return &f->files[i];
	return NULL;
}

static struct nv_io_fault_file *
file_by_path(nv_io_fault *f, const char *path)
{
	for (int i = 0; i < NV_IO_FAULT_FILES; i++)
		if (f->files[i].path[0] && strcmp(f->files[i].path, path) == 0)
			return &f->files[i];
	return NULL;
}

static int
fault_open(const nv_io_ops *io, const char *path, int flags, unsigned mode)
{
	nv_io_fault *f = F(io);
	int r = fault_check(io, NV_IO_OPEN, NULL);
	int fd;
	if (r < 0)
		return r;
	fd = R(io)->open(R(io), path, flags, mode);
	if (fd < 0 || (flags & (O_WRONLY | O_RDWR)) == 0 ||
	    strlen(path) >= sizeof(f->files[0].path))
		return fd;
	files_lock(f);
	{
		struct nv_io_fault_file *e = file_by_path(f, path);
		if (e == NULL) {
			for (int i = 0; i < NV_IO_FAULT_FILES && !e; i++)
				if (f->files[i].path[0] == '\0')
					e = &f->files[i];
			if (e) {
				uint64_t size = 0;
				if (!(flags & O_TRUNC))
					R(io)->fsize(R(io), fd, &size);
				strcpy(e->path, path);
				e->synced = size;
			}
		} else if (flags & O_TRUNC) {
			e->synced = 0;
		}
		if (e)
			e->fd = fd;
	}
	files_unlock(f);
	return fd;
}

static int
fault_close(const nv_io_ops *io, int fd)
{
	nv_io_fault *f = F(io);
	struct nv_io_fault_file *e;
	int r = fault_check(io, NV_IO_CLOSE, NULL);
	/* The descriptor is released whatever close reports (Linux). */
	files_lock(f);
	e = file_by_fd(f, fd);
	if (e)
		e->fd = -1;
	files_unlock(f);
	R(io)->close(R(io), fd);
	return r;
}

static ssize_t
fault_pread(const nv_io_ops *io, int fd, void *buf, size_t n, uint64_t off)
{
	int r = fault_check(io, NV_IO_READ, NULL);
	return r < 0 ? r : R(io)->pread(R(io), fd, buf, n, off);
}

static ssize_t
fault_pwrite(const nv_io_ops *io, int fd, const void *buf, size_t n,
	     uint64_t off)
{
	bool shortw;
	int r = fault_check(io, NV_IO_WRITE, &shortw);
	if (r < 0)
		return r;
	if (shortw && n > 1)
		n /= 2;
	return R(io)->pwrite(R(io), fd, buf, n, off);
}

static int
fault_fdatasync(const nv_io_ops *io, int fd)
{
	nv_io_fault *f = F(io);
	int r = fault_check(io, NV_IO_SYNC, NULL);
	if (r < 0)
		return r;
	r = R(io)->fdatasync(R(io), fd);
	if (r == 0) {
		uint64_t size;
		if (R(io)->fsize(R(io), fd, &size) == 0) {
			struct nv_io_fault_file *e;
			files_lock(f);
			e = file_by_fd(f, fd);
			if (e)
				e->synced = size;
			files_unlock(f);
		}
	}
	return r;
}

static int
fault_ftruncate(const nv_io_ops *io, int fd, uint64_t len)
{
	nv_io_fault *f = F(io);
	int r = fault_check(io, NV_IO_TRUNCATE, NULL);
	if (r < 0)
		return r;
	r = R(io)->ftruncate(R(io), fd, len);
	if (r == 0) {
		struct nv_io_fault_file *e;
		files_lock(f);
		e = file_by_fd(f, fd);
		if (e && e->synced > len)
			e->synced = len;
		files_unlock(f);
	}
	return r;
}

static int
fault_fsize(const nv_io_ops *io, int fd, uint64_t *size)
{
	int r = fault_check(io, NV_IO_STAT, NULL);
	return r < 0 ? r : R(io)->fsize(R(io), fd, size);
}

static int
fault_rename(const nv_io_ops *io, const char *from, const char *to)
{
	nv_io_fault *f = F(io);
	int r = fault_check(io, NV_IO_RENAME, NULL);
	if (r < 0)
		return r;
	r = R(io)->rename(R(io), from, to);
	if (r == 0 && strlen(to) < sizeof(f->files[0].path)) {
		struct nv_io_fault_file *e, *old;
		files_lock(f);
		old = file_by_path(f, to);
		if (old)
			old->path[0] = '\0';
		e = file_by_path(f, from);
		if (e)
			strcpy(e->path, to);
		files_unlock(f);
	}
	return r;
}

static int
fault_link(const nv_io_ops *io, const char *from, const char *to)
{
	int r = fault_check(io, NV_IO_LINK, NULL);
	return r < 0 ? r : R(io)->link(R(io), from, to);
}

static int
fault_unlink(const nv_io_ops *io, const char *path)
{
	nv_io_fault *f = F(io);
	int r = fault_check(io, NV_IO_UNLINK, NULL);
	if (r < 0)
		return r;
	r = R(io)->unlink(R(io), path);
	if (r == 0) {
		struct nv_io_fault_file *e;
		files_lock(f);
		e = file_by_path(f, path);
		if (e)
			e->path[0] = '\0';
		files_unlock(f);
	}
	return r;
}

static int
fault_mkdir(const nv_io_ops *io, const char *path, unsigned mode)
{
	int r = fault_check(io, NV_IO_MKDIR, NULL);
	return r < 0 ? r : R(io)->mkdir(R(io), path, mode);
}

static int
fault_fsync_dir(const nv_io_ops *io, const char *path)
{
	int r = fault_check(io, NV_IO_SYNC, NULL);
	return r < 0 ? r : R(io)->fsync_dir(R(io), path);
}

static int
fault_list_dir(const nv_io_ops *io, const char *path, nv_io_dir_fn fn,
	       void *arg)
{
	int r = fault_check(io, NV_IO_LIST, NULL);
	return r < 0 ? r : R(io)->list_dir(R(io), path, fn, arg);
}

static int
fault_lock(const nv_io_ops *io, const char *path)
{
	int r = fault_check(io, NV_IO_LOCK, NULL);
	return r < 0 ? r : R(io)->lock(R(io), path);
}

void
nv__io_fault_init(nv_io_fault *f, const nv_io_ops *real)
{
	memset(f, 0, sizeof(*f));
	f->ops = (nv_io_ops){
	    .version = NV_IO_OPS_VERSION,
	    .name = "fault",
	    .open = fault_open,
	    .close = fault_close,
	    .pread = fault_pread,
	    .pwrite = fault_pwrite,
	    .fdatasync = fault_fdatasync,
	    .ftruncate = fault_ftruncate,
	    .fsize = fault_fsize,
	    .rename = fault_rename,
	    .link = fault_link,
	    .unlink = fault_unlink,
	    .mkdir = fault_mkdir,
	    .fsync_dir = fault_fsync_dir,
	    .list_dir = fault_list_dir,
	    .lock = fault_lock,
	};
	f->real = real ? real : &nv__io_real;
	for (int i = 0; i < NV_IO_FAULT_FILES; i++)
		f->files[i].fd = -1;
	pthread_mutex_init(&f->hold_mu, NULL);
	pthread_cond_init(&f->hold_cv, NULL);
}

void
nv__io_fault_hold(nv_io_fault *f, nv_io_kind kind, bool on)
{
	pthread_mutex_lock(&f->hold_mu);
	/* Release: pairs with the acquire load in fault_check. */
	__atomic_store_n(&f->held[kind], on ? 1 : 0, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&f->hold_cv);
	pthread_mutex_unlock(&f->hold_mu);
}

int
nv__io_fault_parked(nv_io_fault *f)
{
	int n;
	pthread_mutex_lock(&f->hold_mu);
	n = f->parked;
	pthread_mutex_unlock(&f->hold_mu);
	return n;
}

void
nv__io_fault_arm(nv_io_fault *f, nv_io_kind kind, uint64_t k, int err,
		 unsigned flags)
{
	if ((unsigned)kind >= NV_IO_KINDS)
		return;
	/* Disarm first so that a concurrent call never sees a half-made
	 * arming; the release store of kth publishes the other fields. */
	__atomic_store_n(&f->kth[kind], 0, __ATOMIC_RELEASE);
	f->armed_at[kind] = __atomic_load_n(&f->calls[kind], __ATOMIC_RELAXED);
	f->err[kind] = err;
	f->flags[kind] = flags;
	__atomic_store_n(&f->kth[kind], k, __ATOMIC_RELEASE);
}

void
nv__io_fault_disarm(nv_io_fault *f)
{
	for (int k = 0; k < NV_IO_KINDS; k++)
		__atomic_store_n(&f->kth[k], 0, __ATOMIC_RELEASE);
}

uint64_t
nv__io_fault_calls(const nv_io_fault *f, nv_io_kind kind)
{
	if ((unsigned)kind >= NV_IO_KINDS)
		return 0;
	return __atomic_load_n(&f->calls[kind], __ATOMIC_RELAXED);
}

uint64_t
nv__io_fault_injected(const nv_io_fault *f)
{
	return __atomic_load_n(&f->injected, __ATOMIC_RELAXED);
}

uint64_t
nv__io_fault_powercut(nv_io_fault *f)
{
	uint64_t dropped = 0;

	files_lock(f);
	for (int i = 0; i < NV_IO_FAULT_FILES; i++) {
		struct nv_io_fault_file *e = &f->files[i];
		uint64_t size;
		int fd;
		if (e->path[0] == '\0')
			continue;
		fd = f->real->open(f->real, e->path, O_RDWR, 0);
		if (fd < 0) {
			e->path[0] = '\0';
			continue;
		}
		if (f->real->fsize(f->real, fd, &size) == 0 &&
		    size > e->synced &&
		    f->real->ftruncate(f->real, fd, e->synced) == 0)
			dropped += size - e->synced;
		f->real->close(f->real, fd);
		e->fd = -1;
	}
	files_unlock(f);
	return dropped;
}
