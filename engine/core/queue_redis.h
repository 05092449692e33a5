/* queue_redis.h - what the Redis queue backend offers besides its queue_ops
 * (core/queue_redis.c): the items drainer and the URL reader.
 *
 * The backend keeps the items of every process's jobs in one stream of
 * the store (PREFIX:items), appended in the same atomic step as the job's
 * ack. queue_redis_drain copies that stream to a file exactly once, also
 * across restarts of the drainer: after each batch it fsyncs the file and
 * records, in one atomic step in Redis, the file's size and the last entry
 * written; a drainer that starts again cuts the file back to the recorded
 * size and goes on after the recorded entry. Run one drainer per prefix.
 *
 * Any thread; the drainer blocks (it is a command's main loop). */
#ifndef SHOAL_QUEUE_REDIS_H
#define SHOAL_QUEUE_REDIS_H

#include <stddef.h>

/* Copies the items of the queue at url ("redis://[user:pass@]host:port/db
 * ?prefix=NAME") to the file at path (created if missing). With follow, it
 * keeps going until the run is drained (the producer done and no job
 * left), else it stops at the stream's end. Returns the number of bytes
 * written this time (>= 0), or -1 with the reason in err. */
long long queue_redis_drain(const char *url, const char *path, int follow, char *err,
                            size_t errlen);

#endif
