/* bench_tool.c - the measuring half of `make bench` (tests/bench/run.sh).
 *
 *   bench_tool CMD key=value... [-- JOBD_ARGV...]
 *
 * Each command measures one thing and prints one JSON object on stdout;
 * run.sh collects them and report.py turns them into the table. Commands
 * that need jobd spawn it themselves from the argv after "--", replacing
 * "{i}" in an argument by the instance number (1, 2, ...) and "{port}" by a
 * free TCP port, so that the timing starts at the fork and the CPU time and
 * peak RSS come exactly from wait4(). Children get PR_SET_PDEATHSIG, so a
 * killed driver leaves no jobd behind.
 *
 *   fill    sock= prefix= queue= n= [type=noop] [payload=JSON] [chunk=N]
 *           jobd_submit_batch of n jobs (chunk= jobs per call, default all);
 *           prints the wall time of the submit calls.
 *   drain   sock= prefix= queue= n= redis_pid= jobds= logdir= -- jobd ...
 *           starts `jobds` jobd processes on a pre-filled queue, polls
 *           ZCARD succeeded until it reaches n; prints jobs/s, jobd CPU,
 *           peak RSS, Redis CPU and Redis commands (INFO commandstats).
 *   pickup  sock= prefix= queue= samples= logdir= -- jobd ...
 *           submits one noop at a time to an idle jobd and times, with
 *           keyspace notifications, submit -> claim and submit -> succeeded.
 *   paced   sock= prefix= queue= rate= seconds= jobds= logdir= -- jobd ...
 *           submits at a fixed rate; latency = finished_at - scheduled time.
 *   pacedpickup sock= prefix= queue= rate= seconds= logdir= -- jobd ...
 *           one submitter, one jobd_submit() per job at a fixed rate; a
 *           keyspace-notification subscriber (its own thread) times each
 *           claim (the n-th ZADD to the active set is the n-th job: FIFO);
 *           pickup = claim seen - just before its jobd_submit().
 *           trace=FILE also writes one line per job: its index, submit
 *           time (s from the start), submit call ms and pickup ms, to see
 *           whether a tail is a few stalls or spread out.
 *   sigterm sock= prefix= queue= jobs= logdir= -- jobd ...
 *           fills `jobs` sleep jobs, waits until all are active, SIGTERM,
 *           times the exit.
 *   ckpt    sock= prefix= queue= jobs= per_job= logdir= -- jobd ...
 *           runs `jobs` exec checkpointing jobs, scrapes /metrics.
 *   fsync   dir= samples=
 *           write(4 KiB) + fdatasync latency on dir's file system.
 *
 * Not a test: never registered with ctest (timing goals live here only). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobd/client.h"

#define MAX_JOBD 8
#define MAX_CMDS 256

/* ---- small helpers ---- */

static pid_t children[MAX_JOBD];
static int nchildren;

static void kill_children(void)
{
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0) kill(children[i], SIGKILL);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_tool: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    kill_children();
    exit(1);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double p)
{
    if (n == 0) return -1;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

/* Prints "name":{"p50":..,"p95":..,"p99":..,"max":..,"n":..} (sorts v). */
static void print_dist(const char *name, double *v, size_t n, const char *sep)
{
    qsort(v, n, sizeof *v, cmp_double);
    printf("\"%s\":{\"n\":%zu,\"p50\":%.4f,\"p95\":%.4f,\"p99\":%.4f,\"max\":%.4f}%s", name, n,
           pct(v, n, 50), pct(v, n, 95), pct(v, n, 99), n ? v[n - 1] : -1.0, sep);
}

/* ---- arguments ---- */

static int nkv;
static char **kv;
static char **jobd_argv; /* after "--", NULL-terminated */

static const char *arg(const char *key, const char *def)
{
    size_t kl = strlen(key);
    for (int i = 0; i < nkv; i++)
        if (strncmp(kv[i], key, kl) == 0 && kv[i][kl] == '=') return kv[i] + kl + 1;
    if (!def) die("missing argument %s=", key);
    return def;
}

static long arg_long(const char *key, const char *def)
{
    const char *s = arg(key, def);
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end) die("%s=%s is not a number", key, s);
    return v;
}

/* ---- Redis (hiredis, our own connection, never jobd's) ---- */

static redisContext *rconnect(void)
{
    redisContext *r = redisConnectUnix(arg("sock", NULL));
    if (!r || r->err) die("cannot connect to %s: %s", arg("sock", NULL), r ? r->errstr : "?");
    return r;
}

static redisReply *rcmd(redisContext *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(r, fmt, ap);
    va_end(ap);
    if (!rep) die("redis: %s", r->errstr);
    if (rep->type == REDIS_REPLY_ERROR) die("redis: %s", rep->str);
    return rep;
}

static long long own_cmds; /* commands this tool sent while Redis was being measured */

static long long zcard(redisContext *r, const char *suffix)
{
    redisReply *rep = rcmd(r, "ZCARD %s:{%s}:%s", arg("prefix", NULL), arg("queue", NULL), suffix);
    long long n = rep->integer;
    freeReplyObject(rep);
    own_cmds++;
    return n;
}

typedef struct {
    int n;
    char name[MAX_CMDS][64];
    long long calls[MAX_CMDS];
} cmdstats_t;

static void cmdstats(redisContext *r, cmdstats_t *s)
{
    redisReply *rep = rcmd(r, "INFO commandstats");
    own_cmds++;
    s->n = 0;
    for (char *line = strtok(rep->str, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        if (strncmp(line, "cmdstat_", 8) != 0 || s->n == MAX_CMDS) continue;
        char *colon = strchr(line, ':');
        char *calls = strstr(line, "calls=");
        if (!colon || !calls) continue;
        snprintf(s->name[s->n], sizeof s->name[0], "%.*s", (int)(colon - line - 8), line + 8);
        s->calls[s->n] = atoll(calls + 6);
        s->n++;
    }
    freeReplyObject(rep);
}

static long long cmd_calls(const cmdstats_t *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0) return s->calls[i];
    return 0;
}

/* utime + stime of a process, in seconds (clock ticks, 10 ms resolution). */
static double proc_cpu_s(long pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read %s", path);
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    /* Fields after the ")" that ends comm: state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    if (!p) die("bad %s", path);
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        die("bad %s", path);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- libjobd ---- */

static jobd_client_t *jconnect(void)
{
    char url[600], err[512];
    snprintf(url, sizeof url, "unix://%s", arg("sock", NULL));
    jobd_client_opts_t o = {.url = url, .prefix = arg("prefix", NULL)};
    jobd_client_t *c;
    if (jobd_client_new(&o, &c, err, sizeof err) < 0) die("libjobd: %s", err);
    return c;
}

/* Submits n jobs of one type and payload in calls of chunk jobs; returns the
 * seconds spent in jobd_submit_batch. */
static double submit_many(jobd_client_t *c, size_t n, const char *type, const char *payload,
                          size_t chunk)
{
    jobd_job_spec_t *specs = calloc(n, sizeof *specs);
    char *ids = malloc(n * (JOBD_ID_LEN + 1));
    if (!specs || !ids) die("out of memory");
    for (size_t i = 0; i < n; i++) {
        jobd_job_spec_init(&specs[i]);
        specs[i].queue = arg("queue", NULL);
        specs[i].type = type;
        specs[i].payload_json = payload;
    }
    if (chunk == 0 || chunk > n) chunk = n;
    double t0 = mono_s();
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        if (jobd_submit_batch(c, specs + i, k, ids + i * (JOBD_ID_LEN + 1)) < 0)
            die("jobd_submit_batch: %s", jobd_client_errmsg(c));
    }
    double dt = mono_s() - t0;
    free(specs);
    free(ids);
    return dt;
}

/* ---- spawning jobd ---- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        die("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* Replaces every "{i}" and "{port}" in s; returns a new string. */
static char *subst(const char *s, int idx, int port)
{
    char *out = malloc(strlen(s) * 4 + 32), *o = out;
    while (*s) {
        if (strncmp(s, "{i}", 3) == 0) {
            o += sprintf(o, "%d", idx);
            s += 3;
        } else if (strncmp(s, "{port}", 6) == 0) {
            o += sprintf(o, "%d", port);
            s += 6;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

static pid_t spawn_jobd(int idx, int port)
{
    if (!jobd_argv || !jobd_argv[0]) die("no jobd command after --");
    if (nchildren == MAX_JOBD) die("too many jobd");
    int n = 0;
    while (jobd_argv[n])
        n++;
    char **av = calloc((size_t)n + 1, sizeof *av);
    for (int i = 0; i < n; i++)
        av[i] = subst(jobd_argv[i], idx, port);
    char log[1024];
    snprintf(log, sizeof log, "%s/jobd-%d.log", arg("logdir", "."), idx);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(av[0], av);
        fprintf(stderr, "exec %s: %s\n", av[0], strerror(errno));
        _exit(127);
    }
    for (int i = 0; i < n; i++)
        free(av[i]);
    free(av);
    children[nchildren++] = pid;
    return pid;
}

typedef struct {
    int done, status;
    struct rusage ru;
    double exited_at; /* mono_s */
} child_end_t;

static child_end_t ends[MAX_JOBD];

/* Reaps children that have exited (block: wait for all). Returns how many are
 * still running. */
static int reap(int block)
{
    int running = 0;
    for (int i = 0; i < nchildren; i++) {
        if (ends[i].done) continue;
        pid_t p = wait4(children[i], &ends[i].status, block ? 0 : WNOHANG, &ends[i].ru);
        if (p == children[i]) {
            ends[i].done = 1;
            ends[i].exited_at = mono_s();
            children[i] = -1;
        } else {
            running++;
        }
    }
    return running;
}

static void check_exits(const char *what)
{
    for (int i = 0; i < nchildren; i++) {
        int st = ends[i].status;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die("%s: jobd %d ended with %s %d (log: %s/jobd-%d.log)", what, i + 1,
                WIFEXITED(st) ? "exit status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), arg("logdir", "."), i + 1);
    }
}

static double ru_cpu_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

/* Waits until every spawned jobd has registered (jobd_workers). */
static void wait_registered(jobd_client_t *c, size_t want, double timeout_s)
{
    double until = mono_s() + timeout_s;
    for (;;) {
        json_t *w = NULL;
        size_t n = 0;
        if (jobd_workers(c, &w) == 0) n = json_array_size(w);
        json_decref(w);
        if (n >= want) return;
        if (reap(0) < nchildren) die("jobd exited during start-up (see %s)", arg("logdir", "."));
        if (mono_s() > until) die("jobd did not register within %.0f s", timeout_s);
        sleep_us(5000);
    }
}

static void stop_children(const char *what)
{
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0) kill(children[i], SIGTERM);
    reap(1);
    check_exits(what);
}

/* ---- commands ---- */

static int cmd_fill(void)
{
    jobd_client_t *c = jconnect();
    size_t n = (size_t)arg_long("n", NULL);
    double dt = submit_many(c, n, arg("type", "noop"), arg("payload", "{\"n\":1}"),
                            (size_t)arg_long("chunk", "0"));
    printf("{\"cmd\":\"fill\",\"n\":%zu,\"seconds\":%.6f,\"rate\":%.1f}\n", n, dt, (double)n / dt);
    jobd_client_free(c);
    return 0;
}

static int cmd_drain(void)
{
    redisContext *r = rconnect();
    long long n = arg_long("n", NULL);
    long redis_pid = arg_long("redis_pid", NULL);
    int njobd = (int)arg_long("jobds", "1");
    if (zcard(r, "ready") != n) die("drain: the queue does not hold %lld ready jobs", n);

    cmdstats_t before, after;
    own_cmds = 0;
    cmdstats(r, &before);
    double rcpu0 = proc_cpu_s(redis_pid);
    double t0 = mono_s();
    for (int i = 1; i <= njobd; i++)
        spawn_jobd(i, 0);
    /* Until n jobs succeeded, or for at most cap seconds: a slow setting
     * (concurrency 1) is measured over the cap instead of keeping the whole
     * run past its time budget. */
    double cap = (double)arg_long("cap", "150");
    long long done = 0;
    int capped = 0;
    while ((done = zcard(r, "succeeded")) < n) {
        if (reap(0) == 0) die("drain: every jobd exited at %lld of %lld jobs", done, n);
        double now = mono_s();
        if (now - t0 > cap) {
            capped = 1;
            break;
        }
        /* Every look costs Redis a wake-up, taken from the workers it
         * measures (a look every 2 ms was 1,000 Redis calls in a 2 s run):
         * look rarely while far from the end, every 2 ms near it, so the end
         * is still seen within 2 ms. */
        double rate = done > 0 ? (double)done / (now - t0) : 0;
        long us = rate > 0 ? (long)((double)(n - done) / rate * 1e6 / 4) : 2000;
        sleep_us(us < 2000 ? 2000 : us > 50000 ? 50000 : us);
    }
    double t1 = mono_s();
    if (capped)
        for (int i = 0; i < nchildren; i++)
            if (children[i] > 0) kill(children[i], SIGTERM);
    reap(1); /* --once: each jobd exits once the queue is empty */
    double t2 = mono_s();
    check_exits("drain");
    cmdstats(r, &after);
    double rcpu1 = proc_cpu_s(redis_pid);
    /* CPU and commands are divided by every job run while they were
     * counted, including those finished after the cap. */
    long long jobs = zcard(r, "succeeded");
    own_cmds--; /* that ZCARD came after the second INFO */

    double jcpu = 0;
    long maxrss = 0;
    for (int i = 0; i < nchildren; i++) {
        jcpu += ru_cpu_s(&ends[i].ru);
        if (ends[i].ru.ru_maxrss > maxrss) maxrss = ends[i].ru.ru_maxrss;
    }
    /* Our own ZCARD polls and the first INFO land in the "after" figures. */
    long long total = 0;
    for (int i = 0; i < after.n; i++)
        total += after.calls[i] - cmd_calls(&before, after.name[i]);
    long long own = own_cmds - 1; /* the second INFO is not counted in its own reply */
    total -= own;
    long long evalsha = cmd_calls(&after, "evalsha") - cmd_calls(&before, "evalsha");
    printf("{\"cmd\":\"drain\",\"n\":%lld,\"jobds\":%d,\"capped\":%s,\"done\":%lld,"
           "\"jobs_counted\":%lld,\"seconds\":%.6f,\"rate\":%.1f,\"exit_seconds\":%.6f,"
           "\"jobd_cpu_s\":%.4f,\"jobd_maxrss_kb\":%ld,\"redis_cpu_s\":%.3f,\"evalsha\":%lld,"
           "\"commands\":%lld,\"own_commands\":%lld,\"by_command\":{",
           n, njobd, capped ? "true" : "false", done, jobs, t1 - t0, (double)done / (t1 - t0),
           t2 - t0, jcpu, maxrss, rcpu1 - rcpu0, evalsha, total, own);
    const char *sep = "";
    for (int i = 0; i < after.n; i++) {
        long long d = after.calls[i] - cmd_calls(&before, after.name[i]);
        if (strcmp(after.name[i], "zcard") == 0) d -= own - 1;
        if (strcmp(after.name[i], "info") == 0) d -= 1;
        if (d <= 0) continue;
        printf("%s\"%s\":%lld", sep, after.name[i], d);
        sep = ",";
    }
    printf("}}\n");
    redisFree(r);
    return 0;
}

/* Reads pub/sub messages until one on a channel ending in `suffix` says
 * `event`; returns the monotonic time it was read. */
static double wait_event(redisContext *sub, const char *suffix, const char *event)
{
    size_t sl = strlen(suffix);
    for (;;) {
        redisReply *m = NULL;
        if (redisGetReply(sub, (void **)&m) != REDIS_OK || !m)
            die("pickup: no %s event within 10 s (%s)", event, sub->errstr);
        double t = mono_s();
        int hit = m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
                  m->element[1]->type == REDIS_REPLY_STRING &&
                  m->element[2]->type == REDIS_REPLY_STRING && m->element[1]->len >= sl &&
                  strcmp(m->element[1]->str + m->element[1]->len - sl, suffix) == 0 &&
                  strcmp(m->element[2]->str, event) == 0;
        freeReplyObject(m);
        if (hit) return t;
    }
}

static int cmd_pickup(void)
{
    const char *prefix = arg("prefix", NULL), *queue = arg("queue", NULL);
    int samples = (int)arg_long("samples", "500"), warmup = 20;
    redisContext *r = rconnect();
    /* Keyspace events for sorted sets: claim.lua ZADDs the job to "active",
     * ack.lua to "succeeded"; the subscriber learns of each as soon as the
     * script has run, with microsecond timestamps on our side. Only for this
     * phase (it costs Redis a little on every ZADD). */
    freeReplyObject(rcmd(r, "CONFIG SET notify-keyspace-events Kz"));
    redisContext *sub = rconnect();
    /* A job that is never claimed must end the run, not hang it. */
    struct timeval tmo = {10, 0};
    redisSetTimeout(sub, tmo);
    redisReply *rep = redisCommand(sub, "SUBSCRIBE __keyspace@0__:%s:{%s}:active", prefix, queue);
    freeReplyObject(rep);
    rep = redisCommand(sub, "SUBSCRIBE __keyspace@0__:%s:{%s}:succeeded", prefix, queue);
    freeReplyObject(rep);

    jobd_client_t *c = jconnect();
    spawn_jobd(1, 0);
    wait_registered(c, 1, 20);

    double *claim = calloc((size_t)samples, sizeof *claim);
    double *done = calloc((size_t)samples, sizeof *done);
    double *sub_rtt = calloc((size_t)samples, sizeof *sub_rtt);
    double *started = calloc((size_t)samples, sizeof *started);
    int64_t *t0_real = calloc((size_t)samples, sizeof *t0_real);
    char(*ids)[JOBD_ID_LEN + 1] = calloc((size_t)samples, sizeof *ids);
    for (int i = -warmup; i < samples; i++) {
        sleep_us(2000); /* let the worker go idle: claim came back empty */
        char payload[64], id[JOBD_ID_LEN + 1];
        int64_t tr = real_us();
        snprintf(payload, sizeof payload, "{\"submitted_us\":%" PRId64 "}", tr);
        jobd_job_spec_t s;
        jobd_job_spec_init(&s);
        s.queue = queue;
        s.type = "noop";
        s.payload_json = payload;
        double t0 = mono_s();
        if (jobd_submit(c, &s, id, NULL) < 0) die("jobd_submit: %s", jobd_client_errmsg(c));
        double t1 = mono_s();
        double tc = wait_event(sub, ":active", "zadd");
        double td = wait_event(sub, ":succeeded", "zadd");
        if (i < 0) continue;
        sub_rtt[i] = (t1 - t0) * 1e3;
        claim[i] = (tc - t0) * 1e3;
        done[i] = (td - t0) * 1e3;
        t0_real[i] = tr;
        memcpy(ids[i], id, sizeof ids[i]);
    }
    for (int i = 0; i < samples; i++) {
        rep = rcmd(r, "HGET %s:{%s}:job:%s started_at", prefix, queue, ids[i]);
        if (rep->type != REDIS_REPLY_STRING) die("pickup: job %s has no started_at", ids[i]);
        /* Both sides in whole ms: started_at is truncated by claim.lua. */
        started[i] = (double)(atoll(rep->str) - t0_real[i] / 1000);
        freeReplyObject(rep);
    }
    freeReplyObject(rcmd(r, "CONFIG SET notify-keyspace-events %s", ""));
    stop_children("pickup");
    printf("{\"cmd\":\"pickup\",\"samples\":%d,", samples);
    print_dist("submit_call_ms", sub_rtt, (size_t)samples, ",");
    print_dist("claim_ms", claim, (size_t)samples, ",");
    print_dist("succeeded_ms", done, (size_t)samples, ",");
    print_dist("started_at_ms", started, (size_t)samples, "}\n");
    jobd_client_free(c);
    redisFree(sub);
    redisFree(r);
    return 0;
}

static int cmd_paced(void)
{
    const char *prefix = arg("prefix", NULL), *queue = arg("queue", NULL);
    double rate = (double)arg_long("rate", NULL), seconds = (double)arg_long("seconds", "5");
    int njobd = (int)arg_long("jobds", "1");
    size_t total = (size_t)(rate * seconds);
    if (total == 0) die("paced: rate too low");
    redisContext *r = rconnect();
    jobd_client_t *c = jconnect();
    for (int i = 1; i <= njobd; i++)
        spawn_jobd(i, 0);
    wait_registered(c, (size_t)njobd, 20);

    int64_t *sched = calloc(total, sizeof *sched);
    char *ids = malloc(total * (JOBD_ID_LEN + 1));
    jobd_job_spec_t specs[512];
    char payloads[512][48];
    size_t sent = 0, calls = 0;
    double max_lag = 0;
    int64_t start = real_us() + 10000;
    double mstart = mono_s() + 0.01;
    while (sent < total) {
        double el = mono_s() - mstart;
        size_t due = el < 0 ? 0 : (size_t)(el * rate) + 1;
        if (due > total) due = total;
        if (due <= sent) {
            double next = (double)sent / rate; /* when job `sent` is due */
            long us = (long)((next - el) * 1e6);
            sleep_us(us > 50 ? us : 50);
            continue;
        }
        size_t k = due - sent > 512 ? 512 : due - sent;
        for (size_t j = 0; j < k; j++) {
            size_t i = sent + j;
            sched[i] = start + (int64_t)((double)i * 1e6 / rate);
            snprintf(payloads[j], sizeof payloads[j], "{\"submitted_us\":%" PRId64 "}", sched[i]);
            jobd_job_spec_init(&specs[j]);
            specs[j].queue = queue;
            specs[j].type = "noop";
            specs[j].payload_json = payloads[j];
        }
        double lag = el - (double)sent / rate;
        if (lag > max_lag) max_lag = lag;
        if (jobd_submit_batch(c, specs, k, ids + sent * (JOBD_ID_LEN + 1)) < 0)
            die("jobd_submit_batch: %s", jobd_client_errmsg(c));
        sent += k;
        calls++;
    }
    double submit_s = mono_s() - mstart;
    /* Wait for the last job; give up when nothing finishes for 5 s (a
     * stalled worker is a result too, not a reason to hang). */
    long long got = -1, last = -1;
    double last_change = mono_s();
    while ((got = zcard(r, "succeeded")) < (long long)total) {
        if (got != last) last = got, last_change = mono_s();
        if (mono_s() - last_change > 5) {
            long long ready = zcard(r, "ready"), active = zcard(r, "active");
            stop_children("paced");
            printf("{\"cmd\":\"paced\",\"rate\":%.0f,\"jobs\":%zu,\"jobds\":%d,"
                   "\"error\":\"stalled: %lld of %zu jobs succeeded, %lld still ready and %lld "
                   "active, no progress for 5 s\"}\n",
                   rate, total, njobd, got, total, ready, active);
            return 0;
        }
        sleep_us(5000);
    }
    stop_children("paced");
    double *e2e = calloc(total, sizeof *e2e), *wait = calloc(total, sizeof *wait);
    for (size_t i = 0; i < total; i += 1000) {
        size_t k = total - i < 1000 ? total - i : 1000;
        for (size_t j = 0; j < k; j++)
            redisAppendCommand(r, "HMGET %s:{%s}:job:%s finished_at started_at", prefix, queue,
                               ids + (i + j) * (JOBD_ID_LEN + 1));
        for (size_t j = 0; j < k; j++) {
            redisReply *m;
            if (redisGetReply(r, (void **)&m) != REDIS_OK || m->type != REDIS_REPLY_ARRAY ||
                m->element[0]->type != REDIS_REPLY_STRING ||
                m->element[1]->type != REDIS_REPLY_STRING)
                die("paced: job %s has no finished_at", ids + (i + j) * (JOBD_ID_LEN + 1));
            e2e[i + j] = (double)(atoll(m->element[0]->str) * 1000 - sched[i + j]) / 1e3;
            wait[i + j] = (double)(atoll(m->element[1]->str) * 1000 - sched[i + j]) / 1e3;
            freeReplyObject(m);
        }
    }
    printf("{\"cmd\":\"paced\",\"rate\":%.0f,\"jobs\":%zu,\"jobds\":%d,\"submit_seconds\":%.3f,"
           "\"achieved_rate\":%.0f,\"submit_calls\":%zu,\"max_submit_lag_ms\":%.3f,",
           rate, total, njobd, submit_s, (double)total / submit_s, calls, max_lag * 1e3);
    print_dist("e2e_ms", e2e, total, ",");
    print_dist("started_ms", wait, total, "}\n");
    jobd_client_free(c);
    redisFree(r);
    return 0;
}

typedef struct {
    char id[JOBD_ID_LEN + 1];
    size_t seq;
    double t;
} hset_ev_t;

typedef struct {
    redisContext *sub;
    size_t want, got;
    hset_ev_t *ev;
} claim_watch_t;

/* Records every HSET on a job hash (enqueue, claim, ack: one each per job),
 * until want of them. */
static void *watch_claims(void *arg)
{
    claim_watch_t *cw = arg;
    while (cw->got < cw->want) {
        redisReply *m = NULL;
        if (redisGetReply(cw->sub, (void **)&m) != REDIS_OK || !m) break;
        double t = mono_s();
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 4 &&
            m->element[2]->type == REDIS_REPLY_STRING &&
            m->element[3]->type == REDIS_REPLY_STRING && strcmp(m->element[3]->str, "hset") == 0) {
            const char *k = strstr(m->element[2]->str, ":job:");
            if (k) {
                hset_ev_t *e = &cw->ev[cw->got];
                snprintf(e->id, sizeof e->id, "%s", k + 5);
                e->seq = cw->got++;
                e->t = t;
            }
        }
        freeReplyObject(m);
    }
    return NULL;
}

static int cmp_ev(const void *a, const void *b)
{
    const hset_ev_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmd_pacedpickup(void)
{
    const char *prefix = arg("prefix", NULL), *queue = arg("queue", NULL);
    double rate = (double)arg_long("rate", "500"), seconds = (double)arg_long("seconds", "5");
    size_t total = (size_t)(rate * seconds), warm = 50;
    if (total < 1 || total > 10000000) die("pacedpickup: rate x seconds out of range");
    size_t n = total + warm;
    redisContext *r = rconnect();
    /* Hash events: the second HSET of a job's hash is claim.lua's. */
    freeReplyObject(rcmd(r, "CONFIG SET notify-keyspace-events Kh"));
    claim_watch_t cw = {rconnect(), 3 * n, 0, calloc(3 * n, sizeof(hset_ev_t))};
    struct timeval tmo = {10, 0};
    redisSetTimeout(cw.sub, tmo);
    freeReplyObject(redisCommand(cw.sub, "PSUBSCRIBE __keyspace@0__:%s:{%s}:job:*", prefix, queue));
    jobd_client_t *c = jconnect();
    spawn_jobd(1, 0);
    wait_registered(c, 1, 20);
    pthread_t th;
    pthread_create(&th, NULL, watch_claims, &cw);
    double *t0 = calloc(n, sizeof *t0), *call = calloc(n, sizeof *call);
    char(*ids)[JOBD_ID_LEN + 1] = calloc(n, sizeof *ids);
    double start = mono_s() + 0.01;
    for (size_t i = 0; i < n; i++) {
        double due = start + (double)i / rate;
        double now = mono_s();
        if (due > now) sleep_us((long)((due - now) * 1e6));
        jobd_job_spec_t sp;
        jobd_job_spec_init(&sp);
        sp.queue = queue;
        sp.type = arg("type", "noop");
        sp.payload_json = "{}";
        t0[i] = mono_s();
        if (jobd_submit(c, &sp, ids[i], NULL) < 0) die("jobd_submit: %s", jobd_client_errmsg(c));
        call[i] = (mono_s() - t0[i]) * 1e3;
    }
    pthread_join(th, NULL);
    freeReplyObject(rcmd(r, "CONFIG SET notify-keyspace-events %s", ""));
    stop_children("pacedpickup");
    qsort(cw.ev, cw.got, sizeof *cw.ev, cmp_ev);
    /* trace=FILE: one line per job (index, submit time s, call ms, claim ms). */
    const char *trace_path = arg("trace", "");
    FILE *trace = *trace_path ? fopen(trace_path, "w") : NULL;
    double *pick = calloc(total, sizeof *pick), *after = calloc(total, sizeof *after);
    double *calls = call + warm;
    size_t found = 0;
    for (size_t i = warm; i < n; i++) {
        /* The first event of this id (sorted by id, then in arrival order). */
        size_t lo = 0, hi = cw.got;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (strcmp(cw.ev[mid].id, ids[i]) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        hset_ev_t *e = lo < cw.got ? &cw.ev[lo] : NULL;
        if (!e || strcmp(e->id, ids[i]) != 0 || e + 1 >= cw.ev + cw.got ||
            strcmp(e[1].id, ids[i]) != 0)
            continue;
        after[found] = (e[1].t - t0[i]) * 1e3 - call[i];
        pick[found++] = (e[1].t - t0[i]) * 1e3; /* its second HSET: the claim */
        if (trace)
            fprintf(trace, "%zu %.6f %.4f %.4f\n", i, t0[i] - start, call[i], pick[found - 1]);
    }
    if (trace) fclose(trace);
    if (found < total) die("pacedpickup: saw the claim of %zu of %zu jobs", found, total);
    printf("{\"cmd\":\"pacedpickup\",\"rate\":%.0f,\"jobs\":%zu,", rate, total);
    print_dist("submit_call_ms", calls, total, ",");
    print_dist("claim_ms", pick, total, ",");
    print_dist("after_call_ms", after, total, "}\n");
    jobd_client_free(c);
    redisFree(cw.sub);
    redisFree(r);
    return 0;
}

static int cmd_sigterm(void)
{
    long long jobs = arg_long("jobs", "64");
    redisContext *r = rconnect();
    jobd_client_t *c = jconnect();
    submit_many(c, (size_t)jobs, "sleep", "{\"ms\":600000}", 0);
    double t0 = mono_s();
    spawn_jobd(1, 0);
    while (zcard(r, "active") < jobs) {
        if (reap(0) == 0) die("sigterm: jobd exited early");
        if (mono_s() - t0 > 30) die("sigterm: %lld jobs never became active", jobs);
        sleep_us(2000);
    }
    double t1 = mono_s();
    kill(children[0], SIGTERM);
    reap(1);
    double t2 = ends[0].exited_at;
    check_exits("sigterm");
    long long ready = zcard(r, "ready"), active = zcard(r, "active");
    printf("{\"cmd\":\"sigterm\",\"jobs\":%lld,\"claim_seconds\":%.3f,\"exit_seconds\":%.6f,"
           "\"released_to_ready\":%lld,\"still_active\":%lld}\n",
           jobs, t1 - t0, t2 - t1, ready, active);
    jobd_client_free(c);
    redisFree(r);
    return 0;
}

/* GET /metrics; fills the two counters. Returns 0, or -1 if jobd does not
 * answer (yet). */
static int scrape(int port, long long *ckpts, long long *commits)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return -1;
    }
    static char buf[1 << 16];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof buf - 1 && (k = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)k;
    close(fd);
    buf[len] = '\0';
    char *p = strstr(buf, "\njobd_checkpoints_total "),
         *q = strstr(buf, "\njobd_journal_commits_total ");
    if (!p || !q) return -1;
    *ckpts = atoll(p + strlen("\njobd_checkpoints_total "));
    *commits = atoll(q + strlen("\njobd_journal_commits_total "));
    return 0;
}

static int cmd_ckpt(void)
{
    long long jobs = arg_long("jobs", "64"), per_job = arg_long("per_job", NULL);
    long long want = jobs * per_job;
    redisContext *r = rconnect();
    jobd_client_t *c = jconnect();
    submit_many(c, (size_t)jobs, "bench.ckpt", "{}", 0);
    int port = free_port();
    double t0 = mono_s();
    spawn_jobd(1, port);
    /* From jobd's start to the first scrape that counts all of them: the
     * handlers write their lines in bursts that a scrape every 10 ms sees
     * as one step, so a window between "first counted" and "all counted"
     * says more about the scrape than about jobd. */
    double ta = t0, tb = 0;
    long long ca = 0, ma = 0, cb = 0, mb = 0;
    for (;;) {
        long long ck, cm;
        double t = mono_s();
        if (scrape(port, &ck, &cm) == 0) {
            if (ck >= want) {
                tb = t, cb = ck, mb = cm;
                break;
            }
        }
        if (reap(0) == 0) die("ckpt: jobd exited early");
        if (t - t0 > 120) die("ckpt: not done after 120 s");
        sleep_us(10000);
    }
    double deadline = mono_s() + 60;
    while (zcard(r, "succeeded") < jobs) {
        if (mono_s() > deadline) die("ckpt: jobs did not succeed");
        sleep_us(5000);
    }
    double t_done = mono_s();
    stop_children("ckpt");
    double win = tb - ta;
    printf("{\"cmd\":\"ckpt\",\"jobs\":%lld,\"per_job\":%lld,\"checkpoints\":%lld,"
           "\"window_seconds\":%.3f,\"rate\":%.1f,\"commits\":%lld,\"commit_rate\":%.1f,"
           "\"checkpoints_per_commit\":%.2f,\"total_seconds\":%.3f}\n",
           jobs, per_job, cb, win, win > 0 ? (double)(cb - ca) / win : -1.0, mb - ma,
           win > 0 ? (double)(mb - ma) / win : -1.0,
           mb > ma ? (double)(cb - ca) / (double)(mb - ma) : -1.0, t_done - t0);
    jobd_client_free(c);
    redisFree(r);
    return 0;
}

static int cmd_fsync(void)
{
    int samples = (int)arg_long("samples", "200");
    char path[1024];
    snprintf(path, sizeof path, "%s/fsync-probe", arg("dir", NULL));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("%s: %s", path, strerror(errno));
    char block[4096];
    memset(block, 'x', sizeof block);
    double *v = calloc((size_t)samples, sizeof *v);
    for (int i = 0; i < samples; i++) {
        double t0 = mono_s();
        if (pwrite(fd, block, sizeof block, (off_t)i * (off_t)sizeof block) != sizeof block ||
            fdatasync(fd) < 0)
            die("%s: %s", path, strerror(errno));
        v[i] = (mono_s() - t0) * 1e3;
    }
    close(fd);
    unlink(path);
    printf("{\"cmd\":\"fsync\",");
    print_dist("ms", v, (size_t)samples, "}\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s fill|drain|pickup|paced|pacedpickup|sigterm|ckpt|fsync key=value... "
                "[-- jobd args]\n",
                argv[0]);
        return 64;
    }
    kv = argv + 2;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            argv[i] = NULL;
            jobd_argv = argv + i + 1;
            break;
        }
        nkv++;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *cmd = argv[1];
    if (strcmp(cmd, "fill") == 0) return cmd_fill();
    if (strcmp(cmd, "drain") == 0) return cmd_drain();
    if (strcmp(cmd, "pickup") == 0) return cmd_pickup();
    if (strcmp(cmd, "paced") == 0) return cmd_paced();
    if (strcmp(cmd, "pacedpickup") == 0) return cmd_pacedpickup();
    if (strcmp(cmd, "sigterm") == 0) return cmd_sigterm();
    if (strcmp(cmd, "ckpt") == 0) return cmd_ckpt();
    if (strcmp(cmd, "fsync") == 0) return cmd_fsync();
    fprintf(stderr, "bench_tool: unknown command %s\n", cmd);
    return 64;
}
