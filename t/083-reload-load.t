#!/usr/bin/perl

# nginx -s reload every second under a wrk load on /qcc/ (signing proxy)
# and the push callback: no request fails, no connection errs, and every
# pushed order is delivered once.
#
#   TEST_QCC_LOAD_SECONDS (8)

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccFault qw(gateway deliveries wait_delivered figure);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

plan(skip_all => 'reloads of a master under valgrind') if $QccTest::VALGRIND;
my ($wrk) = grep { -x } map { "$_/wrk" } split /:/, $ENV{PATH};
plan(skip_all => 'no wrk (make deps)') unless $wrk;

my $seconds = $ENV{TEST_QCC_LOAD_SECONDS} || 8;
my $m = QccMock->new;
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

my $up = QccTest::free_port();
my $port2 = QccTest::free_port();
my $t = gateway($m, conf => sub {
    my ($http) = @_;
    return $http . <<"EOC";
server {
    listen 127.0.0.1:$up;
    access_log off;
    location / { return 200 '{"status":"200","msg":"ok"}'; }
}
server {
    listen 127.0.0.1:$port2;
    location /qcc/ {
        qcc_sign on;
        proxy_pass http://127.0.0.1:$up/;
    }
}
EOC
});
$t->run or BAIL_OUT('no start');

# 20 orders; their callbacks are repeated (the first one queues, the
# others are answered "already queued" at once)
my @orders = map { $m->order(feed => 'dd_corp_monitor', records => 2) } 1 .. 20;
sub esc { my $s = shift; $s =~ s/([^A-Za-z0-9._~-])/sprintf '%%%02X', ord $1/ge; $s }
my @cb = map {
    '/qcc/callback/corp?key=AppKey&orderNo=' . $_->{orderNo}
    . '&downloadUrl=' . esc($_->{downloadUrl})
    . '&downloadUrlExpiredTime=' . esc($_->{downloadUrlExpiredTime})
    . '&unzipPassword=' . esc($_->{unzipPassword})
} @orders;

sub script {
    my ($paths) = @_;
    my $lua = "local p = {\n" . join('', map { "  \"$_\",\n" } @$paths)
        . "}\nlocal i = 0\nwrk.headers[\"Connection\"] = \"close\"\n"
        . "request = function()\n  i = i + 1\n"
        . "  return wrk.format(\"GET\", p[(i % #p) + 1])\nend\n";
    return $t->write_file('wrk-' . scalar(@$paths) . '.lua', $lua);
}
my $sign_lua = script([ map { "/qcc/api/dd_corp_monitor/getExceptions?corpKeyNo=k$_" } 1 .. 5 ]);
my $cb_lua = script(\@cb);

# two wrk runs at once: the signing proxy and the callback
my @wrk;
for ([ $sign_lua, $port2 ], [ $cb_lua, $t->port ]) {
    my ($lua, $port) = @$_;
    my $out = "$lua.out";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', $out or POSIX::_exit(1);
        open STDERR, '>&', \*STDOUT;
        exec $wrk, '-t1', '-c4', "-d${seconds}s", '--timeout', '10s',
            '-s', $lua, "http://127.0.0.1:$port/" or POSIX::_exit(127);
    }
    push @wrk, [ $pid, $out ];
}

my $reloads = 0;
my $end = time + $seconds - 0.5;
sleep 0.5;
while (time < $end) {
    kill 'HUP', $t->pid;
    $reloads++;
    sleep 1;
}
waitpid($_->[0], 0) for @wrk;

my %tot;
for my $w (@wrk) {
    my $o = $t->read_file($w->[1]) // '';
    my ($req) = $o =~ /(\d+) requests in/;
    my ($non2xx) = $o =~ /Non-2xx or 3xx responses: (\d+)/;
    my @sock = $o =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
    my $err = 0;
    $err += $_ for @sock;
    ok($req && $req > 0, "wrk ran: " . ($req // 0) . " requests") or diag($o);
    is($non2xx // 0, 0, 'no answer but 2xx') or diag($o);
    is($err, 0, 'no socket error') or diag($o);
    $tot{requests} += $req // 0;
    $tot{failed} += ($non2xx // 0) + $err;
}
ok($reloads >= $seconds - 2, "$reloads reloads");

my @left = wait_delivered($t, [ map { $_->{orderNo} } @orders ], 60);
is(scalar @left, 0, 'every pushed order delivered');
my $d = deliveries($m);
is(scalar(grep { ($d->{ $_->{orderNo} } // 0) == 1 } @orders), 20,
   'each once');

$t->stop;
$t->check_error_log('reloads under load');

figure('reload-under-load', seconds => $seconds, reloads => $reloads,
       requests => $tot{requests}, failed => $tot{failed});

done_testing;
