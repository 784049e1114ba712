/*
 * libFuzzer target of the signer's argument rewriting: whatever the
 * client's query string, the result starts with our key, carries no other
 * argument named "key" in any case or escaping, keeps every other
 * argument in order byte for byte, and stays within its bound.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qcc_sign.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                n, k, len;
    unsigned char        *out, *p, *end, *amp, *eq;
    const unsigned char  *in, *iend, *a, *aamp, *aeq;

    static const unsigned char  key_arg[] = "key=AppKey";

    out = malloc(sizeof(key_arg) - 1 + 1 + size);
    if (out == NULL) {
        return 0;
    }

    n = qcc_sign_args(data, size, key_arg, sizeof(key_arg) - 1, out);

    if (n > sizeof(key_arg) - 1 + 1 + size
        || memcmp(out, key_arg, sizeof(key_arg) - 1) != 0)
    {
        abort();
    }

    /* every argument after ours: not a key, and the client's, in order */

    in = data;
    iend = data + size;
    p = out + sizeof(key_arg) - 1;
    end = out + n;

    while (p < end) {
        if (*p != '&') {
            abort();
        }

        p++;
        amp = memchr(p, '&', end - p);
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', amp - p);
        len = (eq ? eq : amp) - p;

        if (qcc_sign_is_key_name(p, len)) {
            abort();
        }

        /* the next argument of the input that is not a key */
        for ( ;; ) {
            if (in > iend) {
                abort();
            }

            a = in;
            aamp = memchr(a, '&', iend - a);
            if (aamp == NULL) {
                aamp = iend;
            }

            aeq = memchr(a, '=', aamp - a);
            k = (aeq ? aeq : aamp) - a;
            in = aamp + 1;

            if (!qcc_sign_is_key_name(a, k)) {
                break;
            }
        }

        if ((size_t) (aamp - a) != (size_t) (amp - p)
            || memcmp(a, p, amp - p) != 0)
        {
            abort();
        }

        p = amp;
    }

    /* and nothing of the client's but keys was left out */

    while (in < iend) {
        a = in;
        aamp = memchr(a, '&', iend - a);
        if (aamp == NULL) {
            aamp = iend;
        }

        aeq = memchr(a, '=', aamp - a);

        if (!qcc_sign_is_key_name(a, (aeq ? aeq : aamp) - a)) {
            abort();
        }

        in = aamp + 1;
    }

    free(out);

    return 0;
}
