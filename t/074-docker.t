#!/usr/bin/perl

# The Dockerfile, without a Docker engine:
# - two stages on debian:bookworm-slim; the build stage runs `make deps`,
#   `make` and `make deb` (targets the Makefile has, the first two being
#   what `make test` runs) and the run stage installs the package make deb
#   names; what it copies exists;
# - what the run stage relies on in conf/qcc.conf is there: the module
#   path of the package, the secret file, the state directory, the worker
#   user, the logs, the status endpoint of the health check;
# - docker/qcc-entrypoint on a copy of conf/qcc.conf: QCC_KEY and the
#   resolver filled in, a bad key refused with the file unchanged; then,
#   as the container's command, it starts nginx in the foreground and the
#   health check's request gets 200; QUIT (the STOPSIGNAL) stops it.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use QccTest;

my $ROOT = $QccTest::ROOT;
my $t = QccTest->new;
my $d = $t->dir;

my $df = $t->read_file("$ROOT/Dockerfile") // '';
ok($df, 'Dockerfile exists');
my @from = $df =~ /^FROM (\S+)/mg;
is_deeply(\@from, ['debian:bookworm-slim', 'debian:bookworm-slim'],
          'two stages on debian:bookworm-slim');
like($df, qr/^FROM debian:bookworm-slim AS build$/m, 'the first is the build');
like($df, qr/^RUN make deps && make && make deb$/m,
     'the build runs make deps, make and make deb');
for my $target (qw(deps all deb)) {
    my $out = `cd $ROOT && make -n $target 2>&1`;
    is($?, 0, "make -n $target: the Makefile has it") or diag($out);
}
like(`cd $ROOT && sed -n '/^test:/,/^\$/p' Makefile`,
     qr/^test: deps\n\t\$\(MAKE\) (?:-j\d+ )?all\b/m, 'make test runs deps and all too');
my ($pattern) = $df =~ m{(/tmp/deb/libnginx-mod-http-qcc_\*\.deb)};
ok($pattern, 'the run stage installs the package');
like(`cd $ROOT && make -s -n deb 2>&1` . `grep -h DEB_PKG $ROOT/mk/deb.mk`,
     qr{libnginx-mod-http-qcc_\$\(DEB_VERSION\)_}, 'named as make deb names it');
like($df, qr{^COPY --from=build /src/build/deb/ /tmp/deb/$}m,
     'copied from build/deb/');
for my $src ($df =~ /^COPY (?!--from)(\S+) \S+$/mg) {
    next if $src eq '.';
    ok(-e "$ROOT/$src", "COPY $src: exists");
}
like($df, qr{^HEALTHCHECK .*\n\s+CMD curl -fsS -o /dev/null http://127\.0\.0\.1:8080/qcc/status}m,
     'health check on the status endpoint');
like($df, qr{^ENTRYPOINT \["/usr/local/bin/qcc-entrypoint"\]$}m, 'entrypoint');
like($df, qr{ln -s /run/secrets/qcc-secret-key /etc/nginx/qcc-secret-key},
     'the secret is a mounted file');

my $conf = $t->read_file("$ROOT/conf/qcc.conf");
like($conf, qr{^load_module /usr/lib/nginx/modules/ngx_http_qcc_module\.so;$}m,
     'qcc.conf loads the module where the package puts it');
like($conf, qr{^user www-data;$}m, 'qcc.conf: workers run as www-data');
like($conf, qr{qcc_secret_key_file /etc/nginx/qcc-secret-key;}, 'qcc.conf: the secret file');
like($conf, qr{journal=/var/lib/nginx/qcc/}, 'qcc.conf: state in /var/lib/nginx/qcc');
like($conf, qr{/var/log/nginx/qcc-access\.log}, 'qcc.conf: the access log');
like($conf, qr{^error_log /var/log/nginx/error\.log}m, 'qcc.conf: the error log');
like($conf, qr!listen 8080;.*location = /qcc/status \{\s*allow 127\.0\.0\.1;[^}]*qcc_status;!s,
     'qcc.conf: the status endpoint on 8080, for 127.0.0.1');

# --- the entrypoint ----------------------------------------------------------

my $ep = "$ROOT/docker/qcc-entrypoint";
ok(-x $ep, 'docker/qcc-entrypoint is executable');
my $copy = $t->write_file('edit.conf', $conf);
my $rc = system("QCC_NGINX_CONF=$copy QCC_KEY=MyAppKey-1 "
                . "QCC_RESOLVER='10.0.0.2 [fd00::53]' QCC_ENTRYPOINT_EDIT_ONLY=1 $ep");
is($rc, 0, 'entrypoint edits the configuration');
my $edited = $t->read_file($copy);
like($edited, qr/^\s*qcc_key MyAppKey-1;$/m, 'QCC_KEY filled in');
like($edited, qr/^\s*resolver 10\.0\.0\.2 \[fd00::53\] valid=300s;$/m, 'resolver filled in');
like($edited, qr/^\s*resolver_timeout 5s;$/m, 'resolver_timeout untouched');
my $before = $edited;
$rc = system("QCC_NGINX_CONF=$copy QCC_KEY='x;evil' QCC_ENTRYPOINT_EDIT_ONLY=1 $ep 2>/dev/null");
isnt($rc, 0, 'a QCC_KEY with a ; is refused');
is($t->read_file($copy), $before, 'and changes nothing');

# as the container runs it: the machine paths moved into the prefix
my ($port, $cb) = ($t->port, QccTest::free_port());
$t->write_file('qcc-secret-key', "SecretKey\n", 0600);
$t->write_file('qcc.htpasswd', "app1:x\n", 0644);
mkdir "$d/qcc";
my $run = $conf;
my $MOD = $QccTest::MODULE;
for ([ qr{^load_module \S+;$}m, "load_module $MOD;" ],
     [ qr{^pid /run/nginx\.pid;$}m, "pid $d/nginx.pid;" ],
     [ qr{/etc/nginx/qcc-secret-key\b}, "$d/qcc-secret-key" ],
     [ qr{/etc/nginx/qcc\.htpasswd\b}, "$d/qcc.htpasswd" ],
     [ qr{/var/log/nginx/}, "$d/" ],
     [ qr{/var/lib/nginx/qcc/}, "$d/qcc/" ],
     [ qr{/run/nginx-qcc\.sock}, "$d/qcc.sock" ],
     [ qr{^(\s*)listen 8080;$}m, "listen 127.0.0.1:$port;" ],
     [ qr{^(\s*)listen 8443;$}m, "listen 127.0.0.1:$cb;" ],
     [ qr{^(\s*)server pro\.qcc\.com:443;$}m, "server 127.0.0.1:1;" ]) {
    my ($re, $to) = @$_;
    ok($run =~ s/$re/$to/g, "rewrite $re");
}
my $temps = join '', map { "    ${_}_temp_path $d/$_;\n" }
                     qw(client_body proxy fastcgi uwsgi scgi);
ok($run =~ s/^http \{\n/http {\n$temps/m, 'temp paths in the prefix');
my $rconf = $t->write_file('nginx.conf', $run);

my $pid = fork // die;
if ($pid == 0) {
    open STDOUT, '>', "$d/entrypoint.out";
    open STDERR, '>&', \*STDOUT;
    $ENV{QCC_NGINX_CONF} = $rconf;
    $ENV{QCC_KEY} = 'AppKey';
    $ENV{QCC_RESOLVER} = '127.0.0.1';
    exec $ep or POSIX::_exit(127);
}
my $ok = 0;
for (1 .. 100) {
    my $r = $t->get('/qcc/status');
    if ($r->{status}) { $ok = $r->{status} == 200; last; }
    last if waitpid($pid, WNOHANG) == $pid;
    sleep 0.1;
}
ok($ok, 'the container command serves the health check (200)')
    or diag($t->read_file('entrypoint.out'), $t->read_file('error.log'));
is(system("curl -fsS -o /dev/null http://127.0.0.1:$port/qcc/status"), 0,
   'the HEALTHCHECK command succeeds') if -x '/usr/bin/curl';
is(`ps -o comm= -p $pid`, "nginx\n", 'nginx runs in the foreground as the entrypoint process');
kill 'QUIT', $pid;
my $gone = 0;
for (1 .. 100) {
    if (waitpid($pid, WNOHANG) == $pid) { $gone = 1; last; }
    sleep 0.1;
}
ok($gone, 'QUIT (STOPSIGNAL) stops it');
kill 'KILL', $pid unless $gone;
$t->check_error_log;

done_testing;
