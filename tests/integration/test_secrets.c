/* test_secrets.c - a Redis password never shows in jobd's logs, and never
 * reaches a handler's environment (CONTRACT: secrets come from files or the
 * URL and are never logged). Black box. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testlib.h"

TEST(secrets_password_never_logged)
{
    const char *log = test_tmp_path("jobd.log"), *pwfile = test_tmp_path("pw");
    test_write_file(pwfile, "file-s3cret-pw\n");
    /* Port 1 answers nobody: jobd logs where it tried. */
    const char *argv[] = {test_env("JOBD_BIN"),
                          "--redis",
                          "redis://:url-s3cret-pw@127.0.0.1:1/0",
                          "--state-dir",
                          test_tmp_path("s1"),
                          "--http",
                          "127.0.0.1:0",
                          NULL};
    pid_t pid = test_spawn(argv, NULL, log);
    test_track(pid);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "Redis unreachable", NULL), 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);

    const char *log2 = test_tmp_path("jobd2.log");
    const char *argv2[] = {test_env("JOBD_BIN"), "--redis", "redis://127.0.0.1:1/0", "--state-dir",
                           test_tmp_path("s2"),  "--http",  "127.0.0.1:0",           NULL};
    char env[700];
    snprintf(env, sizeof env, "JOBD_REDIS_PASSWORD_FILE=%s", pwfile);
    const char *envv[] = {env, NULL};
    pid = test_spawn(argv2, envv, log2);
    test_track(pid);
    ASSERT_EQ(test_wait_log(log2, test_ms(10000), "Redis unreachable", NULL), 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log2, 0);

    /* An ACL user with its password in the file, and one with it in the
     * URL: the user is named, the password never. */
    const char *log3 = test_tmp_path("jobd3.log");
    const char *argv3[] = {test_env("JOBD_BIN"),
                           "--redis",
                           "redis://jobduser@127.0.0.1:1/0",
                           "--state-dir",
                           test_tmp_path("s3"),
                           "--http",
                           "127.0.0.1:0",
                           NULL};
    pid = test_spawn(argv3, envv, log3);
    test_track(pid);
    ASSERT_EQ(test_wait_log(log3, test_ms(10000), "Redis unreachable", NULL), 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log3, 0);
    const char *log4 = test_tmp_path("jobd4.log");
    const char *argv4[] = {test_env("JOBD_BIN"),
                           "--redis",
                           "unix://jobduser:url-s3cret-pw@/nonexistent/redis.sock",
                           "--state-dir",
                           test_tmp_path("s4"),
                           "--http",
                           "127.0.0.1:0",
                           NULL};
    pid = test_spawn(argv4, NULL, log4);
    test_track(pid);
    ASSERT_EQ(test_wait_log(log4, test_ms(10000), "Redis unreachable", NULL), 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log4, 0);

    char *a = test_read_file(log), *b = test_read_file(log2);
    char *c = test_read_file(log3), *d = test_read_file(log4);
    ASSERT(a && strstr(a, "***@127.0.0.1:1") != NULL); /* where, without the secret */
    ASSERT(strstr(a, "s3cret") == NULL);
    ASSERT(b && strstr(b, "s3cret") == NULL);
    ASSERT(c && strstr(c, "jobduser:***@127.0.0.1:1") != NULL);
    ASSERT(strstr(c, "s3cret") == NULL);
    ASSERT(d && strstr(d, "jobduser:***@/nonexistent/redis.sock") != NULL);
    ASSERT(strstr(d, "s3cret") == NULL);
    free(a);
    free(b);
    free(c);
    free(d);

    /* jobctl's messages name the user, never the password. */
    char env_url[200], *out, *err;
    snprintf(env_url, sizeof env_url, "JOBD_REDIS_URL=%s", "redis://jobduser@127.0.0.1:1/0");
    const char *envc[] = {env_url, env, NULL};
    const char *ctl[] = {test_env("JOBCTL_BIN"), "stats", NULL};
    ASSERT_EQ(test_run(ctl, envc, NULL, &out, &err), 69);
    ASSERT_CONTAINS(err, "jobduser:***@127.0.0.1:1");
    ASSERT(strstr(err, "s3cret") == NULL);
    free(out);
    free(err);
}

TEST(secrets_not_in_handler_environment)
{
    /* The handler is a script that writes its environment to a file; jobd
     * itself runs with the Redis URL, password included, in its own. */
    const char *q = "sec", *log = test_tmp_path("jobd.log"), *out = test_tmp_path("env.out");
    char text[1024];
    snprintf(text, sizeof text, "env > '%s'\n", out);
    const char *hfile = test_script_handlers("dump", text);

    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "dump", "{}", 0, 0, id);
    const char *envv[] = {"JOBD_REDIS_URL=redis://:env-s3cret@127.0.0.1:1/0", NULL};
    const char *argv[] = {
        test_env("JOBD_BIN"), "--redis", test_redis_url(), "--prefix", test_prefix(),
        "--queues",           q,         "--handlers",     hfile,      "--state-dir",
        test_tmp_path("st"),  "--http",  "127.0.0.1:0",    "--once",   NULL};
    pid_t pid = test_spawn(argv, envv, log);
    test_track(pid);
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
    ASSERT_FIELD(q, id, "state", "succeeded");
    char *e = test_read_file(out);
    ASSERT(e != NULL);
    ASSERT_CONTAINS(e, "JOBD_JOB_ID=");
    ASSERT(strstr(e, "s3cret") == NULL);
    ASSERT(strstr(e, "JOBD_REDIS_URL") == NULL);
    free(e);
    jobd_client_free(c);
}
