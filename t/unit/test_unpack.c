/* Unit tests of order unpacking (src/qcc_unpack.c). */

#include <stdio.h>
#include <unistd.h>
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
run(const char *zip, const char *password, qcc_unpack_result_t *res)
{
    qcc_unpack_job_t  job;

    memset(&job, 0, sizeof(qcc_unpack_job_t));
    job.zip_path = zip;
    job.out_path = "unpack-out.json";
    job.password = (const unsigned char *) password;
    job.password_len = strlen(password);
    job.names = corp_names;
    job.nnames = 2;

    return qcc_unpack(&job, res);
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


int
main(void)
{
    char                *out;
    size_t               len;
    struct stat          st;
    zipw_entry_t         es[3];
    qcc_unpack_result_t  res;

    unlink("unpack-out.json");

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
    CHECK_INT(run("test_unpack.c", "pw", &res), QCC_UNPACK_ZIP);
    CHECK_INT(run("no-such.zip", "pw", &res), QCC_UNPACK_IO);
    CHECK(access("unpack-out.json", F_OK) != 0);

    unlink("unpack-good.zip");
    unlink("unpack-corp.zip");
    unlink("unpack-count.zip");
    unlink("unpack-id.zip");
    unlink("unpack-none.zip");

    return UNIT_DONE("test_unpack");
}
