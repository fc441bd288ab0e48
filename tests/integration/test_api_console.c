/* test_api_console.c - the console's JSON API served by a real jobd on a
 * real redis-server: the read endpoints (queues, jobs by state with paging
 * and search, one job with its history, workers), the write actions and
 * their bearer token (401 without or with a wrong one, 403 when no token is
 * configured, the token never in the log), and the event stream (a running
 * job's progress advances; the stream cap). */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

#define TOKEN "s3cret-token-0123456789"

static void stop_jobd(pid_t pid, const char *log)
{
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
}

/* jobd on queues with the admin token file (token NULL: none). */
static int start(const char *queues, const char *token, const char *log, pid_t *pid)
{
    static char envbuf[1100];
    const char *env[] = {envbuf, NULL};
    if (token) {
        const char *path = test_tmp_path("admin.token");
        char text[256];
        snprintf(text, sizeof text, "%s\n", token);
        test_write_file(path, text);
        snprintf(envbuf, sizeof envbuf, "JOBD_ADMIN_TOKEN_FILE=%s", path);
    }
    const char *extra[] = {"--worker-id", "w-api", NULL};
    *pid = test_jobd_start(log, NULL, queues, "state", extra, token ? env : NULL);
    int port = httpc_jobd_port(log, test_ms(10000));
    CHECK_OR_DUMP(port > 0, log, "no HTTP port");
    CHECK_OR_DUMP(test_wait_log(log, test_ms(10000), "Redis ready", NULL) == 0, log, "no Redis");
    return port;
}

/* GET path; asserts the status and returns the parsed JSON body (new). */
static json_t *get_json(int port, const char *path, int want)
{
    httpc_resp_t r;
    int st = httpc_request(port, "GET", path, NULL, NULL, test_ms(10000), &r);
    if (st != want)
        test_fail(__FILE__, __LINE__, "GET %s: %d, want %d: %s", path, st, want, r.body);
    json_t *v = json_loads(r.body, 0, NULL);
    if (!v) test_fail(__FILE__, __LINE__, "GET %s: not JSON: %s", path, r.body);
    httpc_resp_free(&r);
    return v;
}

static int post(int port, const char *path, const char *auth, const char *body, char **out)
{
    char hdr[256] = "";
    if (auth) snprintf(hdr, sizeof hdr, "Authorization: %s\r\n", auth);
    httpc_resp_t r;
    int st = httpc_request(port, "POST", path, hdr, body ? body : "", test_ms(10000), &r);
    if (out) *out = r.body ? strdup(r.body) : NULL;
    httpc_resp_free(&r);
    return st;
}

static const json_t *queue_of(const json_t *queues, const char *name)
{
    size_t i;
    const json_t *q;
    json_array_foreach(queues, i, q)
    {
        if (strcmp(json_string_value(json_object_get(q, "name")), name) == 0) return q;
    }
    return NULL;
}

TEST(api_read_endpoints)
{
    const char *log = test_tmp_path("jobd.log");
    pid_t pid;
    int port = start("ra", NULL, log, &pid);
    jobd_client_t *c = test_client();
    /* Two dead jobs (the built-in fail handler), one with a key, and a
     * succeeded one. */
    char dead1[JOBD_ID_LEN + 1], dead2[JOBD_ID_LEN + 1], ok[JOBD_ID_LEN + 1];
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = "ra";
    s.type = "fail";
    s.payload_json = "{\"message\":\"no luck\"}";
    s.max_attempts = 1;
    ASSERT_EQ(jobd_submit(c, &s, dead1, NULL), 0);
    s.idempotency_key = "order-77";
    ASSERT_EQ(jobd_submit(c, &s, dead2, NULL), 0);
    test_submit(c, "ra", "noop", NULL, 0, 0, ok);
    ASSERT_EQ(test_wait_zcard_ge("ra", "dead", 2, test_ms(10000)), 0);
    ASSERT_EQ(test_wait_field("ra", ok, "state", "succeeded", test_ms(10000)), 0);

    json_t *v = get_json(port, "/api/v1/queues", 200);
    const json_t *q = queue_of(json_object_get(v, "queues"), "ra");
    ASSERT(q != NULL);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(q, "counts"), "dead")), 2);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(q, "counts"), "succeeded")), 1);
    ASSERT(json_is_false(json_object_get(q, "paused")));
    ASSERT(json_is_object(json_object_get(q, "series")));
    ASSERT(json_is_number(json_object_get(q, "throughput_per_s")));
    json_decref(v);
    v = get_json(port, "/api/v1/queues/ra", 200);
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "name")), "ra");
    json_decref(v);
    json_decref(get_json(port, "/api/v1/queues/nosuch", 404));

    /* Paging: newest dead first, one per page. */
    v = get_json(port, "/api/v1/queues/ra/jobs?state=dead&limit=1", 200);
    ASSERT_EQ(json_integer_value(json_object_get(v, "total")), 2);
    const json_t *jobs = json_object_get(v, "jobs");
    ASSERT_EQ(json_array_size(jobs), 1);
    const json_t *j0 = json_array_get(jobs, 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(j0, "type")), "fail");
    ASSERT_STR_EQ(json_string_value(json_object_get(j0, "error")), "no luck");
    char first[64];
    snprintf(first, sizeof first, "%s", json_string_value(json_object_get(j0, "id")));
    json_decref(v);
    v = get_json(port, "/api/v1/queues/ra/jobs?state=dead&limit=1&offset=1", 200);
    const char *second =
        json_string_value(json_object_get(json_array_get(json_object_get(v, "jobs"), 0), "id"));
    ASSERT(second && strcmp(second, first) != 0);
    json_decref(v);

    /* Search by idempotency key and by id. */
    v = get_json(port, "/api/v1/queues/ra/jobs?q=order-77", 200);
    ASSERT_EQ(json_array_size(json_object_get(v, "jobs")), 1);
    ASSERT_STR_EQ(
        json_string_value(json_object_get(json_array_get(json_object_get(v, "jobs"), 0), "id")),
        dead2);
    json_decref(v);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/queues/ra/jobs?q=%s", ok);
    v = get_json(port, path, 200);
    ASSERT_STR_EQ(
        json_string_value(json_object_get(json_array_get(json_object_get(v, "jobs"), 0), "state")),
        "succeeded");
    json_decref(v);

    /* One job, with its history; by queue and by id alone. */
    snprintf(path, sizeof path, "/api/v1/queues/ra/jobs/%s", dead1);
    v = get_json(port, path, 200);
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "state")), "dead");
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "error")), "no luck");
    const json_t *h = json_object_get(v, "history");
    ASSERT_EQ(json_array_size(h), 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(h, 0), "worker")), "w-api");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(h, 0), "outcome")), "dead");
    json_decref(v);
    snprintf(path, sizeof path, "/api/v1/jobs/%s", ok);
    v = get_json(port, path, 200);
    ASSERT_STR_EQ(json_string_value(json_object_get(v, "queue")), "ra");
    json_decref(v);
    json_decref(get_json(port, "/api/v1/jobs/nosuch", 404));

    /* Workers: this jobd, its version, its queues. */
    v = get_json(port, "/api/v1/workers", 200);
    const json_t *w = json_array_get(json_object_get(v, "workers"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(w, "id")), "w-api");
    ASSERT(json_is_string(json_object_get(w, "version")));
    ASSERT(json_is_array(json_object_get(w, "jobs")));
    json_decref(v);

    /* Bad input. */
    json_decref(get_json(port, "/api/v1/queues/bad%7Bname%7D/jobs", 400));
    json_decref(get_json(port, "/api/v1/queues/ra/jobs?state=nope", 400));
    json_decref(get_json(port, "/api/v1/queues/ra/jobs?limit=1000", 400));
    json_decref(get_json(port, "/api/v1/nothing", 404));
    ASSERT_EQ(post(port, "/api/v1/queues", NULL, NULL, NULL), 405);
    jobd_client_free(c);
    stop_jobd(pid, log);
}

TEST(api_write_actions_need_the_token)
{
    const char *log = test_tmp_path("jobd.log");
    pid_t pid;
    int port = start("wa", TOKEN, log, &pid);
    json_t *v = get_json(port, "/api/v1/info", 200);
    ASSERT(json_is_true(json_object_get(v, "writable")));
    json_decref(v);

    char *body = NULL;
    ASSERT_EQ(post(port, "/api/v1/queues/wa/pause", NULL, NULL, &body), 401);
    ASSERT_CONTAINS(body, "Bearer");
    free(body);
    ASSERT_EQ(post(port, "/api/v1/queues/wa/pause", "Bearer wrong-token-xxxxxxxx", NULL, NULL),
              401);
    ASSERT_EQ(post(port, "/api/v1/queues/wa/pause", "Basic " TOKEN, NULL, NULL), 401);
    char key[512];
    test_qkey(key, sizeof key, "wa", "paused");
    ASSERT_EQ(test_cmd_int("EXISTS %s", key), 0);

    ASSERT_EQ(post(port, "/api/v1/queues/wa/pause", "Bearer " TOKEN, NULL, &body), 200);
    ASSERT_CONTAINS(body, "\"paused\":true");
    free(body);
    ASSERT_EQ(test_cmd_int("EXISTS %s", key), 1);
    v = get_json(port, "/api/v1/queues/wa", 200);
    ASSERT(json_is_true(json_object_get(v, "paused")));
    json_decref(v);
    ASSERT_EQ(post(port, "/api/v1/queues/wa/resume", "bearer " TOKEN, NULL, NULL), 200);
    ASSERT_EQ(test_cmd_int("EXISTS %s", key), 0);

    /* Job actions: cancel a queued job, retry is refused (not dead),
     * delete it, then 404. */
    jobd_client_t *c = test_client();
    ASSERT_EQ(jobd_pause(c, "wa", NULL), 0);
    char id[JOBD_ID_LEN + 1], path[256];
    test_submit(c, "wa", "noop", NULL, 0, 0, id);
    snprintf(path, sizeof path, "/api/v1/queues/wa/jobs/%s/retry", id);
    ASSERT_EQ(post(port, path, "Bearer " TOKEN, NULL, NULL), 409);
    snprintf(path, sizeof path, "/api/v1/queues/wa/jobs/%s/cancel", id);
    ASSERT_EQ(post(port, path, "Bearer " TOKEN, NULL, NULL), 200);
    ASSERT_FIELD("wa", id, "state", "canceled");
    snprintf(path, sizeof path, "/api/v1/queues/wa/jobs/%s/delete", id);
    ASSERT_EQ(post(port, path, NULL, NULL, NULL), 401);
    ASSERT_EQ(post(port, path, "Bearer " TOKEN, NULL, NULL), 200);
    ASSERT_EQ(post(port, path, "Bearer " TOKEN, NULL, NULL), 404);

    /* Purge with a JSON body; a bad state is 400 before the token check. */
    for (int i = 0; i < 3; i++)
        test_submit(c, "wa", "noop", NULL, 0, 0, id);
    ASSERT_EQ(
        post(port, "/api/v1/queues/wa/purge", "Bearer " TOKEN, "{\"state\":\"active\"}", NULL),
        400);
    ASSERT_EQ(
        post(port, "/api/v1/queues/wa/purge", "Bearer " TOKEN, "{\"state\":\"queued\"}", &body),
        200);
    ASSERT_CONTAINS(body, "\"deleted\":3");
    free(body);
    ASSERT_EQ(test_zcard("wa", "ready"), 0);

    /* Logged with the token's id, never the token. */
    ASSERT_GE(test_count_log(log, "console: pause queue wa by token "), 1);
    ASSERT_GE(test_count_log(log, "console: refused pause wa"), 1);
    ASSERT_EQ(test_count_log(log, TOKEN), 0);
    ASSERT_EQ(jobd_resume(c, "wa", NULL), 0);
    jobd_client_free(c);
    stop_jobd(pid, log);

    /* No token file: read-only, 403 with a clear message. */
    const char *log2 = test_tmp_path("jobd2.log");
    port = start("wa", NULL, log2, &pid);
    ASSERT_EQ(post(port, "/api/v1/queues/wa/pause", "Bearer " TOKEN, NULL, &body), 403);
    ASSERT_CONTAINS(body, "read-only");
    ASSERT_CONTAINS(body, "JOBD_ADMIN_TOKEN_FILE");
    free(body);
    ASSERT_EQ(test_cmd_int("EXISTS %s", key), 0);
    v = get_json(port, "/api/v1/info", 200);
    ASSERT(json_is_false(json_object_get(v, "writable")));
    json_decref(v);
    stop_jobd(pid, log2);

    /* A token too short to be safe is refused: read-only as well. */
    const char *log3 = test_tmp_path("jobd3.log");
    port = start("wa", "short", log3, &pid);
    ASSERT_EQ(post(port, "/api/v1/queues/wa/pause", "Bearer short", NULL, &body), 403);
    ASSERT_CONTAINS(body, "under 16");
    free(body);
    stop_jobd(pid, log3);
}

/* Reads SSE events from fd until pred(data) holds for an event named
 * name; returns 0, or -1 after ms. */
static int wait_event(int fd, const char *name, int64_t ms, int (*pred)(const char *, void *),
                      void *arg)
{
    static char buf[1 << 20];
    static size_t len;
    int64_t deadline = test_now_ms() + ms;
    char want[64];
    snprintf(want, sizeof want, "event: %s\ndata: ", name);
    for (;;) {
        char *ev;
        while ((ev = strstr(buf, "\n\n"))) {
            *ev = '\0';
            char *hit = strstr(buf, want);
            int ok = hit && pred(hit + strlen(want), arg);
            size_t used = (size_t)(ev - buf) + 2;
            memmove(buf, buf + used, len - used + 1);
            len -= used;
            if (ok) return 0;
        }
        int64_t left = deadline - test_now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0) continue;
        ssize_t r = read(fd, buf + len, sizeof buf - len - 1);
        if (r <= 0) return -1;
        len += (size_t)r;
        buf[len] = '\0';
    }
}

static int progress_above(const char *data, void *arg)
{
    double *last = arg;
    json_t *v = json_loads(data, 0, NULL);
    double p = json_number_value(json_object_get(v, "progress"));
    int active = json_is_string(json_object_get(v, "state")) &&
                 strcmp(json_string_value(json_object_get(v, "state")), "active") == 0;
    json_decref(v);
    if (active && p > *last) {
        *last = p;
        return 1;
    }
    return 0;
}

static int is_succeeded(const char *data, void *arg)
{
    (void)arg;
    return strstr(data, "\"state\":\"succeeded\"") != NULL;
}

static int has_queue(const char *data, void *arg)
{
    return strstr(data, (const char *)arg) != NULL;
}

TEST(api_event_stream)
{
    const char *log = test_tmp_path("jobd.log");
    pid_t pid;
    int port = start("ev", NULL, log, &pid);
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, "ev", "sleep", "{\"ms\":4000}", 0, 0, id);
    ASSERT_EQ(test_wait_field("ev", id, "state", "active", test_ms(10000)), 0);

    int fd = httpc_connect(port);
    ASSERT_GE(fd, 0);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /api/v1/events?queue=ev&job=%s HTTP/1.1\r\nHost: x\r\n"
                     "Accept: text/event-stream\r\n\r\n",
                     id);
    ASSERT_EQ(httpc_write_all(fd, req, (size_t)n), 0);
    /* The queue overview, then the job's progress advancing twice. */
    CHECK_OR_DUMP(wait_event(fd, "queues", test_ms(5000), has_queue, "\"name\":\"ev\"") == 0, log,
                  "no queues event");
    double last = -1;
    CHECK_OR_DUMP(wait_event(fd, "job", test_ms(5000), progress_above, &last) == 0, log,
                  "no job event");
    double p1 = last;
    CHECK_OR_DUMP(wait_event(fd, "job", test_ms(5000), progress_above, &last) == 0, log,
                  "progress did not advance past %g", p1);
    ASSERT(last > p1);
    CHECK_OR_DUMP(wait_event(fd, "job", test_ms(10000), is_succeeded, NULL) == 0, log,
                  "no succeeded event");
    close(fd);

    /* The stream cap: 16 open streams, the 17th is refused with 503, and
     * ordinary requests still work. */
    int fds[16];
    for (int i = 0; i < 16; i++) {
        fds[i] = httpc_connect(port);
        static const char ev[] = "GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n";
        ASSERT_EQ(httpc_write_all(fds[i], ev, sizeof ev - 1), 0);
        char b[64];
        struct pollfd p = {fds[i], POLLIN, 0};
        ASSERT_GT(poll(&p, 1, (int)test_ms(5000)), 0); /* its 200 head */
        ASSERT_GT(read(fds[i], b, sizeof b), 0);
    }
    httpc_resp_t r;
    ASSERT_EQ(httpc_request(port, "GET", "/api/v1/events", NULL, NULL, test_ms(5000), &r), 503);
    httpc_resp_free(&r);
    ASSERT_EQ(httpc_request(port, "GET", "/api/v1/info", NULL, NULL, test_ms(5000), &r), 200);
    httpc_resp_free(&r);
    for (int i = 0; i < 16; i++)
        close(fds[i]);
    jobd_client_free(c);
    stop_jobd(pid, log);
}
