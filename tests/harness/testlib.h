/* testlib.h - helpers for integration tests: the test Redis (shared or
 * private), child processes (killed if the test aborts), jobd as a child,
 * its JSON log, job state in Redis, and waiting for events with deadlines
 * (never fixed sleeps). Every name starts with test_ (or is an ASSERT-style
 * macro), so a test file's own helpers never collide with these.
 *
 * Environment set by CMake for every test: JOBD_TEST_REDIS (URL of the
 * fixture's redis-server), JOBD_BIN, JOBCTL_BIN, JOBD_TEST_BIN_DIR (helper
 * programs), JOBD_SOURCE_DIR, JOBD_FIXTURE_SCRIPT. */
#ifndef JOBD_TESTLIB_H
#define JOBD_TESTLIB_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "jobd/client.h"
#include "test.h"

/* URL of the shared test Redis (aborts the test if unset). */
const char *test_redis_url(void);
/* A libjobd client on the shared test Redis with this test's prefix. */
jobd_client_t *test_client(void);
/* A libjobd client on url with this test's prefix. */
jobd_client_t *test_client_at(const char *url);
/* A raw hiredis connection to the shared test Redis (cached; do not free). */
redisContext *test_redis(void);
/* Runs a command on test_redis(); aborts on connection failure. The caller
 * frees the reply. */
redisReply *test_cmd(const char *fmt, ...);
/* Integer result of a command (aborts if not an integer reply). */
long long test_cmd_int(const char *fmt, ...);

/* Path of a binary named by an environment variable (JOBD_BIN, JOBCTL_BIN)
 * or a helper under JOBD_TEST_BIN_DIR. */
const char *test_env(const char *name);
const char *test_helper(const char *name);

/* Runs argv to completion with stdin_text on its stdin (NULL: /dev/null).
 * Returns its exit status (128 + signal if killed); *out and *err, if not
 * NULL, receive malloc'd copies of its stdout and stderr. extra_env is a
 * NULL-terminated list of "K=V" added to the environment (may be NULL). */
int test_run(const char *const argv[], const char *const extra_env[], const char *stdin_text,
             char **out, char **err);

/* Waits for pid to exit within ms; returns its exit status (128 + signal),
 * or -1 on timeout (the process is left running). */
int test_waitpid(pid_t pid, int64_t ms);

/* Waits until the file at path has a line containing every needle (up to
 * 3, NULL-terminated list), reading it as it grows. Returns 0, or -1 after
 * ms. */
int test_wait_log(const char *path, int64_t ms, const char *needle, ...) __attribute__((sentinel));
/* Counts lines of path containing needle. */
int test_count_log(const char *path, const char *needle);

/* Starts a private redis-server in dir (its own socket; extra config lines
 * NULL-terminated). Writes its URL into url (256 bytes). */
void test_redis_start(const char *dir, char *url, const char *const extra_conf[]);
void test_redis_stop(const char *dir);

/* Reads a whole file into a malloc'd string (NULL if missing). */
char *test_read_file(const char *path);
/* Rows of jobd's journal (STATEDIR/journal.db, read-only) in its held table
 * for job id; -1 if the journal cannot be read. */
long long test_held_rows(const char *statedir, const char *id);
/* Writes text to path. */
void test_write_file(const char *path, const char *text);
/* Writes body (a shell script's text after "#!/bin/sh\n") to an executable
 * file under test_tmpdir(), and a handlers file whose one type, type, runs
 * it. Returns the handlers file's path (one of test_tmp_path's buffers). */
const char *test_script_handlers(const char *type, const char *body);

/* The helpers below: keys are "<test_prefix()>:{<queue>}:<suffix>", as jobd
 * writes them. Polling helpers (test_wait_*) check their condition every
 * 20 ms and return 0 once it holds, or -1 after ms (pass test_ms(...)
 * deadlines). A char * result is malloc'd and the caller frees it; a
 * const char * result points into static storage as described for each
 * function. Not thread-safe. */

/* ---- processes the test started: killed if the test aborts ---- */

/* The pid of a private redis-server (start_private_redis), 0: none. */
extern pid_t test_private_redis_pid;

/* Installs (once) handlers for SIGABRT (a failed assertion), SIGTERM and
 * SIGSEGV that SIGKILL every tracked process and the private redis-server,
 * then die of the same signal; also ignores SIGPIPE, so a Redis or child
 * that goes away fails an assertion instead of killing the test. */
void test_install_abort_handler(void);
/* Adds pid to the processes killed on abort (up to 64; installs the
 * handler). untrack removes it (call it once pid has been reaped). */
void test_track(pid_t pid);
void test_untrack(pid_t pid);

/* Starts argv in the background, stdout and stderr appended to log_path,
 * extra_env ("K=V", NULL-terminated, may be NULL) added to its environment.
 * The child gets SIGKILL when the test process dies (PR_SET_PDEATHSIG: a
 * test killed by ctest's timeout leaves no jobd behind) and starts with
 * SIGPIPE at its default. Returns its pid; does not track it. */
pid_t test_spawn(const char *const argv[], const char *const extra_env[], const char *log_path);

/* Sleeps ms. Only for polling with a deadline, never to synchronise. */
void test_pause_ms(int ms);

/* Prints the last 8,000 bytes of the file at path to stderr (for a failing
 * test's output); nothing if it is missing. */
void test_dump_log(const char *path);

/* Waits up to ms for pid to exit. Returns its exit status (128 + signal)
 * and untracks it, or -1 on timeout after dumping log (pid is left running
 * and tracked). */
int test_wait_exit(pid_t pid, int64_t ms, const char *log);

/* Asserts pid exits with status want within ms; dumps log if not. */
#define ASSERT_EXIT(pid, ms, log, want)                                                            \
    do {                                                                                           \
        int st_ = test_wait_exit(pid, ms, log);                                                    \
        if (st_ != (want)) {                                                                       \
            if (st_ >= 0) test_dump_log(log);                                                      \
            ASSERT_EQ(st_, want);                                                                  \
        }                                                                                          \
    } while (0)

/* Fails the test with a printf-style message (after dumping log) unless
 * cond holds. */
#define CHECK_OR_DUMP(cond, log, ...)                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            test_dump_log(log);                                                                    \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);                                            \
        }                                                                                          \
    } while (0)

/* ---- Redis: the shared test server, or a private one ---- */

/* Unix socket of the private redis-server the helpers below talk to; empty
 * (the default): the shared test Redis. start_private_redis sets it. */
extern char test_private_sock[700];

/* A private redis-server in dir, with an append-only file (fsync always), so
 * a stop and start keeps the jobs: a real Redis outage, not a data loss.
 * Writes its URL into url (256 bytes), sets test_private_redis_pid and points
 * test_private_sock at it (from then on the helpers below use it), and installs
 * the abort handler. Called again after stop_private_redis, restarts it on
 * the same data. */
void test_private_redis_start(const char *dir, char *url);
/* Stops the private redis-server in dir (test_private_sock stays set: the
 * helpers below then see an unreachable Redis). */
void test_private_redis_stop(const char *dir);

/* Runs a command on the private Redis if test_private_sock is set, else on the
 * shared one (retried once on a fresh connection: the private server may
 * have restarted under the cached one). NULL if it is unreachable. The
 * caller frees the reply. */
redisReply *test_rcmd(const char *fmt, ...);

/* Writes "<prefix>:{queue}:suffix" into out (len bytes). */
void test_qkey(char *out, size_t len, const char *queue, const char *suffix);

/* ZCARD of the queue's sorted set ("ready", "active", "succeeded", ...);
 * -1 if Redis is unreachable. */
long long test_zcard(const char *queue, const char *set);
/* Polls until test_zcard(queue, set) >= n. */
int test_wait_zcard_ge(const char *queue, const char *set, long long n, int64_t ms);

/* A field of job id's hash (malloc'd), or NULL if missing or unreachable. */
char *test_hget(const char *queue, const char *id, const char *field);
/* The field as an integer; -1 if missing or unreachable. */
long long test_hget_ll(const char *queue, const char *id, const char *field);
/* Whether the field exists and equals want. */
int test_field_is(const char *queue, const char *id, const char *field, const char *want);
/* Polls until the field equals want. */
int test_wait_field(const char *queue, const char *id, const char *field, const char *want,
                    int64_t ms);
/* Polls until the field exists and is not empty. */
int test_wait_field_set(const char *queue, const char *id, const char *field, int64_t ms);

/* A counter of the queue's stats hash ("succeeded", "failed", "released",
 * ...); 0 if missing or unreachable. */
long long test_stat_counter(const char *queue, const char *field);

/* Asserts a job's field equals want / contains needle. */
#define ASSERT_FIELD(queue, id, field, want)                                                       \
    do {                                                                                           \
        char *v_ = test_hget(queue, id, field);                                                    \
        ASSERT_STR_EQ(v_, want);                                                                   \
        free(v_);                                                                                  \
    } while (0)

#define ASSERT_FIELD_CONTAINS(queue, id, field, needle)                                            \
    do {                                                                                           \
        char *v_ = test_hget(queue, id, field);                                                    \
        ASSERT_CONTAINS(v_, needle);                                                               \
        free(v_);                                                                                  \
    } while (0)

/* ---- jobd ---- */

/* "<test_tmpdir()>/name", in one of 32 static buffers used in turn: valid
 * until 32 more calls. */
const char *test_tmp_path(const char *name);

/* The handlers file, written on first use under test_tmpdir(): "t.exec"
 * runs tests/fixtures/test_handler.c, "step" runs step_handler.c (the
 * built-in types need no entry). The path is static. */
const char *test_handlers_file(void);

/* Starts jobd (JOBD_BIN) in the background, tracked: on queue with this
 * test's prefix, test_handlers_file(), JSON logs appended to log, an ephemeral
 * HTTP port, and state directory state (a relative path is taken under
 * test_tmpdir(); created if missing), plus extra flags and extra_env
 * ("K=V"), both NULL-terminated and either NULL. url NULL: the shared test
 * Redis. Returns its pid. */
pid_t test_jobd_start(const char *log, const char *url, const char *queue, const char *state,
                      const char *const extra[], const char *const extra_env[]);

/* Submits one job (max_attempts 0: the default; timeout_s 0: none) and
 * writes its id into id (JOBD_ID_LEN + 1 bytes). Fails the test on error. */
void test_submit(jobd_client_t *c, const char *queue, const char *type, const char *payload,
                 int max_attempts, int64_t timeout_s, char *id);

/* The lines of jobd's JSON log at path for job id (NULL: any job) whose msg
 * contains needle, as a new array (the caller json_decref's it); empty if
 * the file is missing. Lines that are not JSON objects are skipped. */
json_t *test_log_find(const char *path, const char *id, const char *needle);
/* How many such lines there are. */
int test_log_has_job(const char *path, const char *id, const char *needle);

#endif
