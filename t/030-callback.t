#!/usr/bin/perl

# The push callback at the edge: QCC's exact callback is acknowledged with
# QCC's JSON once journaled; every bad argument is refused with JSON and
# one warn line; duplicates queue once; the queue survives kill -9 and a
# torn journal; a full zone answers 503 and keeps what it had; 1000
# parallel pushes on two workers all land once; the password is never
# logged or shown.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use JSON::PP;
use POSIX qw(WNOHANG);

my $json = JSON::PP->new->utf8;
my $t = QccTest->new(log_level => 'debug');

my $pw = 'Pw-7xQ!s3cr3t';
my $pw_enc = 'Pw-7xQ%21s3cr3t';
my $oss = 'http%3A%2F%2Fpro-files.qichacha.com%2FDdMonitor%2FDDMON2021031616145803273367.zip'
    . '%3FExpires%3D1615897140%26OSSAccessKeyId%3DLTAI4Fx%26Signature%3DabcD%252Bef%253D';

sub cb_args {
    my (%o) = @_;
    my %a = (key => 'AppKey', orderNo => 'DDMON2021031616145803273367',
             downloadUrl => $oss,
             downloadUrlExpiredTime => '2021-03-16%2020%3A19%3A00',
             unzipPassword => $pw_enc, %o);
    return join '&', map { "$_=$a{$_}" }
        grep { defined $a{$_} }
        qw(key orderNo downloadUrl downloadUrlExpiredTime unzipPassword);
}

sub conf {
    my (%o) = @_;
    my $zone = $o{zone} || '1m';
    return <<"EOC";
qcc_queue zone=qcc:$zone journal=%%PREFIX%%/journal/qcc.journal;

server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    large_client_header_buffers 4 32k;

    location = /qcc/callback/risk { qcc_callback dd_risk_mnr;
                                    qcc_callback_max_body 64k; }
    location = /qcc/callback/corp { qcc_callback dd_corp_monitor; }
    location = /qcc/callback/denied { deny all; qcc_callback dd_risk_mnr; }
    location = /qcc/status { qcc_status; }
}
EOC
}

mkdir $t->dir . '/journal';
chmod 0755, $t->dir . '/journal';
system('chown', 'www-data', $t->dir . '/journal');

sub status {
    my $r = $t->get('/qcc/status?limit=1000');
    return eval { $json->decode($r->{body}) } || { raw => $r->{body} };
}

# --- configuration -----------------------------------------------------------

for my $c (
    [ 'callback without queue', <<'EOC', qr/"qcc_callback dd_risk_mnr" needs a "qcc_queue"/ ],
server { listen 127.0.0.1:%%PORT%%; qcc_key K;
  location /cb { qcc_callback dd_risk_mnr; } }
EOC
    [ 'callback without key', <<'EOC', qr/"qcc_callback dd_corp_monitor" needs "qcc_key" in effect/ ],
qcc_queue zone=q:64k journal=%%PREFIX%%/j;
server { listen 127.0.0.1:%%PORT%%;
  location /cb { qcc_callback dd_corp_monitor; } }
EOC
    [ 'unknown feed', <<'EOC', qr/unknown feed "dd_other"/ ],
qcc_queue zone=q:64k journal=%%PREFIX%%/j;
server { listen 127.0.0.1:%%PORT%%; qcc_key K;
  location /cb { qcc_callback dd_other; } }
EOC
    [ 'queue without journal', <<'EOC', qr/must have "journal" parameter/ ],
qcc_queue zone=q:64k;
EOC
    [ 'tiny zone', <<'EOC', qr/zone "zone=q:4k" is too small/ ],
qcc_queue zone=q:4k journal=%%PREFIX%%/j;
EOC
    [ 'bad download host', <<'EOC', qr/invalid download host "http:\/\/x"/ ],
qcc_download_hosts http://x;
EOC
) {
    my ($name, $conf, $re) = @$c;
    $t->config(http => $conf);
    my ($rc, $out) = $t->test_config;
    isnt($rc, 0, "nginx -t fails: $name");
    like($out, $re, "nginx -t message: $name");
}

$t->config(http => conf());
my ($rc, $out) = $t->test_config;
is($rc, 0, 'nginx -t passes') or diag $out;
ok(!-e $t->dir . '/journal/qcc.journal', 'nginx -t does not create the journal');

$t->run or BAIL_OUT('nginx did not start');

# --- the exact callback of the documents ------------------------------------

my $r = $t->get('/qcc/callback/risk?' . cb_args());
is($r->{status}, 200, 'documented callback: 200');
is($r->{body}, '{"status":"200","msg":"成功"}', 'documented callback: exact body');
is($r->{headers}{'content-type'}, 'application/json;charset=utf-8',
   'documented callback: content type');

my $s = status();
is($s->{feeds}{dd_risk_mnr}{queued}, 1, 'status: one risk order queued');
is($s->{orders}[0]{orderNo}, 'DDMON2021031616145803273367', 'status: orderNo');
is($s->{orders}[0]{feed}, 'dd_risk_mnr', 'status: feed');
is($s->{orders}[0]{state}, 'queued', 'status: state');
is($s->{orders}[0]{source}, 'push', 'status: source');
ok($s->{feeds}{dd_risk_mnr}{last_push}, 'status: last push time');

my $jpath = $t->dir . '/journal/qcc.journal';
my @st = stat $jpath;
is($st[2] & 0777, 0600, 'journal mode 0600');
is(scalar getpwuid($st[4]), 'www-data', 'journal owned by the worker user');

# --- repeated push ------------------------------------------------------------

$r = $t->get('/qcc/callback/risk?' . cb_args());
is($r->{status}, 200, 'repeated push: 200');
is($r->{body}, '{"status":"200","msg":"成功"}', 'repeated push: same body');
$s = status();
is($s->{feeds}{dd_risk_mnr}{queued}, 1, 'repeated push: still one order');
is($s->{feeds}{dd_risk_mnr}{callbacks}{duplicate}, 1, 'counted as duplicate');

# the same orderNo on the other feed is another order
$r = $t->get('/qcc/callback/corp?' . cb_args());
is($r->{status}, 200, 'same orderNo, other feed: 200');
is(status()->{feeds}{dd_corp_monitor}{queued}, 1, 'other feed: its own order');

# '+' as a space, as Java's URLEncoder writes it
$r = $t->get('/qcc/callback/corp?' . cb_args(orderNo => 'PLUS-1',
             downloadUrlExpiredTime => '2021-03-16+20%3A19%3A00'));
is($r->{status}, 200, "GET with '+' for the space: 200");

# a form-encoded POST
$r = $t->http(POST => '/qcc/callback/corp',
              headers => ['Content-Type' => 'application/x-www-form-urlencoded'],
              body => cb_args(orderNo => 'POST-1',
                              downloadUrlExpiredTime => '2021-03-16+20%3A19%3A00'));
is($r->{status}, 200, 'form POST: 200');

# --- refusals -------------------------------------------------------------------

my @bad = (
    # [ name, query, status, json status, msg pattern ]
    [ 'wrong key', cb_args(key => 'Wrong'), 403, '403', qr/key/ ],
    [ 'missing key', cb_args(key => undef), 403, '403', qr/key/ ],
    [ 'missing orderNo', cb_args(orderNo => undef), 400, '400', qr/orderNo/ ],
    [ 'missing downloadUrl', cb_args(downloadUrl => undef), 400, '400', qr/downloadUrl/ ],
    [ 'missing expiry', cb_args(downloadUrlExpiredTime => undef), 400, '400', qr/downloadUrlExpiredTime/ ],
    [ 'missing password', cb_args(unzipPassword => undef), 400, '400', qr/unzipPassword/ ],
    [ 'orderNo with a slash', cb_args(orderNo => 'a%2Fb'), 400, '400', qr/orderNo/ ],
    [ 'orderNo too long', cb_args(orderNo => 'A' x 65), 400, '400', qr/orderNo/ ],
    [ 'empty orderNo', cb_args(orderNo => ''), 400, '400', qr/orderNo/ ],
    [ 'loopback URL', cb_args(downloadUrl => 'http%3A%2F%2F127.0.0.1%2Fx.zip'), 400, '400', qr/downloadUrl/ ],
    [ 'metadata URL', cb_args(downloadUrl => 'http%3A%2F%2F169.254.169.254%2Flatest'), 400, '400', qr/downloadUrl/ ],
    [ 'userinfo URL', cb_args(downloadUrl => 'http%3A%2F%2Fpro-files.qichacha.com%40evil.example%2Fx.zip'), 400, '400', qr/downloadUrl/ ],
    [ 'suffix host URL', cb_args(downloadUrl => 'http%3A%2F%2Fpro-files.qichacha.com.evil.example%2Fx.zip'), 400, '400', qr/downloadUrl/ ],
    [ 'ftp URL', cb_args(downloadUrl => 'ftp%3A%2F%2Fpro-files.qichacha.com%2Fx.zip'), 400, '400', qr/downloadUrl/ ],
    [ 'relative URL', cb_args(downloadUrl => '%2Fx.zip'), 400, '400', qr/downloadUrl/ ],
    [ 'URL over 2048 bytes', cb_args(downloadUrl => 'http%3A%2F%2Fpro-files.qichacha.com%2F' . ('a' x 2100)), 400, '400', qr/downloadUrl/ ],
    [ 'bad expiry', cb_args(downloadUrlExpiredTime => '2021-02-30%2020%3A19%3A00'), 400, '400', qr/downloadUrlExpiredTime/ ],
    [ 'expiry format', cb_args(downloadUrlExpiredTime => '16%2F03%2F2021'), 400, '400', qr/downloadUrlExpiredTime/ ],
    [ 'password too long', cb_args(unzipPassword => 'p' x 129), 400, '400', qr/unzipPassword/ ],
    [ 'password control byte', cb_args(unzipPassword => 'a%0Ab'), 400, '400', qr/unzipPassword/ ],
    [ 'repeated orderNo', cb_args() . '&orderNo=X2', 400, '400', qr/orderNo/ ],
    [ 'repeated key', cb_args() . '&key=AppKey', 400, '400', qr/key/ ],
    [ 'double encoding', cb_args(orderNo => 'A%2541'), 400, '400', qr/orderNo/ ],
    [ 'bad escape', cb_args(orderNo => 'A%G1'), 400, '400', qr/orderNo|encod/ ],
);

for my $b (@bad) {
    my ($name, $q, $code, $js, $re) = @$b;
    my $res = $t->get("/qcc/callback/risk?$q");
    is($res->{status}, $code, "$name: HTTP $code");
    my $j = eval { $json->decode($res->{body}) } || {};
    is($j->{status}, $js, "$name: JSON status $js");
    like($j->{msg} // '', $re, "$name: msg names the argument");
    is($res->{headers}{'content-type'}, 'application/json;charset=utf-8',
       "$name: JSON content type");
}

$r = $t->http(PUT => '/qcc/callback/risk?' . cb_args(), body => '');
is($r->{status}, 405, 'PUT: 405');
like($r->{body}, qr/"status":"405"/, 'PUT: JSON');
is($r->{headers}{allow}, 'GET, POST', 'PUT: Allow header');

$r = $t->http(POST => '/qcc/callback/risk', body => cb_args(),
              headers => ['Content-Type' => 'text/plain']);
is($r->{status}, 415, 'POST of another type: 415');

$r = $t->http(POST => '/qcc/callback/risk', body => 'x' x 20000,
              headers => ['Content-Type' => 'application/x-www-form-urlencoded']);
is($r->{status}, 413, 'oversized POST: 413');
like($r->{body}, qr/"status":"413"/, 'oversized POST: JSON');

$r = $t->http(POST => '/qcc/callback/risk', body => cb_args() . '&pad=' . ('x' x 17000),
              headers => ['Content-Type' => 'application/x-www-form-urlencoded',
                          'X-Big' => '1']);
is($r->{status}, 413, 'POST over the parser limit: 413');

$r = $t->get('/qcc/callback/risk?' . cb_args() . '&pad=' . ('x' x 17000));
is($r->{status}, 414, 'query over 16 KiB: 414');
like($r->{body}, qr/"status":"414"/, 'query over 16 KiB: JSON');

# a Host too long for the rest of the line: the context is cut, not
# overrun
my $long_host = ('h' x 2500) . '.example';
$r = $t->raw('GET /qcc/callback/risk?' . cb_args(key => 'Wrong')
             . " HTTP/1.1\r\nHost: $long_host\r\nConnection: close\r\n\r\n");
is($r->{status}, 403, 'wrong key with a 2.5 KB Host: 403');

# nginx itself refuses a duplicate Host before the callback runs: the
# access log still gets the request line, masked (the log phase masks
# first where callbacks are served)
$r = $t->http(GET => '/qcc/callback/risk?' . cb_args(orderNo => 'DUPHOST1'),
              headers => [Host => 'other']);
is($r->{status}, 400, 'a duplicate Host: 400 from nginx');

# "deny" answers before the callback reads anything
$r = $t->get('/qcc/callback/denied?' . cb_args(orderNo => 'DENIED1'));
is($r->{status}, 403, 'a denied callback: 403 from nginx');

$s = status();
is($s->{feeds}{dd_risk_mnr}{queued}, 1, 'refusals queued nothing');
is($s->{feeds}{dd_risk_mnr}{callbacks}{refused}, scalar(@bad) + 6,
   'refusals counted');

my @warns = grep { /callback refused/ } split /\n/, $t->error_log;
is(scalar(@warns), scalar(@bad) + 6, 'one warn line per refusal');
ok(!(grep { /hhhhhhhhhh/ } @warns),
   'the long Host is left out of the line, not copied past its end');
like($t->access_log, qr/DUPHOST1.*unzipPassword=\*+/,
     'the duplicate Host request logged with the password masked');
like($t->access_log, qr/DENIED1.*unzipPassword=\*+/,
     'the denied request logged with the password masked');
ok(!(grep { !/\[warn\]/ } @warns), 'refusals logged at warn');
# the line says where and from whom, not what was sent: no argument of the
# request, masked or not
ok(!(grep { !m{, client: 127\.0\.0\.1, server: \S*, request: "(GET|POST|PUT) /qcc/callback/risk"(, host: "|$)}
            } @warns),
   'refusal lines name client, location and host');
is(scalar(grep { m{request: "GET /qcc/callback/risk"$} } @warns), 1,
   'the line of the long Host ends after the request');
ok(!(grep { /orderNo=|downloadUrl=|key=|unzipPassword=|\?/ } @warns),
   'refusal lines hold no argument of the request');

# --- Prometheus ----------------------------------------------------------------

$r = $t->get('/qcc/status?format=prometheus');
like($r->{body}, qr/^qcc_orders\{feed="dd_risk_mnr",state="queued"\} 1$/m,
     'prometheus: queued gauge');
like($r->{body}, qr/^qcc_callbacks_total\{feed="dd_risk_mnr",outcome="ok"\} 1$/m,
     'prometheus: callbacks counter');
like($r->{headers}{'content-type'}, qr{^text/plain}, 'prometheus: text');

# --- kill -9 right after a 200 ---------------------------------------------

$r = $t->get('/qcc/callback/corp?' . cb_args(orderNo => 'KILLED-1'));
is($r->{status}, 200, 'pushed before kill -9');
my @pids = ($t->pid, $t->worker_pids);
kill 'KILL', @pids;
for (1 .. 50) { last unless grep { kill 0, $_ } @pids; select undef, undef, undef, 0.1 }
$t->{running} = 0;
$t->run or BAIL_OUT('no restart');
$s = status();
my ($k) = grep { $_->{orderNo} eq 'KILLED-1' } @{ $s->{orders} };
ok($k, 'after kill -9: order still there');
is($k && $k->{state}, 'queued', 'after kill -9: queued');
is($s->{feeds}{dd_corp_monitor}{queued}, 4, 'after kill -9: all corp orders');
is($s->{feeds}{dd_risk_mnr}{queued}, 1, 'after kill -9: the risk order');

# --- a torn last record ------------------------------------------------------

# where the records of a journal end: each is a 24-byte header ("QJ", the
# payload length at byte 4) and its payload
sub records_end {
    my ($path) = @_;
    open(my $fh, '<:raw', $path) or die "$path: $!";
    local $/;
    my $d = <$fh>;
    my $off = 0;
    while ($off + 24 <= length($d) && substr($d, $off, 2) eq 'QJ') {
        $off += 24 + unpack('V', substr($d, $off + 4, 4));
    }
    return $off;
}

$r = $t->get('/qcc/callback/corp?' . cb_args(orderNo => 'TORN-1'));
is($r->{status}, 200, 'pushed the order to be torn');
$t->stop;
# the records end before the room (zeros) made ahead of the appends
my $end = records_end($jpath);
cmp_ok(-s $jpath, '>', $end, 'the journal has room after its records');
truncate $jpath, $end - 7;
$t->run or BAIL_OUT('no restart after tear');
$s = status();
ok(!(grep { $_->{orderNo} eq 'TORN-1' } @{ $s->{orders} }),
   'torn record dropped');
ok((grep { $_->{orderNo} eq 'KILLED-1' } @{ $s->{orders} }),
   'records before the torn one kept');
like($t->error_log, qr/\[warn\].*journal "[^"]+" ends with a torn record/,
     'torn record warned');

# --- secrets -----------------------------------------------------------------

# the password under other spellings of its name, refused or taken: the
# logs below show none of them
for my $c (
    [ 'key=Wrong&orderNo=SP-1&unzip%50assword=s3cr3tEnc', 403 ],
    [ cb_args(orderNo => 'SP-2', unzipPassword => undef)
      . '&UNZIPPASSWORD=s3cr3tUp%22q', 200 ],
    [ cb_args(orderNo => 'SP-3', unzipPassword => 's3cr3tA')
      . '&unzipPassword=s3cr3tB', 400 ])
{
    $r = $t->get("/qcc/callback/corp?$c->[0]");
    is($r->{status}, $c->[1], "password spelled otherwise: $c->[1]");
}

my $all = $t->get('/qcc/status?limit=1000')->{body}
    . $t->get('/qcc/status?format=prometheus')->{body};
unlike($all, qr/\Q$pw\E|Signature|OSSAccessKeyId/, 'status shows no password or URL');
$t->stop;
unlike($t->error_log, qr/\Q$pw\E|\Q$pw_enc\E|s3cr3t/, 'no password in the debug log');
unlike($t->access_log, qr/s3cr3t/, 'no password in the access log');
like($t->access_log, qr/unzipPassword=\*{15}/, 'the access log shows it masked');
$t->check_error_log;

done_testing;
