#!/usr/bin/perl

# Budgets under load and across reloads: 200 parallel calls on two
# workers against a budget of 150 let exactly 150 reach QCC and refuse
# exactly 50 with 429; an account budget caps several apps together; the
# counters survive "nginx -s reload", also one that changes budgets and
# adds a client.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use JSON::PP;
use POSIX ();

my $json = JSON::PP->new->utf8;

my $t = QccTest->new(workers => 2);
my $m = QccMock->new;

$t->write_file('secret', "SecretKey\n", 0600);
$t->{vars} = { MOCK => $m->port };

sub conf {
    my (%o) = @_;
    my $batch = $o{batch} // 150;
    my $extra = $o{extra} // '';
    return <<"EOC";
qcc_policy_zone zone=bank:1m;
qcc_policy_zone zone=acct:64k budget=$o{account};
qcc_client batch zone=bank families=* budget=$batch;
qcc_client app1 zone=bank families=radar_ext budget=10;
qcc_client a zone=acct families=dd_risk_mnr budget=100;
qcc_client b zone=acct families=dd_risk_mnr budget=100;
$extra

log_format pid '\$pid \$status';

server {
    # reuseport: the kernel spreads connections over both workers
    listen 127.0.0.1:%%PORT%% reuseport;
    access_log %%PREFIX%%/pid.log pid;
    qcc_key AppKey;
    qcc_secret_key_file %%PREFIX%%/secret;
    qcc_client_id \$http_x_app;
    qcc_sign on;

    location /qcc/ {
        qcc_policy bank;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location /acct/ {
        qcc_policy acct;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location = /status { qcc_status; }
}
EOC
}

$t->config(http => conf(account => 30))->run or BAIL_OUT('no start');

sub call {
    my ($app, $uri) = @_;
    return $t->http(GET => $uri, headers => ['X-App' => $app]);
}

sub status {
    return $json->decode($t->get('/status')->{body})->{policy};
}

# Runs $n calls from $kids forked clients; returns (ok, refused, other).
sub parallel {
    my ($kids, $n, $app, $uri) = @_;
    my @pids;
    my $dir = $t->dir;
    for my $k (0 .. $kids - 1) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            my ($ok, $no, $bad) = (0, 0, 0);
            for my $i (0 .. $n / $kids - 1) {
                my $r = call($app, $uri);
                if ($r->{status} == 200) { $ok++ }
                elsif ($r->{status} == 429
                       && $r->{headers}{'retry-after'}) { $no++ }
                else { $bad++ }
            }
            open my $fh, '>', "$dir/kid.$k" or POSIX::_exit(1);
            print $fh "$ok $no $bad\n";
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    my ($ok, $no, $bad) = (0, 0, 0);
    for my $k (0 .. $kids - 1) {
        my ($a, $b, $c) = split ' ', $t->read_file("kid.$k") // '0 0 999';
        $ok += $a; $no += $b; $bad += $c;
        unlink $t->dir . "/kid.$k";
    }
    return ($ok, $no, $bad);
}

# --- 200 parallel calls, budget 150, two workers ----------------------------

my $path = '/api/dd_risk_mnr/listDdRiskLatestOrderNo';
$m->behave(path => $path, delay_ms => 20);

my ($ok, $no, $bad) = parallel(20, 200, batch => "/qcc$path");
is($ok, 150, '200 parallel calls: exactly 150 admitted');
is($no, 50, '200 parallel calls: exactly 50 refused with 429');
is($bad, 0, '200 parallel calls: no other answer');

my $reqs = $m->requests(path => $path);
is(scalar @$reqs, 150, 'QCC saw exactly 150 calls');
ok(!(grep { !$_->{sig_ok} } @$reqs), 'each of them signed');

my %pids;
$pids{$_}++ for ($t->read_file('pid.log') // '') =~ /^(\d+) 200$/mg;
is(scalar keys %pids, 2, 'both workers admitted calls')
    or diag(explain(\%pids));

my $s = status();
my $bt = $s->{bank}{clients}{batch};
is($bt->{used}, 150, 'status: 150 used');
is($bt->{left}, 0, 'status: none left');
is($bt->{limited}, 50, 'status: 50 limited');
is($bt->{families}{dd_risk_mnr}{calls}, 150, 'status: 150 calls');
is($bt->{families}{dd_risk_mnr}{codes}{201}
   + ($bt->{families}{dd_risk_mnr}{codes}{200} // 0), 150,
   'status: 150 business statuses');
is($s->{bank}{used}, 150, 'status: the zone used 150');

# app1 in the same zone is unaffected
is(call(app1 => '/qcc/api/radar_ext/createReport?reportType=day')->{status},
   200, 'another client of the zone: 200');

# --- an account budget over several clients ---------------------------------

($ok, $no, $bad) = parallel(10, 40, a => "/acct$path");
is($ok, 30, 'account budget 30: 30 of 40 parallel calls admitted');
is($no, 10, 'account budget 30: 10 refused');
my $r = call(b => "/acct$path");
is($r->{status}, 429, 'account budget: another client refused too');
like($r->{body}, qr/account/, 'account budget: said so');
$s = status();
is($s->{acct}{used}, 30, 'status: account used 30');
is($s->{acct}{left}, 0, 'status: account left 0');
is($s->{acct}{limited}, 11, 'status: account limited 11');

# --- reload: same configuration --------------------------------------------

my @old = $t->worker_pids;
$t->reload;
my $tries = 0;
while ($tries++ < 50 && grep { kill 0, $_ } @old) { select undef, undef, undef, 0.1 }

$s = status();
is($s->{bank}{clients}{batch}{used}, 150, 'reload: batch still used 150');
is($s->{bank}{clients}{batch}{families}{dd_risk_mnr}{calls}, 150,
   'reload: calls kept');
is($s->{bank}{clients}{app1}{used}, 1, 'reload: app1 still used 1');
is($s->{acct}{used}, 30, 'reload: account still used 30');
is(call(batch => "/qcc$path")->{status}, 429, 'reload: batch still spent');

# --- reload: a higher budget, a new client, the account raised -------------

$t->config(http => conf(batch => 155, account => 35,
                        extra => 'qcc_client late zone=bank families=rpt '
                                 . 'budget=1;'));
@old = $t->worker_pids;
$t->reload;
$tries = 0;
while ($tries++ < 50 && grep { kill 0, $_ } @old) { select undef, undef, undef, 0.1 }

($ok, $no, $bad) = parallel(4, 8, batch => "/qcc$path");
is($ok, 5, 'budget raised to 155: 5 more admitted');
is($no, 3, 'budget raised to 155: then 429');
is(scalar @{ $m->requests(path => $path) }, 150 + 30 + 5,
   'QCC saw every admitted call and no other');
($ok, $no) = parallel(5, 10, b => "/acct$path");
is($ok, 5, 'account raised to 35: 5 more');

$s = status();
is($s->{bank}{clients}{batch}{used}, 155, 'status: batch used 155');
is($s->{bank}{clients}{batch}{budget}, 155, 'status: the new budget');
is($s->{bank}{clients}{late}{used}, 0, 'status: the new client');
is($s->{bank}{clients}{app1}{used}, 1, 'status: app1 kept through both');

# two zones in one Prometheus answer: each metric typed once
my $p = $t->get('/status?format=prometheus')->{body};
my %types;
$types{$_}++ for $p =~ /^# TYPE (\S+)/mg;
ok(keys %types >= 10 && !(grep { $_ != 1 } values %types),
   'prometheus: each metric typed once over two zones');
like($p, qr/^qcc_policy_account_used\{zone="acct"\} 35$/m,
     'prometheus: account used');
like($p, qr/^qcc_policy_account_budget_left\{zone="acct"\} 0$/m,
     'prometheus: account left');
like($p, qr/^qcc_policy_used\{zone="bank",client="batch"\} 155$/m,
     'prometheus: the other zone');
my ($seen, $malformed) = (0, 0);
for my $l (split /\n/, $p) {
    next if $l =~ /^#/ || $l !~ /^qcc_policy/;
    $seen++;
    $malformed++ unless $l =~ /^[a-z_]+\{(?:[a-z]+="[^"\\]*",?)+\} -?\d+$/;
}
ok($seen > 20 && !$malformed, "prometheus: $seen well-formed samples");

$t->stop;

# one warning a day per spent budget, the other refusals at info
my $log = $t->error_log;
my @warn = $log =~ /\[warn\].*client "batch" has used its budget/g;
my @info = $log =~ /\[info\].*client "batch" has used its budget/g;
is(scalar @warn, 1, 'one warning for the spent budget');
is(scalar @info, 50 + 1 + 3 - 1, 'the other refusals at info');
is(scalar(() = $log =~ /\[warn\].*zone "acct" has used its budget/g), 1,
   'one warning for the spent account');

$t->check_error_log;

done_testing;
