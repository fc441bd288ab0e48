/* Unit tests of how jobd and libjobd read a Redis connection: URL forms
 * with an ACL user, what a failed connect or an error reply means, and the
 * reconnect backoff with its log policy. No Redis. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd/client.h"
#include "redis_fail.h"
#include "redis_url.h"
#include "rq.h"
#include "test.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

TEST(redis_url_user_forms)
{
    redis_url_t u;
    char err[256], d[700];
    /* A user alone names the user; the password comes from the file. */
    ASSERT_EQ(redis_url_parse("redis://jobduser@db.local:6380/2", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.user, "jobduser");
    ASSERT_STR_EQ(u.password, "");
    ASSERT_STR_EQ(u.host, "db.local");
    ASSERT_EQ(u.port, 6380);
    ASSERT_EQ(u.db, 2);
    char path[] = "/tmp/jobd-url-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    write_file(path, "file-pw\n");
    ASSERT_EQ(redis_url_password_file(&u, path, err, sizeof err), 0);
    ASSERT_STR_EQ(u.user, "jobduser");
    ASSERT_STR_EQ(u.password, "file-pw");
    redis_url_describe(&u, d, sizeof d);
    ASSERT_STR_EQ(d, "redis://jobduser:***@db.local:6380/2");

    /* A password in the URL wins over the file. */
    ASSERT_EQ(redis_url_parse("redis://jobduser:url-pw@h", &u, err, sizeof err), 0);
    ASSERT_EQ(redis_url_password_file(&u, path, err, sizeof err), 0);
    ASSERT_STR_EQ(u.user, "jobduser");
    ASSERT_STR_EQ(u.password, "url-pw");
    /* The default user: ":password@". */
    ASSERT_EQ(redis_url_parse("redis://:pw@h", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.user, "");
    ASSERT_STR_EQ(u.password, "pw");
    redis_url_describe(&u, d, sizeof d);
    ASSERT_STR_EQ(d, "redis://***@h:6379/0");
    /* No password anywhere: the user is still named (a nopass user). */
    ASSERT_EQ(redis_url_parse("redis://jobduser@h", &u, err, sizeof err), 0);
    redis_url_describe(&u, d, sizeof d);
    ASSERT_STR_EQ(d, "redis://jobduser@h:6379/0");

    /* unix:// takes the same userinfo before the path. */
    ASSERT_EQ(redis_url_parse("unix://jobduser@/run/r.sock", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.user, "jobduser");
    ASSERT_STR_EQ(u.password, "");
    ASSERT_STR_EQ(u.path, "/run/r.sock");
    ASSERT_EQ(redis_url_password_file(&u, path, err, sizeof err), 0);
    ASSERT_STR_EQ(u.password, "file-pw");
    ASSERT_EQ(redis_url_parse("unix://u%40x:p%40ss@/run/r.sock?db=3", &u, err, sizeof err), 0);
    ASSERT_STR_EQ(u.user, "u@x");
    ASSERT_STR_EQ(u.password, "p@ss");
    ASSERT_EQ(u.db, 3);
    redis_url_describe(&u, d, sizeof d);
    ASSERT(strstr(d, "p@ss") == NULL);

    /* A bad URL's message names the forms and never holds the password. */
    ASSERT_EQ(redis_url_parse("redis://u:s3cret@h:0", &u, err, sizeof err), JOBD_EINVAL);
    ASSERT(strstr(err, "s3cret") == NULL);
    ASSERT_CONTAINS(err, "USER");
    unlink(path);
}

TEST(redis_fail_classify)
{
    ASSERT_EQ(redis_fail_of_connect("Connection refused"), REDIS_FAIL_REFUSED);
    ASSERT_EQ(redis_fail_of_connect("Connection timed out"), REDIS_FAIL_TIMEOUT);
    ASSERT_EQ(redis_fail_of_connect("No such file or directory"), REDIS_FAIL_UNREACHABLE);
    ASSERT_EQ(redis_fail_of_connect(NULL), REDIS_FAIL_UNREACHABLE);

    ASSERT_EQ(redis_fail_of_reply("LOADING Redis is loading the dataset in memory"),
              REDIS_FAIL_LOADING);
    ASSERT_EQ(redis_fail_of_reply("NOAUTH Authentication required."), REDIS_FAIL_AUTH);
    ASSERT_EQ(redis_fail_of_reply("WRONGPASS invalid username-password pair or user is disabled."),
              REDIS_FAIL_AUTH);
    ASSERT_EQ(redis_fail_of_reply("ERR AUTH <password> called without any password configured "
                                  "for the default user. Are you sure your configuration is "
                                  "correct?"),
              REDIS_FAIL_AUTH);
    ASSERT_EQ(redis_fail_of_reply("ERR invalid password"), REDIS_FAIL_AUTH);
    ASSERT_EQ(redis_fail_of_reply("ERR Client sent AUTH, but no password is set"), REDIS_FAIL_AUTH);
    ASSERT_EQ(redis_fail_of_reply("NOPERM this user has no permissions to run the 'evalsha' "
                                  "command"),
              REDIS_FAIL_NOPERM);
    ASSERT_EQ(redis_fail_of_reply("ERR unknown command 'FOO'"), REDIS_FAIL_OTHER);
    ASSERT_EQ(redis_fail_of_reply("BUSY Redis is busy running a script."), REDIS_FAIL_OTHER);
    ASSERT_EQ(redis_fail_of_reply(""), REDIS_FAIL_OTHER);
    ASSERT_EQ(redis_fail_of_reply(NULL), REDIS_FAIL_OTHER);

    ASSERT(redis_fail_is_unavailable(REDIS_FAIL_AUTH));
    ASSERT(redis_fail_is_unavailable(REDIS_FAIL_LOADING));
    ASSERT(!redis_fail_is_unavailable(REDIS_FAIL_OTHER));
    ASSERT_STR_EQ(redis_fail_phrase(REDIS_FAIL_REFUSED), "connection refused");
}

TEST(rq_backoff_and_log_policy)
{
    /* min(cap, base * 2^(n-1)): 100 ms doubling to the 5 s cap. */
    int64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
    for (int n = 1; n <= 9; n++)
        ASSERT_EQ(rq_backoff_ms(n), want[n - 1]);
    ASSERT_EQ(rq_backoff_ms(1000000), 5000);

    /* One line per backoff step up to the cap, then one a minute. */
    redis_fail_t R = REDIS_FAIL_REFUSED, N = REDIS_FAIL_NONE;
    ASSERT(rq_log_due(1, R, N, 0, 0));
    for (int n = 2; n <= 7; n++)
        ASSERT(rq_log_due(n, R, R, 1000, 900));
    for (int n = 8; n <= 20; n++)
        ASSERT(!rq_log_due(n, R, R, 60000, 5000));
    ASSERT(rq_log_due(21, R, R, 65000, 5000));
    /* A new reason is always worth a line. */
    ASSERT(rq_log_due(9, REDIS_FAIL_AUTH, R, 6000, 5000));
    /* Loading: one line, however long it lasts. */
    ASSERT(rq_log_due(3, REDIS_FAIL_LOADING, R, 6000, 5000));
    ASSERT(!rq_log_due(4, REDIS_FAIL_LOADING, REDIS_FAIL_LOADING, 6000, 5000));
    ASSERT(!rq_log_due(40, REDIS_FAIL_LOADING, REDIS_FAIL_LOADING, 600000, 5000));
}
