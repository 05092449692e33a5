/* find_kv.h - the attribute named key among n decoded OTLP KeyValues, or
 * NULL: for the tests that read back what an encoder wrote. */
#ifndef SHOAL_TEST_FIND_KV_H
#define SHOAL_TEST_FIND_KV_H

#include "common.pb-c.h"

#include <string.h>

static inline const Opentelemetry__Proto__Common__V1__KeyValue *
find_kv(Opentelemetry__Proto__Common__V1__KeyValue **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i]->key, key) == 0)
            return kv[i];
    return NULL;
}

#endif
