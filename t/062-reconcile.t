#!/usr/bin/perl

# Never missing a push: orders QCC lists but never pushed are fetched
# through the signed link call and delivered; known orders are left
# alone; a refused callback leads to one signed activation; QCC's error
# answers are logged, shown and backed off; the operator can retry a
# failed order and reconcile now.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccPush qw(push_conf wait_order order_of);
use JSON::PP;
use Time::HiRes qw(sleep time);

my $json = JSON::PP->new->utf8;
my $m = QccMock->new;
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

my $t = QccTest->new;
$t->write_file('secret', "SecretKey\n", 0600);
$t->{vars} = { MOCK => $m->port };
my $conf = push_conf(retry => 'attempts=2 delay=1s max_delay=1s');
$conf =~ s/(qcc_retry [^;]+;)/$1\n        qcc_reconcile 2s;/;
$t->config(http => $conf);

my $cb = sub { 'http://127.0.0.1:' . $t->port . '/qcc/callback/corp' };
my $list = '/api/dd_corp_monitor/listLatestOrderNo';
my $link = '/api/dd_corp_monitor/getDownloadUrl';
my $activate = '/api/dd_corp_monitor/activeCallbackUrl';

sub status { $json->decode($t->get('/qcc/status?limit=1000')->{body}) }

sub links_for {
    my ($no) = @_;
    return grep { ($m->arg($_, 'orderNo'))[0] eq $no }
        @{ $m->requests(path => $link) };
}

# --- orders pushed while the gateway was down ----------------------------

my $missed = $m->order(feed => 'dd_corp_monitor');
my $r = $m->push(feed => 'dd_corp_monitor', orderNo => $missed->{orderNo},
                 callback => $cb->());
ok(!$r->{ok}, 'push while the gateway is down fails');

my $never = $m->order(feed => 'dd_corp_monitor');   # listed, never pushed

$t->run or BAIL_OUT('no start');

for my $o ($missed, $never) {
    my $s = wait_order($t, $o->{orderNo}, 30);
    is($s && $s->{state}, 'delivered', "$o->{orderNo}: delivered after start");
    is($s && $s->{source}, 'reconcile', "$o->{orderNo}: source reconcile");
    my @l = links_for($o->{orderNo});
    ok(@l >= 1 && !(grep { !$_->{sig_ok} } @l),
       "$o->{orderNo}: the link call was signed");
}

my $lists = $m->requests(path => $list);
ok(@$lists >= 1, 'the list call was made');
ok(!(grep { !$_->{sig_ok} } @$lists), 'list calls signed');

# --- a pushed and delivered order is not fetched again -----------------------

my $pushed = $m->order(feed => 'dd_corp_monitor');
$m->push(feed => 'dd_corp_monitor', orderNo => $pushed->{orderNo},
         callback => $cb->());
is(wait_order($t, $pushed->{orderNo})->{state}, 'delivered', 'pushed order delivered');
my $runs = status()->{feeds}{dd_corp_monitor}{reconcile};
sleep 4.5;
ok(status()->{feeds}{dd_corp_monitor}{reconcile}{last} ne ($runs->{last} // ''),
   'the reconciler ran again');
is(scalar(links_for($pushed->{orderNo})), 0, 'known orders: no link call');
is(scalar(grep { ($m->header($_, 'X-QCC-Order-No'))[0] eq $pushed->{orderNo} }
          @{ $m->requests(path => '/app/push') }), 1, 'delivered once');

# --- a refused callback: the next reconcile activates, once ---------------------

my $before = @{ $m->requests(path => $activate) };
$r = $m->push(feed => 'dd_corp_monitor', orderNo => $pushed->{orderNo},
              callback => $cb->(), key => 'WrongKey');
is($r->{http_status}, 403, 'a callback refused with 403');
my $deadline = time + 15;
while (time < $deadline && @{ $m->requests(path => $activate) } == $before) {
    sleep 0.3;
}
my $acts = $m->requests(path => $activate);
is(@$acts - $before, 1, 'activate called once');
ok($acts->[-1]{sig_ok}, 'activate call signed');
sleep 4.5;
is(@{ $m->requests(path => $activate) } - $before, 1,
   'not again within the interval');
like($t->error_log, qr/\[notice\].*dd_corp_monitor callback re-activated/,
     'activation logged at notice');

# --- QCC's errors: logged, shown, backed off, then recovery -------------------

$m->behave(path => $list, answers => [
    { status => '107', msg => '【无效请求】被禁止的 IP 或者签名错误' },
    { status => '116', msg => '超过当日调用总量' } ]);
my $later = $m->order(feed => 'dd_corp_monitor');

$deadline = time + 20;
my $seen107;
while (time < $deadline) {
    my $rc = status()->{feeds}{dd_corp_monitor}{reconcile};
    $seen107 ||= ($rc->{code} eq '107' && $rc->{outcome} eq 'error');
    last if $seen107;
    sleep 0.2;
}
ok($seen107, 'status shows the 107 error of the list call');
like($t->error_log, qr/\[error\].*reconcile dd_corp_monitor failed: list call: IP forbidden or bad signature, status 107/,
     '107 logged with its meaning');
my $s = wait_order($t, $later->{orderNo}, 40);
is($s && $s->{state}, 'delivered', 'delivered after recovery');
like($t->error_log, qr/status 116/, '116 logged');
is(status()->{feeds}{dd_risk_mnr}{reconcile}{outcome}, 'ok',
   'the other feed kept reconciling');

# --- operator actions ----------------------------------------------------------

my $bad = $m->order(feed => 'dd_corp_monitor');
my ($path) = $bad->{downloadUrl} =~ m{^http://[^/]+(/[^?]+)};
$m->behave(path => $path, status_forever => 404);
$m->push(feed => 'dd_corp_monitor', orderNo => $bad->{orderNo},
         callback => $cb->());
is(wait_order($t, $bad->{orderNo}, 20)->{state}, 'failed', 'order failed');
$m->behave(path => $path, clear => 1);

my @cases = (
    [ POST => "action=retry&feed=dd_corp_monitor&orderNo=$bad->{orderNo}", 200, qr/queued again/ ],
    [ POST => "action=retry&feed=dd_other&orderNo=X", 400, qr/feed must be/ ],
    [ POST => "action=retry&feed=dd_corp_monitor&orderNo=a%2Fb", 400, qr/orderNo/ ],
    [ POST => "action=retry&feed=dd_corp_monitor&orderNo=NOSUCH", 404, qr/no such order/ ],
    [ POST => "action=retry&feed=dd_corp_monitor&orderNo=$pushed->{orderNo}", 409, qr/only a failed order/ ],
    [ POST => "action=explode&feed=dd_corp_monitor", 400, qr/action must be/ ],
    [ GET => "action=retry&feed=dd_corp_monitor&orderNo=X", 405, qr/POST/ ],
    [ POST => "action=reconcile&feed=dd_corp_monitor", 202, qr/reconcile started/ ],
);

for my $c (@cases) {
    my ($method, $q, $code, $re) = @$c;
    my $res = $t->http($method, "/qcc/status?$q", $method eq 'POST' ? (body => '') : ());
    is($res->{status}, $code, "$method $q: $code");
    my $j = eval { $json->decode($res->{body}) } || {};
    is($j->{status}, "$code", "$method $q: JSON status");
    like($j->{msg} // '', $re, "$method $q: message");
}

$s = wait_order($t, $bad->{orderNo}, 20);
is($s && $s->{state}, 'delivered', 'retried order delivered');

$t->stop;
$t->check_error_log;

done_testing;
