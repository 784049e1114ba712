/* Unit tests of the streaming push-file validator (src/qcc_pushjson.c). */

#define _GNU_SOURCE                 /* memmem() */

#include <stdint.h>
#include <stdlib.h>

#include "unit.h"
#include "qcc_pushjson.h"


/* The dd_risk_corp.json sample of customer-risk-push.txt, as printed. */
static const char  risk_sample[] =
    "{\n\n"
    "\"pushDate\": \"2022-06-07 10:13:42\",\n\n"
    "\"totalSize\": 4,\n\n"
    "\"result\": [\n\n"
    "{\n\n"
    "\"id\": \"ffedc4cfc1754968ae6afadb695a9d49\",\n\n"
    "\"corpKeyNo\": \"00a0e21af7e492dbe88a54682fd4a2b2\",\n\n"
    "\"corpName\": \"四川中津建设集团有限公司\",\n\n"
    "\"monitorContent\": \"该企业由原“较高风险”上升至“高风险”\",\n\n"
    "\"monitorLevel\": \"高风险信息\",\n\n"
    "\"monitorType\": \"高风险\",\n\n"
    "\"score\": 82,\n\n"
    "\"changeDate\": \"2022-06-01\"\n\n"
    "}\n\n"
    "]\n\n"
    "}\n";

/* The dd_corp.json sample of annual-inspection-push.txt. */
static const char  corp_sample[] =
    "{\r\n"
    "\"pushDate\": \"2021-03-16 18:52:26\",\r\n"
    "\"totalSize\": 2,\r\n"
    "\"result\": [\r\n"
    "{\r\n"
    "\"id\": \"102777af7976388cc5b483c112ead195c\",\r\n"
    "\"corpKeyNo\": \"3df235496db8f77a967151c1c74bdd44\",\r\n"
    "\"corpName\": \"吴江吉吉纺织有限公司\",\r\n"
    " \"type\": \"1\",\r\n"
    "\"typeName\": \"吊销或注销\",\r\n"
    "\"category\": \"1\",\r\n"
    "\"categoryName\": \"高风险信息\",\r\n"
    "\"changeExtend\": \"{\\\"date\\\":\\\"2020-12-03\\\"}\",\r\n"
    "\"changeContent\": \"已吊销\",\r\n"
    "\"changeDate\": \"2021-03-13\",\r\n"
    "\"checkId\": \"\",\r\n"
    "\"creditCode\": \"\",\r\n"
    "\"regNo\": \"\"\r\n"
    "},\r\n"
    "{\r\n"
    "\"id\": \"10d5ade9af17c2140a625c91a3c7d2f21\",\r\n"
    "\"corpKeyNo\": \"20fca223f172c505e32b6954d0642079\",\r\n"
    "\"corpName\": \"深圳中海合润十五号投资企业(有限合伙)\",\r\n"
    "\"type\": \"2\",\r\n"
    "\"typeName\": \"经营异常\",\r\n"
    "\"category\": \"1\",\r\n"
    "\"categoryName\": \"高风险信息\",\r\n"
    "\"changeContent\": \"被列入经营异常\",\r\n"
    "\"changeExtend\": \"{\\\"date\\\":\\\"2020-12-03\\\"}\",\r\n"
    "\"changeDate\": \"2021-03-13\",\r\n"
    "\"checkId\": \"47AA266A29ADD663D7081547F05F810A\",\r\n"
    "\"creditCode\": \"9144030031940738XA\",\r\n"
    "\"regNo\": \"440303602422222\"\r\n"
    "}\r\n"
    "]\r\n"
    "}\r\n";


/* What a run ends with, to compare runs fed in different splits. */
typedef struct {
    int            rc;
    uint64_t       offset;
    uint64_t       records;
    uint64_t       total;
    uint64_t       callbacks;
    size_t         mem_peak;
    char           err[QCC_PUSHJSON_ERRLEN];
    char           date[QCC_PUSHJSON_DATE_MAX + 1];
    char           ids[256];          /* the ids joined by ',' */
    const char    *doc;               /* to check record bytes */
    size_t         doc_len;
    int            bad_bytes;         /* a record not found in doc */
    uint64_t       refuse_at;         /* on_record refuses record n */
} run_t;


static int
on_record(void *data, uint64_t n, const unsigned char *rec, size_t len,
    const char *id)
{
    run_t   *r = data;
    size_t   l;

    r->callbacks++;

    if (n != r->callbacks) {
        r->bad_bytes++;
    }

    /* the record bytes are exactly a '{'..'}' span of the document */
    if (len < 2 || rec[0] != '{' || rec[len - 1] != '}'
        || (r->doc && !memmem(r->doc, r->doc_len, rec, len)))
    {
        r->bad_bytes++;
    }

    l = strlen(r->ids);
    snprintf(r->ids + l, sizeof(r->ids) - l, "%s%s", l ? "," : "", id);

    return (r->refuse_at && n == r->refuse_at) ? -1 : 0;
}


/*
 * Feeds doc in pieces: step 0 whole, step 1 byte by byte, otherwise in two
 * pieces split at split.
 */
static void
run(const char *doc, size_t len, size_t record_max, size_t step,
    size_t split, run_t *r, uint64_t refuse_at, unsigned flags)
{
    int                    rc;
    size_t                 i, n;
    qcc_pushjson_t         ctx;
    qcc_pushjson_limits_t  lim;

    memset(r, 0, sizeof(run_t));
    r->doc = doc;
    r->doc_len = len;
    r->refuse_at = refuse_at;

    memset(&lim, 0, sizeof(lim));
    lim.record_max = record_max;
    lim.flags = flags;
    lim.on_record = on_record;
    lim.data = r;

    qcc_pushjson_init(&ctx, &lim);

    rc = QCC_PUSHJSON_OK;

    if (step == 0) {
        rc = qcc_pushjson_feed(&ctx, (const unsigned char *) doc, len);

    } else if (step == 1) {
        for (i = 0; i < len && rc == QCC_PUSHJSON_OK; i++) {
            rc = qcc_pushjson_feed(&ctx, (const unsigned char *) doc + i, 1);
        }

    } else {
        n = split < len ? split : len;
        rc = qcc_pushjson_feed(&ctx, (const unsigned char *) doc, n);
        if (rc == QCC_PUSHJSON_OK) {
            /* an empty chunk changes nothing */
            rc = qcc_pushjson_feed(&ctx, (const unsigned char *) doc, 0);
        }
        if (rc == QCC_PUSHJSON_OK) {
            rc = qcc_pushjson_feed(&ctx, (const unsigned char *) doc + n,
                                   len - n);
        }
    }

    r->rc = qcc_pushjson_finish(&ctx);

    /* feeding stops at the first error, which finish returns again */
    if (rc != QCC_PUSHJSON_OK && r->rc != rc) {
        r->rc = -1;
    }

    r->offset = qcc_pushjson_error_offset(&ctx);
    r->records = ctx.records;
    r->total = ctx.total_size;
    r->mem_peak = ctx.mem_peak;
    snprintf(r->err, sizeof(r->err), "%s", qcc_pushjson_error(&ctx));
    snprintf(r->date, sizeof(r->date), "%s", ctx.push_date);

    qcc_pushjson_free(&ctx);
}


static int
same(const run_t *a, const run_t *b)
{
    return a->rc == b->rc && a->offset == b->offset
           && strcmp(a->err, b->err) == 0
           && strcmp(a->ids, b->ids) == 0
           && a->records == b->records && a->bad_bytes == b->bad_bytes;
}


/*
 * Runs doc whole, byte by byte and split at every point, with cJSON and
 * with the native id check: all must agree.  Returns the whole run in *r.
 */
static void
run_all(const char *doc, size_t len, size_t record_max, run_t *r)
{
    size_t  k;
    int     split_ok;
    run_t   o;

    run(doc, len, record_max, 0, 0, r, 0, 0);

    run(doc, len, record_max, 0, 0, &o, 0, QCC_PUSHJSON_NO_CJSON);
    CHECK(same(r, &o));

    run(doc, len, record_max, 1, 0, &o, 0, QCC_PUSHJSON_NO_CJSON);
    CHECK(same(r, &o));

    split_ok = 1;

    for (k = 0; k <= len; k++) {
        run(doc, len, record_max, 2, k, &o, 0,
            (k & 1) ? QCC_PUSHJSON_NO_CJSON : 0);

        if (!same(r, &o)) {
            split_ok = 0;
            fprintf(stderr, "split at %zu: rc %d \"%s\", whole: rc %d "
                    "\"%s\"\n", k, o.rc, o.err, r->rc, r->err);
            break;
        }
    }

    CHECK(split_ok);
}


/* A malformed or valid case: code, error offset, reason substring. */
typedef struct {
    const char  *doc;
    int          rc;
    long long    offset;      /* -1: not checked */
    const char  *reason;
} case_t;


#define OK_HEAD  "{\"pushDate\":\"d\",\"totalSize\":1,\"result\":["
#define OK_REC   "{\"id\":\"a\"}"

static const case_t  cases[] = {
    /* valid */
    { OK_HEAD OK_REC "]}", QCC_PUSHJSON_OK, 0, "" },
    { " \t\r\n" OK_HEAD " " OK_REC " ] } \n\n", QCC_PUSHJSON_OK, 0, "" },
    { "\xef\xbb\xbf" OK_HEAD OK_REC "]}", QCC_PUSHJSON_OK, 0, "" },
    { "{\"result\":[{\"id\":\"a\"},{\"x\":[1,{}],\"id\":\"b\"}],"
      "\"pushDate\":\"d\",\"totalSize\":\"2\"}", QCC_PUSHJSON_OK, 0, "" },
    { "{\"pushDate\":\"d\",\"totalSize\":0,\"result\":[]}",
      QCC_PUSHJSON_OK, 0, "" },
    /* whitespace in empty containers (a fuzz find) */
    { "{ \"pushDate\":\"d\",\"totalSize\":0,\"result\":[\n\n],\"x\":[[ \t]],"
      "\"y\":{ \r\n }, \"z\" : [ { } , [ ] ] }", QCC_PUSHJSON_OK, 0, "" },
    { "{\"push\\u0044ate\":\"\\ud83d\\ude00\\u00e9\\\"\",\"totalSize\":0,"
      "\"result\":[],\"other\":{\"a\":[true,false,null,-0.5e+3,1E2,0]},"
      "\"\":\"\"}", QCC_PUSHJSON_OK, 0, "" },
    { "{\"pushDate\":\"d\",\"totalSize\":1,\"result\":[{\"id\":\"a\","
      "\"id\":5}]}", QCC_PUSHJSON_OK, 0, "" },

    /* truncated */
    { "", QCC_PUSHJSON_ERR_TRUNCATED, 0, "at byte 0: empty input" },
    { "   ", QCC_PUSHJSON_ERR_TRUNCATED, 3, "unexpected end" },
    { "\xef\xbb\xbf", QCC_PUSHJSON_ERR_TRUNCATED, 3, "at byte 3" },
    { OK_HEAD OK_REC "]", QCC_PUSHJSON_ERR_TRUNCATED, 51, "at byte 51" },
    { OK_HEAD "{\"id\":\"a", QCC_PUSHJSON_ERR_TRUNCATED, 48, "" },
    { OK_HEAD "{\"id\":\"\\u00", QCC_PUSHJSON_ERR_TRUNCATED, -1, "" },
    { "{\"pushDate\":\"\xe5\x9b", QCC_PUSHJSON_ERR_TRUNCATED, -1, "" },
    { "{\"pushDate\":\"d\",\"totalSize\":1", QCC_PUSHJSON_ERR_TRUNCATED,
      -1, "" },
    { "{\"pushDate\":\"d\",\"x\":tru", QCC_PUSHJSON_ERR_TRUNCATED, -1, "" },

    /* trailing garbage */
    { OK_HEAD OK_REC "]}x", QCC_PUSHJSON_ERR_TRAILING, 52,
      "at byte 52: data after the JSON text" },
    { OK_HEAD OK_REC "]} {}", QCC_PUSHJSON_ERR_TRAILING, 53, "" },

    /* syntax */
    { "{\"pushDate\":\"d\",}", QCC_PUSHJSON_ERR_SYNTAX, 16, "" },
    { "{\"pushDate\" \"d\"}", QCC_PUSHJSON_ERR_SYNTAX, 12, "" },
    { "{\"a\":[1,]}", QCC_PUSHJSON_ERR_SYNTAX, 8, "" },
    { "{\"a\":[1}", QCC_PUSHJSON_ERR_SYNTAX, 7, "" },
    { "{\"a\":01}", QCC_PUSHJSON_ERR_SYNTAX, 6, "" },
    { "{\"a\":1.}", QCC_PUSHJSON_ERR_SYNTAX, 7, "" },
    { "{\"a\":+1}", QCC_PUSHJSON_ERR_SYNTAX, 5, "" },
    { "{\"a\":.5}", QCC_PUSHJSON_ERR_SYNTAX, 5, "" },
    { "{\"a\":1e}", QCC_PUSHJSON_ERR_SYNTAX, 7, "" },
    { "{\"a\":-}", QCC_PUSHJSON_ERR_SYNTAX, 6, "" },
    { "{\"a\":trux}", QCC_PUSHJSON_ERR_SYNTAX, 8, "" },
    { "{\"a\":True}", QCC_PUSHJSON_ERR_SYNTAX, 5, "" },
    { "{\"a\":\"\t\"}", QCC_PUSHJSON_ERR_SYNTAX, 6, "control character" },
    { "{\"a\":\"\\x\"}", QCC_PUSHJSON_ERR_SYNTAX, 7, "bad escape" },
    { "{\"a\":\"\\u12g4\"}", QCC_PUSHJSON_ERR_SYNTAX, 10, "bad \\u" },
    { "{\"a\":1\x01}", QCC_PUSHJSON_ERR_SYNTAX, 6, "unexpected byte" },
    { "{'a':1}", QCC_PUSHJSON_ERR_SYNTAX, 1, "unexpected character" },
    { "\xef\xbb{}", QCC_PUSHJSON_ERR_SYNTAX, 2, "byte order mark" },
    { "{\"a\":\xe5\x9b\x9b}", QCC_PUSHJSON_ERR_SYNTAX, 5, "" },

    /* bad UTF-8 */
    { "{\"a\":\"\x80\"}", QCC_PUSHJSON_ERR_UTF8, 6, "invalid UTF-8" },
    { "{\"a\":\"\xc0\xaf\"}", QCC_PUSHJSON_ERR_UTF8, 6, "" },
    { "{\"a\":\"\xc1\xbf\"}", QCC_PUSHJSON_ERR_UTF8, 6, "" },
    { "{\"a\":\"\xe0\x80\xaf\"}", QCC_PUSHJSON_ERR_UTF8, 7, "" },
    { "{\"a\":\"\xf0\x80\x80\xaf\"}", QCC_PUSHJSON_ERR_UTF8, 7, "" },
    { "{\"a\":\"\xed\xa0\x80\"}", QCC_PUSHJSON_ERR_UTF8, 7, "" },
    { "{\"a\":\"\xed\xbf\xbf\"}", QCC_PUSHJSON_ERR_UTF8, 7, "" },
    { "{\"a\":\"\xf4\x90\x80\x80\"}", QCC_PUSHJSON_ERR_UTF8, 7, "" },
    { "{\"a\":\"\xf5\x80\x80\x80\"}", QCC_PUSHJSON_ERR_UTF8, 6, "" },
    { "{\"a\":\"\xff\"}", QCC_PUSHJSON_ERR_UTF8, 6, "" },
    { "{\"a\":\"\xe5\x9b\"}", QCC_PUSHJSON_ERR_UTF8, 8, "" },
    { "{\"a\":\"\xe5\"}", QCC_PUSHJSON_ERR_UTF8, 7, "" },
    { OK_HEAD "{\"id\":\"\xe5\x9b\xdb\"}]}", QCC_PUSHJSON_ERR_UTF8, 49,
      "at byte 49: invalid UTF-8 (in record 1 at byte 40)" },
    { "{\"a\":\"\\ud800\"}", QCC_PUSHJSON_ERR_UTF8, 12, "unpaired surrogate" },
    { "{\"a\":\"\\udc00\"}", QCC_PUSHJSON_ERR_UTF8, 11, "surrogate" },
    { "{\"a\":\"\\ud800\\u0041\"}", QCC_PUSHJSON_ERR_UTF8, 17, "" },
    { "{\"a\":\"\\ud800\\n\"}", QCC_PUSHJSON_ERR_UTF8, 13, "" },

    /* wrong types */
    { "[]", QCC_PUSHJSON_ERR_TOP, 0, "not an object" },
    { "\"x\"", QCC_PUSHJSON_ERR_TOP, 0, "" },
    { "{\"pushDate\":5}", QCC_PUSHJSON_ERR_PUSHDATE, 12,
      "pushDate is not a string" },
    { "{\"pushDate\":null}", QCC_PUSHJSON_ERR_PUSHDATE, 12, "" },
    { "{\"pushDate\":\"\"}", QCC_PUSHJSON_ERR_PUSHDATE, 13,
      "pushDate is empty" },
    { "{\"pushDate\":\"a\\u0000\"}", QCC_PUSHJSON_ERR_PUSHDATE, 20, "NUL" },
    { "{\"pushDate\":\"0123456789012345678901234567890123456789"
      "0123456789012345678901234\"}", QCC_PUSHJSON_ERR_PUSHDATE, 77,
      "longer than 64" },
    { "{\"totalSize\":-1}", QCC_PUSHJSON_ERR_TOTALSIZE, 13, "" },
    { "{\"totalSize\":1.0}", QCC_PUSHJSON_ERR_TOTALSIZE, 14,
      "not an integer" },
    { "{\"totalSize\":1e3}", QCC_PUSHJSON_ERR_TOTALSIZE, 14, "" },
    { "{\"totalSize\":true}", QCC_PUSHJSON_ERR_TOTALSIZE, 13, "" },
    { "{\"totalSize\":[]}", QCC_PUSHJSON_ERR_TOTALSIZE, 13, "" },
    { "{\"totalSize\":\"\"}", QCC_PUSHJSON_ERR_TOTALSIZE, 14, "" },
    { "{\"totalSize\":\"01\"}", QCC_PUSHJSON_ERR_TOTALSIZE, 16, "" },
    { "{\"totalSize\":\" 1\"}", QCC_PUSHJSON_ERR_TOTALSIZE, 16, "" },
    { "{\"totalSize\":\"1x\"}", QCC_PUSHJSON_ERR_TOTALSIZE, 16, "" },
    { "{\"totalSize\":1234567890123456}", QCC_PUSHJSON_ERR_TOTALSIZE, 28,
      "longer than 15 digits" },
    { "{\"result\":{}}", QCC_PUSHJSON_ERR_RESULT, 10, "not an array" },
    { "{\"result\":\"[]\"}", QCC_PUSHJSON_ERR_RESULT, 10, "" },
    { "{\"result\":[\"a\"]}", QCC_PUSHJSON_ERR_RECORD, 11,
      "record 1 at byte 11: not an object" },
    { "{\"result\":[{\"id\":\"a\"},[]]}", QCC_PUSHJSON_ERR_RECORD, 22,
      "record 2 at byte 22" },
    { "{\"result\":[null]}", QCC_PUSHJSON_ERR_RECORD, 11, "" },

    /* missing members */
    { "{\"totalSize\":0,\"result\":[]}", QCC_PUSHJSON_ERR_PUSHDATE, 26,
      "at byte 26: missing pushDate" },
    { "{\"pushDate\":\"d\",\"result\":[]}", QCC_PUSHJSON_ERR_TOTALSIZE, 27,
      "missing totalSize" },
    { "{\"pushDate\":\"d\",\"totalSize\":0}", QCC_PUSHJSON_ERR_RESULT, 29,
      "missing result" },

    /* records */
    { OK_HEAD "{\"ID\":\"a\"}]}", QCC_PUSHJSON_ERR_ID_MISSING, 40,
      "record 1 at byte 40: missing string id" },
    { OK_HEAD "{}]}", QCC_PUSHJSON_ERR_ID_MISSING, 40, "" },
    { OK_HEAD "{\"x\":{\"id\":\"a\"}}]}", QCC_PUSHJSON_ERR_ID_MISSING, 40,
      "" },
    { OK_HEAD "{\"id\":\"\"}]}", QCC_PUSHJSON_ERR_ID_EMPTY, 40,
      "record 1 at byte 40: id is empty" },
    { OK_HEAD "{\"id\":\"\\u0000\"}]}", QCC_PUSHJSON_ERR_ID_EMPTY, 40, "" },
    { OK_HEAD "{\"id\":17}]}", QCC_PUSHJSON_ERR_ID_TYPE, 40,
      "id is not a string" },
    { OK_HEAD "{\"id\":null}]}", QCC_PUSHJSON_ERR_ID_TYPE, 40, "" },
    { OK_HEAD "{\"id\":[\"a\"]}]}", QCC_PUSHJSON_ERR_ID_TYPE, 40, "" },
    /* Debian's cJSON (CVE-2023-26819 fix) parses numbers of any length */
    { OK_HEAD "{\"id\":\"a\",\"n\":1234567890123456789012345678901234567890"
      "123456789012345678901234567890}]}", QCC_PUSHJSON_OK, 0, "" },

    /* the first "id" member as cJSON finds it, with both checks */
    { OK_HEAD "{\"i\\u0064\":\"a\"}]}", QCC_PUSHJSON_OK, 0, "" },
    { OK_HEAD "{\"id\\u0000x\":\"a\"}]}", QCC_PUSHJSON_OK, 0, "" },
    { OK_HEAD "{\"\\u0000id\":\"a\"}]}", QCC_PUSHJSON_ERR_ID_MISSING, 40,
      "" },
    { OK_HEAD "{\"i\":\"a\",\"idx\":\"a\",\"Id\":\"a\"}]}",
      QCC_PUSHJSON_ERR_ID_MISSING, 40, "" },
    { OK_HEAD "{\"id\":5,\"id\":\"a\"}]}", QCC_PUSHJSON_ERR_ID_TYPE, 40, "" },
    { OK_HEAD "{\"id\":{\"id\":\"a\"}}]}", QCC_PUSHJSON_ERR_ID_TYPE, 40,
      "" },
    { OK_HEAD "{\"id\":\"\\u0000a\"}]}", QCC_PUSHJSON_ERR_ID_EMPTY, 40,
      "" },
    { OK_HEAD "{\"x\":{\"id\":\"b\"},\"id\":\"\\u4e2d\\\"\xe4\xb8\xad\"}]}",
      QCC_PUSHJSON_OK, 0, "" },
    { OK_HEAD "{\"id\":\"a\",\"x\":1}x]}", QCC_PUSHJSON_ERR_SYNTAX, 56, "" },
    { OK_HEAD "{\"x\":1}x]}", QCC_PUSHJSON_ERR_ID_MISSING, 40, "" },

    /* counts */
    { "{\"pushDate\":\"d\",\"totalSize\":2,\"result\":[" OK_REC "]}",
      QCC_PUSHJSON_ERR_COUNT, 51, "1 records, but totalSize 2" },
    { "{\"pushDate\":\"d\",\"result\":[" OK_REC "],\"totalSize\":\"0\"}",
      QCC_PUSHJSON_ERR_COUNT, 52, "totalSize 0, but 1 records before" },
    { OK_HEAD OK_REC "," OK_REC "]}", QCC_PUSHJSON_ERR_COUNT, 51,
      "record 2 at byte 51: more records than totalSize 1" },

    /* duplicate top-level keys */
    { "{\"pushDate\":\"d\",\"pushDate\":\"e\"}", QCC_PUSHJSON_ERR_DUPKEY, 16,
      "at byte 16: duplicate top-level key \"pushDate\"" },
    { "{\"result\":[],\"x\":1,\"resul\\u0074\":[]}", QCC_PUSHJSON_ERR_DUPKEY,
      19, "\"result\"" },
    { "{\"x\":1,\"x\":1}", QCC_PUSHJSON_ERR_DUPKEY, 7, "" },
    { "{\"\":1,\"\":1}", QCC_PUSHJSON_ERR_DUPKEY, 6, "" },
    { "{\"a\\u0000\":1,\"a\":1}", QCC_PUSHJSON_ERR_PUSHDATE, 18,
      "missing pushDate" },
    /* duplicates inside records or other members are cJSON's business */
    { "{\"x\":{\"a\":1,\"a\":2},\"pushDate\":\"d\",\"totalSize\":0,"
      "\"result\":[]}", QCC_PUSHJSON_OK, 0, "" },
};


static void
test_cases(void)
{
    size_t          i;
    run_t           r;
    const case_t   *c;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        c = &cases[i];

        run_all(c->doc, strlen(c->doc), 0, &r);

        if (r.rc != c->rc
            || (c->offset >= 0 && c->rc != QCC_PUSHJSON_OK
                && (long long) r.offset != c->offset)
            || strstr(r.err, c->reason) == NULL)
        {
            fprintf(stderr, "case %zu: rc %d (%s) at %llu \"%s\"\n", i, r.rc,
                    qcc_pushjson_strerror(r.rc),
                    (unsigned long long) r.offset, r.err);
        }

        CHECK_INT(r.rc, c->rc);

        if (c->rc != QCC_PUSHJSON_OK && c->offset >= 0) {
            CHECK_INT(r.offset, c->offset);
        }

        CHECK(strstr(r.err, c->reason) != NULL);

        /* every failure names its byte offset */
        if (c->rc != QCC_PUSHJSON_OK) {
            CHECK(strstr(r.err, "byte ") != NULL);
        } else {
            CHECK_STR(r.err, "");
        }
    }
}


/*
 * Long strings, which the scanner skips 16 bytes at a time, Chinese text
 * included: a bad byte put at each place of one is reported as the
 * byte-wise states report it (run_all() feeds byte by byte too), at the
 * same byte, and nothing else changes the verdict.
 */
static void
test_strings(void)
{
    size_t       i, k, n, at;
    run_t        r;
    char         doc[512];

    static const char   head[] = OK_HEAD "{\"id\":\"a\",\"s\":\"";
    static const char   tail[] = "\"}]}";

    /* ASCII, 2, 3 and 4-byte sequences, E0 and ED leads, escapes */
    static const char   text[] =
        "ab\xe5\x9b\x9b\xe5\xb7\x9d 2020 \xe5\xb9\xb4\xc3\xa9\xf0\x9f\x98"
        "\x80\xe0\xa4\x85\xed\x9f\xbf\\n\\\"x\\u4e2d\xe4\xb8\xad\xe6\x96"
        "\x87\xe4\xb8\xad\xe6\x96\x87\xe4\xb8\xad\xe6\x96\x87\xef\xbf\xbd"
        "\xf4\x8f\xbf\xbf-end";

    static const char  *bad[] = {
        "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80",
        "\xed\xa0\x80", "\xe4\xb8", "\xe4" "a", "\xf0\x80\x80\x80",
        "\xf4\x90\x80\x80", "\xf5", "\xff", "\x01", "\x1f", "\\x",
        "\\u12", "\\ud800x", "\"", "\\", "\xe4\xb8\"", "\t"
    };

    n = snprintf(doc, sizeof(doc), "%s%s%s", head, text, tail);
    run_all(doc, n, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_OK);

    for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        for (i = 0; i < sizeof(text) - 1; i++) {
            n = snprintf(doc, sizeof(doc), "%s%.*s%s%s%s", head, (int) i,
                         text, bad[k], text + i, tail);
            run_all(doc, n, 0, &r);
            CHECK(r.rc != QCC_PUSHJSON_OK || bad[k][0] == '\\'
                  || bad[k][0] == '"');
        }
    }

    /* where: a stray continuation byte in the middle of Chinese text */
    at = sizeof(head) - 1 + 40;
    n = snprintf(doc, sizeof(doc), "%s%.40s\x80%s%s", head, text, text + 40,
                 tail);
    run_all(doc, n, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_UTF8);
    CHECK_INT(r.offset, at);

    /* a lead whose sequence is cut short by ASCII: the ASCII byte */
    n = snprintf(doc, sizeof(doc), "%s%.43s\xe4" "a%s%s", head, text,
                 text + 43, tail);
    run_all(doc, n, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_UTF8);
    CHECK_INT(r.offset, sizeof(head) - 1 + 44);
}


static void
test_samples(void)
{
    static const char  nul[] = OK_HEAD OK_REC "]}\n";

    run_t  r;
    char   risk[sizeof(risk_sample)], *p;

    /* a NUL after the text is garbage (cJSON would stop there) */
    run_all(nul, sizeof(nul), 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_TRAILING);
    CHECK_INT(r.offset, sizeof(nul) - 1);

    /* as printed: "totalSize": 4 with one record */
    run_all(risk_sample, sizeof(risk_sample) - 1, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_COUNT);
    CHECK(strstr(r.err, "1 records, but totalSize 4") != NULL);

    memcpy(risk, risk_sample, sizeof(risk_sample));
    p = strstr(risk, "\"totalSize\": 4");
    p[13] = '1';

    run_all(risk, sizeof(risk) - 1, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_OK);
    CHECK_STR(r.err, "");
    CHECK_INT(r.records, 1);
    CHECK_INT(r.total, 1);
    CHECK_INT(r.callbacks, 1);
    CHECK_INT(r.bad_bytes, 0);
    CHECK_STR(r.date, "2022-06-07 10:13:42");
    CHECK_STR(r.ids, "ffedc4cfc1754968ae6afadb695a9d49");

    run_all(corp_sample, sizeof(corp_sample) - 1, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_OK);
    CHECK_INT(r.records, 2);
    CHECK_INT(r.total, 2);
    CHECK_INT(r.callbacks, 2);
    CHECK_INT(r.bad_bytes, 0);
    CHECK_STR(r.date, "2021-03-16 18:52:26");
    CHECK_STR(r.ids, "102777af7976388cc5b483c112ead195c,"
                     "10d5ade9af17c2140a625c91a3c7d2f21");

    /* the id given to the consumer is decoded, with both checks */
    {
        static const char  esc[] = OK_HEAD
            "{\"id\":\"\\u4e2d\\\"\xe5\x9b\x9b\\ud83d\\ude00\"}]}";

        run_all(esc, sizeof(esc) - 1, 0, &r);
        CHECK_INT(r.rc, QCC_PUSHJSON_OK);
        CHECK_STR(r.ids, "中\"四😀");
    }

    /* a record of the corp sample over a small cap, at every split */
    run_all(corp_sample, sizeof(corp_sample) - 1, 256, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_RECORD_SIZE);
    CHECK_INT(r.offset, strstr(corp_sample, "{\r\n\"id\"") - corp_sample);
    CHECK(strstr(r.err, "record 1 at byte 69: larger than 256 bytes")
          != NULL);

    /* the consumer refuses the second record */
    run(corp_sample, sizeof(corp_sample) - 1, 0, 0, 0, &r, 2, 0);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_CALLBACK);
    CHECK_INT(r.callbacks, 2);
    CHECK(strstr(r.err, "record 2 at byte ") != NULL);
}


/* "{...,"x":" + k times "[" ... "]" + "}" */
static size_t
nest(char *buf, const char *head, size_t k, const char *tail)
{
    size_t  n;

    n = strlen(head);
    memcpy(buf, head, n);
    memset(buf + n, '[', k);
    memset(buf + n + k, ']', k);
    n += 2 * k;
    memcpy(buf + n, tail, strlen(tail) + 1);

    return n + strlen(tail);
}


static void
test_depth(void)
{
    char    *buf;
    size_t   n;
    run_t    r;

    buf = malloc(300000);

    /* the top-level object is depth 1: 63 more arrays fit in 64 */
    n = nest(buf, "{\"pushDate\":\"d\",\"totalSize\":0,\"result\":[],\"x\":",
             63, "}");
    run_all(buf, n, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_OK);

    n = nest(buf, "{\"pushDate\":\"d\",\"totalSize\":0,\"result\":[],\"x\":",
             64, "}");
    run_all(buf, n, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_DEPTH);
    CHECK_INT(r.offset, 46 + 63);
    CHECK(strstr(r.err, "at byte 109: nested deeper than 64") != NULL);

    /* a record is depth 3 */
    n = nest(buf, OK_HEAD "{\"id\":\"a\",\"x\":", 61, "}]}");
    run_all(buf, n, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_OK);

    n = nest(buf, OK_HEAD "{\"id\":\"a\",\"x\":", 62, "}]}");
    run_all(buf, n, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_DEPTH);

    /* very deep input costs neither stack nor memory */
    n = nest(buf, "{\"x\":", 100000, "}");
    run(buf, n, 0, 0, 0, &r, 0, 0);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_DEPTH);
    CHECK_INT(r.offset, 5 + 63);

    free(buf);
}


/* A record of exactly size bytes: {"id":"a","p":"xxx...x"} */
static size_t
fat_record(char *buf, const char *head, size_t size, const char *tail)
{
    size_t  n, pad;

    n = strlen(head);
    memcpy(buf, head, n);
    memcpy(buf + n, "{\"id\":\"a\",\"p\":\"", 15);
    pad = size - 17;
    memset(buf + n + 15, 'x', pad);
    memcpy(buf + n + 15 + pad, "\"}", 2);
    n += size;
    memcpy(buf + n, tail, strlen(tail) + 1);

    return n + strlen(tail);
}


static void
test_caps(void)
{
    char    *buf;
    size_t   n, k;
    run_t    r, o;

    buf = malloc(4 * 1024 * 1024);

    /* the default cap: 1 MiB fits, one byte more does not */
    n = fat_record(buf, OK_HEAD, QCC_PUSHJSON_RECORD_MAX, "]}");
    run(buf, n, 0, 0, 0, &r, 0, 0);
    CHECK_INT(r.rc, QCC_PUSHJSON_OK);
    CHECK_INT(r.mem_peak, QCC_PUSHJSON_RECORD_MAX);
    run(buf, n, 0, 1, 0, &o, 0, 0);
    CHECK(same(&r, &o));

    n = fat_record(buf, OK_HEAD, QCC_PUSHJSON_RECORD_MAX + 1, "]}");
    run(buf, n, 0, 0, 0, &r, 0, 0);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_RECORD_SIZE);
    CHECK_INT(r.offset, 40);
    CHECK_STR(r.err, "record 1 at byte 40: larger than 1048576 bytes");
    CHECK(r.mem_peak <= QCC_PUSHJSON_RECORD_MAX);
    run(buf, n, 0, 1, 0, &o, 0, 0);
    CHECK(same(&r, &o));
    run(buf, n, 0, 2, 40 + QCC_PUSHJSON_RECORD_MAX, &o, 0, 0);
    CHECK(same(&r, &o));
    run(buf, n, 0, 2, 41 + QCC_PUSHJSON_RECORD_MAX, &o, 0, 0);
    CHECK(same(&r, &o));

    /* the record over the cap is refused before a later syntax error */
    n = fat_record(buf, OK_HEAD, 100, "]}");
    buf[n - 3] = '\x01';
    run_all(buf, n, 64, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_RECORD_SIZE);
    n = fat_record(buf, OK_HEAD, 64, "]}");
    run_all(buf, n, 64, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_OK);
    n = fat_record(buf, OK_HEAD, 65, "]}");
    run_all(buf, n, 64, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_RECORD_SIZE);
    CHECK_STR(r.err, "record 1 at byte 40: larger than 64 bytes");

    /* top-level keys are kept for the duplicate check: 1024 bytes */
    /* (each key costs its length + 2: 84 * 12 + 4 + 10 = 1022) */
    n = (size_t) sprintf(buf, "{");
    for (k = 0; k < 84; k++) {
        n += (size_t) sprintf(buf + n, "\"key%07zu\":%zu,", k, k);
    }
    n += (size_t) sprintf(buf + n, "\"k\\u0031\":1,\"pushDate\":\"d\"}");
    run_all(buf, n, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_TOTALSIZE);
    n += (size_t) sprintf(buf + n - 1, ",\"result\":[]}") - 1;
    run_all(buf, n, 0, &r);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_KEYS);
    CHECK(strstr(r.err, "top-level keys longer than 1024 bytes") != NULL);
    CHECK_INT(r.offset, n - 11);

    memcpy(buf, "{\"", 2);
    memset(buf + 2, 'k', 2000);
    memcpy(buf + 2002, "\":1}", 4);
    run(buf, 2006, 0, 0, 0, &r, 0, 0);
    CHECK_INT(r.rc, QCC_PUSHJSON_ERR_KEYS);
    CHECK_INT(r.offset, 2 + 1022);
    run(buf, 2006, 0, 1, 0, &o, 0, 0);
    CHECK(same(&r, &o));

    /* other members are scanned, never held, whatever their size */
    n = fat_record(buf, "{\"other\":[", 3 * 1024 * 1024,
                   "],\"pushDate\":\"d\",\"totalSize\":1,\"result\":["
                   OK_REC "]}");
    run(buf, n, 1024, 0, 0, &r, 0, 0);
    CHECK_INT(r.rc, QCC_PUSHJSON_OK);
    CHECK(r.mem_peak <= 1024);
    run(buf, n, 1024, 2, n / 2, &o, 0, 0);
    CHECK(same(&r, &o));

    free(buf);
}


static void
test_api(void)
{
    int                    rc;
    qcc_pushjson_t         ctx;
    static const char      doc[] = OK_HEAD OK_REC "]}";

    qcc_pushjson_init(&ctx, NULL);
    CHECK_INT(qcc_pushjson_feed(&ctx, (const unsigned char *) doc,
                                sizeof(doc) - 1), QCC_PUSHJSON_OK);
    CHECK_INT(qcc_pushjson_finish(&ctx), QCC_PUSHJSON_OK);
    CHECK_INT(qcc_pushjson_finish(&ctx), QCC_PUSHJSON_OK);
    CHECK_INT(ctx.records, 1);
    CHECK_INT(ctx.total_size, 1);
    CHECK_STR(ctx.push_date, "d");
    CHECK_INT(ctx.push_date_len, 1);
    CHECK_INT(ctx.record_peak, 10);

    rc = qcc_pushjson_feed(&ctx, (const unsigned char *) " ", 1);
    CHECK_INT(rc, QCC_PUSHJSON_ERR_STATE);
    CHECK_INT(qcc_pushjson_finish(&ctx), QCC_PUSHJSON_ERR_STATE);
    qcc_pushjson_free(&ctx);
    qcc_pushjson_free(&ctx);

    /* an error sticks */
    qcc_pushjson_init(&ctx, NULL);
    CHECK_INT(qcc_pushjson_feed(&ctx, (const unsigned char *) "[", 1),
              QCC_PUSHJSON_ERR_TOP);
    CHECK_INT(qcc_pushjson_feed(&ctx, (const unsigned char *) "{", 1),
              QCC_PUSHJSON_ERR_TOP);
    CHECK_INT(qcc_pushjson_finish(&ctx), QCC_PUSHJSON_ERR_TOP);
    CHECK_STR(qcc_pushjson_error(&ctx),
              "at byte 0: the JSON text is not an object");

    CHECK_STR(qcc_pushjson_strerror(QCC_PUSHJSON_OK), "ok");
    CHECK_STR(qcc_pushjson_strerror(QCC_PUSHJSON_ERR_RECORD_SIZE),
              "record_size");
    CHECK_STR(qcc_pushjson_strerror(QCC_PUSHJSON_ERR_STATE), "state");
    CHECK_STR(qcc_pushjson_strerror(QCC_PUSHJSON_ERR_LAST), "unknown");
    CHECK_STR(qcc_pushjson_strerror(-1), "unknown");
}


/* Counts records and checks the ids arrive in order. */
static int
count_record(void *data, uint64_t n, const unsigned char *rec, size_t len,
    const char *id)
{
    uint64_t  *seen = data;
    char       want[40];

    snprintf(want, sizeof(want), "%032llx", (unsigned long long) n);

    if (strcmp(id, want) != 0 || rec[0] != '{' || rec[len - 1] != '}') {
        return -1;
    }

    (*seen)++;

    return 0;
}


/*
 * 100,000 generated records, produced and fed batch by batch in uneven
 * chunks, never held whole: the record buffer stays at its minimum.
 */
static void
test_many(unsigned flags)
{
    int                    rc;
    char                  *buf;
    size_t                 n, off, len, cut;
    uint32_t               rnd;
    uint64_t               i, seen;
    qcc_pushjson_t         ctx;
    qcc_pushjson_limits_t  lim;

    static const char  *names[] = {
        "四川中津建设集团有限公司", "吴江吉吉纺织有限公司",
        "深圳中海合润十五号投资企业(有限合伙)", "杭州宏达科技股份有限公司"
    };

    buf = malloc(1 << 20);
    seen = 0;
    rnd = 12345;

    memset(&lim, 0, sizeof(lim));
    lim.flags = flags;
    lim.on_record = count_record;
    lim.data = &seen;
    qcc_pushjson_init(&ctx, &lim);

    n = (size_t) snprintf(buf, 1 << 20, "{\"pushDate\":\"2022-06-07 "
                          "10:13:42\",\"result\":[\n");
    rc = qcc_pushjson_feed(&ctx, (unsigned char *) buf, n);

    for (i = 1; i <= 100000 && rc == QCC_PUSHJSON_OK; ) {
        n = 0;

        /* a batch of about 1,000 records */
        do {
            n += (size_t) snprintf(buf + n, (1 << 20) - n,
                 "%s{\"id\":\"%032llx\",\"corpKeyNo\":\"%032llx\","
                 "\"corpName\":\"%s\",\"monitorContent\":\"该企业由原“较高"
                 "风险”上升至“高风险”\",\"monitorLevel\":\"高风险信息\","
                 "\"monitorType\":\"高风险\",\"score\":%d,\"changeExtend\":"
                 "\"{\\\"date\\\":\\\"2020-12-03\\\"}\",\"changeDate\":"
                 "\"2022-06-01\"}\n", i > 1 ? "," : "",
                 (unsigned long long) i, (unsigned long long) (i * 7919),
                 names[i % 4], (int) (i % 100));
            i++;
        } while (i <= 100000 && i % 1000 != 0);

        /* fed in pieces of 1 to 8192 bytes */
        for (off = 0; off < n && rc == QCC_PUSHJSON_OK; off += len) {
            rnd = rnd * 1103515245 + 12345;
            cut = 1 + (rnd >> 8) % 8192;
            len = (n - off < cut) ? n - off : cut;
            rc = qcc_pushjson_feed(&ctx, (unsigned char *) buf + off, len);
        }
    }

    CHECK_INT(rc, QCC_PUSHJSON_OK);

    n = (size_t) snprintf(buf, 1 << 20, "],\"totalSize\":100000}\n");
    CHECK_INT(qcc_pushjson_feed(&ctx, (unsigned char *) buf, n),
              QCC_PUSHJSON_OK);
    CHECK_INT(qcc_pushjson_finish(&ctx), QCC_PUSHJSON_OK);
    CHECK_STR(qcc_pushjson_error(&ctx), "");

    CHECK_INT(ctx.records, 100000);
    CHECK_INT(ctx.total_size, 100000);
    CHECK_INT(seen, 100000);
    CHECK(ctx.offset > 30 * 1000 * 1000);

    /* memory: one record buffer at its minimum (and the id's), no more */
    CHECK(ctx.record_peak < 512);
    CHECK_INT(ctx.mem_peak, (flags & QCC_PUSHJSON_NO_CJSON) ? 4096 + 64
                                                            : 4096);

    qcc_pushjson_free(&ctx);
    free(buf);
}


int
main(void)
{
    test_samples();
    test_cases();
    test_strings();
    test_depth();
    test_caps();
    test_api();
    test_many(0);
    test_many(QCC_PUSHJSON_NO_CJSON);

    return UNIT_DONE("test_pushjson");
}
