#!/usr/bin/perl

# The batch limit across a reload and a crash: slots held by the old
# workers keep counting after a reload (the zone is kept) and are given
# back when their calls end; slots of a worker killed in the middle of a
# call are reclaimed within about a second, so the account is not stuck.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my $m = QccMock->new;
my $api = '/api/radar_ext/batchAddRadarCompanyListToExistedUser';

sub gateway {
    my ($conc) = @_;
    my $t = QccTest->new(workers => 2);
    $t->write_file('secret', "SecretKey\n", 0600);
    $t->{vars} = { MOCK => $m->port, CONC => $conc };
    $t->config(workers => 2, http => <<'EOC')->run or BAIL_OUT('no nginx');
qcc_batch_zone zone=qcc_batch:64k;
server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    qcc_secret_key_file %%PREFIX%%/secret;
    location /qcc/ {
        qcc_sign on;
        qcc_batch_limit zone=qcc_batch concurrency=%%CONC%% wait=5s;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }
}
EOC
    return $t;
}

sub send_call {
    my ($t, $tag) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port)
        or die "connect: $!";
    print $s "GET /qcc$api?loginName=$tag&keyWordList=a HTTP/1.1\r\n"
        . "Host: localhost\r\nConnection: close\r\n\r\n";
    return $s;
}

sub status_of {
    my ($s) = @_;
    local $/;
    my $r = QccTest::parse_response(<$s> // '');
    close $s;
    return $r->{status};
}

# --- reload while 5 calls run -----------------------------------------------

my $t = gateway(5);
$m->behave(path => $api, delay_ms => 1500);
my @s = map { send_call($t, "old$_") } 1 .. 5;
sleep 0.3;
$t->reload;                                     # sleeps 1 s
push @s, map { send_call($t, "new$_") } 1 .. 3;
my @st = map { status_of($_) } @s;
is(join(',', @st), join(',', (200) x 8),
   'reload: the 5 old calls and 3 new ones all pass');
is($m->stats->{max_in_flight_api}, 5,
   'reload: never more than 5 at the mock, old and new workers together');
my @order = map { $m->arg($_, 'loginName') } @{ $m->requests(path => $api) };
is(join(',', sort @order[5 .. 7]), 'new1,new2,new3',
   'reload: the new calls waited for the old ones')
    or diag("order at the mock: @order");
$t->stop;

# --- a worker killed while it holds the only slot ---------------------------

$m->reset;
my $k = gateway(1);
$m->behave(path => $api, delay_ms => 4000);
my $held = send_call($k, 'held');
sleep 0.3;
kill 'KILL', $k->worker_pids;                   # the slot stays taken
close $held;
sleep 0.5;                                      # the master restarts them
$m->reset;
my $t0 = time;
my $r = $k->get("/qcc$api?loginName=after&keyWordList=a", timeout => 10);
my $took = time - $t0;
is($r->{status}, 200, 'crash: the next call passes');
ok($took < 3.5, sprintf('crash: the dead worker\'s slot reclaimed (%.2fs)',
                        $took));
like($k->error_log, qr/batch slot of exited process \d+ freed/,
     'crash: the reclaim is logged');
$k->stop;

# The killed workers leave "[alert] worker process ... exited on signal 9"
# lines by design; nothing else may be there.
my @bad = grep { /\[(alert|crit|emerg)\]|AddressSanitizer|runtime error:/
                 && !/worker process \d+ exited on signal 9/ }
          split /\n/, $k->error_log;
is_deeply(\@bad, [], 'crash: no alert but the killed workers\' own');

$m->stop;
$t->check_error_log('reload');

done_testing;
