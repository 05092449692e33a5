/* queue_sqlite.h - the durable queue's format, for `shoal state` and the
 * backend (core/queue_sqlite.c, through queue_sqlite_ops in
 * queue_backend.h; opened as "sqlite:DIR"). */
#ifndef SHOAL_QUEUE_SQLITE_H
#define SHOAL_QUEUE_SQLITE_H

#include "core/queue_backend.h"

/* The layout of queue.db this shoal writes and reads; a state of another
 * format is refused with a message, never guessed at. */
#define QUEUE_SQLITE_FORMAT 1

#include <stdio.h>

/* `shoal state DIR`: what the state in dir holds (jobs by state, dedup
 * keys, the producer, the items file, the hosts with jobs waiting), read
 * without taking its lock, so it works while a run holds it. 0, or -1 with
 * the reason in err. */
int queue_sqlite_report(const char *dir, FILE *out, char *err, size_t errlen);

#endif
