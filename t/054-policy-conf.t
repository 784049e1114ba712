#!/usr/bin/perl

# Configuration of the policy: what nginx -t accepts and what it refuses,
# with the message it gives.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;

my $c = QccTest->new;    # for nginx -t only

my $server = <<'EOC';
server {
    listen 127.0.0.1:%%PORT%%;
    location /qcc/ {
        qcc_policy bank;
        qcc_client_id $remote_user;
        return 204;
    }
}
EOC

my $zone = "qcc_policy_zone zone=bank:1m;\n";
my $many = join '', map { "qcc_client c$_ zone=bank families=f$_;\n" } 1 .. 11;
my $crowd = join '', map { "qcc_client c$_ zone=small families=rpt;\n" } 1 .. 40;

my @cases = (
    # [ name, http block, expected message or undef for success ]
    ['a complete policy',
     $zone . "qcc_client app zone=bank families=radar_ext,yj/Report "
     . "budget=10;\nqcc_client all zone=bank families=*;\n" . $server,
     undef],
    ['budget, period and a family of one endpoint',
     "qcc_policy_zone zone=bank:64k budget=1000 period=1d;\n"
     . "qcc_client app zone=bank "
     . "families=dd_corp_monitor/getExceptions,rpt budget=0;\n" . $server,
     undef],
    ['an unknown zone in qcc_policy',
     "server { location / { qcc_policy nope; qcc_client_id \$remote_user; } }",
     qr/unknown policy zone "nope"/],
    ['qcc_policy without qcc_client_id',
     $zone . "server { location / { qcc_policy bank; } }",
     qr/"qcc_policy bank" needs "qcc_client_id"/],
    ['qcc_policy off needs nothing',
     "server { location / { qcc_policy off; } }", undef],
    ['a family with a dot segment',
     $zone . "qcc_client a zone=bank families=yj/../rpt;\n",
     qr/invalid family "yj\/..\/rpt"/],
    ['the reserved family "other"',
     $zone . "qcc_client a zone=bank families=other;\n",
     qr/invalid family "other"/],
    ['an empty family list',
     $zone . "qcc_client a zone=bank families=;\n", qr/empty "families="/],
    ['no families',
     $zone . "qcc_client a zone=bank budget=1;\n",
     qr/must have "families" parameter/],
    ['a client twice',
     $zone . "qcc_client a zone=bank families=rpt;\n"
     . "qcc_client a zone=bank families=rpt;\n",
     qr/duplicate client "a" in zone "bank"/],
    ['a client of an unknown zone',
     "qcc_client a zone=bank families=rpt;\n",
     qr/unknown policy zone "bank"/],
    ['a client without zone',
     $zone . "qcc_client a families=rpt;\n",
     qr/"qcc_client" must have "zone" parameter/],
    ['a bad budget',
     $zone . "qcc_client a zone=bank families=rpt budget=-1;\n",
     qr/invalid budget "budget=-1"/],
    ['a client name with a quote',
     $zone . "qcc_client 'a\"b' zone=bank families=rpt;\n",
     qr/invalid client name/],
    ['too many families', $zone . $many, qr/too many families: 15 at most/],
    ['a zone too small', "qcc_policy_zone zone=x:4k;\n", qr/is too small/],
    ['a zone without size', "qcc_policy_zone zone=x;\n",
     qr/invalid zone size/],
    ['a zone without zone=', "qcc_policy_zone budget=1;\n",
     qr/must have "zone" parameter/],
    ['an unknown zone parameter', "qcc_policy_zone zone=x:1m rate=1r/s;\n",
     qr/invalid parameter "rate=1r\/s"/],
    ['a zero period', "qcc_policy_zone zone=x:1m period=0;\n",
     qr/invalid period "period=0"/],
    ['a zone name with a quote', "qcc_policy_zone 'zone=a\"b:1m';\n",
     qr/invalid zone name/],
    ['a zone twice', $zone . $zone, qr/duplicate zone "bank"/],
    ['a zone too small for its clients',
     "qcc_policy_zone zone=small:32k;\n" . $crowd,
     qr/policy zone "small" is too small for its clients/],
);

for my $case (@cases) {
    my ($name, $http, $expect) = @$case;
    $c->config(http => $http);
    my ($rc, $out) = $c->test_config;
    if (defined $expect) {
        isnt($rc, 0, "$name: refused");
        like($out, $expect, "$name: message") or diag($out);
    } else {
        is($rc, 0, "$name: accepted") or diag($out);
    }
}

# a configuration that runs (an instance of its own: nginx -t above left
# [emerg] lines in its log): the policy of the http level reaches the
# proxied locations, not the status endpoint
my $t = QccTest->new;
$t->write_file('html/qcc/api/rpt/retrieve', "report\n");
$t->config(http => $zone . <<'EOC')->run or BAIL_OUT('no start');
qcc_client app zone=bank families=rpt;
qcc_policy bank;
qcc_client_id $http_x_app;

server {
    listen 127.0.0.1:%%PORT%%;
    # content from files, after the precontent phase ("return" would
    # answer before any policy runs)
    location /qcc/ { root %%PREFIX%%/html; }
    location = /status { qcc_status; }
}
EOC

is($t->get('/qcc/api/rpt/retrieve')->{status}, 401, 'http-level policy: 401');
is($t->http(GET => '/qcc/api/rpt/retrieve', headers => ['X-App' => 'app'])
       ->{status}, 200, 'http-level policy: admitted');
is($t->get('/status')->{status}, 200, 'status endpoint: no policy');

$t->stop;
$t->check_error_log;

done_testing;
