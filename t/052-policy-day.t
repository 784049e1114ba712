#!/usr/bin/perl

# The day boundary: with a short period (period=3s; the QCC day is the
# same arithmetic with 86400 s, counted from midnight UTC+8, see
# t/unit/test_policy.c) a spent budget is refused until the boundary,
# Retry-After says how long, and the next period starts at zero, for the
# client and for the account.  A reload that changes the period starts
# anew; one that keeps it keeps the counts.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use JSON::PP;
use Time::HiRes qw(time sleep);

my $json = JSON::PP->new->utf8;

my $t = QccTest->new(workers => 2);
my $m = QccMock->new;

$t->write_file('secret', "SecretKey\n", 0600);
$t->{vars} = { MOCK => $m->port };

my $P = 3;

sub conf {
    my ($period) = @_;
    return <<"EOC";
qcc_policy_zone zone=short:64k period=$period budget=3;
qcc_client app zone=short families=radar_ext budget=2;
qcc_client other zone=short families=radar_ext;

server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    qcc_secret_key_file %%PREFIX%%/secret;

    location /qcc/ {
        qcc_policy short;
        qcc_client_id \$http_x_app;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location = /status { qcc_status; }
}
EOC
}

$t->config(http => conf("${P}s"))->run or BAIL_OUT('no start');

sub call {
    my ($app) = @_;
    return $t->http(GET => '/qcc/api/radar_ext/createReport?reportType=day',
                    headers => ['X-App' => $app]);
}

sub zone {
    return $json->decode($t->get('/status')->{body})->{policy}{short};
}

# the start of the next period, as the module counts (from UTC+8)
sub next_boundary {
    my $now = time;
    return (int(($now + 28800) / $P) + 1) * $P - 28800;
}

# wait for a fresh period, with a margin
sleep(next_boundary() - time + 0.05);

is(call('app')->{status}, 200, 'first call of the period');
is(call('app')->{status}, 200, 'second call of the period');
my $r = call('app');
is($r->{status}, 429, 'third call: 429');
my $ra = $r->{headers}{'retry-after'};
ok($ra >= 1 && $ra <= $P, "Retry-After within the period ($ra)");
my $reset = $json->decode($r->{body})->{reset};
like($reset, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/, 'reset time');

# the account budget (3) catches the other client after one call
is(call('other')->{status}, 200, 'other client: one call');
$r = call('other');
is($r->{status}, 429, 'other client: the account is spent');
like($r->{body}, qr/account/, 'other client: said so');

my $z = zone();
is($z->{clients}{app}{used}, 2, 'status: app used 2');
is($z->{used}, 3, 'status: account used 3');
is($z->{period}, $P, 'status: the period');

# --- across the boundary ----------------------------------------------------

sleep(next_boundary() - time + 0.05);

$z = zone();
is($z->{clients}{app}{used}, 0, 'new period: status shows 0 used');
is($z->{clients}{app}{left}, 2, 'new period: 2 left');
is(call('app')->{status}, 200, 'new period: app admitted again');
is(call('other')->{status}, 200, 'new period: other admitted again');
$z = zone();
is($z->{clients}{app}{used}, 1, 'new period: app used 1');
is($z->{used}, 2, 'new period: account used 2');
is($z->{clients}{app}{families}{radar_ext}{calls}, 3,
   'calls are counted over periods');

is(scalar @{ $m->requests(path => '/api/radar_ext/createReport') }, 5,
   'QCC saw the 5 admitted calls');

# --- a reload that changes the period starts anew ---------------------------

$t->config(http => conf('1h'));
$t->reload;
$z = zone();
is($z->{period}, 3600, 'reload: the new period');
is($z->{clients}{app}{used}, 0, 'reload with a new period: 0 used');
is($z->{clients}{app}{families}{radar_ext}{calls}, 3,
   'reload with a new period: calls kept');
is(call('app')->{status}, 200, 'reload: admitted');
$t->reload;
is(zone()->{clients}{app}{used}, 1, 'plain reload: used kept');

$t->stop;
$t->check_error_log;

done_testing;
