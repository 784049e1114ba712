#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_callback and fuzz_journal.

Usage: t/fuzz/gen-corpus.py   (from the repository; rewrites the seeds)
The journal seeds follow the byte format in src/qcc_journal.h.
"""

import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

KEY = "AppKey123"
URL_ENC = ("http%3A%2F%2Fpro-files.qichacha.com%2FDdMonitor%2Fx.zip"
           "%3FExpires%3D1%26OSSAccessKeyId%3Da%26Signature%3Db")
DOC = ("key=" + KEY + "&orderNo=DDMON2021031616145803273367&downloadUrl="
       + URL_ENC + "&downloadUrlExpiredTime=2021-03-16%2020%3A19%3A00"
       "&unzipPassword=Zx9%21pw")

CALLBACK = {
    "doc": DOC,
    "form": DOC.replace("%20", "+") + "&extra=1",
    "reordered": ("unzipPassword=p&downloadUrlExpiredTime=2020-02-29+00:00:00"
                  "&downloadUrl=https://pro-files.qichacha.com:443/a?b=%252F"
                  "&orderNo=A_b-1&KEY=" + KEY),
    "ipv6": DOC.replace(URL_ENC, "https%3A%2F%2F%5B%3A%3A1%5D%3A8443%2Fx"),
    "mock": DOC.replace(URL_ENC, "http://mock.test:8081/x.zip"),
    "ssrf-loopback": DOC.replace(URL_ENC, "http%3A%2F%2F127.0.0.1%2F"),
    "ssrf-metadata": DOC.replace(URL_ENC, "http://169.254.169.254/"),
    "ssrf-userinfo": DOC.replace(
        URL_ENC, "http://pro-files.qichacha.com%40evil.example/"),
    "ssrf-suffix": DOC.replace(
        URL_ENC, "http://pro-files.qichacha.com.evil.example/"),
    "repeated": DOC + "&orderNo=X",
    "double-encoded": DOC.replace("DDMON", "%2541"),
    "bad-key": DOC.replace(KEY, "nope"),
    "missing": "key=" + KEY + "&orderNo=A",
    "time": "2021-03-16 20:19:00",
    "url": "http://pro-files.qichacha.com/DdMonitor/x.zip?Expires=1",
}


def record(rtype, seq, payload, version=1):
    head = b"QJ" + bytes([version, rtype]) + struct.pack("<IQ", len(payload),
                                                          seq)
    head += struct.pack("<I", zlib.crc32(payload))
    head += struct.pack("<I", zlib.crc32(head))
    return head + payload


def s8(b):
    return bytes([len(b)]) + b


def s16(b):
    return struct.pack("<H", len(b)) + b


def order(feed, order_no, url, pw, expires, received, source=0):
    return bytes([feed, source]) + s8(order_no) + s16(url) + s8(pw) \
        + struct.pack("<qq", expires, received)


def state(feed, order_no, st, attempts, next_try, updated, err):
    return bytes([feed, st]) + s8(order_no) \
        + struct.pack("<Iqq", attempts, next_try, updated) + s8(err)


def link(feed, order_no, url, pw, expires, updated):
    return bytes([feed]) + s8(order_no) + s16(url) + s8(pw) \
        + struct.pack("<qq", expires, updated)


URL = b"http://pro-files.qichacha.com/DdMonitor/x.zip?Expires=1&Signature=b"
ON = b"DDMON2021031616145803273367"

R1 = record(1, 1, order(0, ON, URL, b"secret pw", 1615897140, 1615882000))
R2 = record(2, 2, state(0, ON, 1, 1, 0, 1615883000, b""))
R3 = record(3, 3, link(0, ON, URL + b"2", b"pw2", 1700000000, 1615884000))
R4 = record(2, 4, state(0, ON, 4, 5, 1615890000, 1615885000,
                        b"HTTP 403 from pro-files.qichacha.com"))
R5 = record(1, 5, order(1, b"JKDAY-1", URL, b"p", 0, 0, 1))
R6 = record(2, 6, state(1, b"JKDAY-1", 3, 1, 0, 1, b""))

JOURNAL = {
    "one-order": R1,
    "life": R1 + R2 + R3 + R4,
    "two-feeds": R1 + R5 + R6 + R2,
    "torn": R1 + R2 + R3[:40],
    "torn-header": R1 + R3[:10],
    "flipped": R1 + R2[:30] + bytes([R2[30] ^ 1]) + R2[31:] + R3,
    "zeros-tail": R1 + bytes(64),
    # room zeroed ahead of the appends, and an append torn into it
    "room": R1 + R2 + bytes(300),
    "torn-room": R1 + R2 + R3[:40] + bytes(300),
    "version-2": R1 + record(2, 2, state(0, ON, 1, 1, 0, 1, b""), 2),
    "repeated-order": R1 + R1 + R2,
    "orphan-state": R2 + R1,
    # fuzz_journal's second mode: type, feed, source, state, seq, ...
    "fields-order": bytes([1, 0, 0, 0]) + struct.pack(">QIqqqq", 7, 0, 1, 2,
                                                      3, 4)
    + struct.pack(">H", 3) + b"A_1" + struct.pack(">H", 2) + b"pw"
    + struct.pack(">H", 0) + b"http://pro-files.qichacha.com/x",
    "fields-state": bytes([2, 1, 0, 4]) + struct.pack(">QIqqqq", 7, 3, 1, 2,
                                                      3, 4)
    + struct.pack(">H", 1) + b"B" + struct.pack(">H", 0)
    + struct.pack(">H", 5) + b'er"\\r',
}


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v.encode() if isinstance(v, str) else v)


write("callback", CALLBACK)
write("journal", JOURNAL)
