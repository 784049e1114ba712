#!/usr/bin/perl

# conf/qcc.conf, the production configuration: it says what issue 2 asks
# for (the literal proxy_pass, verified upstream TLS, allow/deny plus basic
# auth, the concurrency limit of 5 on the four batch-assignment calls),
# and with its machine paths rewritten into a temporary prefix it passes
# `nginx -t` with the built module.  Then it runs, in front of the mock
# QCC over TLS (its throw-away CA instead of the system bundle): basic auth
# refuses without the password, a signed call reaches "pro.qcc.com" with
# the key argument and without the app's Authorization or Cookie, five
# batch-assignment calls run at once and a sixth and seventh get 429 (once
# qcc_batch_limit's wait of 2 s runs out) while other calls pass, and an
# address outside the allow list gets 403.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep);

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
    [ 'batch zone', qr/^\s*qcc_batch_zone zone=\w+:\S+;$/m ],
    [ 'limit of 5',
      qr/^\s*qcc_batch_limit zone=\w+ concurrency=5(?: \S+)*;$/m ],
    [ 'edge checks', qr/^\s*qcc_guard on;$/m ],
    [ 'files route', qr/^\s*location \/qcc\/files\/ \{$/m ],
);

for my $m (@must) {
    like($live, $m->[1], "qcc.conf: $m->[0]");
}

like($orig, qr/^\s*#\s*auth_request \/\S+;$/m,
     'qcc.conf: auth_request shown as an alternative');
like($orig, qr/^\s*#\s*ssl_verify_client\s+on;$/m,
     'qcc.conf: client certificates shown as an alternative');
for my $d (qw(qcc_queue qcc_download_hosts qcc_callback qcc_fetch qcc_retry
               qcc_reconcile qcc_spool qcc_deliver qcc_status)) {
    like($live, qr/^\s*$d\b/m, "qcc.conf: the push receiver uses $d");
}
like($live, qr/proxy_store \$qcc_download_file;/,
     'qcc.conf: downloads land through proxy_store');

# The batch limit counts in the zone of qcc_batch_zone; which calls it
# counts, and per account, is the module's business (t/041-batch.t).
my ($zone) = $live =~ /qcc_batch_zone zone=(\w+):/;
like($live, qr/^\s*qcc_batch_limit zone=\Q$zone\E /m,
     'qcc_batch_limit uses the zone');

# --- nginx -t with the paths rewritten -------------------------------------

my $HTPASSWD = "app1:\$apr1\$QccTest1\$Ile1kEaMgkimrR6F6vsuW1\n";  # app1-password

# conf/qcc.conf for the prefix of QccTest instance $i: every machine path
# moved into the prefix; %o: upstream => ADDR:PORT (default 127.0.0.1:1,
# nginx -t does not connect), ca => CA file, edit => more rewrites.
# Checks that each rewrite applied when $check.
sub prefixed {
    my ($i, $check, %o) = @_;
    my ($d, $port) = ($i->dir, $i->port);
    $i->write_file('qcc-secret-key', "SecretKey\n", 0600);
    $i->write_file('qcc.htpasswd', $HTPASSWD, 0644);
    my $up = $o{upstream} // '127.0.0.1:1';
    my $cbport = QccTest::free_port();
    # The push receiver's state (journal, downloads, spool).
    mkdir "$d/$_" for qw(qcc qcc/tmp qcc/spool);
    my $MOD = $QccTest::MODULE;
    my @subst = (
        # [ what, substitution on $_ returning the count ]
        [ 'module', sub { s{^load_module \S+;$}{load_module $MOD;}mg } ],
        [ 'secret file',
          sub { s{/etc/nginx/qcc-secret-key\b}{$d/qcc-secret-key}g } ],
        [ 'password file',
          sub { s{/etc/nginx/qcc\.htpasswd\b}{$d/qcc.htpasswd}g } ],
        [ 'pid', sub { s{^pid /run/nginx\.pid;$}{pid $d/nginx.pid;}mg } ],
        [ 'logs', sub { s{/var/log/nginx/}{$d/}g } ],
        [ 'push state', sub { s{/var/lib/nginx/qcc/}{$d/qcc/}g } ],
        [ 'driver socket', sub { s{/run/nginx-qcc\.sock}{$d/qcc.sock}g } ],
        [ 'listen',
          sub { s{^(\s*)listen 8080;$}{${1}listen 127.0.0.1:$port;}mg } ],
        [ 'callback listen',
          sub { s{^(\s*)listen 8443;$}{${1}listen 127.0.0.1:$cbport;}mg } ],
        # No DNS in tests: the upstream server by address (the upstream's
        # name stays pro.qcc.com for Host and TLS).
        [ 'upstream server',
          sub { s{^(\s*)server pro\.qcc\.com:443;$}{${1}server $up;}mg } ],
        @{ $o{edit} || [] },
    );
    my $conf = $orig;
    for my $s (@subst) {
        my $n;
        $n = $s->[1]->() for $conf;
        ok($n, "substituted: $s->[0]") if $check;
    }
    if ($o{ca}) {
        $conf =~ s{^(\s*proxy_ssl_trusted_certificate )\Q$CA\E;$}{$1$o{ca};}mg
            or fail('no proxy_ssl_trusted_certificate');
    }
    # Temporary files in the prefix, not in /var/lib/nginx.
    my $temp = join '', map { "    ${_}_temp_path $d/${_}_temp;\n" }
                   qw(client_body proxy fastcgi uwsgi scgi);
    $conf =~ s/^http \{\n/http {\n$temp/m
        or fail('no http block');
    $i->write_file('nginx.conf', $conf);
    return $conf;
}

my $d = $t->dir;
my $conf = prefixed($t, 1);

(my $live_copy = $conf) =~ s/^\s*#.*\n//mg;
my @outside = grep { !m{^\Q$d\E/} && $_ ne $CA }
              $live_copy =~ m{(?<![\w.:/])(/(?:etc|var|run|usr|srv|opt)/[^\s;]+)}g;
is_deeply(\@outside, [], 'no machine path left in the copy');

my ($rc, $out) = $t->test_config;
is($rc, 0, 'nginx -t passes') or diag($out);
like($out, qr/test is successful/, 'nginx -t says the test is successful');
unlike($out, qr/\[(warn|alert|crit|emerg)\]/, 'nginx -t has no warning');
$t->check_error_log('nginx -t');

# --- running it, in front of the mock QCC over TLS --------------------------
#
# The mock's certificate for pro.qcc.com is signed by a throw-away CA,
# which takes the place of the system bundle.

SKIP: {
    my $m = eval { QccMock->new(tls => 1) };
    skip "no mock QCC with TLS: $@", 1 unless $m;
    my $up = '127.0.0.1:' . $m->tls_port;

    my $g = QccTest->new;
    prefixed($g, 0, upstream => $up, ca => $m->tls_ca, edit => [
        [ 'key', sub { s{^(\s*)qcc_key \S+;$}{${1}qcc_key AppKey;}m } ] ]);
    # qcc.conf passes nginx -t, so it must also start: a failure, not a skip.
    ok($g->run, 'qcc.conf runs') or skip 'the gateway did not start', 1;

    my $auth = 'Basic ' . encode_base64('app1:app1-password', '');
    my $bad = 'Basic ' . encode_base64('app1:wrong', '');
    my $uri = '/qcc/api/radar_ext/createReport?reportType=day';

    is($g->get($uri)->{status}, 401, 'no password: 401');
    is($g->get($uri, headers => [ Authorization => $bad ])->{status}, 401,
       'wrong password: 401');

    $m->reset;
    my $res = $g->get($uri, headers => [ Authorization => $auth,
                                         Cookie => 'session=internal' ]);
    is($res->{status}, 200, 'password: 200');
    like($res->{body}, qr/"status":\s*"200"/, 'the mock QCC accepted it');
    my ($rec) = @{ $m->requests(path => '/api/radar_ext/createReport') };
    ok($rec && $rec->{sig_ok}, 'signed; TLS to pro.qcc.com verified')
        or diag(explain($rec));
    $rec ||= { headers => [], args => [] };
    is(join(',', $m->header($rec, 'Host')), 'pro.qcc.com', 'Host pro.qcc.com');
    is(join(',', map { "$_->[0]=$_->[1]" } @{ $rec->{args} }),
       'key=AppKey,reportType=day', 'key argument first, the rest kept');
    is(scalar $m->header($rec, 'Authorization'), 0,
       'the app\'s password does not travel to QCC');
    is(scalar $m->header($rec, 'Cookie'), 0, 'nor its cookies');

    is($g->get('/elsewhere', headers => [ Authorization => $auth ])->{status},
       404, 'outside /qcc/: 404');

    # The limit: at most 5 of the four batch calls at once, one counter.
    my @batch = (
        'batchAddRadarCompanyListToExistedUser?loginName=u1&keyWordList=a,b',
        'batchCancelRadarCompanyListFromExistedUser?loginName=u1&keyWordList=a',
        'batchAddRadarCompanyToExistedUserList?loginNameList=u1,u2&keyWord=a',
        'batchCancelRadarCompanyFromExistedUserList?loginNameList=u1&keyWord=a',
    );
    for (@batch) {
        (my $p = "/api/radar_ext/$_") =~ s/\?.*//;
        $m->behave(path => $p, delay_ms => 3000);
    }
    my @socks;
    for my $i (0 .. 6) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $g->port)
            or die "connect: $!";
        print $s "GET /qcc/api/radar_ext/$batch[$i % 4] HTTP/1.1\r\n"
            . "Host: localhost\r\nAuthorization: $auth\r\n"
            . "Connection: close\r\n\r\n";
        push @socks, $s;
        sleep 0.1;
    }
    # Other calls meanwhile are not limited.
    is($g->get($uri, headers => [ Authorization => $auth ])->{status}, 200,
       'createReport while 5 batch calls run: 200');
    my (%st, @busy);
    for my $s (@socks) {
        local $/;
        my $r = QccTest::parse_response(<$s> // '');
        $st{ $r->{status} || 'none' }++;
        push @busy, $r if $r->{status} == 429;
        close $s;
    }
    is($st{200} // 0, 5, 'batch calls: 5 at once pass');
    is($st{429} // 0, 2, 'batch calls: the 6th and 7th get 429')
        or diag(explain(\%st));
    like($busy[0]{body} // '', qr/^\{"status":"429","msg":"[^"]+"\}$/,
         'batch calls: the 429 answer is JSON');
    is(scalar @{ $m->requests(path => '/api/radar_ext/'
                              . ($batch[1] =~ s/\?.*//r)) }, 1,
       'batch calls: QCC saw only the admitted ones');
    $g->stop;
    $g->check_error_log('running qcc.conf');

    # Access by address: without 127.0.0.1 in the allow list, 403 even
    # with the password.
    my $g2 = QccTest->new;
    prefixed($g2, 0, upstream => $up, ca => $m->tls_ca, edit => [
        [ 'allow', sub { s{^\s*allow 127\.0\.0\.1;\n}{}m } ] ]);
    ok($g2->run, 'qcc.conf without 127.0.0.1 allowed runs')
        or skip 'the second gateway did not start', 1;
    is($g2->get($uri, headers => [ Authorization => $auth ])->{status}, 403,
       'address not allowed: 403 despite the password');
    $g2->stop;
    $m->stop;
}

done_testing;
