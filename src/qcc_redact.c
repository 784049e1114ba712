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


size_t
qcc_redact(unsigned char *buf, size_t len)
{
    size_t         i, j, k, n, masked;
    unsigned char  c;

    masked = 0;
    n = sizeof(qcc_redact_name) - 1;

    for (i = 0; i + n < len; i++) {

        for (k = 0; k < n; k++) {
            c = buf[i + k];
            if (c >= 'A' && c <= 'Z') {
                c |= 0x20;
            }

            if (c != (unsigned char) qcc_redact_name[k]) {
                break;
            }
        }

        if (k < n) {
            continue;
        }

        j = i + n;

        if (buf[j] == '=') {
            /* query or form: unzipPassword=VALUE */
            j = qcc_redact_value(buf, j + 1, len, 0);
            masked += (j > i + n + 1);
            i = j - 1;
            continue;
        }

        if (buf[j] != '"') {
            continue;
        }

        /* JSON: "unzipPassword" : "VALUE" */

        j = qcc_redact_blanks(buf, j + 1, len);

        if (j < len && buf[j] == ':') {
            j = qcc_redact_blanks(buf, j + 1, len);

            if (j < len && buf[j] == '"') {
                k = qcc_redact_value(buf, j + 1, len, 1);
                masked += (k > j + 1);
                i = k - 1;
            }
        }
    }

    return masked;
}
