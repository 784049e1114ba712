#!/usr/bin/perl

# Batch guardrails at the edge (qcc_guard, qcc_batch_limit): too many
# keyWordList or loginNameList items and a getShiXinList pageSize over 20
# answer 400 with QCC's 202 in JSON and never reach QCC; at most 5 of the
# four batch-assignment calls per account run at once, the next ones wait
# in order, the rest get 429 in JSON; a wait that runs out gives 429, a
# client that leaves the queue frees its place, accounts have their own
# counters.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my $t = QccTest->new(workers => 2);
my $m = QccMock->new(accounts => [[AppKey => 'SecretKey'],
                                  [OtherKey => 'OtherSecret']]);

$t->write_file('secret', "SecretKey\n", 0600);
$t->write_file('other', "OtherSecret\n", 0600);
$t->{vars} = { MOCK => $m->port };

$t->config(workers => 2, http => <<'EOC')->run or BAIL_OUT('no nginx');
qcc_batch_zone zone=qcc_batch:64k;
log_format batch '$arg_loginName $qcc_batch_wait';

server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    qcc_secret_key_file %%PREFIX%%/secret;
    qcc_sign on;

    location /qcc/ {
        qcc_guard on;
        qcc_batch_limit zone=qcc_batch;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /other/ {
        qcc_key OtherKey;
        qcc_secret_key_file %%PREFIX%%/other;
        qcc_guard on;
        qcc_batch_limit zone=qcc_batch;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /one/ {
        # same account as /qcc/, its own limits: one at a time
        qcc_key OtherKey;
        qcc_secret_key_file %%PREFIX%%/other;
        qcc_batch_limit zone=qcc_batch concurrency=1 queue=5 wait=5s;
        access_log %%PREFIX%%/batch.log batch;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /short/ {
        qcc_key ShortKey;
        qcc_secret_key_file %%PREFIX%%/other;
        qcc_batch_limit zone=qcc_batch concurrency=1 queue=5 wait=300ms;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /small/ {
        qcc_guard on;
        qcc_batch_max_keywords 3;
        qcc_batch_max_login_names 2;
        qcc_max_page_size 5;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /off/ {
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }
}
EOC

my @batch = qw(batchAddRadarCompanyListToExistedUser
               batchCancelRadarCompanyListFromExistedUser
               batchAddRadarCompanyToExistedUserList
               batchCancelRadarCompanyFromExistedUserList);

sub list { my ($n, $sep) = @_; join $sep // ',', map { "c$_" } 1 .. $n }

sub batch_uri {
    my ($prefix, $i, $n, $tag) = @_;
    my $api = $batch[$i % 4];
    my $arg = $i % 4 < 2
        ? "loginName=" . ($tag // 'u1') . "&keyWordList=" . list($n // 2)
        : "keyWord=" . ($tag // 'k1') . "&loginNameList=" . list($n // 2);
    return "$prefix/api/radar_ext/$api?$arg";
}

sub last_id { my $r = $m->requests; @$r ? $r->[-1]{id} : 0 }

# --- list and pageSize checks -------------------------------------------------

my $since = last_id();
my @refused = (
    [ "/qcc/api/radar_ext/$batch[0]?loginName=u1&keyWordList=" . list(201),
      'keyWordList has 201 items, at most 200 are allowed', '201 keywords' ],
    [ "/qcc/api/radar_ext/$batch[1]?loginName=u1&keyWordList="
      . list(201, '%2C'), 'keyWordList has 201 items',
      '201 keywords, encoded commas' ],
    [ "/qcc/api/radar_ext/$batch[0]?loginName=u1&keyWordList=" . list(150)
      . "&keyWordList=" . list(51), 'keyWordList has 201 items',
      '201 keywords in two arguments' ],
    [ "/qcc/api/radar_ext/$batch[2]?keyWord=k&loginNameList=" . list(501),
      'loginNameList has 501 items, at most 500 are allowed',
      '501 login names' ],
    [ "/qcc/api/radar_ext/$batch[3]?keyWord=k&LOGINNAMELIST=" . list(501),
      'loginNameList has 501 items', '501 login names, name in capitals' ],
    [ "/qcc/api/RADAR_EXT/" . uc($batch[0]) . "?loginName=u1&keyWordList="
      . list(201), 'keyWordList has 201 items', 'path in capitals' ],
    [ "/qcc/api/dd_corp_monitor/getShiXinList?corpKeyNo=a&checkId=1"
      . "&pageIndex=1&pageSize=21", 'pageSize must be a number from 1 to 20',
      'pageSize 21' ],
    [ "/qcc/api/dd_corp_monitor/getShiXinList?corpKeyNo=a&pageSize=0",
      'pageSize must be', 'pageSize 0' ],
    [ "/small/api/radar_ext/$batch[0]?loginName=u1&keyWordList=" . list(4),
      'keyWordList has 4 items, at most 3 are allowed',
      'qcc_batch_max_keywords 3' ],
    [ "/small/api/radar_ext/$batch[2]?keyWord=k&loginNameList=" . list(3),
      'loginNameList has 3 items, at most 2 are allowed',
      'qcc_batch_max_login_names 2' ],
    [ "/small/api/dd_corp_monitor/getShiXinList?pageSize=6",
      'pageSize must be a number from 1 to 5', 'qcc_max_page_size 5' ],
);
for my $c (@refused) {
    my ($uri, $msg, $name) = @$c;
    my $r = $t->get($uri);
    is($r->{status}, 400, "$name: 400");
    like($r->{body}, qr/^\{"status":"202","msg":"\Q$msg\E[^"]*"\}$/,
         "$name: QCC-style JSON");
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         "$name: JSON content type");
}
is(scalar @{ $m->requests(since => $since) }, 0,
   'no refused call reached the mock');

my @passed = (
    [ "/qcc/api/radar_ext/$batch[0]?loginName=u1&keyWordList=" . list(200),
      '200 keywords', 200 ],
    [ "/qcc/api/radar_ext/$batch[1]?loginName=u1&keyWordList="
      . list(200) . ',,', '200 keywords and empty items', 200 ],
    [ "/qcc/api/radar_ext/$batch[2]?keyWord=k&loginNameList=" . list(500),
      '500 login names', 500 ],
    [ "/qcc/api/radar_ext/$batch[3]?keyWord=k&loginNameList=" . list(500),
      '500 login names (cancel)', 500 ],
    [ "/off/api/radar_ext/$batch[0]?loginName=u1&keyWordList=" . list(201),
      'without qcc_guard: 201 keywords reach QCC', 0 ],
);
for my $c (@passed) {
    my ($uri, $name, $n) = @$c;
    $since = last_id();
    my $r = $t->get($uri);
    is($r->{status}, 200, "$name: 200");
    if ($n) {
        like($r->{body}, qr/"status":\s*"200"/, "$name: QCC accepted");
        my @items = $r->{body} =~ /"status":\s*"200",\s*"msg"/g;
        my $rec = $m->requests(since => $since)->[-1];
        ok($rec && $rec->{sig_ok}, "$name: signed, reached the mock");
    } else {
        like($r->{body}, qr/"status":\s*"(202|107)"/,
             "$name: QCC's own refusal");
    }
}

# Form bodies count too (QCC reads form-encoded POST bodies), also when
# the body is too large for memory and lands in a file.
my @form = ('Content-Type' => 'application/x-www-form-urlencoded');
my $long = join ',', map { sprintf 'login-name-%040d', $_ } 1 .. 501;
for my $c (
    [ "/qcc/api/radar_ext/$batch[0]", "loginName=u1&keyWordList=" . list(201),
      400, '201 keywords in a form body' ],
    [ "/qcc/api/radar_ext/$batch[0]?keyWordList=" . list(150),
      "loginName=u1&keyWordList=" . list(51), 400,
      '150 in the query and 51 in the form body' ],
    [ "/qcc/api/radar_ext/$batch[2]", "keyWord=k&loginNameList=$long",
      400, '501 long login names in a 25 kB form body' ],
    [ "/qcc/api/radar_ext/$batch[1]", "loginName=u1&keyWordList=" . list(200),
      200, '200 keywords in a form body' ],
    [ "/qcc/api/radar_ext/$batch[3]",
      "keyWord=k&loginNameList=" . substr($long, 0, 500 * 52 - 1),
      200, '500 long login names in a form body' ],
)
{
    my ($uri, $body, $status, $name) = @$c;
    $since = last_id();
    my $r = $t->http(POST => $uri, body => $body, headers => \@form);
    is($r->{status}, $status, "$name: $status");
    my @reached = @{ $m->requests(since => $since) };
    if ($status == 400) {
        like($r->{body}, qr/^\{"status":"202"/, "$name: QCC-style JSON");
        is(scalar @reached, 0, "$name: not sent");
    } else {
        like($r->{body}, qr/"status":\s*"200"/, "$name: QCC accepted");
        is($reached[-1] && $reached[-1]{body_len}, length $body,
           "$name: the body went on whole");
    }
}

for my $api ('getExceptions?corpKeyNo=a&checkId=1',
             'getSeriousViolation?corpKeyNo=a&checkId=1',
             'getShiXinList?corpKeyNo=a&checkId=1&pageIndex=2&pageSize=20',
             'getShiXinList?corpKeyNo=a&checkId=1')
{
    my $r = $t->get("/qcc/api/dd_corp_monitor/$api");
    is($r->{status}, 200, "$api: 200");
    like($r->{body}, qr/"status":\s*"200"/, "$api: QCC answered 200");
}

# --- 20 parallel batch calls against a slow mock ------------------------------

$m->reset;
$m->behave([ map { { path => "/api/radar_ext/$_", delay_ms => 500 } } @batch ]);

sub send_all {
    my (@uris) = @_;
    my @socks;
    for my $uri (@uris) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port)
            or die "connect: $!";
        print $s "GET $uri HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n\r\n";
        push @socks, $s;
    }
    return @socks;
}

sub read_all {
    my @r;
    for my $s (@_) {
        local $/;
        my $raw = <$s> // '';
        my $res = QccTest::parse_response($raw);
        $res->{at} = time;
        push @r, $res;
        close $s;
    }
    return @r;
}

my $t0 = time;
my @res = read_all(send_all(map { batch_uri('/qcc', $_) } 0 .. 19));
my $elapsed = time - $t0;
my %st;
$st{ $_->{status} }++ for @res;
is(($st{200} // 0) + ($st{429} // 0), 20,
   '20 parallel calls: every one answered 200 or 429')
    or diag(explain(\%st));
is($st{200} // 0, 15, '20 parallel calls: 5 at once plus 10 queued pass');
is($st{429} // 0, 5, '20 parallel calls: 5 beyond the queue get 429');
my ($busy) = grep { $_->{status} == 429 } @res;
like($busy->{body} // '', qr/^\{"status":"429","msg":"[^"]+"\}$/,
     '429 answer is JSON');
my $stats = $m->stats;
is($stats->{max_in_flight_api}, 5, 'never more than 5 at the mock at once')
    or diag(explain($stats->{max_in_flight}));
my $reached = 0;
$reached += $stats->{counts}{"/api/radar_ext/$_"} // 0 for @batch;
is($reached, 15, 'only the admitted calls reached the mock');
ok($elapsed > 1.4 && $elapsed < 4, sprintf('three waves of 0.5 s: %.2fs',
                                            $elapsed));

# --- accounts have their own counters ------------------------------------------

$m->reset;
$m->behave([ map { { path => "/api/radar_ext/$_", delay_ms => 800 } } @batch ]);
$t0 = time;
@res = read_all(send_all((map { batch_uri('/qcc', $_) } 0 .. 4),
                         (map { batch_uri('/other', $_) } 0 .. 4)));
is(scalar(grep { $_->{status} == 200 } @res), 10,
   'two accounts: 5 calls each at once');
ok(time - $t0 < 1.5, 'two accounts: nobody waited');
is($m->stats->{max_in_flight_api}, 10, 'two accounts: 10 at the mock');

# --- in order -------------------------------------------------------------------

$m->reset;
$m->behave([ map { { path => "/api/radar_ext/$_", delay_ms => 300 } } @batch ]);
my @socks;
for my $i (1 .. 4) {
    push @socks, send_all(batch_uri('/one', 0, 1, "u$i"));
    sleep 0.05;
}
@res = read_all(@socks);
is(join(',', map { $_->{status} } @res), '200,200,200,200',
   'one at a time: all four pass');
my @order = map { $m->arg($_, 'loginName') }
            @{ $m->requests(path => "/api/radar_ext/$batch[0]") };
is(join(',', @order), 'u1,u2,u3,u4', 'one at a time: in arrival order');
is($m->stats->{max_in_flight_api}, 1, 'one at a time: never two');
my %waited = map { split / / } split /\n/, $t->read_file('batch.log') // '';
is($waited{u1}, 0, '$qcc_batch_wait: the first did not wait');
ok(($waited{u4} // 0) > 600 && ($waited{u4} // 0) < 1500,
   "\$qcc_batch_wait: the fourth waited for three calls ($waited{u4} ms)");

# --- a wait that runs out, a client that leaves the queue ----------------------

$m->reset;
$m->behave([ map { { path => "/api/radar_ext/$_", delay_ms => 1000 } } @batch ]);
@socks = send_all(batch_uri('/short', 0));
sleep 0.1;
$t0 = time;
my $r = $t->get(batch_uri('/short', 1));
my $waited = time - $t0;
is($r->{status}, 429, 'wait=300ms runs out: 429');
ok($waited > 0.25 && $waited < 0.9, sprintf('after the wait: %.2fs', $waited));
read_all(@socks);

$m->reset;
$m->behave([ map { { path => "/api/radar_ext/$_", delay_ms => 600 } } @batch ]);
my ($first) = send_all(batch_uri('/one', 0, 1, 'first'));
sleep 0.1;
my ($leaver) = send_all(batch_uri('/one', 0, 1, 'leaver'));
sleep 0.1;
close $leaver;
sleep 0.1;
$t0 = time;
$r = $t->get(batch_uri('/one', 0, 1, 'next'));
is($r->{status}, 200, 'after a client left the queue: 200');
ok(time - $t0 < 1.2, 'the place of the client that left was freed');
read_all($first);
@order = map { $m->arg($_, 'loginName') }
         @{ $m->requests(path => "/api/radar_ext/$batch[0]") };
is(join(',', @order), 'first,next', 'the client that left never reached QCC');

# --- configuration errors --------------------------------------------------------

my $t2 = QccTest->new;
for my $c (
    [ 'qcc_batch_zone zone=z:1k;', qr/zone "zone=z:1k" is too small/ ],
    [ 'qcc_batch_zone z:64k;', qr/invalid parameter "z:64k"/ ],
    [ "qcc_batch_zone zone=z:64k;\n    qcc_batch_limit zone=z concurrency=0;",
      qr/invalid concurrency "concurrency=0"/ ],
    [ "qcc_batch_zone zone=z:64k;\n    qcc_batch_limit zone=z wait=2m;",
      qr/invalid wait "wait=2m"/ ],
    [ "qcc_batch_limit concurrency=5;",
      qr/"qcc_batch_limit" must have "zone" parameter/ ],
    [ "qcc_batch_limit zone=nowhere;",
      qr/zero size shared memory zone "nowhere"/ ],
    [ "qcc_batch_max_keywords 0;", qr/value must be between 1 and/ ],
)
{
    $t2->config(http => "    $c->[0]\n");
    my ($rc, $out) = $t2->test_config;
    like($out, $c->[1], "nginx -t refuses: $c->[0]");
}

$t->stop;
$t->check_error_log;

done_testing;
