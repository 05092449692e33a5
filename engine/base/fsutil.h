/* fsutil.h - small file-system and path helpers: for the writers of files
 * the user names (the log file, --output), and the script's short name.
 * Any thread. */
#ifndef SHOAL_FSUTIL_H
#define SHOAL_FSUTIL_H

#include <stddef.h>

/* Creates the directories leading to path (mkdir -p of its dirname), mode
 * 0755. 0, or -1 with errno set; directories made before a failure stay. */
int fs_make_parents(const char *path);

/* A script's short name, "crawl" for examples/crawl.lua (or the built-in
 * embedded:examples/crawl.lua): the default service name and dashboard
 * title. "shoal" when script is NULL. */
void fs_script_name(const char *script, char *out, size_t cap);

#endif
