/*
 * cases.h - the RFC 6455 case table of the conformance suite
 * (tests/integration/ws_conformance_test.c), modelled on the categories of
 * the Autobahn testsuite (ids follow Autobahn's where a case has a twin):
 *
 *    1 framing        text/binary of many sizes, chopped writes
 *    2 pings/pongs    payloads 0..125, 126, binary, bursts, unsolicited pong
 *    3 reserved bits  RSV1..3 on data and control frames
 *    4 opcodes        reserved data (3-7) and control (0xB-0xF) opcodes
 *    5 fragmentation  control between fragments, CONT without start,
 *                     fragmented control, interleaved messages
 *    6 UTF-8          valid and invalid sequences, whole and split
 *    7 close          codes valid/invalid, reasons, length 1, after close
 *    9 large          64 KiB..16 MiB, fragmented in chunk sizes 64 B..4 MiB
 *   10 misc           masking, length encodings, auto-fragmentation
 *   12 compression    RSV1 without negotiation (both ways), with it
 *
 * A case is a list of steps; each step is one frame written by the client
 * (masked with a fresh key unless `unmasked`), optionally repeated, split
 * into fragments, written in small pieces, followed by a pause, or written
 * in one write with the frame before it (`together`). After the last step
 * the runner sends a close 1000 unless the case sent its own.
 *
 * `expect` is what RFC 6455 asks of a server, used only when the direct
 * and the gateway outcomes differ, to tell which side is wrong:
 *   CF_OK      the server must carry on (echo) and close normally
 *   CF_FAIL    the server must fail the connection (1002/1007 or drop)
 *   CF_DEFLATE RSV1 frames: CF_OK when the 101 accepted permessage-deflate
 *              (RFC 7692), CF_FAIL when it did not
 *   CF_EITHER  the RFC allows both (e.g. fail-fast UTF-8 is optional),
 *              or the server misbehaves on purpose (12.2.1)
 * Whatever `expect` says, an outcome holding a frame that a server may not
 * send (masked, RSV bits not negotiated, reserved opcode) does not
 * conform.
 *
 * Header-only: included once, by the suite.
 */
#ifndef SW_CONFORMANCE_CASES_H
#define SW_CONFORMANCE_CASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cf_expect {
    CF_OK = 0,  /* carry on, normal close */
    CF_FAIL,    /* fail the connection */
    CF_EITHER,  /* both are conformant */
    CF_DEFLATE, /* CF_OK if permessage-deflate was negotiated, else CF_FAIL */
};

/* How the payload length is written in the header. */
enum cf_lenform {
    CF_LEN_MIN = 0, /* minimal encoding (RFC 6455 5.2) */
    CF_LEN_16,      /* 16-bit form even for a short payload */
    CF_LEN_64,      /* 64-bit form even for a short payload */
    CF_LEN_64_MSB,  /* 64-bit form with its most significant bit set */
};

#define CF_MAX_STEPS 12

/* One frame the client writes. */
struct cf_step {
    bool on;                /* a step (false: end of the list) */
    uint8_t opcode;         /* any 4-bit value, reserved ones included */
    bool more;              /* FIN clear (a non-final fragment) */
    uint8_t rsv;            /* RSV bits, SW_WS_RSV1|2|3 */
    const char *data;       /* borrowed (static): literal payload, or NULL */
    size_t len;             /* bytes at data */
    uint32_t code;          /* CLOSE: CF_CODE(c) puts status code c before
                               data; 0: no code */
    uint64_t gen;           /* data == NULL: generated payload length */
    uint64_t frag;          /* split the payload into fragments of frag
                               bytes (first keeps the opcode, the rest
                               CONT, the last FIN unless `more`) */
    unsigned repeat;        /* write the frame this many times (0 = once) */
    unsigned chop;          /* write in pieces of chop bytes (0 = whole) */
    unsigned pause_ms;      /* wait after the frame */
    bool unmasked;          /* no MASK bit (a client must mask) */
    enum cf_lenform lenform; /* length encoding */
    bool together;          /* written in the same write as the frame
                               before it (so the server reads them at
                               once) unless that one pauses */
};

struct cf_case {
    const char *id;                 /* "1.1.1": category first */
    int cat;                        /* category number */
    const char *what;               /* one line */
    enum cf_expect expect;          /* RFC 6455's answer, see above */
    const char *ext;                /* Sec-WebSocket-Extensions offered */
    bool own_close;                 /* the steps hold the client's close */
    int timeout_ms;                 /* whole case deadline, 0 = default */
    struct cf_step s[CF_MAX_STEPS]; /* frames, in order */
};

/* Literal payload. */
#define D(lit) .data = (lit), .len = sizeof(lit) - 1
#define OP(n) .on = true, .opcode = (n)
#define TEXT OP(0x1)
#define BIN OP(0x2)
#define CONT OP(0x0)
#define CLOSE OP(0x8)
#define PING OP(0x9)
#define PONG OP(0xA)

/* A close status code (any 16-bit value, 0 included) for cf_step.code. */
#define CF_CODE(c) (0x10000u | (uint32_t)(c))
#define CF_CODE_OF(v) ((uint16_t)((v) & 0xffffu))

#define KiB * 1024ull
#define MiB * 1048576ull

/* A UTF-8 case: one text frame with the bytes, then one split into single
 * bytes as fragments (Autobahn 6.x runs each vector both ways). */
#define UTF8(id1, id2, ex, lit)                                               \
    {id1, 6, "text " #lit, ex, NULL, false, 0, {{TEXT, D(lit)}}},             \
    {                                                                         \
        id2, 6, "text " #lit " as 1-byte fragments", ex, NULL, false, 0,     \
        {                                                                     \
            {TEXT, D(lit), .frag = 1}                                         \
        }                                                                     \
    }

/* A close with a code and no reason, then nothing. */
#define CLOSE_CODE(id, ex, c)                                                 \
    {                                                                         \
        id, 7, "close with code " #c, ex, NULL, true, 0,                      \
        {                                                                     \
            {CLOSE, .code = CF_CODE(c)}                                       \
        }                                                                     \
    }

static const struct cf_case cf_cases[] = {
    /* ---- 1: framing ---------------------------------------------------- */
    {"1.1.1", 1, "text, 0 bytes", CF_OK, NULL, false, 0, {{TEXT}}},
    {"1.1.2", 1, "text, 125 bytes", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 125}}},
    {"1.1.3", 1, "text, 126 bytes", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 126}}},
    {"1.1.4", 1, "text, 127 bytes", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 127}}},
    {"1.1.5", 1, "text, 128 bytes", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 128}}},
    {"1.1.6", 1, "text, 65535 bytes", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 65535}}},
    {"1.1.7", 1, "text, 65536 bytes", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 65536}}},
    {"1.1.8", 1, "text, 65536 bytes in 997-byte writes", CF_OK, NULL, false,
     0, {{TEXT, .gen = 65536, .chop = 997}}},
    {"1.2.1", 1, "binary, 0 bytes", CF_OK, NULL, false, 0, {{BIN}}},
    {"1.2.2", 1, "binary, 125 bytes", CF_OK, NULL, false, 0,
     {{BIN, .gen = 125}}},
    {"1.2.3", 1, "binary, 126 bytes", CF_OK, NULL, false, 0,
     {{BIN, .gen = 126}}},
    {"1.2.4", 1, "binary, 127 bytes", CF_OK, NULL, false, 0,
     {{BIN, .gen = 127}}},
    {"1.2.5", 1, "binary, 128 bytes", CF_OK, NULL, false, 0,
     {{BIN, .gen = 128}}},
    {"1.2.6", 1, "binary, 65535 bytes", CF_OK, NULL, false, 0,
     {{BIN, .gen = 65535}}},
    {"1.2.7", 1, "binary, 65536 bytes", CF_OK, NULL, false, 0,
     {{BIN, .gen = 65536}}},
    {"1.2.8", 1, "binary, 65536 bytes in 997-byte writes", CF_OK, NULL,
     false, 0, {{BIN, .gen = 65536, .chop = 997}}},
    {"1.3.1", 1, "100 text messages of 1..100 bytes back to back", CF_OK,
     NULL, false, 0, {{TEXT, .gen = 37, .repeat = 100}}},

    /* ---- 2: pings and pongs -------------------------------------------- */
    {"2.1", 2, "ping, no payload", CF_OK, NULL, false, 0, {{PING}}},
    {"2.2", 2, "ping, text payload", CF_OK, NULL, false, 0,
     {{PING, D("Hello, world!")}}},
    {"2.3", 2, "ping, binary payload", CF_OK, NULL, false, 0,
     {{PING, D("\x00\xff\xfe\xfd\xfc\xfb\x00\xff")}}},
    {"2.4", 2, "ping, 125 bytes", CF_OK, NULL, false, 0,
     {{PING, .gen = 125}}},
    {"2.5", 2, "ping, 126 bytes (control > 125)", CF_FAIL, NULL, false, 0,
     {{PING, .gen = 126}}},
    {"2.6", 2, "ping, 125 bytes in 1-byte writes", CF_OK, NULL, false, 0,
     {{PING, .gen = 125, .chop = 1}}},
    {"2.7", 2, "unsolicited pong, no payload", CF_OK, NULL, false, 0,
     {{PONG}}},
    {"2.8", 2, "unsolicited pong with payload", CF_OK, NULL, false, 0,
     {{PONG, D("unsolicited pong payload")}}},
    {"2.9", 2, "unsolicited pong, then ping", CF_OK, NULL, false, 0,
     {{PONG, D("unsolicited pong payload")},
      {PING, D("ping payload")}}},
    {"2.10", 2, "10 pings with payload, one write each, paced", CF_OK, NULL,
     false, 0, {{PING, D("payload-0123456789"), .repeat = 10,
                 .pause_ms = 20}}},
    {"2.11", 2, "10 pings with payload, 1-byte writes", CF_OK, NULL, false,
     0, {{PING, D("payload-0123456789"), .repeat = 10, .chop = 1,
          .pause_ms = 20}}},
    /* several pings read at once: one pong each, in order, with its own
     * payload (a server may answer only the last, RFC 6455 5.5.3, but
     * neither backend does, so the gateway must not either) */
    {"2.12", 2, "5 pings with distinct payloads in one write", CF_OK, NULL,
     false, 0,
     {{PING, D("ping-1")},
      {PING, D("ping-2"), .together = true},
      {PING, D("ping-3"), .together = true},
      {PING, D("ping-4"), .together = true},
      {PING, D("ping-5"), .together = true}}},
    {"2.13", 2, "1 MiB binary, then 3 pings around a text in one write",
     CF_OK, NULL, false, 0,
     {{BIN, .gen = 1 MiB},
      {PING, D("in-flight-1")},
      {TEXT, D("between pings"), .together = true},
      {PING, D("in-flight-2"), .together = true},
      {PING, D("in-flight-3"), .together = true}}},

    /* ---- 3: reserved bits ---------------------------------------------- */
    {"3.1", 3, "text with RSV1 (nothing negotiated)", CF_FAIL, NULL, false, 0,
     {{TEXT, D("Hello, world!"), .rsv = 4}}},
    {"3.2", 3, "text, text with RSV2, ping", CF_FAIL, NULL, false, 0,
     {{TEXT, D("Hello, world!")},
      {TEXT, D("Hello, world!"), .rsv = 2},
      {PING, D("Hello, world!")}}},
    {"3.3", 3, "text, text with RSV1+2, ping, frame by frame", CF_FAIL,
     NULL, false, 0,
     {{TEXT, D("Hello, world!"), .pause_ms = 20},
      {TEXT, D("Hello, world!"), .rsv = 6, .pause_ms = 20},
      {PING, D("Hello, world!")}}},
    {"3.4", 3, "text, text with RSV3, ping, 1-byte writes", CF_FAIL, NULL,
     false, 0,
     {{TEXT, D("Hello, world!"), .chop = 1},
      {TEXT, D("Hello, world!"), .rsv = 1, .chop = 1},
      {PING, D("Hello, world!"), .chop = 1}}},
    {"3.5", 3, "binary with RSV1+3", CF_FAIL, NULL, false, 0,
     {{BIN, D("\x00\xff\xfe\xfd"), .rsv = 5}}},
    {"3.6", 3, "ping with RSV2+3", CF_FAIL, NULL, false, 0,
     {{PING, D("Hello, world!"), .rsv = 3}}},
    {"3.7", 3, "close with RSV1+2+3", CF_FAIL, NULL, true, 0,
     {{CLOSE, .code = CF_CODE(1000), .rsv = 7}}},

    /* ---- 4: opcodes ---------------------------------------------------- */
    {"4.1.1", 4, "reserved data opcode 3", CF_FAIL, NULL, false, 0,
     {{OP(3)}}},
    {"4.1.2", 4, "reserved data opcode 4 with payload", CF_FAIL, NULL, false,
     0, {{OP(4), D("reserved opcode payload")}}},
    {"4.1.3", 4, "text, opcode 5, ping", CF_FAIL, NULL, false, 0,
     {{TEXT, D("Hello, world!")}, {OP(5)}, {PING, D("Hello")}}},
    {"4.1.4", 4, "text, opcode 6 with payload, ping", CF_FAIL, NULL, false, 0,
     {{TEXT, D("Hello, world!")},
      {OP(6), D("reserved opcode payload")},
      {PING, D("Hello")}}},
    {"4.1.5", 4, "text, opcode 7, ping, 1-byte writes", CF_FAIL, NULL, false,
     0,
     {{TEXT, D("Hello, world!"), .chop = 1},
      {OP(7), D("reserved"), .chop = 1},
      {PING, D("Hello"), .chop = 1}}},
    {"4.2.1", 4, "reserved control opcode 0xB", CF_FAIL, NULL, false, 0,
     {{OP(0xB)}}},
    {"4.2.2", 4, "reserved control opcode 0xC with payload", CF_FAIL, NULL,
     false, 0, {{OP(0xC), D("reserved opcode payload")}}},
    {"4.2.3", 4, "text, opcode 0xD, ping", CF_FAIL, NULL, false, 0,
     {{TEXT, D("Hello, world!")}, {OP(0xD)}, {PING, D("Hello")}}},
    {"4.2.4", 4, "text, opcode 0xE with payload, ping", CF_FAIL, NULL, false,
     0,
     {{TEXT, D("Hello, world!")},
      {OP(0xE), D("reserved opcode payload")},
      {PING, D("Hello")}}},
    {"4.2.5", 4, "text, opcode 0xF, ping, 1-byte writes", CF_FAIL, NULL,
     false, 0,
     {{TEXT, D("Hello, world!"), .chop = 1},
      {OP(0xF), D("reserved"), .chop = 1},
      {PING, D("Hello"), .chop = 1}}},

    /* ---- 5: fragmentation ---------------------------------------------- */
    {"5.1", 5, "ping in 2 fragments", CF_FAIL, NULL, false, 0,
     {{PING, D("fragment1"), .more = true}, {CONT, D("fragment2")}}},
    {"5.2", 5, "pong in 2 fragments", CF_FAIL, NULL, false, 0,
     {{PONG, D("fragment1"), .more = true}, {CONT, D("fragment2")}}},
    {"5.3", 5, "text in 2 fragments", CF_OK, NULL, false, 0,
     {{TEXT, D("fragment1"), .more = true}, {CONT, D("fragment2")}}},
    {"5.4", 5, "text in 2 fragments, frame by frame", CF_OK, NULL, false, 0,
     {{TEXT, D("fragment1"), .more = true, .pause_ms = 20},
      {CONT, D("fragment2")}}},
    {"5.5", 5, "text in 2 fragments, 1-byte writes", CF_OK, NULL, false, 0,
     {{TEXT, D("fragment1"), .more = true, .chop = 1},
      {CONT, D("fragment2"), .chop = 1}}},
    {"5.6", 5, "text in 2 fragments, ping between", CF_OK, NULL, false, 0,
     {{TEXT, D("fragment1"), .more = true},
      {PING, D("pongme!")},
      {CONT, D("fragment2")}}},
    {"5.7", 5, "text in 2 fragments, ping between, frame by frame", CF_OK,
     NULL, false, 0,
     {{TEXT, D("fragment1"), .more = true, .pause_ms = 20},
      {PING, D("pongme!"), .pause_ms = 20},
      {CONT, D("fragment2")}}},
    {"5.8", 5, "text in 2 fragments, ping between, 1-byte writes", CF_OK,
     NULL, false, 0,
     {{TEXT, D("fragment1"), .more = true, .chop = 1},
      {PING, D("pongme!"), .chop = 1},
      {CONT, D("fragment2"), .chop = 1}}},
    {"5.9", 5, "final CONT without a start, then text", CF_FAIL, NULL, false,
     0, {{CONT, D("non-continuation payload")}, {TEXT, D("Hello, world!")}}},
    {"5.10", 5, "final CONT without a start, then text, frame by frame",
     CF_FAIL, NULL, false, 0,
     {{CONT, D("non-continuation payload"), .pause_ms = 20},
      {TEXT, D("Hello, world!")}}},
    {"5.11", 5, "final CONT without a start, then text, 1-byte writes",
     CF_FAIL, NULL, false, 0,
     {{CONT, D("non-continuation payload"), .chop = 1},
      {TEXT, D("Hello, world!"), .chop = 1}}},
    {"5.12", 5, "non-final CONT without a start, then text", CF_FAIL, NULL,
     false, 0,
     {{CONT, D("non-continuation payload"), .more = true},
      {TEXT, D("Hello, world!")}}},
    {"5.13", 5, "non-final CONT without a start, then text, frame by frame",
     CF_FAIL, NULL, false, 0,
     {{CONT, D("non-continuation payload"), .more = true, .pause_ms = 20},
      {TEXT, D("Hello, world!")}}},
    {"5.15", 5, "text in 2 fragments, then CONT, then text", CF_FAIL, NULL,
     false, 0,
     {{TEXT, D("fragment1"), .more = true},
      {CONT, D("fragment2")},
      {CONT, D("fragment3"), .more = true},
      {TEXT, D("fragment4")}}},
    {"5.16", 5, "CONT, CONT, then a whole text in 2 fragments", CF_FAIL, NULL,
     false, 0,
     {{CONT, D("fragment1"), .more = true},
      {CONT, D("fragment2")},
      {TEXT, D("fragment3"), .more = true},
      {CONT, D("fragment4")}}},
    {"5.18", 5, "text fragment, then a new text (no CONT)", CF_FAIL, NULL,
     false, 0,
     {{TEXT, D("fragment1"), .more = true}, {TEXT, D("fragment2")}}},
    {"5.18b", 5, "text fragment, then a binary (no CONT)", CF_FAIL, NULL,
     false, 0, {{TEXT, D("fragment1"), .more = true}, {BIN, D("x")}}},
    {"5.19", 5, "text in 5 fragments, pings between, paced", CF_OK, NULL,
     false, 0,
     {{TEXT, D("fragment1"), .more = true},
      {CONT, D("fragment2"), .more = true},
      {PING, D("pongme 1!"), .pause_ms = 50},
      {CONT, D("fragment3"), .more = true},
      {CONT, D("fragment4"), .more = true},
      {PING, D("pongme 2!"), .pause_ms = 50},
      {CONT, D("fragment5")}}},
    {"5.20", 5, "text in 5 fragments, pings between, 1-byte writes", CF_OK,
     NULL, false, 0,
     {{TEXT, D("fragment1"), .more = true, .chop = 1},
      {CONT, D("fragment2"), .more = true, .chop = 1},
      {PING, D("pongme 1!"), .chop = 1, .pause_ms = 50},
      {CONT, D("fragment3"), .more = true, .chop = 1},
      {CONT, D("fragment4"), .more = true, .chop = 1},
      {PING, D("pongme 2!"), .chop = 1, .pause_ms = 50},
      {CONT, D("fragment5"), .chop = 1}}},
    {"5.21", 5, "binary in 3 fragments, close between", CF_OK, NULL, true, 0,
     {{BIN, D("part1"), .more = true},
      {CONT, D("part2"), .more = true},
      {CLOSE, .code = CF_CODE(1000)},
      {CONT, D("part3")}}},
    {"5.22", 5, "text in 3 fragments, 3 pings between, one write", CF_OK,
     NULL, false, 0,
     {{TEXT, D("fragment1"), .more = true},
      {PING, D("pongme 1!"), .together = true},
      {CONT, D("fragment2"), .more = true, .together = true},
      {PING, D("pongme 2!"), .together = true},
      {PING, D("pongme 3!"), .together = true},
      {CONT, D("fragment3"), .together = true}}},

    /* ---- 6: UTF-8 ------------------------------------------------------ */
    {"6.1.1", 6, "empty text", CF_OK, NULL, false, 0, {{TEXT}}},
    {"6.1.2", 6, "empty text in 3 empty fragments", CF_OK, NULL, false, 0,
     {{TEXT, .more = true}, {CONT, .more = true}, {CONT}}},
    {"6.1.3", 6, "empty, non-empty, empty fragments", CF_OK, NULL, false, 0,
     {{TEXT, .more = true}, {CONT, D("middle frame payload"), .more = true},
      {CONT}}},
    UTF8("6.2.1", "6.2.2", CF_OK, "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4"
         "\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"),
    UTF8("6.2.3", "6.2.4", CF_OK, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc"
         "\xce\xb5"),
    {"6.2.5", 6, "4-byte character split 2+2 over fragments", CF_OK, NULL,
     false, 0, {{TEXT, D("\xf0\x9f"), .more = true}, {CONT, D("\x98\x80")}}},
    {"6.3.1", 6, "invalid UTF-8 in one text frame", CF_FAIL, NULL, false, 0,
     {{TEXT, D("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
               "edited")}}},
    {"6.3.2", 6, "invalid UTF-8 as 1-byte fragments", CF_FAIL, NULL, false, 0,
     {{TEXT, D("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
               "edited"), .frag = 1}}},
    {"6.4.1", 6, "invalid UTF-8 in the 1st fragment, rest later",
     CF_EITHER, NULL, false, 0,
     {{TEXT, D("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), .more = true,
       .pause_ms = 50},
      {CONT, D("\xf4\x90\x80\x80"), .more = true, .pause_ms = 50},
      {CONT, D("edited")}}},
    {"6.4.2", 6, "text ends inside a character", CF_FAIL, NULL, false, 0,
     {{TEXT, D("\xce\xba\xe1\xbd"), .more = true}, {CONT, D("\xb9\xcf")}}},
    UTF8("6.5.1", "6.5.2", CF_OK, "\x00"),
    UTF8("6.7.1", "6.7.2", CF_OK, "\xc2\x80"),
    UTF8("6.7.3", "6.7.4", CF_OK, "\xe0\xa0\x80"),
    UTF8("6.7.5", "6.7.6", CF_OK, "\xf0\x90\x80\x80"),
    UTF8("6.8.1", "6.8.2", CF_FAIL, "\xf8\x88\x80\x80\x80"),
    UTF8("6.8.3", "6.8.4", CF_FAIL, "\xfc\x84\x80\x80\x80\x80"),
    UTF8("6.9.1", "6.9.2", CF_OK, "\x7f"),
    UTF8("6.9.3", "6.9.4", CF_OK, "\xdf\xbf"),
    UTF8("6.9.5", "6.9.6", CF_OK, "\xef\xbf\xbf"),
    UTF8("6.9.7", "6.9.8", CF_OK, "\xf4\x8f\xbf\xbf"),
    UTF8("6.10.1", "6.10.2", CF_FAIL, "\xf4\x90\x80\x80"),
    UTF8("6.10.3", "6.10.4", CF_FAIL, "\xf7\xbf\xbf\xbf"),
    UTF8("6.11.1", "6.11.2", CF_OK, "\xed\x9f\xbf"),
    UTF8("6.11.3", "6.11.4", CF_OK, "\xee\x80\x80"),
    UTF8("6.12.1", "6.12.2", CF_FAIL, "\x80"),
    UTF8("6.12.3", "6.12.4", CF_FAIL, "\xbf"),
    UTF8("6.12.5", "6.12.6", CF_FAIL, "\x80\xbf\x80\xbf"),
    UTF8("6.13.1", "6.13.2", CF_FAIL, "\xc0\x20\xc1\x20"),
    UTF8("6.13.3", "6.13.4", CF_FAIL, "\xe0\x20\xef\x20"),
    UTF8("6.13.5", "6.13.6", CF_FAIL, "\xf0\x20\xf7\x20"),
    UTF8("6.14.1", "6.14.2", CF_FAIL, "\xc0"),
    UTF8("6.14.3", "6.14.4", CF_FAIL, "\xe0\x80"),
    UTF8("6.14.5", "6.14.6", CF_FAIL, "\xf0\x80\x80"),
    UTF8("6.14.7", "6.14.8", CF_FAIL, "\xdf"),
    UTF8("6.14.9", "6.14.10", CF_FAIL, "\xef\xbf"),
    UTF8("6.16.1", "6.16.2", CF_FAIL, "\xfe"),
    UTF8("6.16.3", "6.16.4", CF_FAIL, "\xff"),
    UTF8("6.16.5", "6.16.6", CF_FAIL, "\xfe\xfe\xff\xff"),
    UTF8("6.17.1", "6.17.2", CF_FAIL, "\xc0\xaf"),
    UTF8("6.17.3", "6.17.4", CF_FAIL, "\xe0\x80\xaf"),
    UTF8("6.17.5", "6.17.6", CF_FAIL, "\xf0\x80\x80\xaf"),
    UTF8("6.18.1", "6.18.2", CF_FAIL, "\xc1\xbf"),
    UTF8("6.18.3", "6.18.4", CF_FAIL, "\xe0\x9f\xbf"),
    UTF8("6.18.5", "6.18.6", CF_FAIL, "\xf0\x8f\xbf\xbf"),
    UTF8("6.19.1", "6.19.2", CF_FAIL, "\xc0\x80"),
    UTF8("6.19.3", "6.19.4", CF_FAIL, "\xe0\x80\x80"),
    UTF8("6.20.1", "6.20.2", CF_FAIL, "\xed\xa0\x80"),
    UTF8("6.20.3", "6.20.4", CF_FAIL, "\xed\xad\xbf"),
    UTF8("6.20.5", "6.20.6", CF_FAIL, "\xed\xb0\x80"),
    UTF8("6.20.7", "6.20.8", CF_FAIL, "\xed\xbf\xbf"),
    UTF8("6.21.1", "6.21.2", CF_FAIL, "\xed\xa0\x80\xed\xb0\x80"),
    UTF8("6.22.1", "6.22.2", CF_OK, "\xef\xbf\xbe"),
    UTF8("6.22.3", "6.22.4", CF_OK, "\xef\xb7\x90"),
    UTF8("6.23.1", "6.23.2", CF_OK, "\xef\xbb\xbf\xef\xbf\xbd"),

    /* ---- 7: close ------------------------------------------------------ */
    {"7.1.1", 7, "text, then close 1000", CF_OK, NULL, false, 0,
     {{TEXT, D("Hello World!")}}},
    {"7.1.2", 7, "close, close again", CF_OK, NULL, true, 0,
     {{CLOSE, .code = CF_CODE(1000)}, {CLOSE, .code = CF_CODE(1000)}}},
    {"7.1.3", 7, "close, then ping", CF_OK, NULL, true, 0,
     {{CLOSE, .code = CF_CODE(1000)}, {PING, D("Hello World!")}}},
    {"7.1.4", 7, "close, then text", CF_OK, NULL, true, 0,
     {{CLOSE, .code = CF_CODE(1000)}, {TEXT, D("Hello World!")}}},
    {"7.1.5", 7, "text fragment, close, then the last fragment", CF_OK, NULL,
     true, 0,
     {{TEXT, D("fragment1"), .more = true},
      {CLOSE, .code = CF_CODE(1000)},
      {CONT, D("fragment2")}}},
    {"7.1.6", 7, "256 KiB text, close, then ping", CF_OK, NULL, true, 0,
     {{TEXT, .gen = 256 KiB},
      {CLOSE, .code = CF_CODE(1000)},
      {PING, D("ping")}}},
    {"7.3.1", 7, "close, empty payload", CF_OK, NULL, true, 0, {{CLOSE}}},
    {"7.3.2", 7, "close, 1-byte payload", CF_FAIL, NULL, true, 0,
     {{CLOSE, D("\x03")}}},
    {"7.3.3", 7, "close 1000, no reason", CF_OK, NULL, true, 0,
     {{CLOSE, .code = CF_CODE(1000)}}},
    {"7.3.4", 7, "close 1000 with a reason", CF_OK, NULL, true, 0,
     {{CLOSE, .code = CF_CODE(1000), D("Hello World!")}}},
    {"7.3.5", 7, "close 1000 with a 123-byte reason", CF_OK, NULL, true, 0,
     {{CLOSE, .code = CF_CODE(1000),
       D("0123456789012345678901234567890123456789012345678901234567890"
         "12345678901234567890123456789012345678901234567890123456789012")}}},
    {"7.3.6", 7, "close 1000 with a 124-byte reason (payload 126)", CF_FAIL,
     NULL, true, 0,
     {{CLOSE, .code = CF_CODE(1000),
       D("0123456789012345678901234567890123456789012345678901234567890"
         "123456789012345678901234567890123456789012345678901234567890123")}}},
    {"7.5.1", 7, "close 1000 with an invalid UTF-8 reason", CF_FAIL, NULL,
     true, 0,
     {{CLOSE, .code = CF_CODE(1000),
       D("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")}}},
    CLOSE_CODE("7.7.1", CF_OK, 1000),
    CLOSE_CODE("7.7.2", CF_OK, 1001),
    CLOSE_CODE("7.7.3", CF_OK, 1002),
    CLOSE_CODE("7.7.4", CF_OK, 1003),
    CLOSE_CODE("7.7.5", CF_OK, 1007),
    CLOSE_CODE("7.7.6", CF_OK, 1008),
    CLOSE_CODE("7.7.7", CF_OK, 1009),
    CLOSE_CODE("7.7.8", CF_OK, 1010),
    CLOSE_CODE("7.7.9", CF_OK, 1011),
    CLOSE_CODE("7.7.10", CF_OK, 3000),
    CLOSE_CODE("7.7.11", CF_OK, 3999),
    CLOSE_CODE("7.7.12", CF_OK, 4000),
    CLOSE_CODE("7.7.13", CF_OK, 4999),
    CLOSE_CODE("7.9.1", CF_FAIL, 0),
    CLOSE_CODE("7.9.2", CF_FAIL, 999),
    CLOSE_CODE("7.9.3", CF_FAIL, 1004),
    CLOSE_CODE("7.9.4", CF_FAIL, 1005),
    CLOSE_CODE("7.9.5", CF_FAIL, 1006),
    CLOSE_CODE("7.9.6", CF_FAIL, 1016),
    CLOSE_CODE("7.9.7", CF_FAIL, 1100),
    CLOSE_CODE("7.9.8", CF_FAIL, 2000),
    CLOSE_CODE("7.9.9", CF_FAIL, 2999),
    CLOSE_CODE("7.9.10", CF_FAIL, 1015),
    CLOSE_CODE("7.13.1", CF_FAIL, 5000),
    CLOSE_CODE("7.13.2", CF_FAIL, 65535),
    /* 1012-1014 were registered with IANA after RFC 6455 (service restart,
     * try again later, bad gateway); the RFC reserves 1000-2999 for such
     * later definitions, so either answer conforms. */
    CLOSE_CODE("7.14.1", CF_EITHER, 1012),
    CLOSE_CODE("7.14.2", CF_EITHER, 1013),
    CLOSE_CODE("7.14.3", CF_EITHER, 1014),

    /* ---- 9: large messages --------------------------------------------- */
    {"9.1.1", 9, "text, 64 KiB", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 64 KiB}}},
    {"9.1.2", 9, "text, 256 KiB", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 256 KiB}}},
    {"9.1.3", 9, "text, 1 MiB", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 1 MiB}}},
    {"9.1.4", 9, "text, 4 MiB", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 4 MiB}}},
    {"9.1.6", 9, "text, 16 MiB", CF_OK, NULL, false, 20000,
     {{TEXT, .gen = 16 MiB}}},
    {"9.2.1", 9, "binary, 64 KiB", CF_OK, NULL, false, 0,
     {{BIN, .gen = 64 KiB}}},
    {"9.2.3", 9, "binary, 1 MiB", CF_OK, NULL, false, 0,
     {{BIN, .gen = 1 MiB}}},
    {"9.2.6", 9, "binary, 16 MiB", CF_OK, NULL, false, 20000,
     {{BIN, .gen = 16 MiB}}},
    {"9.3.1", 9, "text 1 MiB in 64-byte fragments", CF_OK, NULL, false,
     10000, {{TEXT, .gen = 1 MiB, .frag = 64}}},
    {"9.3.2", 9, "text 1 MiB in 256-byte fragments", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 1 MiB, .frag = 256}}},
    {"9.3.3", 9, "text 4 MiB in 1 KiB fragments", CF_OK, NULL, false, 10000,
     {{TEXT, .gen = 4 MiB, .frag = 1 KiB}}},
    {"9.3.4", 9, "text 4 MiB in 4 KiB fragments", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 4 MiB, .frag = 4 KiB}}},
    {"9.3.5", 9, "text 4 MiB in 16 KiB fragments", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 4 MiB, .frag = 16 KiB}}},
    {"9.3.6", 9, "text 4 MiB in 64 KiB fragments", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 4 MiB, .frag = 64 KiB}}},
    {"9.3.7", 9, "text 4 MiB in 256 KiB fragments", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 4 MiB, .frag = 256 KiB}}},
    {"9.3.8", 9, "text 4 MiB in 1 MiB fragments", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 4 MiB, .frag = 1 MiB}}},
    {"9.3.9", 9, "text 4 MiB in one fragment", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 4 MiB, .frag = 4 MiB}}},
    {"9.4.1", 9, "binary 1 MiB in 64-byte fragments", CF_OK, NULL, false,
     10000, {{BIN, .gen = 1 MiB, .frag = 64}}},
    {"9.4.5", 9, "binary 4 MiB in 16 KiB fragments", CF_OK, NULL, false, 0,
     {{BIN, .gen = 4 MiB, .frag = 16 KiB}}},
    {"9.4.7", 9, "binary 16 MiB in 1 MiB fragments", CF_OK, NULL, false,
     20000, {{BIN, .gen = 16 MiB, .frag = 1 MiB}}},
    {"9.5.1", 9, "text 1 MiB in 64-byte writes", CF_OK, NULL, false, 10000,
     {{TEXT, .gen = 1 MiB, .chop = 64}}},
    {"9.5.4", 9, "text 1 MiB in 4 KiB writes", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 1 MiB, .chop = 4096}}},
    {"9.6.4", 9, "binary 1 MiB in 4 KiB writes", CF_OK, NULL, false, 0,
     {{BIN, .gen = 1 MiB, .chop = 4096}}},
    {"9.7.1", 9, "1000 text messages of 0 bytes", CF_OK, NULL, false, 0,
     {{TEXT, .repeat = 1000}}},
    {"9.7.3", 9, "1000 text messages of 256 bytes", CF_OK, NULL, false, 0,
     {{TEXT, .gen = 256, .repeat = 1000}}},
    {"9.8.3", 9, "1000 binary messages of 256 bytes", CF_OK, NULL, false, 0,
     {{BIN, .gen = 256, .repeat = 1000}}},

    /* ---- 10: misc ------------------------------------------------------ */
    {"10.1.1", 10, "text 64 KiB in 1300-byte fragments", CF_OK, NULL, false,
     0, {{TEXT, .gen = 64 KiB, .frag = 1300}}},
    {"10.2.1", 10, "unmasked text frame from the client", CF_FAIL, NULL,
     false, 0, {{TEXT, D("Hello, world!"), .unmasked = true}}},
    {"10.2.2", 10, "unmasked ping from the client", CF_FAIL, NULL, false, 0,
     {{PING, D("Hello"), .unmasked = true}}},
    {"10.3.1", 10, "5-byte text in the 16-bit length form", CF_OK, NULL,
     false, 0, {{TEXT, D("Hello"), .lenform = CF_LEN_16}}},
    {"10.3.2", 10, "5-byte binary in the 64-bit length form", CF_OK, NULL,
     false, 0, {{BIN, D("Hello"), .lenform = CF_LEN_64}}},
    {"10.3.3", 10, "64-bit length with its top bit set", CF_FAIL, NULL, false,
     0, {{BIN, D("Hello"), .lenform = CF_LEN_64_MSB}}},
    {"10.4.1", 10, "binary, all 256 byte values", CF_OK, NULL, false, 0,
     {{BIN, .gen = 256}}},
    {"10.4.2", 10, "text, 3 messages in one write", CF_OK, NULL, false, 0,
     {{TEXT, D("one")}, {TEXT, D("two")}, {TEXT, D("three")}}},

    /* ---- 12: compression (permessage-deflate, RFC 7692) ---------------- */
    {"12.1.1", 12, "RSV1 text, nothing offered", CF_FAIL, NULL, false, 0,
     {{TEXT, D("\xf2\x48\xcd\xc9\xc9\x07\x00"), .rsv = 4}}},
    {"12.1.2", 12, "RSV1 text, deflate offered (ws accepts, swload not)",
     CF_DEFLATE, "permessage-deflate; client_no_context_takeover; "
                "server_no_context_takeover", false, 0,
     {{TEXT, D("\xf2\x48\xcd\xc9\xc9\x07\x00"), .rsv = 4}}},
    {"12.1.3", 12, "RSV1 on a continuation frame", CF_FAIL,
     "permessage-deflate; client_no_context_takeover; "
     "server_no_context_takeover", false, 0,
     {{TEXT, D("Hel"), .more = true}, {CONT, D("lo"), .rsv = 4}}},
    {"12.2.1", 12, "server sends RSV1 unnegotiated (\"__rsv1\")", CF_EITHER,
     NULL, false, 0, {{TEXT, D("__rsv1")}}},
};

#undef UTF8
#undef CLOSE_CODE

#endif
