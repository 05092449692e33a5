/* queue_redis_scripts.h - the server-side Lua of the Redis queue backend.
 *
 * Every change to the shared queue is made by one of these scripts, run by
 * Redis as one atomic step (EVALSHA): the producer's push alone, the rest
 * in batches (RS_BATCH, the outbox of queue_redis.c). The keys they use and why are described in
 * docs/ARCHITECTURE.md ("The shared queue in Redis") and at the top of
 * queue_redis_scripts.c. Each script is the common prelude (helpers) and a
 * body; ARGV[1] is always the key prefix, ARGV[2] the caller's instance id.
 * Times in ARGV are seconds on the shared clock (the caller's monotonic
 * now plus its offset), as "%.17g" text so no bit is lost.
 *
 * Read-only data; any thread. */
#ifndef SHOAL_QUEUE_REDIS_SCRIPTS_H
#define SHOAL_QUEUE_REDIS_SCRIPTS_H

enum rs_script {
    RS_PUSH,  /* one push, answered at once: the producer's */
    RS_BATCH, /* the outbox's changes in order, then a take of several */
    RS_STATS,
    RS_GROUPS,
    RS_POLL,
    RS_CLAIM,
    RS_HELLO,
    RS_GOODBYE,
    RS_COUNT
};

/* The full text of script s (prelude and body), NUL-terminated. */
const char *rs_source(enum rs_script s);
/* Its name, for error messages. */
const char *rs_name(enum rs_script s);

#endif
