/* test_browser.c - the dashboard in a real browser: Debian's headless
 * Chromium, driven by Debian's chromedriver over the W3C WebDriver HTTP
 * protocol (no browser download, no npm), loads the dashboard served by a
 * real jobd on a real redis-server, sees a running job's progress bar
 * advance, fails to pause a queue without the admin token (and the queue
 * stays unpaused in Redis), then pauses it with the token and sees it
 * paused. Screenshots are kept as test artefacts in the build directory
 * ($JOBD_TEST_ARTEFACTS/dashboard-*.png).
 *
 * Chromium and chromedriver come from deploy/install-deps.sh (make test
 * runs it). If they are missing or the browser cannot start, the test
 * fails, saying why: it never passes without a browser. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

#define TOKEN "browser-test-token-0123456789"
#define ELEMENT_KEY "element-6066-11e4-a52e-4f735466cecf"

static int driver_port;
static char session[128];
static const char *driver_log;

/* A free TCP port on 127.0.0.1 (bound and released; chromedriver takes it
 * right after). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

/* One WebDriver call; returns the answer's "value" (new) and asserts the
 * HTTP status is 200. */
static json_t *wd(const char *method, const char *path, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    httpc_resp_t r;
    int st = httpc_request(driver_port, method, path, NULL,
                           text ? text : (strcmp(method, "POST") == 0 ? "{}" : NULL),
                           test_ms(60000), &r);
    free(text);
    if (st != 200) {
        test_dump_log(driver_log);
        test_fail(__FILE__, __LINE__, "WebDriver %s %s: %d %s", method, path, st,
                  r.body ? r.body : "(no answer)");
    }
    json_t *v = json_loads(r.body, 0, NULL);
    httpc_resp_free(&r);
    json_t *value = json_incref(json_object_get(v, "value"));
    json_decref(v);
    return value;
}

static json_t *wd_session(const char *method, const char *suffix, json_t *body)
{
    char path[512];
    snprintf(path, sizeof path, "/session/%s%s", session, suffix);
    return wd(method, path, body);
}

/* Runs a script in the page; returns its value (new). */
static json_t *js(const char *script)
{
    return wd_session("POST", "/execute/sync", json_pack("{s:s, s:[]}", "script", script, "args"));
}

static void navigate(const char *url)
{
    json_decref(wd_session("POST", "/url", json_pack("{s:s}", "url", url)));
}

/* The WebDriver id of the element matching css (NULL if none); malloc'd. */
static char *find(const char *css)
{
    char path[512];
    snprintf(path, sizeof path, "/session/%s/element", session);
    char *text = NULL;
    json_t *b = json_pack("{s:s, s:s}", "using", "css selector", "value", css);
    text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    httpc_resp_t r;
    int st = httpc_request(driver_port, "POST", path, NULL, text, test_ms(30000), &r);
    free(text);
    char *id = NULL;
    if (st == 200) {
        json_t *v = json_loads(r.body, 0, NULL);
        const char *e =
            json_string_value(json_object_get(json_object_get(v, "value"), ELEMENT_KEY));
        if (e) id = strdup(e);
        json_decref(v);
    }
    httpc_resp_free(&r);
    return id;
}

/* Waits until css matches an element; returns its id (malloc'd). */
static char *wait_find(const char *css, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        char *id = find(css);
        if (id) return id;
        if (test_now_ms() >= deadline) return NULL;
        test_pause_ms(50);
    }
}

static void click(const char *css)
{
    char *id = wait_find(css, test_ms(10000));
    if (!id) test_fail(__FILE__, __LINE__, "no element %s to click", css);
    char suffix[256];
    snprintf(suffix, sizeof suffix, "/element/%s/click", id);
    json_decref(wd_session("POST", suffix, json_object()));
    free(id);
}

static void type_into(const char *css, const char *text)
{
    char *id = wait_find(css, test_ms(10000));
    if (!id) test_fail(__FILE__, __LINE__, "no element %s to type into", css);
    char suffix[256];
    snprintf(suffix, sizeof suffix, "/element/%s/value", id);
    json_decref(wd_session("POST", suffix, json_pack("{s:s}", "text", text)));
    free(id);
}

static int b64val(int ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Saves a screenshot of the page as $JOBD_TEST_ARTEFACTS/name. */
static void screenshot(const char *name)
{
    json_t *v = wd_session("GET", "/screenshot", NULL);
    const char *b64 = json_string_value(v);
    ASSERT(b64 != NULL);
    size_t n = strlen(b64);
    unsigned char *png = malloc(n);
    size_t len = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int d = b64val((unsigned char)b64[i]);
        if (d < 0) continue;
        acc = (acc << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            png[len++] = (unsigned char)(acc >> bits);
        }
    }
    json_decref(v);
    ASSERT_GT(len, 1000);
    ASSERT_EQ(memcmp(png, "\x89PNG", 4), 0);
    const char *dir = getenv("JOBD_TEST_ARTEFACTS");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : test_tmpdir(), name);
    if (dir && *dir) mkdir(dir, 0755);
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(png, 1, len, f), len);
    fclose(f);
    free(png);
    printf("screenshot: %s\n", path);
}

/* The job page's progress bar value (-1: not shown yet). */
static double shown_progress(void)
{
    json_t *v = js("var e = document.getElementById('job-progress');"
                   "return e ? Number(e.dataset.progress) : -1;");
    double p = json_is_number(v) ? json_number_value(v) : -1;
    json_decref(v);
    return p;
}

static char *text_of(const char *id)
{
    char script[256];
    snprintf(script, sizeof script,
             "var e = document.getElementById('%s'); return e && !e.hidden ? e.textContent : '';",
             id);
    json_t *v = js(script);
    char *s = strdup(json_string_value(v) ? json_string_value(v) : "");
    json_decref(v);
    return s;
}

/* What the page shows, as text (malloc'd), for failure messages. */
static char *page_text(void)
{
    json_t *v = js("return document.body ? document.body.innerText : '(no body)';");
    char *s = strdup(json_string_value(v) ? json_string_value(v) : "");
    json_decref(v);
    return s;
}

static pid_t start_driver(void)
{
    const char *bin = "/usr/bin/chromedriver", *chromium = "/usr/bin/chromium";
    if (access(bin, X_OK) != 0 || access(chromium, X_OK) != 0)
        test_fail(__FILE__, __LINE__,
                  "Debian's chromium and chromium-driver are required (%s, %s): run "
                  "deploy/install-deps.sh",
                  chromium, bin);
    driver_port = free_port();
    char port_arg[64];
    snprintf(port_arg, sizeof port_arg, "--port=%d", driver_port);
    driver_log = test_tmp_path("chromedriver.log");
    const char *argv[] = {bin, port_arg, "--allowed-ips=127.0.0.1", NULL};
    pid_t pid = test_spawn(argv, NULL, driver_log);
    test_track(pid);
    int64_t deadline = test_now_ms() + test_ms(20000);
    for (;;) {
        httpc_resp_t r;
        int st = httpc_request(driver_port, "GET", "/status", NULL, NULL, test_ms(2000), &r);
        int ready = st == 200 && r.body && strstr(r.body, "\"ready\":true");
        httpc_resp_free(&r);
        if (ready) break;
        CHECK_OR_DUMP(test_now_ms() < deadline, driver_log, "chromedriver did not get ready");
        test_pause_ms(50);
    }
    char profile[1024];
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chrome-profile", test_tmpdir());
    json_t *caps =
        json_pack("{s:{s:{s:s, s:{s:s, s:[s,s,s,s,s,s,s]}}}}", "capabilities", "alwaysMatch",
                  "browserName", "chrome", "goog:chromeOptions", "binary", chromium, "args",
                  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,800", "--no-first-run", profile);
    json_t *v = wd("POST", "/session", caps);
    const char *sid = json_string_value(json_object_get(v, "sessionId"));
    CHECK_OR_DUMP(sid != NULL, driver_log, "the browser did not start");
    snprintf(session, sizeof session, "%s", sid);
    json_decref(v);
    return pid;
}

TEST(browser_dashboard_progress_and_pause)
{
    const char *log = test_tmp_path("jobd.log");
    const char *tokfile = test_tmp_path("admin.token");
    test_write_file(tokfile, TOKEN "\n");
    char envbuf[1100];
    snprintf(envbuf, sizeof envbuf, "JOBD_ADMIN_TOKEN_FILE=%s", tokfile);
    const char *env[] = {envbuf, NULL};
    const char *extra[] = {"--drain-timeout", "1", NULL};
    pid_t jobd = test_jobd_start(log, NULL, "br,mail", "state", extra, env);
    int port = httpc_jobd_port(log, test_ms(10000));
    CHECK_OR_DUMP(port > 0, log, "no HTTP port");

    /* Something to look at: a long sleep job (progress moves every 100 ms,
     * reaches Redis every sync interval), finished jobs for the overview. */
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], tmp[JOBD_ID_LEN + 1];
    for (int i = 0; i < 5; i++)
        test_submit(c, "mail", "noop", NULL, 0, 0, tmp);
    test_submit(c, "mail", "fail", "{\"message\":\"smtp said 550\"}", 1, 0, tmp);
    test_submit(c, "br", "sleep", "{\"ms\":12000}", 0, 0, id);
    CHECK_OR_DUMP(test_wait_field("br", id, "state", "active", test_ms(10000)) == 0, log,
                  "not active");

    pid_t driver = start_driver();
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/#/queues/br/jobs/%s", port, id);
    navigate(url);

    /* The progress bar shows and advances (by the event stream: the page
     * is not reloaded). */
    int64_t deadline = test_now_ms() + test_ms(15000);
    double p1 = -1;
    while ((p1 = shown_progress()) <= 0) {
        if (test_now_ms() >= deadline) {
            screenshot("dashboard-failed.png");
            char *body = page_text();
            CHECK_OR_DUMP(0, log, "no progress shown (%g); the page says: %s", p1, body);
        }
        test_pause_ms(100);
    }
    double p2 = p1;
    while ((p2 = shown_progress()) <= p1) {
        CHECK_OR_DUMP(test_now_ms() < deadline, log, "progress stuck at %g", p1);
        test_pause_ms(100);
    }
    ASSERT(p2 > p1);
    char *live = text_of("live");
    ASSERT_STR_EQ(live, "live");
    free(live);
    screenshot("dashboard-job.png");

    /* Pause without a token: refused, shown, and nothing changes. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/#/queues/br", port);
    navigate(url);
    click("#btn-pause");
    deadline = test_now_ms() + test_ms(10000);
    char *msg = NULL;
    for (;;) {
        msg = text_of("flash");
        if (strstr(msg, "failed")) break;
        free(msg);
        CHECK_OR_DUMP(test_now_ms() < deadline, log, "no refusal shown");
        test_pause_ms(50);
    }
    ASSERT_CONTAINS(msg, "401");
    free(msg);
    char key[512];
    test_qkey(key, sizeof key, "br", "paused");
    ASSERT_EQ(test_cmd_int("EXISTS %s", key), 0);
    char *running = find("#queue-running");
    ASSERT(running != NULL);
    free(running);

    /* With the token: paused, in Redis and on the page. */
    /* The refusal opened the token panel. */
    json_t *hidden = js("return document.getElementById('token-panel').hidden;");
    ASSERT(json_is_false(hidden));
    json_decref(hidden);
    type_into("#token", TOKEN);
    click("#token-save");
    click("#btn-pause");
    char *badge = wait_find("#queue-paused", test_ms(10000));
    CHECK_OR_DUMP(badge != NULL, log, "the page does not show the queue paused");
    free(badge);
    ASSERT_EQ(test_cmd_int("EXISTS %s", key), 1);
    ASSERT_GE(test_count_log(log, "console: pause queue br by token "), 1);

    /* The overview, for the record. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/#/", port);
    navigate(url);
    char *row = wait_find("tr[data-queue=\"mail\"]", test_ms(10000));
    ASSERT(row != NULL);
    free(row);
    screenshot("dashboard-overview.png");

    json_decref(wd("DELETE", (snprintf(url, sizeof url, "/session/%s", session), url), NULL));
    kill(driver, SIGTERM);
    ASSERT_GE(test_wait_exit(driver, test_ms(10000), driver_log), 0);
    jobd_client_free(c);
    kill(jobd, SIGTERM);
    ASSERT_EXIT(jobd, test_ms(30000), log, 0);
}
