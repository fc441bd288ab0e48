/* test_console_http.c - jobd's HTTP server on http-parser, black box:
 * keep-alive (several requests on one connection, pipelined ones answered
 * in order, Connection: close and HTTP/1.0 honoured), and hostile input
 * (malformed requests, an oversized body, URL or header count, a pipelined
 * flood that is never read, random bytes): jobd answers each with the
 * right status, stays live, and its memory stays bounded. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

static void stop_jobd(pid_t pid, const char *log)
{
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
}

static int start(const char *queue, const char *log, pid_t *pid)
{
    *pid = test_jobd_start(log, NULL, queue, "state", NULL, NULL);
    int port = httpc_jobd_port(log, test_ms(10000));
    CHECK_OR_DUMP(port > 0, log, "no HTTP port logged");
    return port;
}

/* Sends raw bytes on a fresh connection and reads to EOF; returns the
 * status of the first answer. */
static int raw_status(int port, const char *req, size_t len)
{
    int fd = httpc_connect(port);
    ASSERT_GE(fd, 0);
    httpc_write_all(fd, req, len);
    httpc_resp_t r;
    int st = httpc_read_one(fd, test_ms(10000), &r);
    httpc_resp_free(&r);
    close(fd);
    return st;
}

TEST(console_http_keep_alive_and_pipelining)
{
    const char *log = test_tmp_path("jobd.log");
    pid_t pid;
    int port = start("ka", log, &pid);

    /* Three requests, one after the other, on one connection. */
    int fd = httpc_connect(port);
    ASSERT_GE(fd, 0);
    static const char live[] = "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(httpc_write_all(fd, live, sizeof live - 1), 0);
        httpc_resp_t r;
        ASSERT_EQ(httpc_read_one(fd, test_ms(5000), &r), 200);
        ASSERT_STR_EQ(r.body, "{\"live\":true}\n");
        ASSERT_EQ(r.closed, 0);
        httpc_resp_free(&r);
    }
    /* Connection: close ends it after the answer. */
    static const char last[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(httpc_write_all(fd, last, sizeof last - 1), 0);
    httpc_resp_t r;
    ASSERT_EQ(httpc_read_one(fd, test_ms(5000), &r), 200);
    ASSERT_EQ(r.closed, 1);
    ASSERT_CONTAINS(r.body, "jobd_http_connections_open");
    httpc_resp_free(&r);
    close(fd);

    /* Five pipelined in one write: five answers, in order. */
    fd = httpc_connect(port);
    char burst[2048] = "";
    static const char *const paths[] = {"/health/live", "/nope", "/health/live", "/metrics",
                                        "/health/ready"};
    for (int i = 0; i < 5; i++) {
        char one[256];
        snprintf(one, sizeof one, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", paths[i],
                 i == 4 ? "Connection: close\r\n" : "");
        strcat(burst, one);
    }
    ASSERT_EQ(httpc_write_all(fd, burst, strlen(burst)), 0);
    int want[] = {200, 404, 200, 200, -2};
    for (int i = 0; i < 5; i++) {
        int st = httpc_read_one(fd, test_ms(5000), &r);
        if (want[i] == -2)
            ASSERT(st == 200 || st == 503); /* ready or not, it answered */
        else
            ASSERT_EQ(st, want[i]);
        ASSERT_EQ(r.closed, i == 4);
        httpc_resp_free(&r);
    }
    close(fd);

    /* HTTP/1.0 without keep-alive: closed after one answer. */
    fd = httpc_connect(port);
    static const char old[] = "GET /health/live HTTP/1.0\r\n\r\n";
    ASSERT_EQ(httpc_write_all(fd, old, sizeof old - 1), 0);
    ASSERT_EQ(httpc_read_one(fd, test_ms(5000), &r), 200);
    ASSERT_EQ(r.closed, 1);
    httpc_resp_free(&r);
    close(fd);
    stop_jobd(pid, log);
}

TEST(console_http_hostile_input)
{
    const char *log = test_tmp_path("jobd.log");
    pid_t pid;
    int port = start("hx", log, &pid);
    long rss0 = httpc_rss_kib(pid);
    ASSERT_GT(rss0, 0);

    /* Malformed: not HTTP at all, a bad version, a space in the target. */
    static const char *const bad[] = {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                                      "GET /health/live HTTP/9x\r\n\r\n",
                                      "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
                                      "GET /health/live HTTP/1.1\r\nBad Header\r\n\r\n",
                                      "GET http://x HTTP/1.1\r\nHost: x\r\n\r\n",
                                      "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
                                      "GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_OR_DUMP(raw_status(port, bad[i], strlen(bad[i])) == 400, log, "request %zu", i);

    /* A body over 16 KiB announced: 413 before it is sent. */
    static const char big[] = "POST /api/v1/queues/hx/pause HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 1000000\r\n\r\n";
    ASSERT_EQ(raw_status(port, big, sizeof big - 1), 413);
    /* A chunked body that grows past it. */
    size_t n = 40000;
    char *chunked = malloc(n + 256);
    int k = sprintf(chunked,
                    "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "%zx\r\n",
                    n);
    memset(chunked + k, 'a', n);
    strcpy(chunked + k + n, "\r\n0\r\n\r\n");
    ASSERT_EQ(raw_status(port, chunked, strlen(chunked)), 413);
    free(chunked);
    /* A URL over 2 KiB: 414. */
    char url[4000] = "GET /";
    memset(url + 5, 'u', 3000);
    strcpy(url + 3005, " HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_EQ(raw_status(port, url, strlen(url)), 414);
    /* 200 tiny headers: 431. */
    char *many = malloc(200 * 8 + 64);
    strcpy(many, "GET /health/live HTTP/1.1\r\n");
    for (int i = 0; i < 200; i++)
        strcat(many, "A: b\r\n");
    strcat(many, "\r\n");
    ASSERT_EQ(raw_status(port, many, strlen(many)), 431);
    free(many);

    /* A pipelined flood that is never read: 20,000 requests (about 1 MB).
     * jobd buffers 16 KiB of it and stops reading until its answers are
     * taken; meanwhile it answers everyone else. */
    int flood = httpc_connect(port);
    ASSERT_GE(flood, 0);
    static const char one[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t sent = 0;
    for (int i = 0; i < 20000; i++) {
        struct pollfd p = {flood, POLLOUT, 0};
        if (poll(&p, 1, 50) <= 0) break; /* both socket buffers full: jobd stopped reading */
        ssize_t w = send(flood, one, sizeof one - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0) break;
        sent += (size_t)w;
    }
    ASSERT_GT(sent, 16384);
    httpc_resp_t r;
    ASSERT_EQ(httpc_request(port, "GET", "/health/live", NULL, NULL, test_ms(5000), &r), 200);
    httpc_resp_free(&r);

    /* Random bytes on 30 connections. */
    srandom(42);
    for (int c = 0; c < 30; c++) {
        char junk[3000];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (char)(random() & 0xff);
        int fd = httpc_connect(port);
        if (fd < 0) continue;
        httpc_write_all(fd, junk, sizeof junk);
        close(fd);
    }
    ASSERT_EQ(httpc_request(port, "GET", "/health/live", NULL, NULL, test_ms(5000), &r), 200);
    httpc_resp_free(&r);
    close(flood);

    /* Bounded: connections cost at most a few tens of KiB each. */
    long rss1 = httpc_rss_kib(pid);
    CHECK_OR_DUMP(rss1 - rss0 < 16 * 1024, log, "RSS grew from %ld to %ld KiB", rss0, rss1);
    stop_jobd(pid, log);
}
