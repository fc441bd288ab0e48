/* jobdtest.c - see jobdtest.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobdtest.h"

/* ---- processes we started: killed if the test aborts ---- */

#define MAX_TRACKED 64

static pid_t tracked[MAX_TRACKED];
pid_t private_redis_pid;

static void on_abort(int sig)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] > 0) kill(tracked[i], SIGKILL);
    if (private_redis_pid > 0) kill(private_redis_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

void install_abort_handler(void)
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

void track(pid_t pid)
{
    install_abort_handler();
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (tracked[i] <= 0) {
            tracked[i] = pid;
            return;
        }
    }
}

void untrack(pid_t pid)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i] == pid) tracked[i] = 0;
}

pid_t spawn(const char *const argv[], const char *const extra_env[], const char *log_path)
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

void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void dump_log(const char *path)
{
    char *s = test_read_file(path);
    if (!s) return;
    size_t len = strlen(s);
    const char *start = len > 8000 ? s + len - 8000 : s;
    fprintf(stderr, "---- last lines of %s ----\n%s\n---- end ----\n", path, start);
    free(s);
}

int wait_exit(pid_t pid, int64_t ms, const char *log)
{
    int st = test_waitpid(pid, ms);
    if (st >= 0)
        untrack(pid);
    else
        dump_log(log);
    return st;
}

/* ---- Redis: the shared test server, or a private one ---- */

char private_sock[700];
static redisContext *private_ctx;

static redisContext *R(void)
{
    if (!private_sock[0]) return test_redis();
    if (private_ctx && private_ctx->err) {
        redisFree(private_ctx);
        private_ctx = NULL;
    }
    if (!private_ctx) {
        private_ctx = redisConnectUnix(private_sock);
        if (private_ctx && private_ctx->err) {
            redisFree(private_ctx);
            private_ctx = NULL;
        }
    }
    return private_ctx;
}

void start_private_redis(const char *dir, char *url)
{
    static const char *const conf[] = {"appendonly yes", "appendfsync always", NULL};
    test_redis_start(dir, url, conf);
    char pidfile[1024];
    snprintf(pidfile, sizeof pidfile, "%s/redis.pid", dir);
    char *s = test_read_file(pidfile);
    private_redis_pid = s ? (pid_t)atoi(s) : 0;
    free(s);
    snprintf(private_sock, sizeof private_sock, "%s/redis.sock", dir);
    install_abort_handler();
}

void stop_private_redis(const char *dir)
{
    test_redis_stop(dir);
    private_redis_pid = 0;
}

redisReply *rcmd(const char *fmt, ...)
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

void qkey(char *out, size_t len, const char *queue, const char *suffix)
{
    snprintf(out, len, "%s:{%s}:%s", test_prefix(), queue, suffix);
}

long long zcard(const char *queue, const char *set)
{
    char key[1024];
    qkey(key, sizeof key, queue, set);
    redisReply *r = rcmd("ZCARD %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return n;
}

int wait_zcard_ge(const char *queue, const char *set, long long n, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    while (zcard(queue, set) < n) {
        if (test_now_ms() >= deadline) return -1;
        pause_ms(20);
    }
    return 0;
}

char *hget(const char *queue, const char *id, const char *field)
{
    char key[1024], suffix[640];
    snprintf(suffix, sizeof suffix, "job:%s", id);
    qkey(key, sizeof key, queue, suffix);
    redisReply *r = rcmd("HGET %s %s", key, field);
    char *v = r && r->type == REDIS_REPLY_STRING ? strndup(r->str, r->len) : NULL;
    if (r) freeReplyObject(r);
    return v;
}

long long hget_ll(const char *queue, const char *id, const char *field)
{
    char *v = hget(queue, id, field);
    long long n = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

int field_is(const char *queue, const char *id, const char *field, const char *want)
{
    char *v = hget(queue, id, field);
    int eq = v && strcmp(v, want) == 0;
    free(v);
    return eq;
}

int wait_field(const char *queue, const char *id, const char *field, const char *want, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    while (!field_is(queue, id, field, want)) {
        if (test_now_ms() >= deadline) return -1;
        pause_ms(20);
    }
    return 0;
}

int wait_field_set(const char *queue, const char *id, const char *field, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        char *v = hget(queue, id, field);
        int ok = v && *v;
        free(v);
        if (ok) return 0;
        if (test_now_ms() >= deadline) return -1;
        pause_ms(20);
    }
}

long long stat_counter(const char *queue, const char *field)
{
    char key[1024];
    qkey(key, sizeof key, queue, "stats");
    redisReply *r = rcmd("HGET %s %s", key, field);
    long long n = r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    if (r) freeReplyObject(r);
    return n;
}

/* ---- jobd ---- */

const char *tmp_path(const char *name)
{
    static char paths[32][1024];
    static int next;
    char *p = paths[next++ % 32];
    snprintf(p, 1024, "%s/%s", test_tmpdir(), name);
    return p;
}

const char *handlers_file(void)
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

pid_t jobd_start(const char *log, const char *url, const char *queue, const char *state,
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
                            handlers_file(),
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
    pid_t pid = spawn(argv, extra_env, log);
    track(pid);
    return pid;
}

void submit(jobd_client_t *c, const char *queue, const char *type, const char *payload,
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

json_t *log_find(const char *path, const char *id, const char *needle)
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

int log_has_job(const char *path, const char *id, const char *needle)
{
    json_t *a = log_find(path, id, needle);
    int n = (int)json_array_size(a);
    json_decref(a);
    return n;
}
