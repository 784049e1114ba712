#!/usr/bin/perl

# conf/qcc.conf, the production configuration: it says what issue 2 asks
# for (the literal proxy_pass, verified upstream TLS, allow/deny plus basic
# auth, the concurrency limit of 5 on the four batch-assignment calls),
# and with its machine paths rewritten into a temporary prefix it passes
# `nginx -t` with the built module.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;

my $CA = '/etc/ssl/certs/ca-certificates.crt';

my $t = QccTest->new;
plan(skip_all => "no system CA bundle $CA (package ca-certificates)")
    unless -r $CA;

my $src = "$QccTest::ROOT/conf/qcc.conf";
open my $fh, '<', $src or BAIL_OUT("$src: $!");
my $orig = do { local $/; <$fh> };
close $fh;

# --- what the file must say ------------------------------------------------

# Only uncommented lines count.
(my $live = $orig) =~ s/^\s*#.*\n//mg;
$live =~ s/\s+#.*$//mg;

my @must = (
    [ 'loads the module', qr/^load_module \/\S+\/ngx_http_qcc_module\.so;$/m ],
    [ 'qcc_key set', qr/^\s*qcc_key \S+;$/m ],
    [ 'secret from a file', qr/^\s*qcc_secret_key_file \/\S+;$/m ],
    [ 'location /qcc/', qr/^\s*location \/qcc\/ \{$/m ],
    [ 'signs', qr/^\s*qcc_sign on;$/m ],
    [ 'proxy_pass with a URI part',
      qr/^\s*proxy_pass https:\/\/pro\.qcc\.com\/;$/m ],
    [ 'verifies the upstream', qr/^\s*proxy_ssl_verify on;$/m ],
    [ 'sends SNI', qr/^\s*proxy_ssl_server_name on;$/m ],
    [ 'system CA bundle',
      qr/^\s*proxy_ssl_trusted_certificate \Q$CA\E;$/m ],
    [ 'allow list', qr/^\s*allow \S+;$/m ],
    [ 'deny all', qr/^\s*deny all;$/m ],
    [ 'basic auth', qr/^\s*auth_basic "[^"]+";$/m ],
    [ 'basic auth users', qr/^\s*auth_basic_user_file \/\S+;$/m ],
    [ 'no credentials to QCC',
      qr/^\s*proxy_set_header Authorization "";$/m ],
    [ 'limit zone', qr/^\s*limit_conn_zone \$(\w+) zone=(\w+):\S+;$/m ],
    [ 'limit of 5', qr/^\s*limit_conn \w+ 5;$/m ],
);

for my $m (@must) {
    like($live, $m->[1], "qcc.conf: $m->[0]");
}

like($orig, qr/^\s*#\s*auth_request \/\S+;$/m,
     'qcc.conf: auth_request shown as an alternative');
like($orig, qr/^\s*#\s*ssl_verify_client\s+on;$/m,
     'qcc.conf: client certificates shown as an alternative');
like($orig, qr/qcc_queue.*qcc_callback.*qcc_status.*qcc_download_hosts/s,
     'qcc.conf: a placeholder section for the push receiver');
unlike($live, qr/^\s*qcc_(queue|callback|status|download_hosts)\b/m,
       'qcc.conf: push-receiver directives not used yet');

# The limit zone's key is a map that gives the same non-empty value to
# exactly the four batch-assignment calls, and the empty key to others.
my ($var, $zone) = $live =~ /limit_conn_zone \$(\w+) zone=(\w+):/;
like($live, qr/^\s*limit_conn \Q$zone\E 5;$/m, 'limit_conn uses the zone');
my ($map) = $live =~ /map \$uri \$\Q$var\E \{(.*?)\}/s;
ok($map, "the zone key \$$var is a map of \$uri") or $map = '';
my %key;
for (split /\n/, $map) {
    my ($re, $v) = /^\s*(\S+)\s+(\S+);$/ or next;
    $v =~ s/^"(.*)"$/$1/;
    if ($re eq 'default') { $key{default} = $v; next; }
    $re =~ s/^~\*?//;
    $key{$re} = $v;
}
is($key{default}, '', 'other calls are not counted');

my @batch = qw(batchAddRadarCompanyListToExistedUser
               batchCancelRadarCompanyListFromExistedUser
               batchAddRadarCompanyToExistedUserList
               batchCancelRadarCompanyFromExistedUserList);
my %seen;
for my $api (@batch, 'createReport', 'batchAddRadarCompany') {
    my $uri = "/qcc/api/radar_ext/$api";
    my @hit = map { $key{$_} } grep { $_ ne 'default' && $uri =~ /$_/i }
              keys %key;
    if (grep { $_ eq $api } @batch) {
        is(scalar @hit, 1, "$api is limited") and $seen{$hit[0]}++;
        ok(length $hit[0], "$api has a non-empty key");
    } else {
        is(scalar @hit, 0, "$api is not limited");
    }
}
is(scalar keys %seen, 1, 'one key (one counter) for the four calls');

# --- nginx -t with the paths rewritten -------------------------------------

my $d = $t->dir;
my $port = $t->port;
$t->write_file('qcc-secret-key', "SecretKey\n", 0600);
$t->write_file('qcc.htpasswd', "app1:\$apr1\$QccTest1\$Ile1kEaMgkimrR6F6vsuW1\n");

my $conf = $orig;
my $MOD = $QccTest::MODULE;
my @subst = (
    # [ what, substitution on $_ returning the count ]
    [ 'module', sub { s{^load_module \S+;$}{load_module $MOD;}mg } ],
    [ 'secret file', sub { s{/etc/nginx/qcc-secret-key\b}{$d/qcc-secret-key}g } ],
    [ 'password file', sub { s{/etc/nginx/qcc\.htpasswd\b}{$d/qcc.htpasswd}g } ],
    [ 'pid', sub { s{^pid /run/nginx\.pid;$}{pid $d/nginx.pid;}mg } ],
    [ 'logs', sub { s{/var/log/nginx/}{$d/}g } ],
    [ 'listen', sub { s{^(\s*)listen 8080;$}{${1}listen 127.0.0.1:$port;}mg } ],
    # No DNS in tests: the upstream server by address (nginx -t does not
    # connect; the upstream's name stays pro.qcc.com for Host and SNI).
    [ 'upstream server',
      sub { s{^(\s*)server pro\.qcc\.com:443;$}{${1}server 127.0.0.1:1;}mg } ],
);
for my $s (@subst) {
    my $n;
    $n = $s->[1]->() for $conf;
    ok($n, "substituted: $s->[0]");
}
# Temporary files in the prefix, not in /var/lib/nginx.
my $temp = join '', map { "    ${_}_temp_path $d/${_}_temp;\n" }
               qw(client_body proxy fastcgi uwsgi scgi);
$conf =~ s/^http \{\n/http {\n$temp/m
    or fail('no http block');

(my $live_copy = $conf) =~ s/^\s*#.*\n//mg;
my @outside = grep { !m{^\Q$d\E/} && $_ ne $CA }
              $live_copy =~ m{(?<![\w.:/])(/(?:etc|var|run|usr|srv|opt)/[^\s;]+)}g;
is_deeply(\@outside, [], 'no machine path left in the copy');

$t->write_file('nginx.conf', $conf);
my ($rc, $out) = $t->test_config;
is($rc, 0, 'nginx -t passes') or diag($out);
like($out, qr/test is successful/, 'nginx -t says the test is successful');
unlike($out, qr/\[(warn|alert|crit|emerg)\]/, 'nginx -t has no warning');
$t->check_error_log;

done_testing;
