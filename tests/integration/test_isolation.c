/* test_isolation.c - what a handler gets of jobd and what jobd owns alone
 * (CONTRACT guarantee 8), black box: a handler inherits no descriptor but
 * its stdin, stdout and stderr; one jobd per state directory; orphans a
 * handler leaves behind are reaped, not left as zombies; and --check-config
 * refuses what jobd would refuse at start while creating nothing. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

/* A handlers file with the isolation fixtures besides the harness's own. */
static const char *isolation_handlers(void)
{
    const char *path = test_tmp_path("isolation-handlers.json");
    char text[4096];
    snprintf(text, sizeof text,
             "{\"t.exec\": {\"exec\": [\"%s\"]},\n \"fds\": {\"exec\": [\"%s\"]},\n"
             " \"orphan\": {\"exec\": [\"%s\"]}}\n",
             test_helper("test_handler"), test_helper("fd_lister"), test_helper("orphan_maker"));
    test_write_file(path, text);
    return path;
}

/* Starts jobd on queue q with the isolation handlers and state dir st. */
static pid_t start_jobd(const char *log, const char *q, const char *st)
{
    const char *extra[] = {"--handlers", isolation_handlers(), NULL};
    return test_jobd_start(log, NULL, q, st, extra, NULL);
}

/* A TCP connection to 127.0.0.1:port, or -1. */
static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The value of an unlabelled metric on jobd's /metrics; -1 if absent. */
static long long metric(int port, const char *name)
{
    char *m = httpc_get_body(port, "/metrics");
    long long v = -1;
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *p = m ? strstr(m, needle) : NULL;
    if (p) v = atoll(p + strlen(needle));
    free(m);
    return v;
}

TEST(isolation_handler_inherits_only_stdio)
{
    const char *q = "iso-fd", *log = test_tmp_path("jobd.log");
    pid_t pid = start_jobd(log, q, "st");
    int port = httpc_jobd_port(log, test_ms(10000));
    ASSERT_GT(port, 0);
    /* Wait for every connection jobd keeps: the pub/sub one subscribed to
     * the queue's wake-up channel, the command one ready. */
    char channel[512];
    test_qkey(channel, sizeof channel, q, "wake");
    int64_t deadline = test_now_ms() + test_ms(10000);
    for (;;) {
        redisReply *r = test_rcmd("PUBSUB NUMSUB %s", channel);
        int subscribed =
            r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->integer == 1;
        freeReplyObject(r);
        if (subscribed) break;
        CHECK_OR_DUMP(test_now_ms() < deadline, log, "jobd never subscribed to %s", channel);
        test_pause_ms(20);
    }
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "Redis ready", NULL), 0);
    /* An HTTP client that stays connected (half a request) while the job
     * runs; a full request after it proves jobd has accepted it. */
    int held = tcp_connect(port);
    ASSERT_GE(held, 0);
    ASSERT_EQ(write(held, "GET /health/live HTTP/1.1\r\n", 27), 27);
    httpc_resp_t ready;
    ASSERT_EQ(httpc_request(port, "GET", "/health/ready", NULL, NULL, test_ms(10000), &ready), 200);
    httpc_resp_free(&ready);

    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "fds", "{}", 1, 0, id);
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "succeeded", test_ms(15000)) == 0, log,
                  "job %s did not succeed", id);
    char *res = test_hget(q, id, "result");
    json_t *j = res ? json_loads(res, 0, NULL) : NULL;
    const char *fds = json_string_value(json_object_get(j, "fds"));
    if (!fds || strcmp(fds, "0 1 2") != 0)
        test_fail(__FILE__, __LINE__, "the handler inherited more than stdio: %s",
                  res ? res : "(no result)");
    json_decref(j);
    free(res);
    /* And not only thanks to the sweep before each spawn: every descriptor
     * jobd opened was close-on-exec from the start. */
    CHECK_OR_DUMP(test_count_log(log, "was not close-on-exec") == 0, log,
                  "jobd opened a descriptor without close-on-exec");
    close(held);
    jobd_client_free(c);
    kill(pid, SIGTERM);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
}

TEST(isolation_second_jobd_on_state_dir_refused)
{
    const char *q = "iso-lock", *log = test_tmp_path("a.log"), *logb = test_tmp_path("b.log");
    const char *runlog = test_tmp_path("run.log");
    pid_t a = start_jobd(log, q, "st");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], payload[1024];
    snprintf(payload, sizeof payload, "{\"mode\":\"sleep\",\"ms\":1500,\"log\":\"%s\"}", runlog);
    test_submit(c, q, "t.exec", payload, 3, 0, id);
    /* A's handler runs, its lease is held and journaled. */
    CHECK_OR_DUMP(test_wait_log(runlog, test_ms(10000), "RUN", id, NULL) == 0, log,
                  "the handler never started");

    pid_t b = start_jobd(logb, q, "st");
    ASSERT_EXIT(b, test_ms(10000), logb, 78);
    char want[64];
    snprintf(want, sizeof want, "pid %d", (int)a);
    char *bl = test_read_file(logb);
    ASSERT_CONTAINS(bl, want);
    free(bl);

    /* A's job was not touched: it finishes at its first attempt. */
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "succeeded", test_ms(15000)) == 0, log,
                  "job %s did not succeed", id);
    ASSERT_FIELD(q, id, "attempt", "1");
    ASSERT_EQ(test_count_log(runlog, "TERM"), 0);
    ASSERT_EQ(test_count_log(runlog, "RUN"), 1);
    kill(a, SIGTERM);
    ASSERT_EXIT(a, test_ms(15000), log, 0);
    jobd_client_free(c);
}

/* The state of process pid ('Z' for a zombie), 0 once it is gone. */
static char proc_state(int pid, int *ppid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *s = test_read_file(path);
    if (!s) return 0;
    char st = 0;
    const char *p = strrchr(s, ')');
    if (!p || sscanf(p + 1, " %c %d", &st, ppid) != 2) st = '?';
    free(s);
    return st;
}

TEST(isolation_orphans_reaped)
{
    /* This test is a subreaper itself, as a container's init would be:
     * without jobd reaping, an orphan reparents to us and stays a zombie
     * here (we never wait for it). */
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    const char *q = "iso-orphan", *log = test_tmp_path("jobd.log"),
               *pidfile = test_tmp_path("gc.pid");
    pid_t pid = start_jobd(log, q, "st");
    int port = httpc_jobd_port(log, test_ms(10000));
    ASSERT_GT(port, 0);
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], payload[1024];
    snprintf(payload, sizeof payload, "{\"pidfile\":\"%s\"}", pidfile);
    test_submit(c, q, "orphan", payload, 1, 0, id);
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "succeeded", test_ms(15000)) == 0, log,
                  "job %s did not succeed", id);
    char *s = test_read_file(pidfile);
    ASSERT(s != NULL);
    int gc = atoi(s);
    free(s);
    ASSERT_GT(gc, 1);
    /* The grandchild exits 200 ms after it was orphaned; then it must go
     * away entirely, not linger as a zombie. */
    int64_t deadline = test_now_ms() + test_ms(5000);
    char st;
    int ppid = 0;
    while ((st = proc_state(gc, &ppid)) != 0 && test_now_ms() < deadline)
        test_pause_ms(20);
    if (st)
        test_fail(__FILE__, __LINE__,
                  "orphan %d still exists: state %c, parent %d (jobd %d, this test %d)", gc, st,
                  ppid, (int)pid, (int)getpid());
    ASSERT_GE(metric(port, "jobd_orphans_reaped_total"), 1);
    jobd_client_free(c);
    kill(pid, SIGTERM);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
}

/* Runs jobd --check-config with the shared handlers, state dir st and the
 * extra flags (NULL-terminated); returns its exit status, stderr in *err. */
static int check_config(const char *st, const char *const extra[], char **err)
{
    const char *argv[32] = {test_env("JOBD_BIN"), "--check-config", "--handlers",
                            test_handlers_file(), "--state-dir",    st};
    int n = 6;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return test_run(argv, NULL, NULL, NULL, err);
}

TEST(check_config_refuses_bad_redis_url)
{
    const char *extra[] = {"--redis", "redis://127.0.0.1:notaport/0", NULL};
    char *err = NULL;
    ASSERT_EQ(check_config(test_tmp_path("st"), extra, &err), 78);
    ASSERT_CONTAINS(err, "Redis URL");
    free(err);
}

TEST(check_config_refuses_missing_password_file)
{
    const char *extra[] = {"--redis", test_redis_url(), "--redis-password-file",
                           test_tmp_path("nopw"), NULL};
    char *err = NULL;
    ASSERT_EQ(check_config(test_tmp_path("st"), extra, &err), 78);
    ASSERT_CONTAINS(err, "password file");
    free(err);
}

TEST(check_config_creates_nothing)
{
    const char *st = test_tmp_path("fresh-state");
    char *err = NULL, *out = NULL;
    const char *argv[] = {test_env("JOBD_BIN"),
                          "--check-config",
                          "--handlers",
                          test_handlers_file(),
                          "--state-dir",
                          st,
                          NULL};
    int rc = test_run(argv, NULL, NULL, &out, &err);
    if (rc != 0) test_fail(__FILE__, __LINE__, "--check-config exited %d: %s", rc, err);
    struct stat sb;
    ASSERT_EQ(stat(st, &sb), -1);
    ASSERT_CONTAINS(out, st); /* it says what it will do with the state dir */
    free(out);
    free(err);

    /* A state dir that cannot be created (its parent is missing) is refused. */
    const char *deep = test_tmp_path("no/such/state");
    const char *extra[] = {NULL};
    ASSERT_EQ(check_config(deep, extra, &err), 78);
    ASSERT_CONTAINS(err, "state dir");
    free(err);
    ASSERT_EQ(stat(test_tmp_path("no"), &sb), -1);
}
