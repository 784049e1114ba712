/*
 * A minimal unit-test harness for the nginx-free core: each test file
 * defines its checks in main() through these macros and ends with
 * UNIT_DONE(), which prints "NAME: N passed, N failed" and sets the exit
 * status.
 */

#ifndef QCC_UNIT_H
#define QCC_UNIT_H

#include <stdio.h>
#include <string.h>

static int  unit_passed;
static int  unit_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            unit_passed++;                                                   \
        } else {                                                             \
            unit_failed++;                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n",                     \
                    __FILE__, __LINE__, #cond);                              \
        }                                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                      \
    do {                                                                     \
        long long  unit_a_ = (long long) (a), unit_b_ = (long long) (b);     \
        if (unit_a_ == unit_b_) {                                            \
            unit_passed++;                                                   \
        } else {                                                             \
            unit_failed++;                                                   \
            fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n",            \
                    __FILE__, __LINE__, #a, unit_a_, unit_b_);               \
        }                                                                    \
    } while (0)

#define CHECK_MEM(p, plen, q, qlen)                                          \
    do {                                                                     \
        size_t  unit_pl_ = (plen), unit_ql_ = (qlen);                        \
        if (unit_pl_ == unit_ql_ && memcmp((p), (q), unit_pl_) == 0) {       \
            unit_passed++;                                                   \
        } else {                                                             \
            unit_failed++;                                                   \
            fprintf(stderr, "%s:%d: %s: \"%.*s\", expected \"%.*s\"\n",      \
                    __FILE__, __LINE__, #p, (int) unit_pl_,                  \
                    (const char *) (p), (int) unit_ql_,                      \
                    (const char *) (q));                                     \
        }                                                                    \
    } while (0)

#define CHECK_STR(p, s)  CHECK_MEM((p), strlen(p), (s), strlen(s))

#define UNIT_DONE(name)                                                      \
    (printf("%s: %d passed, %d failed\n", (name), unit_passed, unit_failed), \
     unit_failed ? 1 : 0)

#endif /* QCC_UNIT_H */
