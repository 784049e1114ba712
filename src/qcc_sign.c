/*
 * QCC request signing, nginx-free.
 */

#include <string.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "qcc_sign.h"


/*
 * MD5, fetched once by qcc_sign_init() before any worker or thread runs:
 * an implicit fetch on every call costs a lock.  Without it the implicit
 * fetch is used.
 */
static EVP_MD  *qcc_md5;


int
qcc_sign_init(void)
{
    if (qcc_md5 == NULL) {
        qcc_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    }

    return (qcc_md5 != NULL) ? 0 : -1;
}


int
qcc_sign_token(const unsigned char *key, size_t key_len,
    const unsigned char *timespan, size_t timespan_len,
    const unsigned char *secret, size_t secret_len, unsigned char *out)
{
    int            rc;
    unsigned int   n, i;
    unsigned char  md[EVP_MAX_MD_SIZE];
    EVP_MD_CTX    *ctx;

    static const char  hex[] = "0123456789ABCDEF";

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return -1;
    }

    rc = EVP_DigestInit_ex(ctx, qcc_md5 ? qcc_md5 : EVP_md5(), NULL)
         && EVP_DigestUpdate(ctx, key, key_len)
         && EVP_DigestUpdate(ctx, timespan, timespan_len)
         && EVP_DigestUpdate(ctx, secret, secret_len)
         && EVP_DigestFinal_ex(ctx, md, &n);

    EVP_MD_CTX_free(ctx);

    if (!rc || n != 16) {
        return -1;
    }

    for (i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }

    return 0;
}


size_t
qcc_sign_timespan(time_t now, unsigned char *out)
{
    int  n;

    n = snprintf((char *) out, QCC_TIMESPAN_MAX, "%lld", (long long) now);

    return (n < 0 || n >= QCC_TIMESPAN_MAX) ? 0 : (size_t) n;
}


static int
qcc_sign_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


int
qcc_sign_is_key_name(const unsigned char *name, size_t len)
{
    int            hi, lo;
    size_t         i, n;
    unsigned char  c;

    static const unsigned char  key[] = "key";

    n = 0;

    for (i = 0; i < len; i++) {
        c = name[i];

        if (c == '%' && i + 2 < len) {
            hi = qcc_sign_hex(name[i + 1]);
            lo = qcc_sign_hex(name[i + 2]);

            if (hi >= 0 && lo >= 0) {
                c = (unsigned char) (hi * 16 + lo);
                i += 2;
            }

        } else if (c == '+') {
            c = ' ';
        }

        if (n == 3 || (c | 0x20) != key[n]) {
            return 0;
        }

        n++;
    }

    return n == 3;
}


size_t
qcc_sign_args(const unsigned char *args, size_t args_len,
    const unsigned char *key_arg, size_t key_arg_len, unsigned char *out)
{
    size_t               name_len;
    unsigned char       *p;
    const unsigned char *arg, *end, *amp, *eq;

    p = out;
    memcpy(p, key_arg, key_arg_len);
    p += key_arg_len;

    end = args + args_len;

    for (arg = args; arg < end; arg = amp + 1) {
        amp = memchr(arg, '&', end - arg);
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(arg, '=', amp - arg);
        name_len = (eq ? eq : amp) - arg;

        if (qcc_sign_is_key_name(arg, name_len)) {
            continue;
        }

        *p++ = '&';
        memcpy(p, arg, amp - arg);
        p += amp - arg;
    }

    return p - out;
}


size_t
qcc_sign_escape_key(const unsigned char *key, size_t len,
    unsigned char *out)
{
    size_t         i;
    unsigned char  c, *p;

    static const char  hex[] = "0123456789ABCDEF";

    p = out;

    for (i = 0; i < len; i++) {
        c = key[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
            || c == '~')
        {
            *p++ = c;

        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
    }

    return p - out;
}
