package QccTest;

# A small nginx test harness in the spirit of nginx-tests: a temporary
# prefix, a generated configuration that loads the built module, free
# ports, requests over raw sockets, stop by PID, the error log printed when
# a test fails.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Socket qw(SOL_SOCKET SO_REUSEADDR);
use Test::More;
use Time::HiRes qw(sleep time);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $NGINX = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
our $MODULE = $ENV{TEST_QCC_MODULE} || "$ROOT/build/ngx_http_qcc_module.so";

# TEST_QCC_VALGRIND=1: nginx runs as one process (master_process off,
# daemon off) under valgrind memcheck, a child of the test; its reports go
# to TEST_QCC_VALGRIND_LOGS (default: the prefix), vg.<test>.<pid>.log,
# for t/bin/valgrind-summary (make prove-valgrind).  Waits are longer.
our $VALGRIND = $ENV{TEST_QCC_VALGRIND};
our $SLOW = $VALGRIND ? 20 : 1;

my @instances;

sub new {
    my ($class, %opt) = @_;

    plan(skip_all => "no nginx binary at $NGINX") unless -x $NGINX;
    plan(skip_all => "module not built: run make") unless -f $MODULE;

    my $dir = tempdir('qcc-test-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{TEST_QCC_KEEP});
    chmod 0755, $dir;

    my $self = bless {
        owner => $$,
        dir => $dir,
        port => free_port(),
        workers => 1,
        log_level => 'info',
        %opt,
    }, $class;

    push @instances, $self;
    return $self;
}

sub dir { $_[0]{dir} }
sub port { $_[0]{port} }

# A port nobody listens on now (nginx binds it right after).
sub free_port {
    for (1 .. 50) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Proto => 'tcp',
                                      Listen => 1, ReuseAddr => 1)
            or next;
        my $port = $s->sockport;
        close $s;
        return $port;
    }
    die "no free port";
}

sub write_file {
    my ($self, $name, $content, $mode) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    make_path(dirname($path));
    open my $fh, '>', $path or die "$path: $!";
    binmode $fh;
    print $fh $content;
    close $fh;
    chmod $mode, $path if defined $mode;
    return $path;
}

sub read_file {
    my ($self, $name) = @_;
    my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
    open my $fh, '<', $path or return undef;
    binmode $fh;
    local $/;
    my $c = <$fh>;
    close $fh;
    return $c;
}

# %%PORT%%, %%PREFIX%%, %%ROOT%% and any %%NAME%% given in vars are
# substituted in the configuration text.
sub expand {
    my ($self, $text) = @_;
    my %v = (PORT => $self->{port}, PREFIX => $self->{dir}, ROOT => $ROOT,
             %{ $self->{vars} || {} });
    $text =~ s/%%(\w+)%%/exists $v{$1} ? $v{$1} : die "no var $1"/ge;
    return $text;
}

# Sets the configuration: http => the inside of the http block,
# main => extra main-context directives.
sub config {
    my ($self, %c) = @_;
    my $d = $self->{dir};
    my $main = $c{main} || '';
    my $http = $c{http} || '';
    my $workers = $c{workers} || $self->{workers};
    # TEST_QCC_LOG_LEVEL: every server at that level (make secrets-check)
    my $level = $ENV{TEST_QCC_LOG_LEVEL} || $c{log_level}
                || $self->{log_level};
    my $user = $c{user} || 'www-data';
    my $mp = $VALGRIND ? 'off' : 'on';
    my $conf = <<"EOC";
load_module $MODULE;
user $user;
daemon $mp;
master_process $mp;
worker_processes $workers;
pid $d/nginx.pid;
error_log $d/error.log $level;
$main
events { worker_connections 1024; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/client_body_temp;
    proxy_temp_path $d/proxy_temp;
    fastcgi_temp_path $d/fastcgi_temp;
    uwsgi_temp_path $d/uwsgi_temp;
    scgi_temp_path $d/scgi_temp;
$http
}
EOC
    $self->write_file('nginx.conf', $self->expand($conf));
    return $self;
}

# nginx -t: returns (exit code, output).
sub test_config {
    my ($self) = @_;
    my $out = `$NGINX -t -p $self->{dir}/ -c $self->{dir}/nginx.conf 2>&1`;
    return ($? >> 8, $out);
}

sub run {
    my ($self) = @_;
    unlink "$self->{dir}/nginx.pid";
    return $self->run_valgrind if $VALGRIND;
    my $out = `$NGINX -p $self->{dir}/ -c $self->{dir}/nginx.conf 2>&1`;
    if ($? != 0) {
        diag("nginx failed to start:\n$out");
        return undef;
    }
    $self->wait_pid or return undef;
    $self->wait_port($self->{port}) or return undef;
    $self->{running} = 1;
    return $self;
}

sub run_valgrind {
    my ($self) = @_;
    $self->reap;
    my $logs = $ENV{TEST_QCC_VALGRIND_LOGS} || $self->{dir};
    make_path($logs);
    (my $name = $0) =~ s{.*/}{};
    $name =~ s/\.t$//;
    my @vg = ('valgrind', '--tool=memcheck', '--leak-check=full',
              '--show-leak-kinds=definite,indirect',
              '--errors-for-leak-kinds=definite', '--num-callers=40',
              '--error-limit=no', '--keep-debuginfo=yes',
              "--log-file=$logs/vg.$name.%p.log",
              "--suppressions=$ROOT/t/valgrind.supp");
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/nginx.out";
        open STDERR, '>&', \*STDOUT;
        exec { $vg[0] } @vg, $NGINX, '-p', "$self->{dir}/", '-c',
            "$self->{dir}/nginx.conf"
            or POSIX::_exit(127);
    }
    push @{ $self->{children} }, $pid;
    $self->wait_pid or return undef;
    $self->wait_port($self->{port}) or return undef;
    $self->{running} = 1;
    return $self;
}

# Children of the test (valgrind runs) that have exited are reaped; true
# when $pid is one of ours and gone, or not ours and not there.
sub reap {
    my ($self, $pid) = @_;
    my $gone;
    for my $c (@{ $self->{children} || [] }) {
        next unless waitpid($c, WNOHANG) == $c;
        $gone = 1 if defined $pid && $c == $pid;
        $c = 0;
    }
    @{ $self->{children} } = grep { $_ } @{ $self->{children} || [] };
    return 1 if $gone;
    return defined $pid ? !kill(0, $pid) : 0;
}

sub pid {
    my ($self) = @_;
    my $pid = $self->read_file('nginx.pid');
    return undef unless defined $pid;
    chomp $pid;
    # a pid file nginx is still writing
    return $pid =~ /^\d+$/ ? $pid : undef;
}

sub wait_pid {
    my ($self) = @_;
    for (1 .. 100 * $SLOW) {
        return 1 if defined $self->pid && kill(0, $self->pid);
        sleep 0.05;
    }
    diag("no pid file");
    return 0;
}

sub wait_port {
    my ($self, $port) = @_;
    for (1 .. 100 * $SLOW) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        if ($s) { close $s; return 1; }
        sleep 0.05;
    }
    diag("nothing listens on $port");
    return 0;
}

# Signals the master and waits until it is gone: QUIT, then TERM, KILL.
sub stop {
    my ($self) = @_;
    return unless $self->{running};
    my $pid = $self->pid;
    $self->{running} = 0;
    return unless $pid;
    for my $sig (qw(QUIT TERM KILL)) {
        kill $sig, $pid;
        for (1 .. 100 * $SLOW) {
            return 1 if $self->reap($pid);
            sleep 0.05;
        }
    }
    return 0;
}

sub reload {
    my ($self) = @_;
    my $pid = $self->pid;
    kill 'HUP', $pid;
    sleep 1;
}

# Workers' PIDs, children of the master.
sub worker_pids {
    my ($self) = @_;
    my $master = $self->pid or return ();
    my @pids;
    for my $st (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $st or next;
        my $l = <$fh>;
        close $fh;
        next unless $l;
        my ($pid, $comm, $ppid) = $l =~ /^(\d+) \((.*)\) \S (\d+)/ or next;
        push @pids, $pid if $ppid == $master;
    }
    return @pids;
}

# One HTTP/1.1 request over a fresh connection; returns a hash of status,
# headers (lower-case names, repeated ones joined by ", "), body, raw.
sub http {
    my ($self, $method, $uri, %o) = @_;
    my $port = $o{port} || $self->{port};
    my $body = defined $o{body} ? $o{body} : undef;
    my $req = "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\n";
    my @h = @{ $o{headers} || [] };
    while (my ($k, $v) = splice @h, 0, 2) {
        $req .= "$k: $v\r\n";
    }
    $req .= "Content-Length: " . length($body) . "\r\n"
        if defined $body && !$o{no_length};
    $req .= "\r\n";
    $req .= $body if defined $body;
    return $self->raw($req, port => $port, timeout => $o{timeout});
}

sub get { my ($self, $uri, %o) = @_; $self->http('GET', $uri, %o) }

sub raw {
    my ($self, $req, %o) = @_;
    my $port = $o{port} || $self->{port};
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5)
        or return { status => 0, error => "connect: $!" };
    binmode $s;
    print $s $req;
    my $raw = '';
    my $deadline = time + ($o{timeout} || 20);
    local $SIG{ALRM} = sub { die "timeout\n" };
    eval {
        alarm($o{timeout} || 20);
        while (1) {
            my $n = sysread($s, my $buf, 65536);
            last unless $n;
            $raw .= $buf;
        }
        alarm 0;
    };
    alarm 0;
    close $s;
    return parse_response($raw);
}

sub parse_response {
    my ($raw) = @_;
    my %r = (raw => $raw, status => 0, headers => {}, body => '');
    my $i = index($raw, "\r\n\r\n");
    return \%r if $i < 0;
    my $head = substr($raw, 0, $i);
    my $body = substr($raw, $i + 4);
    my @lines = split /\r\n/, $head;
    my $sl = shift @lines;
    ($r{status}) = $sl =~ m{^HTTP/\d\.\d (\d+)};
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $k = lc $k;
        $r{headers}{$k} = exists $r{headers}{$k} ? "$r{headers}{$k}, $v" : $v;
    }
    if (($r{headers}{'transfer-encoding'} || '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r]*\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $out .= substr($body, 0, $n);
            substr($body, 0, $n + 2) = '';
        }
        $body = $out;
    }
    $r{body} = $body;
    return \%r;
}

sub error_log { $_[0]->read_file('error.log') // '' }
sub access_log { $_[0]->read_file('access.log') // '' }

# The check every test file ends with: no alert, crit or emerg line, no
# sanitizer report, and no worker that exited on a signal.
sub check_error_log {
    my ($self, $name) = @_;
    my $log = $self->error_log;
    my @bad = grep { /\[(alert|crit|emerg)\]|AddressSanitizer|runtime error:/ }
              split /\n/, $log;
    ok(!@bad, ($name || 'error log') . ' has no alert, crit or sanitizer line')
        or diag(join "\n", @bad[0 .. ($#bad > 20 ? 20 : $#bad)]);
}

sub END_HOOK {
    local $?;
    my $failed = !Test::More->builder->is_passing;
    for my $t (@instances) {
        # a forked child of a test does not own the server
        next unless $t->{owner} == $$;
        if ($failed && -f "$t->{dir}/error.log") {
            my $log = $t->error_log;
            $log = substr($log, -6000) if length $log > 6000;
            diag("error log of $t->{dir}:\n$log");
        }
        $t->stop;
    }
}

END { END_HOOK() }

1;
