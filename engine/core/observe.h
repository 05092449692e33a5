/* observe.h - job observation for worker.c (observe.c): the spans, log
 * records and metrics of a worker's jobs and requests. On the worker's
 * thread; core only. */
#ifndef SHOAL_OBSERVE_H
#define SHOAL_OBSERVE_H

#include "core/worker.h"

/* A job's attempt starts: its trace context, and its process_job span if
 * sampled (the lease's ctx says which trace it continues or links to). */
void observe_job_start(struct worker *w, struct slot *s, const struct queue_lease *l);
/* The attempt ended (now: when; delay: before its retry, if it will): its
 * duration and jobs_total, its log line, and its spans ended. */
void observe_attempt(struct worker *w, struct slot *s, int ok, int will_retry, const char *err,
                     double now, double delay);
/* The CLIENT span of a request about to go out with context c. */
struct span *observe_client_span(struct slot *s, const struct trace_ctx *c,
                                 const struct http_request *req);
/* The request in flight in s got its response / is cancelled unanswered. */
void observe_response(struct worker *w, struct slot *s, const struct http_result *res);
void observe_cancelled(struct worker *w, struct slot *s);
/* Hands the finished spans the worker holds to the tracer (before it waits). */
void observe_flush(struct worker *w);

#endif
