#!/usr/bin/perl

# gen-qcc-json.pl risk|corp SIZE [SEED]
#
# Prints a QCC-shaped push file of about SIZE bytes to stdout:
# dd_risk_corp.json (risk) or dd_corp.json (corp), with the fields of
# shared/qcc-api/SUMMARY.md and Chinese text varied enough to compress
# about as real pushes do (8-10:1), not the 50:1 of one record repeated.

use strict;
use warnings;
use utf8;

my ($kind, $size, $seed) = @ARGV;
die "usage: gen-qcc-json.pl risk|corp SIZE [SEED]\n"
    unless $kind && $kind =~ /^(risk|corp)$/ && $size && $size =~ /^\d+$/;

srand($seed // 1);
binmode STDOUT, ':utf8';

my @city = qw(北京 上海 深圳 杭州 广州 成都 武汉 南京 苏州 西安 重庆 天津 长沙
              郑州 青岛 合肥 宁波 厦门 福州 济南 沈阳 昆明 无锡 东莞);
my @word = qw(华 信 达 恒 泰 瑞 安 鑫 盛 源 科 创 智 联 通 宏 博 远 新 辰 永 金
              海 天 中 兴 云 数 德 润 鼎 丰 嘉 汇 启 明 航 益 诚 和 众 宇);
my @trade = qw(科技 贸易 实业 网络科技 信息技术 建设工程 投资管理 电子商务
               生物医药 新能源 供应链管理 文化传媒 餐饮管理 物流 环保科技);
my @form = ('有限公司', '股份有限公司', '有限责任公司', '集团有限公司');
my @sur = qw(王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 高 罗);
my @given = qw(伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂);

sub pick { $_[int(rand(@_))] }
sub person { pick(@sur) . pick(@given) . (rand() < 0.6 ? pick(@given) : '') }
sub corp {
    pick(@city) . pick(@word) . pick(@word) . (rand() < 0.3 ? pick(@word) : '')
        . pick(@trade) . pick(@form);
}
sub hex32 { join '', map { sprintf '%08x', int(rand(2**32)) } 1 .. 4 }
sub date {
    sprintf '2026-%02d-%02d %02d:%02d:%02d', 1 + int(rand(11)),
        1 + int(rand(28)), int(rand(24)), int(rand(60)), int(rand(60));
}
sub code {
    my @c = ('0' .. '9', 'A' .. 'H', 'J' .. 'N', 'P' .. 'R', 'T' .. 'Y');
    '91' . join '', map { pick(@c) } 1 .. 16;
}

my @risk = (
    sub { '被列入经营异常名录，列入原因：通过登记的住所或者经营场所无法联系' },
    sub { sprintf '新增被执行人信息，执行标的%d元，执行法院：%s市中级人民法院',
              int(rand(5e6)), pick(@city) },
    sub { sprintf '法定代表人由%s变更为%s', person(), person() },
    sub { sprintf '新增裁判文书：%s与%s买卖合同纠纷一审民事判决书', corp(), corp() },
    sub { sprintf '股权出质，出质人%s，出质股权数额%d万元', person(),
              int(rand(9000)) + 100 },
    sub { sprintf '行政处罚：未按规定公示年度报告，罚款%d元', int(rand(50)) * 1000 },
    sub { sprintf '注册资本由%d万元人民币变更为%d万元人民币',
              int(rand(5000)) + 100, int(rand(9000)) + 100 },
);

my @types = ([1, '吊销/注销'], [2, '经营异常'], [3, '年报未公示'],
             [4, '法定代表人变更'], [5, '名称变更'], [6, '地址变更'],
             [7, '注册资本变更'], [8, '经营范围变更'], [10, '严重违法'],
             [11, '失信被执行人'], [12, '股东变更'], [14, '营业期限变更']);
my @cats = ([1, '高风险'], [2, '风险'], [3, '警示']);

my (@rec, $len);
$len = 0;

while ($len < $size) {
    my $r;
    my $id = hex32();
    my $key = hex32();

    if ($kind eq 'risk') {
        $r = sprintf '{"id":"%s","corpKeyNo":"%s","corpName":"%s",'
            . '"monitorContent":"%s","monitorLevel":%d,"monitorType":%d,'
            . '"score":%d,"changeDate":"%s"}',
            $id, $key, corp(), pick(@risk)->(), 1 + int(rand(3)),
            1 + int(rand(40)), int(rand(100)), date();
    } else {
        my $t = pick(@types);
        my $c = pick(@cats);
        my $extend = sprintf '{\"before\":\"%s\",\"after\":\"%s\"}',
            person(), person();
        $r = sprintf '{"id":"%s","corpKeyNo":"%s","corpName":"%s","type":%d,'
            . '"typeName":"%s","category":%d,"categoryName":"%s",'
            . '"changeContent":"%s","changeExtend":"%s","changeDate":"%s",'
            . '"checkId":"%s","creditCode":"%s","regNo":"%d"}',
            $id, $key, corp(), $t->[0], $t->[1], $c->[0], $c->[1],
            pick(@risk)->(), $extend, date(), hex32(), code(),
            330000000000000 + int(rand(1e12));
    }

    push @rec, $r;
    $len += do { use bytes; length($r) } + 1;
}

print '{"pushDate":"2026-11-27 09:00:00","totalSize":', scalar(@rec),
    ',"result":[', join(',', @rec), "]}\n";
