/* fsutil.h - small file-system helpers shared by the writers of files the
 * user names (the log file, --output). Any thread. */
#ifndef SHOAL_FSUTIL_H
#define SHOAL_FSUTIL_H

/* Creates the directories leading to path (mkdir -p of its dirname), mode
 * 0755. 0, or -1 with errno set; directories made before a failure stay. */
int fs_make_parents(const char *path);

#endif
