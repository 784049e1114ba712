/*
 * Unit tests of order unpacking (src/qcc_unpack.c): small pushes, then
 * pushes of a few MB, several times the ring of the validator's thread,
 * each unpacked four ways (pipelined or in one thread, ids found by the
 * scanner or by cJSON) that must agree to the byte on every verdict.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "unit.h"
#include "zipw.h"
#include "qcc_unpack.h"


static const char  *corp_names[] = { "dd_corp.json", "corp.json" };

static const char  push[] =
    "{\"pushDate\":\"2021-03-16\",\"totalSize\":2,\"result\":["
    "{\"id\":\"a1\",\"corpName\":\"\xe5\xb0\x8f\xe7\xb1\xb3\"},"
    "{\"id\":\"b2\",\"type\":1}]}";


static void
write_zip(const char *path, zipw_entry_t *es, size_t n)
{
    FILE        *f;
    zipw_buf_t   b;

    memset(&b, 0, sizeof(zipw_buf_t));
    zipw_build(&b, es, n, 0);

    f = fopen(path, "wb");
    fwrite(b.p, 1, b.len, f);
    fclose(f);
    free(b.p);
}


static zipw_entry_t
entry(const char *name, const char *data, const char *password)
{
    zipw_entry_t  e;

    memset(&e, 0, sizeof(zipw_entry_t));
    e.name = name;
    e.data = (const unsigned char *) data;
    e.len = strlen(data);
    e.method = 8;
    e.aes = 3;
    e.ae = 2;
    e.password = password;

    return e;
}


static int
run_to(const char *zip, const char *password, unsigned flags,
    const char *out, qcc_unpack_result_t *res)
{
    qcc_unpack_job_t  job;

    memset(&job, 0, sizeof(qcc_unpack_job_t));
    job.zip_path = zip;
    job.out_path = out;
    job.password = (const unsigned char *) password;
    job.password_len = strlen(password);
    job.names = corp_names;
    job.nnames = 2;
    job.flags = flags;

    return qcc_unpack(&job, res);
}


static int
run(const char *zip, const char *password, qcc_unpack_result_t *res)
{
    return run_to(zip, password, 0, "unpack-out.json", res);
}


static char *
slurp(const char *path, size_t *len)
{
    FILE   *f;
    char   *p;
    long    n;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc(n + 1);
    *len = fread(p, 1, n, f);
    fclose(f);

    return p;
}


/* --- pushes of a few MB ---------------------------------------------------- */

#define BIG_RECORDS  32000      /* about 5 MB: the ring is 2 MB */

static const unsigned  modes[] = {
    0, QCC_UNPACK_CJSON, QCC_UNPACK_SERIAL,
    QCC_UNPACK_SERIAL | QCC_UNPACK_CJSON
};

#define NMODES  (sizeof(modes) / sizeof(modes[0]))


typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
} text_t;


static void
text_add(text_t *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
    }

    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}


/*
 * A push of n records; record bad (counting from 1, 0 for none) has no
 * id; tail follows the closing brace.
 */
static text_t
big_push(size_t n, size_t bad, const char *tail)
{
    char    rec[256];
    size_t  i;
    text_t  t;
    int     k;

    memset(&t, 0, sizeof(text_t));

    k = snprintf(rec, sizeof(rec),
                 "{\"pushDate\":\"2021-03-16\",\"totalSize\":%zu,"
                 "\"result\":[\n", n);
    text_add(&t, rec, k);

    for (i = 1; i <= n; i++) {
        k = snprintf(rec, sizeof(rec),
                     "{\"%s\":\"%032zx\",\"corpName\":\"\xe5\x9b\x9b\xe5\xb7"
                     "\x9d\xe4\xb8\xad\xe6\xb4\xa5 %zu\",\"type\":\"%zu\","
                     "\"changeExtend\":\"{\\\"date\\\":\\\"2020-01-01\\\"}\","
                     "\"changeDate\":\"2021-01-01\"}%s\n",
                     i == bad ? "corpKeyNo" : "id", i * 2654435761u, i,
                     i % 15, i < n ? "," : "");
        text_add(&t, rec, k);
    }

    text_add(&t, "]}", 2);
    text_add(&t, tail, strlen(tail));

    return t;
}


static void
write_big(const char *path, const text_t *t, int method, zipw_buf_t *keep)
{
    FILE          *f;
    zipw_buf_t     b;
    zipw_entry_t   e;

    e = entry("dd_corp.json", t->p, "pw");
    e.len = t->len;
    e.method = method;

    memset(&b, 0, sizeof(zipw_buf_t));
    zipw_build(&b, &e, 1, 0);

    f = fopen(path, "wb");
    fwrite(b.p, 1, b.len, f);
    fclose(f);

    if (keep) {
        *keep = b;
        keep->cap = e.data_off;     /* where the entry data starts */

    } else {
        free(b.p);
    }
}


/*
 * Unpacks zip in every mode: the same rc and reason each time, no output
 * left unless it succeeded; returns the verdict of the first.
 */
static int
run_modes(const char *zip, qcc_unpack_result_t *res)
{
    size_t               i;
    qcc_unpack_result_t  r;

    for (i = 0; i < NMODES; i++) {
        unlink("unpack-big.json");
        run_to(zip, "pw", modes[i], "unpack-big.json", i ? &r : res);

        if (i) {
            CHECK_INT(r.rc, res->rc);
            CHECK_STR(r.reason, res->reason);
            CHECK_INT(r.bytes, res->bytes);
            CHECK_INT(r.records, res->records);
        }

        if (res->rc != QCC_UNPACK_OK) {
            CHECK(access("unpack-big.json", F_OK) != 0);
        }
    }

    return res->rc;
}


typedef struct {
    const char           *zip;
    char                  out[32];
    qcc_unpack_result_t   res;
} thread_job_t;


static void *
thread_run(void *data)
{
    thread_job_t  *j = data;

    run_to(j->zip, "pw", 0, j->out, &j->res);

    return NULL;
}


static void
test_big(void)
{
    int                  i;
    char                *out;
    size_t               len;
    text_t               t;
    pthread_t            tid[4];
    zipw_buf_t           b;
    struct rlimit        rl, small;
    thread_job_t         tj[4];
    qcc_unpack_result_t  res;

    /* good, byte-identical in every mode */
    t = big_push(BIG_RECORDS, 0, "\n");
    CHECK(t.len > 2 * QCC_UNPACK_SLOTS * QCC_UNPACK_SLOT_SIZE);
    write_big("unpack-big.zip", &t, 8, NULL);

    CHECK_INT(run_modes("unpack-big.zip", &res), QCC_UNPACK_OK);
    CHECK_INT(res.records, BIG_RECORDS);
    CHECK_INT(res.bytes, t.len);
    out = slurp("unpack-big.json", &len);
    CHECK(out != NULL);
    if (out) {
        CHECK(len == t.len && memcmp(out, t.p, len) == 0);
        free(out);
    }
    unlink("unpack-big.json");

    /* four at once, each with its validator's thread */
    for (i = 0; i < 4; i++) {
        tj[i].zip = "unpack-big.zip";
        snprintf(tj[i].out, sizeof(tj[i].out), "unpack-big-%d.json", i);
        unlink(tj[i].out);
        CHECK_INT(pthread_create(&tid[i], NULL, thread_run, &tj[i]), 0);
    }

    for (i = 0; i < 4; i++) {
        CHECK_INT(pthread_join(tid[i], NULL), 0);
        CHECK_INT(tj[i].res.rc, QCC_UNPACK_OK);
        CHECK_INT(tj[i].res.bytes, t.len);
        out = slurp(tj[i].out, &len);
        CHECK(out != NULL && len == t.len && memcmp(out, t.p, len) == 0);
        free(out);
        unlink(tj[i].out);
    }

    /*
     * The output cannot be written (a file size limit, as a full disk
     * would): an I/O error, worth retrying, and nothing left.
     */
    signal(SIGXFSZ, SIG_IGN);
    CHECK(getrlimit(RLIMIT_FSIZE, &rl) == 0);
    small = rl;
    small.rlim_cur = 3 * 1024 * 1024 + 1000;
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);

    CHECK_INT(run_modes("unpack-big.zip", &res), QCC_UNPACK_IO);
    CHECK(strstr(res.reason, "cannot write the output") != NULL);
    CHECK(strstr(res.reason, strerror(EFBIG)) != NULL);

    CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    signal(SIGXFSZ, SIG_DFL);

    free(t.p);

    /* a JSON error at the start: the first member */
    t = big_push(BIG_RECORDS, 0, "");
    memcpy(t.p + 12, "[", 1);           /* {"pushDate":["2021-... */
    write_big("unpack-big.zip", &t, 8, NULL);
    CHECK_INT(run_modes("unpack-big.zip", &res), QCC_UNPACK_JSON);
    CHECK(strstr(res.reason, "dd_corp.json: ") == res.reason);
    CHECK(strstr(res.reason, "byte 12") != NULL);
    free(t.p);

    /* ... in the middle: a record without id */
    t = big_push(BIG_RECORDS, BIG_RECORDS / 2, "");
    write_big("unpack-big.zip", &t, 8, NULL);
    CHECK_INT(run_modes("unpack-big.zip", &res), QCC_UNPACK_JSON);
    CHECK(strstr(res.reason, "record 16000 ") != NULL);
    free(t.p);

    /* ... at the end: trailing garbage, then a short count */
    t = big_push(BIG_RECORDS, 0, " x");
    write_big("unpack-big.zip", &t, 8, NULL);
    CHECK_INT(run_modes("unpack-big.zip", &res), QCC_UNPACK_JSON);
    CHECK(strstr(res.reason, "data after the JSON text") != NULL);
    free(t.p);

    t = big_push(BIG_RECORDS, 0, "");
    memcpy(strstr(t.p, "\"totalSize\":") + 12, "9", 1);  /* 92000 */
    write_big("unpack-big.zip", &t, 8, NULL);
    CHECK_INT(run_modes("unpack-big.zip", &res), QCC_UNPACK_JSON);
    CHECK(strstr(res.reason, "but totalSize 92000") != NULL);
    free(t.p);

    /*
     * Tampered, stored (not deflated), so a flipped ciphertext bit flips
     * the same plaintext bit and the JSON breaks right there: at the
     * start, in the middle, at the end.  The MAC is blamed each time, not
     * the JSON error the validator met first.
     */
    t = big_push(BIG_RECORDS, 0, "");

    for (i = 0; i < 3; i++) {
        FILE    *f;
        size_t   at;

        at = i == 0 ? 0                     /* '{' becomes ';' */
             : i == 1 ? (size_t) (strchr(t.p + t.len / 2, '{') - t.p)
             : t.len - 1;                   /* '}' becomes '=' */

        write_big("unpack-big.zip", &t, 0, &b);
        b.p[b.cap + 16 + 2 + at] ^= 0x40;   /* after salt and verifier */

        f = fopen("unpack-big.zip", "wb");
        fwrite(b.p, 1, b.len, f);
        fclose(f);
        free(b.p);

        CHECK_INT(run_modes("unpack-big.zip", &res), QCC_UNPACK_ZIP);
        CHECK(strstr(res.reason, "dd_corp.json: ") == res.reason);
        CHECK(strstr(res.reason, "authentication failed") != NULL);
    }

    free(t.p);

    unlink("unpack-big.zip");
    unlink("unpack-big.json");
}


int
main(void)
{
    char                *out;
    size_t               len;
    struct stat          st;
    zipw_entry_t         es[3];
    char                 dir[] = "test_unpack.XXXXXX";
    qcc_unpack_result_t  res;

    /* a directory of its own: other runs of the suite may share t/unit */
    if (mkdtemp(dir) == NULL || chdir(dir) != 0) {
        perror("test_unpack: mkdtemp");
        return 1;
    }

    /* a good push, with another file beside it */
    es[0] = entry("readme.txt", "hello", "pw");
    es[1] = entry("dd_corp.json", push, "pw");
    write_zip("unpack-good.zip", es, 2);

    CHECK_INT(run("unpack-good.zip", "pw", &res), QCC_UNPACK_OK);
    CHECK_INT(res.records, 2);
    CHECK_INT(res.total_size, 2);
    CHECK_INT(res.bytes, strlen(push));
    CHECK_STR(res.ignored, "readme.txt");
    out = slurp("unpack-out.json", &len);
    CHECK(out != NULL);
    if (out) {
        CHECK_MEM(out, len, push, strlen(push));
        free(out);
    }
    CHECK(stat("unpack-out.json", &st) == 0 && (st.st_mode & 0777) == 0640);

    /* the output is never overwritten: a second run refuses */
    CHECK_INT(run("unpack-good.zip", "pw", &res), QCC_UNPACK_IO);
    CHECK(strstr(res.reason, "cannot create") != NULL);
    unlink("unpack-out.json");

    /* one flipped ciphertext byte: the MAC, not the JSON, is blamed */
    {
        FILE          *f;
        zipw_buf_t     b;

        es[0] = entry("dd_corp.json", push, "pw");
        memset(&b, 0, sizeof(zipw_buf_t));
        zipw_build(&b, es, 1, 0);
        b.p[es[0].data_off + 16 + 2 + 3] ^= 0x40;
        f = fopen("unpack-tampered.zip", "wb");
        fwrite(b.p, 1, b.len, f);
        fclose(f);
        free(b.p);

        CHECK_INT(run("unpack-tampered.zip", "pw", &res), QCC_UNPACK_ZIP);
        CHECK(strstr(res.reason, "dd_corp.json") != NULL);
        CHECK(access("unpack-out.json", F_OK) != 0);
        unlink("unpack-tampered.zip");
    }

    /* corp.json is accepted too */
    es[0] = entry("corp.json", push, "pw");
    write_zip("unpack-corp.zip", es, 1);
    CHECK_INT(run("unpack-corp.zip", "pw", &res), QCC_UNPACK_OK);
    unlink("unpack-out.json");

    /* wrong password: nothing written */
    CHECK(run("unpack-good.zip", "wrong", &res) == QCC_UNPACK_PASSWORD
          || res.rc == QCC_UNPACK_ZIP);
    CHECK(access("unpack-out.json", F_OK) != 0);

    /* totalSize disagrees */
    es[0] = entry("dd_corp.json",
                  "{\"pushDate\":\"d\",\"totalSize\":3,\"result\":"
                  "[{\"id\":\"a\"}]}", "pw");
    write_zip("unpack-count.zip", es, 1);
    CHECK_INT(run("unpack-count.zip", "pw", &res), QCC_UNPACK_JSON);
    CHECK(strstr(res.reason, "dd_corp.json") != NULL);
    CHECK(access("unpack-out.json", F_OK) != 0);

    /* a record without id */
    es[0] = entry("dd_corp.json",
                  "{\"pushDate\":\"d\",\"totalSize\":1,\"result\":"
                  "[{\"corpName\":\"x\"}]}", "pw");
    write_zip("unpack-id.zip", es, 1);
    CHECK_INT(run("unpack-id.zip", "pw", &res), QCC_UNPACK_JSON);
    CHECK(access("unpack-out.json", F_OK) != 0);

    /* no push file of the feed */
    es[0] = entry("dd_risk_corp.json", push, "pw");
    write_zip("unpack-none.zip", es, 1);
    CHECK_INT(run("unpack-none.zip", "pw", &res), QCC_UNPACK_NO_ENTRY);
    CHECK_STR(res.reason, "no dd_corp.json in the ZIP");

    /* not a ZIP; a missing file */
    CHECK_INT(run("../test_unpack.c", "pw", &res), QCC_UNPACK_ZIP);
    CHECK_INT(run("no-such.zip", "pw", &res), QCC_UNPACK_IO);
    CHECK(access("unpack-out.json", F_OK) != 0);

    unlink("unpack-good.zip");
    unlink("unpack-corp.zip");
    unlink("unpack-count.zip");
    unlink("unpack-id.zip");
    unlink("unpack-none.zip");

    test_big();

    CHECK(chdir("..") == 0 && rmdir(dir) == 0);

    return UNIT_DONE("test_unpack");
}
