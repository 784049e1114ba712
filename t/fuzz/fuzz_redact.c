/*
 * libFuzzer target of log masking: the text keeps its length, a second
 * pass changes nothing, and no "unzipPassword=" (any letter case, any
 * letter maybe %-escaped) is left followed by anything but the mask or
 * the end of the value.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qcc_redact.h"


static int
hex(unsigned char c)
{
    return (c >= '0' && c <= '9') ? c - '0'
           : ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') ? (c | 0x20) - 'a' + 10
           : -1;
}


/* whether the name, its letters maybe escaped, starts at p and ends at e */
static int
escaped_name_at(const unsigned char *p, const unsigned char *end,
    const unsigned char **e)
{
    size_t         k;
    unsigned char  c;

    static const char  name[] = "unzippassword";

    for (k = 0; k < sizeof(name) - 1; k++) {
        if (p == end) {
            return 0;
        }

        c = *p++;

        if (c == '%' && end - p >= 2 && hex(p[0]) >= 0 && hex(p[1]) >= 0) {
            c = (unsigned char) (hex(p[0]) << 4 | hex(p[1]));
            p += 2;
        }

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        if (c != (unsigned char) name[k]) {
            return 0;
        }
    }

    *e = p;

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          i, k;
    unsigned char  *a, *b, c;

    static const char  name[] = "unzippassword=";

    a = malloc(size + 1);
    b = malloc(size + 1);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return 0;
    }

    memcpy(a, data, size);
    (void) qcc_redact(a, size);

    memcpy(b, a, size);
    (void) qcc_redact(b, size);

    if (memcmp(a, b, size) != 0) {
        abort();
    }

    for (i = 0; i + sizeof(name) - 1 <= size; i++) {
        for (k = 0; k < sizeof(name) - 1; k++) {
            c = a[i + k];
            if (c >= 'A' && c <= 'Z') {
                c |= 0x20;
            }
            if (c != (unsigned char) name[k]) {
                break;
            }
        }

        if (k < sizeof(name) - 1) {
            continue;
        }

        k = i + sizeof(name) - 1;

        if (k < size && a[k] != '*' && a[k] != '&' && a[k] != ' '
            && a[k] != '"' && a[k] != '\'' && a[k] != '\r' && a[k] != '\n'
            && a[k] != '\t')
        {
            abort();
        }
    }

    /* an escaped name: only where a '%' does not start a longer escape */
    for (i = 0; i < size; i++) {
        const unsigned char  *e;

        if ((i == 0 || a[i - 1] != '%')
            && escaped_name_at(a + i, a + size, &e) && e < a + size
            && *e == '=' && e + 1 < a + size)
        {
            c = e[1];

            if (c != '*' && c != '&' && c != ' ' && c != '"' && c != '\''
                && c != '\r' && c != '\n' && c != '\t')
            {
                abort();
            }
        }
    }

    free(a);
    free(b);

    return 0;
}
