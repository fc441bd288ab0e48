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
#include <uv.h>

#include "config.h"
#include "handlers.h"
#include "journal.h"
#include "log.h"
#include "worker.h"

int main(int argc, char **argv)
{
    config_t cfg;
    char err[1024];
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
        handlers_check_resources(&handlers, cfg.resources, err, sizeof err) < 0) {
        fprintf(stderr, "jobd: %s\n", err);
        log_error("configuration error: %s", err);
        handlers_free(&handlers);
        config_free(&cfg);
        return CONFIG_INVALID;
    }
    /* The journal first: a state dir we cannot use is a configuration error
     * at start (exit 78), never a crash later. */
    journal_t *jn;
    if (journal_open(&jn, cfg.state_dir, err, sizeof err) < 0) {
        fprintf(stderr, "jobd: %s\n", err);
        log_error("configuration error: %s", err);
        handlers_free(&handlers);
        config_free(&cfg);
        return CONFIG_INVALID;
    }
    if (cfg.check_config) {
        printf("jobd: configuration OK (%d queues, %zu handlers from file)\n", cfg.nqueues,
               handlers.n);
        journal_close(jn);
        handlers_free(&handlers);
        config_free(&cfg);
        return 0;
    }
    /* Built-ins run on libuv's pool: give it a thread per slot, so one slow
     * built-in never queues behind another (must precede the pool's start). */
    char pool[16];
    snprintf(pool, sizeof pool, "%d", cfg.concurrency < 1024 ? cfg.concurrency : 1024);
    setenv("UV_THREADPOOL_SIZE", pool, 1);
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t loop;
    uv_loop_init(&loop);
    worker_t w;
    if (worker_init(&w, &loop, &cfg, &handlers, jn) < 0) {
        fprintf(stderr, "jobd: bad Redis URL or password file\n");
        journal_close(jn);
        handlers_free(&handlers);
        config_free(&cfg);
        uv_loop_close(&loop);
        return CONFIG_INVALID;
    }
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
    journal_close(jn);
    if (uv_loop_close(&loop) != 0) log_error("event loop closed with handles still open");
    handlers_free(&handlers);
    config_free(&cfg);
    log_info("jobd exiting with status %d", code);
    return code;
}
