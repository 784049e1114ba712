#!/usr/bin/perl

# Large pushes in bounded memory: 1 record, 100,000 records and (with
# QCC_TEST_LARGE=1, as `make reliability` runs it) about 500 MB of JSON are
# delivered byte-identical, while the workers' memory stays small.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;
use QccMock;
use QccPush qw(push_conf wait_order);
use Digest::SHA;
use Time::HiRes qw(sleep time);

my $m = QccMock->new(timeout => 60);
$m->behave(path => '/app/push', status_forever => 200, body => 'ok');

my $t = QccTest->new;
$t->write_file('secret', "SecretKey\n", 0600);
$t->{vars} = { MOCK => $m->port };
# The app: an nginx location that keeps each body it gets in a file (the
# mock takes no bodies this large), its name in the access log.
my $sink = <<'EOC';
    location /sink/ {
        client_max_body_size 0;
        client_body_in_file_only on;
        client_body_temp_path %%PREFIX%%/sink;
        access_log %%PREFIX%%/sink.log sink;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_pass http://127.0.0.1:%%MOCK%%/app/push;
    }
EOC
my $conf = push_conf(lease => '60s', extra => $sink,
                     deliver_to => 'http://unix:%%PREFIX%%/driver.sock:/sink/');
$conf = "log_format sink '\$http_x_qcc_order_no \$request_body_file';\n$conf";
$t->config(http => $conf)->run or BAIL_OUT('no start');

my $cb = 'http://127.0.0.1:' . $t->port . '/qcc/callback/risk';

sub file_sha {
    my ($path) = @_;
    my $d = Digest::SHA->new(256);
    open my $fh, '<', $path or return '';
    binmode $fh;
    $d->addfile($fh);
    return $d->hexdigest;
}

# the largest resident set any worker has had
sub workers_hwm_kb {
    my $max = 0;
    for my $pid ($t->worker_pids) {
        open my $fh, '<', "/proc/$pid/status" or next;
        while (<$fh>) {
            $max = $1 if /^VmHWM:\s+(\d+)/ && $1 > $max;
        }
    }
    return $max;
}

my @cases = ([ '1 record', records => 1 ],
             [ '100,000 records', records => 100_000 ]);
push @cases, [ 'about 500 MB', min_bytes => 500_000_000 ]
    if $ENV{QCC_TEST_LARGE};

for my $c (@cases) {
    my ($name, %spec) = @$c;
    my $t0 = time;
    my $order = $m->order(feed => 'dd_risk_mnr', %spec);
    diag(sprintf "%s: %d bytes of JSON, ZIP made in %.1fs", $name,
                 $order->{json_size}, time - $t0);
    $m->push(feed => 'dd_risk_mnr', orderNo => $order->{orderNo},
             callback => $cb, timeout => 30);
    my $o = wait_order($t, $order->{orderNo}, $spec{min_bytes} ? 600 : 120);
    is($o && $o->{state}, 'delivered', "$name: delivered")
        or diag(explain($o));
    my $path = $t->dir . "/spool/dd_risk_mnr/$order->{orderNo}.json";
    is(-s $path, $order->{json_size}, "$name: spool file size");
    is(file_sha($path), $order->{json_sha256}, "$name: byte-identical");
    my ($file) = ($t->read_file('sink.log') // '')
        =~ /^\Q$order->{orderNo}\E (\S+)$/m;
    is($file && file_sha($file), $order->{json_sha256},
       "$name: the app got the same bytes");
    unlink $path, $file // () if $spec{min_bytes};
}

# the plaintext never sits whole in a worker
my $hwm = workers_hwm_kb();
diag("largest worker resident set: $hwm kB");
SKIP: {
    skip 'ASan keeps freed memory in quarantine', 1 if $ENV{QCC_SAN_PRELOAD};
    cmp_ok($hwm, '<', 96 * 1024, 'workers stay under 96 MB resident');
}

$t->stop;
$t->check_error_log;

done_testing;
