#!/usr/bin/perl

# The refusal's warn line is written in batches: the lines of the
# refusals one turn of the event loop serves go to the error log in one
# write(), at the end of the turn, or before any other line of the turn
# goes to that file, or when the batch is full.  To have many requests in
# one turn, the worker is stopped (SIGSTOP) while the requests are sent,
# then let go: one epoll_wait() hands it all of them.  The worker's
# write() calls are counted in /proc/PID/io (syscw).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use IO::Socket::INET;

plan(skip_all => 'one nginx process under valgrind') if $QccTest::VALGRIND;
plan(skip_all => 'no /proc/self/io') unless -r '/proc/self/io';

my $t = QccTest->new;

mkdir $t->dir . '/journal';
system('chown', 'www-data', $t->dir . '/journal');

$t->config(http => <<'EOC')->run;
qcc_queue zone=qcc:1m journal=%%PREFIX%%/journal/qcc.journal;

server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    access_log off;
    keepalive_requests 10000;

    location = /qcc/callback/risk { qcc_callback dd_risk_mnr; }
    location = /denied { deny all; }
}
EOC

my ($worker) = $t->worker_pids;
ok($worker, 'one worker') or BAIL_OUT('no worker');

my $cb = '/qcc/callback/risk?key=Wrong&orderNo=BATCH1'
    . '&downloadUrl=http%3A%2F%2Fpro-files.qichacha.com%2Fa.zip'
    . '&downloadUrlExpiredTime=2031-03-16%2020%3A19%3A00'
    . '&unzipPassword=s3cr3tPw';

sub writes {
    open my $fh, '<', "/proc/$worker/io" or return undef;
    local $/;
    my $io = <$fh>;
    return $io =~ /^syscw: (\d+)/m ? $1 : undef;
}

sub connections {
    my ($n) = @_;
    my @c;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $t->port)
            or die "connect: $!";
        binmode $s;
        push @c, $s;
    }
    # accepted before the worker is stopped
    select(undef, undef, undef, 0.3);
    return @c;
}

sub request {
    my ($s, $uri, $host, $close) = @_;
    $host ||= 'localhost';
    syswrite($s, "GET $uri HTTP/1.1\r\nHost: $host\r\n"
                 . ($close ? "Connection: close\r\n" : '') . "\r\n");
}

# one keep-alive response: its status
sub response {
    my ($s) = @_;
    my $buf = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    while ($buf !~ /\r\n\r\n/) {
        sysread($s, $buf, 4096, length $buf) or last;
    }
    my ($len) = $buf =~ /^Content-Length: (\d+)/mi;
    my $want = index($buf, "\r\n\r\n") + 4 + ($len || 0);
    while (length($buf) < $want) {
        sysread($s, $buf, 4096, length $buf) or last;
    }
    alarm 0;
    return $buf =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0;
}

# closes connections, and lets the worker log their closing before the
# next turn is counted
sub hang_up {
    close $_ for @_;
    select(undef, undef, undef, 0.3);
}

# runs $send with the worker stopped; returns its write() calls meanwhile
sub one_turn {
    my ($send, @c) = @_;
    my $before = writes();
    kill 'STOP', $worker;
    $send->();
    select(undef, undef, undef, 0.2);
    kill 'CONT', $worker;
    return [ map { response($_) } @c ], writes() - $before;
}

sub refusal_lines {
    return grep { /callback refused/ } split /\n/, $t->error_log;
}

# --- twenty refusals in one turn: one write() for their lines ----------------

my @c = connections(20);
my ($st, $w) = one_turn(sub { request($_, $cb) for @c }, @c);
is(scalar(grep { $_ == 403 } @$st), 20, 'twenty refusals answered 403');
ok(defined $w && $w <= 20 + 2,
   'their lines took at most two write() calls beside the 20 answers')
    or diag("write calls: $w");
is(scalar(refusal_lines()), 20, 'twenty warn lines');
# written by the module, in nginx's own form: the time, the level, the
# worker's pid and thread id (its event loop's), the connection
my $text = quotemeta('qcc: dd_risk_mnr callback refused with 403: '
    . 'key invalid, client: 127.0.0.1, server: , '
    . 'request: "GET /qcc/callback/risk", host: "localhost"');
my $time = qr{\d{4}/\d\d/\d\d \d\d:\d\d:\d\d};
my $form = qr{^$time \[warn\] $worker#$worker: \*\d+ $text$};
ok(!(grep { !/$form/ } refusal_lines()),
   'each line as ngx_log_error() writes it')
    or diag((refusal_lines())[0]);
hang_up(@c);

# --- a batch is written before any other line of the turn --------------------

for my $round (1 .. 3) {
    my ($a, $b) = connections(2);
    my ($st2) = one_turn(sub {
        request($a, $cb);
        select(undef, undef, undef, 0.05);
        request($b, '/denied');
    }, $a, $b);
    is("@$st2", '403 403', "round $round: refusal, then a deny");

    my @lines = grep { /callback refused|access forbidden/ }
                split /\n/, $t->error_log;
    like($lines[-2], qr/callback refused/, "round $round: refusal first");
    like($lines[-1], qr/access forbidden by rule/,
         "round $round: the deny's line after it");
    hang_up($a, $b);
}

# --- a full batch is written in the middle of a turn -------------------------

# lines of about 1.2 KB with a long Host: six fill the batch
my $host = 'h' x 1000;
@c = connections(60);
($st, $w) = one_turn(sub { request($_, $cb, $host) for @c }, @c);
is(scalar(grep { $_ == 403 } @$st), 60, 'sixty refusals with a long Host');
ok(defined $w && $w >= 60 + 9 && $w <= 60 + 12,
   'their 70 KB of lines went in writes of at most 8 KB')
    or diag("write calls: $w");
is(scalar(refusal_lines()), 20 + 3 + 60, 'every refusal has its line');

# --- the batch outlives the connections whose lines it holds -----------------

# each closed right after its answer, before the turn ends and the batch
# is written (under ASan, a use after free if the batch kept their logs)
hang_up(@c);
@c = connections(10);
($st) = one_turn(sub { request($_, $cb, undef, 1) for @c }, @c);
is(scalar(grep { $_ == 403 } @$st), 10, 'ten refusals that close');
is(scalar(refusal_lines()), 20 + 3 + 60 + 10, 'their lines written');

# --- every line whole, none holding the password -----------------------------

my @all = split /\n/, $t->error_log;
ok(!(grep { !m{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: } } @all),
   'every line of the error log is whole');
unlike($t->error_log, qr/s3cr3tPw/, 'no password in the error log');

hang_up(@c);
$t->stop;
$t->check_error_log;

done_testing;
