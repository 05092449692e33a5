/* fsutil.c - file-system helpers (see fsutil.h). */
#include "base/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int fs_make_parents(const char *path)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

void fs_script_name(const char *script, char *out, size_t cap)
{
    const char *b = script ? strrchr(script, '/') : NULL;
    b = b ? b + 1 : script ? script : "shoal";
    if (strncmp(b, "embedded:", 9) == 0)
        b += 9;
    snprintf(out, cap, "%.*s", (int)strcspn(b, "."), b);
}
