/*
 * Unit tests of the ZIP reader (src/qcc_zip.c) over archives made in
 * memory by zipw.h: every layout it must read, and the hostile ones.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "qcc_zip.h"
#include "zipw.h"


typedef struct {
    unsigned char  *p;
    size_t          len;
    size_t          cap;
} sink_t;


static int
sink_write(void *data, const unsigned char *p, size_t n)
{
    sink_t  *s = data;

    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->p = realloc(s->p, s->cap);
        if (s->p == NULL) {
            abort();
        }
    }

    memcpy(s->p + s->len, p, n);
    s->len += n;

    return 0;
}


static int
sink_fail(void *data, const unsigned char *p, size_t n)
{
    (void) data;
    (void) p;
    (void) n;

    return -1;
}


/* Opens, extracts every entry into out (concatenated), closes. */
static qcc_zip_rc_t
unzip(const unsigned char *buf, size_t len, const char *pw,
    const qcc_zip_limits_t *limits, sink_t *out)
{
    uint32_t      i;
    qcc_zip_t     zip;
    qcc_zip_rc_t  rc;

    out->len = 0;

    rc = qcc_zip_open_mem(&zip, buf, len, limits);
    if (rc != QCC_ZIP_OK) {
        return rc;
    }

    for (i = 0; i < zip.nentries; i++) {
        rc = qcc_zip_extract(&zip, &zip.entries[i],
                             (const unsigned char *) pw, pw ? strlen(pw) : 0,
                             sink_write, out);
        if (rc != QCC_ZIP_OK) {
            break;
        }
    }

    qcc_zip_close(&zip);

    return rc;
}


static qcc_zip_rc_t
unzip_b(zipw_buf_t *b, const char *pw, sink_t *out)
{
    return unzip(b->p, b->len, pw, NULL, out);
}


static uint64_t  rnd_state = 88172645463325252ULL;

static unsigned char *
random_bytes(size_t n)
{
    size_t          i;
    unsigned char  *p;

    p = malloc(n);

    for (i = 0; i < n; i++) {
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 7;
        rnd_state ^= rnd_state << 17;
        p[i] = (unsigned char) rnd_state;
    }

    return p;
}


/* QCC-shaped JSON, Chinese text, about n bytes. */
static unsigned char *
qcc_json(size_t n, size_t *len)
{
    size_t          i;
    unsigned char  *p;
    int             w;

    p = malloc(n + 512);
    i = (size_t) sprintf((char *) p, "{\"pushDate\":\"2026-11-27\","
                                     "\"result\":[");

    for (w = 0; i < n; w++) {
        i += (size_t) sprintf((char *) p + i,
            "%s{\"id\":\"%08x\",\"corpKeyNo\":\"k%d\","
            "\"corpName\":\"杭州某某科技有限公司%d\","
            "\"monitorContent\":\"法定代表人变更\",\"score\":%d,"
            "\"changeDate\":\"2026-11-%02d\"}",
            w ? "," : "", w * 2654435761u, w, w, w % 100, w % 28 + 1);
    }

    i += (size_t) sprintf((char *) p + i, "]}");
    *len = i;

    return p;
}


static void
test_names(void)
{
    size_t  i;

    static const char  *good[] = {
        "a", "a/b", "dir/", "dd_risk_corp.json", "中文/名字.json",
        "\xc2\xa0x", "caf\xc3\xa9",
        ".hidden", "a..b", "...", "a/.b", "-x",
    };

    static const char  *bad[] = {
        "", "/etc/passwd", "../x", "a/../b", "a/..", "..", "./a", "a/./b",
        "a//b", "a\\b", "..\\x", "C:x", "c:/x", "a\nb", "a\x7f",
        "a\x01", "\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe4\xb8", "/",
        "a\xc2\x9b[2J", "\xc2\x85",
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK(qcc_zip_name_safe((const unsigned char *) good[i],
                                strlen(good[i])));
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (qcc_zip_name_safe((const unsigned char *) bad[i],
                              strlen(bad[i])))
        {
            fprintf(stderr, "unsafe name accepted: \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }

    /* a NUL inside */
    CHECK(!qcc_zip_name_safe((const unsigned char *) "a\0b", 3));
}


/* Every method, strength, AE version and header layout reads back. */
static void
test_matrix(void)
{
    int             method, aes, ae, dd, z64;
    size_t          tlen, want_len;
    sink_t          out;
    zipw_buf_t      b;
    zipw_entry_t    es[3];
    unsigned char  *text, *rnd, *want;

    text = qcc_json(300 * 1024, &tlen);
    rnd = random_bytes(600 * 1024);

    want_len = tlen + 600 * 1024;
    want = malloc(want_len);
    memcpy(want, text, tlen);
    memcpy(want + tlen, rnd, 600 * 1024);

    memset(&out, 0, sizeof(out));

    for (method = 0; method <= 8; method += 8) {
        for (aes = 0; aes <= 3; aes++) {
            for (ae = aes ? 1 : 2; ae <= 2; ae++) {
                for (dd = 0; dd <= 2; dd++) {
                    for (z64 = 0; z64 <= 1; z64++) {
                        memset(es, 0, sizeof(es));

                        es[0].name = "dd_corp.json";
                        es[0].data = text;
                        es[0].len = tlen;
                        es[1].name = "empty/空.txt";
                        es[1].data = (const unsigned char *) "";
                        es[1].len = 0;
                        es[2].name = "random.bin";
                        es[2].data = rnd;
                        es[2].len = 600 * 1024;

                        for (int i = 0; i < 3; i++) {
                            es[i].method = method;
                            es[i].aes = aes;
                            es[i].ae = ae;
                            es[i].dd = dd;
                            es[i].zip64 = z64;
                            es[i].password = "secret";
                            es[i].flags = 0x0800;
                        }

                        zipw_build(&b, es, 3, z64);

                        CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);
                        CHECK(out.len == want_len
                              && memcmp(out.p, want, want_len) == 0);

                        free(b.p);
                    }
                }
            }
        }
    }

    free(text);
    free(rnd);
    free(want);
    free(out.p);
}


/* A one-entry archive: AES-256, deflate, AE-2 unless told. */
static void
make_one(zipw_buf_t *b, zipw_entry_t *e, const unsigned char *data,
    size_t len, int aes, int ae, int method)
{
    memset(e, 0, sizeof(zipw_entry_t));

    e->name = "dd_risk_corp.json";
    e->data = data;
    e->len = len;
    e->method = method;
    e->aes = aes;
    e->ae = ae;
    e->password = "secret";

    zipw_build(b, e, 1, 0);
}


static void
test_passwords(void)
{
    int             k;
    size_t          tlen;
    char            pw[32];
    sink_t          out;
    zipw_buf_t      b;
    qcc_zip_t       zip;
    qcc_zip_rc_t    rc;
    zipw_entry_t    e;
    unsigned char  *text;

    /*
     * The salt was picked (by a search outside this test) so that one of
     * the first 256 wrong passwords passes the 16-bit verifier: this
     * search then ends quickly ("wrong-17" passes with "secret"'s
     * verifier), and the HMAC must catch it.
     */
    static const unsigned char  salt[8] = { 0x45, 0x03, 0, 0, 0, 0, 0, 0 };

    memset(&out, 0, sizeof(out));
    text = qcc_json(20000, &tlen);

    make_one(&b, &e, text, tlen, 3, 2, 8);

    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);
    CHECK_MEM(out.p, out.len, text, tlen);
    CHECK_INT(unzip_b(&b, "Secret", &out), QCC_ZIP_ERR_PASSWORD);
    CHECK_INT(unzip_b(&b, "", &out), QCC_ZIP_ERR_PASSWORD);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_NO_PASSWORD);
    free(b.p);

    memset(&e, 0, sizeof(e));
    e.name = "dd_corp.json";
    e.data = text;
    e.len = tlen;
    e.method = 8;
    e.aes = 1;
    e.ae = 2;
    e.password = "secret";
    e.salt = salt;
    zipw_build(&b, &e, 1, 0);

    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);

    rc = QCC_ZIP_ERR_PASSWORD;

    for (k = 0; k < 256 && rc == QCC_ZIP_ERR_PASSWORD; k++) {
        snprintf(pw, sizeof(pw), "wrong-%d", k);
        rc = unzip_b(&b, pw, &out);
    }

    /* found one past the verifier, and the HMAC refuses it */
    CHECK_INT(k, 18);
    CHECK_INT(rc, QCC_ZIP_ERR_AUTH);

    /* the keys live in the context only while an entry is extracted */
    CHECK_INT(qcc_zip_open_mem(&zip, b.p, b.len, NULL), QCC_ZIP_OK);
    CHECK_INT(qcc_zip_extract(&zip, &zip.entries[0],
                              (const unsigned char *) "secret", 6,
                              sink_write, &out), QCC_ZIP_OK);
    CHECK(zip.hmac == NULL);
    qcc_zip_close(&zip);

    free(b.p);
    free(text);
    free(out.p);
}


static void
flip(zipw_buf_t *b, size_t off)
{
    b->p[off] ^= 0x20;
}


static void
test_tamper(void)
{
    size_t          tlen, i, ct;
    sink_t          out;
    zipw_buf_t      b;
    zipw_entry_t    e;
    unsigned char  *text;

    static const size_t  where[] = { 0, 1, 15, 16, 17, 1000, 5000 };

    memset(&out, 0, sizeof(out));
    text = qcc_json(100000, &tlen);
    make_one(&b, &e, text, tlen, 3, 2, 8);

    /* ciphertext starts after 16 bytes of salt and 2 of verifier */
    ct = e.data_off + 18;

    for (i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        flip(&b, ct + where[i]);
        CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_AUTH);
        flip(&b, ct + where[i]);
    }

    /* the last ciphertext byte and each MAC byte */
    for (i = e.csize - 11; i < e.csize; i++) {
        flip(&b, e.data_off + i);
        CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_AUTH);
        flip(&b, e.data_off + i);
    }

    /* the verifier: wrong password; the salt: one or the other */
    flip(&b, e.data_off + 16);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_PASSWORD);
    flip(&b, e.data_off + 16);

    flip(&b, e.data_off);
    CHECK(unzip_b(&b, "secret", &out) != QCC_ZIP_OK);
    flip(&b, e.data_off);

    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);
    CHECK_MEM(out.p, out.len, text, tlen);

    free(b.p);

    /* stored AES: a flip goes straight to the output, the MAC catches it */
    make_one(&b, &e, text, tlen, 2, 2, 0);
    flip(&b, e.data_off + 14 + 500);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_AUTH);
    free(b.p);

    free(text);
    free(out.p);
}


/* The CRC field in both headers (and the descriptor, if any). */
static void
set_crc(zipw_buf_t *b, zipw_entry_t *e, uint32_t crc)
{
    zipw_set32(b->p + e->lho + 14, crc);
    zipw_set32(b->p + e->cd + 16, crc);
}


/* The AE vendor version in both AES extra fields. */
static void
set_ae(zipw_buf_t *b, zipw_entry_t *e, uint32_t ae, int local, int central)
{
    size_t  nlen = strlen(e->name);

    if (local) {
        zipw_set16(b->p + e->lho + 30 + nlen + 4, ae);
    }

    if (central) {
        zipw_set16(b->p + e->cd + 46 + nlen + 4, ae);
    }
}


static void
test_crc(void)
{
    size_t          tlen;
    sink_t          out;
    zipw_buf_t      b;
    zipw_entry_t    e;
    unsigned char  *text;

    memset(&out, 0, sizeof(out));
    text = qcc_json(50000, &tlen);

    /* AE-1 keeps the CRC and it is checked */
    make_one(&b, &e, text, tlen, 3, 1, 8);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);
    set_crc(&b, &e, e.crc ^ 1);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_CRC);

    /* relabelled AE-2 to switch the check off: the CRC is still checked */
    set_ae(&b, &e, 2, 1, 1);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_CRC);

    /* relabelled with the good CRC: the HMAC vouches for the data */
    set_crc(&b, &e, e.crc);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);
    CHECK_MEM(out.p, out.len, text, tlen);

    /* relabelled in one header only: the headers disagree */
    set_ae(&b, &e, 1, 0, 1);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_CORRUPT);
    free(b.p);

    /* plain entries, stored and deflated */
    make_one(&b, &e, text, tlen, 0, 0, 0);
    set_crc(&b, &e, e.crc ^ 0x80000000);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_CRC);
    free(b.p);

    make_one(&b, &e, text, tlen, 0, 0, 8);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_OK);
    set_crc(&b, &e, 0);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_CRC);
    free(b.p);

    free(text);
    free(out.p);
}


static void
set_usize(zipw_buf_t *b, zipw_entry_t *e, uint32_t usize)
{
    zipw_set32(b->p + e->lho + 22, usize);
    zipw_set32(b->p + e->cd + 24, usize);
}


static void
test_sizes(void)
{
    size_t           tlen, zlen;
    sink_t           out;
    zipw_buf_t       b;
    zipw_entry_t     e;
    unsigned char   *text, *zeros;
    qcc_zip_limits_t lim;

    memset(&out, 0, sizeof(out));
    text = qcc_json(400000, &tlen);

    /* declared smaller than the output: stops there */
    make_one(&b, &e, text, tlen, 3, 2, 8);
    set_usize(&b, &e, (uint32_t) tlen - 1);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_TOO_LARGE);
    CHECK(out.len <= tlen - 1);

    set_usize(&b, &e, 1000);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_TOO_LARGE);
    CHECK(out.len <= 1000);

    /* declared larger: the output falls short */
    set_usize(&b, &e, (uint32_t) tlen + 1);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_CORRUPT);
    free(b.p);

    /* plain too */
    make_one(&b, &e, text, tlen, 0, 0, 8);
    set_usize(&b, &e, 100);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_TOO_LARGE);
    CHECK(out.len <= 100);
    free(b.p);

    /* stored: the sizes must agree at open */
    make_one(&b, &e, text, tlen, 1, 2, 0);
    set_usize(&b, &e, (uint32_t) tlen - 1);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_CORRUPT);
    free(b.p);

    /* a bomb: 32 MB of zeros in about 32 KB */
    zlen = 32 << 20;
    zeros = calloc(1, zlen);

    memset(&e, 0, sizeof(e));
    e.name = "bomb.json";
    e.data = zeros;
    e.len = zlen;
    e.method = 8;
    e.level = 9;
    e.aes = 3;
    e.ae = 2;
    e.password = "secret";
    zipw_build(&b, &e, 1, 0);

    /* refused by the ratio at open, before any key derivation */
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_TOO_LARGE);
    CHECK_INT(out.len, 0);

    /* by the total */
    memset(&lim, 0, sizeof(lim));
    lim.max_ratio = 100000;
    lim.max_total = 16 << 20;
    CHECK_INT(unzip(b.p, b.len, "secret", &lim, &out),
              QCC_ZIP_ERR_TOO_LARGE);

    /* when both allow it, it is read */
    lim.max_total = 64 << 20;
    CHECK_INT(unzip(b.p, b.len, "secret", &lim, &out), QCC_ZIP_OK);
    CHECK_INT(out.len, zlen);

    /* declared small, so the ratio passes: stopped at the declared size */
    set_usize(&b, &e, 4096);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_TOO_LARGE);
    CHECK(out.len <= 4096);
    free(b.p);

    free(zeros);
    free(text);
    free(out.p);
}


static void
test_unsafe_names(void)
{
    size_t        i;
    sink_t        out;
    zipw_buf_t    b;
    qcc_zip_t     zip;
    zipw_entry_t  es[2];

    static const char  *bad[] = {
        "../../etc/cron.d/x", "/tmp/x", "a/../../x", "..\\..\\x",
        "C:\\x", "c:x", "a\x01.json", "a/./b", "x\xc0\xae",
    };

    memset(&out, 0, sizeof(out));

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(es, 0, sizeof(es));
        es[0].name = "ok.json";
        es[0].data = (const unsigned char *) "{}";
        es[0].len = 2;
        es[1].name = bad[i];
        es[1].data = (const unsigned char *) "pwned";
        es[1].len = 5;

        zipw_build(&b, es, 2, 0);
        CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_NAME);
        CHECK_INT(out.len, 0);

        CHECK_INT(qcc_zip_open_mem(&zip, b.p, b.len, NULL),
                  QCC_ZIP_ERR_NAME);
        CHECK_INT(zip.err_entry, 1);
        CHECK(zip.err_name[0] != '\0');
        CHECK(strchr(zip.err_name, '\\') == NULL
              || strstr(zip.err_name, "\\x") != NULL);

        free(b.p);
    }

    free(out.p);
}


/*
 * Two central entries over one local record, and one whose local record
 * hides inside another entry's data: the overlapping-entry bombs.
 */
static void
test_overlap(void)
{
    size_t           cd_off;
    sink_t           out;
    zipw_buf_t       b, inner;
    zipw_entry_t     es[2], in;
    qcc_zip_limits_t lim;

    memset(&out, 0, sizeof(out));

    /* the inner record: "b" stored */
    memset(&in, 0, sizeof(in));
    in.name = "b";
    in.data = (const unsigned char *) "inner data";
    in.len = 10;
    memset(&inner, 0, sizeof(inner));
    zipw_local(&inner, &in);

    /* "a" stored, its data is the inner record */
    memset(es, 0, sizeof(es));
    es[0].name = "a";
    es[0].data = inner.p;
    es[0].len = inner.len;

    memset(&b, 0, sizeof(b));
    zipw_local(&b, &es[0]);

    cd_off = b.len;
    zipw_central(&b, &es[0]);
    in.lho = es[0].data_off;
    zipw_central(&b, &in);
    zipw_end(&b, 2, cd_off, 0);

    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_OVERLAP);
    free(b.p);
    free(inner.p);

    /* two central entries for one record: same name, same place */
    memset(es, 0, sizeof(es));
    es[0].name = "a";
    es[0].data = (const unsigned char *) "data";
    es[0].len = 4;

    memset(&b, 0, sizeof(b));
    zipw_local(&b, &es[0]);
    cd_off = b.len;
    zipw_central(&b, &es[0]);
    zipw_central(&b, &es[0]);
    zipw_end(&b, 2, cd_off, 0);

    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_OVERLAP);
    free(b.p);

    /* duplicate names, each with its own record */
    es[1] = es[0];
    zipw_build(&b, es, 2, 0);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_DUPLICATE);
    free(b.p);

    /* a local header offset past the central directory */
    es[1].name = "b";
    zipw_build(&b, es, 2, 0);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_OK);
    zipw_set32(b.p + es[1].cd + 42, (uint32_t) b.len - 10);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_OVERLAP);
    free(b.p);

    /* a compressed size running into the central directory */
    zipw_build(&b, es, 2, 0);
    zipw_set32(b.p + es[1].cd + 20, 1000);
    zipw_set32(b.p + es[1].cd + 24, 1000);
    zipw_set32(b.p + es[1].lho + 18, 1000);
    zipw_set32(b.p + es[1].lho + 22, 1000);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_OVERLAP);
    free(b.p);

    /* too many entries */
    zipw_build(&b, es, 2, 0);
    memset(&lim, 0, sizeof(lim));
    lim.max_entries = 1;
    CHECK_INT(unzip(b.p, b.len, NULL, &lim, &out), QCC_ZIP_ERR_TOO_MANY);
    lim.max_entries = 2;
    CHECK_INT(unzip(b.p, b.len, NULL, &lim, &out), QCC_ZIP_OK);
    free(b.p);

    free(out.p);
}


static void
test_unsupported(void)
{
    size_t        nlen;
    sink_t        out;
    zipw_buf_t    b;
    zipw_entry_t  e;

    memset(&out, 0, sizeof(out));

    /* ZipCrypto: the encryption bit on a plain method */
    make_one(&b, &e, (const unsigned char *) "hello", 5, 0, 0, 8);
    b.p[e.lho + 6] |= 1;
    b.p[e.cd + 8] |= 1;
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_ENCRYPTION);
    free(b.p);

    /* strong encryption */
    make_one(&b, &e, (const unsigned char *) "hello", 5, 3, 2, 8);
    b.p[e.lho + 6] |= 0x40;
    b.p[e.cd + 8] |= 0x40;
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_ENCRYPTION);
    free(b.p);

    /* an unknown AE version, an unknown strength */
    make_one(&b, &e, (const unsigned char *) "hello", 5, 3, 2, 8);
    set_ae(&b, &e, 3, 1, 1);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_ENCRYPTION);
    set_ae(&b, &e, 2, 1, 1);
    nlen = strlen(e.name);
    b.p[e.cd + 46 + nlen + 8] = 4;
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_ENCRYPTION);
    free(b.p);

    /* bzip2 inside AES, and plain */
    make_one(&b, &e, (const unsigned char *) "hello", 5, 3, 2, 8);
    nlen = strlen(e.name);
    zipw_set16(b.p + e.lho + 30 + nlen + 9, 12);
    zipw_set16(b.p + e.cd + 46 + nlen + 9, 12);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_METHOD);
    free(b.p);

    make_one(&b, &e, (const unsigned char *) "hello", 5, 0, 0, 8);
    zipw_set16(b.p + e.lho + 8, 14);
    zipw_set16(b.p + e.cd + 10, 14);
    CHECK_INT(unzip_b(&b, NULL, &out), QCC_ZIP_ERR_METHOD);
    free(b.p);

    /* AES method without the encryption bit */
    make_one(&b, &e, (const unsigned char *) "hello", 5, 3, 2, 8);
    b.p[e.lho + 6] &= ~1;
    b.p[e.cd + 8] &= ~1;
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_CORRUPT);
    free(b.p);

    free(out.p);
}


/* Headers that disagree, descriptors that lie, end records. */
static void
test_structure(void)
{
    size_t         i, tlen;
    sink_t         out;
    zipw_buf_t     b, c;
    zipw_entry_t   es[2];
    unsigned char *text;

    memset(&out, 0, sizeof(out));
    text = qcc_json(3000, &tlen);

    memset(es, 0, sizeof(es));
    es[0].name = "dd_corp.json";
    es[0].data = text;
    es[0].len = tlen;
    es[0].method = 8;
    es[0].aes = 3;
    es[0].ae = 2;
    es[0].dd = 1;
    es[0].password = "secret";
    es[1] = es[0];
    es[1].name = "dd_risk_corp.json";
    es[1].dd = 2;
    zipw_build(&b, es, 2, 0);

    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);

    /* a descriptor whose sizes lie */
    b.p[es[0].data_off + es[0].csize + 8] ^= 1;
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_CORRUPT);
    b.p[es[0].data_off + es[0].csize + 8] ^= 1;

    /* the local name differs from the central one */
    b.p[es[1].lho + 30] ^= 1;
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_CORRUPT);
    b.p[es[1].lho + 30] ^= 1;

    /* the local flags lose the descriptor bit */
    b.p[es[1].lho + 6] &= ~8;
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_ERR_CORRUPT);
    b.p[es[1].lho + 6] |= 8;

    /* an archive comment is fine; bytes after the end record are not */
    memset(&c, 0, sizeof(c));
    zipw_put(&c, b.p, b.len);
    c.p[c.len - 2] = 7;
    zipw_put(&c, "comment", 7);
    CHECK_INT(unzip(c.p, c.len, "secret", NULL, &out), QCC_ZIP_OK);
    zipw_put(&c, "x", 1);
    CHECK_INT(unzip(c.p, c.len, "secret", NULL, &out), QCC_ZIP_ERR_CORRUPT);
    free(c.p);

    /* prepended bytes shift every offset */
    memset(&c, 0, sizeof(c));
    zipw_put(&c, "MZ", 2);
    zipw_put(&c, b.p, b.len);
    CHECK(unzip(c.p, c.len, "secret", NULL, &out) != QCC_ZIP_OK);
    free(c.p);

    /* every truncation is refused */
    for (i = 0; i < b.len; i++) {
        if (unzip(b.p, i, "secret", NULL, &out) == QCC_ZIP_OK) {
            fprintf(stderr, "truncated at %zu and read\n", i);
            CHECK(0);
            break;
        }
    }

    free(b.p);

    /* zip64 end records */
    zipw_build(&b, es, 2, 1);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);
    free(b.p);

    /* an empty archive */
    zipw_build(&b, es, 0, 0);
    CHECK_INT(b.len, 22);
    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);
    CHECK_INT(unzip(NULL, 0, NULL, NULL, &out), QCC_ZIP_ERR_CORRUPT);
    free(b.p);

    free(text);
    free(out.p);
}


/*
 * Each single-byte change of a small archive: whatever the reader says,
 * it never says OK with other bytes than the real ones.
 */
static void
test_flips(void)
{
    size_t        i, tlen;
    sink_t        out;
    zipw_buf_t    b;
    zipw_entry_t  es[2];
    qcc_zip_rc_t  rc;
    unsigned char *text, want[4096];

    memset(&out, 0, sizeof(out));
    text = qcc_json(300, &tlen);

    memset(es, 0, sizeof(es));
    es[0].name = "a.json";
    es[0].data = text;
    es[0].len = tlen;
    es[0].method = 8;
    es[0].aes = 1;
    es[0].ae = 1;
    es[0].password = "secret";
    es[1] = es[0];
    es[1].name = "b.json";
    es[1].method = 0;
    es[1].dd = 1;
    zipw_build(&b, es, 2, 0);

    memcpy(want, text, tlen);
    memcpy(want + tlen, text, tlen);

    for (i = 0; i < b.len; i++) {
        b.p[i] ^= 0x01;
        rc = unzip_b(&b, "secret", &out);

        if (rc == QCC_ZIP_OK
            && (out.len != 2 * tlen || memcmp(out.p, want, out.len) != 0))
        {
            fprintf(stderr, "flip at %zu read as OK with other bytes\n", i);
            CHECK(0);
        }

        b.p[i] ^= 0x01;
    }

    CHECK_INT(unzip_b(&b, "secret", &out), QCC_ZIP_OK);

    free(b.p);
    free(text);
    free(out.p);
}


static void
test_api(void)
{
    int           fd, i;
    char          path[] = "/tmp/qcc-test-zip-XXXXXX";
    sink_t        out;
    zipw_buf_t    b;
    qcc_zip_t     zip;
    zipw_entry_t  e;
    const char   *s, *t;

    memset(&out, 0, sizeof(out));
    make_one(&b, &e, (const unsigned char *) "{\"a\":1}", 7, 3, 2, 8);

    /* over a file descriptor */
    fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, b.p, b.len) == (ssize_t) b.len);
    unlink(path);

    CHECK_INT(qcc_zip_open_fd(&zip, fd, NULL), QCC_ZIP_OK);
    CHECK_INT(zip.nentries, 1);
    CHECK_STR(zip.entries[0].name, "dd_risk_corp.json");
    CHECK_INT(zip.entries[0].usize, 7);
    CHECK_INT(zip.entries[0].aes, 3);
    CHECK_INT(zip.entries[0].ae, 2);
    CHECK_INT(zip.entries[0].method, 8);

    CHECK_INT(qcc_zip_extract(&zip, &zip.entries[0],
                              (const unsigned char *) "secret", 6,
                              sink_write, &out), QCC_ZIP_OK);
    CHECK_MEM(out.p, out.len, "{\"a\":1}", 7);

    /* the caller's sink refuses */
    CHECK_INT(qcc_zip_extract(&zip, &zip.entries[0],
                              (const unsigned char *) "secret", 6,
                              sink_fail, NULL), QCC_ZIP_ERR_WRITE);

    /* it refuses what a flipped byte made of the data: the MAC decides */
    qcc_zip_close(&zip);
    flip(&b, e.data_off + 18);
    CHECK_INT(qcc_zip_open_mem(&zip, b.p, b.len, NULL), QCC_ZIP_OK);
    CHECK_INT(qcc_zip_extract(&zip, &zip.entries[0],
                              (const unsigned char *) "secret", 6,
                              sink_fail, NULL), QCC_ZIP_ERR_AUTH);
    qcc_zip_close(&zip);
    flip(&b, e.data_off + 18);
    CHECK_INT(qcc_zip_open_fd(&zip, fd, NULL), QCC_ZIP_OK);

    /* twice in a row, and an entry from elsewhere */
    out.len = 0;
    CHECK_INT(qcc_zip_extract(&zip, &zip.entries[0],
                              (const unsigned char *) "secret", 6,
                              sink_write, &out), QCC_ZIP_OK);
    CHECK_MEM(out.p, out.len, "{\"a\":1}", 7);
    CHECK_INT(qcc_zip_extract(&zip, (qcc_zip_entry_t *) (void *) &e, NULL,
                              0, sink_write, &out), QCC_ZIP_ERR_CORRUPT);

    qcc_zip_close(&zip);
    qcc_zip_close(&zip);
    close(fd);

    /* closed file: a read error */
    CHECK_INT(qcc_zip_open_fd(&zip, fd, NULL), QCC_ZIP_ERR_IO);

    /* every error has its own message */
    for (i = 0; i < QCC_ZIP_ERR_LAST; i++) {
        s = qcc_zip_strerror((qcc_zip_rc_t) i);
        t = qcc_zip_strerror((qcc_zip_rc_t) (i + 1));
        CHECK(s != NULL && strcmp(s, t) != 0);
    }

    CHECK_STR(qcc_zip_strerror(QCC_ZIP_ERR_LAST), "unknown error");

    free(b.p);
    free(out.p);
}


typedef struct {
    zipw_buf_t           *b;
    const unsigned char  *want;
    size_t                want_len;
    int                   ok;
} thread_job_t;


static void *
thread_run(void *arg)
{
    int            i;
    sink_t         out;
    thread_job_t  *job = arg;

    memset(&out, 0, sizeof(out));
    job->ok = 1;

    for (i = 0; i < 4; i++) {
        if (unzip_b(job->b, "secret", &out) != QCC_ZIP_OK
            || out.len != job->want_len
            || memcmp(out.p, job->want, out.len) != 0)
        {
            job->ok = 0;
        }
    }

    free(out.p);

    return NULL;
}


/* No shared state: archives read in parallel threads (as in nginx's
   thread pool) give the right bytes. */
static void
test_threads(void)
{
    int             i;
    size_t          tlen;
    pthread_t       t[4];
    zipw_buf_t      b[4];
    zipw_entry_t    e;
    thread_job_t    job[4];
    unsigned char  *text;

    text = qcc_json(400000, &tlen);

    for (i = 0; i < 4; i++) {
        make_one(&b[i], &e, text, tlen, 1 + i % 3, 1 + i % 2, 8 * (i % 2));
        job[i].b = &b[i];
        job[i].want = text;
        job[i].want_len = tlen;
        CHECK_INT(pthread_create(&t[i], NULL, thread_run, &job[i]), 0);
    }

    for (i = 0; i < 4; i++) {
        CHECK_INT(pthread_join(t[i], NULL), 0);
        CHECK(job[i].ok);
        free(b[i].p);
    }

    free(text);
}


int
main(void)
{
    test_names();
    test_matrix();
    test_passwords();
    test_tamper();
    test_crc();
    test_sizes();
    test_unsafe_names();
    test_overlap();
    test_unsupported();
    test_structure();
    test_flips();
    test_api();
    test_threads();

    return UNIT_DONE("test_zip");
}
