/*
 * http_proxyproto.c - the PROXY protocol header a load balancer sends
 * before the client's bytes (HAProxy's doc/proxy-protocol.txt, v1 and v2).
 *
 * Pure: no I/O, no allocation, no state between calls. The caller feeds the
 * bytes read so far, from the connection's first byte; the answer is
 * SW_AGAIN until the header is complete, then SW_OK with its length, or
 * SW_EPROTO as soon as the bytes cannot start a valid header (so a client
 * that sends HTTP instead is refused at its first byte, not after a wait).
 *
 *   first byte 'P' --> v1: "PROXY " proto SP src SP dst SP sport SP dport CRLF
 *   first byte \r  --> v2: 12-byte signature, ver|cmd, fam|proto, len (be16),
 *                          addresses, TLVs (skipped, bounds-checked)
 *
 * Threading: none; the result is owned by the caller.
 */
#include <shockwave/http.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static const char v1_sig[] = "PROXY ";
static const unsigned char v2_sig[SW_PROXYPROTO_V2_FIXED - 4] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static enum sw_status
refuse(struct sw_proxyproto *pp, const char *reason)
{
    pp->reason = reason;
    return SW_EPROTO;
}

/* True when data[0..len) is a prefix of sig[0..siglen). */
static bool
prefix_of(const void *data, size_t len, const void *sig, size_t siglen)
{
    size_t n = len < siglen ? len : siglen;
    return memcmp(data, sig, n) == 0;
}

/* ---- v1 ---------------------------------------------------------------- */

/* A decimal port, 0..65535, no sign, no leading zero (doc section 2.1). */
static bool
parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0')) {
        return false;
    }
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) {
        return false;
    }
    *out = (uint16_t)v;
    return true;
}

static bool
parse_addr(int family, const char *s, size_t n, uint8_t *out)
{
    char text[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof(text)) {
        return false;
    }
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(family, text, out) == 1;
}

/* Split line[0..n) at single spaces into at most `max` fields; false when
 * a field is empty (two spaces, a leading or trailing one). */
static size_t
split_fields(const char *line, size_t n, struct sw_str *f, size_t max)
{
    size_t count = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && line[i] != ' ') {
            continue;
        }
        if (i == start || count == max) {
            return 0;
        }
        f[count].p = line + start;
        f[count].len = i - start;
        count++;
        start = i + 1;
    }
    return count;
}

static enum sw_status
decode_v1(struct sw_proxyproto *pp, const char *d, size_t len)
{
    /* the CR may stand at index 105 at the latest: 107 bytes with LF */
    size_t cr_max = SW_PROXYPROTO_V1_MAX - 2;
    size_t scan = len < cr_max + 1 ? len : cr_max + 1;
    size_t eol = 0;
    bool found = false;
    for (size_t i = 0; i < scan; i++) {
        if (d[i] == '\r') {
            if (i + 1 == len) {
                return SW_AGAIN;
            }
            if (d[i + 1] != '\n') {
                return refuse(pp, "v1 header has a CR without LF");
            }
            eol = i;
            found = true;
            break;
        }
        if (d[i] == '\n') {
            return refuse(pp, "v1 header ends in a bare LF");
        }
        if ((unsigned char)d[i] < 0x20 || (unsigned char)d[i] > 0x7e) {
            return refuse(pp, "v1 header holds a control or non-ASCII byte");
        }
    }
    if (!found) {
        if (len > cr_max) {
            return refuse(pp, "v1 header longer than 107 bytes");
        }
        return SW_AGAIN;
    }
    /* the line without "PROXY " and CRLF */
    const char *line = d + sizeof(v1_sig) - 1;
    size_t n = eol - (sizeof(v1_sig) - 1);
    pp->version = 1;
    pp->len = eol + 2;
    if (n >= 7 && memcmp(line, "UNKNOWN", 7) == 0 &&
        (n == 7 || line[7] == ' ')) {
        /* doc 2.1: the rest of an UNKNOWN line is ignored; the receiver
         * keeps the connection's own addresses */
        pp->local = true;
        return SW_OK;
    }
    struct sw_str f[5];
    if (split_fields(line, n, f, 5) != 5) {
        return refuse(pp, "v1 header is not \"proto src dst sport dport\"");
    }
    if (f[0].len == 4 && memcmp(f[0].p, "TCP4", 4) == 0) {
        pp->family = AF_INET;
    } else if (f[0].len == 4 && memcmp(f[0].p, "TCP6", 4) == 0) {
        pp->family = AF_INET6;
    } else {
        return refuse(pp, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
    }
    if (!parse_addr(pp->family, f[1].p, f[1].len, pp->src) ||
        !parse_addr(pp->family, f[2].p, f[2].len, pp->dst)) {
        return refuse(pp, "v1 address does not match its protocol");
    }
    if (!parse_port(f[3].p, f[3].len, &pp->sport) ||
        !parse_port(f[4].p, f[4].len, &pp->dport)) {
        return refuse(pp, "v1 port is not a number in 0..65535");
    }
    pp->local = false;
    return SW_OK;
}

/* ---- v2 ---------------------------------------------------------------- */

static uint16_t
be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* TLVs fill body[0..n) exactly: type, 16-bit length, value (doc 2.2.7). */
static bool
tlvs_fit(const unsigned char *body, size_t n)
{
    size_t at = 0;
    while (at < n) {
        if (n - at < 3) {
            return false;
        }
        size_t vlen = be16(body + at + 1);
        if (n - at - 3 < vlen) {
            return false;
        }
        at += 3 + vlen;
    }
    return true;
}

static enum sw_status
decode_v2(struct sw_proxyproto *pp, const unsigned char *d, size_t len,
          size_t max)
{
    if (len < SW_PROXYPROTO_V2_FIXED) {
        return SW_AGAIN;
    }
    unsigned ver = d[12] >> 4;
    unsigned cmd = d[12] & 0x0f;
    unsigned fam = d[13] >> 4;
    unsigned proto = d[13] & 0x0f;
    size_t body = be16(d + 14);
    if (ver != 2) {
        return refuse(pp, "v2 version is not 2");
    }
    if (cmd > 1) {
        return refuse(pp, "v2 command is neither LOCAL nor PROXY");
    }
    if (fam > 3 || proto > 2) {
        return refuse(pp, "v2 address family or transport unknown");
    }
    if (SW_PROXYPROTO_V2_FIXED + body > max) {
        return refuse(pp, "v2 header longer than the limit");
    }
    if (len < SW_PROXYPROTO_V2_FIXED + body) {
        return SW_AGAIN;
    }
    /* doc 2.2: address block sizes for INET, INET6 and UNIX */
    static const size_t addr_len[4] = {0, 12, 36, 216};
    if (body < addr_len[fam]) {
        return refuse(pp, "v2 length too short for its address family");
    }
    const unsigned char *a = d + SW_PROXYPROTO_V2_FIXED;
    if (!tlvs_fit(a + addr_len[fam], body - addr_len[fam])) {
        return refuse(pp, "v2 TLV overruns the header");
    }
    pp->version = 2;
    pp->len = SW_PROXYPROTO_V2_FIXED + body;
    /* LOCAL (health checks from the balancer itself), UNSPEC and UNIX:
     * no IP address to carry, keep the connection's own (doc 2.2) */
    if (cmd == 0 || fam == 0 || fam == 3) {
        pp->local = true;
        return SW_OK;
    }
    if (proto != 1) {
        return refuse(pp, "v2 transport is not STREAM");
    }
    pp->local = false;
    if (fam == 1) {
        pp->family = AF_INET;
        memcpy(pp->src, a, 4);
        memcpy(pp->dst, a + 4, 4);
        pp->sport = be16(a + 8);
        pp->dport = be16(a + 10);
    } else {
        pp->family = AF_INET6;
        memcpy(pp->src, a, 16);
        memcpy(pp->dst, a + 16, 16);
        pp->sport = be16(a + 32);
        pp->dport = be16(a + 34);
    }
    return SW_OK;
}

enum sw_status
sw_http_proxyproto_decode(struct sw_proxyproto *pp, const void *data,
                          size_t len, size_t max)
{
    const unsigned char *d = data;
    memset(pp, 0, sizeof(*pp));
    if (max < SW_PROXYPROTO_V2_MIN_MAX) {
        max = SW_PROXYPROTO_V2_MIN_MAX;
    }
    if (len == 0) {
        return SW_AGAIN;
    }
    if (d[0] == 'P') {
        if (!prefix_of(d, len, v1_sig, sizeof(v1_sig) - 1)) {
            return refuse(pp, "not a PROXY protocol header");
        }
        if (len < sizeof(v1_sig) - 1) {
            return SW_AGAIN;
        }
        return decode_v1(pp, data, len);
    }
    if (!prefix_of(d, len, v2_sig, sizeof(v2_sig))) {
        return refuse(pp, "not a PROXY protocol header");
    }
    return decode_v2(pp, d, len, max);
}

size_t
sw_http_proxyproto_addr_text(const struct sw_proxyproto *pp, char *host,
                             size_t hostlen, char *port, size_t portlen)
{
    if (pp->local ||
        inet_ntop(pp->family, pp->src, host, (socklen_t)hostlen) == NULL) {
        return 0;
    }
    snprintf(port, portlen, "%u", (unsigned)pp->sport);
    return strlen(host);
}
