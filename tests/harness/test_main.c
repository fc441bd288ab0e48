/* test_main.c - runs one registered test by name (or lists them). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 512

static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int ntests;
static const char *current;
static char tmpdir[512];
static char prefix[256];

void test_register(const char *name, test_fn fn)
{
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    }
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s at %s:%d: ", current ? current : "?", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t test_ms(int64_t ms)
{
    const char *m = getenv("JOBD_TEST_TIMEOUT_MULTIPLIER");
    int k = m ? atoi(m) : 1;
    return ms * (k > 0 ? k : 1);
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] && !getenv("JOBD_TEST_KEEP")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    }
}

const char *test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/jobd-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) test_fail(__FILE__, __LINE__, "mkdtemp failed");
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

const char *test_prefix(void)
{
    if (!prefix[0]) snprintf(prefix, sizeof prefix, "jt-%s-%d", current, (int)getpid());
    return prefix;
}

const char *test_name(void)
{
    return current;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ntests; i++)
            printf("%s\n", tests[i].name);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < ntests; i++) {
        if (strcmp(tests[i].name, argv[1]) == 0) {
            current = tests[i].name;
            /* A test that stops a redis-server must see EPIPE, not die. */
            signal(SIGPIPE, SIG_IGN);
            setvbuf(stdout, NULL, _IONBF, 0);
            tests[i].fn();
            printf("ok %s\n", current);
            return 0;
        }
    }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
}
