#!/usr/bin/perl

# A worker's exit after unpacking.  nginx does not join its pool's
# threads: a worker goes on to exit() once each thread has taken its exit
# task, and exit() runs OPENSSL_cleanup().  A pool thread that still held
# libcrypto's per-thread state (unpacking decrypts with it) ran libcrypto's
# thread destructor meanwhile, over what OPENSSL_cleanup() frees: about
# one t/080 run in ten lost a worker on a signal right after "exit".
# That race is too narrow to catch here; its cause is not: an LD_PRELOAD
# (t/shim/tsd-check.c) tells for each thread taking its exit task whether
# it holds that state, and none may.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccPush qw(push_conf wait_order);

my $shim = "$QccTest::ROOT/build/t/tsd-check.so";

plan(skip_all => 'one nginx process under valgrind') if $QccTest::VALGRIND;
plan(skip_all => "no $shim: make test-bins") unless -f $shim;

my $m = QccMock->new;
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

# the default pool and a pool of the unpacking's own, two threads each
my %pools = (
    default => 'thread_pool default threads=2;',
    own => "thread_pool default threads=2;\n"
           . "thread_pool qcc_unpack threads=2;",
);

for my $pool (sort keys %pools) {
    my $t = QccTest->new;
    $t->write_file('secret', "SecretKey\n", 0600);
    $t->{vars} = { MOCK => $m->port };
    my $http = push_conf();
    $http = "qcc_unpack_thread_pool qcc_unpack;\n$http" if $pool eq 'own';
    $t->config(http => $http, main => $pools{$pool});

    {
        local $ENV{LD_PRELOAD} = $shim
            . ($ENV{LD_PRELOAD} ? " $ENV{LD_PRELOAD}" : '');
        $t->run or BAIL_OUT('no start');
    }

    # one after the other: every order unpacked, whichever thread took it
    my $delivered = 0;
    for (1 .. 4) {
        my $order = $m->order(feed => 'dd_corp_monitor', records => 2);
        $m->push(feed => 'dd_corp_monitor', orderNo => $order->{orderNo},
                 callback => 'http://127.0.0.1:' . $t->port
                             . '/qcc/callback/corp');
        my $o = wait_order($t, $order->{orderNo});
        $delivered++ if $o && $o->{state} eq 'delivered';
    }
    is($delivered, 4, "$pool pool: 4 orders unpacked and delivered");

    $t->stop;

    my $log = $t->error_log;
    my $threads = $pool eq 'own' ? 4 : 2;
    my $clean = () = $log =~ /qcc-tsd-check: thread exits clean/g;
    my $held = () = $log =~ /qcc-tsd-check: thread exits holding/g;
    is($clean + $held, $threads, "$pool pool: each of the $threads threads "
       . 'told at exit');
    is($held, 0, "$pool pool: none holds libcrypto's thread state");
    unlike($log, qr/exited on signal/, "$pool pool: the worker exited");
    $t->check_error_log("$pool pool");
}

done_testing;
