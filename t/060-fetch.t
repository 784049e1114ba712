#!/usr/bin/perl

# Every pushed order downloaded, decrypted, validated and delivered: the
# spool file and the deliver upstream get exactly the JSON in the ZIP;
# failures on every side are retried, refreshed or failed with a reason,
# and nothing partial is ever spooled.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccPush qw(push_conf wait_order order_of);
use Digest::SHA ();

# bodies the mock recorded come back as text: hash their UTF-8 bytes
sub sha256_hex {
    my ($s) = @_;
    utf8::encode($s) if utf8::is_utf8($s);
    return Digest::SHA::sha256_hex($s);
}

my $t = QccTest->new;
my $m = QccMock->new;
$t->write_file('secret', "SecretKey\n", 0600);
$t->{vars} = { MOCK => $m->port };
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

$t->config(http => push_conf())->run or BAIL_OUT('no start');

my $cb = 'http://127.0.0.1:' . $t->port . '/qcc/callback/';
my %cb = (dd_risk_mnr => "${cb}risk", dd_corp_monitor => "${cb}corp");

my @passwords;

sub push_order {
    my (%o) = @_;
    my $feed = delete $o{feed};
    my $push = delete $o{push} || {};
    my $order = $m->order(feed => $feed, %o);
    push @passwords, grep { defined && length } $order->{password},
        $order->{unzipPassword};
    my $r = $m->push(feed => $feed, orderNo => $order->{orderNo},
                     callback => $cb{$feed}, %$push);
    return ($order, $r);
}

sub spool_file {
    my ($feed, $no) = @_;
    return $t->read_file("spool/$feed/$no.json");
}

sub delivered_to_app {
    my ($no) = @_;
    return grep { ($m->header($_, 'X-QCC-Order-No'))[0] eq $no }
        @{ $m->requests(path => '/app/push') };
}

# --- one push of each feed, delivered byte for byte ----------------------

for my $feed (qw(dd_risk_mnr dd_corp_monitor)) {
    my ($order, $push) = push_order(feed => $feed, records => 5);
    ok($push->{ok}, "$feed: callback acknowledged");
    my $o = wait_order($t, $order->{orderNo});
    is($o && $o->{state}, 'delivered', "$feed: delivered")
        or diag(explain($o));
    my $spooled = spool_file($feed, $order->{orderNo});
    ok(defined $spooled, "$feed: spool file written");
    is(sha256_hex($spooled // ''), $order->{json_sha256},
       "$feed: spool file byte-identical to the JSON in the ZIP");
    my @mode = stat($t->dir . "/spool/$feed/$order->{orderNo}.json");
    is($mode[2] & 0777, 0640, "$feed: spool file mode 0640");
    my @d = delivered_to_app($order->{orderNo});
    is(scalar @d, 1, "$feed: delivered once to the app");
    is(sha256_hex($d[0]{body} // ''), $order->{json_sha256},
       "$feed: the app got the same bytes");
    is(($m->header($d[0], 'X-QCC-Feed'))[0], $feed, "$feed: feed header");
    is($d[0]{method}, 'POST', "$feed: POST");
    like(($m->header($d[0], 'Content-Type'))[0], qr{^application/json},
         "$feed: JSON content type");
}

# --- download fails twice, then works --------------------------------------

{
    my $order = $m->order(feed => 'dd_corp_monitor');
    my ($path) = $order->{downloadUrl} =~ m{^http://[^/]+(/[^?]+)};
    $m->behave(path => $path, fail => [500, 500]);
    $m->push(feed => 'dd_corp_monitor', orderNo => $order->{orderNo},
             callback => $cb{dd_corp_monitor});
    my $o = wait_order($t, $order->{orderNo}, 30);
    is($o && $o->{state}, 'delivered', '500 twice: delivered after retries');
    is($o && $o->{attempts}, 3, '500 twice: on the third attempt');
}

# --- 404 forever: failed after the bounded attempts --------------------------

{
    my $order = $m->order(feed => 'dd_corp_monitor');
    my ($path) = $order->{downloadUrl} =~ m{^http://[^/]+(/[^?]+)};
    $m->behave(path => $path, status_forever => 404);
    $m->push(feed => 'dd_corp_monitor', orderNo => $order->{orderNo},
             callback => $cb{dd_corp_monitor});
    my $o = wait_order($t, $order->{orderNo}, 30);
    is($o && $o->{state}, 'failed', '404 forever: failed');
    is($o && $o->{attempts}, 3, '404 forever: after 3 attempts');
    like($o && $o->{last_error}, qr/HTTP 404/, '404 forever: the reason');
    ok(!defined spool_file('dd_corp_monitor', $order->{orderNo}),
       '404 forever: nothing spooled');
}

# --- expired link: refreshed through the signed pull call ----------------

{
    my $before = @{ $m->requests(path => '/api/dd_risk_mnr/getDdRiskDownloadUrl') };
    my ($order) = push_order(feed => 'dd_risk_mnr', expired => 1);
    my $o = wait_order($t, $order->{orderNo});
    is($o && $o->{state}, 'delivered', 'expired link: delivered');
    my $pulls = $m->requests(path => '/api/dd_risk_mnr/getDdRiskDownloadUrl');
    is(@$pulls - $before, 1, 'expired link: one link call');
    ok($pulls->[-1]{sig_ok}, 'expired link: the link call was signed');
    is(sha256_hex(spool_file('dd_risk_mnr', $order->{orderNo}) // ''),
       $order->{json_sha256}, 'expired link: spool file intact');
}

# --- wrong password: refreshed once, then failed -------------------------

{
    my ($order) = push_order(feed => 'dd_corp_monitor', wrong_password => 1);
    my $o = wait_order($t, $order->{orderNo});
    is($o && $o->{state}, 'failed', 'wrong password: failed');
    like($o && $o->{last_error}, qr/password|authentic/i,
         'wrong password: the reason');
    is(scalar(grep { ($m->arg($_, 'orderNo'))[0] eq $order->{orderNo} }
              @{ $m->requests(path => '/api/dd_corp_monitor/getDownloadUrl') }),
       1, 'wrong password: refreshed once');
    ok(!defined spool_file('dd_corp_monitor', $order->{orderNo}),
       'wrong password: no file written');
}

# --- hostile or broken content ------------------------------------------------

for my $c (
    [ 'tampered ZIP', { corrupt => 1 }, qr/authenticat|corrupt|CRC|ZIP/i ],
    [ 'truncated ZIP', { corrupt => 'truncate' }, qr/ZIP|corrupt|truncat/i ],
    [ 'totalSize disagrees', { totalSize => 7 }, qr/totalSize|records/i ],
    [ 'record without id', { missing_id => 1 }, qr/id/ ],
    [ 'ZipCrypto', { encryption => 'ZipCrypto' }, qr/encryption|unsupported/i ],
) {
    my ($name, $spec, $re) = @$c;
    my ($order) = push_order(feed => 'dd_corp_monitor', %$spec);
    my $o = wait_order($t, $order->{orderNo});
    is($o && $o->{state}, 'failed', "$name: failed");
    like($o && $o->{last_error} // '', $re, "$name: clear reason")
        or diag($o && $o->{last_error});
    is($o && $o->{attempts}, 1, "$name: not retried");
    ok(!defined spool_file('dd_corp_monitor', $order->{orderNo}),
       "$name: nothing in the spool");
    is(scalar(delivered_to_app($order->{orderNo})), 0,
       "$name: nothing delivered");
}

# --- a redirect to another host is refused ---------------------------------

{
    my $order = $m->order(feed => 'dd_corp_monitor');
    my ($path) = $order->{downloadUrl} =~ m{^http://[^/]+(/[^?]+)};
    $m->behave(path => $path, redirect => 'http://169.254.169.254/latest/x.zip');
    $m->push(feed => 'dd_corp_monitor', orderNo => $order->{orderNo},
             callback => $cb{dd_corp_monitor});
    my $o = wait_order($t, $order->{orderNo});
    is($o && $o->{state}, 'failed', 'redirect elsewhere: failed');
    like($o && $o->{last_error}, qr/redirect.*refused/i,
         'redirect elsewhere: the reason');
    ok(!(grep { $_->{path} =~ /latest/ } @{ $m->requests }),
       'redirect elsewhere: never followed');
}

# --- the deliver upstream fails twice, then accepts ------------------------

{
    $m->behave(path => '/app/push', fail => [503, 503], merge => 1);
    my ($order) = push_order(feed => 'dd_risk_mnr');
    my $o = wait_order($t, $order->{orderNo}, 30);
    is($o && $o->{state}, 'delivered', 'deliver fails twice: delivered');
    my @ok = grep { $_->{status} == 200 } delivered_to_app($order->{orderNo});
    is(scalar @ok, 1, 'deliver fails twice: accepted once');
    my @files = glob($t->dir . "/spool/dd_risk_mnr/$order->{orderNo}*");
    is(scalar @files, 1, 'deliver fails twice: one spool file');
}

# --- no temporary file left behind ------------------------------------------

my @tmp = grep { !/\.\.?$/ } glob($t->dir . '/tmp/*');
is(scalar @tmp, 0, 'no temporary file left') or diag("@tmp");

my $status = $t->get('/qcc/status?limit=1000')->{body};
$t->stop;
my $logs = $t->error_log . $t->access_log;
ok(@passwords > 5, 'passwords to look for');
is(scalar(grep { index($logs, $_) >= 0 } @passwords), 0,
   'no order password in any log');
is(scalar(grep { index($status, $_) >= 0 } @passwords), 0,
   'no order password in the status');
$t->check_error_log;

done_testing;
