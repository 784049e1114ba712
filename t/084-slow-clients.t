#!/usr/bin/perl

# Hostile clients on the callback: slowloris (hundreds of connections
# sending a request a byte at a time) and 1 MB query strings and bodies.
# Workers' memory stays bounded (resident sets from /proc), repeated rounds
# do not grow it, and other clients are served meanwhile.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccFault qw(gateway figure rss_kb);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

plan(skip_all => 'one slow nginx process under valgrind') if $QccTest::VALGRIND;

my $slow = $ENV{TEST_QCC_SLOW_CLIENTS} || 400;
my $m = QccMock->new;
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

# a second callback server takes request lines of 2 MB, so the module's
# own parser meets the 1 MB queries (with the defaults nginx answers 414)
my $big = QccTest::free_port();
my $t = gateway($m, conf => sub {
    my ($http) = @_;
    return $http . <<"EOC";
server {
    listen 127.0.0.1:$big;
    large_client_header_buffers 4 2m;
    client_header_timeout 10s;
    location = /qcc/callback/corp { qcc_callback dd_corp_monitor; }
}
EOC
});
$t->run or BAIL_OUT('no start');
sleep 0.5;

sub workers_rss { my $s = 0; $s += rss_kb($_) for $t->worker_pids; $s }

sub served {
    my $r = $t->get('/qcc/status', timeout => 5);
    return $r->{status} == 200;
}

my $base = workers_rss();
note("workers' RSS at rest: $base kB");

# --- slowloris ---------------------------------------------------------

my @socks;
for (1 .. $slow) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port,
                                  Timeout => 2) or last;
    syswrite $s, "GET /qcc/callback/corp?key=AppKey&orderNo=";
    push @socks, $s;
}
is(scalar @socks, $slow, "$slow slow connections open");
my $peak = 0;
my $ok = 0;
my $tries = 0;
for my $round (1 .. 5) {
    syswrite $_, 'D' for @socks;
    $tries++;
    $ok++ if served();
    my $rss = workers_rss();
    $peak = $rss if $rss > $peak;
    sleep 0.5;
}
is($ok, $tries, 'other clients served during slowloris');
my $slow_growth = $peak - $base;
ok($slow_growth < 20_000 || $ENV{QCC_SAN_PRELOAD}, "slowloris: workers grew by $slow_growth kB "
   . "for $slow connections (under 20 MB)");
close $_ for @socks;
@socks = ();

# --- 1 MB query strings and bodies -------------------------------------

my $q = 'key=AppKey&orderNo=' . ('9' x (1024 * 1024));
my $body = 'key=AppKey&orderNo=DDMON1&x=' . ('A' x (1024 * 1024));
my (@after, %status);
for my $round (1 .. 4) {
    my @kids;
    for my $k (1 .. 8) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $r = $k % 2
                ? $t->get("/qcc/callback/corp?$q", port => $big, timeout => 20)
                : $t->http(POST => '/qcc/callback/corp', port => $big,
                           body => $body, timeout => 20, headers => [
                           'Content-Type' => 'application/x-www-form-urlencoded' ]);
            POSIX::_exit($r->{status} == 400 ? 0 : $r->{status} == 413 ? 1
                         : $r->{status} == 414 ? 2 : 3);
        }
        push @kids, $pid;
    }
    $tries++;
    $ok++ if served();
    my $rss = workers_rss();
    $peak = $rss if $rss > $peak;
    for (@kids) { waitpid($_, 0); $status{ $? >> 8 }++; }
    $ok++ if served();
    $tries++;
    push @after, workers_rss();
}
is($status{3} // 0, 0, 'each 1 MB request refused with 400, 413 or 414')
    or diag(explain(\%status));
ok($status{2}, '1 MB queries are refused with 414');
like($t->error_log, qr/\[warn\].*qcc: dd_corp_monitor callback refused with 414/,
     'by the module, which met them');
ok($status{1}, '1 MB bodies are refused with 413');
is($ok, $tries, 'other clients served meanwhile');
my $round_growth = $after[-1] - $after[0];
SKIP: {
    # ASan keeps freed memory in quarantine: resident sets only grow there
    skip('resident sets mean nothing under ASan (quarantine)', 1)
        if $ENV{QCC_SAN_PRELOAD};
    ok($round_growth < 8_000, "rounds 2-4 of 8 x 1 MB grew workers by "
       . "$round_growth kB (under 8 MB)") or diag("after each round: @after kB");
}
my $r = $t->get("/qcc/callback/corp?$q", timeout => 10);
is($r->{status}, 414, 'default buffers: 414 before the module');

$t->stop;
$t->check_error_log('slow and large clients');

figure('slow-clients', slowloris => $slow, base_kb => $base,
       peak_kb => $peak, slowloris_growth_kb => $slow_growth,
       mb_round_growth_kb => $round_growth,
       served => "$ok/$tries");

done_testing;
