/* Unit tests of the per-app policy core (src/qcc_policy.c). */

#include "unit.h"
#include "qcc_policy.h"


static qcc_policy_str_t  families[] = {
    { (const unsigned char *) "radar_ext", 9 },
    { (const unsigned char *) "yj/Report", 9 },
    { (const unsigned char *) "rpt", 3 },
    { (const unsigned char *) "dd_risk_mnr", 11 },
    { (const unsigned char *) "dd_corp_monitor", 15 },
    { (const unsigned char *) "dd_corp_monitor/getExceptions", 29 },
};

#define NFAM  (int) (sizeof(families) / sizeof(families[0]))


static int
family(const char *path)
{
    return qcc_policy_family((const unsigned char *) path, strlen(path),
                             families, NFAM);
}


/* the status of a whole answer, fed in pieces of step bytes */
static int
scan(const char *answer, size_t step)
{
    size_t             len, i, n;
    qcc_policy_scan_t  s;

    qcc_policy_scan_init(&s);
    len = strlen(answer);

    for (i = 0; i < len; i += n) {
        n = (len - i < step) ? len - i : step;
        if (qcc_policy_scan(&s, (const unsigned char *) answer + i, n)) {
            break;
        }
    }

    return qcc_policy_scan_end(&s);
}


static void
check_scan(const char *answer, int expect)
{
    size_t  step;

    for (step = 1; step <= 7; step++) {
        CHECK_INT(scan(answer, step), expect);
    }

    CHECK_INT(scan(answer, 1 << 20), expect);
}


int
main(void)
{
    int                i;
    char               big[QCC_POLICY_SCAN_LIMIT + 64];
    qcc_policy_scan_t  s;

    /* --- family names --- */

    CHECK(qcc_policy_family_valid((const unsigned char *) "radar_ext", 9));
    CHECK(qcc_policy_family_valid((const unsigned char *) "yj/Report", 9));
    CHECK(qcc_policy_family_valid((const unsigned char *) "a-b/c_d/E1", 10));
    CHECK(!qcc_policy_family_valid((const unsigned char *) "", 0));
    CHECK(!qcc_policy_family_valid((const unsigned char *) "/yj", 3));
    CHECK(!qcc_policy_family_valid((const unsigned char *) "yj/", 3));
    CHECK(!qcc_policy_family_valid((const unsigned char *) "yj//R", 5));
    CHECK(!qcc_policy_family_valid((const unsigned char *) "yj/..", 5));
    CHECK(!qcc_policy_family_valid((const unsigned char *) "a b", 3));
    CHECK(!qcc_policy_family_valid((const unsigned char *) "*", 1));
    memset(big, 'a', 65);
    CHECK(qcc_policy_family_valid((const unsigned char *) big, 64));
    CHECK(!qcc_policy_family_valid((const unsigned char *) big, 65));

    /* --- family of a path --- */

    CHECK_INT(family("/api/radar_ext/createReport"), 0);
    CHECK_INT(family("/qcc/api/radar_ext/createReport"), 0);
    CHECK_INT(family("/qcc/api/yj/Report/CreateReport"), 1);
    CHECK_INT(family("/qcc/api/rpt/retrieve"), 2);
    CHECK_INT(family("/qcc/api/dd_risk_mnr/getDdRiskDownloadUrl"), 3);
    CHECK_INT(family("/qcc/api/dd_corp_monitor/getDownloadUrl"), 4);
    /* the longest family wins */
    CHECK_INT(family("/qcc/api/dd_corp_monitor/getExceptions"), 5);
    CHECK_INT(family("/qcc/api/dd_corp_monitor/getExceptionsX"), 4);
    /* without regard to case, as a case-blind backend reads it */
    CHECK_INT(family("/qcc/API/YJ/report/CreateReport"), 1);
    CHECK_INT(family("/qcc/api/Radar_Ext/x"), 0);
    /* the family is whole segments */
    CHECK_INT(family("/qcc/api/radar_extra/x"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/qcc/api/yj/ReportX/x"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/qcc/api/yj"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/qcc/api/radar_ext"), 0);
    CHECK_INT(family("/qcc/api/unknown/x"), QCC_POLICY_NOMATCH);
    /* no /api/ segment */
    CHECK_INT(family("/qcc/radar_ext/x"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/qcc/xapi/radar_ext/x"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/"), QCC_POLICY_NOMATCH);
    CHECK_INT(family(""), QCC_POLICY_NOMATCH);
    /* the first /api/ decides */
    CHECK_INT(family("/api/x/api/radar_ext/y"), QCC_POLICY_NOMATCH);
    /* what another parser could read as another path */
    CHECK_INT(family("/api/radar_ext/..;/yj/Report/CreateReport"),
              QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/radar_ext/../yj/Report/x"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/radar_ext/./x"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/radar_ext//x"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/radar_ext;x/y"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/radar_ext\\..\\yj/Report"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/radar_ext/x%2F..%2Fy"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/radar_ext/x/"), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/radar_ext/x?y"), QCC_POLICY_NOMATCH);
    CHECK_INT(qcc_policy_family((const unsigned char *) "/api/radar_ext\0/x",
                                17, families, NFAM), QCC_POLICY_NOMATCH);
    CHECK_INT(family("/api/radar_ext/a.b"), 0);
    CHECK_INT(qcc_policy_family((const unsigned char *) "/api/radar_ext/x",
                                16, families, 0), QCC_POLICY_NOMATCH);

    /* --- the QCC day: midnight UTC+8, i.e. 16:00 UTC --- */

    /* 2026-11-27 15:59:59 UTC = 23:59:59 UTC+8 */
    CHECK_INT(qcc_policy_period_index(1795795199, 86400),
              qcc_policy_period_index(1795795199 - 86399, 86400));
    CHECK_INT(qcc_policy_period_index(1795795200, 86400),
              qcc_policy_period_index(1795795199, 86400) + 1);
    CHECK_INT(qcc_policy_period_end(1795795199, 86400), 1795795200);
    CHECK_INT(qcc_policy_period_end(1795795200, 86400), 1795795200 + 86400);
    CHECK_INT(qcc_policy_retry_after(1795795199, 86400), 1);
    CHECK_INT(qcc_policy_retry_after(1795795200, 86400), 86400);
    CHECK_INT(qcc_policy_retry_after(1795795200 - 3600, 86400), 3600);
    /* 00:00 UTC is 08:00 UTC+8: 16 hours to go */
    CHECK_INT(qcc_policy_retry_after(1795737600, 86400), 16 * 3600);
    /* the epoch is 08:00 in Beijing, day 0 */
    CHECK_INT(qcc_policy_period_index(0, 86400), 0);
    CHECK_INT(qcc_policy_period_index(-28800, 86400), 0);
    CHECK_INT(qcc_policy_period_index(-28801, 86400), -1);
    CHECK_INT(qcc_policy_period_end(-28801, 86400), -28800);
    /* a short period for tests */
    CHECK_INT(qcc_policy_period_end(1000, 7), (1000 + 28800) / 7 * 7 + 7
                                              - 28800);
    CHECK_INT(qcc_policy_retry_after(1001, 2), 1);
    CHECK_INT(qcc_policy_retry_after(1000, 2), 2);
    CHECK_INT(qcc_policy_retry_after(1000, 0), 86400 - 28800 - 1000);

    /* --- status codes --- */

    CHECK_INT(qcc_policy_code_value(qcc_policy_code_index(200)), 200);
    CHECK_INT(qcc_policy_code_value(qcc_policy_code_index(101)), 101);
    CHECK_INT(qcc_policy_code_value(qcc_policy_code_index(500)), 500);
    CHECK_INT(qcc_policy_code_value(qcc_policy_code_index(112)), 112);
    CHECK_INT(qcc_policy_code_index(105), QCC_POLICY_CODE_OTHER);
    CHECK_INT(qcc_policy_code_index(0), QCC_POLICY_CODE_OTHER);
    CHECK_INT(qcc_policy_code_index(99999), QCC_POLICY_CODE_OTHER);
    CHECK_INT(qcc_policy_code_index(-1), QCC_POLICY_CODE_NONE);
    CHECK_INT(qcc_policy_code_value(QCC_POLICY_CODE_OTHER), -1);
    CHECK_INT(qcc_policy_code_value(QCC_POLICY_CODE_NONE), -1);

    for (i = 1; i < QCC_POLICY_KNOWN_CODES; i++) {
        CHECK(qcc_policy_code_value(i - 1) < qcc_policy_code_value(i));
        CHECK_INT(qcc_policy_code_index(qcc_policy_code_value(i)), i);
    }

    /* --- the business status of an answer --- */

    check_scan("{\"status\":\"200\",\"msg\":\"ok\",\"result\":{}}", 200);
    check_scan("{\"Status\":\"201\",\"Message\":\"x\"}", 201);
    check_scan("  \r\n{ \"status\" : \"112\" , \"msg\":\"\\u989d\"}", 112);
    check_scan("{\"status\":116}", 116);
    check_scan("\xef\xbb\xbf{\"status\":\"107\"}", 107);
    /* a nested status is not the answer's */
    check_scan("{\"result\":{\"batchList\":[{\"status\":\"500\"}]},"
               "\"status\":\"200\"}", 200);
    check_scan("{\"result\":{\"status\":\"500\"}}", -1);
    check_scan("{\"list\":[\"status\",\"x\"],\"status\":\"201\"}", 201);
    /* a value that looks like the key */
    check_scan("{\"msg\":\"status\",\"status\":\"202\"}", 202);
    check_scan("{\"msg\":\"a\\\"status\\\":\\\"1\",\"status\":\"203\"}", 203);
    /* an escaped key is not read as "status" */
    check_scan("{\"st\\u0061tus\":\"1\",\"status\":\"205\"}", 205);
    check_scan("{\"statuses\":\"1\",\"status\":\"207\"}", 207);
    check_scan("{\"msg\":\"x\"}", -1);
    check_scan("{\"status\":null}", -1);
    check_scan("{\"status\":\"\"}", -1);
    check_scan("{\"status\":\"1234567\"}", -1);
    check_scan("{\"status\":\"200", -1);
    check_scan("{\"status\":200", 200);
    check_scan("", -1);
    check_scan("%PDF-1.4 ...", -1);
    check_scan("[{\"status\":\"200\"}]", -1);
    /* the credit report's XML */
    check_scan("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
               "<YJServiceResult><Status>200</Status><Message>ok</Message>"
               "</YJServiceResult>", 200);
    check_scan("<x><<Status>209</Status></x>", 209);
    check_scan("<x><Stat>1</Stat></x>", -1);

    /* a status beyond the limit is not looked for */
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    memcpy(big + QCC_POLICY_SCAN_LIMIT, "\"status\":\"200\"}", 15);
    big[QCC_POLICY_SCAN_LIMIT + 15] = '\0';
    check_scan(big, -1);
    memcpy(big + 1000, "\"status\":\"200\"}", 15);
    check_scan(big, 200);

    /* done stays done */
    qcc_policy_scan_init(&s);
    CHECK_INT(qcc_policy_scan(&s, (const unsigned char *) "{\"status\":1,", 12),
              1);
    CHECK_INT(qcc_policy_scan(&s, (const unsigned char *) "\"status\":2}", 11),
              1);
    CHECK_INT(qcc_policy_scan_end(&s), 1);

    return UNIT_DONE("test_policy");
}
