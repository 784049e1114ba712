#!/usr/bin/perl

# Configuration checks of the signing directives: each misconfiguration
# fails "nginx -t" with its own message, a world-readable secret warns.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use QccTest;

my $t = QccTest->new;
my $secret = $t->write_file('secret', "SecretKey\n", 0600);
my $loose = $t->write_file('loose', "SecretKey\n", 0644);
$t->write_file('empty', "\n", 0600);

my @cases = (
    # [ name, http block, expected exit, output pattern ]
    [ 'valid signing location', <<'EOC', 0, qr/test is successful/ ],
server { listen 127.0.0.1:%%PORT%%;
  location /qcc/ { qcc_key AppKey; qcc_secret_key_file %%PREFIX%%/secret;
                   qcc_sign on; proxy_pass http://127.0.0.1:1/; } }
EOC
    [ 'inherited from http', <<'EOC', 0, qr/test is successful/ ],
qcc_key AppKey; qcc_secret_key_file %%PREFIX%%/secret;
server { listen 127.0.0.1:%%PORT%%;
  location /qcc/ { qcc_sign on; proxy_pass http://127.0.0.1:1/; } }
EOC
    [ 'sign without key', <<'EOC', 1, qr/"qcc_sign on" needs "qcc_key" in effect in \S+nginx.conf:\d+/ ],
server { listen 127.0.0.1:%%PORT%%;
  location /qcc/ { qcc_secret_key_file %%PREFIX%%/secret;
                   qcc_sign on; proxy_pass http://127.0.0.1:1/; } }
EOC
    [ 'sign without secret', <<'EOC', 1, qr/"qcc_sign on" needs "qcc_secret_key_file" or "qcc_secret_key_env" in effect in \S+nginx.conf:\d+/ ],
server { listen 127.0.0.1:%%PORT%%;
  location /qcc/ { qcc_key AppKey; qcc_sign on;
                   proxy_pass http://127.0.0.1:1/; } }
EOC
    [ 'missing secret file', <<'EOC', 1, qr/cannot open secret key file "\S+nosuch".*No such file/ ],
qcc_secret_key_file %%PREFIX%%/nosuch;
EOC
    [ 'empty secret file', <<'EOC', 1, qr/secret key file "\S+empty" is empty/ ],
qcc_secret_key_file %%PREFIX%%/empty;
EOC
    [ 'secret file is a directory', <<'EOC', 1, qr/secret key file "\S+" is not a file/ ],
qcc_secret_key_file %%PREFIX%%;
EOC
    [ 'world-readable secret warns', <<'EOC', 0, qr/\[warn\].*secret key file "\S+loose" is readable by group or others/ ],
qcc_secret_key_file %%PREFIX%%/loose;
EOC
    [ 'unset environment variable', <<'EOC', 1, qr/environment variable "QCC_TEST_UNSET_VAR" is unset or empty/ ],
qcc_secret_key_env QCC_TEST_UNSET_VAR;
EOC
    [ 'empty environment variable', <<'EOC', 1, qr/environment variable "QCC_TEST_EMPTY_VAR" is unset or empty/ ],
qcc_secret_key_env QCC_TEST_EMPTY_VAR;
EOC
    [ 'secret from the environment', <<'EOC', 0, qr/test is successful/ ],
qcc_key AppKey; qcc_secret_key_env QCC_TEST_SECRET_VAR;
server { listen 127.0.0.1:%%PORT%%;
  location /qcc/ { qcc_sign on; proxy_pass http://127.0.0.1:1/; } }
EOC
    [ 'two secrets at one level', <<'EOC', 1, qr/"qcc_secret_key_env" directive is duplicate/ ],
qcc_secret_key_file %%PREFIX%%/secret; qcc_secret_key_env QCC_TEST_SECRET_VAR;
EOC
    [ 'empty key', <<'EOC', 1, qr/"qcc_key" directive takes an empty AppKey/ ],
qcc_key "";
EOC
    [ 'bad flag', <<'EOC', 1, qr/invalid value "yes" in "qcc_sign" directive/ ],
qcc_sign yes;
EOC
);

plan tests => 2 * @cases + 1;

$ENV{QCC_TEST_EMPTY_VAR} = '';
$ENV{QCC_TEST_SECRET_VAR} = 'SecretKey';
delete $ENV{QCC_TEST_UNSET_VAR};

for my $c (@cases) {
    my ($name, $http, $rc, $re) = @$c;
    $t->config(http => $http);
    my ($got, $out) = $t->test_config;
    is($got, $rc, "$name: exit code") or diag($out);
    like($out, $re, "$name: message") or diag($out);
}

# the secret itself is never echoed by nginx -t
$t->config(http => "qcc_secret_key_file %%PREFIX%%/loose;");
my (undef, $out) = $t->test_config;
unlike($out, qr/SecretKey/, 'nginx -t output has no secret');
