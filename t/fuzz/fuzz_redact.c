/*
 * libFuzzer target of log masking: the text keeps its length, a second
 * pass changes nothing, and no "unzipPassword=" (any letter case) is left
 * followed by anything but the mask or the end of the value.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qcc_redact.h"


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

    free(a);
    free(b);

    return 0;
}
