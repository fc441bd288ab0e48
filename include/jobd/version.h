/* version.h - the one place the jobd version is defined.
 *
 * CMakeLists.txt parses JOBD_VERSION_* from this file, so the build, the
 * binaries' --version output and the library soname never disagree. */
#ifndef JOBD_VERSION_H
#define JOBD_VERSION_H

#define JOBD_VERSION_MAJOR 0
#define JOBD_VERSION_MINOR 1
#define JOBD_VERSION_PATCH 0
#define JOBD_VERSION "0.1.0"

/* Version of the Redis key layout (schema/redis/README.md). A client that
 * finds another value under PREFIX:{:global}:schema (or layout 1's
 * PREFIX:schema) refuses to touch that Redis. Layout 2 moved the global keys
 * under a hash tag of their own, for Redis Cluster; `jobctl migrate` moves a
 * layout 1 Redis forward. */
#define JOBD_REDIS_SCHEMA 2

#endif
