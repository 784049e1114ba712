/*
 * zip-write: writes a ZIP with the test writer (t/unit/zipw.h), for the
 * layouts 7-Zip does not make, e.g. zip4j's stream API: AES-256, AE-2,
 * deflate, UTF-8 names, data descriptor (flags 0x0809).
 *
 *   zip-write [-m 0|8] [-a 0|1|2|3] [-e 1|2] [-D 0|1|2] [-z] [-Z]
 *             [-p PASSWORD] OUT.zip NAME=FILE...
 *
 * -D 1 descriptor with signature, 2 without; -z zip64 extra in the local
 * headers; -Z zip64 end records.  Test-only: files are read whole.
 */

#include <stdio.h>
#include <unistd.h>

#include "../unit/zipw.h"


static unsigned char *
slurp(const char *path, size_t *len)
{
    FILE           *f;
    size_t          n, cap;
    unsigned char  *p;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }

    cap = 1 << 16;
    p = malloc(cap);
    *len = 0;

    while ((n = fread(p + *len, 1, cap - *len, f)) > 0) {
        *len += n;
        if (*len == cap) {
            cap *= 2;
            p = realloc(p, cap);
        }
    }

    fclose(f);

    return p;
}


int
main(int argc, char **argv)
{
    int            c, method, aes, ae, dd, z64, z64end, i, n;
    char          *eq;
    FILE          *f;
    zipw_buf_t     b;
    const char    *pw;
    zipw_entry_t  *es;

    method = 8;
    aes = 3;
    ae = 2;
    dd = 0;
    z64 = 0;
    z64end = 0;
    pw = NULL;

    while ((c = getopt(argc, argv, "m:a:e:D:zZp:")) != -1) {
        switch (c) {
        case 'm': method = atoi(optarg); break;
        case 'a': aes = atoi(optarg); break;
        case 'e': ae = atoi(optarg); break;
        case 'D': dd = atoi(optarg); break;
        case 'z': z64 = 1; break;
        case 'Z': z64end = 1; break;
        case 'p': pw = optarg; break;
        default:
            fprintf(stderr, "usage: zip-write [-m 0|8] [-a 0-3] [-e 1|2] "
                    "[-D 0|1|2] [-z] [-Z] [-p PW] OUT.zip NAME=FILE...\n");
            return 2;
        }
    }

    if (argc - optind < 1 || (aes && pw == NULL)) {
        fprintf(stderr, "zip-write: an output file, and -p with -a\n");
        return 2;
    }

    n = argc - optind - 1;
    es = calloc(n ? n : 1, sizeof(zipw_entry_t));

    for (i = 0; i < n; i++) {
        eq = strchr(argv[optind + 1 + i], '=');
        if (eq == NULL) {
            fprintf(stderr, "zip-write: NAME=FILE expected\n");
            return 2;
        }

        *eq = '\0';
        es[i].name = argv[optind + 1 + i];
        es[i].data = slurp(eq + 1, &es[i].len);
        es[i].method = method;
        es[i].aes = aes;
        es[i].ae = ae;
        es[i].dd = dd;
        es[i].zip64 = z64;
        es[i].password = pw;
        es[i].flags = 0x0800;
    }

    zipw_build(&b, es, n, z64end);

    f = fopen(argv[optind], "wb");
    if (f == NULL || fwrite(b.p, 1, b.len, f) != b.len || fclose(f) != 0) {
        perror(argv[optind]);
        return 1;
    }

    return 0;
}
