/* pprof.h - a window of CPU samples as a pprof profile (profile.proto),
 * the format `go tool pprof` reads and Pyroscope ingests.
 *
 * Pure encoding (protobuf-c from proto/profile.proto, then gzip), so a test
 * can check the bytes without a network. Any thread. */
#ifndef SHOAL_PPROF_H
#define SHOAL_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/profiles/profile.h"

/* Encodes p, gzip'd: sample types samples/count and cpu/nanoseconds,
 * period type cpu/nanoseconds with p->period_ns, time_nanos and
 * duration_nanos from the window, one Function and one Location per
 * distinct frame, labels "worker", "thread" and "profile_id"
 * (string). 0 with a malloc'd *out of *len bytes, or -1 on OOM (or on a
 * frame index past p->nfuncs, a caller's bug), *out then NULL. */
int pprof_encode(const struct prof_profile *p, uint8_t **out, size_t *len);

/* Writes gz (an encoded profile of the window starting start_ns) to
 * DIR/cpu-<UTC yyyymmddThhmmssZ>.pb.gz, atomically (temp file + rename);
 * the directory is created. 0, or -1 with a message naming the path. */
int pprof_write_dir(const char *dir, uint64_t start_ns, const uint8_t *gz, size_t len, char *err,
                    size_t errlen);

#endif
