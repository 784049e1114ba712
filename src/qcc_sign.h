/*
 * QCC request signing, nginx-free: the Token of a call and the query
 * string sent upstream.
 */

#ifndef QCC_SIGN_H
#define QCC_SIGN_H

#include <stddef.h>
#include <time.h>

#define QCC_TOKEN_LEN     32
#define QCC_TIMESPAN_MAX  20

/* Fetches MD5 once; call before any thread signs.  Returns 0 or -1. */
int qcc_sign_init(void);

/*
 * Token = upper-case hex MD5(key + timespan + secret); out gets exactly
 * QCC_TOKEN_LEN bytes (no NUL).  Returns 0, or -1 if OpenSSL fails.
 */
int qcc_sign_token(const unsigned char *key, size_t key_len,
    const unsigned char *timespan, size_t timespan_len,
    const unsigned char *secret, size_t secret_len, unsigned char *out);

/* Decimal Unix seconds into out (QCC_TIMESPAN_MAX bytes); returns length. */
size_t qcc_sign_timespan(time_t now, unsigned char *out);

/*
 * Whether a query argument name, percent-decoded, is "key" in any letter
 * case (QCC reads argument names without regard to case).
 */
int qcc_sign_is_key_name(const unsigned char *name, size_t len);

/*
 * The query string to send upstream: key_arg ("key=<AppKey>", already
 * escaped) first, then every argument of args except those named "key",
 * in order and byte for byte.  out must hold key_arg_len + 1 + args_len
 * bytes; returns the length written.
 */
size_t qcc_sign_args(const unsigned char *args, size_t args_len,
    const unsigned char *key_arg, size_t key_arg_len, unsigned char *out);

/* Percent-encodes an AppKey for a query string; out holds 3 * len. */
size_t qcc_sign_escape_key(const unsigned char *key, size_t len,
    unsigned char *out);

#endif /* QCC_SIGN_H */
