/* main.c - flags -> config -> handlers -> worker -> uv_run -> exit status.
 *
 * Exit status (CONTRACT): 0 clean exit, 64 usage error, 78 configuration
 * error (including a Redis that holds an incompatible layout); with --once
 * 1 when a job it ran ended dead, 69 when Redis stayed unreachable past the
 * drain timeout, 75 when its drain hit the hard deadline (see worker.h). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "cloexec.h"
#include "config.h"
#include "handlers.h"
#include "journal.h"
#include "log.h"
#include "orphans.h"
#include "redis_url.h"
#include "statedir.h"
#include "worker.h"

/* The Redis URL parses and the password file is readable, as worker_init
 * will need them: refused here, at start and by --check-config alike. */
static int check_redis(const config_t *cfg, char *err, size_t errlen)
{
    redis_url_t url;
    int rc = redis_url_parse(cfg->redis_url, &url, err, errlen);
    if (rc == 0) rc = redis_url_password_file(&url, cfg->redis_password_file, err, errlen);
    memset(url.password, 0, sizeof url.password);
    return rc < 0 ? -1 : 0;
}

/* Raises the soft descriptor limit to the hard one: the common default
 * soft limit (1,024) is small for a daemon that holds pipes for every
 * handler, and the HTTP port keeps its connections to a quarter of it. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) rl.rlim_cur = was;
    }
    log_info("descriptor limit %llu (soft limit was %llu, hard limit %llu)",
             (unsigned long long)rl.rlim_cur, (unsigned long long)was,
             (unsigned long long)rl.rlim_max);
}

int main(int argc, char **argv)
{
    config_t cfg;
    char err[1024];
    /* Whatever jobd inherited from its parent is not for its handlers
     * (CONTRACT guarantee 8); what jobd opens itself is close-on-exec. */
    cloexec_sweep(0);
    int rc = config_load(&cfg, argc, argv, err, sizeof err);
    if (rc == CONFIG_DONE) {
        config_free(&cfg);
        return 0;
    }
    if (rc != CONFIG_OK) {
        fprintf(stderr, "jobd: %s\n", err);
        config_free(&cfg);
        return rc;
    }
    log_setup((log_level_t)cfg.log_level, cfg.log_json);
    handlers_t handlers;
    if (handlers_load(&handlers, cfg.handlers_file, err, sizeof err) < 0 ||
        handlers_check_resources(&handlers, cfg.resources, err, sizeof err) < 0 ||
        check_redis(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "jobd: %s\n", err);
        log_error("configuration error: %s", err);
        handlers_free(&handlers);
        config_free(&cfg);
        return CONFIG_INVALID;
    }
    if (cfg.check_config) {
        /* Everything above, and a usable state dir, without creating it. */
        char sd[1200];
        if (statedir_check(cfg.state_dir, sd, sizeof sd) < 0) {
            fprintf(stderr, "jobd: %s\n", sd);
            handlers_free(&handlers);
            config_free(&cfg);
            return CONFIG_INVALID;
        }
        printf("jobd: configuration OK (%d queues, %zu handlers from file; %s)\n", cfg.nqueues,
               handlers.n, sd);
        handlers_free(&handlers);
        config_free(&cfg);
        return 0;
    }
    /* The state dir's lock before anything else in it: a second jobd on the
     * same dir must not open the journal, let alone run its recovery, which
     * stops the process groups the journal names (the first one's
     * handlers). The lock is held until the process exits. */
    int lock = statedir_lock(cfg.state_dir, err, sizeof err);
    if (lock < 0) {
        fprintf(stderr, "jobd: %s\n", err);
        log_error("configuration error: %s", err);
        handlers_free(&handlers);
        config_free(&cfg);
        return CONFIG_INVALID;
    }
    /* The journal next: a state dir we cannot use is a configuration error
     * at start (exit 78), never a crash later. */
    journal_t *jn;
    if (journal_open(&jn, cfg.state_dir, err, sizeof err) < 0) {
        fprintf(stderr, "jobd: %s\n", err);
        log_error("configuration error: %s", err);
        statedir_unlock(lock);
        handlers_free(&handlers);
        config_free(&cfg);
        return CONFIG_INVALID;
    }
    /* Built-ins run on libuv's pool: give it a thread per slot, so one slow
     * built-in never queues behind another (must precede the pool's start). */
    char pool[16];
    snprintf(pool, sizeof pool, "%d", cfg.concurrency < 1024 ? cfg.concurrency : 1024);
    setenv("UV_THREADPOOL_SIZE", pool, 1);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    uv_loop_t loop;
    uv_loop_init(&loop);
    worker_t w;
    if (worker_init(&w, &loop, &cfg, &handlers, jn) < 0) {
        fprintf(stderr, "jobd: bad Redis URL or password file\n");
        journal_close(jn);
        statedir_unlock(lock);
        handlers_free(&handlers);
        config_free(&cfg);
        uv_loop_close(&loop);
        return CONFIG_INVALID;
    }
    /* A subreaper before the first handler starts (PID 1 in a container). */
    orphans_t orphans;
    orphans_start(&orphans, &loop);
    w.orphans = &orphans;
    if (worker_start(&w) < 0)
        fprintf(stderr, "jobd: cannot serve HTTP on %s (--http HOST:PORT, or \"off\")\n", cfg.http);
    uv_run(&loop, UV_RUN_DEFAULT);
    int code = w.exit_code;
    /* --once for cron: 0 only if every job it finished succeeded (dead as
     * Redis confirmed it; a retry that later succeeded is fine). */
    if (code == 0 && cfg.once && w.stats.dead > 0) code = WORKER_EXIT_DEAD;
    if (w.forced) {
        /* Handler threads still run: freeing what they use would be a use
         * after free. The journal is committed; the process exit ends them. */
        log_info("jobd exiting with status %d", code);
        return code;
    }
    worker_free(&w);
    orphans_close(&orphans);
    uv_run(&loop, UV_RUN_DEFAULT); /* finishes the closes */
    journal_close(jn);
    if (uv_loop_close(&loop) != 0) log_error("event loop closed with handles still open");
    statedir_unlock(lock);
    handlers_free(&handlers);
    config_free(&cfg);
    log_info("jobd exiting with status %d", code);
    return code;
}
