#!/usr/bin/perl

# qcc_metrics and the log variables, against the mock QCC:
# - the clock offset is also measured on the fetcher's signed subrequests;
# - the status endpoint's Prometheus output passes a strict parser of the
#   text format (t/lib/QccProm.pm), before and after traffic;
# - calls are counted by API family and HTTP status, the business status
#   of JSON and XML answers (107 for a wrong secret), the upstream
#   latency histogram, the clock offset against the mock's Date header;
# - a pushed order moves the delivery counters and the push-to-delivered
#   histogram;
# - $qcc_status logs 107 for a bad signature and 200 for a good one, also
#   where qcc_metrics is off (the log format names it);
#   $qcc_feed and $qcc_order_no name the order on callback and driver
#   requests;
# - a location without qcc_metrics counts nothing, a reload keeps the
#   counters.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(sleep time);
use QccTest;
use QccMock;
use QccProm;
use QccPush qw(push_conf wait_order);

my $t = QccTest->new;
my $m = QccMock->new;
$t->write_file('secret', "SecretKey\n", 0600);
$t->write_file('wrong', "NotTheSecret\n", 0600);
$t->{vars} = { MOCK => $m->port, PORT2 => QccTest::free_port() };
my $p2 = $t->{vars}{PORT2};

my $conf = <<'EOC' . push_conf(spool => 1, deliver => 0);
log_format qccm 'M $request_uri http=$status qs=$qcc_status '
                'feed=$qcc_feed order=$qcc_order_no';
access_log %%PREFIX%%/metrics.log qccm;

server {
    listen 127.0.0.1:%%PORT2%%;
    qcc_metrics on;

    location /qcc/ {
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /bad/ {
        qcc_secret_key_file %%PREFIX%%/wrong;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /plain/ {
        qcc_metrics off;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location = /teapot { return 418; }
}
EOC
$t->config(http => $conf)->run or BAIL_OUT('no start');

sub prom {
    my $r = $t->get('/qcc/status?format=prometheus');
    is($r->{status}, 200, 'prometheus: 200');
    like($r->{headers}{'content-type'} // '', qr{^text/plain; version=0\.0\.4},
         'prometheus: content type');
    my ($p, @err) = QccProm::parse($r->{body});
    ok(!@err, 'prometheus: parses strictly') or diag(join "\n", @err[0 .. ($#err > 15 ? 15 : $#err)]);
    return $p;
}

sub call { $t->http($_[0], $_[1], port => $p2) }

# --- before any traffic -------------------------------------------------

my $p = prom();
for my $f (qw(qcc_calls_total qcc_business_status_total
              qcc_upstream_response_seconds qcc_clock_offset_seconds
              qcc_delivery_seconds qcc_orders_delivered_total
              qcc_orders_failed_total qcc_orders qcc_callbacks_total)) {
    ok($p->{families}{$f} && $p->{families}{$f}{help},
       "$f declared with HELP and TYPE");
}
is($p->{families}{qcc_upstream_response_seconds}{type}, 'histogram',
   'upstream latency is a histogram');
is($p->{families}{qcc_delivery_seconds}{type}, 'histogram',
   'delivery latency is a histogram');
is(QccProm::value($p, 'qcc_clock_offset_timestamp_seconds'), 0,
   'clock offset never measured yet');
is(QccProm::total($p, 'qcc_calls_total'), 0, 'no call counted yet');

# --- calls ----------------------------------------------------------------

my $r = call(GET => '/qcc/api/radar_ext/createReport?reportType=day');
like($r->{body}, qr/"status":\s*"200"/, 'signed call answered 200');
call(GET => '/qcc/api/radar_ext/createReport?reportType=week');
$r = call(GET => '/bad/api/radar_ext/createReport?reportType=day');
like($r->{body}, qr/"status":\s*"107"/, 'wrong secret: the mock says 107');
$r = call(POST => '/qcc/api/yj/Report/CreateReport?keyNo=x&reportFormat=1&dtype=xml');
like($r->{body}, qr/<Status>200<\/Status>/i, 'an XML answer');
$r = call(GET => '/qcc/api/nosuch/thing');
like($r->{body}, qr/"status":\s*"113"/, 'unknown API: 113');
call(GET => '/plain/api/radar_ext/createReport?reportType=day');
call(GET => '/teapot');

my $t0 = time;
$p = prom();
is(QccProm::value($p, 'qcc_calls_total', family => 'radar_ext', code => 200),
   3, 'radar_ext: 3 calls with HTTP 200 (the qcc_metrics off one not)');
is(QccProm::value($p, 'qcc_calls_total', family => 'yj', code => 200), 1,
   'yj: 1 call');
is(QccProm::value($p, 'qcc_calls_total', family => 'other', code => 200), 1,
   'an unknown API: family other');
is(QccProm::value($p, 'qcc_calls_total', family => 'other', code => 418), 1,
   'a gateway answer: its status');
is(QccProm::value($p, 'qcc_business_status_total', family => 'radar_ext',
                  status => 200), 2, 'business status 200 twice');
is(QccProm::value($p, 'qcc_business_status_total', family => 'radar_ext',
                  status => 107), 1, 'business status 107 once');
is(QccProm::value($p, 'qcc_business_status_total', family => 'yj',
                  status => 200), 1, 'XML Status read');
is(QccProm::value($p, 'qcc_business_status_total', family => 'other',
                  status => 113), 1, '113 counted');
is(QccProm::value($p, 'qcc_upstream_response_seconds_count',
                  family => 'radar_ext'), 3, 'latency: 3 radar_ext answers');
is(QccProm::value($p, 'qcc_upstream_response_seconds_bucket',
                  family => 'radar_ext', le => '+Inf'), 3, 'latency: +Inf');
cmp_ok(QccProm::value($p, 'qcc_upstream_response_seconds_count',
                      family => 'other'), '==', 1,
       'latency: the 418 is not an upstream answer');
my $ts = QccProm::value($p, 'qcc_clock_offset_timestamp_seconds');
cmp_ok(abs($ts - $t0), '<=', 5, 'clock offset measured just now');
cmp_ok(abs(QccProm::value($p, 'qcc_clock_offset_seconds')), '<=', 1,
       'clock offset about 0');

# a slow answer lands in a higher bucket
$m->behave(path => '/api/radar_ext/getReportInfo', delay_ms => 300);
call(GET => '/qcc/api/radar_ext/getReportInfo?orderNo=JKDAY-1');
$m->behave(path => '/api/radar_ext/getReportInfo', clear => JSON::PP::true);
$p = prom();
is(QccProm::value($p, 'qcc_upstream_response_seconds_bucket',
                  family => 'radar_ext', le => '0.25'), 3,
   'latency: the 300 ms answer is above 0.25 s');
is(QccProm::value($p, 'qcc_upstream_response_seconds_bucket',
                  family => 'radar_ext', le => '0.5'), 4,
   'latency: and below 0.5 s');
cmp_ok(QccProm::value($p, 'qcc_upstream_response_seconds_sum',
                      family => 'radar_ext'), '>=', 0.3, 'latency: sum');

# QCC's clock two minutes ahead
$m->behave(clock_offset => 120);
call(GET => '/qcc/api/radar_ext/createReport?reportType=day');
$m->behave(clock_offset => 0);
$p = prom();
my $off = QccProm::value($p, 'qcc_clock_offset_seconds');
ok($off >= 119 && $off <= 121, "clock offset 120 s seen ($off)");

# --- a push, delivered -------------------------------------------------------

my $order = $m->order(feed => 'dd_risk_mnr', records => 2);
my $push = $m->push(feed => 'dd_risk_mnr', orderNo => $order->{orderNo},
                    callback => 'http://127.0.0.1:' . $t->port
                                . '/qcc/callback/risk');
ok($push->{ok}, 'push acknowledged');
my $o = wait_order($t, $order->{orderNo});
is($o && $o->{state}, 'delivered', 'pushed order delivered');
$p = prom();
is(QccProm::value($p, 'qcc_orders_delivered_total', feed => 'dd_risk_mnr'),
   1, 'delivered counter');
is(QccProm::value($p, 'qcc_delivery_seconds_count', feed => 'dd_risk_mnr'),
   1, 'push-to-delivered histogram: one order');
is(QccProm::value($p, 'qcc_delivery_seconds_bucket', feed => 'dd_risk_mnr',
                  le => '5'), 1, 'delivered within 5 s');
is(QccProm::value($p, 'qcc_delivery_seconds_count', feed => 'dd_corp_monitor'),
   0, 'the other feed: none');
is(QccProm::value($p, 'qcc_callbacks_total', feed => 'dd_risk_mnr',
                  outcome => 'ok'), 1, 'callback counted by outcome');
is(QccProm::total($p, 'qcc_calls_total', family => 'dd_risk_mnr'), 0,
   'the callback is not counted as a call');

# The fetcher's signed getDownloadUrl call (a subrequest: an expired link
# is renewed first) measures the clock too, without any client call.
$m->behave(clock_offset => 300);
my $late = $m->order(feed => 'dd_corp_monitor', records => 1,
                     expired => JSON::PP::true);
$push = $m->push(feed => 'dd_corp_monitor', orderNo => $late->{orderNo},
                 callback => 'http://127.0.0.1:' . $t->port
                             . '/qcc/callback/corp');
$o = wait_order($t, $late->{orderNo});
$m->behave(clock_offset => 0);
is($o && $o->{state}, 'delivered', 'an order with an expired link delivered');
$p = prom();
cmp_ok(QccProm::value($p, 'qcc_link_refreshes_total', feed => 'dd_corp_monitor'),
       '>=', 1, 'its link was refreshed');
$off = QccProm::value($p, 'qcc_clock_offset_seconds');
ok($off >= 299 && $off <= 301, "clock offset from the signed pull call ($off)");
is(QccProm::total($p, 'qcc_calls_total', family => 'dd_corp_monitor'), 0,
   'the pull subrequest is not counted as a call');

# --- the log variables -------------------------------------------------------

my $log = '';
for (1 .. 50) {
    $log = $t->read_file('metrics.log') // '';
    last if $log =~ /M \/driver\?/;
    sleep 0.1;
}
like($log, qr{^M /bad/api/radar_ext/createReport\S* http=200 qs=107 feed=- order=-$}m,
     '$qcc_status: 107 for the bad signature');
like($log, qr{^M /qcc/api/radar_ext/createReport\?\S*reportType=week http=200 qs=200 }m,
     '$qcc_status: 200 for a good one');
like($log, qr{^M /qcc/api/yj/Report/CreateReport\S* http=200 qs=200 }m,
     '$qcc_status: from XML');
like($log, qr{^M /teapot http=418 qs=- }m, '$qcc_status: - without an answer');
like($log, qr{^M /plain/api/radar_ext/createReport\S* http=200 qs=200 }m,
     '$qcc_status: where qcc_metrics is off, since the log format names it');
my $no = $order->{orderNo};
like($log, qr{^M /qcc/callback/risk\?\S* http=200 qs=- feed=dd_risk_mnr order=\Q$no\E$}m,
     '$qcc_feed and $qcc_order_no on the callback');
like($log, qr{^M /driver\?\S* http=\d+ qs=- feed=dd_risk_mnr order=\Q$no\E$}m,
     '$qcc_feed and $qcc_order_no on the driver request');
unlike($log, qr/unzipPassword=(?!\*)[^&\s*]{4,}/, 'no password in the log');

# a callback with a hostile orderNo: not echoed
$t->get('/qcc/callback/corp?key=AppKey&orderNo=%22%0A&downloadUrl=x'
        . '&downloadUrlExpiredTime=x&unzipPassword=x');
sleep 0.2;
$log = $t->read_file('metrics.log') // '';
like($log, qr{feed=dd_corp_monitor order=-$}m, 'an invalid orderNo is not logged');

# --- a reload keeps the counters -------------------------------------------

$t->reload;
$p = prom();
is(QccProm::value($p, 'qcc_calls_total', family => 'radar_ext', code => 200),
   5, 'reload: counters kept');

$t->stop;
$t->check_error_log;

done_testing;
