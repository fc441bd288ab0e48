/* test_http_limits.c - the HTTP port is no way to starve jobd: a flood of
 * idle connections is shed at the connection limit (and an exec job still
 * runs, /health/live still answers), slow request heads are closed at the
 * header deadline, HEAD has no body, other methods get 405 and an
 * over-long head 431. Real jobd, real TCP sockets on 127.0.0.1.
 *
 * The header deadline is shortened for these tests with the test-only
 * JOBD_HTTP_HEADER_TIMEOUT_MS (daemon/http.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

#define HEADER_TIMEOUT_MS 500

/* A connected TCP socket to 127.0.0.1:port, or -1. The connect gives up
 * after 2 s (a full accept queue must not hang the test). */
static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads fd until EOF (or a reset) within ms. Returns the bytes read
 * (malloc'd, NUL-terminated, length in *len), or NULL on timeout. */
static char *read_to_eof(int fd, int64_t ms, size_t *len)
{
    int64_t deadline = test_now_ms() + ms;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        int64_t left = deadline - test_now_ms();
        if (left <= 0) {
            free(buf);
            return NULL;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0) continue;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Sends req on a fresh connection and reads the whole answer (until jobd
 * closes). Returns it (malloc'd) or NULL if there was none within 10 s. */
static char *exchange(int port, const char *req, size_t reqlen)
{
    int fd = tcp_connect(port);
    if (fd < 0) return NULL;
    size_t off = 0;
    while (off < reqlen) {
        ssize_t w = write(fd, req + off, reqlen - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    size_t len;
    char *out = read_to_eof(fd, test_ms(10000), &len);
    close(fd);
    return out;
}

static int status_of(const char *resp)
{
    int code = -1;
    if (resp) sscanf(resp, "HTTP/1.1 %d", &code);
    return code;
}

/* The value of metric name in /metrics (-1: missing or no answer). */
static long long metric(int port, const char *name)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *resp = exchange(port, req, sizeof req - 1);
    long long v = -1;
    char needle[256];
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *p = resp ? strstr(resp, needle) : NULL;
    if (p) v = strtoll(p + strlen(needle), NULL, 10);
    free(resp);
    return v;
}

/* Polls GET /health/live until it answers 200; returns 0, or -1 after ms. */
static int wait_live(int port, int64_t ms)
{
    static const char req[] = "GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        char *resp = exchange(port, req, sizeof req - 1);
        int code = status_of(resp);
        free(resp);
        if (code == 200) return 0;
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(20);
    }
}

static void stop_jobd(pid_t pid, const char *log)
{
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
}

#define IDLE_CONNS 1100

/* 1,100 idle connections (more than the 1,024 descriptors jobd starts with,
 * as under a default soft limit): jobd keeps answering /health/live, an
 * exec job submitted meanwhile runs and succeeds at its first attempt, and
 * the shed connections are counted. */
TEST(http_idle_flood_does_not_starve)
{
    struct rlimit rl;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < IDLE_CONNS + 100) {
        printf("SKIP: descriptor hard limit %llu is below %d\n", (unsigned long long)rl.rlim_max,
               IDLE_CONNS + 100);
        return;
    }
    /* This process needs room for every connection it opens; jobd gets
     * 1,024 descriptors, soft and hard (a common default), so only the
     * connection limit and the reserve can keep it going. */
    struct rlimit self = {rl.rlim_max, rl.rlim_max};
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &self), 0);
    const char *log = test_tmp_path("jobd.log");
    char state[1024];
    snprintf(state, sizeof state, "%s/state", test_tmpdir());
    const char *argv[] = {"/bin/sh",
                          "-c",
                          "ulimit -n 1024 && exec \"$@\"",
                          "sh",
                          test_env("JOBD_BIN"),
                          "--redis",
                          test_redis_url(),
                          "--prefix",
                          test_prefix(),
                          "--queues",
                          "hl",
                          "--handlers",
                          test_handlers_file(),
                          "--state-dir",
                          state,
                          "--log-format",
                          "json",
                          "--http",
                          "127.0.0.1:0",
                          NULL};
    const char *env[] = {"JOBD_HTTP_HEADER_TIMEOUT_MS=1000", NULL};
    pid_t pid = test_spawn(argv, env, log);
    test_track(pid);
    int port = httpc_jobd_port(log, test_ms(10000));
    CHECK_OR_DUMP(port > 0, log, "no HTTP line");

    static int fds[IDLE_CONNS];
    int opened = 0;
    for (int i = 0; i < IDLE_CONNS; i++)
        if ((fds[i] = tcp_connect(port)) >= 0) opened++;
    ASSERT_GT(opened, 1024);

    /* With every one of them still open on our side: */
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, "hl", "t.exec", "{\"mode\":\"ok\"}", 1, 0, id);
    CHECK_OR_DUMP(test_wait_field("hl", id, "state", "succeeded", test_ms(15000)) == 0, log,
                  "the exec job did not succeed: state %s, error %s", test_hget("hl", id, "state"),
                  test_hget("hl", id, "error"));
    ASSERT_FIELD("hl", id, "attempt", "1");
    CHECK_OR_DUMP(wait_live(port, test_ms(4000)) == 0, log,
                  "/health/live did not answer 200 with %d idle connections open", opened);
    long long rejected = metric(port, "jobd_http_connections_rejected_total");
    CHECK_OR_DUMP(rejected > 0, log, "jobd_http_connections_rejected_total: %lld", rejected);

    /* And it did so within 1,024 descriptors. */
    ASSERT_EQ(test_count_log(log, "descriptor limit 1024 "), 1);

    for (int i = 0; i < IDLE_CONNS; i++)
        if (fds[i] >= 0) close(fds[i]);
    jobd_client_free(c);
    stop_jobd(pid, log);
}

#define SLOW_CONNS 50

/* Slowloris: 50 connections send a request head one byte every 200 ms.
 * The header deadline is total, not per read: jobd closes every one of
 * them (EOF here) well before the head could be complete. */
TEST(http_slow_heads_time_out)
{
    const char *log = test_tmp_path("jobd.log");
    char envbuf[64];
    snprintf(envbuf, sizeof envbuf, "JOBD_HTTP_HEADER_TIMEOUT_MS=%d", HEADER_TIMEOUT_MS);
    const char *env[] = {envbuf, NULL};
    pid_t pid = test_jobd_start(log, NULL, "hs", "state", NULL, env);
    int port = httpc_jobd_port(log, test_ms(10000));
    CHECK_OR_DUMP(port > 0, log, "no HTTP line");

    static const char head[] = "GET /health/live HTTP/1.1\r\n";
    int fds[SLOW_CONNS], open_n = 0;
    for (int i = 0; i < SLOW_CONNS; i++) {
        fds[i] = tcp_connect(port);
        ASSERT_GE(fds[i], 0);
        open_n++;
    }
    /* The bound is generous (4x the deadline); the head alone would take
     * 27 x 200 ms to send, and never ends with a blank line. */
    int64_t deadline = test_now_ms() + test_ms(4 * HEADER_TIMEOUT_MS);
    for (size_t k = 0; open_n > 0 && test_now_ms() < deadline; k = (k + 1) % (sizeof head - 1)) {
        for (int i = 0; i < SLOW_CONNS; i++) {
            if (fds[i] < 0) continue;
            struct pollfd p = {fds[i], POLLIN, 0};
            char b[256];
            if (poll(&p, 1, 0) > 0 && read(fds[i], b, sizeof b) <= 0) {
                close(fds[i]); /* EOF or reset: jobd closed it */
                fds[i] = -1;
                open_n--;
                continue;
            }
            if (write(fds[i], head + k, 1) < 0 && errno != EPIPE && errno != ECONNRESET) ASSERT(0);
        }
        test_pause_ms(200); /* the attack's pace, not a synchronisation */
    }
    CHECK_OR_DUMP(open_n == 0, log, "%d of %d slow connections still open after %lld ms", open_n,
                  SLOW_CONNS, (long long)test_ms(4 * HEADER_TIMEOUT_MS));
    long long timed_out = metric(port, "jobd_http_connections_timed_out_total");
    CHECK_OR_DUMP(timed_out >= SLOW_CONNS, log, "jobd_http_connections_timed_out_total: %lld",
                  timed_out);
    ASSERT_EQ(wait_live(port, test_ms(4000)), 0);
    stop_jobd(pid, log);
}

/* HEAD answers the GET headers and no body; POST gets 405 with Allow; a
 * head over the limit gets 431; GET still works as before. */
TEST(http_methods_head_and_limits)
{
    const char *log = test_tmp_path("jobd.log");
    pid_t pid = test_jobd_start(log, NULL, "hm", "state", NULL, NULL);
    int port = httpc_jobd_port(log, test_ms(10000));
    CHECK_OR_DUMP(port > 0, log, "no HTTP line");

    static const char get[] = "GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *g = exchange(port, get, sizeof get - 1);
    ASSERT_EQ(status_of(g), 200);
    ASSERT_CONTAINS(g, "\r\n\r\n{\"live\":true}\n");

    static const char head[] = "HEAD /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *h = exchange(port, head, sizeof head - 1);
    ASSERT_EQ(status_of(h), 200);
    ASSERT_CONTAINS(h, "Content-Type: application/json\r\n");
    const char *end = strstr(h, "\r\n\r\n");
    ASSERT(end != NULL);
    ASSERT_STR_EQ(end + 4, ""); /* nothing after the blank line */
    free(g);
    free(h);

    static const char post[] =
        "POST /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    char *p = exchange(port, post, sizeof post - 1);
    ASSERT_EQ(status_of(p), 405);
    ASSERT_CONTAINS(p, "\r\nAllow: GET, HEAD\r\n");
    free(p);

    /* 9,000 bytes of headers and no end of the head yet. */
    size_t n = 9000;
    char *big = malloc(n + 1);
    memcpy(big, "GET /health/live HTTP/1.1\r\nX-Pad: ", 34);
    memset(big + 34, 'a', n - 34);
    big[n] = '\0';
    char *b = exchange(port, big, n);
    ASSERT_EQ(status_of(b), 431);
    free(b);
    free(big);

    long long bad = metric(port, "jobd_http_bad_requests_total");
    CHECK_OR_DUMP(bad >= 2, log, "jobd_http_bad_requests_total: %lld", bad);
    stop_jobd(pid, log);
}

/* Descriptors jobd holds now (entries of /proc/PID/fd). */
static int count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* jobd runs out of descriptors just as it spawns an exec handler (its soft
 * limit set, from outside, to 3 above what it holds): that is jobd's
 * trouble, not the job's. The attempt is not charged: once descriptors are
 * back, the job (max_attempts 1) succeeds at its first attempt. */
TEST(http_spawn_out_of_descriptors_not_charged)
{
    const char *log = test_tmp_path("jobd.log");
    pid_t pid = test_jobd_start(log, NULL, "hf", "state", NULL, NULL);
    CHECK_OR_DUMP(test_wait_log(log, test_ms(10000), "Redis ready", NULL) == 0, log, "not ready");
    struct rlimit was, tight;
    ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, NULL, &was), 0);
    int held = count_fds(pid);
    ASSERT_GT(held, 0);
    tight.rlim_cur = (rlim_t)held + 3; /* not enough for the handler's three pipes */
    tight.rlim_max = was.rlim_max;
    ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &tight, NULL), 0);

    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, "hf", "t.exec", "{\"mode\":\"ok\"}", 1, 0, id);
    CHECK_OR_DUMP(test_wait_log(log, test_ms(10000), "attempt not charged", NULL) == 0, log,
                  "no retry: job state %s, error %s", test_hget("hf", id, "state"),
                  test_hget("hf", id, "error"));
    ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &was, NULL), 0);
    CHECK_OR_DUMP(test_wait_field("hf", id, "state", "succeeded", test_ms(15000)) == 0, log,
                  "the job did not succeed: state %s", test_hget("hf", id, "state"));
    ASSERT_FIELD("hf", id, "attempt", "1");
    jobd_client_free(c);
    stop_jobd(pid, log);
}
