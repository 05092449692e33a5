/* The logger as a user relies on it: the exact line for a record in logfmt
 * and JSON, no value able to break a line, secrets hidden, long values cut
 * with a marker, level filtering, every accepted line written at shutdown,
 * a full ring dropping and counting rather than waiting, and SIGHUP-style
 * reopening after the file was renamed. */
#include "check.h"
#include "telemetry/logs/logger.h"
#include "base/strbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* 2026-11-25T14:27:10.123Z */
#define T0 (1795616830ull * 1000000000ull + 123456789ull)

static void rec_init(struct log_record *r, enum log_level lv, const char *msg)
{
    log_begin(r, lv, msg);
    r->time_ns = T0;
}

static char *logfmt(const struct log_record *r)
{
    struct strbuf b = {0};
    log_format_logfmt(&b, r);
    return b.p;
}

static char *json(const struct log_record *r)
{
    struct strbuf b = {0};
    log_format_json(&b, r);
    return b.p;
}

static void test_levels(void)
{
    enum log_level lv;
    CHECK(log_level_parse("DEBUG", &lv) == 0 && lv == LOG_DEBUG);
    CHECK(log_level_parse("warning", &lv) == 0 && lv == LOG_WARN);
    CHECK(log_level_parse("off", &lv) == 0 && lv == LOG_OFF);
    CHECK(log_level_parse("loud", &lv) == -1);
    CHECK(log_level_parse(NULL, &lv) == -1);
    CHECK_STR(log_level_name(LOG_ERROR), "ERROR");
    CHECK_EQ_INT(log_level_severity(LOG_DEBUG), 5);
    CHECK_EQ_INT(log_level_severity(LOG_INFO), 9);
    CHECK_EQ_INT(log_level_severity(LOG_WARN), 13);
    CHECK_EQ_INT(log_level_severity(LOG_ERROR), 17);
}

static void test_logfmt_line(void)
{
    struct log_record r;
    rec_init(&r, LOG_INFO, "job done");
    r.worker = 1;
    log_int(&r, "job.id", 42);
    log_cstr(&r, "url", "http://example.com/a?b=c");
    log_int(&r, "status", 200);
    log_dbl(&r, "duration", 0.0123);
    log_bool(&r, "cached", 0);
    r.has_ids = 1;
    for (int i = 0; i < 16; i++)
        r.trace_id[i] = (uint8_t)(0x10 + i);
    for (int i = 0; i < 8; i++)
        r.span_id[i] = (uint8_t)(0xa0 + i);
    char *line = logfmt(&r);
    CHECK_STR(line, "time=2026-11-25T14:27:10.123Z level=INFO msg=\"job done\" worker=1 "
                    "job.id=42 url=\"http://example.com/a?b=c\" status=200 duration=0.0123 "
                    "cached=false trace_id=101112131415161718191a1b1c1d1e1f "
                    "span_id=a0a1a2a3a4a5a6a7\n");
    free(line);

    /* numbers: fixed point for human scales, %g beyond; negative ints */
    rec_init(&r, LOG_WARN, "n");
    log_dbl(&r, "a", 0.000041491);
    log_dbl(&r, "b", 2.5);
    log_dbl(&r, "c", 1e12);
    log_dbl(&r, "d", -3.0);
    log_int(&r, "e", -7);
    log_dbl(&r, "f", 0.0 / 0.0);
    line = logfmt(&r);
    CHECK_STR(line, "time=2026-11-25T14:27:10.123Z level=WARN msg=n a=0.000041491 b=2.5 "
                    "c=1e+12 d=-3 e=-7 f=NaN\n");
    free(line);
}

static void test_no_forged_lines(void)
{
    struct log_record r;
    rec_init(&r, LOG_ERROR, "two\nlines level=DEBUG");
    log_cstr(&r, "bad key=\"x\"\n", "v");
    log_str(&r, "nul", "a\0b", 3);
    log_cstr(&r, "utf8", "caf\xc3\xa9 \xff");
    log_cstr(&r, "empty", "");
    char *line = logfmt(&r);
    CHECK_STR(line, "time=2026-11-25T14:27:10.123Z level=ERROR "
                    "msg=\"two\\nlines level=DEBUG\" "
                    "bad_key__x__=v nul=\"a\\u0000b\" "
                    "utf8=\"caf\xc3\xa9 \xef\xbf\xbd\" empty=\"\"\n");
    free(line);

    line = json(&r);
    CHECK_STR(line, "{\"time\":\"2026-11-25T14:27:10.123Z\",\"level\":\"ERROR\","
                    "\"msg\":\"two\\nlines level=DEBUG\",\"bad key=\\\"x\\\"\\n\":\"v\","
                    "\"nul\":\"a\\u0000b\",\"utf8\":\"caf\xc3\xa9 \\ufffd\",\"empty\":\"\"}\n");
    free(line);
}

static void test_json_types(void)
{
    struct log_record r;
    rec_init(&r, LOG_DEBUG, "m");
    r.worker = 3;
    log_int(&r, "i", 5);
    log_dbl(&r, "inf", 1.0 / 0.0);
    log_bool(&r, "t", 1);
    char *line = json(&r);
    CHECK_STR(line, "{\"time\":\"2026-11-25T14:27:10.123Z\",\"level\":\"DEBUG\",\"msg\":\"m\","
                    "\"worker\":3,\"i\":5,\"inf\":null,\"t\":true}\n");
    free(line);
}

static void test_truncation(void)
{
    size_t n = LOG_MAX_VALUE * 2;
    char *big = malloc(n);
    memset(big, 'x', n);
    struct log_record r;
    rec_init(&r, LOG_INFO, "m");
    log_str(&r, "big", big, n);
    char *line = logfmt(&r);
    const char *v = strstr(line, "big=\"");
    CHECK(v != NULL);
    CHECK(strlen(line) < LOG_MAX_VALUE + 100);
    CHECK(strstr(line, "...\"\n") != NULL);
    free(line);
    line = json(&r);
    CHECK(strlen(line) < LOG_MAX_VALUE + 100);
    CHECK(strstr(line, "...\"}\n") != NULL);
    free(line);
    free(big);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 22);
    size_t n = fread(buf, 1, (1 << 22) - 1, f);
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_file_and_shutdown(const char *dir)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/deep/er/app.log", dir);
    struct logger_config c = {
        .level = LOG_INFO, .stderr_level = LOG_OFF, .file = path, .nworkers = 2};
    struct logger *lg = logger_new(&c, NULL, err, sizeof err);
    CHECK(lg != NULL);
    if (!lg)
        return;
    CHECK(!logger_wants(lg, LOG_DEBUG));
    CHECK(logger_wants(lg, LOG_INFO));
    for (int i = 0; i < 1000; i++) {
        struct log_record r;
        log_begin(&r, LOG_INFO, "line");
        log_int(&r, "i", i);
        log_cstr(&r, "url", "https://bob:hunter2@example.com/x?token=abc&q=1");
        log_cstr(&r, "password", "plain");
        logger_emit(lg, i % 3 == 2 ? -1 : i % 3, &r);
    }
    CHECK_EQ_INT(logger_dropped(lg), 0);
    logger_shutdown(lg, 2000);
    char *text = slurp(path, NULL);
    CHECK(text != NULL);
    if (text) {
        CHECK_EQ_INT(count(text, "msg=line "), 1000);
        CHECK_EQ_INT(count(text, "\n"), 1000);
        CHECK_EQ_INT(count(text, "hunter2"), 0);
        CHECK_EQ_INT(count(text, "abc"), 0);
        CHECK_EQ_INT(count(text, "plain"), 0);
        CHECK_EQ_INT(count(text, "url=\"https://bob:REDACTED@example.com/x?token=REDACTED&q=1\""),
                     1000);
        CHECK_EQ_INT(count(text, " password=REDACTED"), 1000);
        free(text);
    }

    /* an unwritable path is an error that names the file and the flag */
    struct logger_config bad = {.level = LOG_INFO, .file = "/proc/no/such/app.log"};
    CHECK(logger_new(&bad, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "/proc/no/such/app.log") && strstr(err, "--log-file"));
}

/* Every line of the file names the process, after the record's own
 * fields, quoted as any value is, in either format. */
static void test_instance(const char *dir)
{
    static const struct {
        enum log_format format;
        const char *name, *want;
    } cases[] = {
        {LOG_FORMAT_LOGFMT, "inst.log", " instance=\"box \\\"7\\\"\"\n"},
        {LOG_FORMAT_JSON, "inst.json", ",\"instance\":\"box \\\"7\\\"\"}\n"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[512], err[256];
        snprintf(path, sizeof path, "%s/%s", dir, cases[k].name);
        struct logger_config c = {.level = LOG_INFO,
                                  .stderr_level = LOG_OFF,
                                  .format = cases[k].format,
                                  .file = path,
                                  .nworkers = 1,
                                  .instance = "box \"7\""};
        struct logger *lg = logger_new(&c, NULL, err, sizeof err);
        CHECK(lg != NULL);
        if (!lg)
            return;
        for (int i = 0; i < 50; i++) {
            struct log_record r;
            log_begin(&r, LOG_INFO, "hello");
            r.worker = 1;
            log_int(&r, "i", i);
            logger_emit(lg, 1, &r);
        }
        logger_shutdown(lg, 2000);
        char *text = slurp(path, NULL);
        CHECK(text != NULL);
        if (text) {
            CHECK_EQ_INT(count(text, cases[k].want), 50);
            CHECK_EQ_INT(count(text, "\n"), 50);
            free(text);
        }
    }
}

static void test_full_ring_drops(const char *dir)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/stuck.fifo", dir);
    /* the log goes to a pipe whose reader never reads: once the pipe and
     * the small ring are full the writer is stuck in I/O, and the emitter
     * drops and counts rather than wait */
    CHECK(mkfifo(path, 0600) == 0);
    int rd = open(path, O_RDONLY | O_NONBLOCK);
    CHECK(rd >= 0);
    struct logger_config c = {.level = LOG_INFO,
                              .stderr_level = LOG_OFF,
                              .file = path,
                              .nworkers = 1,
                              .ring_bytes = 8192};
    struct logger *lg = logger_new(&c, NULL, err, sizeof err);
    CHECK(lg != NULL);
    if (!lg)
        return;
    char pad[300];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    int n = 20000;
    for (int i = 0; i < n; i++) {
        struct log_record r;
        log_begin(&r, LOG_INFO, "burst");
        log_cstr(&r, "pad", pad);
        logger_emit(lg, 1, &r);
    }
    uint64_t dropped = logger_dropped(lg);
    CHECK(dropped > (uint64_t)n / 2);
    logger_shutdown(lg, 200);
    close(rd);
}

static void test_reopen(const char *dir)
{
    char path[512], moved[512], err[256];
    snprintf(path, sizeof path, "%s/rot.log", dir);
    snprintf(moved, sizeof moved, "%s/rot.log.1", dir);
    struct logger_config c = {
        .level = LOG_INFO, .stderr_level = LOG_OFF, .file = path, .nworkers = 1};
    struct logger *lg = logger_new(&c, NULL, err, sizeof err);
    CHECK(lg != NULL);
    if (!lg)
        return;
    struct log_record r;
    for (int i = 0; i < 100; i++) {
        log_begin(&r, LOG_INFO, "before");
        logger_emit(lg, 1, &r);
    }
    /* wait (bounded) until the writer has written them, then rotate */
    for (int i = 0; i < 500 && logger_lines(lg) < 100; i++)
        usleep(10000);
    CHECK_EQ_INT(logger_lines(lg), 100);
    CHECK(rename(path, moved) == 0);
    logger_reopen(lg);
    for (int i = 0; i < 100; i++) {
        log_begin(&r, LOG_INFO, "after");
        logger_emit(lg, 1, &r);
    }
    logger_shutdown(lg, 2000);
    char *a = slurp(moved, NULL), *b = slurp(path, NULL);
    CHECK(a && b);
    if (a && b) {
        /* every line is in one file or the other, once */
        CHECK_EQ_INT(count(a, "msg=before") + count(b, "msg=before"), 100);
        CHECK_EQ_INT(count(a, "msg=after") + count(b, "msg=after"), 100);
        CHECK_EQ_INT(count(b, "msg=before"), 0);
    }
    free(a);
    free(b);
}

int main(void)
{
    char dir[] = "/tmp/shoal-logger.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    test_levels();
    test_logfmt_line();
    test_no_forged_lines();
    test_json_types();
    test_truncation();
    test_file_and_shutdown(dir);
    test_instance(dir);
    test_full_ring_drops(dir);
    test_reopen(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
