/*
 * crash_engine.c - kill -9 loop for the whole engine with a persistent
 * store ("file" and "sqlite").
 *
 * The promise under test (at-least-once): a job dispatched and then
 * covered by a successful nv_flush runs to completion at least once, even
 * if the process is killed at any moment, any number of times; no job
 * runs that was never dispatched; a job runs again only when a kill
 * caught it before its outcome was durable; the store opens after every
 * kill.
 *
 * Each round forks a child that opens an engine on the data directory
 * (recovering what the previous kill left), starts it, and dispatches
 * jobs in batches of random size, calling nv_flush after each batch.
 * Before a batch it announces the dispatch tokens (round, seq) it is
 * about to use; after the flush it reports (round, seq, job id) of each
 * job of the batch. The pipe entries are written whole (<= PIPE_BUF), so
 * a kill never leaves half of one. The task appends one line
 * "id attempt round seq run_round ok" to a run log opened O_APPEND |
 * O_DSYNC (one write per line) and fails the first attempt of every
 * seventh job (retries with a 5 ms delay go through the timer wheel).
 * The fsync policy rotates per round (batch, always, off).
 *
 * The parent SIGKILLs the child after a random delay (it may land in the
 * recovery at open, a dispatch, a flush, a compaction...), reopens the
 * store directly to check it opens without quarantining anything, and
 * starts the next round. At the end a drain child runs sessions (open,
 * start, stop with a long grace, close) until a clean one (stop returned
 * 0) recovers nothing; then the parent reads the run log and checks:
 *   - every run carries an announced token (nothing never dispatched);
 *   - a token and a job id always go together: never two tokens for
 *     one id within a process, nor two durable ones (flushed, or found
 *     in the store, which the parent replays after every kill) across
 *     restarts. One exception is counted, not failed: a job that ran but
 *     was killed before its ENQUEUED reached the store leaves no trace
 *     in it, and since ids continue after the largest stored id, its id
 *     can be handed out again (rare: the queue is usually deep);
 *   - every flushed job has a successful run (lost = 0);
 *   - no job succeeds twice in one process, nor runs again after a
 *     success in a clean session, nor after a success whose SUCCEEDED
 *     record preceded an nv_flush that returned (an observer appends
 *     "D id" once the record is submitted; the child appends "B" and "E"
 *     around each nv_flush): so a duplicate was in flight at a kill;
 *   - the drain converges (a job that keeps coming back fails it);
 * and reports the duplicates (jobs that succeeded in more than one
 * process).
 *
 * NV_CRASH_KILLS sets the kills per store (default 20).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "engine/engine_int.h"
#include "persistence/store.h"

#define MAGIC 0x6e76637261736865ull /* "nvcrashe" */
#define DRAIN_SESSIONS 50

/* One pipe entry. 'I': tokens seq .. id-1 of round announced; 'F': job
 * `id` with token (round, seq) flushed. */
struct ent {
	uint8_t type;
	uint8_t pad[3];
	uint32_t round;
	uint64_t seq;
	uint64_t id;
};
#define ENTS_PER_WRITE (4096 / sizeof(struct ent))

struct jargs {
	uint64_t magic;
	uint32_t round;
	uint32_t pad;
	uint64_t seq;
};

static nv_fsync_policy
policy_of(unsigned round)
{
	static const nv_fsync_policy p[] = {NV_FSYNC_BATCH, NV_FSYNC_ALWAYS,
					    NV_FSYNC_OFF};
	return p[round % 3];
}

/* ---------------------------------------------------------------- child */

static int run_fd = -1;
static unsigned run_round;

static int
crash_task(nv_ctx *c, const void *args, size_t len)
{
	struct jargs a;
	char line[128];
	int n;
	bool ok;

	if (len != sizeof(a))
		_exit(20);
	memcpy(&a, args, sizeof(a));
	if (a.magic != MAGIC)
		_exit(21);
	ok = !(a.seq % 7 == 0 && nv_ctx_attempt(c) == 1);
	n = snprintf(line, sizeof(line), "%llu %u %u %llu %u %d\n",
		     (unsigned long long)nv_ctx_job_id(c), nv_ctx_attempt(c),
		     a.round, (unsigned long long)a.seq, run_round, ok);
	/* One O_APPEND write: the line is whole or absent after a kill. */
	if (write(run_fd, line, (size_t)n) != n)
		_exit(22);
	return ok ? 0 : 1;
}

/* After the SUCCEEDED record was submitted (emit follows persist). */
static void
on_event(const nv_event *ev, void *arg)
{
	char line[64];
	int n;
	(void)arg;
	if (ev->type != NV_EV_SUCCEEDED)
		return;
	n = snprintf(line, sizeof(line), "D %llu %u\n",
		     (unsigned long long)ev->id, run_round);
	if (write(run_fd, line, (size_t)n) != n)
		_exit(23);
}

static void
mark(char what, uint64_t k)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%c %llu %u\n", what,
			 (unsigned long long)k, run_round);
	if (write(run_fd, line, (size_t)n) != n)
		_exit(24);
}

static nv_engine *
child_open(const char *kind, const char *dir, unsigned round)
{
	nv_engine *e;
	nv_config cfg;
	nv_task_opts opts = {.retries = 2, .retry_delay_ms = 5};
	char data[300], runs[300];

	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(runs, sizeof(runs), "%s/runs.log", dir);
	if (run_fd < 0 &&
	    (run_fd =
		 open(runs, O_WRONLY | O_APPEND | O_CREAT | O_DSYNC, 0644)) < 0)
		_exit(30);
	run_round = round;
	nv_config_init(&cfg);
	cfg.queue_backend = cfg.result_backend = kind;
	cfg.data_dir = data;
	cfg.workers = 2;
	cfg.queue_capacity = 1024;
	cfg.enqueue_timeout_ms = 50;
	cfg.fsync = policy_of(round);
	cfg.log_level = NV_LOG_ERROR;
	if (nv_engine_open(&e, &cfg) != 0)
		_exit(31);
	if (nv_task_register(e, "crash.job", crash_task, &opts, 0) != 0 ||
	    nv_engine_observe(e, on_event, NULL) != 0)
		_exit(32);
	if (nv_engine_start(e) != 0)
		_exit(33);
	return e;
}

static void
send_ents(int fd, const struct ent *v, size_t n)
{
	while (n > 0) {
		size_t k = n < ENTS_PER_WRITE ? n : ENTS_PER_WRITE;
		if (write(fd, v, k * sizeof(*v)) != (ssize_t)(k * sizeof(*v)))
			_exit(34);
		v += k;
		n -= k;
	}
}

static void
child_work(const char *kind, const char *dir, unsigned round, int fd)
{
	static struct ent flushed[256];
	nv_engine *e = child_open(kind, dir, round);
	uint64_t seq = 0, rng = 0x9e3779b97f4a7c15ull * (round + 1);

	for (;;) {
		size_t batch = 1 + nv_test_rand(&rng) % 200;
		struct ent intent = {
		    .type = 'I', .round = round, .seq = seq, .id = seq + batch};
		send_ents(fd, &intent, 1); /* announced before dispatch */
		for (size_t i = 0; i < batch; i++, seq++) {
			struct jargs a = {
			    .magic = MAGIC, .round = round, .seq = seq};
			nv_job_id id;
			int rc;
			while ((rc = nv_delay(e, "crash.job", &a, sizeof(a),
					      &id)) == NV_EFULL)
				;
			if (rc != 0)
				_exit(35);
			flushed[i] = (struct ent){
			    .type = 'F', .round = round, .seq = seq, .id = id};
		}
		mark('B', seq);
		if (nv_flush(e, -1) != 0)
			_exit(36);
		mark('E', seq);
		send_ents(fd, flushed, batch);
	}
}

/* Sessions until a clean one recovers nothing. A session is clean when
 * stop returned 0 (every outcome flushed); it says so with a "C" line.
 * stop may return NV_ETIMEDOUT when a delayed retry fires while it joins
 * the workers (the retry then runs after the persister stopped, and the
 * job runs again in the next session): such a session is not clean. */
static void
child_drain(const char *kind, const char *dir, unsigned round)
{
	for (unsigned s = 0; s < DRAIN_SESSIONS; s++) {
		nv_engine *e = child_open(kind, dir, round + s);
		size_t recovered = e->recovered_jobs;
		int rc = nv_engine_stop(e, 60000);
		if (rc == 0)
			mark('C', 0);
		else if (rc != NV_ETIMEDOUT)
			_exit(40);
		else
			fprintf(stderr,
				"crash_engine: drain session %u: stop "
				"returned %s\n",
				s, nv_strerror(rc));
		nv_engine_close(e);
		if (recovered == 0 && rc == 0)
			_exit(0);
	}
	_exit(41);
}

/* ---------------------------------------------------------------- parent */

struct jrec {
	uint64_t id;
	uint32_t round; /* token of the id (0 when unknown: seq1 == 0) */
	uint64_t seq1;	/* token seq + 1 */
	bool durable;	/* the binding was flushed or seen in the store */
	bool flushed;
	uint32_t succ;	    /* successful runs */
	uint32_t last_succ; /* run round of the last success + 1 */
	bool clean_done;    /* succeeded in a clean session */
	bool durable_done;  /* its SUCCEEDED record preceded a flush that
			       returned: it must never run again */
};

struct model {
	uint64_t *intent; /* per round: tokens below are announced */
	size_t nround;
	struct jrec *job; /* dense, in order of first sight */
	size_t njob, capjob;
	uint64_t *hkey;   /* id -> index + 1 (open addressing); ids are
			     boot << 40 | n, so not usable as indices */
	size_t *hval, hcap;
	uint64_t flushed, runs, never_dispatched, token_mismatch;
	uint64_t twice_in_process, after_clean, lost, dup_jobs, dup_runs;
	uint64_t torn_lines, after_durable, durable_marked;
	uint64_t reused_ids; /* id of a job never durable, handed out again */
	uint64_t stored_jobs;
};

static size_t
hslot(const struct model *m, uint64_t id)
{
	uint64_t h = id * 0x9e3779b97f4a7c15ULL;
	size_t k = (size_t)(h >> 20) & (m->hcap - 1);
	while (m->hkey[k] != 0 && m->hkey[k] != id)
		k = (k + 1) & (m->hcap - 1);
	return k;
}

static struct jrec *
jrec_of(struct model *m, uint64_t id)
{
	if ((m->njob + 1) * 2 > m->hcap) {
		size_t ncap = m->hcap ? m->hcap * 2 : 8192;
		uint64_t *ok = m->hkey;
		size_t *ov = m->hval, ocap = m->hcap;
		m->hkey = calloc(ncap, sizeof(*m->hkey));
		m->hval = calloc(ncap, sizeof(*m->hval));
		assert_non_null(m->hkey);
		assert_non_null(m->hval);
		m->hcap = ncap;
		for (size_t i = 0; i < ocap; i++)
			if (ok[i] != 0) {
				size_t k = hslot(m, ok[i]);
				m->hkey[k] = ok[i];
				m->hval[k] = ov[i];
			}
		free(ok);
		free(ov);
	}
	size_t k = hslot(m, id);
	if (m->hkey[k] == id)
		return &m->job[m->hval[k]];
	if (m->njob == m->capjob) {
		m->capjob = m->capjob ? m->capjob * 2 : 4096;
		m->job = realloc(m->job, m->capjob * sizeof(*m->job));
		assert_non_null(m->job);
	}
	memset(&m->job[m->njob], 0, sizeof(*m->job));
	m->job[m->njob].id = id;
	m->hkey[k] = id;
	m->hval[k] = m->njob;
	return &m->job[m->njob++];
}

/* The token (round, seq) belongs to job id. Returns 1 when consistent,
 * 0 on a contradiction (two tokens of one process, or two durable ones,
 * share the id), -1 when the id was handed out again after a kill lost
 * the first job before anything of it was durable (its ENQUEUED never
 * reached the store: ids continue after the largest stored one, so such
 * an id can come back; counted, not a failure). */
static int
bind_token(struct model *m, uint64_t id, uint32_t round, uint64_t seq,
	   bool durable)
{
	struct jrec *j = jrec_of(m, id);
	if (j->seq1 == 0 || (j->round == round && j->seq1 == seq + 1)) {
		j->round = round;
		j->seq1 = seq + 1;
		j->durable |= durable;
		return 1;
	}
	if (j->round != round && !(durable && j->durable)) {
		if (m->reused_ids++ < 5)
			print_message(
			    "note: job id %llu of never-durable token "
			    "(%u, %llu) reused for (%u, %llu)\n",
			    (unsigned long long)id, durable ? j->round : round,
			    (unsigned long long)(durable ? j->seq1 - 1 : seq),
			    durable ? round : j->round,
			    (unsigned long long)(durable ? seq : j->seq1 - 1));
		if (durable) { /* the durable owner keeps the id */
			j->round = round;
			j->seq1 = seq + 1;
			j->durable = true;
		}
		return -1;
	}
	print_error("job id %llu carries token (%u, %llu) and (%u, %llu)\n",
		    (unsigned long long)id, j->round,
		    (unsigned long long)(j->seq1 - 1), round,
		    (unsigned long long)seq);
	return 0;
}

static void
absorb(struct model *m, const struct ent *e)
{
	if (e->round >= m->nround) {
		size_t n = m->nround ? m->nround * 2 : 64;
		while (n <= e->round)
			n *= 2;
		m->intent = realloc(m->intent, n * sizeof(*m->intent));
		assert_non_null(m->intent);
		memset(m->intent + m->nround, 0,
		       (n - m->nround) * sizeof(*m->intent));
		m->nround = n;
	}
	if (e->type == 'I') {
		assert_int_equal(e->seq, m->intent[e->round]);
		m->intent[e->round] = e->id;
		return;
	}
	assert_int_equal(e->type, 'F');
	m->flushed++;
	if (bind_token(m, e->id, e->round, e->seq, true) == 0)
		m->token_mismatch++;
	jrec_of(m, e->id)->flushed = true;
}

/* Markers of one process: "D id rr" (SUCCEEDED submitted), "B k rr"
 * (nv_flush called), "E k rr" (it returned). D lines before a B whose E
 * follows in the same process are durable. */
struct marks {
	uint64_t *pending; /* ids of D lines not yet known durable */
	size_t n, cap, at_b;
	unsigned rround;
};

static void
marker(struct model *m, struct marks *k, const char *line)
{
	unsigned long long v;
	unsigned rr;
	char c;
	if (sscanf(line, "%c %llu %u", &c, &v, &rr) != 3) {
		m->torn_lines++;
		return;
	}
	if (rr != k->rround) { /* a new process: its marks start afresh */
		k->n = k->at_b = 0;
		k->rround = rr;
	}
	if (c == 'D') {
		if (k->n == k->cap) {
			k->cap = k->cap ? k->cap * 2 : 1024;
			k->pending =
			    realloc(k->pending, k->cap * sizeof(*k->pending));
			assert_non_null(k->pending);
		}
		k->pending[k->n++] = v;
	} else if (c == 'B') {
		k->at_b = k->n;
	} else if (c == 'C') {
		/* clean session: used by check_runs */
	} else if (c == 'E') {
		for (size_t i = 0; i < k->at_b; i++) {
			jrec_of(m, k->pending[i])->durable_done = true;
			m->durable_marked++;
		}
		if (k->n > k->at_b)
			memmove(k->pending, k->pending + k->at_b,
				(k->n - k->at_b) * sizeof(*k->pending));
		k->n -= k->at_b;
		k->at_b = 0;
	} else {
		m->torn_lines++;
	}
}

static void
check_runs(struct model *m, const char *dir, unsigned kills)
{
	char path[300], line[256];
	struct marks k = {.rround = UINT32_MAX};
	bool clean[DRAIN_SESSIONS] = {false};
	FILE *f;

	snprintf(path, sizeof(path), "%s/runs.log", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	/* First pass: the clean sessions ("C 0 rround"). */
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long z;
		unsigned rr;
		if (sscanf(line, "C %llu %u", &z, &rr) == 2 && rr >= kills &&
		    rr - kills < DRAIN_SESSIONS)
			clean[rr - kills] = true;
	}
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long id, seq;
		unsigned att, round, rround;
		int ok;
		if (line[strlen(line) - 1] != '\n') {
			m->torn_lines++;
			continue;
		}
		if (line[0] >= 'A' && line[0] <= 'Z') {
			marker(m, &k, line);
			continue;
		}
		if (sscanf(line, "%llu %u %u %llu %u %d", &id, &att, &round,
			   &seq, &rround, &ok) != 6) {
			m->torn_lines++;
			continue;
		}
		m->runs++;
		if (round >= m->nround || seq >= m->intent[round])
			m->never_dispatched++;
		int b = bind_token(m, id, round, seq, false);
		if (b < 0)
			continue; /* a lost job's run under a reused id */
		if (b == 0)
			m->token_mismatch++;
		struct jrec *j = jrec_of(m, id);
		if (j->clean_done)
			m->after_clean++;
		if (j->durable_done && m->after_durable++ < 10)
			print_error("job %llu ran again (round %u) after its "
				    "success was flushed\n",
				    id, rround);
		if (!ok)
			continue;
		if (j->succ > 0 && j->last_succ == rround + 1)
			m->twice_in_process++;
		j->succ++;
		j->last_succ = rround + 1;
		if (rround >= kills && rround - kills < DRAIN_SESSIONS &&
		    clean[rround - kills])
			j->clean_done = true;
	}
	fclose(f);
	free(k.pending);
	for (size_t i = 0; i < m->njob; i++) {
		struct jrec *j = &m->job[i];
		if (j->flushed && j->succ == 0) {
			if (m->lost++ < 10)
				print_error("flushed job %llu never completed\n",
					    (unsigned long long)j->id);
		}
		if (j->succ > 1) {
			m->dup_jobs++;
			m->dup_runs += j->succ - 1;
		}
	}
}

/* Opens the store the way the engine does and replays it: every stored
 * job carries an announced token, bound durably to its id. */
static int
stored_rec(const nv_rec *r, void *arg)
{
	struct model *m = arg;
	struct jargs a;
	if (r->type != NV_REC_JOB_ENQUEUED)
		return 0;
	m->stored_jobs++;
	if (r->data_len != sizeof(a)) {
		m->never_dispatched++;
		return 0;
	}
	memcpy(&a, r->data, sizeof(a));
	if (a.magic != MAGIC || a.round >= m->nround ||
	    a.seq >= m->intent[a.round])
		m->never_dispatched++;
	else if (bind_token(m, r->id, a.round, a.seq, true) == 0)
		m->token_mismatch++;
	return 0;
}

static void
reopen_store(const char *kind, const char *dir, unsigned round, struct model *m)
{
	nv_store_conf conf = {.fsync = policy_of(round)};
	const nv_store_ops *ops = nv__store_find(kind);
	char path[300];
	nv_store *s;
	nv_store_stats st;
	struct stat sb;

	snprintf(path, sizeof(path),
		 strcmp(kind, "file") == 0 ? "%s/data/log" : "%s/data/queue.db",
		 dir);
	if (stat(path, &sb) != 0)
		return; /* killed before the store was created */
	conf.path = path;
	assert_non_null(ops);
	if (ops->open(&s, &conf) != 0)
		fail_msg("round %u: the %s store does not reopen", round, kind);
	s->ops->stats(s, &st);
	if (st.quarantined != 0)
		fail_msg("round %u: a kill left corruption (%llu quarantined)",
			 round, (unsigned long long)st.quarantined);
	m->stored_jobs = 0;
	assert_int_equal(s->ops->replay(s, stored_rec, m), 0);
	s->ops->close(s);
}

static void
read_child(int fd, pid_t pid, uint64_t kill_at, struct model *m)
{
	static uint8_t buf[1 << 16];
	size_t len = 0;

	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		uint64_t now = nv__mono_ms();
		ssize_t n;
		if (now >= kill_at) {
			kill(pid, SIGKILL);
			kill_at = UINT64_MAX;
		}
		int wait = kill_at == UINT64_MAX ? 1000 : (int)(kill_at - now);
		if (poll(&pf, 1, wait) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n == 0)
			break;
		if (n < 0)
			continue;
		len += (size_t)n;
		size_t whole = len - len % sizeof(struct ent);
		for (size_t i = 0; i < whole; i += sizeof(struct ent)) {
			struct ent e;
			memcpy(&e, buf + i, sizeof(e));
			absorb(m, &e);
		}
		memmove(buf, buf + whole, len - whole);
		len -= whole;
	}
	assert_int_equal(len, 0); /* entries are written whole */
}

static void
crash_loop(const char *kind)
{
	const char *env = getenv("NV_CRASH_KILLS");
	unsigned kills = env ? (unsigned)strtoul(env, NULL, 10) : 20;
	struct model m = {0};
	uint64_t seed = nv__mono_ns();
	char dir[256];
	int status;
	pid_t pid;

	if (kills == 0)
		kills = 20;
	nv_test_tmpdir(dir, sizeof(dir), "crasheng");
	print_message("crash_engine %s: %u kills, seed %llu, dir %s\n", kind,
		      kills, (unsigned long long)seed, dir);
	srand((unsigned)seed);
	nv__log_set_level(NV__LOG_ERROR);
	for (unsigned round = 0; round < kills; round++) {
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			child_work(kind, dir, round, pfd[1]);
		}
		close(pfd[1]);
		read_child(pfd[0], pid,
			   nv__mono_ms() + 5 + (uint64_t)(rand() % 300), &m);
		close(pfd[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			fail_msg("round %u: the child ended by itself (exit "
				 "code %d): open, dispatch or flush failed",
				 round,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		reopen_store(kind, dir, round, &m);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_drain(kind, dir, kills);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* 41: no clean empty session in DRAIN_SESSIONS; checked below, after
	 * the counts are printed. */
	if (!WIFEXITED(status) ||
	    (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 41))
		fail_msg("drain child failed (status %d)", status);
	reopen_store(kind, dir, kills, &m);
	check_runs(&m, dir, kills);
	print_message(
	    "crash_engine %s: kills %u, jobs flushed %llu, runs "
	    "%llu, lost %llu, duplicates %llu jobs (%llu extra "
	    "runs), never dispatched %llu, token/id mismatches "
	    "%llu, twice in one process %llu, run after a clean "
	    "success %llu, rerun after a flushed success %llu "
	    "(of %llu known durable), torn lines %llu, ids of "
	    "never-durable jobs handed out again %llu\n",
	    kind, kills, (unsigned long long)m.flushed,
	    (unsigned long long)m.runs, (unsigned long long)m.lost,
	    (unsigned long long)m.dup_jobs, (unsigned long long)m.dup_runs,
	    (unsigned long long)m.never_dispatched,
	    (unsigned long long)m.token_mismatch,
	    (unsigned long long)m.twice_in_process,
	    (unsigned long long)m.after_clean,
	    (unsigned long long)m.after_durable,
	    (unsigned long long)m.durable_marked,
	    (unsigned long long)m.torn_lines, (unsigned long long)m.reused_ids);
	if (WEXITSTATUS(status) == 41)
		print_error("the drain did not converge: jobs keep coming back "
			    "after %d sessions\n",
			    DRAIN_SESSIONS);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(m.flushed > 0);
	assert_int_equal(m.lost, 0);
	assert_int_equal(m.never_dispatched, 0);
	assert_int_equal(m.token_mismatch, 0);
	assert_int_equal(m.twice_in_process, 0);
	assert_int_equal(m.after_clean, 0);
	assert_int_equal(m.after_durable, 0);
	assert_int_equal(m.torn_lines, 0);
	free(m.intent);
	free(m.job);
	free(m.hkey);
	free(m.hval);
	nv_test_rmrf(dir);
}

static void
test_crash_engine_file(void **state)
{
	(void)state;
	crash_loop("file");
}

static void
test_crash_engine_sqlite(void **state)
{
	(void)state;
	crash_loop("sqlite");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crash_engine_file),
	    cmocka_unit_test(test_crash_engine_sqlite),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
