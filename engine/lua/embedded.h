/* embedded.h - the Lua modules (and the demo script) compiled into the binary.
 *
 * The build turns every file under lua/ into a byte array (cmake/embed.cmake);
 * lua_state.c registers each one in package.preload unless --lua-path names a
 * directory that holds a file of the same name, which then wins. Read-only
 * data: any thread may read it. */
#ifndef SHOAL_EMBEDDED_H
#define SHOAL_EMBEDDED_H

#include <stddef.h>

struct embedded_module {
    const char *name; /* "shoal.crawl" for a module, else the path */
    const char *path; /* "lua/shoal/crawl.lua", relative to the source root */
    const char *data; /* NUL-terminated source */
    size_t len;
    int is_module; /* under lua/: goes into package.preload */
};

/* Ends with an entry whose name is NULL. */
extern const struct embedded_module embedded_modules[];

#endif
