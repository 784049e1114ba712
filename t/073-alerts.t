#!/usr/bin/perl

# conf/prometheus-alerts.yml: valid YAML (python3's yaml), Prometheus rule
# groups whose every rule has an alert name (unique), an expression, a
# severity and a summary, and whose expressions name only metrics the
# status endpoint really exports (read from a running gateway).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use QccTest;
use QccProm;
use QccPush qw(push_conf);

my $file = "$QccTest::ROOT/conf/prometheus-alerts.yml";
ok(-f $file, 'conf/prometheus-alerts.yml exists');

my $json = `python3 -c 'import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)' $file 2>&1`;
plan(skip_all => "no python3 yaml (make deps): $json") if $json =~ /No module named/;
my $doc = eval { decode_json($json) };
ok($doc, 'valid YAML') or diag($json);

my @rules = map { @{ $_->{rules} || [] } } @{ $doc->{groups} || [] };
ok(@{ $doc->{groups} || [] } >= 1 && @rules >= 8, scalar(@rules) . ' rules in groups');
my %names;
for my $r (@rules) {
    my $n = $r->{alert} // '(none)';
    ok($n =~ /^[A-Z][A-Za-z0-9]+$/ && !$names{$n}++, "$n: a unique alert name");
    ok(defined $r->{expr} && $r->{expr} =~ /qcc_/, "$n: an expression on qcc_ metrics");
    like($r->{labels}{severity} // '', qr/^(critical|warning)$/, "$n: severity");
    ok($r->{annotations}{summary}, "$n: summary");
    is(scalar(() = ($r->{expr} =~ /\(/g)), scalar(() = ($r->{expr} =~ /\)/g)),
       "$n: balanced parentheses");
}
for my $want (qw(QccOrdersFailed QccSignatureRejected QccQuotaExhausted
                 QccDailyLimitExceeded QccClockOffset QccCallbacksRefused)) {
    ok($names{$want}, "rule $want (issue 9)");
}
my %codes = map { /status="(\d+)"/ ? ($1 => 1) : () } map { $_->{expr} } @rules;
ok($codes{$_}, "a rule on business status $_") for qw(107 112 116);

# every metric the rules use, exported by a gateway
my $t = QccTest->new;
$t->write_file('secret', "SecretKey\n", 0600);
$t->{vars} = { MOCK => QccTest::free_port() };
$t->config(http => "qcc_metrics on;\n" . push_conf())->run or BAIL_OUT('no start');
my ($p, @err) = QccProm::parse($t->get('/qcc/status?format=prometheus')->{body});
ok(!@err, 'status output parses') or diag("@err");
my %used;
for my $r (@rules) {
    $used{$_}++ for $r->{expr} =~ /\b(qcc_[a-z_]+)/g;
}
for my $metric (sort keys %used) {
    my $family = $metric;
    $family =~ s/_(bucket|sum|count)$// unless $p->{families}{$metric};
    ok($p->{families}{$family}, "$metric is exported");
}
$t->stop;
$t->check_error_log;

done_testing;
