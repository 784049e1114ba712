/*
 * libFuzzer target of the signer's argument rewriting (qcc_sign.c).  The
 * input is split at its first NUL: an AppKey, then a query string.
 * Invariants: the escaped key decodes back to the key and uses only
 * unreserved characters and %XX; the rewritten query starts with the key
 * argument, fits key_arg_len + 1 + args_len, keeps every other argument in
 * order and byte for byte (checked against an independent filter), names
 * no other "key" argument in any case or encoding, and rewriting it again
 * changes nothing but a trailing '&' (the empty piece it leaves).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qcc_sign.h"


#define need(cond)  do { if (!(cond)) abort(); } while (0)


static int
hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* the reference: decode the whole name, then compare with "key" */
static int
ref_is_key(const unsigned char *s, size_t len)
{
    size_t         i, n;
    unsigned char  c, d[3];

    n = 0;

    for (i = 0; i < len; i++) {
        c = s[i];

        if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0
            && hexval(s[i + 2]) >= 0)
        {
            c = (unsigned char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;

        } else if (c == '+') {
            c = ' ';
        }

        if (n == 3) {
            return 0;
        }

        d[n++] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    }

    return n == 3 && d[0] == 'k' && d[1] == 'e' && d[2] == 'y';
}


/*
 * The reference filter: every '&'-separated piece but "key" ones; the
 * empty piece after a last '&' is no argument and goes.
 */
static size_t
ref_filter(const unsigned char *args, size_t len, unsigned char *out)
{
    size_t          i, start, name;
    unsigned char  *p;

    p = out;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && args[i] != '&') {
            continue;
        }

        if (i == len && start == len) {
            break;
        }

        for (name = start; name < i && args[name] != '='; name++) {
            /* void */
        }

        if (!ref_is_key(args + start, name - start)) {
            *p++ = '&';
            memcpy(p, args + start, i - start);
            p += i - start;
        }

        start = i + 1;
    }

    return p - out;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          klen, alen, elen, n, n2, rlen, i, j;
    const uint8_t  *nul, *args;
    unsigned char  *esc, *karg, *out, *again, *ref;

    nul = memchr(data, '\0', size);
    klen = nul ? (size_t) (nul - data) : size;
    args = nul ? nul + 1 : data + size;
    alen = size - klen - (nul ? 1 : 0);

    esc = malloc(3 * klen + 1);
    karg = malloc(3 * klen + 5);
    need(esc && karg);

    /* the escaped key: unreserved or %XX, decoding back to the key */
    elen = qcc_sign_escape_key(data, klen, esc);
    need(elen >= klen && elen <= 3 * klen);

    for (i = 0, j = 0; i < elen; j++) {
        if (esc[i] == '%') {
            need(i + 2 < elen && hexval(esc[i + 1]) >= 0
                 && hexval(esc[i + 2]) >= 0);
            need(j < klen && data[j]
                 == hexval(esc[i + 1]) * 16 + hexval(esc[i + 2]));
            i += 3;

        } else {
            need((esc[i] >= 'A' && esc[i] <= 'Z')
                 || (esc[i] >= 'a' && esc[i] <= 'z')
                 || (esc[i] >= '0' && esc[i] <= '9') || esc[i] == '-'
                 || esc[i] == '_' || esc[i] == '.' || esc[i] == '~');
            need(j < klen && data[j] == esc[i]);
            i++;
        }
    }

    need(j == klen);

    memcpy(karg, "key=", 4);
    memcpy(karg + 4, esc, elen);

    /* the rewritten query against the reference */
    out = malloc(4 + elen + 1 + alen);
    ref = malloc(alen + 1);
    again = malloc(4 + elen + 1 + alen);
    need(out && ref && again);

    n = qcc_sign_args(args, alen, karg, 4 + elen, out);
    need(n <= 4 + elen + 1 + alen);
    need(memcmp(out, karg, 4 + elen) == 0);

    rlen = alen ? ref_filter(args, alen, ref) : 0;
    need(n - (4 + elen) == rlen);
    need(memcmp(out + 4 + elen, ref, rlen) == 0);

    /* no other argument is a key, for the signer and for the reference */
    for (i = 4 + elen; i < n; i = j) {
        need(out[i] == '&');

        for (j = i + 1; j < n && out[j] != '&'; j++) {
            /* void */
        }

        for (klen = i + 1; klen < j && out[klen] != '='; klen++) {
            /* void */
        }

        need(!qcc_sign_is_key_name(out + i + 1, klen - i - 1));
        need(!ref_is_key(out + i + 1, klen - i - 1));
    }

    /* a second pass over what was sent changes nothing but a last '&' */
    if (n > 4 + elen) {
        n2 = qcc_sign_args(out + 4 + elen + 1, n - 4 - elen - 1, karg,
                           4 + elen, again);
        need(memcmp(again, out, n2) == 0);
        need(n2 == n || (n2 + 1 == n && out[n - 1] == '&'));
    }

    /* the signer and the reference agree on the name alone */
    need(!qcc_sign_is_key_name(args, alen) == !ref_is_key(args, alen));

    free(esc);
    free(karg);
    free(out);
    free(ref);
    free(again);

    return 0;
}
