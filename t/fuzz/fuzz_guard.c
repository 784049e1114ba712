/*
 * libFuzzer target of the edge guardrails (qcc_guard.c).  The input is
 * split at its first NUL: a path, then a query string (or the files
 * route's target).  Invariants: counts are bounded by the input, the
 * refusal JSON always fits, a files URL fits its buffer, starts with
 * its scheme, and a second pass over it changes nothing (the credentials
 * are gone after the first); link rewriting measures what it writes
 * and changes nothing without a link.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qcc_guard.h"
#include "qcc_callback.h"


#define need(cond)  do { if (!(cond)) abort(); } while (0)


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  rc, rc2;
    size_t               plen, alen, n, n2, k, cut;
    const uint8_t       *nul, *args;
    unsigned char        json[QCC_GUARD_RESPONSE_MAX];
    unsigned char       *out, *again, *in2;
    qcc_guard_result_t   res;

    static const qcc_guard_limits_t  limits = { 3, 2, 5 };
    static const size_t  sizes[] = { 4096, 64, 16, 7 };

    nul = memchr(data, 0, size);
    plen = nul ? (size_t) (nul - data) : size;
    args = nul ? nul + 1 : data + size;
    alen = nul ? size - plen - 1 : 0;

    need(qcc_guard_classify(data, plen) <= QCC_GUARD_API_SHIXIN);
    need(qcc_guard_count_list(args, alen, "keyWordList") <= alen / 2 + 1);

    rc = qcc_guard_check(data, plen, args, alen, &limits, &res);
    need(rc == res.rc);

    if (rc == QCC_GUARD_TOO_MANY_KEYWORDS || rc == QCC_GUARD_TOO_MANY_LOGINS)
    {
        need(res.count > res.limit);
    }

    n = qcc_guard_response(&res, json, sizeof(json));
    need(n > 0 && n < sizeof(json));
    need(memcmp(json, "{\"status\":\"202\",\"msg\":\"", 23) == 0);
    need(json[n - 1] == '}');

    /* the files route over the whole input */

    out = malloc(4096);
    again = malloc(4096);
    in2 = malloc(4096);
    need(out && again && in2);

    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        n = 0;
        rc = qcc_guard_files_url(data, size, out, sizes[k], &n);

        if (rc != QCC_GUARD_FILES_OK) {
            need(rc <= QCC_GUARD_FILES_TOO_LONG);
            continue;
        }

        need(n <= sizes[k]);
        need((n >= 8 && memcmp(out, "http://", 7) == 0)
             || (n >= 9 && memcmp(out, "https://", 8) == 0));

        /* "scheme://rest" -> "scheme/rest", then once more */
        cut = out[4] == ':' ? 4 : 5;
        memcpy(in2, out, cut);
        in2[cut] = '/';
        memcpy(in2 + cut + 1, out + cut + 3, n - cut - 3);

        rc2 = qcc_guard_files_url(in2, n - 2, again, 4096, &n2);
        need(rc2 == QCC_GUARD_FILES_OK);
        need(n2 == n && memcmp(again, out, n) == 0);
    }

    /* link rewriting: both passes agree, no link means no change */
    {
        size_t          m, links, links2;
        unsigned char  *rw;

        static const qcc_url_host_t  hosts[] = {
            { 22, (const unsigned char *) "pro-files.qichacha.com" },
            { 6, (const unsigned char *) "h:8080" }
        };

        n = qcc_guard_rewrite_links(data, size, hosts, 2,
                                    (const unsigned char *) "/f/", 3, NULL,
                                    &links);
        rw = malloc(n + 1);
        need(rw);
        m = qcc_guard_rewrite_links(data, size, hosts, 2,
                                    (const unsigned char *) "/f/", 3, rw,
                                    &links2);
        need(m == n && links2 == links);
        need(links || (n == size && memcmp(rw, data, size) == 0));
        need(n + 4 * links >= size);
        free(rw);
    }

    free(out);
    free(again);
    free(in2);

    return 0;
}
