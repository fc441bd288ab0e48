/* test_redis_conn.c - how jobd and jobctl meet a Redis they cannot use yet:
 * nothing listening (jobd backs off, says why, and does not flood its log),
 * an ACL user whose password comes from a file (both authenticate as that
 * user; jobctl exits 69 when the credentials are refused), and a Redis that
 * is loading its data set (jobd waits quietly). Black box, real
 * redis-server. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

/* A loopback TCP port nothing listens on (bound, read, closed). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* GET path on 127.0.0.1:port: the status code (-1: no answer) and the body
 * (malloc'd) in *body. */
static int http_get(int port, const char *path, char **body)
{
    httpc_resp_t r;
    int code = httpc_request(port, "GET", path, NULL, NULL, test_ms(10000), &r);
    *body = strdup(r.body ? r.body : "");
    httpc_resp_free(&r);
    return code;
}

/* Polls /health/ready until its body contains needle; returns the body. */
static char *wait_ready_body(int port, const char *needle, const char *log)
{
    int64_t deadline = test_now_ms() + test_ms(10000);
    for (;;) {
        char *body;
        int code = http_get(port, "/health/ready", &body);
        if (code == 503 && body && strstr(body, needle)) return body;
        CHECK_OR_DUMP(test_now_ms() < deadline, log, "/health/ready never said \"%s\": %d %s",
                      needle, code, body ? body : "");
        free(body);
        test_pause_ms(20);
    }
}

TEST(redis_conn_refused_backs_off)
{
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", free_port());
    const char *log = test_tmp_path("jobd.log");
    pid_t pid = test_jobd_start(log, url, "q", "st", NULL, NULL);
    int port = httpc_jobd_port(log, test_ms(10000));
    ASSERT_GT(port, 0);

    /* Under the backoff the fifth failed attempt comes 0.75 to 1.5 s after
     * the first, and each attempt up to then is one backoff step: one line
     * each, from the command connection only. */
    int saw_fifth = test_wait_log(log, test_ms(10000), "Redis unreachable", "attempt 5,", NULL);
    int lines = test_count_log(log, "unreachable");
    CHECK_OR_DUMP(lines <= 6, log, "%d \"unreachable\" lines by the fifth attempt (want <= 6)",
                  lines);
    CHECK_OR_DUMP(saw_fifth == 0, log, "no line for the fifth attempt (attempts do not count up)");
    ASSERT_GE(test_count_log(log, "connection refused"), 1);

    char *body = wait_ready_body(port, "connection refused", log);
    ASSERT_CONTAINS(body, "redis unreachable: connection refused (attempt ");
    ASSERT_CONTAINS(body, "next try in ");
    free(body);

    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
}

/* Runs jobctl with env (NULL-terminated "K=V") and args; returns its exit
 * status, stderr in *err (malloc'd). */
static int jobctl_env(const char *const env[], char **out, char **err, const char *a1,
                      const char *a2, const char *a3)
{
    const char *argv[] = {test_env("JOBCTL_BIN"), a1, a2, a3, NULL};
    return test_run(argv, env, NULL, out, err);
}

TEST(redis_conn_acl_user_password_file)
{
    /* A private Redis on a unix socket and a loopback port, with an ACL user
     * and a different password for the default user. */
    const char *dir = test_tmp_path("redis");
    char sockurl[256], port_line[32];
    int rport = free_port();
    snprintf(port_line, sizeof port_line, "port %d", rport);
    const char *conf[] = {port_line, "bind 127.0.0.1", NULL};
    test_redis_start(dir, sockurl, conf);
    char pidfile[1024];
    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", dir);
    char *pids = test_read_file(pidfile);
    test_private_redis_pid = pids ? (pid_t)atoi(pids) : 0;
    free(pids);
    test_install_abort_handler();
    const char *sock = sockurl + strlen("unix://");
    redisContext *admin = redisConnectUnix(sock);
    ASSERT(admin && !admin->err);
    redisReply *r = redisCommand(admin, "ACL SETUSER jobduser on >s3cret-user-pw ~* &* +@all");
    ASSERT(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = redisCommand(admin, "CONFIG SET requirepass s3cret-default-pw");
    ASSERT(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);

    const char *pwfile = test_tmp_path("pw"), *badfile = test_tmp_path("badpw");
    test_write_file(pwfile, "s3cret-user-pw\n");
    test_write_file(badfile, "s3cret-wrong-pw\n");
    char tcpurl[128], userurl[400], envurl[420], envpw[600], envbad[600], envprefix[200],
        envsock[420];
    snprintf(tcpurl, sizeof tcpurl, "redis://jobduser@127.0.0.1:%d/0", rport);
    snprintf(userurl, sizeof userurl, "unix://jobduser@%s", sock);
    snprintf(envurl, sizeof envurl, "JOBD_REDIS_URL=%s", userurl);
    snprintf(envpw, sizeof envpw, "JOBD_REDIS_PASSWORD_FILE=%s", pwfile);
    snprintf(envbad, sizeof envbad, "JOBD_REDIS_PASSWORD_FILE=%s", badfile);
    snprintf(envprefix, sizeof envprefix, "JOBD_PREFIX=%s", test_prefix());
    snprintf(envsock, sizeof envsock, "JOBD_REDIS_URL=%s", sockurl);

    /* jobctl as the user, password from the file (unix socket form). */
    char *out, *err;
    const char *env_ok[] = {envurl, envpw, envprefix, NULL};
    int st = jobctl_env(env_ok, &out, &err, "submit", "acl", "noop");
    if (st != 0) test_fail(__FILE__, __LINE__, "jobctl submit as jobduser exited %d: %s", st, err);
    char id[64];
    snprintf(id, sizeof id, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    free(err);

    /* jobd as the same user over TCP runs it. */
    const char *log = test_tmp_path("jobd.log");
    const char *envd[] = {envpw, NULL};
    pid_t pid = test_jobd_start(log, tcpurl, "acl", "st", (const char *[]){"--once", NULL}, envd);
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
    st = jobctl_env(env_ok, &out, &err, "status", id, "--json");
    if (st != 0) test_fail(__FILE__, __LINE__, "jobctl status exited %d: %s", st, err);
    ASSERT_CONTAINS(out, "\"succeeded\"");
    free(out);
    free(err);
    char *text = test_read_file(log);
    ASSERT(text && strstr(text, "s3cret") == NULL);
    free(text);

    /* The wrong password for the user: refused credentials, exit 69. */
    const char *env_bad[] = {envurl, envbad, envprefix, NULL};
    st = jobctl_env(env_bad, &out, &err, "stats", "--json", NULL);
    ASSERT_EQ(st, 69);
    ASSERT_CONTAINS(err, "WRONGPASS");
    ASSERT(strstr(err, "s3cret") == NULL);
    free(out);
    free(err);

    /* No password at all on a server that wants one: NOAUTH, exit 69. */
    const char *env_none[] = {envsock, envprefix, NULL};
    st = jobctl_env(env_none, &out, &err, "stats", "--json", NULL);
    ASSERT_EQ(st, 69);
    ASSERT_CONTAINS(err, "NOAUTH");
    free(out);
    free(err);

    /* jobd with the wrong password: not ready, and says why. */
    const char *log2 = test_tmp_path("jobd2.log");
    const char *envd2[] = {envbad, NULL};
    pid = test_jobd_start(log2, tcpurl, "acl", "st2", NULL, envd2);
    int port = httpc_jobd_port(log2, test_ms(10000));
    ASSERT_GT(port, 0);
    char *body = wait_ready_body(port, "auth failed", log2);
    ASSERT_CONTAINS(body, "WRONGPASS");
    free(body);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log2, 0);
    text = test_read_file(log2);
    ASSERT(text && strstr(text, "s3cret") == NULL);
    free(text);

    redisFree(admin);
    test_private_redis_stop(dir);
}

/* Writes an RDB of n small keys into dir (a throw-away redis-server). */
static void write_rdb(const char *dir, int n)
{
    char url[256];
    test_redis_start(dir, url, NULL);
    redisContext *c = redisConnectUnix(url + strlen("unix://"));
    ASSERT(c && !c->err);
    redisReply *r = redisCommand(
        c, "EVAL %s 0 %d",
        "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'k' .. i, 'v' .. i) end return 1", n);
    ASSERT(r && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    r = redisCommand(c, "SAVE");
    ASSERT(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    test_redis_stop(dir);
}

TEST(redis_conn_loading_waits_quietly)
{
    /* Redis loads the RDB one key a millisecond (key-load-delay), serving
     * clients between chunks, until the test lifts the delay: jobd meets a
     * LOADING Redis for as long as the test wants. */
    const char *dir = test_tmp_path("redis");
    write_rdb(dir, 20000);
    char conf[1200], sock[800];
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    snprintf(conf, sizeof conf,
             "port 0\nunixsocket %s\nunixsocketperm 700\ndir %s\ndbfilename dump.rdb\n"
             "save \"\"\nappendonly no\nlogfile %s/redis.log\nkey-load-delay 1000\n"
             "loading-process-events-interval-bytes 1024\n",
             sock, dir, dir);
    const char *conffile = test_tmp_path("loading.conf");
    test_write_file(conffile, conf);
    const char *rargv[] = {"/usr/bin/env", "redis-server", conffile, NULL};
    pid_t rpid = test_spawn(rargv, NULL, test_tmp_path("redis.out"));
    test_track(rpid);

    /* Wait until it answers LOADING. */
    redisContext *c = NULL;
    int64_t deadline = test_now_ms() + test_ms(10000);
    for (;;) {
        if (!c) c = redisConnectUnix(sock);
        if (c && c->err) {
            redisFree(c);
            c = NULL;
        }
        redisReply *r = c ? redisCommand(c, "SET probe 1") : NULL;
        int loading = r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0;
        if (r) freeReplyObject(r);
        if (loading) break;
        ASSERT(test_now_ms() < deadline);
        test_pause_ms(20);
    }

    char url[900];
    snprintf(url, sizeof url, "unix://%s", sock);
    const char *log = test_tmp_path("jobd.log");
    pid_t pid = test_jobd_start(log, url, "q", "st", NULL, NULL);
    int port = httpc_jobd_port(log, test_ms(10000));
    ASSERT_GT(port, 0);
    char *body = wait_ready_body(port, "loading its data set", log);
    free(body);
    /* A few more attempts meet the loading Redis (the third comes 0.15 to
     * 0.3 s after the first). */
    body = wait_ready_body(port, "(attempt 3,", log);
    free(body);

    redisReply *r = redisCommand(c, "CONFIG SET key-load-delay 0");
    ASSERT(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    CHECK_OR_DUMP(test_wait_log(log, test_ms(20000), "Redis ready", NULL) == 0, log,
                  "jobd never became ready after the load");

    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    kill(rpid, SIGTERM);
    ASSERT_EQ(test_waitpid(rpid, test_ms(10000)), 0);
    test_untrack(rpid);

    int errors = test_count_log(log, "\"level\":\"error\"");
    CHECK_OR_DUMP(errors == 0, log, "%d error-level lines while Redis was loading", errors);
    int loading = test_count_log(log, "loading its data set");
    CHECK_OR_DUMP(loading == 1, log, "%d lines about the load (want one)", loading);
}
