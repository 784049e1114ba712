#!/usr/bin/perl

# Delivery survives load, crashes and reloads: 200 pushes on two workers
# are all delivered once; a worker killed mid-download, the whole server
# killed mid-unpack and a reload mid-download still deliver every order
# exactly once.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccPush qw(push_conf wait_order order_of);
use Time::HiRes qw(sleep time);

my $m = QccMock->new;
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

sub gateway {
    my (%o) = @_;
    my $t = QccTest->new(workers => 2);
    $t->write_file('secret', "SecretKey\n", 0600);
    $t->{vars} = { MOCK => $m->port };
    $t->config(http => push_conf(lease => '3s', %o))->run
        or BAIL_OUT('no start');
    return $t;
}

sub cb { 'http://127.0.0.1:' . $_[0]->port . '/qcc/callback/corp' }

sub deliveries {
    my %n;
    for (@{ $m->requests(path => '/app/push') }) {
        next unless $_->{status} == 200;
        $n{ ($m->header($_, 'X-QCC-Order-No'))[0] }++;
    }
    return \%n;
}

sub wait_all {
    my ($t, $orders, $timeout) = @_;
    my $deadline = time + $timeout;
    my %left = map { $_ => 1 } @$orders;
    while (%left && time < $deadline) {
        my $s = QccPush::status($t);
        for (@{ $s->{orders} || [] }) {
            delete $left{ $_->{orderNo} } if $_->{state} eq 'delivered';
        }
        sleep 0.3 if %left;
    }
    return scalar keys %left;
}

# --- 200 pushes, two workers ---------------------------------------------

{
    my $t = gateway();
    my $r = $m->push_many(feed => 'dd_corp_monitor', count => 200,
                          concurrency => 8, callback => cb($t),
                          order => { records => 2 });
    is($r->{ok}, 200, '200 pushes acknowledged');
    my @orders = map { $_->{orderNo} } @{ $r->{results} };
    is(wait_all($t, \@orders, 120), 0, 'all 200 delivered');
    my $d = deliveries();
    is(scalar(grep { $d->{$_} } @orders), 200, 'each reached the app');
    is(scalar(grep { ($d->{$_} // 0) > 1 } @orders), 0, 'none twice');
    my @spooled = glob($t->dir . '/spool/dd_corp_monitor/*.json');
    is(scalar @spooled, 200, '200 spool files');
    $t->stop;
    $t->check_error_log('200 pushes');
}

# --- kill -9 of a worker mid-download ---------------------------------------

{
    my $t = gateway();
    my $order = $m->order(feed => 'dd_corp_monitor', min_bytes => 400_000,
                          mode => 'copy');
    my ($path) = $order->{downloadUrl} =~ m{^http://[^/]+(/[^?]+)};
    $m->behave(path => $path, rate => 100_000);
    $m->push(feed => 'dd_corp_monitor', orderNo => $order->{orderNo},
             callback => cb($t));

    # the worker that holds the lease is the one downloading
    my $deadline = time + 10;
    my $o;
    while (time < $deadline) {
        $o = order_of($t, $order->{orderNo});
        last if $o && $o->{state} eq 'downloading';
        sleep 0.1;
    }
    is($o && $o->{state}, 'downloading', 'mid-download');
    my @w = $t->worker_pids;
    kill 'KILL', @w;
    $m->behave(path => $path, clear => 1);
    $o = wait_order($t, $order->{orderNo}, 40);
    is($o && $o->{state}, 'delivered', 'workers killed mid-download: delivered');
    is(deliveries()->{ $order->{orderNo} }, 1, 'delivered once');
    $t->stop;
}

# --- kill -9 of the whole server mid-unpack, restart ----------------------

{
    my $t = gateway();
    my $order = $m->order(feed => 'dd_corp_monitor', min_bytes => 30_000_000);
    $m->push(feed => 'dd_corp_monitor', orderNo => $order->{orderNo},
             callback => cb($t));
    my $deadline = time + 30;
    my $o;
    while (time < $deadline) {
        $o = order_of($t, $order->{orderNo});
        last if $o && $o->{state} ne 'queued' && $o->{state} ne 'downloading';
        sleep 0.02;
    }
    is($o && $o->{state}, 'unpacking', 'mid-unpack');
    kill 'KILL', $t->pid, $t->worker_pids;
    sleep 0.5;
    $t->{running} = 0;
    $t->run or BAIL_OUT('no restart');
    $o = wait_order($t, $order->{orderNo}, 60);
    is($o && $o->{state}, 'delivered', 'server killed mid-unpack: delivered')
        or diag(explain($o));
    is(deliveries()->{ $order->{orderNo} }, 1, 'delivered once');
    my @left = grep { !/\.\.?$/ } glob($t->dir . '/tmp/*');
    is(scalar @left, 0, 'no temporary file left after the crash')
        or diag("@left");
    $t->stop;
}

# --- reload mid-download -----------------------------------------------------

{
    my $t = gateway();
    my $order = $m->order(feed => 'dd_corp_monitor', min_bytes => 300_000,
                          mode => 'copy');
    my ($path) = $order->{downloadUrl} =~ m{^http://[^/]+(/[^?]+)};
    $m->behave(path => $path, rate => 150_000);
    $m->push(feed => 'dd_corp_monitor', orderNo => $order->{orderNo},
             callback => cb($t));
    sleep 0.5;
    $t->reload;
    my $o = wait_order($t, $order->{orderNo}, 30);
    is($o && $o->{state}, 'delivered', 'reload mid-download: delivered');
    is(deliveries()->{ $order->{orderNo} }, 1, 'delivered once');
    $t->stop;
    $t->check_error_log('reload');
}

done_testing;
