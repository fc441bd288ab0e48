/* Unit tests of daemon/lease.c: the (id, token) fence of the hash, retiring
 * and freeing, and the checkpoint handshake with a built-in's thread:
 * durable after the group commit, refused when the commit fails (through
 * the lease_commit_fn seam), refused once the loop is going away. A real
 * journal in a fresh directory and a real loop; no Redis. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lease.h"
#include "test.h"

typedef struct {
    uv_loop_t loop;
    config_t cfg;
    journal_t *jn;
    stats_t stats;
    lease_t l;
    int kicks, lost, cancels;
} fixture_t;

static void on_lost(void *arg, job_t *j)
{
    (void)j;
    ((fixture_t *)arg)->lost++;
}

static void on_cancel(void *arg, job_t *j)
{
    (void)j;
    ((fixture_t *)arg)->cancels++;
}

static void on_kick(void *arg)
{
    ((fixture_t *)arg)->kicks++;
}

static void setup(fixture_t *f, const char *name)
{
    memset(f, 0, sizeof *f);
    ASSERT_EQ(uv_loop_init(&f->loop), 0);
    snprintf(f->cfg.queues[0].name, sizeof f->cfg.queues[0].name, "q");
    f->cfg.nqueues = 1;
    f->cfg.lease_ms = 30000;
    f->cfg.sync_interval_ms = 1000;
    char dir[700], err[1024];
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
    mkdir(dir, 0700);
    if (journal_open(&f->jn, dir, err, sizeof err) < 0) test_fail(__FILE__, __LINE__, "%s", err);
    lease_cbs_t cbs = {on_lost, on_cancel, on_kick, f};
    ASSERT_EQ(lease_init(&f->l, &f->loop, &f->cfg, NULL, f->jn, &f->stats, &cbs), 0);
}

static void teardown(fixture_t *f)
{
    lease_close(&f->l);
    ASSERT_EQ(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    lease_free(&f->l);
    ASSERT_EQ(uv_loop_close(&f->loop), 0);
    journal_close(f->jn);
}

static job_t *held(fixture_t *f, const char *id, const char *token)
{
    job_t *j = job_new();
    ASSERT(j != NULL);
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->token, sizeof j->token, "%s", token);
    j->attempt = 1;
    lease_add(&f->l, j);
    return j;
}

TEST(lease_unit_fence)
{
    fixture_t f;
    setup(&f, "fence");
    enum { N = 1000 }; /* the hash grows several times */
    job_t *jobs[N];
    char id[32], token[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "job-%d", i);
        snprintf(token, sizeof token, "%d.1700000000000", i + 1);
        jobs[i] = held(&f, id, token);
    }
    ASSERT_EQ(f.l.n, N);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "job-%d", i);
        snprintf(token, sizeof token, "%d.1700000000000", i + 1);
        ASSERT(lease_find(&f.l, id, token) == jobs[i]);
        /* Another lease of the same job (an older or newer token): not ours. */
        snprintf(token, sizeof token, "%d.1700000000001", i + 1);
        ASSERT(lease_find(&f.l, id, token) == NULL);
    }
    ASSERT(lease_find(&f.l, "job-x", "1.1") == NULL);
    /* Retired jobs are out of the hash and the list at once. */
    for (int i = 0; i < N; i += 2)
        lease_retire(&f.l, jobs[i]);
    ASSERT_EQ(f.l.n, N / 2);
    int listed = 0;
    for (job_t *j = f.l.head; j; j = j->next, listed++)
        ASSERT(!j->retired);
    ASSERT_EQ(listed, N / 2);
    ASSERT(lease_find(&f.l, "job-0", "1.1700000000000") == NULL);
    ASSERT(lease_find(&f.l, "job-1", "2.1700000000000") == jobs[1]);
    /* The same job claimed again, with a new token, is found by it only. */
    job_t *again = held(&f, "job-0", "1001.1700000000000");
    ASSERT(lease_find(&f.l, "job-0", "1001.1700000000000") == again);
    ASSERT(lease_find(&f.l, "job-0", "1.1700000000000") == NULL);
    lease_free_retired(&f.l);
    ASSERT(f.l.retired == NULL);
    /* A batch names jobs by (id, token): a retired one is found gone. */
    lease_batch_t *b = lease_batch_new(&f, 0, PROTO_EXTEND, 3);
    ASSERT(b != NULL);
    lease_batch_add(b, jobs[1]);
    lease_batch_add(b, jobs[3]);
    lease_retire(&f.l, jobs[3]);
    ASSERT(lease_batch_job(&f.l, b, 0) == jobs[1]);
    ASSERT(lease_batch_job(&f.l, b, 1) == NULL);
    lease_batch_free(b);
    teardown(&f);
}

/* A built-in's thread calling jobd_job_checkpoint. */
typedef struct {
    job_t *j;
    atomic_int done;
    int rc;
} caller_t;

static void *checkpoint_thread(void *arg)
{
    caller_t *c = arg;
    json_t *state = json_pack("{s:i}", "step", 7);
    c->rc = jobd_job_checkpoint(c->j, state);
    json_decref(state);
    atomic_store(&c->done, 1);
    return NULL;
}

/* Runs the loop without blocking until the caller returns (or fails the
 * test after a deadline); joins it. */
static int finish_call(fixture_t *f, caller_t *c, pthread_t t, int run_loop)
{
    int64_t deadline = test_now_ms() + test_ms(10000);
    while (!atomic_load(&c->done) && test_now_ms() < deadline)
        if (run_loop) uv_run(&f->loop, UV_RUN_NOWAIT);
    if (!atomic_load(&c->done)) test_fail(__FILE__, __LINE__, "jobd_job_checkpoint never returned");
    pthread_join(t, NULL);
    return c->rc;
}

static int64_t seq_of(job_t *j)
{
    pthread_mutex_lock(&j->mu);
    int64_t s = j->ckpt_seq;
    pthread_mutex_unlock(&j->mu);
    return s;
}

static job_t *running_job(fixture_t *f, const char *id)
{
    job_t *j = held(f, id, "1.1");
    j->running = 1;
    j->ckpt_async = lease_ckpt_async(&f->l);
    ASSERT(j->ckpt_async != NULL);
    return j;
}

static int fail_commit(journal_t *jn)
{
    (void)jn;
    return -1;
}

TEST(lease_unit_checkpoint_handshake)
{
    fixture_t f;
    setup(&f, "handshake");
    job_t *j = running_job(&f, "job-a");
    /* Durable: the loop journals and commits, then the call returns 0. */
    caller_t c = {.j = j};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, checkpoint_thread, &c), 0);
    ASSERT_EQ(finish_call(&f, &c, t, 1), 0);
    ASSERT_EQ(j->ckpt_durable, 1);
    ASSERT_EQ(j->ckpt_failed, 0);
    ASSERT(j->journaled);
    long long commits = journal_commits(f.jn);

    /* The commit fails: the waiter is woken and refused, not left hanging. */
    lease_commit_fn = fail_commit;
    caller_t c2 = {.j = j};
    ASSERT_EQ(pthread_create(&t, NULL, checkpoint_thread, &c2), 0);
    ASSERT_EQ(finish_call(&f, &c2, t, 1), JOBD_ECONN);
    lease_commit_fn = journal_commit;
    ASSERT_EQ(j->ckpt_failed, 2);
    ASSERT_EQ(j->ckpt_durable, 1);
    ASSERT_EQ(j->ckpt_journaled, 1); /* written again with the next one */
    ASSERT_EQ(journal_commits(f.jn), commits);

    /* The journal works again: the next checkpoint is durable. */
    caller_t c3 = {.j = j};
    ASSERT_EQ(pthread_create(&t, NULL, checkpoint_thread, &c3), 0);
    ASSERT_EQ(finish_call(&f, &c3, t, 1), 0);
    ASSERT_EQ(j->ckpt_durable, 3);
    teardown(&f);
}

TEST(lease_unit_checkpoint_closing)
{
    fixture_t f;
    setup(&f, "closing");
    job_t *j = running_job(&f, "job-b");
    /* The loop never gets to it (it is going away): lease_stop_waiters
     * refuses the waiter instead of leaving it blocked for ever. */
    caller_t c = {.j = j};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, checkpoint_thread, &c), 0);
    int64_t deadline = test_now_ms() + test_ms(10000);
    while (seq_of(j) < 1 && test_now_ms() < deadline)
        ; /* the thread has stored it and waits (or is about to) */
    ASSERT_EQ(seq_of(j), 1);
    lease_stop_waiters(&f.l);
    ASSERT_EQ(finish_call(&f, &c, t, 0), JOBD_ECONN);
    ASSERT(j->ckpt_closing);
    /* Later calls do not wait at all. */
    caller_t c2 = {.j = j};
    ASSERT_EQ(pthread_create(&t, NULL, checkpoint_thread, &c2), 0);
    ASSERT_EQ(finish_call(&f, &c2, t, 0), JOBD_ECONN);
    teardown(&f);
}
