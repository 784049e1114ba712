#!/usr/bin/perl

# The shared queue under load and at its limits: 1000 distinct pushes from
# parallel clients on two workers all land once; a reload keeps the queue;
# a full zone answers 503 and keeps every earlier order.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use JSON::PP;

my $json = JSON::PP->new->utf8;

sub cb {
    my ($order) = @_;
    return '/cb?key=AppKey&orderNo=' . $order
        . '&downloadUrl=http%3A%2F%2Fpro-files.qichacha.com%2FDdMonitor%2F'
        . $order . '.zip%3FExpires%3D1%26Signature%3Dx'
        . '&downloadUrlExpiredTime=2030-01-01%2000%3A00%3A00'
        . '&unzipPassword=pw' . $order;
}

sub conf {
    my ($zone) = @_;
    return <<"EOC";
qcc_queue zone=qcc:$zone journal=%%PREFIX%%/qcc.journal;
server {
    listen 127.0.0.1:%%PORT%%;
    qcc_key AppKey;
    location = /cb { qcc_callback dd_corp_monitor; }
    location = /status { qcc_status; }
}
EOC
}

sub status {
    my ($t) = @_;
    return $json->decode($t->get('/status?limit=1000')->{body});
}

# --- 1000 parallel pushes on two workers ------------------------------------

my $t = QccTest->new(workers => 2);
$t->config(http => conf('4m'))->run or BAIL_OUT('no start');

my $clients = 10;
my $per = 100;
my @kids;
for my $c (0 .. $clients - 1) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $bad = 0;
        for my $i (0 .. $per - 1) {
            my $r = $t->get(cb(sprintf 'P%02d%04d', $c, $i));
            $bad++ unless $r->{status} == 200
                && $r->{body} eq '{"status":"200","msg":"成功"}';
        }
        # half of the orders pushed a second time
        for my $i (0 .. $per / 2 - 1) {
            my $r = $t->get(cb(sprintf 'P%02d%04d', $c, $i));
            $bad++ unless $r->{status} == 200;
        }
        exit($bad ? 1 : 0);
    }
    push @kids, $pid;
}

my $failed = 0;
for (@kids) { waitpid $_, 0; $failed++ if $? }
is($failed, 0, 'every push answered 200 with the exact body');

my $s = status($t);
is($s->{feeds}{dd_corp_monitor}{queued}, 1000, '1000 orders queued');
my %seen;
$seen{ $_->{orderNo} }++ for @{ $s->{orders} };
is(scalar(keys %seen), 1000, '1000 distinct orders listed');
ok(!(grep { $_ > 1 } values %seen), 'none twice');
is($s->{feeds}{dd_corp_monitor}{callbacks}{duplicate}, 500,
   'repeated pushes counted as duplicates');

# --- a reload keeps the queue ------------------------------------------------

$t->reload;
sleep 1;
$s = status($t);
is($s->{feeds}{dd_corp_monitor}{queued}, 1000, 'after reload: 1000 orders');

# --- and so does a restart, from the journal --------------------------------

$t->stop;
$t->run or BAIL_OUT('no restart');
$s = status($t);
is($s->{feeds}{dd_corp_monitor}{queued}, 1000, 'after restart: 1000 orders');
like($t->error_log, qr/journal: 1000 dd_corp_monitor orders queued/,
     'replay logged');
$t->stop;
$t->check_error_log('two workers');

# --- a full zone ----------------------------------------------------------------

my $f = QccTest->new;
$f->config(http => conf('32k'))->run or BAIL_OUT('no start');

my (@ok, $full);
for my $i (1 .. 500) {
    my $r = $f->get(cb("F$i"));
    if ($r->{status} == 200) {
        push @ok, "F$i";
        next;
    }
    $full = $r;
    last;
}

ok($full, 'the zone fills up') or diag('500 orders fit in 32k?');
is($full && $full->{status}, 503, 'full zone: 503');
like($full && $full->{body}, qr/^\{"status":"503","msg":"queue full/,
     'full zone: JSON');
like($f->error_log, qr/\[error\].*queue zone "qcc" is full/,
     'full zone: error line');

$s = status($f);
is($s->{feeds}{dd_corp_monitor}{queued}, scalar(@ok),
   'full zone: every earlier order kept');
is($f->get(cb($ok[0]))->{status}, 200, 'a known order still answers 200');

$f->stop;
$f->run or BAIL_OUT('no restart');
$s = status($f);
is($s->{feeds}{dd_corp_monitor}{queued}, scalar(@ok),
   'full zone: the journal replays the same orders');
$f->stop;
$f->check_error_log('full zone');

done_testing;
