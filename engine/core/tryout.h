/* tryout.h - `shoal try SCRIPT URL|JOB_JSON`: one job through handle(), and
 * a report of what it did, on stdout, line by line as it happens:
 *
 *   request GET http://h/a -> 200, 5120 bytes, 1.2 ms
 *   push {"url":"http://h/b"} key=http://h/b -> queued
 *   push {"url":"http://h/a"} key=http://h/a -> dropped: duplicate
 *   item {"url":"http://h/a","title":"A"}
 *
 * then the run's summary (its errors, with the script's line, among it).
 * The run is the script's, with one worker, no retries and --max-jobs 1:
 * pushed jobs are queued (so dedup and scope answer as in a crawl) but not
 * run. Only the worker thread writes these lines. */
#ifndef SHOAL_TRYOUT_H
#define SHOAL_TRYOUT_H

#include <stddef.h>

/* The job `shoal try` runs, as JSON: target itself when it is a JSON
 * object, else {"url": target}. NULL when out of memory. */
char *tryout_job(const char *target);

void tryout_request(const char *method, const char *url, long status, size_t bytes,
                    double seconds, const char *error);
/* what: "queued", or why it was dropped */
void tryout_push(const char *job, size_t len, const char *key, size_t key_len, const char *what);
void tryout_item(const char *json, size_t len);

#endif
