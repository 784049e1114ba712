/*
 * Masking of secrets in log text, nginx-free.
 *
 * The name is matched without regard to case (as QCC and nginx's $arg_*
 * read names), and before '=' with any of its letters percent-encoded (as
 * the callback's parser decodes names); a value ends at '&', white space,
 * a quote or the end of the text, so a masked request line keeps its
 * shape.
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


static int
qcc_redact_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


/*
 * Whether the text before end spells the name, in any letter case, each
 * letter as it is or as a %XX escape: read backwards from the '='.
 */

static int
qcc_redact_named_query(const unsigned char *buf, size_t end)
{
    int            hi, lo;
    size_t         k;
    unsigned char  c;

    for (k = sizeof(qcc_redact_name) - 1; k > 0; k--) {
        if (end == 0) {
            return 0;
        }

        c = buf[end - 1];
        end--;

        if (end >= 2 && buf[end - 2] == '%') {
            hi = qcc_redact_hex(buf[end - 1]);
            lo = qcc_redact_hex(c);

            if (hi >= 0 && lo >= 0) {
                c = (unsigned char) (hi << 4 | lo);
                end -= 2;
            }
        }

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != (unsigned char) qcc_redact_name[k - 1]) {
            return 0;
        }
    }

    return 1;
}


/*
 * Every log line passes through here, so the scan jumps with memchr():
 * to each '=' (few in a line), to look back for the name of a query or
 * form argument, and to each 'z' or 'Z' (rare; the third letter of the
 * name, never escaped in JSON), to look for a JSON member.
 */

size_t
qcc_redact(unsigned char *buf, size_t len)
{
    size_t          i, j, k, e, masked;
    unsigned char  *eq, *lo, *up, *p;

    masked = 0;

    eq = memchr(buf, '=', len);
    lo = memchr(buf, 'z', len);
    up = memchr(buf, 'Z', len);

    while (eq || lo || up) {

        p = eq;

        if (lo && (p == NULL || lo < p)) {
            p = lo;
        }

        if (up && (p == NULL || up < p)) {
            p = up;
        }

        i = p - buf + 1;

        if (p == eq) {
            /* query or form: unzipPassword=VALUE */
            e = p - buf;

            if (qcc_redact_named_query(buf, e)) {
                j = qcc_redact_value(buf, e + 1, len, 0);
                masked += (j > e + 1);
                i = j + 1;
            }

        } else if ((size_t) (p - buf) >= 2) {
            /* JSON: "unzipPassword" : "VALUE" */
            e = (p - buf) - 2 + sizeof(qcc_redact_name) - 1;

            if (e < len && buf[e] == '"' && qcc_redact_named(buf, e)) {
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

        if (eq && eq < buf + i) {
            eq = memchr(buf + i, '=', len - i);
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
