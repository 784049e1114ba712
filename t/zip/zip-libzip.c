/*
 * zip-libzip: the reference reader of the differential test.  Reads
 * every entry with libzip and prints "SHA256 NAME" per file entry (no
 * files written, so hostile names are harmless).  Exit 0 only if every
 * entry was read whole; libzip checks the WinZip AES HMAC and, where
 * present, the CRC.
 *
 * libzip 1.7.3 (Debian 12) demands the CRC of AE-2 entries of 20 bytes
 * and more, although AE-2 stores 0 there: such an entry ends in a CRC
 * error after all its bytes came out.  That error alone is forgiven
 * (and said on stderr).  It also skips the HMAC when the deflate stream
 * ends before the AES layer sees its end, so it is a reference for the
 * bytes, not for refusing tampered files.
 *
 *   zip-libzip [-p PASSWORD] [-c] FILE.zip
 *
 * -c writes the bytes to stdout instead (for the benchmark).
 */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zip.h>


int
main(int argc, char **argv)
{
    int              c, err, to_stdout;
    char             buf[65536];
    zip_t           *za;
    zip_int64_t      i, n, r;
    zip_file_t      *zf;
    zip_stat_t       st;
    zip_uint64_t     total;
    const char      *pw, *name;
    unsigned int     mdlen, j;
    EVP_MD_CTX      *md;
    unsigned char    digest[EVP_MAX_MD_SIZE];

    pw = NULL;
    to_stdout = 0;

    while ((c = getopt(argc, argv, "p:c")) != -1) {
        if (c == 'c') {
            to_stdout = 1;

        } else if (c == 'p') {
            pw = optarg;

        } else {
            return 2;
        }
    }

    if (optind != argc - 1) {
        fprintf(stderr, "usage: zip-libzip [-p PASSWORD] [-c] FILE.zip\n");
        return 2;
    }

    za = zip_open(argv[optind], ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (za == NULL) {
        fprintf(stderr, "zip-libzip: open failed: %d\n", err);
        return 1;
    }

    if (pw) {
        zip_set_default_password(za, pw);
    }

    n = zip_get_num_entries(za, 0);
    md = EVP_MD_CTX_new();

    for (i = 0; i < n; i++) {
        name = zip_get_name(za, i, ZIP_FL_ENC_RAW);
        if (name == NULL) {
            fprintf(stderr, "zip-libzip: entry %lld: no name\n",
                    (long long) i);
            return 1;
        }

        if (name[0] && name[strlen(name) - 1] == '/') {
            continue;
        }

        zf = zip_fopen_index(za, i, 0);
        if (zf == NULL) {
            fprintf(stderr, "zip-libzip: %s: %s\n", name, zip_strerror(za));
            return 1;
        }

        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        total = 0;

        while ((r = zip_fread(zf, buf, sizeof(buf))) > 0) {
            if (to_stdout) {
                if (fwrite(buf, 1, r, stdout) != (size_t) r) {
                    return 1;
                }

            } else {
                EVP_DigestUpdate(md, buf, r);
            }

            total += r;
        }

        /* libzip keeps the 0x9901 field to itself: AE-1 or AE-2 is not
           to be seen, so a stored CRC of 0 stands for AE-2 */
        if (r < 0
            && zip_error_code_zip(zip_file_get_error(zf)) == ZIP_ER_CRC
            && zip_stat_index(za, i, 0, &st) == 0
            && (st.valid & ZIP_STAT_ENCRYPTION_METHOD)
            && (st.encryption_method == ZIP_EM_AES_128
                || st.encryption_method == ZIP_EM_AES_192
                || st.encryption_method == ZIP_EM_AES_256)
            && (st.valid & ZIP_STAT_SIZE) && st.size == total
            && (st.valid & ZIP_STAT_CRC) && st.crc == 0)
        {
            fprintf(stderr, "zip-libzip: %s: AE-2 CRC error forgiven\n",
                    name);
            r = 0;
        }

        if (r < 0) {
            fprintf(stderr, "zip-libzip: %s: %s\n", name,
                    zip_file_strerror(zf));
            return 1;
        }

        /* after a forgiven error it says the same again */
        zip_fclose(zf);

        EVP_DigestFinal_ex(md, digest, &mdlen);

        if (to_stdout) {
            continue;
        }

        for (j = 0; j < mdlen; j++) {
            printf("%02x", digest[j]);
        }

        printf("  %s\n", name);
    }

    EVP_MD_CTX_free(md);
    zip_close(za);

    return 0;
}
