#!/usr/bin/perl

# `make deb`: the package libnginx-mod-http-qcc built with Debian's own
# tooling (dpkg-buildpackage, debhelper, nginx-dev's dh-sequence-nginx):
# - it holds the module where Debian's nginx loads modules from and the
#   modules-available snippet dh_nginx makes for it;
# - it depends on the nginx ABI it was built for (nginx-abi-*, from
#   nginx-dev's libnginx-mod.abisubstvars) and its postinst enables the
#   snippet in /etc/nginx/modules-enabled;
# - the packaged .so, loaded through that snippet as Debian's nginx.conf
#   does (prefix/modules -> the module directory), signs a call to the
#   mock QCC and serves the status endpoint.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccProm;

my $ROOT = $QccTest::ROOT;

for my $tool (qw(dpkg-buildpackage dh dh_nginx dpkg-deb)) {
    plan(skip_all => "no $tool (make deps)")
        unless grep { -x "$_/$tool" } split /:/, $ENV{PATH};
}

my $t = QccTest->new;
my $d = $t->dir;

# the build (make does nothing when the package is newer than its sources)
my $out = `cd $ROOT && make -s deb 2>&1`;
is($?, 0, 'make deb succeeds') or diag($out);
my ($deb) = $out =~ /^deb: (\S+\.deb)$/m;
ok($deb, 'make deb names the package') or BAIL_OUT("no package: $out");
$deb = "$ROOT/$deb";
like($deb, qr{/build/deb/libnginx-mod-http-qcc_[^/_]+_[a-z0-9]+\.deb$},
     'the package is build/deb/libnginx-mod-http-qcc_<version>_<arch>.deb');

# --- contents -----------------------------------------------------------

my %files = map { (split ' ', $_)[-1] => $_ } split /\n/, `dpkg-deb -c $deb`;
ok($files{'./usr/lib/nginx/modules/ngx_http_qcc_module.so'},
   'the module in /usr/lib/nginx/modules');
ok($files{'./usr/share/nginx/modules-available/mod-http-qcc.conf'},
   'its snippet in /usr/share/nginx/modules-available');
ok($files{'./usr/share/doc/libnginx-mod-http-qcc/examples/qcc.conf'},
   'the production configuration as an example');
ok($files{'./usr/share/doc/libnginx-mod-http-qcc/examples/prometheus-alerts.yml'},
   'the alert rules as an example');
my @other = grep { !m{^\./usr/(lib/nginx/modules|share/(nginx/modules-available|doc/libnginx-mod-http-qcc))(/|$)}
                   && !m{^\./(usr(/lib(/nginx)?|/share(/nginx|/doc)?)?/)?$} }
            sort keys %files;
is("@other", '', 'nothing else');

is(`dpkg-deb -f $deb Package`, "libnginx-mod-http-qcc\n", 'package name');
my $depends = `dpkg-deb -f $deb Depends`;
my $abi = '';
if (open my $fh, '<', '/usr/share/nginx/src/debian/libnginx-mod.abisubstvars') {
    ($abi) = map { /^nginx:abi=(\S+)/ ? $1 : () } <$fh>;
}
ok($abi, "nginx-dev names the ABI: $abi");
like($depends, qr/(^|, )\Q$abi\E(,|$)/m, 'depends on that nginx ABI');
like($depends, qr/\blibcjson1\b/, 'and on the libraries it links (shlibs)');

my $postinst = `dpkg-deb -I $deb postinst`;
like($postinst, qr{modules-available/\$from\s.*modules-enabled/\$to}s,
     'postinst links the snippet into modules-enabled');
like($postinst, qr/mod-http-qcc\.conf:50-mod-http-qcc\.conf/,
     'as 50-mod-http-qcc.conf');

# --- the packaged module, loaded as Debian loads it --------------------------

system("dpkg-deb -x $deb $d/root") == 0 or BAIL_OUT('dpkg-deb -x failed');
my $snippet = $t->read_file("$d/root/usr/share/nginx/modules-available/mod-http-qcc.conf");
is($snippet, "load_module modules/ngx_http_qcc_module.so;\n",
   'the snippet loads modules/ngx_http_qcc_module.so');
symlink("$d/root/usr/lib/nginx/modules", "$d/modules") or die "symlink: $!";

my $m = QccMock->new;
$t->write_file('secret', "SecretKey\n", 0600);
my $mp = $m->port;
my $port = $t->port;
$t->write_file('nginx.conf', <<"EOC");
include $d/root/usr/share/nginx/modules-available/mod-http-qcc.conf;
user www-data;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 64; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/client_body_temp;
    proxy_temp_path $d/proxy_temp;
    fastcgi_temp_path $d/fastcgi_temp;
    uwsgi_temp_path $d/uwsgi_temp;
    scgi_temp_path $d/scgi_temp;
    qcc_key AppKey;
    qcc_secret_key_file $d/secret;
    server {
        listen 127.0.0.1:$port;
        location /qcc/ {
            qcc_sign on;
            qcc_metrics on;
            proxy_pass http://127.0.0.1:$mp/;
        }
        location = /status { qcc_status; }
    }
}
EOC
my ($rc, $tout) = $t->test_config;
is($rc, 0, 'nginx -t with the packaged module') or diag($tout);
$t->run or BAIL_OUT('no start');

my $r = $t->get('/qcc/api/radar_ext/createReport?reportType=day');
like($r->{body}, qr/"status":\s*"200"/, 'the packaged module signs calls');
$r = $t->get('/status?format=prometheus');
my ($p, @err) = QccProm::parse($r->{body});
ok(!@err, 'its status endpoint answers parseable metrics') or diag("@err");
is(QccProm::value($p, 'qcc_calls_total', family => 'radar_ext', code => 200),
   1, 'and counts the call');

$t->stop;
$t->check_error_log;

done_testing;
