/* ckpt_handler.c - exec handler for `make bench`: checkpoints N times as fast
 * as it can, then succeeds.
 *
 *   ckpt_handler N
 *
 * Reads the job line from stdin (protocol v1), writes N lines
 * {"checkpoint":{"i":K}}, each with its own write(2) as a real handler that
 * checkpoints between units of work would, then {"result":{"n":N}}, exit 0.
 * Exits 75 on SIGTERM (stopped at its last checkpoint). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_term(int sig)
{
    (void)sig;
    _exit(75);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    signal(SIGTERM, on_term);
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, stdin) < 0) return 2;
    free(line);
    char buf[64];
    for (long i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof buf, "{\"checkpoint\":{\"i\":%ld}}\n", i);
        if (write(1, buf, (size_t)len) != len) return 3;
    }
    int len = snprintf(buf, sizeof buf, "{\"result\":{\"n\":%ld}}\n", n);
    if (write(1, buf, (size_t)len) != len) return 3;
    return 0;
}
