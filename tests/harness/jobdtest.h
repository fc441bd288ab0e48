/* jobdtest.h - helpers for tests that drive the jobd binary: start jobd as
 * a child on this test's prefix, make sure a failed test leaves no process
 * behind, read jobd's JSON log, and read job state from Redis (the shared
 * test server, or a private one the test starts and stops).
 *
 * Keys are "<test_prefix()>:{<queue>}:<suffix>", as jobd writes them.
 * Polling helpers (wait_*) check their condition every 20 ms and return 0
 * once it holds, or -1 after ms (pass test_ms(...) deadlines). A char *
 * result is malloc'd and the caller frees it; a const char * result points
 * into static storage as described for each function. Not thread-safe. */
#ifndef JOBD_JOBDTEST_H
#define JOBD_JOBDTEST_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jobd/client.h"
#include "testlib.h"

/* ---- processes the test started: killed if the test aborts ---- */

/* The pid of a private redis-server (start_private_redis), 0: none. */
extern pid_t private_redis_pid;

/* Installs (once) handlers for SIGABRT (a failed assertion), SIGTERM and
 * SIGSEGV that SIGKILL every tracked process and the private redis-server,
 * then die of the same signal; also ignores SIGPIPE, so a Redis or child
 * that goes away fails an assertion instead of killing the test. */
void install_abort_handler(void);
/* Adds pid to the processes killed on abort (up to 64; installs the
 * handler). untrack removes it (call it once pid has been reaped). */
void track(pid_t pid);
void untrack(pid_t pid);

/* test_spawn, except that the child gets SIGKILL when the test process dies
 * (PR_SET_PDEATHSIG: a test killed by ctest's timeout leaves no jobd
 * behind) and starts with SIGPIPE at its default. Does not track the child. */
pid_t spawn(const char *const argv[], const char *const extra_env[], const char *log_path);

/* Sleeps ms. Only for polling with a deadline, never to synchronise. */
void pause_ms(int ms);

/* Prints the last 8,000 bytes of the file at path to stderr (for a failing
 * test's output); nothing if it is missing. */
void dump_log(const char *path);

/* Waits up to ms for pid to exit. Returns its exit status (128 + signal)
 * and untracks it, or -1 on timeout after dumping log (pid is left running
 * and tracked). */
int wait_exit(pid_t pid, int64_t ms, const char *log);

/* Asserts pid exits with status want within ms; dumps log if not. */
#define ASSERT_EXIT(pid, ms, log, want)                                                            \
    do {                                                                                           \
        int st_ = wait_exit(pid, ms, log);                                                         \
        if (st_ != (want)) {                                                                       \
            if (st_ >= 0) dump_log(log);                                                           \
            ASSERT_EQ(st_, want);                                                                  \
        }                                                                                          \
    } while (0)

/* Fails the test with a printf-style message (after dumping log) unless
 * cond holds. */
#define CHECK_OR_DUMP(cond, log, ...)                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            dump_log(log);                                                                         \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);                                            \
        }                                                                                          \
    } while (0)

/* ---- Redis: the shared test server, or a private one ---- */

/* Unix socket of the private redis-server the helpers below talk to; empty
 * (the default): the shared test Redis. start_private_redis sets it. */
extern char private_sock[700];

/* A private redis-server in dir, with an append-only file (fsync always), so
 * a stop and start keeps the jobs: a real Redis outage, not a data loss.
 * Writes its URL into url (256 bytes), sets private_redis_pid and points
 * private_sock at it (from then on the helpers below use it), and installs
 * the abort handler. Called again after stop_private_redis, restarts it on
 * the same data. */
void start_private_redis(const char *dir, char *url);
/* Stops the private redis-server in dir (private_sock stays set: the
 * helpers below then see an unreachable Redis). */
void stop_private_redis(const char *dir);

/* Runs a command on the private Redis if private_sock is set, else on the
 * shared one (retried once on a fresh connection: the private server may
 * have restarted under the cached one). NULL if it is unreachable. The
 * caller frees the reply. */
redisReply *rcmd(const char *fmt, ...);

/* Writes "<prefix>:{queue}:suffix" into out (len bytes). */
void qkey(char *out, size_t len, const char *queue, const char *suffix);

/* ZCARD of the queue's sorted set ("ready", "active", "succeeded", ...);
 * -1 if Redis is unreachable. */
long long zcard(const char *queue, const char *set);
/* Polls until zcard(queue, set) >= n. */
int wait_zcard_ge(const char *queue, const char *set, long long n, int64_t ms);

/* A field of job id's hash (malloc'd), or NULL if missing or unreachable. */
char *hget(const char *queue, const char *id, const char *field);
/* The field as an integer; -1 if missing or unreachable. */
long long hget_ll(const char *queue, const char *id, const char *field);
/* Whether the field exists and equals want. */
int field_is(const char *queue, const char *id, const char *field, const char *want);
/* Polls until the field equals want. */
int wait_field(const char *queue, const char *id, const char *field, const char *want, int64_t ms);
/* Polls until the field exists and is not empty. */
int wait_field_set(const char *queue, const char *id, const char *field, int64_t ms);

/* A counter of the queue's stats hash ("succeeded", "failed", "released",
 * ...); 0 if missing or unreachable. */
long long stat_counter(const char *queue, const char *field);

/* Asserts a job's field equals want / contains needle. */
#define ASSERT_FIELD(queue, id, field, want)                                                       \
    do {                                                                                           \
        char *v_ = hget(queue, id, field);                                                         \
        ASSERT_STR_EQ(v_, want);                                                                   \
        free(v_);                                                                                  \
    } while (0)

#define ASSERT_FIELD_CONTAINS(queue, id, field, needle)                                            \
    do {                                                                                           \
        char *v_ = hget(queue, id, field);                                                         \
        ASSERT_CONTAINS(v_, needle);                                                               \
        free(v_);                                                                                  \
    } while (0)

/* ---- jobd ---- */

/* "<test_tmpdir()>/name", in one of 32 static buffers used in turn: valid
 * until 32 more calls. */
const char *tmp_path(const char *name);

/* The handlers file, written on first use under test_tmpdir(): "t.exec"
 * runs tests/fixtures/test_handler.c, "step" runs step_handler.c (the
 * built-in types need no entry). The path is static. */
const char *handlers_file(void);

/* Starts jobd (JOBD_BIN) in the background, tracked: on queue with this
 * test's prefix, handlers_file(), JSON logs appended to log, an ephemeral
 * HTTP port, and state directory state (a relative path is taken under
 * test_tmpdir(); created if missing), plus extra flags and extra_env
 * ("K=V"), both NULL-terminated and either NULL. url NULL: the shared test
 * Redis. Returns its pid. */
pid_t jobd_start(const char *log, const char *url, const char *queue, const char *state,
                 const char *const extra[], const char *const extra_env[]);

/* Submits one job (max_attempts 0: the default; timeout_s 0: none) and
 * writes its id into id (JOBD_ID_LEN + 1 bytes). Fails the test on error. */
void submit(jobd_client_t *c, const char *queue, const char *type, const char *payload,
            int max_attempts, int64_t timeout_s, char *id);

/* The lines of jobd's JSON log at path for job id (NULL: any job) whose msg
 * contains needle, as a new array (the caller json_decref's it); empty if
 * the file is missing. Lines that are not JSON objects are skipped. */
json_t *log_find(const char *path, const char *id, const char *needle);
/* How many such lines there are. */
int log_has_job(const char *path, const char *id, const char *needle);

#endif
