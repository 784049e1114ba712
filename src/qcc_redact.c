/*
 * Masking of secrets in log text, nginx-free.
 *
 * The name is matched without regard to case (as QCC and nginx's $arg_*
 * read names); a value ends at '&', white space, a quote or the end of
 * the text, so a masked request line keeps its shape.
 */

#include <string.h>

#include "qcc_redact.h"


static const char  qcc_redact_name[] = "unzippassword";


/* Masks from buf[i] to the value's end; returns the index of that end. */

static size_t
qcc_redact_value(unsigned char *buf, size_t i, size_t len, int json)
{
    unsigned char  c;

    for ( /* void */ ; i < len; i++) {
        c = buf[i];

        if (json ? (c == '"')
                 : (c == '&' || c == ' ' || c == '"' || c == '\''
                    || c == '\r' || c == '\n' || c == '\t'))
        {
            break;
        }

        buf[i] = '*';

        /* an escaped quote is part of a JSON string */
        if (json && c == '\\' && i + 1 < len) {
            buf[++i] = '*';
        }
    }

    return i;
}


static size_t
qcc_redact_blanks(unsigned char *buf, size_t i, size_t len)
{
    while (i < len && (buf[i] == ' ' || buf[i] == '\t')) {
        i++;
    }

    return i;
}


/* whether the n bytes before end spell the name, in any letter case */

static int
qcc_redact_named(const unsigned char *buf, size_t end)
{
    size_t         k, n;
    unsigned char  c;

    n = sizeof(qcc_redact_name) - 1;

    if (end < n) {
        return 0;
    }

    for (k = 0; k < n; k++) {
        c = buf[end - n + k];
        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != (unsigned char) qcc_redact_name[k]) {
            return 0;
        }
    }

    return 1;
}


/*
 * Every log line passes through here, so the scan jumps with memchr() to
 * each 'z' or 'Z' (rare in log text; the third letter of the name) and
 * looks around it for the name, then for '=' or '":' after it.
 */

size_t
qcc_redact(unsigned char *buf, size_t len)
{
    size_t          i, j, k, e, masked;
    unsigned char  *lo, *up, *p;

    masked = 0;

    if (len < sizeof(qcc_redact_name) - 1) {
        return 0;
    }

    /* the name spans from two bytes before its 'z' to e */
    i = 2;
    lo = memchr(buf + i, 'z', len - i);
    up = memchr(buf + i, 'Z', len - i);

    while (lo || up) {

        p = (lo && (up == NULL || lo < up)) ? lo : up;
        e = (p - buf) - 2 + sizeof(qcc_redact_name) - 1;
        i = p - buf + 1;

        if (e <= len && qcc_redact_named(buf, e) && e < len) {

            if (buf[e] == '=') {
                /* query or form: unzipPassword=VALUE */
                j = qcc_redact_value(buf, e + 1, len, 0);
                masked += (j > e + 1);
                i = j + 1;

            } else if (buf[e] == '"') {
                /* JSON: "unzipPassword" : "VALUE" */
                k = qcc_redact_blanks(buf, e + 1, len);

                if (k < len && buf[k] == ':') {
                    j = qcc_redact_blanks(buf, k + 1, len);

                    if (j < len && buf[j] == '"') {
                        k = qcc_redact_value(buf, j + 1, len, 1);
                        masked += (k > j + 1);
                        i = k + 1;
                    }
                }
            }
        }

        if (i >= len) {
            break;
        }

        if (lo && lo < buf + i) {
            lo = memchr(buf + i, 'z', len - i);
        }

        if (up && up < buf + i) {
            up = memchr(buf + i, 'Z', len - i);
        }
    }

    return masked;
}
