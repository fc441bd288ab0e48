/* embedded.h - files compiled into the binary by schema/embed.cmake.
 *
 * Lua scripts (schema/redis/NAME.lua, each with lib.lua prepended) and SQLite
 * migrations (schema/sqlite/NNNN_NAME.sql) live as files in the repo and are
 * embedded at build time, so a binary never depends on finding them on disk.
 * Tables end with an entry whose name is NULL. */
#ifndef JOBD_EMBEDDED_H
#define JOBD_EMBEDDED_H

#include <stddef.h>

typedef struct {
    const char *name; /* file name without extension, e.g. "claim" */
    const char *text; /* NUL-terminated contents */
    size_t len;       /* length without the NUL */
} jobd_embedded_t;

/* The Lua scripts, in the order of the rq_script_id enum in proto.h. */
extern const jobd_embedded_t jobd_lua_scripts[];
/* The SQLite journal migrations, in file-name order (jobd only). */
extern const jobd_embedded_t jobd_sql_migrations[];

#endif
