#!/usr/bin/perl

# `make run`, i.e. t/bin/qcc-run, started in the background on free ports:
# - the sandbox: the mock QCC and nginx start, the printed curl calls come
#   back signed (status 200 from the mock, which answers 107 to unsigned
#   calls), and a second qcc-run on the same port refuses to start;
# - the sandbox's whole push flow: the mock pushes one order of each feed
#   shortly after start, the gateway delivers both into the spool byte
#   for byte; the printed push command brings a third; the status
#   endpoint and its Prometheus metrics (strictly parsed) show them;
# - SIGTERM to the script alone, or to its whole process group, stops
#   everything it started (nginx master and workers, the mock) and frees
#   the ports;
# - with QCC_KEY and QCC_SECRET_KEY_FILE it runs conf/qcc.conf: an
#   upstream whose certificate is not trusted by the system CA bundle gets
#   no request (TLS verified), the client gets 502.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccProm;
use JSON::PP;
use HTTP::Tiny;
use POSIX qw(setpgid WNOHANG);
use Time::HiRes qw(sleep time);

my $RUN = "$QccTest::ROOT/t/bin/qcc-run";
my $MOCK = "$QccTest::ROOT/t/mock/qcc-mock";

my $t = QccTest->new;
plan(skip_all => "no mock QCC at $MOCK") unless -f $MOCK;
plan(skip_all => 'no python3')
    unless grep { -x "$_/python3" } split /:/, $ENV{PATH};

my $d = $t->dir;

# Starts qcc-run as the leader of its own process group; returns a hash
# of pid, port, mock port, prefix, output file.
sub start_run {
    my (%o) = @_;
    my %r = (port => QccTest::free_port(), dir => "$d/run-$o{n}",
             out => "$d/out-$o{n}");
    $r{dir} = $o{dir} if $o{dir};
    $r{port} = $o{port} if $o{port};
    my %env = (QCC_RUN_PORT => $r{port}, QCC_RUN_DIR => $r{dir},
               QCC_RUN_MOCK_PORT => QccTest::free_port(),
               QCC_RUN_MODULE => $QccTest::MODULE,
               QCC_RUN_SPOOL => "$r{dir}-spool",
               %{ $o{env} || {} });
    $r{mock_port} = $env{QCC_RUN_MOCK_PORT};
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgid(0, 0);
        delete @ENV{qw(QCC_KEY QCC_SECRET_KEY_FILE QCC_RUN_QCC_SERVER)};
        @ENV{keys %env} = values %env;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $r{out};
        open STDERR, '>&', \*STDOUT;
        exec $RUN or POSIX::_exit(127);
    }
    setpgid($pid, $pid);
    $r{pid} = $pid;
    return \%r;
}

sub output { $t->read_file($_[0]{out}) // '' }

# Waits for the banner (or the script's exit); true when ready.
sub wait_ready {
    my ($r, $secs) = @_;
    my $end = time + ($secs || 30);
    while (time < $end) {
        return 1 if output($r) =~ /Ctrl-C stops it/;
        return 0 if exited($r);
        sleep 0.1;
    }
    return 0;
}

sub exited {
    my ($r) = @_;
    return 1 if defined $r->{status};
    my $w = waitpid($r->{pid}, WNOHANG);
    if ($w == $r->{pid}) { $r->{status} = $?; return 1; }
    return 0;
}

sub wait_exit {
    my ($r, $secs) = @_;
    my $end = time + ($secs || 20);
    while (time < $end) {
        return 1 if exited($r);
        sleep 0.1;
    }
    return 0;
}

# Live (not zombie) processes: by PID, and in a process group.
sub live {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $l = <$fh> // '';
    return $l =~ /^\d+ \(.*\) ([^Z]) / ? 1 : 0;
}

sub group_members {
    my ($pgid) = @_;
    my @p;
    for my $st (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $st or next;
        my $l = <$fh> // next;
        my ($pid, $state, $pg) = $l =~ /^(\d+) \(.*\) (\S) \d+ (\d+) / or next;
        push @p, $pid if $pg == $pgid && $state ne 'Z';
    }
    return @p;
}

sub children_of {
    my ($ppid) = @_;
    my @p;
    for my $st (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $st or next;
        my $l = <$fh> // next;
        my ($pid, $pp) = $l =~ /^(\d+) \(.*\) \S (\d+) / or next;
        push @p, $pid if $pp == $ppid;
    }
    return @p;
}

sub listening {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
    return 0 unless $s;
    close $s;
    return 1;
}

sub pidfile {
    my $v = $t->read_file($_[0]) // return undef;
    chomp $v;
    return $v =~ /^\d+$/ ? $v : undef;
}

# Everything a run started: the nginx master, its workers, the mock.
sub started {
    my ($r) = @_;
    my $master = pidfile("$r->{dir}/nginx.pid");
    my @p = grep { defined } $master, pidfile("$r->{dir}/qcc-mock.pid");
    push @p, children_of($master) if $master;
    return @p;
}

sub stop_checks {
    my ($r, $how, $sig, $min) = @_;
    my @pids = started($r);
    ok(@pids >= ($min || 3), "$how: master, workers (and mock) seen: @pids");
    kill $sig, $r->{pid};
    ok(wait_exit($r, 30), "$how: qcc-run exits");
    # by then all it started is gone; a moment for the kernel's bookkeeping
    sleep 0.2;
    my @left = grep { live($_) } @pids;
    is("@left", '', "$how: nothing it started keeps running");
    my @group = group_members($r->{pid});
    is("@group", '', "$how: its process group is empty");
    ok(!listening($r->{port}), "$how: gateway port closed");
    ok(!listening($r->{mock_port}), "$how: mock port closed")
        if $r->{mock_port};
    kill 'KILL', @left if @left;        # not to disturb the next tests
}

sub log_checks {
    my ($r, $what) = @_;
    my $log = $t->read_file("$r->{dir}/logs/error.log") // '';
    my @bad = grep { /\[(alert|crit|emerg)\]/ } split /\n/, $log;
    ok(!@bad, "$what: error log has no alert, crit or emerg line")
        or diag(join "\n", @bad);
}

# --- the sandbox -----------------------------------------------------------

my $r = start_run(n => 1);
ok(wait_ready($r), 'sandbox: qcc-run is ready') or diag(output($r));
my $out = output($r);
my $port = $r->{port};

like($out, qr{curl 'http://127\.0\.0\.1:$port/qcc/api/radar_ext/createReport\?reportType=day'},
     'sandbox: prints the createReport call');
like($out, qr{curl -X POST .*\n?.*'http://127\.0\.0\.1:$port/qcc/api/yj/Report/CreateReport'},
     'sandbox: prints the credit-report call');
like($out, qr{Logs:\s+\Q$r->{dir}\E/logs/}, 'sandbox: says where the logs are');

my $res = $t->get('/qcc/api/radar_ext/createReport?reportType=day',
                  port => $port);
is($res->{status}, 200, 'createReport: HTTP 200');
like($res->{headers}{'content-type'} // '', qr{^application/json},
     'createReport: JSON');
like($res->{body}, qr/"status":\s*"200"/, 'createReport: status 200 (signed)');
like($res->{body}, qr/"orderNo":\s*"JKDAY-\d+"/, 'createReport: an order');

# The credit-report call as printed: POST, a Chinese keyNo, percent-encoded.
my $kn = '%E5%B0%8F%E7%B1%B3%E7%A7%91%E6%8A%80%E6%9C%89%E9%99%90%E8%B4%A3'
       . '%E4%BB%BB%E5%85%AC%E5%8F%B8';
$res = $t->http('POST', "/qcc/api/yj/Report/CreateReport?keyNo=$kn&reportFormat=1",
                port => $port);
is($res->{status}, 200, 'CreateReport: HTTP 200');
like($res->{body}, qr/"Status":\s*"200"/, 'CreateReport: Status 200 (signed)');

# The same call unsigned, straight to the mock: 107.  So the 200s above
# mean the signatures were right.
$res = $t->get('/api/radar_ext/createReport?reportType=day&key=x',
               port => $r->{mock_port});
like($res->{body}, qr/"status":\s*"107"/, 'unsigned call to the mock: 107');

# --- the sandbox's push flow -------------------------------------------------

my $spool = "$r->{dir}-spool";
like($out, qr{\Q$spool\E/dd_risk_mnr/<orderNo>\.json}, 'sandbox: says where the risk orders land');
like($out, qr{\Q$spool\E/dd_corp_monitor/<orderNo>\.json}, 'sandbox: and the corp orders');
my ($push_url, $push_body) =
    $out =~ m{curl -X POST -d '(\{[^']*\})' '(http://127\.0\.0\.1:\d+/__mock/push)'}
    ? ($2, $1) : ();
ok($push_url, 'sandbox: prints how to trigger another push');

# Both feeds' orders, delivered into the spool: the same bytes the mock
# zipped (it keeps the plaintext in files/plain/<orderNo>/).
sub spooled {
    my %f;
    for my $feed (qw(dd_risk_mnr dd_corp_monitor)) {
        $f{$feed} = [ map { m{/([^/]+)\.json$} } glob "$spool/$feed/*.json" ];
    }
    return \%f;
}
my $end = time + 30;
my $sp = spooled();
while (time < $end && (!@{ $sp->{dd_risk_mnr} } || !@{ $sp->{dd_corp_monitor} })) {
    sleep 0.2;
    $sp = spooled();
}
my %plain = (dd_risk_mnr => 'dd_risk_corp.json', dd_corp_monitor => 'dd_corp.json');
for my $feed (qw(dd_risk_mnr dd_corp_monitor)) {
    is(scalar @{ $sp->{$feed} }, 1, "sandbox: one $feed order pushed and spooled")
        or diag(output($r));
    my $no = $sp->{$feed}[0] // 'none';
    my $got = $t->read_file("$spool/$feed/$no.json");
    my $want = $t->read_file("$r->{dir}/files/plain/$no/$plain{$feed}");
    ok(defined $got && defined $want && $got eq $want,
       "sandbox: $feed order $no spooled byte for byte");
}

my $st = eval { decode_json($t->get('/qcc/status', port => $port)->{body}) } || {};
is($st->{feeds}{$_}{delivered}, 1, "sandbox: status shows the $_ order delivered")
    for qw(dd_risk_mnr dd_corp_monitor);

# Another push, as printed.
my $pr = HTTP::Tiny->new(timeout => 20)->post($push_url,
    { content => $push_body, headers => { 'Content-Type' => 'application/json' } });
ok($pr->{success}, 'sandbox: the printed push command works')
    or diag("$pr->{status} $pr->{content}");
$end = time + 20;
sleep 0.2 while time < $end && @{ spooled()->{dd_corp_monitor} } < 2;
is(scalar @{ spooled()->{dd_corp_monitor} }, 2, 'sandbox: the second corp order spooled');

my $prom = $t->get('/qcc/status?format=prometheus', port => $port);
my ($pm, @err) = QccProm::parse($prom->{body});
ok(!@err, 'sandbox: Prometheus output parses') or diag(join "\n", @err);
is(QccProm::value($pm, 'qcc_orders_delivered_total', feed => 'dd_corp_monitor'), 2,
   'sandbox: metrics count two corp deliveries');
is(QccProm::value($pm, 'qcc_delivery_seconds_count', feed => 'dd_risk_mnr'), 1,
   'sandbox: push-to-delivered histogram');
cmp_ok(QccProm::total($pm, 'qcc_calls_total', family => 'radar_ext'), '>=', 1,
       'sandbox: proxied calls counted');
like($t->read_file("$r->{dir}/logs/access.log") // '',
     qr{"GET /qcc/api/radar_ext/createReport\?reportType=day HTTP/1\.1" 200 .* qcc=200 },
     'sandbox: the access log has the business status');

# A second gateway on the same port refuses and stops nothing.
my $r2 = start_run(n => 2, port => $port);
ok(wait_exit($r2, 20), 'second qcc-run on the same port exits');
isnt($r2->{status}, 0, 'second qcc-run fails');
like(output($r2), qr/in use/, 'second qcc-run says the port is in use');
is($t->get('/qcc/api/radar_ext/createReport?reportType=week',
           port => $port)->{status}, 200, 'the first one still answers');

# SIGTERM to the script only: it stops what it started, by PID.
stop_checks($r, 'TERM to qcc-run', 'TERM');
is($r->{status} >> 8, 143, 'TERM to qcc-run: exit status 143');
like(output($r), qr/stopping/, 'TERM to qcc-run: says it stops');
log_checks($r, 'sandbox');

# SIGTERM to the process group, as the brief's Ctrl-C does with SIGINT.
$r = start_run(n => 3);
ok(wait_ready($r), 'sandbox again: ready') or diag(output($r));
is($t->get('/qcc/api/radar_ext/createReport?reportType=month',
           port => $r->{port})->{status}, 200, 'sandbox again: answers');
stop_checks($r, 'TERM to the group', -15);    # kill -15 => the group

# --- real mode: conf/qcc.conf, TLS verified -----------------------------

SKIP: {
    my $ossl = `openssl version 2>&1`;
    skip 'no openssl', 9 unless $? == 0;

    # An upstream with a self-signed certificate for pro.qcc.com.
    system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
           . "/CN=pro.qcc.com -addext subjectAltName=DNS:pro.qcc.com "
           . "-keyout $d/fake.key -out $d/fake.crt >/dev/null 2>&1") == 0
        or skip 'openssl req failed', 9;
    my $u = QccTest->new(vars => { CRT => "$d/fake.crt",
                                   KEY => "$d/fake.key" });
    $u->config(http => <<'EOC')->run or skip 'TLS upstream did not start', 9;
server { listen 127.0.0.1:%%PORT%% ssl;
  ssl_certificate %%CRT%%; ssl_certificate_key %%KEY%%;
  location / { return 200 '{"status":"200","msg":"impostor"}'; } }
EOC

    my $secret = $t->write_file('real-secret', "SecretKey\n", 0600);
    $r = start_run(n => 4, env => {
        QCC_KEY => 'AppKey', QCC_SECRET_KEY_FILE => $secret,
        QCC_RUN_QCC_SERVER => '127.0.0.1:' . $u->port });
    delete $r->{mock_port};
    ok(wait_ready($r), 'real: qcc-run is ready') or diag(output($r));
    like(output($r), qr/real account AppKey/, 'real: says it signs for QCC');
    unlike(output($r), qr/SecretKey/, 'real: does not print the secret');
    like(output($r), qr{reconciler .*\n.*\Q$r->{dir}\E-spool/<feed>/},
         'real: says where reconciled orders land');
    like($t->read_file("$r->{dir}/nginx.conf") // '',
         qr{^\s*qcc_spool \Q$r->{dir}\E-spool;$}m,
         'real: qcc.conf spools into QCC_RUN_SPOOL');

    my $res = $t->get('/qcc/api/dd_risk_mnr/listDdRiskLatestOrderNo',
                      port => $r->{port});
    is($res->{status}, 502, 'real: untrusted upstream certificate: 502');
    like($t->read_file("$r->{dir}/logs/error.log") // '',
         qr/upstream SSL certificate verify error/,
         'real: the certificate was checked');
    unlike($u->access_log, qr/listDdRisk/, 'real: the impostor got no request');
    is($t->get('/other', port => $r->{port})->{status}, 404,
       'real: outside /qcc/: 404');
    stop_checks($r, 'real, TERM to qcc-run', 'TERM', 2);
    $u->stop;
}

done_testing;
