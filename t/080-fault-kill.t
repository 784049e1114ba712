#!/usr/bin/perl

# kill -9 at random moments while QCC pushes: in each trial, PUSHES orders
# are pushed 8 at a time on two workers while, at random moments, a random
# worker or the whole server (master and workers) is killed with -9, and
# the server started again.  Every order whose callback was answered 200
# (acknowledged) must be delivered to the app, and exactly once, but for
# the window no server can close alone: a kill after the app answered 200
# and before the order's "delivered" record is in the zone and the journal
# delivers it again (the app has X-QCC-Order-No to see that).  Such a
# second delivery is counted apart, and only when the first one ended at
# most 1.5 s before a kill; any other one fails the test.
#
#   TEST_QCC_TRIALS (3), TEST_QCC_PUSHES (200), TEST_QCC_KILLS (2 a trial)
#   make reliability runs 20 trials.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccFault qw(gateway deliveries wait_delivered figure trials);
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

plan(skip_all => 'one nginx process under valgrind') if $QccTest::VALGRIND;

my $trials = trials(3);
my $pushes = $ENV{TEST_QCC_PUSHES} || 200;
my $kills = $ENV{TEST_QCC_KILLS} || 2;
my $json = JSON::PP->new->utf8;

my $m = QccMock->new;
my (%sum, @kinds);

# the orders, made once (7-Zip is the slow part), pushed in every trial to
# a fresh gateway
my @orders = map { $m->order(feed => 'dd_corp_monitor', records => 2)
                       ->{orderNo} } 1 .. $pushes;

# NCHILD children push their share one after the other, a little apart,
# so the kills fall among the pushes; each writes its results to a file
sub pushers {
    my ($t, $cb) = @_;
    my @kids;
    for my $k (0 .. 3) {
        my @mine = @orders[grep { $_ % 4 == $k } 0 .. $#orders];
        my $out = $t->dir . "/pushes.$k.json";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my @r;
            for my $o (@mine) {
                my $r = eval {
                    $m->push(feed => 'dd_corp_monitor', orderNo => $o,
                             callback => $cb, force => 1, timeout => 5);
                } || { orderNo => $o, error => "$@" };
                push @r, $r;
                # a refused push fails at once: wait as for a restart
                sleep($r->{ok} ? rand 0.03 : 0.2);
            }
            open my $fh, '>', $out or POSIX::_exit(1);
            print $fh $json->encode(\@r);
            close $fh;
            POSIX::_exit(0);
        }
        push @kids, [$pid, $out];
    }
    return @kids;
}

# the first delivery of the order ended shortly before one of the kills
sub in_flight_at_kill {
    my ($order, $killed) = @_;
    my ($first) = sort { $a->{end_time} <=> $b->{end_time} }
                  grep { $_->{status} == 200 && $_->{end_time}
                         && ($m->header($_, 'X-QCC-Order-No'))[0] eq $order }
                  @{ $m->requests(path => '/app/push') };
    return 0 unless $first;
    return scalar grep { $_ >= $first->{end_time} - 0.05
                         && $_ - $first->{end_time} < 1.5 } @$killed;
}

for my $trial (1 .. $trials) {
    $m->reset(keep_orders => 1);
    $m->behave(path => '/app/push', status_forever => 200, body => 'ok');
    my $t = gateway($m);
    $t->run or BAIL_OUT('no start');
    my $cb = 'http://127.0.0.1:' . $t->port . '/qcc/callback/corp';

    my $started = time;
    my @kids = pushers($t, $cb);
    my %running = map { $_->[0] => 1 } @kids;

    # kills at random moments while the children push
    my @at = sort { $a <=> $b } map { 0.2 + rand(1.5) } 1 .. $kills;
    my @killed;
    for my $at (@at) {
        while (%running && time - $started < $at) {
            for (keys %running) {
                delete $running{$_} if waitpid($_, WNOHANG) == $_;
            }
            sleep 0.02;
        }
        last unless %running;
        push @killed, time;
        if (rand() < 0.5) {
            my @w = $t->worker_pids;
            kill 'KILL', $w[int rand @w] if @w;
            push @kinds, 'worker';
        } else {
            my @all = ($t->pid, $t->worker_pids);
            kill 'KILL', @all;
            for (1 .. 100) {
                last unless grep { kill 0, $_ } @all;
                sleep 0.02;
            }
            $t->{running} = 0;
            $t->run or BAIL_OUT('no restart');
            push @kinds, 'server';
        }
    }
    waitpid($_, 0) for keys %running;
    note(sprintf "trial %d: pushes took %.1fs", $trial, time - $started);

    my @results;
    for (@kids) {
        my $r = eval { local $/; open my $fh, '<', $_->[1] or die;
                       $json->decode(<$fh>) } || [];
        push @results, @$r;
    }
    is(scalar @results, $pushes, "trial $trial: every push made");
    my @err = grep { $_->{error} && !$_->{pushed} } @results;
    ok(!@err, "trial $trial: the mock pushed") or diag($err[0]{error});
    my @acked = map { $_->{orderNo} } grep { $_->{ok} } @results;
    my @other = grep { !$_->{ok} && ($_->{http_status} // 0) != 0
                       && $_->{http_status} != 503 } @results;
    is(scalar @other, 0, "trial $trial: no answer but 200, 503 or none")
        or diag(explain([ map { [$_->{http_status}, $_->{body}] } @other ]));

    my @left = wait_delivered($t, \@acked, 120);
    my $d = deliveries($m);
    my @twice = grep { ($d->{$_} // 0) > 1 } @acked;
    my @inflight = grep { in_flight_at_kill($_, \@killed) } @twice;
    my %inflight = map { $_ => 1 } @inflight;
    my @never = grep { !$d->{$_} } @acked;
    is(scalar @left, 0, "trial $trial: every acknowledged order delivered")
        or diag("left: @left[0 .. ($#left > 9 ? 9 : $#left)]");
    is(scalar @never, 0, "trial $trial: every one reached the app");
    my @dup = grep { !$inflight{$_} } @twice;
    is(scalar @dup, 0, "trial $trial: none twice but those a kill caught "
       . "between the app's answer and the record") or diag("twice: @dup");

    note("trial $trial: " . scalar(@acked) . " of " . scalar(@results)
         . " acknowledged");
    my ($f) = grep { !$_->{ok} } @results;
    note(explain([ @{$f}{qw(http_status body error)} ])) if $f && $ENV{TEST_VERBOSE};
    $sum{pushes} += scalar @results;
    $sum{acked} += scalar @acked;
    $sum{lost} += scalar @never;
    $sum{twice_in_flight} += scalar @inflight;
    $sum{twice_other} += scalar @dup;
    $t->stop;
    # kill -9 makes the master say so at [alert]; anything else fails
    my @bad = grep { /\[(alert|crit|emerg)\]|AddressSanitizer|runtime error:/
                     && !/exited on signal 9/ } split /\n/, $t->error_log;
    ok(!@bad, "trial $trial: no alert but the kills, no sanitizer line")
        or diag(join "\n", @bad[0 .. ($#bad > 20 ? 20 : $#bad)]);
}

figure('kill-9', trials => $trials, pushes => $sum{pushes} // 0,
       acked => $sum{acked} // 0, lost => $sum{lost} // 0,
       twice_in_flight => $sum{twice_in_flight} // 0,
       twice_other => $sum{twice_other} // 0,
       worker_kills => scalar(grep { $_ eq 'worker' } @kinds),
       server_kills => scalar(grep { $_ eq 'server' } @kinds));

done_testing;
