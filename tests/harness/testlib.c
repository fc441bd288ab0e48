/* testlib.c - see testlib.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

extern char **environ;

const char *test_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) test_fail(__FILE__, __LINE__, "environment variable %s is not set", name);
    return v;
}

const char *test_redis_url(void)
{
    return test_env("JOBD_TEST_REDIS");
}

const char *test_helper(const char *name)
{
    static char path[8][1024];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 1024, "%s/%s", test_env("JOBD_TEST_BIN_DIR"), name);
    return p;
}

jobd_client_t *test_client_at(const char *url)
{
    jobd_client_opts_t o = {.url = url, .prefix = test_prefix()};
    jobd_client_t *c = NULL;
    char err[512];
    int rc = jobd_client_new(&o, &c, err, sizeof err);
    if (rc < 0) test_fail(__FILE__, __LINE__, "connect to %s: %s", url, err);
    return c;
}

jobd_client_t *test_client(void)
{
    return test_client_at(test_redis_url());
}

redisContext *test_redis(void)
{
    static redisContext *rc;
    if (rc && !rc->err) return rc;
    if (rc) redisFree(rc);
    const char *url = test_redis_url();
    if (strncmp(url, "unix://", 7) != 0) test_fail(__FILE__, __LINE__, "want a unix:// URL");
    rc = redisConnectUnix(url + 7);
    if (!rc || rc->err) test_fail(__FILE__, __LINE__, "connect to test Redis failed");
    return rc;
}

static redisReply *vcmd(const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(test_redis(), fmt, ap);
    if (!r) test_fail(__FILE__, __LINE__, "test Redis command failed: %s", test_redis()->errstr);
    return r;
}

redisReply *test_cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(fmt, ap);
    va_end(ap);
    return r;
}

long long test_cmd_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vcmd(fmt, ap);
    va_end(ap);
    if (r->type != REDIS_REPLY_INTEGER)
        test_fail(__FILE__, __LINE__, "expected an integer reply to %s, got type %d (%s)", fmt,
                  r->type, r->str ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void set_env(const char *const extra_env[])
{
    for (int i = 0; extra_env && extra_env[i]; i++)
        putenv((char *)extra_env[i]);
}

static char *drain_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

static int exit_status(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int test_run(const char *const argv[], const char *const extra_env[], const char *stdin_text,
             char **out, char **err)
{
    char tmpl_in[] = "/tmp/jobd-in-XXXXXX", tmpl_out[] = "/tmp/jobd-out-XXXXXX",
         tmpl_err[] = "/tmp/jobd-err-XXXXXX";
    int in = mkstemp(tmpl_in), fo = mkstemp(tmpl_out), fe = mkstemp(tmpl_err);
    if (in < 0 || fo < 0 || fe < 0) test_fail(__FILE__, __LINE__, "mkstemp failed");
    unlink(tmpl_in);
    unlink(tmpl_out);
    unlink(tmpl_err);
    if (stdin_text) {
        size_t left = strlen(stdin_text);
        const char *p = stdin_text;
        while (left) {
            ssize_t n = write(in, p, left);
            if (n <= 0) test_fail(__FILE__, __LINE__, "write stdin failed");
            p += n;
            left -= (size_t)n;
        }
        lseek(in, 0, SEEK_SET);
    }
    pid_t pid = fork();
    if (pid == 0) {
        set_env(extra_env);
        if (stdin_text) {
            dup2(in, 0);
        } else {
            int devnull = open("/dev/null", O_RDONLY);
            dup2(devnull, 0);
        }
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    lseek(fo, 0, SEEK_SET);
    lseek(fe, 0, SEEK_SET);
    if (out) *out = drain_fd(fo);
    if (err) *err = drain_fd(fe);
    close(in);
    close(fo);
    close(fe);
    return exit_status(st);
}

pid_t test_spawn(const char *const argv[], const char *const extra_env[], const char *log_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        set_env(extra_env);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid < 0) test_fail(__FILE__, __LINE__, "fork failed");
    return pid;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int test_waitpid(pid_t pid, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return exit_status(st);
        if (test_now_ms() >= deadline) return -1;
        pause_ms(5); /* polling a condition with a deadline, not a fixed sleep */
    }
}

static int line_has_all(const char *line, const char *const *needles, int n)
{
    for (int i = 0; i < n; i++)
        if (!strstr(line, needles[i])) return 0;
    return 1;
}

int test_wait_log(const char *path, int64_t ms, const char *needle, ...)
{
    const char *needles[4];
    int n = 0;
    va_list ap;
    va_start(ap, needle);
    for (const char *s = needle; s && n < 4; s = va_arg(ap, const char *))
        needles[n++] = s;
    va_end(ap);
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        FILE *f = fopen(path, "r");
        if (f) {
            char *line = NULL;
            size_t cap = 0;
            int found = 0;
            while (!found && getline(&line, &cap, f) > 0)
                found = line_has_all(line, needles, n);
            free(line);
            fclose(f);
            if (found) return 0;
        }
        if (test_now_ms() >= deadline) return -1;
        pause_ms(10);
    }
}

int test_count_log(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    int count = 0;
    while (getline(&line, &cap, f) > 0)
        count += strstr(line, needle) != NULL;
    free(line);
    fclose(f);
    return count;
}

void test_redis_start(const char *dir, char *url, const char *const extra_conf[])
{
    const char *argv[32] = {"/bin/bash", test_env("JOBD_FIXTURE_SCRIPT"), "start", dir};
    int n = 4;
    for (int i = 0; extra_conf && extra_conf[i] && n < 31; i++)
        argv[n++] = extra_conf[i];
    argv[n] = NULL;
    char *err = NULL;
    int st = test_run(argv, NULL, NULL, NULL, &err);
    if (st != 0) test_fail(__FILE__, __LINE__, "redis fixture start failed: %s", err);
    free(err);
    snprintf(url, 256, "unix://%s/redis.sock", dir);
}

void test_redis_stop(const char *dir)
{
    const char *argv[] = {"/bin/bash", test_env("JOBD_FIXTURE_SCRIPT"), "halt", dir, NULL};
    test_run(argv, NULL, NULL, NULL, NULL);
}

char *test_read_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    char *s = drain_fd(fd);
    close(fd);
    return s;
}

void test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) test_fail(__FILE__, __LINE__, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}
