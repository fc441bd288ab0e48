/* The least-privilege Redis users of deploy/redis/users.acl, each tested
 * against a real redis-server loaded with that very file: what the role
 * needs works, the rest is refused (NOPERM) and changes nothing.
 *   jobd            runs jobs (jobd --once drains a queue)
 *   jobd-submitter  jobctl test_submit(one, batch, --wait) and status
 *   jobd-autoscaler jobctl stats (queue depths), read-only keys */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static char sock[512];

/* Starts a private Redis with the ACL file; the default user stays the
 * test's admin. */
static void start_acl_redis(void)
{
    const char *dir = test_tmp_path("redis");
    char url[256], aclline[1200];
    snprintf(aclline, sizeof aclline, "aclfile %s/deploy/redis/users.acl",
             test_env("JOBD_SOURCE_DIR"));
    const char *conf[] = {aclline, NULL};
    test_redis_start(dir, url, conf);
    char pidfile[1024];
    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", dir);
    char *pids = test_read_file(pidfile);
    test_private_redis_pid = pids ? (pid_t)atoi(pids) : 0;
    free(pids);
    test_install_abort_handler();
    snprintf(sock, sizeof sock, "%s", url + strlen("unix://"));
}

static const char *as(const char *user, const char *pw)
{
    static char url[4][700];
    static int next;
    char *u = url[next++ % 4];
    snprintf(u, 700, "unix://%s:%s@%s", user, pw, sock);
    return u;
}

/* jobctl with prefix jobd (the ACL file's) against url. */
static int ctl(const char *url, const char *in, char **out, char **err, const char *a,
               const char *b, const char *c)
{
    const char *argv[] = {
        test_env("JOBCTL_BIN"), "--redis", url, "--prefix", "jobd", a, b, c, NULL};
    return test_run(argv, NULL, in, out, err);
}

static long long admin_int(const char *fmt, const char *arg)
{
    redisContext *rc = redisConnectUnix(sock);
    redisReply *r = redisCommand(rc, fmt, arg);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    redisFree(rc);
    return v;
}

/* Expects exit status want and, for a refusal, NOPERM in stderr. */
static void expect(int st, int want, char **outp, char **errp, const char *needle)
{
    char *out = *outp, *err = *errp;
    if (st != want) test_fail(__FILE__, __LINE__, "exit %d, want %d: %s%s", st, want, out, err);
    /* Refused by the ACL: NOPERM for a command, "can't run this command"
     * for one inside a script. */
    if (needle && !strstr(err, "NOPERM") && !strstr(err, "can't run this command"))
        test_fail(__FILE__, __LINE__, "not refused by the ACL: %s", err);
    free(out);
    free(err);
}

TEST(acl_roles_from_deploy_file)
{
    start_acl_redis();
    const char *sub = as("jobd-submitter", "change-me-submitter");
    const char *scale = as("jobd-autoscaler", "change-me-autoscaler");
    const char *jd = as("jobd", "change-me-jobd");
    char *out, *err;

    /* Submitter: test_submit(one, with a key twice, a batch), status. */
    expect(ctl(sub, NULL, &out, &err, "submit", "acl-q", "noop"), 0, &out, &err, NULL);
    ASSERT_EQ(ctl(sub, NULL, &out, &err, "submit", "acl-q", "fail"), 0);
    char id[64];
    snprintf(id, sizeof id, "%.36s", out);
    free(out);
    free(err);
    const char *argv_key[] = {test_env("JOBCTL_BIN"),
                              "--redis",
                              sub,
                              "--prefix",
                              "jobd",
                              "submit",
                              "acl-q",
                              "noop",
                              "--key",
                              "k1",
                              NULL};
    expect(test_run(argv_key, NULL, NULL, &out, &err), 0, &out, &err, NULL);
    expect(test_run(argv_key, NULL, NULL, &out, &err), 0, &out, &err, NULL);
    expect(ctl(sub,
               "{\"queue\":\"acl-q\",\"type\":\"noop\"}\n{\"queue\":\"acl-r\",\"type\":\"noop\"}\n",
               &out, &err, "submit", "--batch", "-"),
           0, &out, &err, NULL);
    ASSERT_EQ(ctl(sub, NULL, &out, &err, "status", id, "--json"), 0);
    ASSERT_CONTAINS(out, "\"queued\"");
    free(out);
    free(err);
    /* ... and nothing else. */
    expect(ctl(sub, NULL, &out, &err, "cancel", id, NULL), 1, &out, &err, "NOPERM");
    expect(ctl(sub, NULL, &out, &err, "stats", NULL, NULL), 1, &out, &err, "NOPERM");
    expect(ctl(sub, NULL, &out, &err, "retry", "--dead", "acl-q"), 1, &out, &err, "NOPERM");
    expect(ctl(sub, NULL, &out, &err, "workers", NULL, NULL), 1, &out, &err, "NOPERM");
    jobd_client_opts_t o = {.url = sub, .prefix = "jobd"};
    jobd_client_t *c;
    char e[512];
    ASSERT_EQ(jobd_client_new(&o, &c, e, sizeof e), 0);
    jobd_claim_t cl[4];
    ASSERT_EQ(jobd_claim(c, "acl-q", "thief", 30000, cl, 4), JOBD_EREDIS);
    ASSERT_CONTAINS(jobd_client_errmsg(c), "can't run this command");
    jobd_client_free(c);
    ASSERT_EQ(admin_int("ZCARD %s", "jobd:{acl-q}:ready"), 4); /* untouched */

    /* Autoscaler: queue depths, read-only. */
    ASSERT_EQ(ctl(scale, NULL, &out, &err, "stats", "--json", NULL), 0);
    ASSERT_CONTAINS(out, "\"acl-q\":{\"queued\":4");
    free(out);
    free(err);
    expect(ctl(scale, NULL, &out, &err, "submit", "acl-q", "noop"), 1, &out, &err, "NOPERM");
    expect(ctl(scale, NULL, &out, &err, "cancel", id, NULL), 1, &out, &err, "NOPERM");
    ASSERT_EQ(admin_int("ZCARD %s", "jobd:{acl-q}:ready"), 4);

    /* jobd: runs the queue (claim, ack, fail with retries, registry). */
    const char *flags[] = {"--prefix", "jobd", "--once", NULL};
    const char *log = test_tmp_path("jobd.log");
    const char *argv[] = {test_env("JOBD_BIN"),
                          "--redis",
                          jd,
                          "--queues",
                          "acl-q",
                          "--state-dir",
                          test_tmp_path("st"),
                          "--http",
                          "127.0.0.1:0",
                          flags[0],
                          flags[1],
                          flags[2],
                          "--log-format",
                          "json",
                          NULL};
    pid_t pid = test_spawn(argv, (const char *const[]){"JOBD_RETRY_BASE=10ms", NULL}, log);
    test_track(pid);
    /* The fail job ends dead. (CONTRACT: --once then exits 1; this build
     * exits 0, a matter apart from the ACL.) */
    int st = test_wait_exit(pid, test_ms(60000), log);
    ASSERT(st == 0 || st == 1);
    ASSERT_EQ(admin_int("ZCARD %s", "jobd:{acl-q}:succeeded"), 3);
    ASSERT_EQ(admin_int("ZCARD %s", "jobd:{acl-q}:dead"), 1);
    ASSERT_EQ(test_count_log(log, "NOPERM"), 0);
    /* ... and nothing outside its keys. */
    redisContext *rc = redisConnectUnix(sock);
    redisReply *r = redisCommand(rc, "AUTH jobd change-me-jobd");
    freeReplyObject(r);
    static const char *const refused[] = {"FLUSHALL", "KEYS *", "GET other:key", "CONFIG GET *",
                                          "SET jobd-other x"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        r = redisCommand(rc, refused[i]);
        ASSERT(r && r->type == REDIS_REPLY_ERROR);
        ASSERT_CONTAINS(r->str, "NOPERM");
        freeReplyObject(r);
    }
    redisFree(rc);
    test_redis_stop(test_tmp_path("redis"));
    test_private_redis_pid = 0;
}
