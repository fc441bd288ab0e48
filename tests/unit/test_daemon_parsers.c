/* Unit tests of jobd's pure parsers: config precedence (flag > env > file)
 * and the handlers file (the handler protocol: test_hproto.c). No Redis. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "handlers.h"
#include "test.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

static int load(config_t *c, char *err, size_t errlen, const char *const *args)
{
    char *argv[32] = {"jobd"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    return config_load(c, argc, argv, err, errlen);
}

TEST(config_defaults)
{
    config_t c;
    char err[256];
    unsetenv("JOBD_CONCURRENCY");
    unsetenv("JOBD_CONFIG");
    unsetenv("JOBD_HTTP"); /* ctest sets it for the integration tests */
    ASSERT_EQ(load(&c, err, sizeof err, NULL), CONFIG_OK);
    ASSERT_STR_EQ(c.redis_url, "redis://127.0.0.1:6379/0");
    ASSERT_STR_EQ(c.queues[0].name, "default");
    ASSERT_EQ(c.nqueues, 1);
    ASSERT_EQ(c.concurrency, 4);
    ASSERT_EQ(c.lease_ms, 30000);
    ASSERT_EQ(c.drain_timeout_ms, 25000);
    ASSERT_STR_EQ(c.http, "127.0.0.1:9090");
    ASSERT_EQ(c.log_json, 1);
    config_free(&c);
}

TEST(config_flag_beats_env_beats_file)
{
    char path[600], err[256];
    snprintf(path, sizeof path, "%s/c.json", test_tmpdir());
    write_file(path, "{\"concurrency\": 2, \"lease\": 12, \"drain_timeout\": \"5s\","
                     " \"queues\": {\"a\": {\"weight\": 3}, \"b\": {\"limit\": 2}}}");
    config_t c;
    setenv("JOBD_CONCURRENCY", "7", 1);
    setenv("JOBD_LEASE", "9", 1);
    const char *args[] = {"--config", path, "--concurrency", "11", NULL};
    ASSERT_EQ(load(&c, err, sizeof err, args), CONFIG_OK);
    ASSERT_EQ(c.concurrency, 11);        /* flag */
    ASSERT_EQ(c.lease_ms, 9000);         /* env over file */
    ASSERT_EQ(c.drain_timeout_ms, 5000); /* file */
    ASSERT_EQ(c.nqueues, 2);
    ASSERT_STR_EQ(c.queues[0].name, "a");
    ASSERT_EQ(c.queues[0].weight, 3);
    ASSERT_EQ(c.queues[1].limit, 2);
    config_free(&c);
    unsetenv("JOBD_CONCURRENCY");
    unsetenv("JOBD_LEASE");
}

TEST(config_errors_name_the_key)
{
    config_t c;
    char err[256];
    const char *bad_flag[] = {"--no-such-flag", NULL};
    ASSERT_EQ(load(&c, err, sizeof err, bad_flag), CONFIG_USAGE);
    config_free(&c);
    const char *bad_value[] = {"--concurrency", "abc", NULL};
    ASSERT_EQ(load(&c, err, sizeof err, bad_value), CONFIG_INVALID);
    ASSERT_CONTAINS(err, "concurrency");
    config_free(&c);
    setenv("JOBD_LEASE", "soon", 1);
    ASSERT_EQ(load(&c, err, sizeof err, NULL), CONFIG_INVALID);
    ASSERT_CONTAINS(err, "JOBD_LEASE");
    config_free(&c);
    unsetenv("JOBD_LEASE");
    char path[600];
    snprintf(path, sizeof path, "%s/bad.json", test_tmpdir());
    write_file(path, "{\"concurency\": 3}");
    const char *bad_key[] = {"--config", path, NULL};
    ASSERT_EQ(load(&c, err, sizeof err, bad_key), CONFIG_INVALID);
    ASSERT_CONTAINS(err, "concurency");
    config_free(&c);
    const char *bad_queue[] = {"--queues", "a:0", NULL};
    ASSERT_EQ(load(&c, err, sizeof err, bad_queue), CONFIG_INVALID);
    ASSERT_CONTAINS(err, "weight");
    config_free(&c);
}

TEST(config_queue_weights)
{
    config_t c;
    char err[256];
    ASSERT_EQ(config_parse_queues(&c, "q1:3, q2 ,q3:1", err, sizeof err), 0);
    ASSERT_EQ(c.nqueues, 3);
    ASSERT_STR_EQ(c.queues[1].name, "q2");
    ASSERT_EQ(c.queues[0].weight, 3);
    ASSERT_EQ(c.queues[1].weight, 1);
    ASSERT_EQ(config_parse_queues(&c, "a{b}", err, sizeof err), -1);
    ASSERT_EQ(config_parse_queues(&c, ",", err, sizeof err), -1);
}

TEST(config_duplicate_queue_is_usage_error)
{
    config_t c;
    char err[256];
    ASSERT_EQ(config_parse_queues(&c, "dupe:1,dupe:2", err, sizeof err), -2);
    ASSERT_CONTAINS(err, "dupe");
    const char *flag[] = {"--queues", "dupe:1,dupe:2", NULL};
    ASSERT_EQ(load(&c, err, sizeof err, flag), CONFIG_USAGE);
    ASSERT_CONTAINS(err, "--queues");
    ASSERT_CONTAINS(err, "dupe");
    config_free(&c);
    setenv("JOBD_QUEUES", "a, b ,a:3", 1);
    ASSERT_EQ(load(&c, err, sizeof err, NULL), CONFIG_USAGE);
    ASSERT_CONTAINS(err, "\"a\"");
    config_free(&c);
    unsetenv("JOBD_QUEUES");
    char path[600];
    snprintf(path, sizeof path, "%s/dupe.json", test_tmpdir());
    write_file(path, "{\"queues\": \"x:2,y,x\"}");
    const char *file[] = {"--config", path, NULL};
    ASSERT_EQ(load(&c, err, sizeof err, file), CONFIG_USAGE);
    ASSERT_CONTAINS(err, "queues");
    config_free(&c);
}

TEST(config_worker_id_checked)
{
    config_t c;
    char err[256];
    const char *bad[] = {"--worker-id", "a|b", NULL};
    ASSERT_EQ(load(&c, err, sizeof err, bad), CONFIG_INVALID);
    ASSERT_CONTAINS(err, "worker-id");
    config_free(&c);
    const char *empty[] = {"--worker-id", "", NULL};
    ASSERT_EQ(load(&c, err, sizeof err, empty), CONFIG_INVALID);
    config_free(&c);
    const char *good[] = {"--worker-id", "host-1.example:42", NULL};
    ASSERT_EQ(load(&c, err, sizeof err, good), CONFIG_OK);
    ASSERT_STR_EQ(c.worker_id, "host-1.example:42");
    config_free(&c);
}

TEST(handlers_file_checks)
{
    char path[600], err[512];
    handlers_t h;
    snprintf(path, sizeof path, "%s/h.json", test_tmpdir());
    write_file(path, "{\"a.b\": {\"exec\": [\"/bin/true\", \"-x\"], \"timeout_s\": 2.5,"
                     " \"max_attempts\": 3, \"retry_base_s\": 0.5},"
                     " \"quick\": {\"builtin\": \"sleep\"}}");
    ASSERT_EQ(handlers_load(&h, path, err, sizeof err), 0);
    const handler_t *a = handlers_find(&h, "a.b");
    ASSERT(a != NULL);
    ASSERT_STR_EQ(a->argv[1], "-x");
    ASSERT_EQ(a->timeout_ms, 2500);
    ASSERT_EQ(a->max_attempts, 3);
    ASSERT_EQ(a->retry_base_ms, 500);
    ASSERT(handlers_find(&h, "quick")->builtin == builtin_find("sleep"));
    ASSERT(handlers_find(&h, "noop") != NULL); /* built-ins answer to their names */
    ASSERT(handlers_find(&h, "nope") == NULL);
    handlers_free(&h);

    static const char *const bad[][2] = {
        {"{\"x\": {\"exec\": [\"/no/such/program\"]}}", "not an executable"},
        {"{\"x\": {\"exec\": []}}", "non-empty"},
        {"{\"x\": {\"builtin\": \"nosuch\"}}", "no built-in"},
        {"{\"x\": {\"exec\": [\"/bin/true\"], \"colour\": 1}}", "unknown key"},
        {"{\"x\": {}}", "exactly one"},
        {"[1]", "want an object"},
        {"{bad", "handlers file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i][0]);
        ASSERT_EQ(handlers_load(&h, path, err, sizeof err), -1);
        ASSERT_CONTAINS(err, bad[i][1]);
        handlers_free(&h);
    }
}

/* Every built-in answers to its own name, however many there are (no fixed
 * table of handler_t's that could run out), with or without a file. */
TEST(handlers_every_builtin)
{
    handlers_t h;
    char err[256];
    ASSERT_EQ(handlers_load(&h, NULL, err, sizeof err), 0);
    ASSERT_GE(builtin_count(), 5);
    for (size_t i = 0; i < builtin_count(); i++) {
        const handler_t *hd = handlers_find(&h, builtin_at(i)->name);
        ASSERT(hd != NULL);
        ASSERT(hd->builtin == builtin_at(i));
        ASSERT_STR_EQ(hd->type, builtin_at(i)->name);
        ASSERT(hd == handlers_find(&h, builtin_at(i)->name)); /* the same one each time */
    }
    ASSERT(builtin_at(builtin_count()) == NULL);
    ASSERT(handlers_find(&h, "nope") == NULL);
    handlers_free(&h);
}
