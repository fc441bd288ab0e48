/* test_notify.c - jobd under a Type=notify unit, black box: a real
 * AF_UNIX datagram socket stands in for systemd's $NOTIFY_SOCKET. READY=1
 * comes once Redis answers (and /health/ready says 200 then), never
 * before; STATUS= carries the in-flight count; WATCHDOG=1 comes every
 * WATCHDOG_USEC / 2 from the loop; STOPPING=1 when the drain begins; and
 * handlers see none of these variables. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

typedef struct {
    int fd;
    char path[108];
    int watchdogs, ready, stopping; /* messages seen so far */
    char status[512];               /* the last STATUS= text */
} listener_t;

static void listen_at(listener_t *l)
{
    memset(l, 0, sizeof *l);
    /* sun_path holds 108 bytes: a short path of our own under /tmp. */
    snprintf(l->path, sizeof l->path, "/tmp/jobd-notify-%d.sock", (int)getpid());
    unlink(l->path);
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT(l->fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, l->path, strlen(l->path) + 1);
    ASSERT_EQ(bind(l->fd, (struct sockaddr *)&a, sizeof a), 0);
}

static void listener_close(listener_t *l)
{
    close(l->fd);
    unlink(l->path);
}

/* Reads one datagram within ms and tallies what it says (a message may
 * hold several lines: "READY=1\nSTATUS=..."). Returns 0, or -1 on timeout. */
static int next_msg(listener_t *l, int64_t ms)
{
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    if (poll(&p, 1, (int)ms) <= 0) return -1;
    char buf[4096];
    ssize_t n = recv(l->fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strcmp(line, "WATCHDOG=1") == 0) l->watchdogs++;
        if (strcmp(line, "READY=1") == 0) l->ready++;
        if (strcmp(line, "STOPPING=1") == 0) l->stopping++;
        if (strncmp(line, "STATUS=", 7) == 0) snprintf(l->status, sizeof l->status, "%s", line + 7);
    }
    return 0;
}

/* Reads messages until cond holds (deadline-bound); fails with the log. */
#define AWAIT(l, cond, log, what)                                                                  \
    do {                                                                                           \
        int64_t end_ = test_now_ms() + test_ms(15000);                                             \
        while (!(cond)) {                                                                          \
            int64_t left_ = end_ - test_now_ms();                                                  \
            CHECK_OR_DUMP(left_ > 0 && next_msg(l, left_) == 0, log,                               \
                          "no %s from jobd (last status \"%s\")", what, (l)->status);              \
        }                                                                                          \
    } while (0)

static int ready_code(int port)
{
    httpc_resp_t r;
    int code = httpc_request(port, "GET", "/health/ready", NULL, NULL, test_ms(10000), &r);
    httpc_resp_free(&r);
    return code;
}

TEST(notify_ready_status_watchdog_stopping)
{
    const char *q = "nq", *log = test_tmp_path("jobd.log"), *envout = test_tmp_path("env.out");
    char dir[200], url[256], sockenv[200];
    snprintf(dir, sizeof dir, "%s/redis", test_tmpdir());
    snprintf(url, sizeof url, "unix://%s/redis.sock", dir); /* not started yet */
    listener_t l;
    listen_at(&l);
    snprintf(sockenv, sizeof sockenv, "NOTIFY_SOCKET=%s", l.path);
    unsetenv("WATCHDOG_PID"); /* the watchdog is meant for whichever process reads it */

    /* A handler that writes its environment down. */
    char text[1024];
    snprintf(text, sizeof text, "read line\nenv > '%s'\n", envout);
    const char *hfile = test_script_handlers("dump", text);

    const char *env[] = {sockenv, "WATCHDOG_USEC=200000", NULL};
    const char *argv[] = {test_env("JOBD_BIN"),
                          "--redis",
                          url,
                          "--prefix",
                          test_prefix(),
                          "--queues",
                          q,
                          "--handlers",
                          hfile,
                          "--state-dir",
                          test_tmp_path("st"),
                          "--http",
                          "127.0.0.1:0",
                          "--concurrency",
                          "4",
                          NULL};
    pid_t pid = test_spawn(argv, env, log);
    test_track(pid);
    int port = httpc_jobd_port(log, test_ms(10000));
    CHECK_OR_DUMP(port > 0, log, "no HTTP port logged");

    /* Redis is not there: the loop runs (the watchdog says so), jobd is not
     * ready, and it does not say it is. */
    AWAIT(&l, l.watchdogs >= 3, log, "WATCHDOG=1 (3) before Redis");
    ASSERT_EQ(ready_code(port), 503);
    ASSERT_EQ(l.ready, 0);

    /* Redis comes: READY=1, once, and /health/ready agrees at that moment. */
    test_redis_start(dir, url, NULL);
    AWAIT(&l, l.ready == 1, log, "READY=1");
    ASSERT_EQ(ready_code(port), 200);
    ASSERT_CONTAINS(l.status, "running 0 of 4, queues nq");

    /* Jobs: a long one holds a slot, the dump one comes and goes. */
    jobd_client_t *c = test_client_at(url);
    char sleeper[JOBD_ID_LEN + 1], dump[JOBD_ID_LEN + 1];
    test_submit(c, q, "sleep", "{\"ms\":60000}", 0, 0, sleeper);
    test_submit(c, q, "dump", "{}", 0, 0, dump);
    AWAIT(&l, strstr(l.status, "running 1 of 4, queues nq") != NULL, log, "STATUS= running 1");
    int64_t end = test_now_ms() + test_ms(10000);
    char *e;
    while (!(e = test_read_file(envout)) || !strstr(e, "PATH=")) {
        free(e);
        CHECK_OR_DUMP(test_now_ms() < end, log, "the dump handler did not run");
        test_pause_ms(20);
    }
    ASSERT(strstr(e, "NOTIFY_SOCKET") == NULL);
    ASSERT(strstr(e, "WATCHDOG_") == NULL);
    free(e);

    /* The watchdog keeps coming while jobs run. */
    int seen = l.watchdogs;
    AWAIT(&l, l.watchdogs >= seen + 3, log, "WATCHDOG=1 (3 more)");

    /* SIGTERM: STOPPING=1 as the drain begins (the sleep job holds it);
     * the second signal ends the wait, and jobd exits 0. */
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    AWAIT(&l, l.stopping == 1, log, "STOPPING=1");
    ASSERT_CONTAINS(l.status, "draining");
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
    while (next_msg(&l, 0) == 0) /* whatever it sent last */
        ;
    ASSERT_EQ(l.ready, 1);
    ASSERT_EQ(l.stopping, 1);
    listener_close(&l);
    jobd_client_free(c);
    test_redis_stop(dir);
}

TEST(notify_watchdog_only_for_its_pid)
{
    /* WATCHDOG_PID names another process: jobd notifies, but pets no
     * watchdog (it is not meant for it). */
    const char *q = "nw", *log = test_tmp_path("jobd.log");
    listener_t l;
    listen_at(&l);
    char sockenv[200];
    snprintf(sockenv, sizeof sockenv, "NOTIFY_SOCKET=%s", l.path);
    const char *env[] = {sockenv, "WATCHDOG_USEC=200000", "WATCHDOG_PID=1", NULL};
    pid_t pid = test_jobd_start(log, NULL, q, "st", NULL, env);
    AWAIT(&l, l.ready == 1, log, "READY=1");
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    AWAIT(&l, l.stopping == 1, log, "STOPPING=1");
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
    while (next_msg(&l, 0) == 0)
        ;
    ASSERT_EQ(l.watchdogs, 0);
    ASSERT_EQ(test_count_log(log, "systemd watchdog"), 0);
    listener_close(&l);
}
