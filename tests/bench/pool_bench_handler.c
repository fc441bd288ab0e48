/* pool_bench_handler.c - the trivial persistent handler (exec protocol v2)
 * of `make bench`: says it is ready (after --startup-ms N, a stand-in for
 * loading a model), then answers every job line with
 * {"id":ID,"done":"succeeded"} at once. Reads and writes in large chunks,
 * no JSON library: the job's id is the value of its first "id" key. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(1, p, n);
        if (w <= 0) _exit(0);
        p += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--startup-ms") == 0) {
            long ms = atol(argv[i + 1]);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    write_all("{\"ready\":true}\n", 15);
    static char in[1 << 16], out[1 << 16];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(0, in + len, sizeof in - len);
        if (r <= 0) return 0;
        len += (size_t)r;
        size_t used = 0, olen = 0;
        for (;;) {
            char *nl = memchr(in + used, '\n', len - used);
            if (!nl) break;
            *nl = '\0';
            const char *id = strstr(in + used, "\"id\":\"");
            if (id && !strstr(in + used, "\"stop\"")) {
                id += 6;
                size_t n = strcspn(id, "\"");
                if (olen + n + 40 > sizeof out) {
                    write_all(out, olen);
                    olen = 0;
                }
                olen += (size_t)snprintf(out + olen, sizeof out - olen,
                                         "{\"id\":\"%.*s\",\"done\":\"succeeded\"}\n", (int)n, id);
            }
            used = (size_t)(nl - in) + 1;
        }
        write_all(out, olen);
        memmove(in, in + used, len - used);
        len -= used;
        if (len == sizeof in) len = 0; /* a line longer than the buffer: dropped */
    }
}
