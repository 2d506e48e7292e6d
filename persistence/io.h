/*
 * persistence/io.h - the thin I/O layer under the file store.
 *
 * The file store touches the file system only through a struct nv_io_ops,
 * a versioned method table in the manner of sqlite3_vfs: every method
 * receives the table itself first, so an implementation can extend it
 * (struct nv_io_fault below begins with one). Methods mirror the POSIX
 * calls and return what they return, except that a failure is -errno (the
 * caller maps it); EINTR is retried inside the real implementation.
 *
 * Two implementations:
 *  - nv__io_real: the system calls.
 *  - nv_io_fault: wraps another table and, for tests, fails the k-th call
 *    of a kind (or of any kind) with a chosen errno, makes a write short,
 *    keeps failing afterwards ("sticky", like a full disk), holds the
 *    calls of a kind until released (a stalled disk), and can simulate a
 *    power cut by dropping what was written to a file since its last
 *    fdatasync.
 *
 * Thread-safety: the real table is stateless. A fault table may be used
 * from several threads (its counters are atomic) and armed or disarmed
 * while they use it; powercut needs the store quiescent (closed or
 * abandoned).
 */
#ifndef NV_PERSIST_IO_H
#define NV_PERSIST_IO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define NV_IO_OPS_VERSION 1

typedef struct nv_io_ops nv_io_ops;

/* Called once per directory entry (not "." or ".."); non-zero stops. */
typedef int (*nv_io_dir_fn)(const char *name, void *arg);

struct nv_io_ops {
	unsigned version; /* NV_IO_OPS_VERSION; methods below are v1 */
	const char *name;
	/* Returns a descriptor or -errno. */
	int (*open)(const nv_io_ops *io, const char *path, int flags,
		    unsigned mode);
	int (*close)(const nv_io_ops *io, int fd);
	/* Bytes transferred (may be short) or -errno. */
	ssize_t (*pread)(const nv_io_ops *io, int fd, void *buf, size_t n,
			 uint64_t off);
	ssize_t (*pwrite)(const nv_io_ops *io, int fd, const void *buf,
			  size_t n, uint64_t off);
	int (*fdatasync)(const nv_io_ops *io, int fd);
	int (*ftruncate)(const nv_io_ops *io, int fd, uint64_t len);
	int (*fsize)(const nv_io_ops *io, int fd, uint64_t *size);
	int (*rename)(const nv_io_ops *io, const char *from, const char *to);
	int (*link)(const nv_io_ops *io, const char *from, const char *to);
	int (*unlink)(const nv_io_ops *io, const char *path);
	int (*mkdir)(const nv_io_ops *io, const char *path, unsigned mode);
	/* fsync of a directory, making creations/renames/unlinks durable. */
	int (*fsync_dir)(const nv_io_ops *io, const char *path);
	int (*list_dir)(const nv_io_ops *io, const char *path, nv_io_dir_fn fn,
			void *arg);
	/* Opens path (created if needed) and takes an exclusive advisory
	 * lock without waiting; returns the descriptor holding the lock
	 * (closed to release it), -EWOULDBLOCK when another holds it. */
	int (*lock)(const nv_io_ops *io, const char *path);
};

extern const nv_io_ops nv__io_real;

/* ---------------------------------------------------------------- faults */

typedef enum nv_io_kind {
	NV_IO_OPEN,
	NV_IO_CLOSE,
	NV_IO_READ,
	NV_IO_WRITE,
	NV_IO_SYNC, /* fdatasync and fsync_dir */
	NV_IO_TRUNCATE,
	NV_IO_STAT,
	NV_IO_RENAME,
	NV_IO_LINK,
	NV_IO_UNLINK,
	NV_IO_MKDIR,
	NV_IO_LIST,
	NV_IO_LOCK,
	NV_IO_ANY, /* arm: the k-th call of any kind; counts every call */
	NV_IO_KINDS
} nv_io_kind;

#define NV_IO_FAULT_SHORT 0x1u	/* a write transfers half, returns short */
#define NV_IO_FAULT_STICKY 0x2u /* every later call of the kind fails too */

#define NV_IO_FAULT_FILES 64

typedef struct nv_io_fault {
	nv_io_ops ops; /* first member: pass &f->ops as the store's io */
	const nv_io_ops *real;
	/* Private below. */
	uint64_t calls[NV_IO_KINDS]; /* atomic: calls since init */
	uint64_t armed_at[NV_IO_KINDS];
	uint64_t kth[NV_IO_KINDS]; /* 0 = not armed */
	int err[NV_IO_KINDS];
	unsigned flags[NV_IO_KINDS];
	uint64_t injected;	  /* atomic: faults injected */
	struct nv_io_fault_file { /* files written, for powercut */
		int fd;		  /* -1 when closed */
		uint64_t synced;  /* size at the last fdatasync */
		char path[240];
	} files[NV_IO_FAULT_FILES];
	int files_lock;	       /* spin flag guarding files[] */
	int held[NV_IO_KINDS]; /* atomic: calls of the kind wait (hold) */
	int parked;	       /* calls waiting now; under hold_mu */
	pthread_mutex_t hold_mu;
	pthread_cond_t hold_cv;
} nv_io_fault;

/* Sets f up as a pass-through to real (NULL = nv__io_real). */
void nv__io_fault_init(nv_io_fault *f, const nv_io_ops *real);

/* Fails the k-th call (k >= 1, counted from now) of kind with -err; flags
 * as above. Replaces an earlier arming of that kind. */
void nv__io_fault_arm(nv_io_fault *f, nv_io_kind kind, uint64_t k, int err,
		      unsigned flags);

/* Holds (on) or releases (off) the calls of kind: while held, a call of
 * that kind (NV_IO_ANY: of every kind) blocks before it does anything,
 * like a disk that stopped answering; releasing lets them go on. */
void nv__io_fault_hold(nv_io_fault *f, nv_io_kind kind, bool on);

/* Calls blocked by a hold right now. */
int nv__io_fault_parked(nv_io_fault *f);

/* Removes every arming (calls keep counting). */
void nv__io_fault_disarm(nv_io_fault *f);

/* Calls of kind made through f since init. */
uint64_t nv__io_fault_calls(const nv_io_fault *f, nv_io_kind kind);

/* Faults injected since init. */
uint64_t nv__io_fault_injected(const nv_io_fault *f);

/* Simulates a power cut: every file written through f loses the bytes
 * written after its last fdatasync (it is truncated to that size, and
 * its descriptor, if still open, is closed). Call with the store closed
 * or abandoned; returns the number of bytes dropped. Directory operations
 * are not rolled back (they are treated as durable). */
uint64_t nv__io_fault_powercut(nv_io_fault *f);

#endif
