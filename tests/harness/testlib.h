/* testlib.h - helpers for integration tests: the test Redis, child
 * processes, and waiting for events with deadlines (never fixed sleeps).
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

/* Starts argv in the background, stdout and stderr appended to log_path.
 * Returns its pid. */
pid_t test_spawn(const char *const argv[], const char *const extra_env[], const char *log_path);
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
/* Writes text to path. */
void test_write_file(const char *path, const char *text);

#endif
