/*
 * ws_rng.c - per-worker random pool for masking keys (RFC 6455 5.3: "the
 * masking key MUST be derived from a strong source of entropy") and client
 * handshake keys.
 *
 *   RAND_bytes --4 KiB--> pool[pos .. 4096) --4 bytes--> one mask key
 *
 * One refill serves 1024 keys, so masking a frame costs a memcpy, not a
 * syscall or a lock. Every byte is handed out once; used bytes are not
 * reused. The pool (owned, inside the struct) is wiped by fini.
 *
 * Threading: a struct sw_ws_rng belongs to one worker; OpenSSL's RAND is
 * itself thread-safe.
 */
#include <shockwave/ws.h>

#include "ws_int.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

static enum sw_status
refill(struct sw_ws_rng *r)
{
    if (RAND_bytes(r->pool, (int)sizeof(r->pool)) != 1) {
        r->pos = sizeof(r->pool);
        return SW_ERROR;
    }
    r->pos = 0;
    return SW_OK;
}

enum sw_status
sw_ws_rng_init(struct sw_ws_rng *r)
{
    return refill(r);
}

void
sw_ws_rng_fini(struct sw_ws_rng *r)
{
    if (r == NULL) {
        return;
    }
    OPENSSL_cleanse(r->pool, sizeof(r->pool));
    r->pos = sizeof(r->pool);
}

enum sw_status
sw_ws_rng_bytes(struct sw_ws_rng *r, uint8_t *out, size_t n)
{
    while (n > 0) {
        if (r->pos >= sizeof(r->pool) && refill(r) != SW_OK) {
            return SW_ERROR;
        }
        size_t take = SW_MIN(n, sizeof(r->pool) - r->pos);
        memcpy(out, r->pool + r->pos, take);
        /* Wipe what was handed out, so a later memory leak of the pool
         * cannot reveal keys already used. */
        memset(r->pool + r->pos, 0, take);
        r->pos += take;
        out += take;
        n -= take;
    }
    return SW_OK;
}

static void
rng_or_abort(struct sw_ws_rng *r, uint8_t *out, size_t n)
{
    if (sw_ws_rng_bytes(r, out, n) != SW_OK) {
        /* Not a peer's fault and not recoverable: without entropy every
         * mask would be predictable (RFC 6455 10.3). */
        fprintf(stderr, "shockwave: OpenSSL RAND_bytes failed\n");
        abort();
    }
}

void
sw_ws_rng_key(struct sw_ws_rng *r, uint8_t key[4])
{
    /* Fast path: four bytes from the pool. */
    if (SW_LIKELY(r->pos + 4 <= sizeof(r->pool))) {
        memcpy(key, r->pool + r->pos, 4);
        memset(r->pool + r->pos, 0, 4);
        r->pos += 4;
        return;
    }
    rng_or_abort(r, key, 4);
}

void
sw_ws_handshake_key(struct sw_ws_rng *r, char out[SW_WS_KEY_LEN + 1])
{
    uint8_t nonce[16];

    rng_or_abort(r, nonce, sizeof(nonce));
    sw__ws_base64_encode(out, nonce, sizeof(nonce));
}
