#!/usr/bin/perl

# The journal on a full filesystem: a 64 KB tmpfs holds the journal while
# QCC pushes.  Once it is full, callbacks answer 503 (QCC pushes again
# later) and no order that was answered 200 is lost: each is delivered,
# once, and is still known after a kill -9 and a restart on the same full
# disk.  With room again, pushes are taken as before.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccFault qw(gateway deliveries wait_delivered figure);
use QccPush qw(order_of);
use Time::HiRes qw(sleep time);

plan(skip_all => 'mount needs root') if $>;
plan(skip_all => 'one nginx process under valgrind') if $QccTest::VALGRIND;

my $m = QccMock->new;
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

my $jdir;
my $t = gateway($m, conf => sub {
    my ($http, $t) = @_;
    $jdir = $t->dir . '/jfs';
    $http =~ s{journal=\S+;}{journal=$jdir/qcc.journal;} or die;
    return $http;
});
mkdir $jdir or die "$jdir: $!";
system('mount', '-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'qcc-test-jfs',
       $jdir) == 0
    or plan(skip_all => 'cannot mount a tmpfs');
END { local $?; system("umount -l $jdir 2>/dev/null") if $jdir && -d $jdir; }

$t->run or BAIL_OUT('no start');
my $cb = 'http://127.0.0.1:' . $t->port . '/qcc/callback/corp';

# push until the disk has been full for a while
my (@acked, @refused, @other);
my $orders = $ENV{TEST_QCC_PUSHES} || 300;
my $r = $m->push_many(feed => 'dd_corp_monitor', count => $orders,
                      concurrency => 4, callback => $cb, force => 1,
                      order => { records => 2 });
for (@{ $r->{results} }) {
    if ($_->{ok}) {
        push @acked, $_->{orderNo};
    } elsif (($_->{http_status} // 0) == 503
             && ($_->{body} // '') =~ /"status":"503"/) {
        push @refused, $_->{orderNo};
    } else {
        push @other, $_;
    }
}
note(scalar(@acked) . " acknowledged, " . scalar(@refused) . " refused");
ok(@acked > 10, 'pushes were taken while there was room');
ok(@refused > 10, 'a full journal answers 503 {"status":"503"}')
    or diag("the disk never filled up: " . `df -k $jdir`);
is(scalar @other, 0, 'no other answer')
    or diag(explain([ map { [$_->{http_status}, $_->{body}, $_->{error}] }
                      @other[0 .. ($#other > 4 ? 4 : $#other)] ]));
like($t->error_log, qr/\[error\].*qcc: writing \d+ bytes to journal .* failed \(28: No space left on device\)/,
     'the failed write is logged at error');

my @left = wait_delivered($t, \@acked, 90);
is(scalar @left, 0, 'every acknowledged order delivered')
    or diag("left: @left[0 .. ($#left > 9 ? 9 : $#left)]");
my $d = deliveries($m);
is(scalar(grep { !$d->{$_} } @acked), 0, 'each reached the app');
is(scalar(grep { ($d->{$_} // 0) > 1 } @acked), 0, 'none twice');
is(scalar(grep { $d->{$_} } @refused), 0, 'no refused order delivered');

# kill -9 and restart on the full disk: the journal is read back whole
kill 'KILL', $t->pid, $t->worker_pids;
sleep 0.5;
$t->{running} = 0;
# a kill -9 during a failing write can leave a torn tail: it is cut in
# place, and a compaction that finds no room does not stop the start
ok($t->run, 'restart on the full disk') or BAIL_OUT('no restart on a full disk');
unlike($t->error_log, qr/journal .*damaged record/i,
       'no damaged record in the journal (a torn tail may be dropped)');
my @unknown = grep { !order_of($t, $_) } @acked;
is(scalar @unknown, 0, 'after the restart every acknowledged order is known')
    or diag("unknown: @unknown[0 .. ($#unknown > 9 ? 9 : $#unknown)]");
@left = wait_delivered($t, \@acked, 60);
is(scalar @left, 0, 'after the restart all are delivered');
$d = deliveries($m);
my @twice = grep { ($d->{$_} // 0) > 1 } @acked;
note("delivered again after the restart (their delivered record found no "
     . "room): " . scalar @twice);

# room again
system('mount', '-o', 'remount,size=4m', $jdir) == 0 or die 'remount';
my $r2 = $m->push_many(feed => 'dd_corp_monitor', count => 10,
                       concurrency => 4, callback => $cb, force => 1,
                       order => { records => 2 });
is($r2->{ok}, 10, 'with room again, pushes are taken');
my @more = map { $_->{orderNo} } @{ $r2->{results} };
@left = wait_delivered($t, \@more, 60);
is(scalar @left, 0, 'and delivered');

$t->stop;
system('umount', $jdir) == 0 or system('umount', '-l', $jdir);
undef $jdir;
my @bad = grep { /\[(alert|crit|emerg)\]|AddressSanitizer|runtime error:/
                 && !/exited on signal 9/
                 && !/compacting journal .* failed \(28: / }
              split /\n/, $t->error_log;
ok(!@bad, 'no alert but the kill, no sanitizer line')
    or diag(join "\n", @bad[0 .. ($#bad > 20 ? 20 : $#bad)]);

my $lost = grep { !$d->{$_} } @acked;
figure('journal-full', pushes => scalar @{ $r->{results} } + 10,
       acked => scalar @acked, refused => scalar @refused, lost => $lost,
       twice_after_restart => scalar @twice);

done_testing;
