#!/usr/bin/perl

# The ZIP reader through build/qcc-unzip, on archives made here by 7-Zip
# (AES-128/192/256, deflate and store, an empty file, Chinese names, a
# 5 MB entry, -si for the zip64 extra field) and by build/t/zip-write
# (zip4j's stream layout with a data descriptor, AE-1): every one reads
# back byte for byte, and libzip reads the same bytes (the differential
# check).  Then the hostile ones: each refused with one message naming
# the entry and the reason, and nothing left in the output directory.
# All of it twice if build/qcc-unzip-isal (the ISA-L inflate build) is
# there.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use File::Basename qw(dirname);
use File::Find;
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use Test::More;

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $UNZIP = "$ROOT/build/qcc-unzip";
my $LIBZIP = "$ROOT/build/t/zip-libzip";
my $WRITE = "$ROOT/build/t/zip-write";
my $GEN = "$ROOT/t/zip/gen-qcc-json.pl";
my @TOOLS = grep { -x $_ } $UNZIP, "$ROOT/build/qcc-unzip-isal";

plan(skip_all => '7z not installed (apt-get install p7zip-full)')
    unless grep { -x "$_/7z" } split /:/, $ENV{PATH};
plan(skip_all => 'not built: run make')
    unless -x $UNZIP && -x $LIBZIP && -x $WRITE;

my $dir = tempdir('qcc-unzip-XXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{TEST_QCC_KEEP});
chdir $dir or die "$dir: $!";

my $PW = 'Qcc push-pw 1';

sub run {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";

    if ($pid == 0) {
        open(STDERR, '>', 'stderr.txt') or die;
        exec(@cmd) or die "exec $cmd[0]: $!";
    }

    local $/;
    my $out = <$fh> // '';
    close $fh;
    my $rc = $? >> 8;

    open(my $e, '<', 'stderr.txt') or die;
    my $err = <$e> // '';
    close $e;

    return ($rc, $out, $err);
}

sub sh { system(@_) == 0 or die "@_ failed: $?" }

sub file_bytes {
    open(my $fh, '<:raw', $_[0]) or die "$_[0]: $!";
    local $/;
    return scalar <$fh>;
}

sub write_bytes {
    open(my $fh, '>:raw', $_[0]) or die "$_[0]: $!";
    print $fh $_[1];
    close $fh;
}

# "sha256  name" of every file under a directory, sorted
sub tree {
    my ($d) = @_;
    my @f;
    find({ no_chdir => 1, wanted => sub {
        return unless -f $_;
        my $n = substr($_, length($d) + 1);
        push @f, sha256_hex(file_bytes($_)) . "  $n";
    } }, $d);
    return join '', map { "$_\n" } sort @f;
}

# ---------------------------------------------------------------------
# inputs: QCC-shaped pushes, an empty file, Chinese names, 5 MB

# in/ has the 5 MB push, small/ the same names with a small one (7-Zip's
# deflate is slow, so only some fixtures carry 5 MB)
for my $d ('in', 'small') {
    make_path("$d/公司名单");
    sh("perl $GEN risk " . ($d eq 'in' ? 5300000 : 200000)
       . " 1 > $d/dd_risk_corp.json");
    sh("perl $GEN corp 300000 2 > $d/dd_corp.json");
    write_bytes("$d/empty.txt", '');
    sh("perl $GEN corp 20000 3 > $d/公司名单/变更记录.json");
}

my $pw_bytes = $PW;
write_bytes('pw.txt', "$pw_bytes\n");

my %want = (in => tree('in'), small => tree('small'));
my $want_risk = sha256_hex(file_bytes('in/dd_risk_corp.json'))
                . "  dd_risk_corp.json\n";

# ---------------------------------------------------------------------
# fixtures that must read

my %good;

sub seven {
    my ($zip, $d, @opt) = @_;
    sh("cd $d && 7z a -tzip @opt ../$zip dd_risk_corp.json dd_corp.json "
       . "empty.txt 公司名单 > /dev/null");
    $good{$zip} = $want{$d};
}

seven('aes256-deflate.zip', 'in', '-mem=AES256', '-mm=Deflate', "-p'$PW'");
seven('aes256-store.zip', 'in', '-mem=AES256', '-mm=Copy', "-p'$PW'");
seven('aes192-deflate.zip', 'small', '-mem=AES192', '-mm=Deflate',
      "-p'$PW'");
seven('aes128-deflate.zip', 'small', '-mem=AES128', '-mm=Deflate',
      "-p'$PW'");
seven('aes128-store.zip', 'small', '-mem=AES128', '-mm=Copy', "-p'$PW'");
seven('plain-deflate.zip', 'small', '-mm=Deflate');

# from a pipe: 0xffffffff local sizes and a zip64 extra field
sh("cat in/dd_risk_corp.json | 7z a -tzip -mem=AES256 -p'$PW' "
   . "-sidd_risk_corp.json si-zip64.zip > /dev/null");
$good{'si-zip64.zip'} = $want_risk;

# zip4j's stream API: flags 0x0809, zero local sizes, a data descriptor
for my $w (['zip4j-stream.zip', 'in', '-D', 1],
           ['dd-nosig.zip', 'small', '-D', 2],
           ['ae1-deflate.zip', 'small', '-e', 1],
           ['ae1-zip64.zip', 'small', '-e', 1, '-z', '-Z'],
           ['aes128-dd-zip64.zip', 'small', '-a', 1, '-D', 1, '-z'])
{
    my ($zip, $d, @opt) = @$w;
    sh($WRITE, @opt, '-p', $pw_bytes, $zip,
       "dd_risk_corp.json=$d/dd_risk_corp.json",
       "dd_corp.json=$d/dd_corp.json", "empty.txt=$d/empty.txt",
       "公司名单/变更记录.json=$d/公司名单/变更记录.json");
    $good{$zip} = $want{$d};
}

for my $zip (sort keys %good) {
    my $pwopt = $zip =~ /^plain/ ? [] : ['-P', 'pw.txt'];
    my ($rc, $out, $err);

    for my $tool (@TOOLS) {
        my $t = $tool =~ /isal/ ? "$zip (isal)" : $zip;

        ($rc, $out, $err) = run($tool, '-l', $zip);
        is($rc, 0, "$t: listed");
        like($out, qr/dd_risk_corp\.json/, "$t: list names the push");

        remove_tree('out');
        ($rc, $out, $err) = run($tool, @$pwopt, '-d', 'out', $zip);
        is($rc, 0, "$t: extracted") or diag($err);
        is(tree('out'), $good{$zip}, "$t: same bytes as the inputs");
    }

    # the differential check: libzip reads the same bytes
    ($rc, $out, $err) = run($LIBZIP, $zip =~ /^plain/ ? () : ('-p', $pw_bytes),
                            $zip);
    is($rc, 0, "$zip: libzip reads it") or diag($err);
    is(join('', sort split /^/, $out), $good{$zip},
       "$zip: libzip reads the same bytes");
}

# the password on the command line; stdout
{
    my ($rc, $out, $err) = run($UNZIP, '-p', $pw_bytes, '-c',
                               'si-zip64.zip');
    is($rc, 0, '-p and -c');
    ok($out eq file_bytes('in/dd_risk_corp.json'), '-c writes the bytes');
}

# ---------------------------------------------------------------------
# hostile and broken files: one message naming the entry, nothing left

sub refused {
    my ($zip, $what0, $re, %opt) = @_;
    my ($rc, $out, $err);

    for my $tool (@TOOLS) {
        my $what = $tool =~ /isal/ ? "$what0 (isal)" : $what0;

        remove_tree('out');
        mkdir 'out';

        ($rc, $out, $err) = run($tool, '-P', $opt{pw} // 'pw.txt',
                                '-d', 'out', $zip);
        isnt($rc, 0, "$what: refused");
        like($err, $re, "$what: says why") or diag($err);
        is(scalar(() = $err =~ /\n/g), 1, "$what: in one line");
        is(tree('out'), '', "$what: no file left behind");
    }

    my $what = $what0;

    if ($opt{libzip}) {
        ($rc) = run($LIBZIP, '-p', $pw_bytes, $zip);
        isnt($rc, 0, "$what: libzip refuses too");
    }
}

# the offsets of the first entry of a one-entry archive
sub first_entry {
    my ($b) = @_;
    my $cd = rindex($b, "PK\x01\x02");
    my ($csize, $usize) = unpack('V V', substr($b, $cd + 20, 8));
    my $lho = unpack('V', substr($b, $cd + 42, 4));
    my ($n, $e) = unpack('v v', substr($b, $lho + 26, 4));
    return { cd => $cd, lho => $lho, data => $lho + 30 + $n + $e,
             csize => $csize, usize => $usize, nlen => $n };
}

sub flip {
    my ($in, $out, $off) = @_;
    my $b = file_bytes($in);
    substr($b, $off, 1) = chr(ord(substr($b, $off, 1)) ^ 0x01);
    write_bytes($out, $b);
}

sh("cd small && 7z a -tzip -mem=AES256 -p'$PW' ../one.zip dd_risk_corp.json "
   . "> /dev/null");
my $one = file_bytes('one.zip');
my $e = first_entry($one);

write_bytes('badpw.txt', "wrong\n");
refused('one.zip', 'wrong password',
        qr/^qcc-unzip: one\.zip: dd_risk_corp\.json: wrong password$/,
        pw => 'badpw.txt', libzip => 0);

flip('one.zip', 'ct.zip', $e->{data} + 18 + 10000);
refused('ct.zip', 'flipped ciphertext byte',
        qr/dd_risk_corp\.json: authentication failed/, libzip => 1);

flip('one.zip', 'mac.zip', $e->{data} + $e->{csize} - 3);
refused('mac.zip', 'flipped MAC byte',
        qr/dd_risk_corp\.json: authentication failed/);

write_bytes('trunc.zip', substr($one, 0, length($one) - 30));
refused('trunc.zip', 'truncated', qr/truncated or corrupt/, libzip => 1);

write_bytes('trunc2.zip', substr($one, 0, $e->{data} + 5000));
refused('trunc2.zip', 'truncated in the data', qr/truncated or corrupt/,
        libzip => 1);

# AE-1 with a bad CRC (in both headers, which the HMAC does not cover)
sh($WRITE, '-e', 1, '-p', $pw_bytes, 'ae1.zip',
   'dd_corp.json=small/dd_corp.json');
my $a1 = file_bytes('ae1.zip');
my $f = first_entry($a1);
my $crc = unpack('V', substr($a1, $f->{cd} + 16, 4));
my $bad = $a1;
substr($bad, $f->{lho} + 14, 4) = pack('V', $crc ^ 1);
substr($bad, $f->{cd} + 16, 4) = pack('V', $crc ^ 1);
write_bytes('ae1-crc.zip', $bad);
refused('ae1-crc.zip', 'AE-1 with a bad CRC', qr/dd_corp\.json: CRC mismatch/);

# relabelled AE-2 to switch the CRC off: the CRC is still there, checked
substr($bad, $f->{lho} + 30 + $f->{nlen} + 4, 2) = pack('v', 2);
substr($bad, $f->{cd} + 46 + $f->{nlen} + 4, 2) = pack('v', 2);
write_bytes('ae1-as-ae2.zip', $bad);
refused('ae1-as-ae2.zip', 'AE-1 relabelled AE-2',
        qr/dd_corp\.json: CRC mismatch/);

# the declared size smaller than the real output
$bad = $one;
substr($bad, $e->{lho} + 22, 4) = pack('V', $e->{usize} - 1);
substr($bad, $e->{cd} + 24, 4) = pack('V', $e->{usize} - 1);
write_bytes('small.zip', $bad);
refused('small.zip', 'declared size too small', qr/dd_risk_corp\.json: too large/);

# zip-slip names, each refused before anything is written
my $n = 0;
for my $name ('../evil.txt', '/tmp/evil.txt', 'a/../../evil.txt',
              '..\\evil.txt', 'C:evil.txt', "a\x01b.txt")
{
    $n++;
    sh($WRITE, '-a', 0, "slip$n.zip", 'ok.txt=in/empty.txt',
       "$name=in/dd_corp.json");
    refused("slip$n.zip", "unsafe name $n", qr/unsafe or too long entry name/);
}
ok(!-e "$dir/evil.txt" && !-e '/tmp/evil.txt', 'nothing escaped');

# a symlink already in the output directory is not followed
remove_tree('out', 'elsewhere');
mkdir 'out';
mkdir 'elsewhere';
symlink("$dir/elsewhere", 'out/link') or die;
sh($WRITE, '-a', 0, 'link.zip', 'link/x.json=in/dd_corp.json');
my ($rc, $out, $err) = run($UNZIP, '-d', 'out', 'link.zip');
isnt($rc, 0, 'symlink in the output directory: refused');
is(tree('elsewhere'), '', 'symlink: nothing written through it');
unlink 'out/link';

# peak RSS in KB of a command, by GNU time; undef without it
sub peak_rss {
    my (@cmd) = @_;
    return undef unless -x '/usr/bin/time';
    system('/usr/bin/time', '-f', '%M', '-o', 'rss.txt', @cmd);
    my ($kb) = file_bytes('rss.txt') =~ /(\d+)\s*$/;
    return $kb;
}

SKIP: {
    my $kb = peak_rss('sh', '-c', "$UNZIP -P pw.txt -c aes256-deflate.zip "
                      . '> /dev/null');
    skip('no /usr/bin/time', 1) unless defined $kb;
    cmp_ok($kb, '<', 16 * 1024, "5 MB entry read in $kb KB of RSS");
}

# a bomb: 64 MB of zeros, refused by the ratio at open, at once
write_bytes('zeros', "\0" x (64 << 20));
sh($WRITE, '-p', $pw_bytes, 'bomb.zip', 'bomb.json=zeros');
unlink 'zeros';
my $t0 = time;
refused('bomb.zip', 'bomb', qr/bomb\.json: too large/);
ok(time - $t0 < 10, 'bomb: refused at once');

# the same bomb declaring 1 MB, within the ratio: stopped there, in
# bounded memory and time
$bad = file_bytes('bomb.zip');
my $b = first_entry($bad);
substr($bad, $b->{lho} + 22, 4) = pack('V', 1 << 20);
substr($bad, $b->{cd} + 24, 4) = pack('V', 1 << 20);
write_bytes('bomb-1m.zip', $bad);
refused('bomb-1m.zip', 'bomb declaring 1 MB', qr/bomb\.json: too large/);
SKIP: {
    my $kb = peak_rss('sh', '-c', "$UNZIP -P pw.txt -c bomb-1m.zip "
                      . '> /dev/null 2>&1');
    skip('no /usr/bin/time', 1) unless defined $kb;
    cmp_ok($kb, '<', 16 * 1024, "bomb stopped in $kb KB of RSS");
}

# overlapping entries: a second central entry over the same local record
$bad = $one;
my ($elen, $clen) = unpack('v v', substr($bad, $e->{cd} + 30, 4));
my $cdent = substr($bad, $e->{cd}, 46 + $e->{nlen} + $elen + $clen);
my $eocd = rindex($bad, "PK\x05\x06");
my ($cnt, $cdsize, $cdoff) = unpack('x10 v V V', substr($bad, $eocd, 22));
substr($bad, $eocd, 22) = pack('V v v v v V V v', 0x06054b50, 0, 0,
    $cnt + 1, $cnt + 1, $cdsize + length($cdent), $cdoff, 0);
substr($bad, $e->{cd} + length($cdent), 0) = $cdent;
write_bytes('overlap.zip', $bad);
refused('overlap.zip', 'overlapping entries', qr/overlapping/);

# ZipCrypto and a plain method wrapped in nothing we know
sh("cd small && 7z a -tzip -mem=ZipCrypto -p'$PW' ../zipcrypto.zip "
   . "dd_corp.json > /dev/null");
refused('zipcrypto.zip', 'ZipCrypto',
        qr/dd_corp\.json: unsupported encryption/);

sh("cd small && 7z a -tzip -mm=BZip2 ../bzip2.zip dd_corp.json > /dev/null");
refused('bzip2.zip', 'bzip2', qr/dd_corp\.json: unsupported compression/);

# no password for an encrypted entry; a usage error
($rc, $out, $err) = run($UNZIP, '-d', 'out', 'one.zip');
isnt($rc, 0, 'no password: refused');
like($err, qr/no password/, 'no password: says so');
($rc) = run($UNZIP);
is($rc, 2, 'usage: exit 2');

chdir '/';
done_testing();
