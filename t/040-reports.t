#!/usr/bin/perl

# Reports end to end through the gateway alone: a credit report (pdf and
# word, in the JSON and the XML flow) is created, polled and retrieved
# under /qcc/ (its ReportUrl is relative to QCC's host), a daily risk
# report is created and polled there and downloaded through the files
# route (its reportUrl is an absolute OSS link).  Files arrive byte for
# byte, XML answers pass byte for byte, the files route reaches only
# qcc_download_hosts, never carries key, Token or Timespan, keeps the OSS
# query byte for byte, and streams.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use Digest::SHA;
use JSON::PP;

my $t = QccTest->new;
my $m = QccMock->new(report_pending_polls => 1);

$t->write_file('secret', "SecretKey\n", 0600);
$t->{vars} = { MOCK => $m->port };

$t->config(http => <<'EOC')->run or BAIL_OUT('nginx did not start');
server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    qcc_secret_key_file %%PREFIX%%/secret;

    location /qcc/ {
        qcc_guard on;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;

        location /qcc/files/ {
            qcc_sign off;
            qcc_files;
            qcc_download_hosts 127.0.0.1:%%MOCK%% pro-files.qichacha.com;
            proxy_pass $qcc_files_url;
            proxy_buffering off;
            add_header X-Files-Host $qcc_files_host;
        }
    }

    location /rw/ {
        # answers with links rewritten to the files route
        qcc_sign on;
        qcc_download_hosts 127.0.0.1:%%MOCK%%;
        qcc_files_rewrite /qcc/files/;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /rwabs/ {
        qcc_sign on;
        qcc_download_hosts 127.0.0.1:%%MOCK%%;
        qcc_files_rewrite http://gateway.internal:8080/qcc/files/;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
        proxy_buffer_size 1k;
        proxy_buffers 4 1k;
        proxy_busy_buffers_size 1k;
        proxy_max_temp_file_size 1m;
    }
}
EOC

sub last_id {
    my $r = $m->requests;
    return @$r ? $r->[-1]{id} : 0;
}

# --- the credit report: create, poll, retrieve ------------------------------

for my $case ([1, 'json', 'application/pdf', qr/^%PDF-/],
              [2, 'json', 'application/vnd.openxmlformats', qr/^PK\x03\x04/],
              [1, 'xml', 'application/pdf', qr/^%PDF-/],
              [2, 'xml', 'application/vnd.openxmlformats', qr/^PK\x03\x04/])
{
    my ($fmt, $dtype, $ctype, $magic) = @$case;
    my $name = "credit report format $fmt, $dtype";

    my $r = $t->http(POST => '/qcc/api/yj/Report/CreateReport?keyNo='
                     . '%E5%B0%8F%E7%B1%B3%E7%A7%91%E6%8A%80'
                     . "&reportFormat=$fmt&dtype=$dtype", body => '');
    is($r->{status}, 200, "$name: created");
    my ($order) = $dtype eq 'xml'
        ? $r->{body} =~ m{<OrderNo>([0-9a-f]+)</OrderNo>}
        : $r->{body} =~ m{"OrderNo":\s*"([0-9a-f]+)"};
    ok($order, "$name: OrderNo") or diag($r->{body});

    # the first poll answers P (pending), the second S
    my ($url, $polls);
    for (1 .. 3) {
        $polls++;
        $r = $t->http(POST => "/qcc/api/yj/Report/GetReportInfo?orderNo="
                      . "$order&dtype=$dtype", body => '');
        ($url) = $r->{body} =~ m{ReportUrl(?:>|":\s*")(/api/rpt/[^<"]+)};
        last if $url;
    }
    is($polls, 2, "$name: ready on the second poll");
    like($url // '', qr{^/api/rpt/retrieve\?code=[0-9a-f]{32}$},
         "$name: a relative ReportUrl");

    if ($dtype eq 'xml') {
        # byte for byte: the same call straight to the mock
        my $direct = $m->api(POST => "/api/yj/Report/GetReportInfo?orderNo="
                             . "$order&dtype=xml");
        is($r->{body}, $direct->{content}, "$name: XML byte for byte");
        like($r->{headers}{'content-type'}, qr{^application/xml},
             "$name: XML content type kept");
    }

    my ($code) = ($url // '') =~ /code=(\w+)/;
    $r = $t->get('/qcc' . ($url // '/none'));
    is($r->{status}, 200, "$name: retrieved through /qcc");
    like($r->{headers}{'content-type'} // '', qr{^\Q$ctype\E},
         "$name: content type");
    like($r->{headers}{'content-disposition'} // '', qr/^attachment/,
         "$name: Content-Disposition kept");
    like($r->{body}, $magic, "$name: the file");
    ok($code && $r->{body} eq $m->retrieve($code),
       "$name: byte-identical to what QCC serves");
}

my $info = $m->requests(path => '/api/yj/Report/GetReportInfo');
is(scalar(grep { !$_->{sig_ok} } @$info), 0, 'every poll was signed');

# --- the daily risk report: create, poll, download via the files route -----

my $r = $t->get('/qcc/api/radar_ext/createReport?reportType=day');
my ($order) = $r->{body} =~ /"orderNo":\s*"(JKDAY-\d+)"/;
ok($order, 'daily report ordered') or diag($r->{body});

my $url;
for (1 .. 3) {
    $r = $t->get("/qcc/api/radar_ext/getReportInfo?orderNo=$order");
    ($url) = $r->{body} =~ /"reportUrl":\s*"([^"]+)"/;
    last if $url;
}
like($url // '', qr{^http://127\.0\.0\.1:\d+/files/OssMonitorRpt/.*\?Expires=\d+&OSSAccessKeyId=mock&Signature=\S+$},
     'an absolute signed reportUrl');
$url //= 'http://127.0.0.1:1/none?Expires=1';

my ($path, $query) = $url =~ m{^http://[^/]+(/[^?]*)\?(.*)$};
my $host = '127.0.0.1:' . $m->port;
my $file = $m->reports->{radar}{$order}{path}
    // $m->files_dir . '/' . $m->reports->{radar}{$order}{rel};
my $want = $t->read_file($file);
ok(defined $want && length $want > 1000, 'the report file exists');

(my $files = $url) =~ s{^http://}{/qcc/files/http/};
my $since = last_id();
$r = $t->get($files, headers => [ Token => 'CLIENT-TOKEN',
                                  Timespan => '1700000000' ]);
is($r->{status}, 200, 'files route: 200');
is($r->{headers}{'x-files-host'}, '127.0.0.1',
   'files route: $qcc_files_host is the host without its port');
ok(defined $want && $r->{body} eq $want, 'files route: byte-identical ZIP');

my ($rec) = grep { $_->{kind} eq 'files' } @{ $m->requests(since => $since) };
ok($rec, 'files route: reached the files host') or $rec = { headers => [] };
is($rec->{query}, $query, 'files route: OSS query byte for byte');
is($rec->{status}, 200, 'files route: the OSS signature checked out');
is(scalar $m->header($rec, 'Token'), 0, 'files route: no Token');
is(scalar $m->header($rec, 'Timespan'), 0, 'files route: no Timespan');
ok(!grep({ lc $_->[0] eq 'key' } @{ $rec->{args} || [] }),
   'files route: no key argument');
is(join(',', $m->header($rec, 'Host')), $host, 'files route: Host of the link');

# The absolute URL as it is after the prefix works too, and a client's
# key argument is dropped while the rest stays byte for byte.
$since = last_id();
$r = $t->get("/qcc/files/$url&key=AppKey");
is($r->{status}, 200, 'files route, URL as is with a key: 200');
($rec) = grep { $_->{kind} eq 'files' } @{ $m->requests(since => $since) };
is($rec && $rec->{query}, $query, 'files route: the key argument dropped');

# HEAD
$r = $t->http(HEAD => $files);
is($r->{status}, 200, 'files route: HEAD');

# --- refusals: nothing reaches any host ---------------------------------------

my $mockport = $m->port;
my @refused = (
    [ "/qcc/files/http/evil.example$path?$query", 403, 'another host' ],
    [ "/qcc/files/http/127.0.0.1:1$path?$query", 403, 'another port' ],
    [ "/qcc/files/http/127.0.0.2:$mockport$path", 403, 'another address' ],
    [ "/qcc/files/http/pro-files.qichacha.com.evil.example/x", 403,
      'a suffix of an allowed host' ],
    [ "/qcc/files/http/u\@127.0.0.1:$mockport$path", 400, 'userinfo' ],
    [ "/qcc/files/ftp/127.0.0.1:$mockport$path", 400, 'ftp' ],
    [ "/qcc/files/http/", 400, 'no host' ],
    [ "/qcc/files/", 400, 'nothing' ],
    [ "/qcc/%66iles/http/127.0.0.1:$mockport$path", 400, 'encoded prefix' ],
);
$since = last_id();
for my $c (@refused) {
    my ($uri, $status, $name) = @$c;
    $r = $t->get($uri);
    is($r->{status}, $status, "files route refuses $name: $status");
    like($r->{body}, qr/^\{"status":"$status","msg":"[^"]+"\}$/,
         "files route refuses $name: JSON");
}
$r = $t->http(POST => $files, body => 'x');
is($r->{status}, 405, 'files route: POST refused');
is(scalar @{ $m->requests(since => $since) }, 0,
   'no refused download reached the mock');

# --- streaming: the first bytes arrive long before the last ------------------

$m->behave(path => $m->reports->{radar}{$order}{url_path} // '/x',
           rate => 40000);
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port)
    or die "connect: $!";
my $t0 = time;
print $s "GET $files HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
my ($got, $first) = ('', undef);
while (sysread($s, my $buf, 65536)) {
    $first //= time - $t0 if length($got . $buf) > 20000;
    $got .= $buf;
}
my $total = time - $t0;
close $s;
my $resp = QccTest::parse_response($got);
ok(defined $want && $resp->{body} eq $want, 'streamed: byte-identical');
ok(defined $first && $first < $total / 2,
   sprintf('streamed: 20 kB after %.2fs of %.2fs', $first // -1, $total));

# --- optional link rewriting (qcc_files_rewrite) ----------------------------

$r = $t->get("/rw/api/radar_ext/getReportInfo?orderNo=$order");
my ($rw) = $r->{body} =~ /"reportUrl":\s*"([^"]+)"/;
like($rw // '', qr{^\Q/qcc/files/http/$host$path?\EExpires=\d+&OSSAccessKeyId=mock&Signature=},
     'rewriting: reportUrl points at the files route');
$r = $t->get($rw // '/none');
ok(defined $want && $r->{body} eq $want, 'rewriting: the link works as is');
(my $plain = $m->api(GET => "/api/radar_ext/getReportInfo?orderNo=$order")
    ->{content}) =~ s{"http://127\.0\.0\.1:\d+/}{"/qcc/files/http/$host/}g;
$r = $t->get("/rw/api/radar_ext/getReportInfo?orderNo=$order");
($plain) =~ s/Expires=\d+/Expires=E/g;
(my $rwbody = $r->{body}) =~ s/Expires=\d+/Expires=E/g;
$rwbody =~ s/Signature=[^"]+/Signature=S/g;
$plain =~ s/Signature=[^"]+/Signature=S/g;
is($rwbody, $plain, 'rewriting: nothing else in the answer changes');
ok(!exists $r->{headers}{'content-length'} || $r->{headers}{'content-length'}
   == length $r->{body}, 'rewriting: no stale Content-Length');

my $o = $m->order(feed => 'dd_risk_mnr');
$r = $t->get("/rw/api/dd_risk_mnr/getDdRiskDownloadUrl?orderNo=$o->{orderNo}");
my ($dl) = $r->{body} =~ /"downloadUrl":\s*"([^"]+)"/;
like($dl // '', qr{^/qcc/files/http/\Q$host\E/files/DdMonitor/},
     'rewriting: the push downloadUrl too');
$r = $t->get($dl // '/none');
is(Digest::SHA::sha256_hex($r->{body}), $o->{zip_sha256},
   'rewriting: the push ZIP arrives byte-identical');

$r = $t->get("/rwabs/api/radar_ext/getReportInfo?orderNo=$order");
like($r->{body}, qr{"reportUrl":\s*"http://gateway\.internal:8080/qcc/files/http/\Q$host\E/files/},
     'rewriting: an absolute prefix, answer through small proxy buffers');

# Large answers through small proxy buffers (partly in a temporary file):
# every link rewritten, nothing else changed; over 1 MB: unchanged.
{
    my $list = '/api/dd_risk_mnr/listDdRiskLatestOrderNo';
    my @items = map { { orderNo => "DDMON$_", createDate => 'x' x 40,
                        downloadUrl => "http://$host/files/DdMonitor/$_.zip"
                                       . "?Expires=1&Signature=a%2Bb" } }
                1 .. 600;
    my $big = { status => '200', msg => 'ok', resultList => \@items };
    my $huge = { status => '200', msg => 'y' x (1100 * 1024),
                 resultList => [ $items[0] ] };
    $m->behave(path => $list, answers => [ $big, $huge ]);
    my $r = $t->get("/rwabs$list");
    my $j = eval { JSON::PP->new->decode($r->{body}) } || {};
    my @urls = map { $_->{downloadUrl} } @{ $j->{resultList} || [] };
    is(scalar @urls, 600, 'rewriting: a 90 kB answer arrives whole');
    is(scalar(grep { m{^http://gateway\.internal:8080/qcc/files/http/\Q$host\E/files/DdMonitor/\d+\.zip\?Expires=1&Signature=a%2Bb$} } @urls),
       600, 'rewriting: every link of it rewritten');
    is(scalar(grep { $_->{createDate} eq 'x' x 40 } @{ $j->{resultList} }),
       600, 'rewriting: the rest unchanged');
    $r = $t->get("/rwabs$list");
    $j = eval { JSON::PP->new->decode($r->{body}) } || {};
    is(length($j->{msg} // ''), 1100 * 1024,
       'rewriting: an answer over 1 MB arrives whole');
    like($j->{resultList}[0]{downloadUrl} // '', qr{^http://\Q$host\E/},
         'rewriting: over 1 MB, links left as they are');
}

# XML and file answers pass unchanged
my $yj = $t->http(POST => '/rw/api/yj/Report/CreateReport?keyNo=x&dtype=xml',
                  body => '');
my ($yo) = $yj->{body} =~ m{<OrderNo>(\w+)</OrderNo>};
for (1 .. 2) {    # the first poll answers P
    $yj = $t->http(POST => "/rw/api/yj/Report/GetReportInfo?orderNo=$yo"
                   . "&dtype=xml", body => '');
}
is($yj->{body}, $m->api(POST => "/api/yj/Report/GetReportInfo?orderNo=$yo"
                        . "&dtype=xml")->{content},
   'rewriting: XML byte for byte');

# --- configuration: qcc_files and qcc_sign on do not mix --------------------

my $t2 = QccTest->new;
$t2->write_file('secret', "SecretKey\n", 0600);
$t2->config(http => <<'EOC');
server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    qcc_secret_key_file %%PREFIX%%/secret;
    qcc_sign on;
    location /qcc/files/ { qcc_files; proxy_pass $qcc_files_url; }
}
EOC
my ($rc, $out) = $t2->test_config;
isnt($rc, 0, 'qcc_files under qcc_sign on: nginx -t fails');
like($out, qr/"qcc_files" cannot be used with "qcc_sign on"/,
     'qcc_files under qcc_sign on: says why');

$t2->config(http => <<'EOC');
server {
    listen 127.0.0.1:%%PORT%%;
    location ~ /files/ { qcc_files; proxy_pass $qcc_files_url; }
}
EOC
($rc, $out) = $t2->test_config;
like($out, qr/"qcc_files" directive must be in a prefix location/,
     'qcc_files in a regex location: refused');

$t2->config(http => 'qcc_files_rewrite /files;');
($rc, $out) = $t2->test_config;
like($out, qr/invalid prefix "\/files": it must end with "\/"/,
     'qcc_files_rewrite without a trailing slash: refused');

$t->stop;
$t->check_error_log;

done_testing;
