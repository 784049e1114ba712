#!/usr/bin/perl

# Secret hygiene at debug level: signing calls, pushes, downloads with the
# right and a wrong unzipPassword (refreshed through the signed link call),
# refused callbacks, the status endpoint in JSON and Prometheus.  After it,
# neither the SecretKey nor any unzipPassword is in any log, any file name
# or any status output; the journal and the secret file are 0600.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use File::Find;
use QccTest;
use QccMock;
use QccFault qw(gateway wait_delivered figure);
use QccPush qw(wait_order);

my $secret = 'Sk7f3a9c1e5b2d4f60a8c7e9b1d3f5a7c9QccSecret';
my $m = QccMock->new(accounts => { AppKey => $secret });
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

my $t = gateway($m, log_level => 'debug', extra => <<'EOC');
    location /qcc/ {
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }
EOC
$t->write_file('secret', "$secret\n", 0600);
my $sport = QccTest::free_port();
$t->run or BAIL_OUT('no start');
my $cb = 'http://127.0.0.1:' . $t->port . '/qcc/callback/corp';
my @passwords;

# the driver server listens on a unix socket: signing calls go through it
sub driver_get {
    my ($uri) = @_;
    my $s = IO::Socket::UNIX->new(Peer => $t->dir . '/driver.sock') or return {};
    print $s "GET $uri HTTP/1.0\r\nHost: x\r\n\r\n";
    local $/;
    my $raw = <$s>;
    return QccTest::parse_response($raw // '');
}
use IO::Socket::UNIX;

# signing
my $r = driver_get('/qcc/api/radar_ext/createReport?reportType=day');
is($r->{status}, 200, 'a signed call');
like($r->{body}, qr/"status":\s*"200"/, 'QCC accepted the signature');

# pushes: a right password, a distinctive one, a wrong one, refused ones
my @orders;
for my $spec ({}, { password => 'UzP4ssw0rdQcc9x7Kq2mZ' },
              { wrong_password => 1 }) {
    my $o = $m->order(feed => 'dd_corp_monitor', records => 2, %$spec);
    push @passwords, $o->{password}, $o->{unzipPassword};
    my $p = $m->push(feed => 'dd_corp_monitor', orderNo => $o->{orderNo},
                     callback => $cb);
    ok($p->{ok}, "push $o->{orderNo}");
    push @orders, $o->{orderNo};
}
for my $omit ([ 'orderNo' ], [ 'downloadUrl' ], [ 'key' ]) {
    my $o = $m->order(feed => 'dd_corp_monitor', records => 1);
    push @passwords, $o->{password};
    my $p = $m->push(feed => 'dd_corp_monitor', orderNo => $o->{orderNo},
                     callback => $cb, omit => $omit, force => 1);
    ok(!$p->{ok}, "a callback without @$omit is refused");
}
# a POST callback with the password in the body
my $pw = 'PostBodyPassw0rdQcc55';
push @passwords, $pw;
$r = $t->http(POST => '/qcc/callback/corp', body => "key=AppKey&orderNo="
              . "DDMON20990101000000&unzipPassword=$pw&downloadUrl=x",
              headers => [ 'Content-Type' => 'application/x-www-form-urlencoded' ]);
is($r->{status}, 400, 'a POST callback with a bad link is refused');

# the wrong password fails after one refresh of the link (signed)
for my $i (0 .. 2) {
    my $o = wait_order($t, $orders[$i], 40);
    is($o && $o->{state}, $i == 2 ? 'failed' : 'delivered',
       "$orders[$i] " . ($i == 2 ? 'failed: wrong password' : 'delivered'));
}
ok(scalar @{ $m->requests(path => '/api/dd_corp_monitor/getDownloadUrl') },
   'the link was refreshed through the signed call');

my $json = $t->get('/qcc/status?limit=100')->{body};
my $prom = $t->get('/qcc/status?format=prometheus')->{body};
like($json, qr/"orders"/, 'status JSON');

$t->stop;

@passwords = grep { defined && length >= 8 } @passwords;
my %seen;
@passwords = grep { !$seen{$_}++ } @passwords;
ok(@passwords >= 6, scalar(@passwords) . ' passwords to look for');

my (@hits, $files);
find({ no_chdir => 1, wanted => sub {
    my $f = $File::Find::name;
    (my $rel = $f) =~ s{^\Q${\ $t->dir}\E/?}{};
    for my $s ($secret, @passwords) {
        push @hits, "file name $rel" if index($rel, $s) >= 0;
    }
    return unless -f $f;
    # the journal keeps the passwords by design, the spool holds data,
    # the secret file is the secret, temporary files are nginx's
    return if $rel =~ m{^(qcc\.journal|secret$|spool/|proxy_temp/|tmp/)};
    $files++;
    my $c = $t->read_file($f) // '';
    for my $s ($secret, @passwords) {
        push @hits, "$rel contains " . substr($s, 0, 4) . '...'
            if index($c, $s) >= 0;
    }
}}, $t->dir);
for my $s ($secret, @passwords) {
    push @hits, 'status JSON' if index($json, $s) >= 0;
    push @hits, 'status Prometheus' if index($prom, $s) >= 0;
}
is(scalar @hits, 0, "no SecretKey nor unzipPassword in $files files, "
   . 'their names or the status') or diag(join "\n", @hits);
like($t->error_log, qr/\[debug\]/, 'the log was at debug level');
like($t->error_log, qr/unzipPassword=\*+/, 'the password shows masked');

my @journal = glob($t->dir . '/qcc.journal*');
ok(@journal, 'a journal');
for (@journal, $t->dir . '/secret') {
    my $mode = (stat $_)[2] & 07777;
    is(sprintf('%04o', $mode), '0600', "$_ is 0600");
}

$t->check_error_log('secrets');
figure('secrets', files => $files, passwords => scalar @passwords,
       hits => scalar @hits);

done_testing;
