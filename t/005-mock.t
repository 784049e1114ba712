#!/usr/bin/perl
# Smoke test of the mock QCC server (t/mock/qcc-mock) through t/lib/QccMock.pm:
# signature check, canned answers, recording, behaviours, orders (7-Zip AES
# ZIPs), OSS-style links, pushes to a callback.

use strict;
use warnings;
use utf8;

use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::MD5 qw(md5_hex);
use Encode ();
use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

use QccMock;

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

plan skip_all => 'python3 not found' unless grep { -x "$_/python3" }
    split /:/, $ENV{PATH};

my $m = QccMock->new(accounts => [[AppKey => 'SecretKey'],
                                  [OtherKey => 'Other-Secret']]);
ok($m->port, 'mock started on port ' . $m->port);
my $http = HTTP::Tiny->new(timeout => 30);
my $J = JSON::PP->new->utf8->canonical;

# --- signing -----------------------------------------------------------------

is($m->token('AppKey', 1700000000), '02F36A764260A1E063F4CF3F9B13B3E4',
   'token vector of SUMMARY.md');

my $r = $m->api(GET => '/api/radar_ext/createReport?reportType=day');
is($r->{status}, 200, 'HTTP 200');
is($r->{json}{status}, '200', 'signed call passes');
like($r->{json}{result}{orderNo}, qr/^JKDAY-\d+$/, 'orderNo JKDAY-...');
my $rpt_order = $r->{json}{result}{orderNo};

my @bad = (
    ['wrong Token',        token => '0' x 32],
    ['lower-case Token',   token => lc $m->token('AppKey', int time)],
    ['missing headers',    unsigned => 1],
    ['missing key',        nokey => 1],
    ['unknown key',        key => 'NoSuchKey', token => '0' x 32],
    ['old Timespan',       timespan => int(time) - 700],
    ['future Timespan',    timespan => int(time) + 700],
    ['Token of other key', key => 'OtherKey',
                           token => $m->token('AppKey', int time)],
);
for my $b (@bad) {
    my ($name, %o) = @$b;
    my $x = $m->api(GET => '/api/dd_risk_mnr/listDdRiskLatestOrderNo', %o);
    is($x->{status}, 200, "$name: HTTP 200");
    is($x->{json}{status}, '107', "$name: status 107");
    like($x->{json}{msg} // '', qr/签名/, "$name: msg mentions 签名");
}

{
    # Two key arguments, two Token headers, two Timespan headers.
    my $ts = int time;
    my $tok = $m->token('AppKey', $ts);
    my $u = $m->url('/api/dd_risk_mnr/listDdRiskLatestOrderNo');
    my $x = $http->get("$u?key=AppKey&key=AppKey",
                       { headers => { Timespan => $ts, Token => $tok } });
    is($J->decode($x->{content})->{status}, '107', 'two key arguments: 107');
    $x = $http->get("$u?key=AppKey",
                    { headers => { Timespan => $ts, Token => [$tok, $tok] } });
    is($J->decode($x->{content})->{status}, '107', 'two Token headers: 107');
    $x = $http->get("$u?key=AppKey",
                    { headers => { Timespan => [$ts, $ts], Token => $tok } });
    is($J->decode($x->{content})->{status}, '107', 'two Timespan headers: 107');
    $x = $http->get("$u?key=AppKey",
                    { headers => { timespan => $ts, TOKEN => $tok } });
    is($J->decode($x->{content})->{status}, '201',
       'header names in any case; empty list answers 201');
}

$r = $m->api(GET => '/api/dd_risk_mnr/listDdRiskLatestOrderNo',
             key => 'OtherKey');
is($r->{json}{status}, '201', 'second account signs with its own secret');

# --- recording ---------------------------------------------------------------

{
    my $reqs = $m->requests(path => '/api/radar_ext/createReport');
    is(scalar @$reqs, 1, 'one createReport recorded');
    my $q = $reqs->[0];
    is($q->{method}, 'GET', 'method recorded');
    is($q->{query}, 'reportType=day&key=AppKey', 'raw query recorded');
    is($q->{signature}, 'ok', 'verdict ok');
    is($q->{account}, 'AppKey', 'account recorded');
    is(($m->header($q, 'Token'))[0], $m->token('AppKey',
       ($m->header($q, 'Timespan'))[0]), 'Token header recorded');
    my @names = map { lc $_->[0] } @{ $q->{headers} };
    ok((grep { $_ eq 'timespan' } @names) && (grep { $_ eq 'host' } @names),
       'headers as [name, value] list');
    my $all = $m->requests;
    my ($other) = grep { ($_->{account} // '') eq 'OtherKey'
                         && $_->{sig_ok} } @$all;
    ok($other, 'request of the other account recorded as such');
    my $secret_seen = grep { $J->encode($_) =~ /SecretKey|Other-Secret/ }
                      @$all;
    is($secret_seen, 0, 'no secret in recorded requests');
}

# --- canned answers ------------------------------------------------------------

{
    my $kw = '小米科技有限责任公司,广东小米科技有限责任公司';
    my $enc = join ',', map { QccMock::_esc($_) } split /,/, $kw;
    $r = $m->api(GET => '/api/radar_ext/batchAddRadarCompanyListToExistedUser'
                 . "?loginName=13800000000&keyWordList=$enc");
    is($r->{json}{status}, '200', 'batch add: 200');
    is_deeply([map { $_->{keyWord} } @{ $r->{json}{result}{batchList} }],
              [split /,/, $kw], 'batchList echoes the keywords (UTF-8)');
    $r = $m->api(GET => '/api/radar_ext/batchCancelRadarCompanyFromExistedUserList'
                 . '?loginNameList=13336569865,13336569850&keyWord='
                 . QccMock::_esc('小米科技有限责任公司'));
    is_deeply([map { $_->{loginName} } @{ $r->{json}{result}{batchList} }],
              ['13336569865', '13336569850'], 'batchList of login names');
    $r = $m->api(GET => '/api/radar_ext/batchAddRadarCompanyListToExistedUser'
                 . '?loginName=1&keyWordList=' . QccMock::_esc('测试不存在'));
    is($r->{json}{status}, '500', 'unknown keyword: 500');
    is($r->{json}{result}{batchList}[0]{keyNo}, undef, 'keyNo null');

    $r = $m->api(GET => "/api/radar_ext/getReportInfo?orderNo=$rpt_order");
    is($r->{json}{result}{reportStatus}, 'S', 'risk report ready');
    my $ru = $r->{json}{result}{reportUrl};
    like($ru, qr{^\Q${\ $m->base_url}\E/files/OssMonitorRpt/.*\.zip\?Expires=\d+&OSSAccessKeyId=mock&Signature=},
         'reportUrl absolute on the files host');
    my $f = $http->get($ru);
    is($f->{status}, 200, 'risk report downloads');
    like($f->{content}, qr/^PK\x03\x04/, 'risk report is a ZIP');

    # Credit report: POST, JSON and XML, retrieve pdf and word.
    $r = $m->api(POST => '/api/yj/Report/CreateReport?keyNo='
                 . QccMock::_esc('苏州朗动网络科技有限公司'));
    is($r->{json}{Status}, '200', 'CreateReport: Status 200');
    my $yj = $r->{json}{Result}{OrderNo};
    ok($yj, 'OrderNo');
    $r = $m->api(GET => '/api/yj/Report/CreateReport?keyNo=x');
    is($r->{json}{Status}, '118', 'CreateReport by GET: 118');
    $r = $m->api(POST => "/api/yj/Report/GetReportInfo?orderNo=$yj");
    is($r->{json}{Result}{ReportStatus}, 'S', 'GetReportInfo JSON');
    my $rel = $r->{json}{Result}{ReportUrl};
    like($rel, qr{^/api/rpt/retrieve\?code=[0-9a-f]+$}, 'ReportUrl relative');
    my $x = $m->api(POST => "/api/yj/Report/GetReportInfo?orderNo=$yj&dtype=xml");
    like($x->{headers}{'content-type'}, qr{xml}, 'XML content type');
    my $xml = $x->{content};
    utf8::decode($xml);
    like($xml, qr{^<\?xml version="1.0" encoding="UTF-8"\?>\r?\n<YJServiceResult }s,
         'XML answer');
    like($xml, qr{<Status>200</Status>.*<ReportUrl>\Q$rel\E</ReportUrl>}s,
         'XML carries the same content');
    my $p1 = $m->api(GET => $rel);
    my $p2 = $m->api(GET => $rel);
    like($p1->{content}, qr/^%PDF-1\.4/, 'retrieve serves a PDF');
    is(md5_hex($p1->{content}), md5_hex($p2->{content}), 'deterministic');
    my ($code) = $rel =~ /code=(\w+)/;
    is(md5_hex($m->retrieve($code)),
       md5_hex($p1->{content}), '/__mock/retrieve gives the same bytes');
    my $reports = $m->reports;
    ok(-f $reports->{radar}{$rpt_order}{path}, 'radar report file on disk');
    is($m->api(GET => $rel, token => '0' x 32)->{json}{status}, '107',
       'retrieve is signature-checked');
    $r = $m->api(POST => '/api/yj/Report/CreateReport?keyNo=x&reportFormat=2');
    $r = $m->api(POST => '/api/yj/Report/GetReportInfo?orderNo='
                 . $r->{json}{Result}{OrderNo});
    my $w = $m->api(GET => $r->{json}{Result}{ReportUrl});
    like($w->{content}, qr/^PK\x03\x04/, 'word report is a docx (ZIP)');
    like($w->{headers}{'content-type'}, qr/wordprocessingml/, 'docx type');

    $m->config(report_pending_polls => 1);
    $r = $m->api(POST => '/api/yj/Report/CreateReport?keyNo=p');
    my $po = $r->{json}{Result}{OrderNo};
    is($m->api(POST => "/api/yj/Report/GetReportInfo?orderNo=$po")
       ->{json}{Result}{ReportStatus}, 'P', 'pending poll: P');
    is($m->api(POST => "/api/yj/Report/GetReportInfo?orderNo=$po")
       ->{json}{Result}{ReportStatus}, 'S', 'then S');
    $m->config(report_pending_polls => 0);

    $r = $m->api(GET => '/api/dd_corp_monitor/getShiXinList?corpKeyNo=a'
                 . '&checkId=b&pageIndex=2&pageSize=20');
    is($r->{json}{status}, '200', 'getShiXinList');
    is_deeply($r->{json}{paging}, { pageSize => 20, pageIndex => 2,
                                    totalRecords => 23 }, 'paging');
    is(scalar @{ $r->{json}{resultList} }, 3, 'last page has 3 items');
    $r = $m->api(GET => '/api/dd_corp_monitor/getShiXinList?corpKeyNo=a'
                 . '&checkId=b&pageSize=21');
    is($r->{json}{status}, '202', 'pageSize 21: 202');
    for my $p (qw(getExceptions getSeriousViolation)) {
        $r = $m->api(GET => "/api/dd_corp_monitor/$p?corpKeyNo=a&checkId=b");
        is($r->{json}{status}, '200', "$p");
        ok(@{ $r->{json}{resultList} }, "$p resultList");
    }
    $r = $m->api(GET => '/api/dd_risk_mnr/setDdRiskApiPushSetting?enablePush=A'
                 . '&callbackUrl=http%3A%2F%2Ftest.domain.com%2Fcb&pushPeriodTime=9');
    is($r->{json}{result}{callbackUrl}, 'http://test.domain.com/cb',
       'push setting echoes callbackUrl');
    $r = $m->api(GET => '/api/radar_ext/noSuchApi');
    is($r->{json}{status}, '113', 'unknown API: 113');
}

# --- orders, ZIPs, links ---------------------------------------------------------

my $have7z = grep { -x "$_/7z" } split /:/, $ENV{PATH};
SKIP: {
    skip '7z not installed', 1 unless $have7z;

    my $o = $m->order(feed => 'dd_risk_mnr', records => 4);
    like($o->{orderNo}, qr/^DDMON\d{22}$/, 'orderNo DDMON...');
    like($o->{downloadUrlExpiredTime}, qr/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/,
         'expiry time format');
    my $j = $J->decode(Encode::encode('UTF-8', $o->{json}));
    is($j->{totalSize}, 4, 'totalSize');
    is(scalar @{ $j->{result} }, 4, '4 records');
    ok($j->{result}[0]{corpName} =~ /公司/, 'Chinese company name');

    my $z = $http->get($o->{downloadUrl});
    is($z->{status}, 200, 'ZIP downloads');
    is(sha256_hex($z->{content}), $o->{zip_sha256}, 'ZIP as reported');
    my $tmp = tempdir(CLEANUP => 1);
    open my $fh, '>:raw', "$tmp/o.zip" or die;
    print $fh $z->{content};
    close $fh;
    system("cd $tmp && 7z x -y -p'$o->{password}' o.zip >/dev/null 2>&1");
    ok(-f "$tmp/dd_risk_corp.json", '7z extracts dd_risk_corp.json');
    open $fh, '<:raw', "$tmp/dd_risk_corp.json" or die;
    my $plain = do { local $/; <$fh> };
    is(sha256_hex($plain), $o->{json_sha256}, 'same bytes as the order JSON');
    my $zl = `7z l -slt $tmp/o.zip 2>/dev/null`;
    like($zl, qr/Method = AES-256 Deflate/, 'AES-256 + Deflate');

    $r = $m->api(GET => '/api/dd_risk_mnr/listDdRiskLatestOrderNo');
    is($r->{json}{resultList}[0]{orderNo}, $o->{orderNo}, 'order listed');
    $r = $m->api(GET => "/api/dd_risk_mnr/getDdRiskDownloadUrl?orderNo=$o->{orderNo}");
    is($r->{json}{result}{unzipPassword}, $o->{password}, 'link call password');
    is($http->get($r->{json}{result}{downloadUrl})->{status}, 200,
       'link from the link call works');
    $r = $m->api(GET => "/api/dd_corp_monitor/getDownloadUrl?orderNo=$o->{orderNo}");
    is($r->{json}{status}, '201', 'other feed does not know the order');

    my $c = $m->order(feed => 'dd_corp_monitor', records => 2, mode => 'copy');
    $r = $m->api(GET => '/api/dd_corp_monitor/listLatestOrderNo');
    is($r->{json}{' resultList'}[0]{orderNo}, $c->{orderNo},
       'corp list spelled " resultList"');
    my $cj = $J->decode(Encode::encode('UTF-8', $c->{json}));
    ok(exists $cj->{result}[0]{changeExtend}, 'corp records');

    # Expired links and tampered signatures.
    my $e = $m->order(feed => 'dd_risk_mnr', expired => 1);
    my $x = $http->get($e->{downloadUrl});
    is($x->{status}, 403, 'expired link: 403');
    like($x->{content}, qr{<Code>AccessDenied</Code>.*Request has expired}s,
         'OSS-style XML error');
    (my $bad = $o->{downloadUrl}) =~ s/Signature=[^&]+/Signature=AAAA/;
    is($http->get($bad)->{status}, 403, 'bad Signature: 403');
    (my $bare = $o->{downloadUrl}) =~ s/\?.*//;
    is($http->get($bare)->{status}, 200, 'no arguments: served');
    is($http->get($m->url('/files/DdMonitor/none.zip'))->{status}, 404,
       'missing file: 404');

    # Behaviours on a file path.
    my $zp = "/files/DdMonitor/$o->{orderNo}.zip";
    $m->behave(path => $zp, fail => [500, 500], then => 200);
    is($http->get($o->{downloadUrl})->{status}, 500, 'fail 1: 500');
    is($http->get($o->{downloadUrl})->{status}, 500, 'fail 2: 500');
    is($http->get($o->{downloadUrl})->{status}, 200, 'then 200');
    $m->behave(path => $zp, status_forever => 404);
    is($http->get($o->{downloadUrl})->{status}, 404, 'status_forever 404')
        for 1 .. 2;
    $m->behave(path => $zp, clear => 1);
    $m->behave(path => $zp, redirect => 'http://evil.example/x');
    my $nr = HTTP::Tiny->new(max_redirect => 0)->get($o->{downloadUrl});
    is($nr->{status}, 302, 'redirect');
    is($nr->{headers}{location}, 'http://evil.example/x', 'Location');
    # HTTP::Tiny retries a GET once when the connection closes unanswered.
    $m->behave(path => $zp, drop => 2);
    is(HTTP::Tiny->new(keep_alive => 0)->get($o->{downloadUrl})->{status},
       599, 'drop: no answer');
    is($http->get($o->{downloadUrl})->{status}, 200, 'then served');
    $m->behave(path => $zp, truncate_bytes => 10);
    my $tr = $http->get($o->{downloadUrl});
    isnt($tr->{status}, 200, 'truncated download is not a success')
        or diag explain $tr;
    $m->behave(path => $zp, clear => 1);

    # Pushes to a callback.
    my ($cbport, $cbpid, $cbdir) = start_callback();
    my $cb = "http://127.0.0.1:$cbport/qcc/callback/risk";
    my $p = $m->push(feed => 'dd_risk_mnr', orderNo => $o->{orderNo},
                     callback => $cb);
    ok($p->{ok}, 'push acknowledged') or diag explain $p;
    my ($line) = slurp("$cbdir/log") =~ /^(GET \S+)/m;
    my $eu = QccMock::_esc($o->{downloadUrl});
    (my $et = $o->{downloadUrlExpiredTime}) =~ s/ /%20/;
    $et =~ s/:/%3A/g;
    is($line, "GET /qcc/callback/risk?key=AppKey&orderNo=$o->{orderNo}"
       . "&downloadUrl=$eu&downloadUrlExpiredTime=$et"
       . "&unzipPassword=$o->{password}", 'callback request like QCC');
    like($line, qr/downloadUrlExpiredTime=\d{4}-\d\d-\d\d%20\d\d%3A\d\d%3A\d\d/,
         'expiry percent-encoded');

    set_cb_status($cbdir, 503);
    for my $i (1 .. 5) {
        $p = $m->push(feed => 'dd_risk_mnr', orderNo => $o->{orderNo},
                      callback => $cb);
        is($p->{consecutive_failures}, $i, "failure $i counted");
    }
    $p = $m->push(feed => 'dd_risk_mnr', orderNo => $o->{orderNo},
                  callback => $cb);
    ok($p->{suspended} && !$p->{pushed}, 'suspended after 5 failures');
    my $st = $m->stats;
    ok($st->{pushes}{dd_risk_mnr}{suspended}, 'stats: suspended');
    is($m->api(GET => '/api/dd_risk_mnr/activeDdRiskCallCallbackUrl')
       ->{json}{msg}, '激活成功', 'activate');
    $st = $m->stats;
    is($st->{activations}{dd_risk_mnr}, 1, 'one activation counted');
    ok(!$st->{pushes}{dd_risk_mnr}{suspended}, 'no longer suspended');
    set_cb_status($cbdir, 200);
    $p = $m->push(feed => 'dd_risk_mnr', callback => $cb);
    ok($p->{ok} && $p->{order}{orderNo}, 'push without orderNo creates one');

    my $many = $m->push_many(
        feed => 'dd_corp_monitor', count => 6, concurrency => 3,
        callback => $cb, order => { records => 1 });
    is($many->{ok}, 6, 'push_many: 6 pushed');
    is(scalar(grep { $_->{feed} eq 'dd_corp_monitor' } @{ $m->pushes }), 6,
       'pushes lists them');
    my %seen = map { $_->{orderNo} => 1 } @{ $many->{results} };
    is(scalar keys %seen, 6, 'six distinct orders');

    # A slow download (rate in bytes per second).
    $m->behave(path => $zp, rate => 4000);
    my $t0 = time;
    my $slow = $http->get($o->{downloadUrl});
    ok($slow->{status} == 200 && time - $t0 > 0.1, 'rate-limited download')
        or diag explain [$slow->{status}, time - $t0];
    $m->behave(path => $zp, clear => 1);
    kill 'TERM', $cbpid;
    waitpid $cbpid, 0;
    $p = $m->push(feed => 'dd_risk_mnr', orderNo => $o->{orderNo},
                  callback => $cb);
    ok($p->{pushed} && !$p->{ok} && $p->{error}, 'refused callback: failure')
        or diag explain $p;
}

# --- behaviours on API paths, stats, concurrency ---------------------------------

{
    my $lp = '/api/dd_risk_mnr/listDdRiskLatestOrderNo';
    $m->behave(path => $lp, answers => [{ status => '107', msg => 'a' },
                                        { status => '116', msg => 'b' }]);
    is($m->api(GET => $lp)->{json}{status}, '107', 'answers 1');
    is($m->api(GET => $lp)->{json}{status}, '116', 'answers 2');
    like($m->api(GET => $lp)->{json}{status}, qr/^20[01]$/, 'then normal');

    my $bp = '/api/radar_ext/batchAddRadarCompanyListToExistedUser';
    $m->behave(path => $bp, delay_ms => 1500);
    my $before = $m->stats->{endpoints}{$bp}{count};
    my @kids;
    for (1 .. 3) {
        my $pid = fork;
        if (!$pid) {
            $m->{pid} = undef;
            $m->api(GET => "$bp?loginName=1&keyWordList=a");
            POSIX::_exit(0);
        }
        CORE::push @kids, $pid;
    }
    waitpid $_, 0 for @kids;
    my $st = $m->stats;
    is($st->{max_in_flight}{$bp}, 3, 'three in flight at once');
    is($st->{endpoints}{$bp}{count} - $before, 3, 'three counted');
}

# --- run-time configuration, robustness ------------------------------------------

{
    my $c = $m->config(files_base => 'http://localhost:' . $m->port);
    is($c->{files_base}, 'http://localhost:' . $m->port, 'config files_base');
    my $r = $m->api(GET => '/api/radar_ext/createReport?reportType=week');
    $r = $m->api(GET => '/api/radar_ext/getReportInfo?orderNo='
                 . $r->{json}{result}{orderNo});
    like($r->{json}{result}{reportUrl}, qr{^http://localhost:\d+/files/},
         'reportUrl on the configured files host');
    $m->config(files_base => $m->base_url, clock_offset => 3600);
    is($m->api(GET => '/api/dd_risk_mnr/listDdRiskLatestOrderNo')
       ->{json}{status}, '107', 'mock clock ahead: Timespan out of window');
    $m->config(clock_offset => 0);

    for my $junk ("GARBAGE\r\n\r\n",
                  "GET /api/x?key=%ZZ%E4 HTTP/1.1\r\nHost: x\r\n"
                  . "Content-Length: nope\r\n\r\n",
                  "POST /__mock/order HTTP/1.1\r\nHost: x\r\n"
                  . "Content-Length: 5\r\n\r\n[1,2]",
                  "POST /__mock/behave HTTP/1.1\r\nHost: x\r\n"
                  . "Content-Length: 30\r\n\r\n{\"path\":\"/x\",\"fail\":\"abc\"}  ",
                  "GET /files/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n") {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $m->port) or die;
        print $s $junk;
        shutdown $s, 1;
        local $/;
        my $ans = <$s> // '';
        like($ans, qr{^HTTP/1\.[01] 4\d\d|Error code: 400}, 'junk refused with 4xx: '
             . substr($junk, 0, 20));
    }
    is($m->api(GET => '/api/dd_risk_mnr/listDdRiskLatestOrderNo')
       ->{json}{status}, '200', 'still serving after junk');
}

# --- reset, stop ---------------------------------------------------------------------

$m->reset;
is(scalar @{ $m->requests }, 0, 'reset clears requests');
is($m->api(GET => '/api/dd_risk_mnr/listDdRiskLatestOrderNo')->{json}{status},
   '201', 'reset clears orders');

my $pid = $m->pid;
ok(kill(0, $pid), 'mock running');
$m->stop;
ok(!kill(0, $pid), 'mock stopped by PID');
ok(!-e $m->dir . '/mock.pid', 'pid file removed');
unlike($m->log_text, qr/SecretKey|Other-Secret/, 'no secret in the log');
unlike($m->log_text, qr/handler error|control error|Traceback/,
       'no internal error in the log');

# --- HTTPS (tls => 1) ---------------------------------------------------------------

SKIP: {
    my $have = sub { my $b = shift; grep { -x "$_/$b" } split /:/, $ENV{PATH} };
    skip 'openssl or curl not installed', 3
        unless $have->('openssl') && $have->('curl');
    my $s = QccMock->new(tls => 1);
    ok($s->tls_port, 'TLS port ' . $s->tls_port);
    my $ts = int time;
    my $tok = $s->token('AppKey', $ts);
    my $out = `curl -sS --cacert ${\ $s->tls_ca} -H 'Timespan: $ts' -H 'Token: $tok' '${\ $s->tls_url}/api/dd_risk_mnr/listDdRiskLatestOrderNo?key=AppKey' 2>&1`;
    like($out, qr/"status": "201"/, 'signed call over TLS, verified')
        or diag $out;
    $out = `curl -sS --resolve pro.qcc.com:${\ $s->tls_port}:127.0.0.1 --cacert ${\ $s->tls_ca} 'https://pro.qcc.com:${\ $s->tls_port}/api/x?key=AppKey' 2>&1`;
    like($out, qr/"status": "107"/, 'certificate valid for pro.qcc.com')
        or diag $out;
    $s->stop;
}

# --- the sandbox's scheduled pushes (--push-after) ------------------------------

SKIP: {
    skip '7z not installed', 1 unless $have7z;
    my ($cbport, $cbpid, $cbdir) = start_callback();
    my $s = QccMock->new(push_after => 0.3,
        callback_risk => "http://127.0.0.1:$cbport/qcc/callback/risk",
        callback_corp => "http://127.0.0.1:$cbport/qcc/callback/corp");
    my $deadline = time + 20;
    my $st;
    while (time < $deadline) {
        $st = $s->stats;
        last if $st->{pushes}{dd_risk_mnr}{ok}
             && $st->{pushes}{dd_corp_monitor}{ok};
        sleep 0.2;
    }
    is($st->{pushes}{$_}{ok}, 1, "sandbox pushed one $_ order")
        for qw(dd_risk_mnr dd_corp_monitor);
    my $log = slurp("$cbdir/log");
    like($log, qr{^GET /qcc/callback/risk\?key=AppKey&orderNo=DDMON}m,
         'risk callback called');
    like($log, qr{^GET /qcc/callback/corp\?key=AppKey&orderNo=DDMON}m,
         'corp callback called');
    my $p = $s->push(feed => 'dd_corp_monitor');
    ok($p->{ok}, 'another push to the --callback-corp URL');
    $s->stop;
    kill 'TERM', $cbpid;
    waitpid $cbpid, 0;
}

done_testing;

# --- a tiny callback receiver -------------------------------------------------------

sub slurp {
    open my $fh, '<:raw', $_[0] or return '';
    local $/;
    return scalar <$fh>;
}

sub set_cb_status {
    my ($dir, $s) = @_;
    open my $fh, '>', "$dir/status.tmp" or die;
    print $fh $s;
    close $fh;
    rename "$dir/status.tmp", "$dir/status";
}

sub start_callback {
    my $dir = tempdir(CLEANUP => 1);
    set_cb_status($dir, 200);
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                    Listen => 16, ReuseAddr => 1) or die $!;
    my $port = $srv->sockport;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        while (my $c = $srv->accept) {
            my $req = '';
            while (my $l = <$c>) {
                $req .= $l;
                last if $l =~ /^\r?\n$/;
            }
            open my $log, '>>', "$dir/log";
            print $log $req;
            close $log;
            my $s = slurp("$dir/status") || 200;
            my $body = $s == 200 ? '{"status":"200","msg":"成功"}'
                                 : '{"status":"500","msg":"busy"}';
            utf8::encode($body);
            print $c "HTTP/1.1 $s X\r\nContent-Type: application/json\r\n"
                . 'Content-Length: ' . length($body)
                . "\r\nConnection: close\r\n\r\n$body";
            close $c;
        }
        POSIX::_exit(0);
    }
    close $srv;
    return ($port, $pid, $dir);
}
