/*
 * http_chunked.c - the chunked transfer coding (RFC 9112 7.1): a resumable
 * decoder for bodies coming in, and the chunk-size line for bodies going
 * out (see shockwave/http.h).
 *
 *   sw_http_chunked_init
 *   hex_value             one hex digit
 *   chunk_byte            one framing byte through the state machine
 *   sw_http_chunked_decode
 *   sw_http_chunk_header  "1a2b\r\n"
 *
 * The decoder keeps its state in the caller's struct sw_http_chunked and
 * returns payload as slices of the caller's buffer; it never copies.
 *
 * Threading: none; the state belongs to the caller.
 */
#include "http_int.h"

/*
 * Chunked decoder (RFC 9112 7.1). States, one byte at a time except data:
 *
 *   SIZE -> SIZE_MORE -+-> SIZE_LF --(size > 0)--> DATA -> DATA_CR -> DATA_LF
 *     ^                +-> EXT_BWS -> EXT -^   |                       |
 *     |                                        +--(size 0)--> TRAILER  |
 *     +----------------------------------------------------------------+
 *   TRAILER -> TR_NAME -> TR_VALUE -> TR_LF -> TRAILER
 *   TRAILER --CR--> LAST_LF --LF--> DONE
 */
enum chunk_state {
    CH_SIZE = 0,  /* first hex digit of a chunk-size */
    CH_SIZE_MORE, /* more digits, BWS, ";" or CR */
    CH_EXT_BWS,   /* whitespace before ";" */
    CH_EXT,       /* chunk-ext bytes up to CR */
    CH_SIZE_LF,   /* LF of the size line */
    CH_DATA,      /* chunk payload; remaining bytes left */
    CH_DATA_CR,   /* CR after the payload */
    CH_DATA_LF,   /* LF after the payload */
    CH_TRAILER,   /* first byte of a trailer line or of the final CRLF */
    CH_TR_NAME,   /* trailer field name */
    CH_TR_VALUE,  /* trailer field value */
    CH_TR_LF,     /* LF of a trailer line */
    CH_LAST_LF,   /* LF of the final CRLF */
    CH_DONE,      /* body complete */
    CH_ERROR,     /* refused; every later call fails */
};

#define CHUNK_LINE_MAX 4096     /* size line incl. extensions */
#define CHUNK_TRAILER_MAX 16384 /* all trailer lines together */
#define CHUNK_DIGITS_MAX 16     /* 64 bits of hex */

void
sw_http_chunked_init(struct sw_http_chunked *ch)
{
    memset(ch, 0, sizeof(*ch));
    ch->state = CH_SIZE;
}

static int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* One framing byte (any state but CH_DATA); false if it breaks the
 * framing. */
static bool
chunk_byte(struct sw_http_chunked *ch, unsigned char c)
{
    int x;

    /* The size line and the trailer section are capped. */
    if (ch->state <= CH_EXT && ++ch->line_len > CHUNK_LINE_MAX) {
        return false;
    }
    if (ch->state >= CH_TRAILER && ch->state <= CH_LAST_LF &&
        ++ch->remaining > CHUNK_TRAILER_MAX) {
        return false;
    }
    switch (ch->state) {
    case CH_SIZE:
        if ((x = hex_value(c)) < 0) {
            return false;
        }
        ch->remaining = (uint64_t)x;
        ch->state = CH_SIZE_MORE;
        break;
    case CH_SIZE_MORE:
        if ((x = hex_value(c)) >= 0) {
            if (ch->line_len > CHUNK_DIGITS_MAX) {
                return false; /* more than 64 bits */
            }
            ch->remaining = ch->remaining << 4 | (uint64_t)x;
        } else if (c == '\r') {
            ch->state = CH_SIZE_LF;
        } else if (c == ';') {
            ch->state = CH_EXT;
        } else if (sw__http_is_ows((char)c)) {
            ch->state = CH_EXT_BWS; /* RFC 9112 7.1.1: BWS */
        } else {
            return false;
        }
        break;
    case CH_EXT_BWS:
        if (c == ';') {
            ch->state = CH_EXT;
        } else if (!sw__http_is_ows((char)c)) {
            return false;
        }
        break;
    case CH_EXT:
        /* Extensions are read and ignored; their bytes must still be
         * field bytes, so no bare CR or LF hides in them. */
        if (c == '\r') {
            ch->state = CH_SIZE_LF;
        } else if (!sw__http_is_field_char(c)) {
            return false;
        }
        break;
    case CH_SIZE_LF:
        if (c != '\n') {
            return false;
        }
        ch->line_len = 0;
        ch->state = ch->remaining > 0 ? CH_DATA : CH_TRAILER;
        break;
    case CH_DATA_CR:
        if (c != '\r') {
            return false;
        }
        ch->state = CH_DATA_LF;
        break;
    case CH_DATA_LF:
        if (c != '\n') {
            return false;
        }
        ch->state = CH_SIZE;
        break;
    case CH_TRAILER:
        if (c == '\r') {
            ch->state = CH_LAST_LF;
        } else if (sw__http_is_tchar(c)) {
            ch->state = CH_TR_NAME;
        } else {
            return false; /* obs-fold, empty name, bare LF */
        }
        break;
    case CH_TR_NAME:
        if (c == ':') {
            ch->state = CH_TR_VALUE;
        } else if (!sw__http_is_tchar(c)) {
            return false;
        }
        break;
    case CH_TR_VALUE:
        if (c == '\r') {
            ch->state = CH_TR_LF;
        } else if (!sw__http_is_field_char(c)) {
            return false;
        }
        break;
    case CH_TR_LF:
        if (c != '\n') {
            return false;
        }
        ch->state = CH_TRAILER;
        break;
    case CH_LAST_LF:
        if (c != '\n') {
            return false;
        }
        ch->state = CH_DONE;
        ch->remaining = 0;
        break;
    default:
        return false;
    }
    return true;
}

enum sw_status
sw_http_chunked_decode(struct sw_http_chunked *ch, const char *in, size_t len,
                       size_t *consumed, struct sw_str *data)
{
    size_t i = 0;
    bool have_data = false;
    enum sw_status st = SW_AGAIN;

    *data = (struct sw_str){in, 0};
    while (ch->state != CH_DONE && ch->state != CH_ERROR && i < len) {
        if (ch->state == CH_DATA) {
            /* One slice per call: stop before a second run of payload. */
            if (have_data) {
                goto done;
            }
            size_t n = (size_t)SW_MIN(ch->remaining, (uint64_t)(len - i));
            *data = (struct sw_str){in + i, n};
            have_data = true;
            i += n;
            ch->remaining -= n;
            ch->total += n;
            if (ch->remaining == 0) {
                ch->state = CH_DATA_CR;
            }
            continue;
        }
        if (!chunk_byte(ch, (unsigned char)in[i++])) {
            ch->state = CH_ERROR;
        }
    }

done:
    if (ch->state == CH_DONE) {
        st = SW_OK;
    } else if (ch->state == CH_ERROR) {
        st = SW_EPROTO;
    }
    *consumed = i;
    return st;
}

size_t
sw_http_chunk_header(char *out, uint64_t size)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;

    do {
        tmp[n++] = hex[size & 0xf];
        size >>= 4;
    } while (size > 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    out[n] = '\r';
    out[n + 1] = '\n';
    return n + 2;
}
