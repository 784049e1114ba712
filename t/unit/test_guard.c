/*
 * Unit tests of the edge guardrails (qcc_guard.c): call classification,
 * list counting, pageSize, the refusal JSON, the files route URL.
 */

#include <stdlib.h>

#include "unit.h"
#include "qcc_guard.h"


#define S(s)  (const unsigned char *) (s), sizeof(s) - 1
#define CHECK_STR_N(p, len, s)  CHECK_MEM((p), (len), (s), strlen(s))


static const qcc_guard_limits_t  limits = {
    QCC_GUARD_MAX_KEYWORDS, QCC_GUARD_MAX_LOGIN_NAMES, QCC_GUARD_MAX_PAGE_SIZE
};


/* "keyWordList=k0,k1,...,k(n-1)" */
static size_t
list_args(char *buf, const char *name, size_t n, const char *sep)
{
    size_t  i, len;

    len = sprintf(buf, "loginName=u1&%s=", name);

    for (i = 0; i < n; i++) {
        len += sprintf(buf + len, "%s%zu", i ? sep : "", i);
    }

    return len;
}


static void
test_classify(void)
{
    static const struct {
        const char  *path;
        int          api;
    } cases[] = {
        { "/qcc/api/radar_ext/batchAddRadarCompanyListToExistedUser",
          QCC_GUARD_API_BATCH_KEYWORDS },
        { "/api/radar_ext/batchCancelRadarCompanyListFromExistedUser/",
          QCC_GUARD_API_BATCH_KEYWORDS },
        { "/x/RADAR_EXT/BATCHADDRADARCOMPANYTOEXISTEDUSERLIST",
          QCC_GUARD_API_BATCH_LOGINS },
        { "/qcc/api/radar_ext/batchCancelRadarCompanyFromExistedUserList",
          QCC_GUARD_API_BATCH_LOGINS },
        { "/qcc/api/dd_corp_monitor/getShiXinList",
          QCC_GUARD_API_SHIXIN },
        { "/qcc/api/dd_risk_mnr/getShiXinList", QCC_GUARD_API_OTHER },
        { "/qcc/api/radar_ext/createReport", QCC_GUARD_API_OTHER },
        { "/qcc/api/radar_ext/batchAddRadarCompany", QCC_GUARD_API_OTHER },
        { "/qcc/api/radar_ext/batchAddRadarCompanyListToExistedUser//",
          QCC_GUARD_API_OTHER },
        { "radar_ext/batchAddRadarCompanyListToExistedUser",
          QCC_GUARD_API_BATCH_KEYWORDS },
        { "/radar_ext/batchAddRadarCompanyListToExistedUser",
          QCC_GUARD_API_BATCH_KEYWORDS },
        { "/xradar_ext/batchAddRadarCompanyListToExistedUser",
          QCC_GUARD_API_OTHER },
        { "", QCC_GUARD_API_OTHER },
        { "/", QCC_GUARD_API_OTHER },
        { "//", QCC_GUARD_API_OTHER },
    };
    size_t  i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(qcc_guard_classify((const unsigned char *) cases[i].path,
                                     strlen(cases[i].path)),
                  cases[i].api);
    }

    CHECK(qcc_guard_is_batch(QCC_GUARD_API_BATCH_KEYWORDS));
    CHECK(qcc_guard_is_batch(QCC_GUARD_API_BATCH_LOGINS));
    CHECK(!qcc_guard_is_batch(QCC_GUARD_API_SHIXIN));
    CHECK(!qcc_guard_is_batch(QCC_GUARD_API_OTHER));
}


static void
test_count(void)
{
    static const struct {
        const char  *args;
        size_t       n;
    } cases[] = {
        { "keyWordList=a,b,c", 3 },
        { "keyWordList=", 0 },
        { "keyWordList", 0 },
        { "", 0 },
        { "keyWordList=a,,b,", 2 },
        { "keyWordList=,,,", 0 },
        { "keyWordList=a%2Cb%2cc", 3 },
        { "keyWordList=a%u002Cb%u002cc", 3 },
        { "keyWordList=a%uFF0Cb", 1 },
        { "keyWordList=a%2", 1 },
        { "keyWordList=%", 1 },
        { "keyWordList=a&keyWordList=b,c", 3 },
        { "KEYWORDLIST=a,b&keywordlist=c", 3 },
        { "key%57ordList=a,b", 2 },
        { "key%u0057ordList=a,b", 2 },
        { "keyWordLis=a,b&keyWordListX=a,b&xkeyWordList=a", 0 },
        { "keyWordList=+,+", 2 },
        { "a=1&&keyWordList=x,y&", 2 },
        { "keyWordList=%E5%B0%8F%E7%B1%B3,%E5%B0%8F", 2 },
    };
    size_t  i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(qcc_guard_count_list((const unsigned char *) cases[i].args,
                                       strlen(cases[i].args), "keyWordList"),
                  cases[i].n);
    }
}


static void
test_check(void)
{
    char                 buf[8192];
    size_t               len;
    unsigned char        out[QCC_GUARD_RESPONSE_MAX];
    qcc_guard_result_t   res;

    static const char  kw[] =
        "/qcc/api/radar_ext/batchAddRadarCompanyListToExistedUser";
    static const char  ln[] =
        "/qcc/api/radar_ext/batchAddRadarCompanyToExistedUserList";
    static const char  sx[] = "/qcc/api/dd_corp_monitor/getShiXinList";

    len = list_args(buf, "keyWordList", 200, ",");
    CHECK_INT(qcc_guard_check(S(kw), (unsigned char *) buf, len, &limits,
                              &res), QCC_GUARD_OK);
    CHECK_INT(res.count, 200);
    CHECK_INT(res.api, QCC_GUARD_API_BATCH_KEYWORDS);

    len = list_args(buf, "keyWordList", 201, ",");
    CHECK_INT(qcc_guard_check(S(kw), (unsigned char *) buf, len, &limits,
                              &res), QCC_GUARD_TOO_MANY_KEYWORDS);
    CHECK_INT(res.count, 201);
    CHECK_INT(res.limit, 200);
    len = qcc_guard_response(&res, out, sizeof(out));
    CHECK_STR_N(out, len, ("{\"status\":\"202\",\"msg\":\"keyWordList has "
                          "201 items, at most 200 are allowed\"}"));

    /* encoded commas count as commas */
    len = list_args(buf, "keyWordList", 201, "%2C");
    CHECK_INT(qcc_guard_check(S(kw), (unsigned char *) buf, len, &limits,
                              &res), QCC_GUARD_TOO_MANY_KEYWORDS);

    /* loginNameList does not count on the keyword calls */
    len = list_args(buf, "loginNameList", 501, ",");
    CHECK_INT(qcc_guard_check(S(kw), (unsigned char *) buf, len, &limits,
                              &res), QCC_GUARD_OK);

    CHECK_INT(qcc_guard_check(S(ln), (unsigned char *) buf, len, &limits,
                              &res), QCC_GUARD_TOO_MANY_LOGINS);
    CHECK_INT(res.count, 501);
    len = qcc_guard_response(&res, out, sizeof(out));
    CHECK_STR_N(out, len, ("{\"status\":\"202\",\"msg\":\"loginNameList has "
                          "501 items, at most 500 are allowed\"}"));

    len = list_args(buf, "loginNameList", 500, ",");
    CHECK_INT(qcc_guard_check(S(ln), (unsigned char *) buf, len, &limits,
                              &res), QCC_GUARD_OK);

    /* other calls are not counted */
    len = list_args(buf, "keyWordList", 1000, ",");
    CHECK_INT(qcc_guard_check(S("/qcc/api/radar_ext/createReport"),
                              (unsigned char *) buf, len, &limits, &res),
              QCC_GUARD_OK);
    CHECK_INT(res.api, QCC_GUARD_API_OTHER);

    /* pageSize */
    {
        static const struct {
            const char  *args;
            int          rc;
        } cases[] = {
            { "corpKeyNo=a&pageIndex=1&pageSize=20", QCC_GUARD_OK },
            { "pageSize=1", QCC_GUARD_OK },
            { "pageSize=020", QCC_GUARD_OK },
            { "pageSize=", QCC_GUARD_OK },
            { "pageSize", QCC_GUARD_OK },
            { "", QCC_GUARD_OK },
            { "pageSize=21", QCC_GUARD_BAD_PAGE_SIZE },
            { "pageSize=0", QCC_GUARD_BAD_PAGE_SIZE },
            { "pageSize=-1", QCC_GUARD_BAD_PAGE_SIZE },
            { "pageSize=1x", QCC_GUARD_BAD_PAGE_SIZE },
            { "pageSize=%32%31", QCC_GUARD_BAD_PAGE_SIZE },
            { "PAGESIZE=100", QCC_GUARD_BAD_PAGE_SIZE },
            { "pageSize=10&pageSize=30", QCC_GUARD_BAD_PAGE_SIZE },
            { "pageSize=99999999999999999999999", QCC_GUARD_BAD_PAGE_SIZE },
        };
        size_t  i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            CHECK_INT(qcc_guard_check(S(sx),
                                      (const unsigned char *) cases[i].args,
                                      strlen(cases[i].args), &limits, &res),
                      cases[i].rc);
        }

        qcc_guard_check(S(sx), S("pageSize=50"), &limits, &res);
        len = qcc_guard_response(&res, out, sizeof(out));
        CHECK_STR_N(out, len, ("{\"status\":\"202\",\"msg\":\"pageSize must "
                              "be a number from 1 to 20\"}"));
    }

    CHECK_INT(qcc_guard_response(&res, out, 10), 0);
}


static void
test_files(void)
{
    static const struct {
        const char  *in;
        int          rc;
        const char  *url;
    } cases[] = {
        { "http/pro-files.qichacha.com/DdMonitor/a.zip?Expires=1&"
          "OSSAccessKeyId=x&Signature=a%2Bb%3D", QCC_GUARD_FILES_OK,
          "http://pro-files.qichacha.com/DdMonitor/a.zip?Expires=1&"
          "OSSAccessKeyId=x&Signature=a%2Bb%3D" },
        { "https/h:8443/p/%E7%9B%91.zip", QCC_GUARD_FILES_OK,
          "https://h:8443/p/%E7%9B%91.zip" },
        { "HTTP/h", QCC_GUARD_FILES_OK, "http://h/" },
        { "http/h?", QCC_GUARD_FILES_OK, "http://h/?" },
        { "http/h?a=1&&b&", QCC_GUARD_FILES_OK, "http://h/?a=1&&b&" },
        { "http://h/x?y=1", QCC_GUARD_FILES_OK, "http://h/x?y=1" },
        { "http/h/x?key=K&Expires=1&TOKEN=t&Signature=s&%54imespan=1",
          QCC_GUARD_FILES_OK, "http://h/x?Expires=1&Signature=s" },
        { "http/h/x?key=K", QCC_GUARD_FILES_OK, "http://h/x" },
        { "http/h/x?keys=K&akey=1", QCC_GUARD_FILES_OK,
          "http://h/x?keys=K&akey=1" },
        { "ftp/h/x", QCC_GUARD_FILES_BAD_SCHEME, NULL },
        { "http", QCC_GUARD_FILES_BAD_SCHEME, NULL },
        { "http:/h/x", QCC_GUARD_FILES_BAD_SCHEME, NULL },
        { "httpx/h", QCC_GUARD_FILES_BAD_SCHEME, NULL },
        { "", QCC_GUARD_FILES_BAD_SCHEME, NULL },
        { "http/", QCC_GUARD_FILES_NO_HOST, NULL },
        { "http//x", QCC_GUARD_FILES_NO_HOST, NULL },
        { "http/?a", QCC_GUARD_FILES_NO_HOST, NULL },
    };
    size_t          i, len;
    unsigned char   out[256];
    int             rc;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = 0;
        rc = qcc_guard_files_url((const unsigned char *) cases[i].in,
                                 strlen(cases[i].in), out, sizeof(out), &len);
        CHECK_INT(rc, cases[i].rc);

        if (rc == QCC_GUARD_FILES_OK && cases[i].url) {
            CHECK_MEM(out, len, cases[i].url, strlen(cases[i].url));
        }
    }

    /* bounds: exactly fitting, one byte short */
    len = 0;
    CHECK_INT(qcc_guard_files_url(S("http/h/x?a=1&"), out, 15, &len),
              QCC_GUARD_FILES_OK);
    CHECK_INT(len, 15);
    CHECK_INT(qcc_guard_files_url(S("http/h/x?a=1&"), out, 14, &len),
              QCC_GUARD_FILES_TOO_LONG);
    CHECK_INT(qcc_guard_files_url(S("http/h/x?key=1&a=1"), out, 14, &len),
              QCC_GUARD_FILES_OK);
    CHECK_INT(qcc_guard_files_url(S("http/h/x?key=1&a=1"), out, 13, &len),
              QCC_GUARD_FILES_TOO_LONG);
    CHECK_INT(qcc_guard_files_url(S("http/hhhh"), out, 10, &len),
              QCC_GUARD_FILES_TOO_LONG);

    CHECK_STR(qcc_guard_files_strerror(QCC_GUARD_FILES_NO_HOST),
              "the files route needs a host as its second segment");
    CHECK_STR(qcc_guard_files_strerror(99), "unknown error");
}


static void
test_rewrite(void)
{
    static const struct {
        const char  *in;
        const char  *out;
        size_t       links;
    } cases[] = {
        { "{\"reportUrl\":\"http://pro-files.qichacha.com/a/b.zip?Expires=1&"
          "Signature=x%2B\"}",
          "{\"reportUrl\":\"/qcc/files/http/pro-files.qichacha.com/a/b.zip?"
          "Expires=1&Signature=x%2B\"}", 1 },
        { "{\"u\":\"HTTPS://PRO-FILES.QICHACHA.COM/x\"}",
          "{\"u\":\"/qcc/files/https/PRO-FILES.QICHACHA.COM/x\"}", 1 },
        { "{\"u\":\"http:\\/\\/pro-files.qichacha.com\\/x\\/y.zip\"}",
          "{\"u\":\"/qcc/files/http/pro-files.qichacha.com\\/x\\/y.zip\"}",
          1 },
        { "[\"http://h:8080/x\",\"http://h:8081/x\",\"http://h:8080\"]",
          "[\"/qcc/files/http/h:8080/x\",\"http://h:8081/x\","
          "\"/qcc/files/http/h:8080\"]", 2 },
        { "{\"u\":\"http://evil.example/x\"}",
          "{\"u\":\"http://evil.example/x\"}", 0 },
        { "{\"u\":\"http://pro-files.qichacha.com.evil.example/x\"}",
          "{\"u\":\"http://pro-files.qichacha.com.evil.example/x\"}", 0 },
        { "{\"u\":\"http://u@pro-files.qichacha.com/x\"}",
          "{\"u\":\"http://u@pro-files.qichacha.com/x\"}", 0 },
        { "{\"msg\":\"see http://pro-files.qichacha.com/x\"}",
          "{\"msg\":\"see http://pro-files.qichacha.com/x\"}", 0 },
        { "{\"msg\":\"a \\\"http://pro-files.qichacha.com/x\\\"\"}",
          "{\"msg\":\"a \\\"http://pro-files.qichacha.com/x\\\"\"}", 0 },
        { "{\"u\":\"ftp://pro-files.qichacha.com/x\"}",
          "{\"u\":\"ftp://pro-files.qichacha.com/x\"}", 0 },
        { "{\"u\":\"http://\"}", "{\"u\":\"http://\"}", 0 },
        { "\"http:/", "\"http:/", 0 },
        { "\"", "\"", 0 },
        { "", "", 0 },
    };
    static const struct { size_t len; const unsigned char *data; }  hosts[] = {
        { 22, (const unsigned char *) "pro-files.qichacha.com" },
        { 6, (const unsigned char *) "h:8080" },
    };
    size_t          i, n, m, links;
    unsigned char   out[512];

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = qcc_guard_rewrite_links((const unsigned char *) cases[i].in,
                                    strlen(cases[i].in), hosts, 2,
                                    (const unsigned char *) "/qcc/files/", 11,
                                    NULL, NULL);
        m = qcc_guard_rewrite_links((const unsigned char *) cases[i].in,
                                    strlen(cases[i].in), hosts, 2,
                                    (const unsigned char *) "/qcc/files/", 11,
                                    out, &links);
        CHECK_INT(n, m);
        CHECK_MEM(out, m, cases[i].out, strlen(cases[i].out));
        CHECK_INT(links, cases[i].links);
    }

    CHECK(qcc_guard_prefix_valid((const unsigned char *) "/qcc/files/", 11));
    CHECK(qcc_guard_prefix_valid((const unsigned char *) "http://gw/f/", 12));
    CHECK(!qcc_guard_prefix_valid((const unsigned char *) "/a\"b", 4));
    CHECK(!qcc_guard_prefix_valid((const unsigned char *) "/a\\b", 4));
    CHECK(!qcc_guard_prefix_valid((const unsigned char *) "/a\nb", 4));
    CHECK(!qcc_guard_prefix_valid((const unsigned char *) "", 0));
}


int
main(void)
{
    test_classify();
    test_count();
    test_check();
    test_files();
    test_rewrite();

    return UNIT_DONE("test_guard");
}
