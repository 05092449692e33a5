/* producer.h - worker 0, the producer: produce() then done() (producer.c).
 * On the producer's thread; core only. */
#ifndef SHOAL_PRODUCER_H
#define SHOAL_PRODUCER_H

#include "core/worker.h"

/* The producer's thread starts: produce() in slot 0. */
void producer_start(struct worker *w);
/* Acts on what a resume of produce() or done() returned. */
void producer_finished(struct worker *w, struct slot *s, int status);
/* Each pass of the loop: the run stopping, a push waiting for room, done()
 * to start. */
void producer_step(struct worker *w);
/* done() ran past its --hook-timeout: dropped, with the run's error set. */
void producer_done_late(struct worker *w, struct slot *s);
/* 1 once done() has finished (or failed, or been dropped): the thread leaves. */
int producer_finished_all(const struct worker *w);

#endif
