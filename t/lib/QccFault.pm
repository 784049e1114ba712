package QccFault;

# Helpers of the fault-injection tests (t/08x-*.t): a push gateway on the
# mock, deliveries counted per orderNo, waiting for a set of orders, and
# the figures each test reports for the README's Reliability table
# (appended to the file TEST_QCC_FIGURES names, one line per test:
# "name key=value ...").

use strict;
use warnings;
use Exporter 'import';
use Time::HiRes qw(sleep time);
use QccTest;
use QccPush qw(push_conf);

our @EXPORT_OK = qw(gateway deliveries wait_delivered figure rss_kb
                    trials);

# A gateway with the whole push path on the mock $m; %o: workers (2),
# log_level, and push_conf's options; conf => sub { edit the text }.
sub gateway {
    my ($m, %o) = @_;
    my $t = QccTest->new(workers => delete $o{workers} || 2,
                         log_level => delete $o{log_level} || 'info');
    my $edit = delete $o{conf};
    $t->write_file('secret', "SecretKey\n", 0600);
    $t->{vars} = { MOCK => $m->port };
    my $http = push_conf(lease => '3s', %o);
    $http = $edit->($http, $t) if $edit;
    $t->config(http => $http);
    return $t;
}

# { orderNo => deliveries the app answered 200 }
sub deliveries {
    my ($m) = @_;
    my %n;
    for (@{ $m->requests(path => '/app/push') }) {
        next unless $_->{status} == 200;
        $n{ ($m->header($_, 'X-QCC-Order-No'))[0] // '' }++;
    }
    return \%n;
}

# Waits until every order of @$orders is delivered (status endpoint);
# returns the ones that are not.
sub wait_delivered {
    my ($t, $orders, $timeout) = @_;
    my $deadline = time + $timeout;
    my %left = map { $_ => 1 } @$orders;
    while (%left && time < $deadline) {
        my $s = QccPush::status($t);
        for (@{ $s->{orders} || [] }) {
            delete $left{ $_->{orderNo} } if $_->{state} eq 'delivered';
        }
        sleep 0.3 if %left;
    }
    return sort keys %left;
}

sub figure {
    my ($name, %kv) = @_;
    my $line = join ' ', $name, map { "$_=$kv{$_}" } sort keys %kv;
    Test::More::note("figures: $line");
    my $f = $ENV{TEST_QCC_FIGURES} or return;
    open my $fh, '>>', $f or return;
    print $fh "$line\n";
    close $fh;
}

# Resident set of a process in kB (/proc/PID/status VmRSS), or 0.
sub rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return 0;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)/;
    }
    return 0;
}

# How many trials: TEST_QCC_TRIALS, else the default given.
sub trials { $ENV{TEST_QCC_TRIALS} || $_[0] }

1;
