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
 * each '=' or ':' (few in a line) and looks back for the name there.
 */

size_t
qcc_redact(unsigned char *buf, size_t len)
{
    size_t          i, j, k, masked;
    unsigned char  *eq, *colon, *p;

    masked = 0;
    i = 0;

    eq = memchr(buf, '=', len);
    colon = memchr(buf, ':', len);

    while (eq || colon) {

        if (eq && (colon == NULL || eq < colon)) {
            p = eq;
            i = p - buf;

            /* query or form: unzipPassword=VALUE */
            if (qcc_redact_named(buf, i)) {
                j = qcc_redact_value(buf, i + 1, len, 0);
                masked += (j > i + 1);
                i = j;
            }

            i++;
            eq = (i < len) ? memchr(buf + i, '=', len - i) : NULL;

            if (colon && colon < buf + i) {
                colon = (i < len) ? memchr(buf + i, ':', len - i) : NULL;
            }

            continue;
        }

        p = colon;
        i = p - buf;

        /* JSON: "unzipPassword" : "VALUE" */
        k = i;
        while (k > 0 && (buf[k - 1] == ' ' || buf[k - 1] == '\t')) {
            k--;
        }

        if (k > 0 && buf[k - 1] == '"' && qcc_redact_named(buf, k - 1)) {
            j = qcc_redact_blanks(buf, i + 1, len);

            if (j < len && buf[j] == '"') {
                k = qcc_redact_value(buf, j + 1, len, 1);
                masked += (k > j + 1);
                i = k;
            }
        }

        i++;
        colon = (i < len) ? memchr(buf + i, ':', len - i) : NULL;

        if (eq && eq < buf + i) {
            eq = (i < len) ? memchr(buf + i, '=', len - i) : NULL;
        }
    }

    return masked;
}
