/*
 * crash_store.c - kill -9 loop for the file store and the persister.
 *
 * The promise under test: a record whose submit returned and a later
 * flush returned is never lost, whatever kills the process.
 *
 * Each round forks a child that opens the store (recovering what the last
 * kill left), starts a persister, and runs two threads that drive job
 * lifecycles (ENQUEUED, STARTED, RETRY, SUCCEEDED/FAILED, some left
 * running) and schedules (ADDED, FIRED, CANCELLED) forever, calling flush
 * every few dozen events. After each flush returns, a thread writes what
 * it had submitted before the flush to a pipe (atomic writes of whole
 * entries); it announces a schedule cancel before submitting it. The
 * segments are small, so rotation and compaction run all the time, and a
 * kill lands in them too (and in the recovery at open).
 *
 * The parent SIGKILLs the child after a random delay, then reopens the
 * store and checks:
 *   - the open succeeds, quarantines nothing (a kill only tears the tail),
 *     and a second open finds nothing left to repair;
 *   - replay is in strictly increasing seq order, each job has one
 *     ENQUEUED and at most one outcome after it, and every record's bytes
 *     are the ones the child generates for it (nothing that was never
 *     submitted);
 *   - every flushed job is present exactly once, with at least its flushed
 *     attempts, and its flushed final outcome if there was one;
 *   - every flushed schedule is present unless its cancel was announced;
 *   - ids never repeat across rounds (max_ids is honoured).
 * The fsync policy rotates (batch, always, off): all of them survive a
 * process kill.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "persistence/persister.h"
#include "persistence/store.h"

#define SEG_BYTES (64u << 10)
#define COMPACT_BYTES (128u << 10)
#define MAX_ATTEMPT 3
#define RETAIN 3000 /* finished jobs kept: keeps compaction busy */

/* One pipe entry (16 bytes; writes are whole multiples, <= PIPE_BUF). */
struct ev {
	uint64_t id;
	uint32_t attempt;
	uint8_t type;
	uint8_t kind; /* 'F' flushed, 'C' cancel / 'D' final announced */
	uint8_t pad[2];
};

static nv_fsync_policy
policy_of(unsigned round)
{
	static const nv_fsync_policy p[] = {NV_FSYNC_BATCH, NV_FSYNC_ALWAYS,
					    NV_FSYNC_OFF};
	return p[round % 3];
}

static void
conf_of(nv_store_conf *c, const char *dir, unsigned round)
{
	memset(c, 0, sizeof(*c));
	c->path = dir;
	c->fsync = policy_of(round);
	c->segment_bytes = SEG_BYTES;
	c->compact_bytes = COMPACT_BYTES;
	c->retain_finished = RETAIN;
}

/* The bytes the child writes for (id, type, attempt). */
static size_t
gen_data(uint64_t id, uint8_t type, uint32_t attempt, uint8_t *out)
{
	size_t n = type == NV_REC_JOB_ENQUEUED ? id % 50 : (id + type) % 20;
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(id * 7 + type * 13 + attempt * 17 + i);
	return n;
}

static bool
is_sched(uint8_t t)
{
	return t >= NV_REC_SCHED_ADDED;
}

/* ---------------------------------------------------------------- child */

struct child {
	nv_persister *p;
	int fd;
	uint64_t next_job, next_sched; /* atomic */
};

struct cthread {
	struct child *c;
	uint64_t rng;
	struct ev pending[256];
	int npending;
};

static void
report(struct cthread *t, const struct ev *e, int n)
{
	/* One write of at most 256 entries = 4096 bytes = PIPE_BUF: atomic,
	 * so a kill never leaves half an entry in the pipe. */
	if (n > 0 &&
	    write(t->c->fd, e, (size_t)n * sizeof(*e)) != (ssize_t)(n * 16))
		_exit(5);
}

static void
submit(struct cthread *t, uint8_t type, uint64_t id, uint32_t attempt)
{
	uint8_t buf[64];
	nv_rec r = {
	    .id = id, .type = type, .attempt = attempt, .time_ms = (int64_t)id};
	r.data_len = (uint32_t)gen_data(id, type, attempt, buf);
	r.data = r.data_len ? buf : NULL;
	if (type == NV_REC_JOB_ENQUEUED || type == NV_REC_SCHED_ADDED) {
		r.task = "crash.task";
		r.task_len = 10;
	}
	if (nv__persister_submit(t->c->p, &r, NULL) != 0)
		_exit(6);
	t->pending[t->npending++] = (struct ev){
	    .id = id, .attempt = attempt, .type = type, .kind = 'F'};
	if (t->npending == 256) { /* flush before the buffer overflows */
		if (nv__persister_flush(t->c->p, -1) != 0)
			_exit(7);
		report(t, t->pending, t->npending);
		t->npending = 0;
	}
}

static void *
child_thread(void *arg)
{
	struct cthread *t = arg;
	struct child *c = t->c;
	uint64_t job[8] = {0}, sched[4] = {0};
	uint32_t att[8] = {0};
	bool running[8] = {false};

	for (uint64_t step = 1;; step++) {
		unsigned a = (unsigned)(nv_test_rand(&t->rng) % 100);
		int j = (int)(nv_test_rand(&t->rng) % 8);
		if (a < 35) {
			if (job[j] == 0) {
				job[j] = __atomic_add_fetch(&c->next_job, 1,
							    __ATOMIC_RELAXED);
				att[j] = 0;
				running[j] = false;
				submit(t, NV_REC_JOB_ENQUEUED, job[j], 0);
			} else if (!running[j]) {
				submit(t, NV_REC_JOB_STARTED, job[j], ++att[j]);
				running[j] = true;
			} else if (att[j] < MAX_ATTEMPT && nv_test_rand(&t->rng) % 3 == 0) {
				submit(t, NV_REC_JOB_RETRY, job[j], att[j]);
				running[j] = false;
			} else {
				/* Announced first: retention may drop it. */
				struct ev e = {.id = job[j], .kind = 'D'};
				report(t, &e, 1);
				submit(t,
				       nv_test_rand(&t->rng) % 4 ? NV_REC_JOB_SUCCEEDED
						   : NV_REC_JOB_FAILED,
				       job[j], att[j]);
				job[j] = 0; /* some jobs are left running */
			}
		} else if (a < 40) {
			job[j] = 0; /* abandon it: "running at the crash" */
		} else {
			int k = j % 4;
			if (sched[k] == 0) {
				sched[k] = __atomic_add_fetch(&c->next_sched, 1,
							      __ATOMIC_RELAXED);
				submit(t, NV_REC_SCHED_ADDED, sched[k], 0);
			} else if (a < 97) {
				submit(t, NV_REC_SCHED_FIRED, sched[k], 0);
			} else {
				struct ev e = {.id = sched[k],
					       .type = NV_REC_SCHED_CANCELLED,
					       .kind = 'C'};
				report(t, &e, 1); /* announce, then do */
				submit(t, NV_REC_SCHED_CANCELLED, sched[k], 0);
				sched[k] = 0;
			}
		}
		if (step % 40 == 0) {
			if (nv__persister_flush(c->p, -1) != 0)
				_exit(7);
			report(t, t->pending, t->npending);
			t->npending = 0;
		}
	}
	return NULL;
}

static void
run_child(const char *dir, unsigned round, int fd)
{
	nv_store_conf conf;
	nv_persister_conf pc = {.interval_ms = 2, .max_batch = 512};
	struct child c = {.fd = fd};
	struct cthread t[2];
	pthread_t th[2];
	nv_store *s;

	nv__log_set_level(NV__LOG_ERROR);
	conf_of(&conf, dir, round);
	pc.fsync = conf.fsync;
	if (nv__file_store_ops.open(&s, &conf) != 0)
		_exit(3);
	s->ops->max_ids(s, &c.next_job, &c.next_sched);
	if (nv__persister_create(&c.p, s, &pc) != 0 ||
	    nv__persister_start(c.p) != 0)
		_exit(4);
	for (int i = 0; i < 2; i++) {
		t[i] = (struct cthread){.c = &c,
					.rng = 0x1234567ull * (round + 1) +
					       (uint64_t)i * 977 + 1};
		pthread_create(&th[i], NULL, child_thread, &t[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	_exit(0);
}

/* ---------------------------------------------------------------- parent */

struct jinfo {		 /* what the parent knows about a job or schedule id */
	uint8_t enq;	 /* ENQUEUED (or ADDED) flushed */
	uint8_t final;	 /* flushed final type, 0 if none */
	uint8_t max_att; /* highest flushed attempt */
	uint8_t retry_att; /* highest flushed RETRY attempt */
	uint8_t cancel;	   /* cancel announced (schedules) */
	uint8_t seen_enq;  /* replay: ENQUEUED/ADDED seen */
	uint8_t seen_out;  /* replay: outcome/FIRED seen */
	uint8_t out_type;
};

struct model {
	struct jinfo *job, *sched;
	size_t njob, nsched;
	uint64_t flushed, problems;
};

static struct jinfo *
info(struct jinfo **v, size_t *n, uint64_t id)
{
	if (id >= *n) {
		size_t m = *n ? *n : 1024;
		while (m <= id)
			m *= 2;
		*v = realloc(*v, m * sizeof(**v));
		assert_non_null(*v);
		memset(*v + *n, 0, (m - *n) * sizeof(**v));
		*n = m;
	}
	return &(*v)[id];
}

static void
problem(struct model *m, const char *what, uint64_t id)
{
	if (m->problems++ < 20)
		print_error("crash check: %s (id %llu)\n", what,
			    (unsigned long long)id);
}

static void
absorb(struct model *m, const struct ev *e)
{
	struct jinfo *j = is_sched(e->type) || e->kind == 'C'
			      ? info(&m->sched, &m->nsched, e->id)
			      : info(&m->job, &m->njob, e->id);
	if (e->kind == 'C' || e->kind == 'D') {
		j->cancel = 1;
		return;
	}
	m->flushed++;
	switch (e->type) {
	case NV_REC_JOB_ENQUEUED:
	case NV_REC_SCHED_ADDED:
		if (j->enq)
			problem(m, "id handed out twice", e->id);
		j->enq = 1;
		break;
	case NV_REC_JOB_SUCCEEDED:
	case NV_REC_JOB_FAILED:
		j->final = e->type;
		break;
	case NV_REC_JOB_RETRY:
		if (e->attempt > j->retry_att)
			j->retry_att = (uint8_t)e->attempt;
		break;
	default:
		break;
	}
	if (e->attempt > j->max_att)
		j->max_att = (uint8_t)e->attempt;
}

struct vstate {
	struct model *m;
	uint64_t last_seq, records, finished;
};

static int
verify_cb(const nv_rec *r, void *arg)
{
	struct vstate *v = arg;
	struct model *m = v->m;
	uint8_t buf[64];
	size_t n;
	uint32_t gen_att = r->type == NV_REC_JOB_ENQUEUED ? 0 : r->attempt;
	struct jinfo *j = is_sched(r->type) ? info(&m->sched, &m->nsched, r->id)
					    : info(&m->job, &m->njob, r->id);

	v->records++;
	if (r->seq <= v->last_seq)
		problem(m, "replay out of seq order", r->id);
	v->last_seq = r->seq;
	/* Content: exactly what the child generates for this record (an
	 * ENQUEUED's attempt is folded, its bytes were made with 0). */
	n = gen_data(r->id, r->type, gen_att, buf);
	if (r->data_len != n || (n && memcmp(r->data, buf, n) != 0) ||
	    r->time_ms != (int64_t)r->id)
		problem(m, "record bytes were never submitted", r->id);
	if (r->type == NV_REC_JOB_ENQUEUED || r->type == NV_REC_SCHED_ADDED) {
		if (j->seen_enq)
			problem(m, "id present twice", r->id);
		j->seen_enq = 1;
		if (r->attempt < j->max_att || r->attempt > MAX_ATTEMPT)
			problem(m, "attempts went backwards", r->id);
		return 0;
	}
	if (!j->seen_enq)
		problem(m, "outcome without its job", r->id);
	if (j->seen_out)
		problem(m, "two outcomes", r->id);
	j->seen_out = 1;
	j->out_type = r->type;
	if (r->type == NV_REC_JOB_SUCCEEDED || r->type == NV_REC_JOB_FAILED)
		v->finished++;
	return 0;
}

static void
verify(struct model *m, const char *dir, unsigned round, uint64_t *cut)
{
	nv_store_conf conf;
	nv_store *s;
	nv_store_stats st;
	struct vstate v = {.m = m};
	uint64_t maxj, maxs;

	for (size_t i = 0; i < m->njob; i++)
		m->job[i].seen_enq = m->job[i].seen_out = 0;
	for (size_t i = 0; i < m->nsched; i++)
		m->sched[i].seen_enq = m->sched[i].seen_out = 0;
	conf_of(&conf, dir, round);
	assert_int_equal(nv__file_store_ops.open(&s, &conf), 0);
	s->ops->stats(s, &st);
	*cut += st.truncated_bytes;
	if (st.quarantined != 0)
		problem(m, "a kill left corruption (quarantined)", 0);
	assert_int_equal(s->ops->replay(s, verify_cb, &v), 0);
	s->ops->max_ids(s, &maxj, &maxs);
	for (size_t i = 1; i < m->njob; i++) {
		struct jinfo *j = &m->job[i];
		if (j->seen_enq && i > maxj)
			problem(m, "job above max_ids", i);
		if (!j->enq)
			continue;
		/* Retention drops finished jobs, oldest first, and only when
		 * RETAIN finished jobs remain. */
		if (!j->seen_enq && (!j->cancel || v.finished != RETAIN))
			problem(m, "flushed job lost", i);
		if (!j->seen_enq)
			continue;
		if (j->final && j->out_type != j->final)
			problem(m, "flushed outcome lost", i);
		if (!j->final && j->retry_att && !j->seen_out)
			problem(m, "flushed retry lost", i);
	}
	for (size_t i = 1; i < m->nsched; i++) {
		struct jinfo *j = &m->sched[i];
		if (j->enq && !j->seen_enq && !j->cancel)
			problem(m, "flushed schedule lost", i);
		if (j->seen_enq && i > maxs)
			problem(m, "schedule above max_ids", i);
	}
	s->ops->close(s);
	/* Repaired for good: the next open has nothing to do. */
	assert_int_equal(nv__file_store_ops.open(&s, &conf), 0);
	s->ops->stats(s, &st);
	if (st.truncated_bytes != 0 || st.quarantined != 0)
		problem(m, "second open still repaired something", 0);
	s->ops->close(s);
}

/* Lowest segment number in dir: it rises only when a compaction ran. */
static uint64_t
min_segment(const char *dir, unsigned *count)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t min = UINT64_MAX;
	*count = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 24 || strncmp(de->d_name, "seg-", 4))
			continue;
		uint64_t v = strtoull(de->d_name + 4, NULL, 16);
		if (v < min)
			min = v;
		(*count)++;
	}
	closedir(d);
	return min;
}

static void
test_crash_kill9_loop(void **state)
{
	const char *env = getenv("NV_CRASH_KILLS");
	unsigned kills = env ? (unsigned)strtoul(env, NULL, 10) : 20;
	struct model m = {0};
	uint64_t seed = (uint64_t)nv__mono_ns(), cut = 0, bytes = 0;
	uint64_t min_seg = 1, compacted = 0;
	unsigned nseg = 0;
	char dir[256];

	if (kills == 0)
		kills = 20;
	nv_test_tmpdir(dir, sizeof(dir), "crash");
	print_message("crash: %u kills, seed %llu, store %s\n", kills,
		      (unsigned long long)seed, dir);
	srand((unsigned)seed);
	nv__log_set_level(NV__LOG_ERROR);
	for (unsigned round = 0; round < kills; round++) {
		int pfd[2], status;
		pid_t pid;
		uint64_t deadline;
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0;

		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			run_child(dir, round, pfd[1]);
		}
		close(pfd[1]);
		deadline = nv__mono_ms() + 5 + (uint64_t)(rand() % 200);
		for (;;) {
			struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
			uint64_t now = nv__mono_ms();
			ssize_t n;
			if (now >= deadline) {
				kill(pid, SIGKILL);
				deadline = UINT64_MAX;
			}
			if (poll(&pf, 1,
				 deadline == UINT64_MAX
				     ? 1000
				     : (int)(deadline - now)) <= 0)
				continue;
			if (cap - len < 65536) {
				cap = cap ? cap * 2 : 1 << 20;
				buf = realloc(buf, cap);
				assert_non_null(buf);
			}
			n = read(pfd[0], buf + len, cap - len);
			if (n == 0)
				break; /* the child is gone */
			if (n > 0)
				len += (size_t)n;
		}
		close(pfd[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("child of round %u ended by itself (status "
				 "%d): it could not open or write the store",
				 round, status);
		assert_int_equal(len % sizeof(struct ev), 0);
		for (size_t i = 0; i < len; i += sizeof(struct ev))
			absorb(&m, (const struct ev *)(buf + i));
		bytes += len;
		free(buf);
		verify(&m, dir, round, &cut);
		if (min_segment(dir, &nseg) > min_seg) {
			compacted++;
			min_seg = min_segment(dir, &nseg);
		}
		if (m.problems)
			fail_msg("round %u (%s): %llu problems", round,
				 policy_of(round) == NV_FSYNC_OFF ? "off"
				 : policy_of(round) == NV_FSYNC_ALWAYS
				     ? "always"
				     : "batch",
				 (unsigned long long)m.problems);
	}
	print_message("crash: %u kills survived; %llu flushed records "
		      "checked, %llu torn bytes cut, %llu rounds with a "
		      "compaction, %u segments at the end\n",
		      kills, (unsigned long long)m.flushed,
		      (unsigned long long)cut, (unsigned long long)compacted,
		      nseg);
	free(m.job);
	free(m.sched);
	nv_test_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crash_kill9_loop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
