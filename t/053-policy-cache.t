#!/usr/bin/perl

# proxy_cache for idempotent look-ups (the annual-inspection details):
# the first call reaches QCC signed and is charged; the hits are served
# without reaching QCC and without being charged; the cache key holds no
# secret, Token or Timespan.  The charge is decided before the cache is
# consulted, so a client with its budget spent is refused even a hit.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use JSON::PP;
use File::Find;
use Time::HiRes qw(sleep);

my $json = JSON::PP->new->utf8;

my $t = QccTest->new(workers => 2);
my $m = QccMock->new;

$t->write_file('secret', "SecretKey\n", 0600);
$t->{vars} = { MOCK => $m->port };

$t->config(http => <<'EOC')->run or BAIL_OUT('nginx did not start');
proxy_cache_path %%PREFIX%%/cache levels=1:2 keys_zone=qcc_lookups:1m
                 inactive=1h;

qcc_policy_zone zone=bank:1m;
qcc_client app1 zone=bank families=dd_corp_monitor budget=2;
qcc_client app2 zone=bank families=dd_corp_monitor budget=5;

server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    qcc_secret_key_file %%PREFIX%%/secret;
    qcc_policy bank;
    qcc_client_id $http_x_app;
    qcc_sign on;

    location /qcc/ {
        proxy_pass http://127.0.0.1:%%MOCK%%/;

        # the detail look-ups: idempotent, cached for all apps
        location /qcc/api/dd_corp_monitor/getExceptions {
            proxy_cache qcc_lookups;
            # after signing: the path and "key=AppKey&<the client's
            # arguments>"; never $http_token or $http_timespan
            proxy_cache_key $uri$is_args$args;
            proxy_cache_valid 200 10m;
            proxy_cache_lock on;
            add_header X-Cache $upstream_cache_status always;
            proxy_pass http://127.0.0.1:%%MOCK%%/api/dd_corp_monitor/getExceptions;
        }
    }

    # the server's policy does not reach the status endpoint
    location = /status { qcc_status; }
}
EOC

my $path = '/api/dd_corp_monitor/getExceptions';

sub call {
    my ($app, $args, @h) = @_;
    return $t->http(GET => "/qcc$path?$args",
                    headers => ['X-App' => $app, @h]);
}

sub client {
    my ($c) = @_;
    sleep 0.3;    # a request is settled after its answer
    return $json->decode($t->get('/status')->{body})
        ->{policy}{bank}{clients}{$c};
}

# --- the first call reaches QCC, signed --------------------------------------

my $r = call(app1 => 'corpKeyNo=c1&checkId=9',
             Token => 'CLIENT-TOKEN', Timespan => '123');
is($r->{status}, 200, 'first look-up: 200');
is($r->{headers}{'x-cache'}, 'MISS', 'first look-up: a miss');
my $reqs = $m->requests(path => $path);
is(scalar @$reqs, 1, 'first look-up: QCC called');
ok($reqs->[0]{sig_ok}, 'first look-up: the signature checks');
is($reqs->[0]{query}, 'key=AppKey&corpKeyNo=c1&checkId=9',
   'first look-up: arguments');

# --- hits: not at QCC, not charged --------------------------------------------

for my $i (1 .. 5) {
    my $h = call(app1 => 'corpKeyNo=c1&checkId=9',
                 Token => "T$i", Timespan => $i);
    is($h->{headers}{'x-cache'}, 'HIT', "hit $i");
    is($h->{body}, $r->{body}, "hit $i: the same answer");
}
is(scalar @{ $m->requests(path => $path) }, 1, 'hits: QCC not called');

my $c = client('app1');
is($c->{used}, 1, 'hits: app1 charged once');
is($c->{families}{dd_corp_monitor}{calls}, 1, 'hits: one call');
is($c->{families}{dd_corp_monitor}{cached}, 5, 'hits: five cached');

# another app's hit is not charged to it either
is(call(app2 => 'corpKeyNo=c1&checkId=9')->{headers}{'x-cache'}, 'HIT',
   'another app: a hit');
is(client('app2')->{used}, 0, 'another app: not charged');
is(client('app2')->{families}{dd_corp_monitor}{cached}, 1,
   'another app: one cached');

# --- another look-up is a miss and charged -----------------------------------

is(call(app1 => 'corpKeyNo=c1&checkId=10')->{headers}{'x-cache'}, 'MISS',
   'another look-up: a miss');
is(client('app1')->{used}, 2, 'another look-up: charged');
is(scalar @{ $m->requests(path => $path) }, 2, 'another look-up: QCC called');

# budget spent: refused before the cache is consulted
$r = call(app1 => 'corpKeyNo=c1&checkId=11');
is($r->{status}, 429, 'budget spent: a new look-up refused');
$r = call(app1 => 'corpKeyNo=c1&checkId=9');
is($r->{status}, 429, 'budget spent: a cached look-up refused too');
is(client('app1')->{used}, 2, 'budget spent: still 2');
is(call(app2 => 'corpKeyNo=c1&checkId=10')->{headers}{'x-cache'}, 'HIT',
   'another app: its hit still served');

# --- the cache key -----------------------------------------------------------

my @keys;
find(sub {
    return unless -f $_;
    open my $fh, '<', $_ or return;
    binmode $fh;
    local $/;
    my $data = <$fh>;
    push @keys, $1 while $data =~ /\nKEY: ([^\n]*)\n/g;
}, $t->dir . '/cache');
is_deeply([sort @keys],
          ["/qcc$path?key=AppKey&corpKeyNo=c1&checkId=10",
           "/qcc$path?key=AppKey&corpKeyNo=c1&checkId=9"],
          'cache keys: the path and arguments only');
ok(!(grep { /SecretKey|Token|Timespan|[0-9A-F]{32}/ } @keys),
   'cache keys: no secret, Token or Timespan');

my $p = $t->get('/status?format=prometheus')->{body};
like($p, qr/^qcc_policy_cached_total\{zone="bank",client="app1",family="dd_corp_monitor"\} 5$/m,
     'prometheus: cached');
like($p, qr/^qcc_policy_calls_total\{zone="bank",client="app1",family="dd_corp_monitor"\} 2$/m,
     'prometheus: calls');

$t->stop;
$t->check_error_log;

done_testing;
