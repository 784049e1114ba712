package QccProm;

# A strict parser of the Prometheus text exposition format (0.0.4), for
# the tests of the status endpoint.
#
#   my ($m, @errors) = QccProm::parse($text);
#   $m->{families}{qcc_calls_total} = { type => 'counter', help => '...' }
#   $m->{samples} = [ { name, labels => {k => v}, value, family }, ... ]
#   QccProm::value($m, 'qcc_calls_total', family => 'yj', code => 200)
#
# What is checked: every line is a comment (# HELP / # TYPE, or another
# comment), a sample, or (nowhere but at the end) empty; names and label
# names are valid; label values are quoted with only \\, \" and \n
# escapes; values are floats, +Inf, -Inf or NaN; HELP and TYPE at most
# once per family and TYPE before its samples; every sample belongs to a
# declared family (histograms: _bucket with le, _sum, _count; summaries:
# quantile, _sum, _count) and the samples of a family are contiguous;
# no sample twice; counters are not negative; a histogram's buckets are
# cumulative and end with le="+Inf", which equals its _count.

use strict;
use warnings;

my $NAME = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LABEL = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $FLOAT = qr/[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?/;

sub parse {
    my ($text) = @_;
    my (%fam, @samples, @err, %seen, %done, $current);

    push @err, 'does not end with a newline' if length $text && $text !~ /\n\z/;
    my @lines = split /\n/, $text, -1;
    pop @lines if @lines && $lines[-1] eq '';

    my $n = 0;
    for my $l (@lines) {
        $n++;
        if ($l eq '') {
            push @err, "line $n: empty line";
            next;
        }
        if ($l =~ /^#/) {
            if ($l =~ /^# (HELP|TYPE) (\S+)(?: (.*))?$/) {
                my ($kw, $name, $rest) = ($1, $2, $3 // '');
                push @err, "line $n: bad metric name '$name'" unless $name =~ /^$NAME$/;
                if ($kw eq 'HELP') {
                    push @err, "line $n: second HELP for $name" if exists $fam{$name}{help};
                    push @err, "line $n: bad escape in HELP" if $rest =~ /\\[^\\n]/;
                    $fam{$name}{help} = $rest;
                } else {
                    push @err, "line $n: second TYPE for $name" if exists $fam{$name}{type};
                    push @err, "line $n: TYPE for $name after its samples"
                        if $seen{$name};
                    push @err, "line $n: bad type '$rest'"
                        unless $rest =~ /^(counter|gauge|histogram|summary|untyped)$/;
                    $fam{$name}{type} = $rest;
                }
                if (defined $current && $current ne $name) {
                    $done{$current} = 1;
                }
            } elsif ($l =~ /^# (HELP|TYPE)\b/) {
                push @err, "line $n: malformed $1 line";
            }
            next;
        }

        my ($name, $rest) = $l =~ /^($NAME)(.*)$/
            or do { push @err, "line $n: no metric name: $l"; next };
        my %labels;
        if ($rest =~ s/^\{//) {
            while (1) {
                last if $rest =~ s/^\}//;
                if ($rest =~ s/^($LABEL)="((?:[^"\\\n]|\\[\\"n])*)"//) {
                    my ($k, $v) = ($1, $2);
                    push @err, "line $n: label $k twice" if exists $labels{$k};
                    $v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
                    $labels{$k} = $v;
                } else {
                    push @err, "line $n: bad label syntax: $l";
                    last;
                }
                next if $rest =~ s/^,(?=[^}])//;
                $rest =~ s/^,(?=\})//;
                last if $rest =~ s/^\}//;
                push @err, "line $n: expected , or } in labels: $l";
                last;
            }
        }
        my ($value, $ts) = $rest =~ /^ (\S+)(?: (-?[0-9]+))?$/
            or do { push @err, "line $n: bad value part: $l"; next };
        unless ($value =~ /^(?:$FLOAT|[+-]Inf|NaN)$/) {
            push @err, "line $n: bad value '$value'";
            next;
        }

        # the family of the sample
        my $family;
        if ($fam{$name} && $fam{$name}{type}) {
            $family = $name;
        } elsif (my ($base, $suffix) = $name =~ /^(.*)_(bucket|sum|count)$/) {
            my $bt = $fam{$base} ? $fam{$base}{type} // '' : '';
            if ($bt eq 'histogram' || $bt eq 'summary') {
                $family = $base;
                push @err, "line $n: _bucket of a summary"
                    if $suffix eq 'bucket' && $bt eq 'summary';
            }
        }
        unless ($family) {
            push @err, "line $n: sample of an undeclared family: $name";
            next;
        }
        my $type = $fam{$family}{type};
        push @err, "line $n: $family is not contiguous" if $done{$family};
        if (defined $current && $current ne $family) {
            $done{$current} = 1;
        }
        $current = $family;
        $seen{$family} = 1;
        if ($type eq 'histogram') {
            if ($name eq $family) {
                push @err, "line $n: histogram sample without suffix";
            }
            push @err, "line $n: bucket without le"
                if $name eq "${family}_bucket" && !exists $labels{le};
            push @err, "line $n: le outside a bucket"
                if $name ne "${family}_bucket" && exists $labels{le};
        }
        if ($type eq 'counter' && $value =~ /^-/) {
            push @err, "line $n: negative counter";
        }
        my $key = $name . '{' . join(',', map { "$_=$labels{$_}" }
                                     sort keys %labels) . '}';
        push @err, "line $n: sample twice: $key" if $seen{"s:$key"}++;
        push @samples, { name => $name, labels => \%labels,
                         value => $value eq '+Inf' ? 9**9**9
                                : $value eq '-Inf' ? -9**9**9
                                : $value eq 'NaN' ? 'NaN' : $value + 0,
                         family => $family, line => $n };
    }

    for my $f (sort keys %fam) {
        push @err, "HELP without TYPE for $f" unless $fam{$f}{type};
    }

    # histograms: cumulative buckets, +Inf last and equal to _count
    my %series;
    for my $s (@samples) {
        next unless ($fam{$s->{family}}{type} // '') eq 'histogram';
        my %l = %{ $s->{labels} };
        delete $l{le};
        my $id = $s->{family} . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}';
        push @{ $series{$id} }, $s;
    }
    for my $id (sort keys %series) {
        my ($prev_le, $prev, $inf, $count, $sum) = (-9**9**9, -1);
        for my $s (@{ $series{$id} }) {
            if ($s->{name} =~ /_bucket$/) {
                my $le = $s->{labels}{le};
                my $lv = $le eq '+Inf' ? 9**9**9 : $le =~ /^$FLOAT$/ ? $le + 0 : undef;
                push @err, "$id: bad le '$le'" unless defined $lv;
                next unless defined $lv;
                push @err, "$id: le not increasing at $le" if $lv <= $prev_le;
                push @err, "$id: bucket $le below the one before"
                    if $s->{value} < $prev;
                ($prev_le, $prev) = ($lv, $s->{value});
                $inf = $s->{value} if $le eq '+Inf';
            } elsif ($s->{name} =~ /_count$/) {
                $count = $s->{value};
            } else {
                $sum = $s->{value};
            }
        }
        push @err, "$id: no +Inf bucket" unless defined $inf;
        push @err, "$id: no _count" unless defined $count;
        push @err, "$id: no _sum" unless defined $sum;
        push @err, "$id: +Inf bucket $inf != _count $count"
            if defined $inf && defined $count && $inf != $count;
    }

    return ({ families => \%fam, samples => \@samples }, @err);
}

# The value of the one sample with this name and these labels (all of
# them), or undef.
sub value {
    my ($m, $name, %labels) = @_;
    my @s = grep {
        my $s = $_;
        $s->{name} eq $name
            && keys %{ $s->{labels} } == keys %labels
            && !grep { ($s->{labels}{$_} // "\0") ne $labels{$_} } keys %labels
    } @{ $m->{samples} };
    return @s == 1 ? $s[0]{value} : undef;
}

# The sum of the samples with this name whose labels include these.
sub total {
    my ($m, $name, %labels) = @_;
    my $t = 0;
    for my $s (@{ $m->{samples} }) {
        next unless $s->{name} eq $name;
        next if grep { ($s->{labels}{$_} // "\0") ne $labels{$_} } keys %labels;
        $t += $s->{value};
    }
    return $t;
}

1;
