/* cloexec.c - see cloexec.h. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cloexec.h"
#include "log.h"

int cloexec_set(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)) return -errno;
    return 0;
}

int cloexec_sweep(int warn)
{
    DIR *d = opendir("/proc/self/fd"); /* opendir uses O_CLOEXEC */
    if (!d) return -errno;
    int marked = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (end == de->d_name || *end || fd <= 2 || fd == dirfd(d)) continue;
        int fl = fcntl((int)fd, F_GETFD);
        if (fl < 0 || (fl & FD_CLOEXEC)) continue;
        if (fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC) < 0) continue;
        marked++;
        if (warn) {
            char path[64], to[256];
            snprintf(path, sizeof path, "/proc/self/fd/%ld", fd);
            ssize_t n = readlink(path, to, sizeof to - 1);
            to[n > 0 ? n : 0] = '\0';
            log_warn("descriptor %ld (%s) was not close-on-exec; marked it before spawning a "
                     "handler",
                     fd, to);
        }
    }
    closedir(d);
    return marked;
}
