package QccMock;

# Start, drive and stop the mock QCC server (t/mock/qcc-mock) from tests.
#
#   my $m = QccMock->new(accounts => { AppKey => 'SecretKey' });
#   $m->port; $m->base_url; $m->files_dir;
#   my $res = $m->api(GET => '/api/radar_ext/createReport?reportType=day');
#   my $reqs = $m->requests(path => '/api/radar_ext/createReport');
#   $m->behave(path => '/files/DdMonitor/x.zip', fail => [500, 500]);
#   my $o = $m->order(feed => 'dd_risk_mnr', records => 3);
#   my $r = $m->push(feed => 'dd_risk_mnr', orderNo => $o->{orderNo},
#                    callback => "http://127.0.0.1:$port/qcc/callback/risk");
#   $m->stats; $m->reset; $m->stop;
#   Also: push_many, config, reports, retrieve, orders, wait_requests,
#   header, arg, token, signed_headers; tls => 1 for an HTTPS port.
#
# Core modules only.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Digest::MD5 qw(md5_hex);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our $MOCK = abs_path(dirname(abs_path(__FILE__)) . '/../mock/qcc-mock');

my $JSON = JSON::PP->new->utf8->canonical;

# new(%opt): starts the mock and waits until it listens.
#   accounts      { KEY => SECRET, ... } or [[KEY, SECRET], ...]
#                 (default { AppKey => 'SecretKey' }); the first is the
#                 default key of api() and of pushes
#   port          default 0: any free port (no race: the mock reports it)
#   dir           working directory (default: a temp dir removed at exit)
#   files_dir     default DIR/files
#   files_base, link_ttl, timespan_window, push_after, callback_risk,
#   callback_corp, report_size, report_pending_polls, record_limit:
#                 passed to the mock's options of the same name
#   tls           1: also serve HTTPS on another port (tls_port), with a
#                 certificate for 127.0.0.1, localhost, pro.qcc.com and
#                 pro-files.qichacha.com signed by a throw-away CA (tls_ca:
#                 its PEM file, for proxy_ssl_trusted_certificate); needs
#                 the openssl command
#   args          extra command-line arguments (array ref)
#   timeout       seconds to wait for readiness (default 20)
sub new {
    my ($class, %o) = @_;
    my $self = bless {}, $class;
    $self->{dir} = $o{dir} // tempdir('qcc-mock-XXXXXX', TMPDIR => 1,
                                      CLEANUP => 1);
    $self->{files_dir} = $o{files_dir} // "$self->{dir}/files";
    mkdir $self->{files_dir} unless -d $self->{files_dir};

    my $acc = $o{accounts} // { AppKey => 'SecretKey' };
    my @acc = ref $acc eq 'HASH'
        ? map { [$_, $acc->{$_}] } sort keys %$acc
        : @$acc;
    croak 'QccMock: no accounts' unless @acc;
    $self->{accounts} = { map { $_->[0] => $_->[1] } @acc };
    $self->{key} = $acc[0][0];

    my @args = ('--port', $o{port} // 0, '--files-dir', $self->{files_dir},
                '--pid-file', "$self->{dir}/mock.pid",
                '--port-file', "$self->{dir}/mock.port",
                '--log', "$self->{dir}/mock.log");
    my $n = 0;
    for my $a (@acc) {
        my $f = "$self->{dir}/secret-" . $n++;
        open my $fh, '>', $f or croak "QccMock: $f: $!";
        chmod 0600, $f;
        print $fh $a->[1], "\n";
        close $fh;
        CORE::push @args, '--account', "$a->[0]:$f";
    }
    for my $k (qw(files_base link_ttl timespan_window push_after
                  callback_risk callback_corp report_size
                  report_pending_polls record_limit)) {
        next unless defined $o{$k};
        (my $opt = $k) =~ tr/_/-/;
        CORE::push @args, "--$opt", $o{$k};
    }
    if ($o{tls}) {
        $self->_make_tls;
        CORE::push @args, '--tls-port', 0,
            '--tls-port-file', "$self->{dir}/mock.tls-port",
            '--tls-cert', "$self->{dir}/tls/server.pem",
            '--tls-key', "$self->{dir}/tls/server.key";
    }
    CORE::push @args, @{ $o{args} || [] };
    unlink "$self->{dir}/mock.port";

    my $out = "$self->{dir}/mock.out";
    my $pid = fork;
    croak "QccMock: fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        exec $MOCK, @args or POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $self->{owner} = $$;
    $self->{http} = HTTP::Tiny->new(timeout => 120, keep_alive => 0);

    my $deadline = time + ($o{timeout} // 20);
    while (1) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            croak "QccMock: the mock exited (status $?):\n"
                . _slurp($out);
        }
        if (-s "$self->{dir}/mock.port" && _slurp($out) =~ /qcc-mock ready/) {
            ($self->{port}) = _slurp("$self->{dir}/mock.port") =~ /(\d+)/;
            ($self->{tls_port}) = _slurp("$self->{dir}/mock.tls-port")
                =~ /(\d+)/ if $o{tls};
            last;
        }
        if (time > $deadline) {
            $self->stop;
            croak "QccMock: not ready in time:\n" . _slurp($out);
        }
        sleep 0.05;
    }
    return $self;
}

# A throw-away CA and a server certificate signed by it.
sub _make_tls {
    my ($self) = @_;
    my $d = "$self->{dir}/tls";
    mkdir $d;
    open my $fh, '>', "$d/ext.cnf" or croak "QccMock: $d/ext.cnf: $!";
    print $fh "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:pro.qcc.com,"
        . "DNS:pro-files.qichacha.com\n"
        . "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,"
        . "keyEncipherment\nextendedKeyUsage=serverAuth\n";
    close $fh;
    my @cmds = (
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "
        . "'/CN=qcc-mock test CA' -keyout $d/ca.key -out $d/ca.pem",
        "openssl req -newkey rsa:2048 -nodes -subj '/CN=pro.qcc.com' "
        . "-keyout $d/server.key -out $d/server.csr",
        "openssl x509 -req -in $d/server.csr -CA $d/ca.pem -CAkey $d/ca.key "
        . "-CAcreateserial -days 2 -extfile $d/ext.cnf -out $d/server.pem",
    );
    for my $c (@cmds) {
        system("$c >>$d/openssl.log 2>&1") == 0
            or croak "QccMock: openssl failed: $c\n" . _slurp("$d/openssl.log");
    }
}

sub _slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    my $s = <$fh>;
    return $s // '';
}

sub port      { $_[0]{port} }
sub tls_port  { $_[0]{tls_port} }
sub tls_ca    { "$_[0]{dir}/tls/ca.pem" }
sub tls_url   { "https://127.0.0.1:$_[0]{tls_port}" }
sub pid       { $_[0]{pid} }
sub host      { '127.0.0.1' }
sub base_url  { "http://127.0.0.1:$_[0]{port}" }
sub url       { $_[0]->base_url . $_[1] }
sub dir       { $_[0]{dir} }
sub files_dir { $_[0]{files_dir} }
sub key       { $_[0]{key} }
sub accounts  { $_[0]{accounts} }
sub log_file  { "$_[0]{dir}/mock.log" }
sub log_text  { _slurp($_[0]->log_file) }

# secret($key): the test's own copy (for computing tokens in tests).
sub secret { $_[0]{accounts}{ $_[1] // $_[0]{key} } }

# token($key, $timespan): upper-case MD5(key . timespan . secret).
sub token {
    my ($self, $key, $ts) = @_;
    $key //= $self->{key};
    my $secret = $self->{accounts}{$key} // croak "QccMock: no key $key";
    return uc md5_hex($key . $ts . $secret);
}

# signed_headers(key => K, timespan => T): { Timespan => T, Token => ... }
sub signed_headers {
    my ($self, %o) = @_;
    my $ts = $o{timespan} // time;
    $ts = int $ts;
    return { Timespan => $ts, Token => $self->token($o{key}, $ts) };
}

# api($method, $path_and_query, %opt): a request straight to the mock,
# with key=<key> appended and signed unless told otherwise.  Options:
#   key (default: first account), timespan, token (overrides),
#   nokey => 1 (do not add the key argument), unsigned => 1 (no headers),
#   headers => {...} (extra), content => body.
# Returns the HTTP::Tiny response; ->{json} holds the decoded JSON body
# when it parses.
sub api {
    my ($self, $method, $pq, %o) = @_;
    my $key = $o{key} // $self->{key};
    my $url = $self->base_url . $pq;
    unless ($o{nokey}) {
        $url .= ($pq =~ /\?/ ? '&' : '?') . 'key=' . _esc($key);
    }
    my %h;
    unless ($o{unsigned}) {
        my $ts = $o{timespan} // int time;
        $h{Timespan} = $ts;
        $h{Token} = $o{token} // eval { $self->token($key, $ts) } // 'X';
    }
    %h = (%h, %{ $o{headers} || {} });
    my $res = $self->{http}->request($method, $url, {
        headers => \%h,
        defined $o{content} ? (content => $o{content}) : () });
    $res->{json} = eval { $JSON->decode($res->{content}) };
    return $res;
}

sub _esc {
    my ($s) = @_;
    utf8::encode($s) if utf8::is_utf8($s);
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub _ctl {
    my ($self, $method, $path, $body) = @_;
    my $res = $self->{http}->request($method, $self->base_url . $path, {
        headers => { 'Content-Type' => 'application/json' },
        defined $body ? (content => $JSON->encode($body)) : () });
    my $j = eval { $JSON->decode($res->{content}) };
    croak "QccMock: $method $path: $res->{status} $res->{reason}: "
        . ($res->{content} // '')
        unless defined $j && ($res->{success}
                              || ($res->{status} == 409 && $path =~ /push/));
    return $j;
}

# requests(path => P, since => ID): arrayref of recorded requests, each
# { id, method, path, query, target, headers => [[n, v], ...], body,
#   body_len, kind (api|files|other), signature ("ok" or why not),
#   sig_ok, account, args => [[n, v], ...] (decoded), status (HTTP),
#   qcc_status, time }.
sub requests {
    my ($self, %f) = @_;
    my @q;
    CORE::push @q, 'path=' . _esc($f{path}) if defined $f{path};
    CORE::push @q, 'since=' . int($f{since}) if defined $f{since};
    return $self->_ctl(GET => '/__mock/requests'
                       . (@q ? '?' . join('&', @q) : ''));
}

# header($rec, $name): all values of a header of a recorded request.
sub header {
    my ($self, $rec, $name) = @_;
    return map { $_->[1] } grep { lc $_->[0] eq lc $name } @{ $rec->{headers} };
}

# arg($rec, $name): all (decoded) values of a query argument.
sub arg {
    my ($self, $rec, $name) = @_;
    return map { $_->[1] } grep { $_->[0] eq $name } @{ $rec->{args} };
}

# wait_requests(path => P, count => N, timeout => S): waits until at least
# N requests to P are recorded; returns them (possibly fewer on timeout).
sub wait_requests {
    my ($self, %o) = @_;
    my $deadline = time + ($o{timeout} // 10);
    my $n = $o{count} // 1;
    while (1) {
        my $r = $self->requests(path => $o{path},
                                defined $o{since} ? (since => $o{since}) : ());
        return $r if @$r >= $n || time > $deadline;
        sleep 0.1;
    }
}

# reset(keep_orders => 1): clears requests, behaviours, counters, push
# state (and orders, push settings unless keep_orders).
sub reset {
    my ($self, %o) = @_;
    return $self->_ctl(POST => '/__mock/reset', {%o});
}

# behave(path => P, ...) or behave({...}) or behave([{...}, ...]).
sub behave {
    my $self = shift;
    my $spec = @_ == 1 ? $_[0] : {@_};
    return $self->_ctl(POST => '/__mock/behave', $spec);
}

sub order { my $self = shift; $self->_ctl(POST => '/__mock/order', {@_}) }
sub push  { my $self = shift; $self->_ctl(POST => '/__mock/push', {@_}) }
sub stats { $_[0]->_ctl(GET => '/__mock/stats') }
sub orders { $_[0]->_ctl(GET => '/__mock/orders') }
sub pushes { $_[0]->_ctl(GET => '/__mock/pushes') }

# push_many(feed => F, count => N, concurrency => C, callback => URL,
#           order => {...}): { results => [...], ok => n, failed => n }
sub push_many { my $self = shift; $self->_ctl(POST => '/__mock/push_many', {@_}) }

# config(files_base => URL, link_ttl => S, timespan_window => S,
#        report_size => B, clock_offset => S): sets, returns the config.
sub config {
    my $self = shift;
    return @_ ? $self->_ctl(POST => '/__mock/config', {@_})
              : $self->_ctl(GET => '/__mock/config');
}

# reports(): { radar => { orderNo => { path, url_path, ... } },
#              yj => { OrderNo => { code, format, ... } } }
sub reports { $_[0]->_ctl(GET => '/__mock/reports') }

# retrieve($code): the bytes /api/rpt/retrieve serves for a code.
sub retrieve {
    my ($self, $code) = @_;
    my $res = $self->{http}->get($self->base_url . '/__mock/retrieve?code='
                                 . _esc($code));
    croak "QccMock: retrieve $code: $res->{status}" unless $res->{success};
    return $res->{content};
}

# stop(): TERM, then KILL after 5 s; idempotent.
sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    return unless ($self->{owner} // 0) == $$;
    kill 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        return 1 if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return 0;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop if $self->{pid} && ($self->{owner} // 0) == $$;
}

1;
