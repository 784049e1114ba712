/*
 * qcc-unzip: list or extract a ZIP (WinZip AES or plain) with the
 * module's own reader.
 *
 *   qcc-unzip -l FILE.zip
 *   qcc-unzip [-p PASSWORD | -P PASSWORD_FILE] [-d DIR | -c] FILE.zip
 *
 * Extraction into DIR goes to temporary files first; they are renamed
 * into place only when every entry has been authenticated, and removed
 * otherwise, so a failure leaves nothing behind.  Directories are walked
 * with O_NOFOLLOW, so nothing is written outside DIR.  With -c the bytes
 * go to stdout as they come: trust them only if the exit status is 0.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "qcc_zip.h"


#define QCC_UNZIP_PASSWORD_MAX  4096


typedef struct {
    int          fd;
    const char  *path;
} qcc_unzip_out_t;


static const char  *qcc_unzip_zip;


static void
qcc_unzip_usage(void)
{
    fprintf(stderr,
            "usage: qcc-unzip -l FILE.zip\n"
            "       qcc-unzip [-p PASSWORD | -P PASSWORD_FILE] "
            "[-d DIR | -c] FILE.zip\n");
    exit(2);
}


static void
qcc_unzip_fail(const char *entry, const char *msg)
{
    if (entry) {
        fprintf(stderr, "qcc-unzip: %s: %s: %s\n", qcc_unzip_zip, entry,
                msg);
    } else {
        fprintf(stderr, "qcc-unzip: %s: %s\n", qcc_unzip_zip, msg);
    }
}


static int
qcc_unzip_write(void *data, const unsigned char *p, size_t n)
{
    ssize_t           w;
    qcc_unzip_out_t  *out = data;

    while (n) {
        w = write(out->fd, p, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }

            return -1;
        }

        p += w;
        n -= w;
    }

    return 0;
}


/*
 * Opens the directory that holds name's last component under root,
 * creating the ones before it if asked, never following a symlink.
 * *leaf gets the last component (empty for a directory entry).
 */
static int
qcc_unzip_walk(int root, const char *name, int create, const char **leaf)
{
    int          fd, next;
    char         comp[4096];
    size_t       n;
    const char  *p, *slash;

    fd = dup(root);
    if (fd < 0) {
        return -1;
    }

    p = name;

    for ( ;; ) {
        slash = strchr(p, '/');
        if (slash == NULL) {
            break;
        }

        n = slash - p;
        if (n >= sizeof(comp)) {
            errno = ENAMETOOLONG;
            close(fd);
            return -1;
        }

        memcpy(comp, p, n);
        comp[n] = '\0';

        if (create && mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
            close(fd);
            return -1;
        }

        next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        close(fd);

        if (next < 0) {
            return -1;
        }

        fd = next;
        p = slash + 1;
    }

    *leaf = p;

    return fd;
}


static void
qcc_unzip_tmpname(char *buf, size_t size, uint32_t i)
{
    snprintf(buf, size, ".qcc-unzip-%ld-%u.tmp", (long) getpid(), i);
}


/* Removes (commit = 0) or renames into place (commit = 1) the temps. */
static int
qcc_unzip_finish(qcc_zip_t *zip, int root, uint32_t done, int commit)
{
    int               dfd, rc;
    char              tmp[64];
    uint32_t          i;
    const char       *leaf;
    qcc_zip_entry_t  *e;

    rc = 0;

    for (i = 0; i < done; i++) {
        e = &zip->entries[i];

        if (e->dir) {
            continue;
        }

        dfd = qcc_unzip_walk(root, e->name, 0, &leaf);
        if (dfd < 0) {
            qcc_unzip_fail(e->name, strerror(errno));
            rc = -1;
            continue;
        }

        qcc_unzip_tmpname(tmp, sizeof(tmp), i);

        if (commit) {
            if (renameat(dfd, tmp, dfd, leaf) != 0) {
                qcc_unzip_fail(e->name, strerror(errno));
                unlinkat(dfd, tmp, 0);
                rc = -1;
            }

        } else {
            unlinkat(dfd, tmp, 0);
        }

        close(dfd);
    }

    return rc;
}


static int
qcc_unzip_list(qcc_zip_t *zip)
{
    uint32_t          i;
    qcc_zip_entry_t  *e;

    static const char  *aes[] = { "-", "AES-128", "AES-192", "AES-256" };

    printf("%12s %12s %-7s %-11s %s\n",
           "size", "compressed", "method", "encryption", "name");

    for (i = 0; i < zip->nentries; i++) {
        e = &zip->entries[i];

        printf("%12llu %12llu %-7s %-7s%-4s %s\n",
               (unsigned long long) e->usize, (unsigned long long) e->csize,
               e->method == 8 ? "deflate" : "store", aes[e->aes],
               e->ae == 1 ? " AE1" : e->ae == 2 ? " AE2" : "", e->name);
    }

    return 0;
}


static int
qcc_unzip_extract(qcc_zip_t *zip, const unsigned char *pw, size_t pw_len,
    const char *dir, int to_stdout)
{
    int               root, dfd, rc;
    char              tmp[64];
    uint32_t          i;
    const char       *leaf;
    qcc_zip_rc_t      zrc;
    qcc_unzip_out_t   out;
    qcc_zip_entry_t  *e;

    root = -1;

    if (!to_stdout) {
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "qcc-unzip: %s: %s\n", dir, strerror(errno));
            return 1;
        }

        root = open(dir, O_RDONLY | O_DIRECTORY);
        if (root < 0) {
            fprintf(stderr, "qcc-unzip: %s: %s\n", dir, strerror(errno));
            return 1;
        }
    }

    for (i = 0; i < zip->nentries; i++) {
        e = &zip->entries[i];

        if (to_stdout) {
            if (e->dir) {
                continue;
            }

            out.fd = STDOUT_FILENO;

            zrc = qcc_zip_extract(zip, e, pw, pw_len, qcc_unzip_write, &out);
            if (zrc != QCC_ZIP_OK) {
                qcc_unzip_fail(e->name, zrc == QCC_ZIP_ERR_WRITE
                                        ? strerror(errno)
                                        : qcc_zip_strerror(zrc));
                return 1;
            }

            continue;
        }

        dfd = qcc_unzip_walk(root, e->name, 1, &leaf);
        if (dfd < 0) {
            qcc_unzip_fail(e->name, strerror(errno));
            goto failed;
        }

        if (e->dir) {
            close(dfd);
            continue;
        }

        qcc_unzip_tmpname(tmp, sizeof(tmp), i);

        out.fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                        0644);
        if (out.fd < 0) {
            qcc_unzip_fail(e->name, strerror(errno));
            close(dfd);
            goto failed;
        }

        zrc = qcc_zip_extract(zip, e, pw, pw_len, qcc_unzip_write, &out);

        rc = close(out.fd);

        if (zrc == QCC_ZIP_OK && rc != 0) {
            zrc = QCC_ZIP_ERR_WRITE;
        }

        if (zrc != QCC_ZIP_OK) {
            qcc_unzip_fail(e->name, zrc == QCC_ZIP_ERR_WRITE
                                    ? strerror(errno)
                                    : qcc_zip_strerror(zrc));
            unlinkat(dfd, tmp, 0);
            close(dfd);
            goto failed;
        }

        close(dfd);
    }

    if (to_stdout) {
        return 0;
    }

    rc = qcc_unzip_finish(zip, root, zip->nentries, 1);
    close(root);

    return rc ? 1 : 0;

failed:

    qcc_unzip_finish(zip, root, i, 0);
    close(root);

    return 1;
}


static size_t
qcc_unzip_read_password(const char *path, unsigned char *buf, size_t size)
{
    int      fd;
    ssize_t  n;
    size_t   len;

    fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "qcc-unzip: %s: %s\n", path, strerror(errno));
        exit(2);
    }

    len = 0;

    while (len < size) {
        n = read(fd, buf + len, size - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        len += n;
    }

    close(fd);

    if (len == size) {
        fprintf(stderr, "qcc-unzip: %s: password too long\n", path);
        exit(2);
    }

    /* one line: the end of line is not part of the password */
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }

    return len;
}


int
main(int argc, char **argv)
{
    int               c, list, to_stdout, fd, rc;
    size_t            pw_len;
    const char       *dir;
    qcc_zip_t         zip;
    qcc_zip_rc_t      zrc;
    unsigned char    *pw, pwbuf[QCC_UNZIP_PASSWORD_MAX];

    list = 0;
    to_stdout = 0;
    dir = ".";
    pw = NULL;
    pw_len = 0;

    while ((c = getopt(argc, argv, "lp:P:d:c")) != -1) {
        switch (c) {

        case 'l':
            list = 1;
            break;

        case 'p':
            pw_len = strlen(optarg);
            if (pw_len >= sizeof(pwbuf)) {
                qcc_unzip_usage();
            }

            memcpy(pwbuf, optarg, pw_len);
            pw = pwbuf;

            /* keep it out of ps(1) from now on */
            memset(optarg, 0, pw_len);
            break;

        case 'P':
            pw_len = qcc_unzip_read_password(optarg, pwbuf, sizeof(pwbuf));
            pw = pwbuf;
            break;

        case 'd':
            dir = optarg;
            break;

        case 'c':
            to_stdout = 1;
            break;

        default:
            qcc_unzip_usage();
        }
    }

    if (optind != argc - 1) {
        qcc_unzip_usage();
    }

    qcc_unzip_zip = argv[optind];

    fd = open(qcc_unzip_zip, O_RDONLY);
    if (fd < 0) {
        qcc_unzip_fail(NULL, strerror(errno));
        return 1;
    }

    zrc = qcc_zip_open_fd(&zip, fd, NULL);

    if (zrc != QCC_ZIP_OK) {
        if (zip.err_name[0]) {
            qcc_unzip_fail(zip.err_name, qcc_zip_strerror(zrc));

        } else if (zip.err_entry >= 0) {
            fprintf(stderr, "qcc-unzip: %s: entry #%lld: %s\n",
                    qcc_unzip_zip, (long long) zip.err_entry + 1,
                    qcc_zip_strerror(zrc));
        } else {
            qcc_unzip_fail(NULL, qcc_zip_strerror(zrc));
        }

        close(fd);
        return 1;
    }

    if (list) {
        rc = qcc_unzip_list(&zip);

    } else {
        rc = qcc_unzip_extract(&zip, pw, pw_len, dir, to_stdout);
    }

    OPENSSL_cleanse(pwbuf, sizeof(pwbuf));
    qcc_zip_close(&zip);
    close(fd);

    return rc;
}
