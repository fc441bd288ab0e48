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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sqlite3.h>
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

int test_waitpid(pid_t pid, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return exit_status(st);
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(5); /* polling a condition with a deadline, not a fixed sleep */
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
        test_pause_ms(10);
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

const char *test_script_handlers(const char *type, const char *body)
{
    char name[96], text[4096], handlers[1200];
    snprintf(name, sizeof name, "%s.sh", type);
    const char *script = test_tmp_path(name);
    snprintf(text, sizeof text, "#!/bin/sh\n%s", body);
    test_write_file(script, text);
    if (chmod(script, 0755) != 0) test_fail(__FILE__, __LINE__, "chmod %s", script);
    snprintf(handlers, sizeof handlers, "{\"%s\": {\"exec\": [\"%s\"]}}", type, script);
    snprintf(name, sizeof name, "%s-handlers.json", type);
    const char *hfile = test_tmp_path(name);
    test_write_file(hfile, handlers);
    return hfile;
}

/* ---- processes we started: killed if the test aborts ---- */

#define MAX_TRACKED 64

static pid_t tracked[MAX_TRACKED];
pid_t test_private_redis_pid;

static void on_abort(int sig)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] > 0) kill(tracked[i], SIGKILL);
    if (test_private_redis_pid > 0) kill(test_private_redis_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

void test_install_abort_handler(void)
{
    static int installed;
    if (!installed) {
        signal(SIGABRT, on_abort);
        signal(SIGTERM, on_abort);
        signal(SIGSEGV, on_abort);
        /* A Redis or child that goes away must fail an assertion, not kill
         * the test silently. */
        signal(SIGPIPE, SIG_IGN);
    }
    installed = 1;
}

void test_track(pid_t pid)
{
    test_install_abort_handler();
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (tracked[i] <= 0) {
            tracked[i] = pid;
            return;
        }
    }
}

void test_untrack(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] == pid) tracked[i] = 0;
}

pid_t test_spawn(const char *const argv[], const char *const extra_env[], const char *log_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        for (int i = 0; extra_env && extra_env[i]; i++)
            putenv((char *)extra_env[i]);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        /* The test's own SIGPIPE disposition is not jobd's business. */
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid < 0) test_fail(__FILE__, __LINE__, "fork failed");
    return pid;
}

void test_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void test_dump_log(const char *path)
{
    char *s = test_read_file(path);
    if (!s) return;
    size_t len = strlen(s);
    const char *start = len > 8000 ? s + len - 8000 : s;
    fprintf(stderr, "---- last lines of %s ----\n%s\n---- end ----\n", path, start);
    free(s);
}

int test_wait_exit(pid_t pid, int64_t ms, const char *log)
{
    int st = test_waitpid(pid, ms);
    if (st >= 0)
        test_untrack(pid);
    else
        test_dump_log(log);
    return st;
}

/* ---- Redis: the shared test server, or a private one ---- */

char test_private_sock[700];
static redisContext *private_ctx;

static redisContext *R(void)
{
    if (!test_private_sock[0]) return test_redis();
    if (private_ctx && private_ctx->err) {
        redisFree(private_ctx);
        private_ctx = NULL;
    }
    if (!private_ctx) {
        private_ctx = redisConnectUnix(test_private_sock);
        if (private_ctx && private_ctx->err) {
            redisFree(private_ctx);
            private_ctx = NULL;
        }
    }
    return private_ctx;
}

void test_private_redis_start(const char *dir, char *url)
{
    static const char *const conf[] = {"appendonly yes", "appendfsync always", NULL};
    test_redis_start(dir, url, conf);
    char pidfile[1024];
    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", dir);
    char *s = test_read_file(pidfile);
    test_private_redis_pid = s ? (pid_t)atoi(s) : 0;
    free(s);
    snprintf(test_private_sock, sizeof test_private_sock, "%s/redis.sock", dir);
    test_install_abort_handler();
}

void test_private_redis_stop(const char *dir)
{
    test_redis_stop(dir);
    test_private_redis_pid = 0;
}

redisReply *test_rcmd(const char *fmt, ...)
{
    redisReply *r = NULL;
    /* A second try on a fresh connection: the private server may have been
     * restarted under the cached one. */
    for (int attempt = 0; attempt < 2 && !r; attempt++) {
        redisContext *c = R();
        if (!c) return NULL;
        va_list ap;
        va_start(ap, fmt);
        r = redisvCommand(c, fmt, ap);
        va_end(ap);
    }
    return r;
}

void test_qkey(char *out, size_t len, const char *queue, const char *suffix)
{
    snprintf(out, len, "%s:{%s}:%s", test_prefix(), queue, suffix);
}

long long test_zcard(const char *queue, const char *set)
{
    char key[1024];
    test_qkey(key, sizeof key, queue, set);
    redisReply *r = test_rcmd("ZCARD %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return n;
}

int test_wait_zcard_ge(const char *queue, const char *set, long long n, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    while (test_zcard(queue, set) < n) {
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(20);
    }
    return 0;
}

char *test_hget(const char *queue, const char *id, const char *field)
{
    char key[1024], suffix[640];
    snprintf(suffix, sizeof suffix, "job:%s", id);
    test_qkey(key, sizeof key, queue, suffix);
    redisReply *r = test_rcmd("HGET %s %s", key, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strndup(r->str, r->len) : NULL;
    if (r) freeReplyObject(r);
    return v;
}

long long test_hget_ll(const char *queue, const char *id, const char *field)
{
    char *v = test_hget(queue, id, field);
    long long n = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

int test_field_is(const char *queue, const char *id, const char *field, const char *want)
{
    char *v = test_hget(queue, id, field);
    int eq = v && strcmp(v, want) == 0;
    free(v);
    return eq;
}

int test_wait_field(const char *queue, const char *id, const char *field, const char *want,
                    int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    while (!test_field_is(queue, id, field, want)) {
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(20);
    }
    return 0;
}

int test_wait_field_set(const char *queue, const char *id, const char *field, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        char *v = test_hget(queue, id, field);
        int ok = v && *v;
        free(v);
        if (ok) return 0;
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(20);
    }
}

long long test_stat_counter(const char *queue, const char *field)
{
    char key[1024];
    test_qkey(key, sizeof key, queue, "stats");
    redisReply *r = test_rcmd("HGET %s %s", key, field);
    long long n = r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    if (r) freeReplyObject(r);
    return n;
}

/* ---- jobd ---- */

const char *test_tmp_path(const char *name)
{
    static char paths[32][1024];
    static int next;
    char *p = paths[next++ % 32];
    snprintf(p, 1024, "%s/%s", test_tmpdir(), name);
    return p;
}

const char *test_handlers_file(void)
{
    static char path[1024];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/handlers.json", test_tmpdir());
        char text[4096];
        snprintf(text, sizeof text,
                 "{\"t.exec\": {\"exec\": [\"%s\"]},\n \"step\": {\"exec\": [\"%s\"]}}\n",
                 test_helper("test_handler"), test_helper("step_handler"));
        test_write_file(path, text);
    }
    return path;
}

pid_t test_jobd_start(const char *log, const char *url, const char *queue, const char *state,
                      const char *const extra[], const char *const extra_env[])
{
    char statedir[1024];
    if (state[0] == '/')
        snprintf(statedir, sizeof statedir, "%s", state);
    else
        snprintf(statedir, sizeof statedir, "%s/%s", test_tmpdir(), state);
    mkdir(statedir, 0755);
    const char *argv[64] = {test_env("JOBD_BIN"),
                            "--redis",
                            url ? url : test_redis_url(),
                            "--prefix",
                            test_prefix(),
                            "--queues",
                            queue,
                            "--handlers",
                            test_handlers_file(),
                            "--state-dir",
                            statedir,
                            "--log-format",
                            "json",
                            "--http",
                            "127.0.0.1:0"};
    int n = 15;
    for (int i = 0; extra && extra[i] && n < 63; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = test_spawn(argv, extra_env, log);
    test_track(pid);
    return pid;
}

void test_submit(jobd_client_t *c, const char *queue, const char *type, const char *payload,
                 int max_attempts, int64_t timeout_s, char *id)
{
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = queue;
    s.type = type;
    s.payload_json = payload;
    s.max_attempts = max_attempts;
    s.timeout_s = timeout_s;
    int rc = jobd_submit(c, &s, id, NULL);
    if (rc < 0) test_fail(__FILE__, __LINE__, "submit: %s", jobd_client_errmsg(c));
}

json_t *test_log_find(const char *path, const char *id, const char *needle)
{
    json_t *arr = json_array();
    FILE *f = fopen(path, "r");
    if (!f) return arr;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!json_is_object(o)) {
            json_decref(o);
            continue;
        }
        const char *jid = json_string_value(json_object_get(o, "job_id"));
        const char *msg = json_string_value(json_object_get(o, "msg"));
        if ((!id || (jid && strcmp(jid, id) == 0)) && msg && strstr(msg, needle))
            json_array_append(arr, o);
        json_decref(o);
    }
    free(line);
    fclose(f);
    return arr;
}

int test_log_has_job(const char *path, const char *id, const char *needle)
{
    json_t *a = test_log_find(path, id, needle);
    int n = (int)json_array_size(a);
    json_decref(a);
    return n;
}

long long test_held_rows(const char *statedir, const char *id)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/journal.db", statedir);
    sqlite3 *db;
    long long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM held WHERE id = ?1", -1, &st, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return n;
}
