/*
 * QCC request signing, nginx-free.
 */

#include <string.h>

/* MD5_Init() and friends are deprecated in OpenSSL 3, still there */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/crypto.h>
#include <openssl/md5.h>

#include "qcc_sign.h"


/*
 * One MD5 block per request: OpenSSL's direct MD5 functions cost a
 * fraction of an EVP digest (no context allocation, no provider
 * dispatch), measured by bench/sign.sh.  They are deprecated in OpenSSL 3
 * but remain in libcrypto.
 */

int
qcc_sign_init(void)
{
    unsigned char  md[MD5_DIGEST_LENGTH];

    /* a provider configuration without MD5 shows here, not per request */
    return (MD5((const unsigned char *) "", 0, md) != NULL) ? 0 : -1;
}


int
qcc_sign_token(const unsigned char *key, size_t key_len,
    const unsigned char *timespan, size_t timespan_len,
    const unsigned char *secret, size_t secret_len, unsigned char *out)
{
    MD5_CTX        ctx;
    unsigned int   i;
    unsigned char  md[MD5_DIGEST_LENGTH];

    static const char  hex[] = "0123456789ABCDEF";

    if (!MD5_Init(&ctx)
        || !MD5_Update(&ctx, key, key_len)
        || !MD5_Update(&ctx, timespan, timespan_len)
        || !MD5_Update(&ctx, secret, secret_len)
        || !MD5_Final(md, &ctx))
    {
        OPENSSL_cleanse(&ctx, sizeof(MD5_CTX));
        return -1;
    }

    /* the context held the secret */
    OPENSSL_cleanse(&ctx, sizeof(MD5_CTX));

    for (i = 0; i < MD5_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }

    return 0;
}


size_t
qcc_sign_timespan(time_t now, unsigned char *out)
{
    size_t         n;
    unsigned char  digits[QCC_TIMESPAN_MAX], *p;

    /* by hand: snprintf() costs more than the MD5 block on this path */

    if (now < 0) {
        return 0;
    }

    p = digits + sizeof(digits);

    do {
        *--p = (unsigned char) ('0' + now % 10);
        now /= 10;
    } while (now);

    n = digits + sizeof(digits) - p;
    memcpy(out, p, n);

    return n;
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
