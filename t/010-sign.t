#!/usr/bin/perl

# Signing through the gateway: every endpoint of the five documents is
# signed as QCC checks it (the mock recomputes every Token), client
# credentials cannot override ours, arguments and bodies pass byte for
# byte, two accounts sign with their own, access modules decide as without
# the module, and the secret reaches no log line or response.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use Digest::MD5 qw(md5_hex);

my $t = QccTest->new(log_level => 'debug');
my $m = QccMock->new(accounts => [[AppKey => 'SecretKey'],
                                  [OtherKey => 'OtherSecret']]);

$t->write_file('secret', "SecretKey\n", 0600);
$t->write_file('other', "OtherSecret", 0600);
$t->write_file('htpasswd', "app:" . crypt('pw', 'ab') . "\n", 0644);
$t->{vars} = { MOCK => $m->port, PORT2 => QccTest::free_port() };

$t->config(http => <<'EOC')->run or BAIL_OUT('nginx did not start');
log_format signed '$request_uri ts=$qcc_timespan token=$qcc_token';
proxy_cache_path %%PREFIX%%/cache keys_zone=qcc_cache:1m;

server {
    # no account in effect here
    listen 127.0.0.1:%%PORT2%%;
    access_log %%PREFIX%%/signed.log signed;
    location / { proxy_pass http://127.0.0.1:%%MOCK%%/; }
}

server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    qcc_secret_key_file %%PREFIX%%/secret;
    access_log %%PREFIX%%/signed.log signed;

    location /qcc/ {
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /api/ {
        # proxy_pass without a URI part: the request URI is sent as is
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%;
    }

    location /other/ {
        qcc_key OtherKey;
        qcc_secret_key_file %%PREFIX%%/other;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /unsigned/ {
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /cached/ {
        qcc_sign on;
        proxy_cache qcc_cache;
        proxy_cache_valid 200 1m;
        add_header X-Cache $upstream_cache_status;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /any/ {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        auth_basic "qcc";
        auth_basic_user_file %%PREFIX%%/htpasswd;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /all/ {
        satisfy all;
        allow 127.0.0.1;
        deny all;
        auth_basic "qcc";
        auth_basic_user_file %%PREFIX%%/htpasswd;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /denied/ {
        deny all;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /authreq/ {
        auth_request /auth;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /redirected/ {
        # signed, then sent on to another signed location: signed once
        qcc_sign on;
        rewrite ^/redirected/(.*)$ /other/$1 last;
    }

    location /tried/ {
        qcc_sign on;
        try_files /nonexistent @other;
    }

    location @other {
        qcc_key OtherKey;
        qcc_secret_key_file %%PREFIX%%/other;
        qcc_sign on;
        rewrite ^/tried(/.*)$ $1 break;
        proxy_pass http://127.0.0.1:%%MOCK%%;
    }

    location = /auth {
        internal;
        if ($http_x_app = "good") { return 204; }
        return 401;
    }
}
EOC

my $last = 0;

# The last request the mock received.
sub upstream {
    my $reqs = $m->requests(since => $last);
    $last = $reqs->[-1]{id} if @$reqs;
    return $reqs->[-1];
}

# --- every endpoint of SUMMARY.md ------------------------------------------

my $kw = '%E5%B0%8F%E7%B1%B3%E7%A7%91%E6%8A%80%E6%9C%89%E9%99%90%E8%B4%A3'
    . '%E4%BB%BB%E5%85%AC%E5%8F%B8,%E5%B9%BF%E4%B8%9C%E5%B0%8F%E7%B1%B3'
    . '%E7%A7%91%E6%8A%80%E6%9C%89%E9%99%90%E8%B4%A3%E4%BB%BB%E5%85%AC%E5%8F%B8';

my @endpoints = (
    [GET => '/api/radar_ext/createReport?reportType=day'],
    [GET => '/api/radar_ext/getReportInfo?orderNo=JKDAY-167660123348194027'],
    [POST => '/api/yj/Report/CreateReport?keyNo=%E5%B0%8F%E7%B1%B3&reportFormat=1'],
    [POST => '/api/yj/Report/CreateReport?keyNo=91110108551385082Q&reportFormat=2'],
    [POST => '/api/yj/Report/GetReportInfo?orderNo=R1&dtype=json'],
    [POST => '/api/yj/Report/GetReportInfo?orderNo=R1&dtype=xml'],
    [GET => "/api/radar_ext/batchAddRadarCompanyListToExistedUser?loginName=13800000000&keyWordList=$kw"],
    [GET => "/api/radar_ext/batchCancelRadarCompanyListFromExistedUser?loginName=13800000000&keyWordList=$kw"],
    [GET => '/api/radar_ext/batchAddRadarCompanyToExistedUserList?loginNameList=13800000000,13900000000&keyWord=%E5%B0%8F%E7%B1%B3'],
    [GET => '/api/radar_ext/batchCancelRadarCompanyFromExistedUserList?loginNameList=13800000000&keyWord=%E5%B0%8F%E7%B1%B3'],
    [GET => '/api/dd_risk_mnr/setDdRiskApiPushSetting?enablePush=A&callbackUrl=http%3A%2F%2Fgw.example%2Fqcc%2Fcallback%2Frisk&pushPeriodTime=9'],
    [GET => '/api/dd_risk_mnr/activeDdRiskCallCallbackUrl'],
    [GET => '/api/dd_risk_mnr/listDdRiskLatestOrderNo'],
    [GET => '/api/dd_risk_mnr/getDdRiskDownloadUrl?orderNo=DDMON2021031616145803273367'],
    [GET => '/api/dd_corp_monitor/setApiPushSetting?enablePush=A&callbackUrl=http%3A%2F%2Fgw.example%2Fqcc%2Fcallback%2Fcorp&pushPeriodTime=11'],
    [GET => '/api/dd_corp_monitor/activeCallbackUrl'],
    [GET => '/api/dd_corp_monitor/listLatestOrderNo'],
    [GET => '/api/dd_corp_monitor/getDownloadUrl?orderNo=DDMON2021031616145803273367'],
    [GET => '/api/dd_corp_monitor/getExceptions?corpKeyNo=abc&checkId=1'],
    [GET => '/api/dd_corp_monitor/getSeriousViolation?corpKeyNo=abc&checkId=1'],
    [GET => '/api/dd_corp_monitor/getShiXinList?corpKeyNo=abc&checkId=1&pageIndex=1&pageSize=20'],
    [GET => '/api/rpt/retrieve?code=465b03e'],
);

for my $e (@endpoints) {
    my ($method, $pq) = @$e;
    my ($path, $args) = split /\?/, $pq, 2;
    my $r = $t->http($method, "/qcc$pq",
                     $method eq 'POST' ? (body => '') : ());
    my $u = upstream();
    is($r->{status}, 200, "$method $path: 200");
    ok($u && $u->{sig_ok}, "$method $path: signature checks")
        or diag(explain($u));
    is($u->{path}, $path, "$method $path: path upstream");
    is($u->{query}, 'key=AppKey' . (defined $args ? "&$args" : ''),
       "$method $path: arguments byte for byte");
    unlike($r->{body}, qr/"[Ss]tatus"\s*:\s*"107"/, "$method $path: no 107");
}

like($t->http(POST => '/qcc/api/yj/Report/GetReportInfo?orderNo=R1&dtype=xml',
              body => '')->{body}, qr/^<\?xml|^</, 'dtype=xml answers XML');

# --- a client's own credentials are removed --------------------------------

my $r = $t->http(GET => '/qcc/api/radar_ext/createReport?key=Evil&reportType=day&KEY=Evil2&k%65y=Evil3',
                 headers => [Token => 'FORGED', TOKEN => 'FORGED2',
                             timespan => '1', TimeSpan => '2',
                             'X-Other' => 'kept']);
my $u = upstream();
ok($u->{sig_ok}, 'forged credentials: signature checks');
is($u->{query}, 'key=AppKey&reportType=day', 'forged key arguments removed');
is(scalar($m->header($u, 'Token')), 1, 'one Token upstream');
is(scalar($m->header($u, 'Timespan')), 1, 'one Timespan upstream');
isnt(($m->header($u, 'Token'))[0], 'FORGED', 'our Token, not the client\'s');
is(($m->header($u, 'X-Other'))[0], 'kept', 'other headers kept');
my ($ts) = $m->header($u, 'Timespan');
ok(abs($ts - time) < 5, 'Timespan is now');
is(($m->header($u, 'Token'))[0], uc md5_hex("AppKey${ts}SecretKey"),
   'Token is upper-case MD5(key + Timespan + secret)');

# --- an internal redirect between signed locations: signed once, by the
# account of the location that proxies ------------------------------------

for my $path ('/redirected/api/radar_ext/createReport?reportType=day',
              '/tried/api/radar_ext/createReport?reportType=day')
{
    for my $forged (0, 1) {
        my @h = $forged ? (headers => [Token => 'FORGED', Timespan => '1'])
                        : ();
        $r = $t->http(GET => $path, @h);
        $u = upstream();
        my $what = "$path" . ($forged ? ', with forged headers' : '');
        is($r->{status}, 200, "$what: 200");
        ok($u->{sig_ok}, "$what: signature checks");
        like($u->{query}, qr/^key=OtherKey&(?!.*key=)/,
             "$what: one key argument, the second account's");
        is(scalar($m->header($u, 'Token')), 1, "$what: one Token");
        is(scalar($m->header($u, 'Timespan')), 1, "$what: one Timespan");
        ($ts) = $m->header($u, 'Timespan');
        is(($m->header($u, 'Token'))[0],
           uc md5_hex("OtherKey${ts}OtherSecret"), "$what: its Token");
    }
}

# --- POST body untouched ---------------------------------------------------

my $body = "a=1&key=not-an-arg&b=" . ("x" x 5000);
$r = $t->http(POST => '/qcc/api/yj/Report/CreateReport?keyNo=x',
              headers => ['Content-Type' => 'application/x-www-form-urlencoded'],
              body => $body);
$u = upstream();
ok($u->{sig_ok}, 'POST with body: signed');
is($u->{body}, $body, 'POST body byte for byte');

# --- proxy_pass without a URI part -----------------------------------------

$r = $t->get("/api/radar_ext/getReportInfo?orderNo=A%2FB&key=x");
$u = upstream();
ok($u->{sig_ok}, 'proxy_pass without URI: signed');
is($u->{query}, 'key=AppKey&orderNo=A%2FB', 'proxy_pass without URI: args');

# --- two accounts ------------------------------------------------------------

$t->get('/other/api/radar_ext/createReport?reportType=week');
$u = upstream();
ok($u->{sig_ok}, 'second account: signature checks');
is($u->{account}, 'OtherKey', 'second account signs with its own key');
$t->get('/qcc/api/radar_ext/createReport?reportType=week');
is(upstream()->{account}, 'AppKey', 'first account still its own');

# --- locations without signing change nothing ------------------------------

$t->http(GET => '/unsigned/api/radar_ext/createReport?key=Mine',
         headers => [Token => 'T', Timespan => '5']);
$u = upstream();
is($u->{query}, 'key=Mine', 'unsigned location: args untouched');
is(($m->header($u, 'Token'))[0], 'T', 'unsigned location: Token untouched');
ok(!$u->{sig_ok}, 'unsigned location: not signed');

# --- proxy_cache -------------------------------------------------------------

my $before = @{ $m->requests(path => '/api/dd_corp_monitor/getExceptions') };
my $c1 = $t->get('/cached/api/dd_corp_monitor/getExceptions?corpKeyNo=c&checkId=9');
my $c2 = $t->get('/cached/api/dd_corp_monitor/getExceptions?corpKeyNo=c&checkId=9');
is($c1->{headers}{'x-cache'}, 'MISS', 'cache: first is a miss');
is($c2->{headers}{'x-cache'}, 'HIT', 'cache: second is a hit');
is($c2->{body}, $c1->{body}, 'cache: same answer');
my $after = $m->requests(path => '/api/dd_corp_monitor/getExceptions');
is(@$after - $before, 1, 'cache: one call reached QCC');
ok($after->[-1]{sig_ok}, 'cache: the call was signed');
$last = $after->[-1]{id};

# --- access modules decide as without the module ---------------------------

is($t->get('/any/api/radar_ext/createReport?reportType=day')->{status}, 200,
   'satisfy any: allowed address passes without credentials');
ok(upstream()->{sig_ok}, 'satisfy any: signed');
is($t->get('/all/api/radar_ext/createReport')->{status}, 401,
   'satisfy all: credentials still required');
is($t->http(GET => '/all/api/radar_ext/createReport?reportType=day',
            headers => [Authorization => 'Basic YXBwOnB3'])->{status}, 200,
   'satisfy all: with credentials');
is($t->get('/denied/api/radar_ext/createReport')->{status}, 403,
   'deny all: 403');
is($t->get('/authreq/api/radar_ext/createReport')->{status}, 401,
   'auth_request refusing: 401');
is($t->http(GET => '/authreq/api/radar_ext/createReport?reportType=day',
            headers => ['X-App' => 'good'])->{status}, 200,
   'auth_request admitting: 200');
ok(upstream()->{sig_ok}, 'auth_request: signed');

# --- variables ---------------------------------------------------------------

$t->get('/qcc/api/radar_ext/createReport?reportType=month');
$u = upstream();
my ($uts) = $m->header($u, 'Timespan');
my ($utok) = $m->header($u, 'Token');
$t->get('/nokey/api/radar_ext/createReport', port => $t->{vars}{PORT2});
sleep 1;
my @lines = grep { /reportType=month/ } split /\n/, $t->read_file('signed.log');
like($lines[-1], qr/ts=$uts token=$utok$/,
     '$qcc_timespan and $qcc_token are the values sent');
like($t->read_file('signed.log'), qr{^/nokey/\S+ ts=- token=-$}m,
     'no account: variables empty');

# --- secret hygiene ----------------------------------------------------------

$t->stop;
my $log = $t->error_log;
like($log, qr/\[debug\]/, 'the log was at debug level');
unlike($log, qr/SecretKey|OtherSecret/, 'no secret in the debug log');
unlike($t->read_file('access.log') . $t->read_file('signed.log'),
       qr/SecretKey|OtherSecret/, 'no secret in the access logs');
unlike($m->log_text, qr/SecretKey|OtherSecret/, 'no secret in the mock log');
$t->check_error_log;

done_testing;
