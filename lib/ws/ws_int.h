/*
 * ws_int.h - helpers shared by the files of lib/ws; not part of the API.
 *
 * Owns nothing; pure functions. Threading: none.
 */
#ifndef SHOCKWAVE_WS_INT_H
#define SHOCKWAVE_WS_INT_H

#include <shockwave/ws.h>

/* Base64 (RFC 4648, with padding) of in[0..len) into out, which must hold
 * 4 * ((len + 2) / 3) + 1 bytes; NUL terminated. Returns the length. */
size_t sw__ws_base64_encode(char *out, const uint8_t *in, size_t len);

/* Strict base64 decode: length a multiple of 4, alphabet only, '=' only as
 * the last one or two characters. Returns the decoded length, or -1 if the
 * text is invalid or the result would not fit in cap bytes. */
ssize_t sw__ws_base64_decode(uint8_t *out, size_t cap, const char *in,
                             size_t len);

#endif
