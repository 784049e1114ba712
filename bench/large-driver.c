/*
 * large-driver: the two sides of bench/large.sh, over the nginx-free core.
 *
 *   large-driver extract FILE.zip PASSWORD NAME
 *       decrypts and inflates entry NAME to a sink that does nothing:
 *       unpacking alone, the bound of the full path
 *   large-driver unpack FILE.zip PASSWORD NAME OUT [cjson] [serial]
 *       qcc_unpack() as the module's thread runs it: decrypt, inflate,
 *       validate, write OUT and fsync it (OUT must not exist); "cjson"
 *       parses each record with cJSON, "serial" validates and writes in
 *       the reading thread (QCC_UNPACK_CJSON, QCC_UNPACK_SERIAL)
 *
 * Prints the bytes of plaintext, the CPU seconds (user + sys) of the
 * calling thread, which is the reading one, and those of the whole
 * process: the difference is the validator's thread's.  Exits 1 on any
 * failure.
 */

#define _GNU_SOURCE             /* RUSAGE_THREAD */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "qcc_unpack.h"
#include "qcc_zip.h"


static double
cpu(int who)
{
    struct rusage  ru;

    (void) getrusage(who, &ru);

    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
           + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}


static void
report(uint64_t bytes)
{
    printf("%" PRIu64 " %.3f %.3f\n", bytes, cpu(RUSAGE_THREAD),
           cpu(RUSAGE_SELF));
}


static int
noop(void *data, const unsigned char *p, size_t n)
{
    (void) p;

    *(uint64_t *) data += n;

    return 0;
}


static int
extract(const char *path, const char *pw, const char *name)
{
    int                     fd, rc;
    uint32_t                i;
    uint64_t                bytes;
    qcc_zip_t               zip;
    const qcc_zip_entry_t  *e;

    fd = open(path, O_RDONLY);
    if (fd == -1) {
        perror(path);
        return 1;
    }

    rc = qcc_zip_open_fd(&zip, fd, NULL);
    if (rc != QCC_ZIP_OK) {
        fprintf(stderr, "%s: %s\n", path, qcc_zip_strerror(rc));
        return 1;
    }

    e = NULL;

    for (i = 0; i < zip.nentries; i++) {
        if (strcmp(zip.entries[i].name, name) == 0) {
            e = &zip.entries[i];
        }
    }

    if (e == NULL) {
        fprintf(stderr, "%s: no %s\n", path, name);
        return 1;
    }

    bytes = 0;
    rc = qcc_zip_extract(&zip, e, (const unsigned char *) pw, strlen(pw),
                         noop, &bytes);

    qcc_zip_close(&zip);
    close(fd);

    if (rc != QCC_ZIP_OK) {
        fprintf(stderr, "%s: %s\n", name, qcc_zip_strerror(rc));
        return 1;
    }

    report(bytes);

    return 0;
}


int
main(int argc, char **argv)
{
    int                  i;
    const char          *names[1];
    qcc_unpack_job_t     job;
    qcc_unpack_result_t  res;

    if (argc == 5 && strcmp(argv[1], "extract") == 0) {
        return extract(argv[2], argv[3], argv[4]);
    }

    if (argc < 6 || strcmp(argv[1], "unpack") != 0) {
        fprintf(stderr, "usage: large-driver extract FILE.zip PW NAME\n"
                "       large-driver unpack FILE.zip PW NAME OUT"
                " [cjson] [serial]\n");
        return 2;
    }

    memset(&job, 0, sizeof(qcc_unpack_job_t));
    names[0] = argv[4];
    job.zip_path = argv[2];
    job.out_path = argv[5];
    job.password = (const unsigned char *) argv[3];
    job.password_len = strlen(argv[3]);
    job.names = names;
    job.nnames = 1;

    for (i = 6; i < argc; i++) {
        if (strcmp(argv[i], "cjson") == 0) {
            job.flags |= QCC_UNPACK_CJSON;

        } else if (strcmp(argv[i], "serial") == 0) {
            job.flags |= QCC_UNPACK_SERIAL;

        } else {
            fprintf(stderr, "large-driver: unknown \"%s\"\n", argv[i]);
            return 2;
        }
    }

    if (qcc_unpack(&job, &res) != QCC_UNPACK_OK) {
        fprintf(stderr, "large-driver: %s\n", res.reason);
        return 1;
    }

    report(res.bytes);

    return 0;
}
