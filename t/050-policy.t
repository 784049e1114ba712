#!/usr/bin/perl

# Per-app policy: two apps (basic-auth users) with different API families
# and budgets.  Allowed calls pass and are signed; another family is 403
# JSON; the budget+1-th call is 429 JSON with Retry-After up to midnight
# UTC+8; the other app is unaffected; no identity is 401 JSON; an
# unknown identity 403; identities from a header and from an auth_request
# service; satisfy any undisturbed; calls that never reach QCC (QCC
# unreachable, refused by qcc_guard) given back; usage per app and
# family, with QCC's business status codes, in the status endpoint's JSON
# and Prometheus output; $qcc_client and $qcc_family in the access log.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use JSON::PP;
use MIME::Base64 qw(encode_base64);

my $json = JSON::PP->new->utf8;

my $t = QccTest->new(workers => 2);
my $m = QccMock->new;

$t->write_file('secret', "SecretKey\n", 0600);
$t->write_file('htpasswd', join('', map { "$_:" . crypt('pw', 'ab') . "\n" }
                                        qw(app1 app2 stranger)), 0644);
$t->{vars} = { MOCK => $m->port, CLOSED => QccTest::free_port() };

$t->config(http => <<'EOC')->run or BAIL_OUT('nginx did not start');
qcc_policy_zone zone=bank:1m;
qcc_client app1 zone=bank families=radar_ext,yj/Report,rpt budget=3;
qcc_client app2 zone=bank families=dd_corp_monitor,dd_risk_mnr budget=6;
qcc_client ops zone=bank families=* budget=2;

log_format policy '$remote_user $status client=$qcc_client family=$qcc_family';

server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    qcc_secret_key_file %%PREFIX%%/secret;
    access_log %%PREFIX%%/policy.log policy;

    location /qcc/ {
        auth_basic "qcc";
        auth_basic_user_file %%PREFIX%%/htpasswd;
        qcc_policy bank;
        qcc_client_id $remote_user;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /any/ {
        # satisfy any: access decides as without the policy
        satisfy any;
        allow 127.0.0.1;
        deny all;
        auth_basic "qcc";
        auth_basic_user_file %%PREFIX%%/htpasswd;
        qcc_policy bank;
        qcc_client_id $remote_user;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /areq/ {
        # the identity an auth_request answer names
        auth_request /auth;
        auth_request_set $app $upstream_http_x_app;
        qcc_policy bank;
        qcc_client_id $app;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location = /auth {
        internal;
        proxy_pass http://127.0.0.1:%%PORT%%/authsrv;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }

    location = /authsrv {
        # the auth service: names the app of a ticket
        if ($http_x_ticket = "t2") {
            add_header X-App app2;
            return 204;
        }
        return 401;
    }

    location /hdr/ {
        # an identity that can be missing
        qcc_policy bank;
        qcc_client_id $http_x_app;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /down/ {
        # QCC unreachable
        qcc_policy bank;
        qcc_client_id $http_x_app;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%CLOSED%%/;
    }

    location /guarded/ {
        # the guard's checks run after the policy's
        qcc_policy bank;
        qcc_client_id $http_x_app;
        qcc_guard on;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /free/ {
        qcc_policy off;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location = /status { qcc_status; }
}
EOC

sub as {
    my ($user, $method, $uri) = @_;
    return $t->http($method, $uri,
                    headers => [Authorization => 'Basic '
                                . encode_base64("$user:pw", '')],
                    $method eq 'POST' ? (body => '') : ());
}

sub count {
    my ($path) = @_;
    return scalar @{ $m->requests(path => $path) };
}

sub jbody {
    my ($r) = @_;
    return eval { $json->decode($r->{body}) } || {};
}

# --- app1: radar_ext, yj/Report, rpt; 3 calls a day -------------------------

my $r = as(app1 => GET => '/qcc/api/radar_ext/createReport?reportType=day');
is($r->{status}, 200, 'app1, radar_ext: 200');
like($r->{body}, qr/"status":\s*"200"/, 'app1, radar_ext: QCC answered');
my $u = $m->requests(path => '/api/radar_ext/createReport')->[-1];
ok($u && $u->{sig_ok}, 'app1, radar_ext: signed');
is($u->{query}, 'key=AppKey&reportType=day', 'app1: arguments as sent');

$r = as(app1 => POST => '/qcc/api/yj/Report/CreateReport?keyNo=x&reportFormat=1');
is($r->{status}, 200, 'app1, yj/Report: 200');
ok($m->requests(path => '/api/yj/Report/CreateReport')->[-1]{sig_ok},
   'app1, yj/Report: signed');

# a family app1 may not call
$r = as(app1 => GET => '/qcc/api/dd_corp_monitor/getExceptions?corpKeyNo=a&checkId=1');
is($r->{status}, 403, 'app1, dd_corp_monitor: 403');
like($r->{headers}{'content-type'}, qr{^application/json}, '403: JSON');
is(jbody($r)->{status}, '403', '403: status in the body');
like(jbody($r)->{msg}, qr/dd_corp_monitor/, '403: names the family');
is(count('/api/dd_corp_monitor/getExceptions'), 0, '403: QCC not called');

# an unknown path is family "other": refused too, and a case-blind path is
# the family it spells
is(as(app1 => GET => '/qcc/api/unknown/call')->{status}, 403,
   'app1, unknown family: 403');
is(as(app1 => GET => '/qcc/api/radar_ext/..;/dd_risk_mnr/x')->{status}, 403,
   'app1, a path another parser reads differently: 403');

# the third call is the last of the day
$r = as(app1 => GET => '/qcc/API/Radar_Ext/getReportInfo?orderNo=JKDAY-1');
is($r->{status}, 404,
   'app1, third call, in other letter case: radar_ext, sent (the mock '
   . 'itself is case-sensitive: 404)');

my $now = time;
$r = as(app1 => GET => '/qcc/api/radar_ext/createReport?reportType=week');
is($r->{status}, 429, 'app1, fourth call: 429');
like($r->{headers}{'content-type'}, qr{^application/json}, '429: JSON');
is(jbody($r)->{status}, '429', '429: status in the body');
my $midnight = (int(($now + 8 * 3600) / 86400) + 1) * 86400 - 8 * 3600;
ok(abs($r->{headers}{'retry-after'} - ($midnight - $now)) <= 2,
   '429: Retry-After counts down to midnight UTC+8')
    or diag("Retry-After $r->{headers}{'retry-after'}, expected "
            . ($midnight - $now));
is(jbody($r)->{retry_after}, $r->{headers}{'retry-after'},
   '429: retry_after in the body');
like(jbody($r)->{reset}, qr/^\d{4}-\d\d-\d\dT00:00:00\+08:00$/,
     '429: reset at midnight, QCC time');
is(count('/api/radar_ext/createReport'), 1, '429: QCC not called');

# --- app2 is unaffected -----------------------------------------------------

$r = as(app2 => GET => '/qcc/api/dd_corp_monitor/getExceptions?corpKeyNo=a&checkId=1');
is($r->{status}, 200, 'app2, dd_corp_monitor: 200 after app1 is spent');
ok($m->requests(path => '/api/dd_corp_monitor/getExceptions')->[-1]{sig_ok},
   'app2: signed');
is(as(app2 => GET => '/qcc/api/radar_ext/createReport?reportType=day')
       ->{status}, 403, 'app2, radar_ext: 403');

# QCC's business status is counted per family
$m->behave(path => '/api/dd_risk_mnr/listDdRiskLatestOrderNo',
           answers => [{ status => '112', msg => 'quota' },
                       { status => '116', msg => 'daily total' }]);
is(as(app2 => GET => '/qcc/api/dd_risk_mnr/listDdRiskLatestOrderNo')
       ->{status}, 200, 'app2, dd_risk_mnr: 200 (QCC says 112)');
is(as(app2 => GET => '/qcc/api/dd_risk_mnr/listDdRiskLatestOrderNo')
       ->{status}, 200, 'app2, dd_risk_mnr: 200 (QCC says 116)');

# --- identities --------------------------------------------------------------

$r = $t->get('/hdr/api/radar_ext/createReport?reportType=day');
is($r->{status}, 401, 'no identity: 401');
like($r->{headers}{'content-type'}, qr{^application/json}, '401: JSON');
is(jbody($r)->{status}, '401', '401: status in the body');

# auth_request names the app
$r = $t->http(GET => '/areq/api/dd_risk_mnr/listDdRiskLatestOrderNo',
              headers => ['X-Ticket' => 't2']);
is($r->{status}, 200, 'auth_request names app2: 200');
is($t->http(GET => '/areq/api/radar_ext/createReport?reportType=day',
            headers => ['X-Ticket' => 't2'])->{status}, 403,
   'auth_request names app2: its families only');
is($t->get('/areq/api/dd_risk_mnr/listDdRiskLatestOrderNo')->{status}, 401,
   'auth_request refusing: its 401, before any policy');

# satisfy any lets the address in; the policy then wants an identity
$r = $t->get('/any/api/radar_ext/createReport?reportType=day');
is($r->{status}, 401, 'satisfy any, no credentials: the policy says 401');
is(jbody($r)->{status}, '401', 'satisfy any: JSON, not auth_basic\'s page');
ok(!$r->{headers}{'www-authenticate'}, 'satisfy any: auth_basic not asked');

$r = $t->http(GET => '/hdr/api/dd_risk_mnr/listDdRiskLatestOrderNo',
              headers => ['X-App' => 'app2']);
is($r->{status}, 200, 'identity from a header: 200');

$r = as(stranger => GET => '/qcc/api/radar_ext/createReport?reportType=day');
is($r->{status}, 403, 'an unknown client: 403');
like(jbody($r)->{msg}, qr/unknown client/, 'an unknown client: said so');

is($t->get('/free/api/radar_ext/createReport?reportType=day')->{status}, 200,
   'qcc_policy off: no identity needed');

# a call that never reaches QCC is given back
$r = $t->http(GET => '/down/api/dd_risk_mnr/listDdRiskLatestOrderNo',
              headers => ['X-App' => 'app2']);
is($r->{status}, 502, 'QCC unreachable: 502');

# a call a later check refuses is given back
my $kw = join ',', map { "c$_" } 1 .. 201;
$r = $t->http(GET => '/guarded/api/radar_ext/batchAddRadarCompanyListToExistedUser'
              . "?loginName=x&keyWordList=$kw", headers => ['X-App' => 'ops']);
is($r->{status}, 400, 'qcc_guard refuses 201 keywords');
is(count('/api/radar_ext/batchAddRadarCompanyListToExistedUser'), 0,
   'qcc_guard: QCC not called');

# --- usage in the status endpoint -------------------------------------------

sleep 0.5;    # the last request's end is counted after its answer
my $s = $json->decode($t->get('/status')->{body});
my $z = $s->{policy}{bank};
ok($z, 'status: the zone') or diag(explain($s));
is($z->{period}, 86400, 'status: a day');
is($z->{used}, 8, 'status: the account used 8 (3 + 5)');
is($z->{no_identity}, 1 + 1, 'status: refused without identity (401)');
is($z->{unknown_client}, 1, 'status: refused as unknown (403)');
my $a1 = $z->{clients}{app1};
is($a1->{budget}, 3, 'status: app1 budget');
is($a1->{used}, 3, 'status: app1 used 3');
is($a1->{left}, 0, 'status: app1 has none left');
is($a1->{limited}, 1, 'status: app1 refused once with 429');
is($a1->{families}{radar_ext}{calls}, 2, 'status: app1 radar_ext calls');
is($a1->{families}{radar_ext}{codes}{200}, 1, 'status: app1 radar_ext 200');
is($a1->{families}{radar_ext}{codes}{none}, 1,
   'status: app1 radar_ext answer without status');
is($a1->{families}{'yj/Report'}{calls}, 1, 'status: app1 yj/Report calls');
is($a1->{families}{'yj/Report'}{codes}{200}, 1,
   'status: the capitalised Status of yj/Report read');
is($a1->{families}{dd_corp_monitor}{denied}, 1,
   'status: app1 dd_corp_monitor denied');
ok(!$a1->{families}{dd_corp_monitor}{allowed}, 'status: not allowed');
is($a1->{families}{other}{denied}, 2, 'status: app1 other denied');
ok($a1->{families}{rpt}{allowed}, 'status: an allowed family shown');
my $a2 = $z->{clients}{app2};
is($a2->{used}, 5, 'status: app2 used 5 (the unreachable call given back)');
is($a2->{left}, 1, 'status: app2 has 1 left');
is($a2->{families}{dd_risk_mnr}{calls}, 2 + 2, 'status: app2 dd_risk_mnr');
is($a2->{families}{dd_risk_mnr}{codes}{112}, 1, 'status: QCC 112 counted');
is($a2->{families}{dd_risk_mnr}{codes}{116}, 1, 'status: QCC 116 counted');
is($a2->{families}{radar_ext}{denied}, 2, 'status: app2 radar_ext denied');
is($z->{clients}{ops}{used}, 0, 'status: the call qcc_guard refused is free');
is($z->{clients}{ops}{families}{other}{allowed}, JSON::PP::true,
   'status: families=* allows "other"');

my $p = $t->get('/status?format=prometheus')->{body};
like($p, qr/^qcc_policy_calls_total\{zone="bank",client="app1",family="radar_ext"\} 2$/m,
     'prometheus: calls');
like($p, qr/^qcc_policy_status_total\{zone="bank",client="app2",family="dd_risk_mnr",code="112"\} 1$/m,
     'prometheus: business status');
like($p, qr/^qcc_policy_denied_total\{zone="bank",client="app1",family="dd_corp_monitor"\} 1$/m,
     'prometheus: denied');
like($p, qr/^qcc_policy_limited_total\{zone="bank",client="app1"\} 1$/m,
     'prometheus: limited');
like($p, qr/^qcc_policy_budget_left\{zone="bank",client="app1"\} 0$/m,
     'prometheus: budget left');
like($p, qr/^qcc_policy_budget_left\{zone="bank",client="app2"\} 1$/m,
     'prometheus: budget left of app2');
like($p, qr/^qcc_policy_used\{zone="bank",client="app2"\} 5$/m,
     'prometheus: used');
like($p, qr/^qcc_policy_refused_total\{zone="bank",reason="unknown_client"\} 1$/m,
     'prometheus: unknown clients');
like($p, qr/^qcc_policy_reset_timestamp_seconds\{zone="bank"\} $midnight$/m,
     'prometheus: reset time');
my %types;
for (split /\n/, $p) {
    next unless /^# TYPE (\S+)/;
    $types{$1}++;
}
ok(!(grep { $_ > 1 } values %types), 'prometheus: each metric typed once');
unlike($p, qr/SecretKey/, 'prometheus: no secret');

# the mock saw only signed calls (it checks /api/ only, not /API/)
my @reqs = @{ $m->requests };
ok(@reqs >= 8 && !(grep { $_->{path} =~ m{^/api/} && !$_->{sig_ok} } @reqs),
   'every call upstream signed');

$t->stop;

my $log = $t->read_file('policy.log');
like($log, qr{^app1 200 client=app1 family=yj/Report$}m,
     '$qcc_client and $qcc_family logged');
like($log, qr{^app1 403 client=app1 family=dd_corp_monitor$}m,
     'logged for a refusal too');
like($log, qr{^stranger 403 client=stranger family=radar_ext$}m,
     'an unknown client logged as identified');
like($log, qr{^- 200 client=- family=-$}m, 'no policy: variables empty');

$t->check_error_log;

done_testing;
