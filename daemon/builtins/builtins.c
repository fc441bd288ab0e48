/* builtins.c - see builtins.h. */
#include <string.h>

#include "builtins.h"

static const builtin_t *const table[] = {
    &builtin_noop, &builtin_sleep, &builtin_fail, &builtin_index_fts, &builtin_checkpoint_probe,
};

const builtin_t *builtin_find(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i]->name, name) == 0) return table[i];
    return NULL;
}

size_t builtin_count(void)
{
    return sizeof table / sizeof table[0];
}

const builtin_t *builtin_at(size_t i)
{
    return i < builtin_count() ? table[i] : NULL;
}
