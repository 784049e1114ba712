#!/usr/bin/perl

# conf/qcc.conf's guardrails and files route, running: the production
# configuration with its machine paths moved into a temporary prefix, the
# upstream pointed at the mock QCC over TLS and qcc_download_hosts at the
# mock's plain files port.  The files route keeps the access rules of
# /qcc/ (password needed), sends neither the app's password nor any QCC
# credential, and downloads byte for byte; the edge checks answer 400.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use MIME::Base64 qw(encode_base64);

my $CA = '/etc/ssl/certs/ca-certificates.crt';
my $t = QccTest->new;
my $m = eval { QccMock->new(tls => 1) };
plan(skip_all => "no mock QCC with TLS: $@") unless $m;

my $src = "$QccTest::ROOT/conf/qcc.conf";
open my $fh, '<', $src or BAIL_OUT("$src: $!");
my $conf = do { local $/; <$fh> };
close $fh;

my ($d, $port, $mock) = ($t->dir, $t->port, $m->port);
my $cbport = QccTest::free_port();
$t->write_file('qcc-secret-key', "SecretKey\n", 0600);
$t->write_file('qcc.htpasswd',
               "app1:\$apr1\$QccTest1\$Ile1kEaMgkimrR6F6vsuW1\n", 0644);
my $MOD = $QccTest::MODULE;
my $up = '127.0.0.1:' . $m->tls_port;
my $ca = $m->tls_ca;
my @subst = (
    [ 'module', sub { s{^load_module \S+;$}{load_module $MOD;}mg } ],
    [ 'secret', sub { s{/etc/nginx/qcc-secret-key\b}{$d/qcc-secret-key}g } ],
    [ 'htpasswd', sub { s{/etc/nginx/qcc\.htpasswd\b}{$d/qcc.htpasswd}g } ],
    [ 'pid', sub { s{^pid /run/nginx\.pid;$}{pid $d/nginx.pid;}mg } ],
    [ 'logs', sub { s{/var/log/nginx/}{$d/}g } ],
    [ 'listen', sub { s{^(\s*)listen 8080;$}{${1}listen 127.0.0.1:$port;}mg } ],
    [ 'push state', sub { s{/var/lib/nginx/qcc/}{$d/qcc/}g } ],
    [ 'driver socket', sub { s{/run/nginx-qcc\.sock}{$d/qcc.sock}g } ],
    [ 'callback listen', sub {
        s{^(\s*)listen 8443;$}{${1}listen 127.0.0.1:$cbport;}mg } ],
    [ 'upstream', sub { s{^(\s*)server pro\.qcc\.com:443;$}{${1}server $up;}mg } ],
    [ 'CA', sub { s{^(\s*proxy_ssl_trusted_certificate )\Q$CA\E;$}{$1$ca;}mg } ],
    [ 'key', sub { s{^(\s*)qcc_key \S+;$}{${1}qcc_key AppKey;}m } ],
    [ 'download hosts', sub {
        s{^(\s*)# qcc_download_hosts pro-files\.qichacha\.com;$}
         {${1}qcc_download_hosts 127.0.0.1:$mock;}m } ],
    [ 'temp paths', sub {
        my $temp = join '', map { "    ${_}_temp_path $d/${_}_temp;\n" }
                       qw(client_body proxy fastcgi uwsgi scgi);
        s/^http \{\n/http {\n$temp/m } ],
);
for my $s (@subst) {
    my $n;
    $n = $s->[1]->() for $conf;
    ok($n, "rewritten: $s->[0]");
}
$t->write_file('nginx.conf', $conf);
# the push receiver's state directories, writable by the workers
my (undef, undef, $uid, $gid) = getpwnam('www-data');
for my $sub ('qcc', 'qcc/spool', 'qcc/tmp') {
    mkdir "$d/$sub";
    chown $uid // 0, $gid // 0, "$d/$sub";
}
$t->run or BAIL_OUT('qcc.conf did not start');

my $auth = [ Authorization => 'Basic ' . encode_base64('app1:app1-password', '') ];

# a daily report, its link through the files route
my $r = $t->get('/qcc/api/radar_ext/createReport?reportType=day',
                headers => $auth);
my ($order) = $r->{body} =~ /"orderNo":\s*"([^"]+)"/;
$r = $t->get("/qcc/api/radar_ext/getReportInfo?orderNo=$order",
             headers => $auth);
my ($url) = $r->{body} =~ /"reportUrl":\s*"([^"]+)"/;
like($url // '', qr{^https?://127\.0\.0\.1:\d+/files/}, 'a report link');
($url //= '') =~ s{^https://127\.0\.0\.1:\d+}{http://127.0.0.1:$mock};
(my $files = $url) =~ s{^http://}{/qcc/files/http/};

is($t->get($files)->{status}, 401, 'files route: no password, 401');

my $since = do { my $x = $m->requests; @$x ? $x->[-1]{id} : 0 };
$r = $t->get($files, headers => [ @$auth, Token => 'T', Timespan => '1',
                                  Cookie => 'c=1' ]);
is($r->{status}, 200, 'files route: 200');
my $rec = $m->reports->{radar}{$order};
my $want = $t->read_file($rec->{path}
                         // $m->files_dir . '/' . ($rec->{rel} // 'none'));
ok(defined $want && $r->{body} eq $want, 'files route: byte-identical');
my ($f) = grep { $_->{kind} eq 'files' } @{ $m->requests(since => $since) };
$f ||= { headers => [], args => [] };
is(scalar(grep { $_->[0] =~ /^(authorization|cookie|token|timespan)$/i }
          @{ $f->{headers} }), 0,
   'files route: no password, cookie, Token or Timespan sent');
is(scalar(grep { lc $_->[0] eq 'key' } @{ $f->{args} }), 0,
   'files route: no key argument');

$r = $t->get('/qcc/files/http/evil.example/x', headers => $auth);
is($r->{status}, 403, 'files route: another host, 403');

$r = $t->get('/qcc/api/radar_ext/batchAddRadarCompanyListToExistedUser?'
             . 'loginName=u&keyWordList=' . join(',', 1 .. 201),
             headers => $auth);
is($r->{status}, 400, 'qcc_guard: 201 keywords, 400');
like($r->{body}, qr/^\{"status":"202"/, 'qcc_guard: QCC-style JSON');

$r = $t->get('/qcc/api/dd_corp_monitor/getShiXinList?corpKeyNo=a&checkId=1'
             . '&pageSize=30', headers => $auth);
is($r->{status}, 400, 'qcc_guard: pageSize 30, 400');

$t->stop;
$t->check_error_log;
$m->stop;

done_testing;
