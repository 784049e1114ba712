/*
 * qcc-pushjson: validates a QCC push file (dd_risk_corp.json, dd_corp.json)
 * with the streaming core, from a file or stdin (after qcc-unzip -p, say).
 *
 *   qcc-pushjson [-n] [-c record_max] [-d depth] [-q] [FILE | -]
 *
 *   -n   find each record's id in the scan (QCC_PUSHJSON_NO_CJSON)
 *   -c   the per-record cap in bytes (default 1048576)
 *   -d   the nesting limit (default 64)
 *   -q   no output, only the exit status
 *
 * Prints "ok records=N totalSize=N pushDate=... bytes=N mem_peak=N
 * record_peak=N MB/s=N" and exits 0, or "error CODE: REASON" and exits 1
 * (2 for bad usage or I/O).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qcc_pushjson.h"


int
main(int argc, char **argv)
{
    int                    rc, opt, quiet;
    FILE                  *f;
    size_t                 n;
    double                 secs;
    struct timespec        t0, t1;
    qcc_pushjson_t         ctx;
    qcc_pushjson_limits_t  lim;

    static unsigned char   buf[256 * 1024];

    memset(&lim, 0, sizeof(lim));
    quiet = 0;

    while ((opt = getopt(argc, argv, "nc:d:q")) != -1) {
        switch (opt) {
        case 'n':
            lim.flags |= QCC_PUSHJSON_NO_CJSON;
            break;
        case 'c':
            lim.record_max = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            lim.depth_max = (unsigned) strtoul(optarg, NULL, 10);
            break;
        case 'q':
            quiet = 1;
            break;
        default:
            fprintf(stderr, "usage: qcc-pushjson [-n] [-c record_max] "
                    "[-d depth] [-q] [FILE | -]\n");
            return 2;
        }
    }

    f = stdin;

    if (optind < argc && strcmp(argv[optind], "-") != 0) {
        f = fopen(argv[optind], "rb");
        if (f == NULL) {
            perror(argv[optind]);
            return 2;
        }
    }

    qcc_pushjson_init(&ctx, &lim);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    rc = QCC_PUSHJSON_OK;

    while (rc == QCC_PUSHJSON_OK && (n = fread(buf, 1, sizeof(buf), f)) > 0)
    {
        rc = qcc_pushjson_feed(&ctx, buf, n);
    }

    if (ferror(f)) {
        perror("read");
        return 2;
    }

    rc = qcc_pushjson_finish(&ctx);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

    if (!quiet) {
        if (rc == QCC_PUSHJSON_OK) {
            printf("ok records=%llu totalSize=%llu pushDate=%s bytes=%llu "
                   "mem_peak=%zu record_peak=%zu MB/s=%.0f\n",
                   (unsigned long long) ctx.records,
                   (unsigned long long) ctx.total_size, ctx.push_date,
                   (unsigned long long) ctx.offset, ctx.mem_peak,
                   ctx.record_peak,
                   secs > 0 ? ctx.offset / secs / 1e6 : 0.0);

        } else {
            printf("error %s: %s\n", qcc_pushjson_strerror(rc),
                   qcc_pushjson_error(&ctx));
        }
    }

    qcc_pushjson_free(&ctx);

    return rc == QCC_PUSHJSON_OK ? 0 : 1;
}
