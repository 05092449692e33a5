/* items.h - the run's results: shoal.emit(item) to --output FILE.
 *
 * An item is a record the script made (a page's url, title and status; an
 * API's answer). The emitting Lua state encodes it (JSON, or a CSV record
 * in the header's column order) and hands the bytes here; they go into
 * that thread's ring (one per worker, the producer's included, and one
 * shared by the engine's other threads), and one writer thread copies
 * whole records into large writes to the file, so records from different
 * workers never interleave and a worker never waits on the disk.
 *
 * Formats: JSON lines (one object per line), or CSV when the file's name
 * ends in .csv: the header is the first item's keys, sorted; later items
 * fill those columns (a key outside them is dropped and counted; a missing
 * one is an empty cell). "-" is stdout, which then carries items alone:
 * the process's own stdout is pointed at stderr.
 *
 * Backpressure: a full ring makes the emitter wait for the writer, up to
 * ITEMS_WAIT_MS; it drops the item (counted, warned once) only after
 * that, or at once while the writer, inside a write, has moved no byte for
 * ITEMS_STUCK_MS (a stuck disk or a reader that stopped; a slow reader is
 * waited for). A write
 * that fails (a full disk) costs the records it held: they are counted as
 * failed, warned about once, and the file is cut back to the last whole
 * record, so it never ends in a torn one. At shutdown everything accepted
 * is written. */
#ifndef SHOAL_ITEMS_H
#define SHOAL_ITEMS_H

#include <stddef.h>
#include <stdint.h>

#define ITEMS_WAIT_MS 5000
#define ITEMS_STUCK_MS 1000
#define ITEMS_MAX_COLUMNS 256
#define ITEMS_MAX_BYTES (64u << 20) /* one item, encoded */

enum items_format { ITEMS_NONE, ITEMS_JSONL, ITEMS_CSV };

struct items_config {
    const char *path;  /* the file, "-" for stdout, NULL for none (items counted, not saved) */
    int append;        /* keep what the file holds (CSV: a header only if it is empty) */
    int nworkers;      /* rings 0..nworkers; one more is shared */
    size_t ring_bytes; /* per ring; 0: the default (1 MiB) */
};

struct runmetrics;
struct items;

/* Opens the file (directories created; truncated unless append) and
 * starts the writer. NULL with a message naming the file on failure. m
 * may be NULL (tests). */
struct items *items_new(const struct items_config *c, struct runmetrics *m, char *err,
                        size_t errlen);

/* What the file is: ITEMS_NONE without one. Any thread. */
enum items_format items_format(const struct items *it);
/* The path as given ("-" for stdout), or NULL. */
const char *items_path(const struct items *it);

enum items_status {
    ITEMS_OK,        /* taken: it will be written */
    ITEMS_DROPPED,   /* the writer did not make room in time: counted as dropped */
    ITEMS_DISCARDED, /* no --output: counted, not saved */
    ITEMS_TOO_BIG,   /* over ITEMS_MAX_BYTES: not counted; the caller raises */
};

/* Hands one record for the writer: a JSON text (its "\n" is added), or a
 * CSV record of n cells in the columns' order. ring: a worker's id, or -1
 * for the shared ring; a worker's ring only from that worker's thread (or
 * the main thread before the worker starts). May wait (see above). */
enum items_status items_emit(struct items *it, int ring, const char *json, size_t len);
enum items_status items_emit_csv(struct items *it, int ring, int n, const char *const *cells,
                                 const size_t *lens);
/* The largest item taken (ITEMS_MAX_BYTES). One larger than half a ring
 * is held outside it, and waits for its ring to be empty. */
size_t items_max_bytes(const struct items *it);

/* CSV: the first call fixes the columns (names, in the order given) and
 * later calls change nothing. Then items_column reads them back: the
 * number of columns, and column i into *name / *len. -1 on OOM. */
int items_set_columns(struct items *it, int n, const char *const *names, const size_t *lens);
/* A CSV file this run goes on writing (a resumed run's, or
 * --output-append's): its header line, if it has one, fixes the columns,
 * so that new records line up under it whatever keys the next first item
 * has. Call before any item is emitted. A header shoal cannot read is
 * warned of, and the first item's keys are the columns then. */
void items_adopt_header(struct items *it);
int items_columns(struct items *it);
void items_column(struct items *it, int i, const char **name, size_t *len);
/* An item had a key outside the CSV columns (key: one of them): counted;
 * the first time, a warning names it. */
void items_extra_key(struct items *it, const char *key, size_t len);

struct items_counts {
    uint64_t written;   /* whole records in the file */
    uint64_t dropped;   /* never reached the writer */
    uint64_t failed;    /* reached it, but the write failed */
    uint64_t discarded; /* emitted with no --output */
    uint64_t extra;     /* CSV items with keys outside the header */
};
void items_counts(const struct items *it, struct items_counts *c);

/* For a queue that keeps items with its jobs (queue.h's queue_items_sink):
 * that queue's one thread writes whole records straight to the file,
 * before it commits them, and cuts back what it never committed. The
 * rings are then unused. write: the CSV header first if the file is empty;
 * counts the records written (or failed, cutting the file back to where
 * it was, warned once); returns the file's size after them, or -1. size:
 * the file's size (bytes written for a pipe). cut: truncate (-1 for a
 * pipe). flush: fdatasync. Open the file with append set, so what it
 * holds stays until the queue says what to keep. */
long long items_sink_write(struct items *it, const char *bytes, size_t len);
long long items_sink_size(struct items *it);
int items_sink_cut(struct items *it, long long size);
int items_sink_flush(struct items *it);

/* Writes everything accepted (waiting up to timeout_ms for a stuck file
 * or reader), stops the writer, frees. NULL is a no-op. Main thread. */
void items_shutdown(struct items *it, long timeout_ms);
/* items_shutdown without the freeing, for a run that leaves threads
 * behind (a second Ctrl-C, a wedged worker): they may still emit, and
 * such late items are dropped and counted. */
void items_finish(struct items *it, long timeout_ms);

#endif
