/* Unit tests of exec handlers started on the spawner's threads
 * (daemon/spawner.c, exec_start in daemon/exec.c), with real child
 * processes and a real loop: every child is reported spawned once and
 * exits once, its start time from the clock equals /proc's, the subreaper
 * registry leaves none of them behind, a program that cannot run is
 * reported through on_spawned only, and a stop asked for before the spawn
 * ended reaches the child. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "child.h"
#include "exec.h"
#include "orphans.h"
#include "spawner.h"
#include "test.h"

#define NKIDS 64

typedef struct {
    exec_t *e;
    int spawned_rc;
    int spawned_calls;
    int exits;
    int pid;
    int64_t ticks, proc_ticks;
    int64_t status;
    int term_signal;
    char err[256];
} kid_t;

static void on_message(void *arg, hproto_msg_t *m)
{
    (void)arg;
    (void)m;
}

static void on_exit_cb(void *arg, const exec_exit_t *x)
{
    kid_t *k = arg;
    k->exits++;
    k->status = x->exit_status;
    k->term_signal = x->term_signal;
    size_t n = x->stderr_len < sizeof k->err - 1 ? x->stderr_len : sizeof k->err - 1;
    memcpy(k->err, x->stderr_tail, n);
    k->err[n] = '\0';
    k->e = NULL;
}

static void on_spawned(void *arg, int rc)
{
    kid_t *k = arg;
    k->spawned_calls++;
    k->spawned_rc = rc;
    if (rc < 0) {
        k->e = NULL;
        return;
    }
    k->pid = exec_pid(k->e);
    k->ticks = exec_start_ticks(k->e);
    /* The child waits for its line on stdin: it is alive here. */
    k->proc_ticks = child_start_time(k->pid);
    exec_send_input(k->e);
}

static const exec_cbs_t cbs = {on_message, on_exit_cb, on_spawned};

static int start(kid_t *k, uv_loop_t *loop, spawner_t *sp, char *const argv[], const char *line)
{
    static char *const env[] = {"PATH=/usr/bin:/bin", NULL};
    memset(k, 0, sizeof *k);
    k->spawned_rc = 1;
    return exec_start(&k->e, loop, sp, argv, env, line, strlen(line), 4096, &cbs, k);
}

TEST(spawn_many_children_each_once_with_clock_start_times)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    spawner_t sp;
    ASSERT_EQ(spawner_init(&sp, &loop), 0);
    static kid_t kids[NKIDS];
    char *const argv[] = {"/bin/sh", "-c", "read l; echo \"got $l\" >&2; exit 3", NULL};
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < NKIDS; i++)
            ASSERT_EQ(start(&kids[i], &loop, &sp, argv, "hello"), 0);
        ASSERT_EQ(spawner_backlog(&sp), NKIDS);
        /* Not spawned yet as far as the loop knows: nothing to signal. */
        ASSERT_EQ(exec_pid(kids[0].e), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_EQ(spawner_backlog(&sp), 0);
        for (int i = 0; i < NKIDS; i++) {
            kid_t *k = &kids[i];
            ASSERT_EQ(k->spawned_calls, 1);
            ASSERT_EQ(k->spawned_rc, 0);
            ASSERT_EQ(k->exits, 1);
            ASSERT_EQ(k->status, 3);
            ASSERT_STR_EQ(k->err, "got hello\n");
            ASSERT_GT(k->pid, 0);
            ASSERT_GT(k->ticks, 0);
            ASSERT_EQ(k->ticks, k->proc_ticks);
            ASSERT(!orphans_owned(k->pid)); /* reaped by its owner, disowned */
        }
    }
    spawner_close(&sp);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(spawn_of_a_missing_program_is_reported_once_and_never_exits)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    spawner_t sp;
    ASSERT_EQ(spawner_init(&sp, &loop), 0);
    kid_t k;
    char *const argv[] = {"/nonexistent/handler", NULL};
    ASSERT_EQ(start(&k, &loop, &sp, argv, "{}"), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(k.spawned_calls, 1);
    ASSERT_EQ(k.spawned_rc, UV_ENOENT);
    ASSERT_EQ(k.exits, 0);
    spawner_close(&sp);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(spawn_stop_asked_before_the_spawn_ended_reaches_the_child)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    spawner_t sp;
    ASSERT_EQ(spawner_init(&sp, &loop), 0);
    kid_t term, killed;
    /* Both would run for a minute: only the stop ends them. */
    char *const argv[] = {"/bin/sleep", "60", NULL};
    ASSERT_EQ(start(&term, &loop, &sp, argv, "{}"), 0);
    ASSERT_EQ(start(&killed, &loop, &sp, argv, "{}"), 0);
    exec_stop(term.e, 60000); /* SIGTERM once spawned; the grace is never needed */
    exec_kill(killed.e);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(term.spawned_rc, 0);
    ASSERT_EQ(term.exits, 1);
    ASSERT_EQ(term.term_signal, SIGTERM);
    ASSERT_EQ(killed.spawned_rc, 0);
    ASSERT_EQ(killed.exits, 1);
    ASSERT_EQ(killed.term_signal, SIGKILL);
    spawner_close(&sp);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(uv_loop_close(&loop), 0);
}

TEST(spawn_hold_while_behind_for_a_bounded_time)
{
    spawner_hold_t h = {0};
    /* One spawn waiting (or none): the pump never holds. */
    ASSERT_EQ(spawner_hold(&h, 0, 1000), 0);
    ASSERT_EQ(spawner_hold(&h, 1, 1000), 0);
    /* Behind: it holds, from the first look on, for SPAWNER_HOLD_MS. */
    ASSERT_EQ(spawner_hold(&h, 2, 1000), 1);
    ASSERT_EQ(spawner_hold(&h, 5, 1000 + SPAWNER_HOLD_MS - 1), 1);
    /* Still behind after that (a spawn that hangs): no more holding. */
    ASSERT_EQ(spawner_hold(&h, 5, 1000 + SPAWNER_HOLD_MS), 0);
    ASSERT_EQ(spawner_hold(&h, 3, 1000 + 10 * SPAWNER_HOLD_MS), 0);
    /* Down to one: the run ends; the next one holds again, from its start. */
    ASSERT_EQ(spawner_hold(&h, 1, 2000), 0);
    ASSERT_EQ(spawner_hold(&h, 2, 2001), 1);
    ASSERT_EQ(spawner_hold(&h, 2, 2001 + SPAWNER_HOLD_MS - 1), 1);
    ASSERT_EQ(spawner_hold(&h, 2, 2001 + SPAWNER_HOLD_MS), 0);
}

/* child_start_time runs on both spawner threads at once (when a spawn's two
 * clock reads straddle a tick) and on the loop thread: its parsing must
 * keep no state between calls. */
typedef struct {
    int pid;
    int64_t want;
    int wrong;
} stat_reader_t;

#define STAT_READS 20000

static void *read_start_times(void *arg)
{
    stat_reader_t *s = arg;
    for (int i = 0; i < STAT_READS; i++)
        if (child_start_time(s->pid) != s->want) s->wrong++;
    return NULL;
}

TEST(spawn_start_time_reads_are_thread_safe)
{
    stat_reader_t rd[2] = {{.pid = getpid()}, {.pid = getppid()}};
    for (int i = 0; i < 2; i++) {
        rd[i].want = child_start_time(rd[i].pid);
        ASSERT_GT(rd[i].want, 0);
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, read_start_times, &rd[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ASSERT_EQ(rd[0].wrong, 0);
    ASSERT_EQ(rd[1].wrong, 0);
}
