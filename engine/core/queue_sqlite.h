/* queue_sqlite.h - the durable queue's format, for `shoal state` and the
 * backend (core/queue_sqlite.c, through queue_sqlite_ops in
 * queue_backend.h; opened as "sqlite:DIR"). */
#ifndef SHOAL_QUEUE_SQLITE_H
#define SHOAL_QUEUE_SQLITE_H

#include "core/queue_backend.h"

/* The layout of queue.db this shoal writes and reads; a state of another
 * format is refused with a message, never guessed at. */
#define QUEUE_SQLITE_FORMAT 1

#endif
