/*
 * libFuzzer target of the ZIP reader: open from memory, then extract
 * every entry with the password of the seeds ("secret").  Few entries
 * are allowed: each costs a key derivation.
 */

#include <stdint.h>
#include <stddef.h>

#include "qcc_zip.h"


static int
fuzz_discard(void *data, const unsigned char *p, size_t n)
{
    size_t  *total = data;

    /* touch the bytes, so that ASan sees every one */
    if (n) {
        *total += p[0] + p[n - 1];
    }

    *total += n;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t            total;
    uint32_t          i;
    qcc_zip_t         zip;
    qcc_zip_limits_t  limits;

    limits.max_entries = 8;
    limits.max_name = 256;
    limits.max_ratio = 0;
    limits.max_total = 64 << 20;
    limits.max_cd = 64 << 10;

    if (qcc_zip_open_mem(&zip, data, size, &limits) != QCC_ZIP_OK) {
        return 0;
    }

    total = 0;

    for (i = 0; i < zip.nentries; i++) {
        (void) qcc_zip_extract(&zip, &zip.entries[i],
                               (const unsigned char *) "secret", 6,
                               fuzz_discard, &total);
    }

    qcc_zip_close(&zip);

    return 0;
}
