#!/usr/bin/perl

# The spool directory unwritable: orders are not lost nor failed but
# retried, and delivered once each as soon as the directory is writable
# again.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccFault qw(gateway deliveries wait_delivered figure);
use QccPush qw(order_of);
use Time::HiRes qw(sleep time);

my $m = QccMock->new;
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

my $t = gateway($m, retry => 'attempts=30 delay=1s max_delay=2s');
$t->run or BAIL_OUT('no start');
my $cb = 'http://127.0.0.1:' . $t->port . '/qcc/callback/corp';

# one order makes the feed's spool directory
my $r = $m->push(feed => 'dd_corp_monitor', callback => $cb,
                 order => { records => 2 });
ok($r->{ok}, 'first push');
my @first = wait_delivered($t, [ $r->{orderNo} ], 30);
is(scalar @first, 0, 'first delivered');

my $dir = $t->dir . '/spool/dd_corp_monitor';
ok(-d $dir, 'the feed spool directory exists');
chmod 0555, $dir or die "$dir: $!";

my $n = $ENV{TEST_QCC_PUSHES} || 10;
my $p = $m->push_many(feed => 'dd_corp_monitor', count => $n,
                      concurrency => 4, callback => $cb,
                      order => { records => 2 });
is($p->{ok}, $n, "$n pushes acknowledged while the spool is unwritable");
my @orders = map { $_->{orderNo} } @{ $p->{results} };

# several attempts fail and leave the orders queued, with the reason
my $deadline = time + 30;
my @o;
while (time < $deadline) {
    @o = map { order_of($t, $_) } @orders;
    last if !grep { !$_ || ($_->{attempts} // 0) < 2 } @o;
    sleep 0.3;
}
is(scalar(grep { $_ && $_->{attempts} >= 2 } @o), $n,
   'each tried at least twice') or diag(explain($o[0]));
is(scalar(grep { $_ && $_->{state} ne 'delivered' && $_->{state} ne 'failed' }
          @o), $n, 'none delivered nor failed');
like($o[0] && $o[0]{last_error} // '', qr/spool: Permission denied/,
     'the reason is the spool');
my $d = deliveries($m);
is(scalar(grep { $d->{$_} } @orders), 0, 'nothing reached the app');
my @files = glob("$dir/*");
is(scalar @files, 1, 'no file left in the spool but the first order\'s');
my @tmp = grep { !/\.\.?$/ } glob($t->dir . '/tmp/*');
is(scalar @tmp, 0, 'no temporary file left behind') or diag("@tmp");

chmod 0755, $dir or die "$dir: $!";
my @left = wait_delivered($t, \@orders, 60);
is(scalar @left, 0, 'writable again: all delivered');
$d = deliveries($m);
is(scalar(grep { ($d->{$_} // 0) == 1 } @orders), $n, 'each exactly once');
@files = glob("$dir/*.json");
is(scalar @files, $n + 1, 'each in the spool');

$t->stop;
$t->check_error_log('spool unwritable');

figure('spool-unwritable', orders => $n,
       lost => scalar(grep { !$d->{$_} } @orders),
       twice => scalar(grep { ($d->{$_} // 0) > 1 } @orders));

done_testing;
