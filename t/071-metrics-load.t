#!/usr/bin/perl

# qcc_metrics under load: two workers, 8 clients in parallel, 400 calls
# of two API families with a business status mix (200 and the mock's 107
# for a wrong secret).  The counters are exact (every call counted once,
# across workers, without a lock), the histogram's count equals the calls,
# and $qcc_status in the access log agrees with the metrics line by line.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccProm;
use POSIX ();

my $t = QccTest->new(workers => 2);
my $m = QccMock->new;
$t->write_file('secret', "SecretKey\n", 0600);
$t->write_file('wrong', "Wrong\n", 0600);
$t->{vars} = { MOCK => $m->port };
$t->config(http => <<'EOC')->run or BAIL_OUT('no start');
log_format st '$uri $qcc_status';
qcc_key AppKey;
qcc_secret_key_file %%PREFIX%%/secret;
upstream mock { server 127.0.0.1:%%MOCK%%; keepalive 4; }
server {
    listen 127.0.0.1:%%PORT%%;
    access_log %%PREFIX%%/st.log st;
    qcc_metrics on;
    location /qcc/ {
        qcc_sign on;
        proxy_pass http://mock/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
    location /bad/ {
        qcc_secret_key_file %%PREFIX%%/wrong;
        qcc_sign on;
        proxy_pass http://mock/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
    location = /status { qcc_metrics off; qcc_status; }
}
EOC

my ($clients, $per) = (8, 50);
my @pids;
for my $c (1 .. $clients) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        for my $i (1 .. $per) {
            my $uri = $i % 5 == 0 ? '/bad/api/radar_ext/getReportInfo?orderNo=x'
                    : $i % 2 ? '/qcc/api/radar_ext/createReport?reportType=day'
                    : '/qcc/api/dd_corp_monitor/getExceptions?corpKeyNo=k&checkId=c';
            $t->get($uri);
        }
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
waitpid($_, 0) for @pids;

my ($p, @err) = QccProm::parse($t->get('/status?format=prometheus')->{body});
ok(!@err, 'output parses') or diag("@err");
my $total = $clients * $per;
is(QccProm::total($p, 'qcc_calls_total'), $total, "$total calls counted");
is(QccProm::value($p, 'qcc_calls_total', family => 'dd_corp_monitor', code => 200),
   $clients * 20, 'dd_corp_monitor: 160');
is(QccProm::value($p, 'qcc_calls_total', family => 'radar_ext', code => 200),
   $clients * 30, 'radar_ext: 240');
is(QccProm::value($p, 'qcc_business_status_total', family => 'radar_ext',
                  status => 107), $clients * 10, '107: 80');
is(QccProm::value($p, 'qcc_business_status_total', family => 'radar_ext',
                  status => 200), $clients * 20, 'radar_ext 200: 160');
is(QccProm::value($p, 'qcc_business_status_total', family => 'dd_corp_monitor',
                  status => 200), $clients * 20, 'dd_corp_monitor 200: 160');
is(QccProm::total($p, 'qcc_upstream_response_seconds_count'), $total,
   'histogram count: every call');

# the log agrees
my %log;
for (split /\n/, $t->read_file('st.log') // '') {
    my ($uri, $st) = split ' ';
    next if $uri eq '/status';
    $log{$st}++;
}
is($log{107}, $clients * 10, '$qcc_status 107 logged as often as counted');
is($log{200}, $clients * 40, '$qcc_status 200 likewise');
my @workers = $t->worker_pids;
is(scalar @workers, 2, 'two workers served');

$t->stop;
$t->check_error_log;

done_testing;
