package QccPush;

# A gateway with the whole push path, against the mock QCC: the callback
# server, the driver server (download, pull, deliver locations) and the
# helpers the delivery tests share.

use strict;
use warnings;
use Exporter 'import';
use JSON::PP;
use Time::HiRes qw(sleep time);
use QccTest;
use QccMock;

our @EXPORT_OK = qw(push_conf wait_order status order_of);

my $json = JSON::PP->new->utf8;

# The http block; %o: workers, retry (qcc_retry arguments), spool => 0,
# deliver => 0, extra (text in the driver server).
sub push_conf {
    my (%o) = @_;
    my $retry = $o{retry} || 'attempts=3 delay=1s max_delay=2s';
    my $spool = exists $o{spool} && !$o{spool}
        ? '' : 'qcc_spool %%PREFIX%%/spool;';
    my $deliver = exists $o{deliver} && !$o{deliver}
        ? '' : 'qcc_deliver /deliver;';
    my $lease = $o{lease} || '30s';
    my $extra = $o{extra} || '';
    my $deliver_to = $o{deliver_to} || 'http://127.0.0.1:%%MOCK%%/app/push';
    return <<"EOC";
qcc_queue zone=qcc:4m journal=%%PREFIX%%/qcc.journal;
qcc_download_hosts 127.0.0.1:%%MOCK%%;
qcc_secret_key_file %%PREFIX%%/secret;
qcc_key AppKey;

server {
    listen 127.0.0.1:%%PORT%%;
    location = /qcc/callback/risk { qcc_callback dd_risk_mnr; }
    location = /qcc/callback/corp { qcc_callback dd_corp_monitor; }
    location = /qcc/status { qcc_status; }
}

server {
    listen unix:%%PREFIX%%/driver.sock;

    location = /driver {
        qcc_fetch unix:%%PREFIX%%/driver.sock download=/download
                  pull=/pull/ temp=%%PREFIX%%/tmp lease=$lease;
        qcc_retry $retry;
        $spool
        $deliver
    }

    location = /download {
        internal;
        proxy_pass \$qcc_download_url;
        proxy_store \$qcc_download_file;
        proxy_store_access user:rw;
    }

    location /pull/ {
        internal;
        qcc_sign on;
        proxy_pass http://127.0.0.1:%%MOCK%%/;
    }

    location = /deliver {
        internal;
        client_max_body_size 0;
        proxy_pass $deliver_to;
    }
$extra
}
EOC
}

sub status {
    my ($t) = @_;
    my $r = $t->get('/qcc/status?limit=1000');
    return eval { $json->decode($r->{body}) } || {};
}

sub order_of {
    my ($t, $order_no) = @_;
    my ($o) = grep { $_->{orderNo} eq $order_no } @{ status($t)->{orders} || [] };
    return $o;
}

# Waits until the order is delivered or failed; returns its status entry.
sub wait_order {
    my ($t, $order_no, $timeout) = @_;
    my $deadline = time + ($timeout || 20);
    my $o;
    while (time < $deadline) {
        $o = order_of($t, $order_no);
        return $o if $o && ($o->{state} eq 'delivered' || $o->{state} eq 'failed');
        sleep 0.2;
    }
    return $o;
}

1;
