#!/usr/bin/perl

# Unpacking in a thread pool of its own: orders are delivered as before,
# the pool's threads run at the lowest priority (SCHED_IDLE), and a
# pool nginx does not know fails nginx -t.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccPush qw(push_conf wait_order);

my $m = QccMock->new;
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

my $t = QccTest->new;
$t->write_file('secret', "SecretKey\n", 0600);
$t->{vars} = { MOCK => $m->port };

my $conf = "qcc_unpack_thread_pool qcc_unpack;\n" . push_conf();

$t->config(http => $conf);
my ($rc, $out) = $t->test_config;
isnt($rc, 0, 'an undeclared unpack pool fails nginx -t');
like($out, qr/unknown thread pool "qcc_unpack"/, 'and names it');

$t->config(http => $conf, main => 'thread_pool qcc_unpack threads=2;');
$t->run or BAIL_OUT('no start');

my $order = $m->order(feed => 'dd_corp_monitor', records => 50);
$m->push(feed => 'dd_corp_monitor', orderNo => $order->{orderNo},
         callback => 'http://127.0.0.1:' . $t->port . '/qcc/callback/corp');
my $o = wait_order($t, $order->{orderNo});
is($o && $o->{state}, 'delivered', 'delivered through the unpack pool');

# the worker's threads: nice is field 19 of /proc/PID/task/TID/stat, the
# scheduling policy field 41 (5: SCHED_IDLE, the unpacking's; 0: normal)
my (%prio, $main);
for my $pid ($t->worker_pids) {
    for my $st (glob "/proc/$pid/task/*/stat") {
        open my $fh, '<', $st or next;
        my $l = <$fh>;
        my ($tid) = $st =~ m{/task/(\d+)/};
        my @f = split / /, substr($l, rindex($l, ')') + 2);
        $prio{$tid} = "policy $f[38] nice $f[16]";
        $main = $prio{$tid} if $tid == $pid;
    }
}
is($main, 'policy 0 nice 0', 'the event loop keeps its priority');
ok((grep { $_ eq 'policy 5 nice 0' } values %prio),
   'an unpacking thread runs as SCHED_IDLE')
    or diag(explain(\%prio));

$t->stop;
$t->check_error_log;

# validate=cjson: each record parsed with cJSON too, same verdicts as the
# scanner (the default, above)
(my $fast = push_conf()) =~ s/(temp=%%PREFIX%%\/tmp)/$1 validate=cjson/;
my $s = QccTest->new;
$s->write_file('secret', "SecretKey\n", 0600);
$s->{vars} = { MOCK => $m->port };
(my $bad = $fast) =~ s/validate=cjson/validate=maybe/;
$s->config(http => $bad);
($rc, $out) = $s->test_config;
like($out, qr/invalid parameter "validate=maybe"/, 'validate=maybe refused');
$s->config(http => $fast)->run or BAIL_OUT('no start');
my $cb = 'http://127.0.0.1:' . $s->port . '/qcc/callback/corp';
for my $spec ({ records => 20 }, { missing_id => 1 }) {
    my $o2 = $m->order(feed => 'dd_corp_monitor', %$spec);
    $m->push(feed => 'dd_corp_monitor', orderNo => $o2->{orderNo},
             callback => $cb);
    my $st = wait_order($s, $o2->{orderNo});
    is($st && $st->{state}, $spec->{missing_id} ? 'failed' : 'delivered',
       'validate=cjson: ' . ($spec->{missing_id} ? 'a record without id fails'
                                                   : 'delivered'));
}
$s->stop;
$s->check_error_log('validate=cjson');

done_testing;
