// jwt_tokens.js - tokens for the jwt_auth suite, signed by npm `jsonwebtoken`.
//
//   node jwt_tokens.js DIR
//
// DIR holds what the suite generated with openssl and wrote itself:
//   rsa.key rsa.pub      RSA 2048 key pair (RS256)
//   rsa_other.key        another RSA key ("wrong key")
//   ec.key ec.pub        P-256 key pair (ES256)
//   ec384.key            P-384 key (ES384)
//   secret_a.txt secret_b.txt secret_lit.txt   HMAC secrets (a trailing
//                        newline is not part of the secret)
// Writes DIR/jwks.json (the RSA key without "alg", the EC key with, an
// "oct" key from secret_a, and an encryption key that must be skipped),
// DIR/jwks_ec.json (the EC key alone) and prints one "NAME TOKEN" line per
// token, then "done".
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const jwt = require('jsonwebtoken');

const dir = process.argv[2];
const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
const secret = (f) => read(f).replace(/\r?\n$/, '');

const rsa = read('rsa.key');
const rsaOther = read('rsa_other.key');
const ec = read('ec.key');
const ec384 = read('ec384.key');
const rsaPub = read('rsa.pub');
const secretA = secret('secret_a.txt');
const secretB = secret('secret_b.txt');
const secretLit = secret('secret_lit.txt');

const now = Math.floor(Date.now() / 1000);
const base = {
  sub: 'alice',
  tenant: 42,
  aud: 'api',
  iss: 'https://issuer.test',
  iat: now,
  exp: now + 3600,
};
const claims = (extra, drop) => {
  const c = Object.assign({}, base, extra);
  for (const k of drop || []) delete c[k];
  return c;
};
const out = [];
const sign = (name, payload, key, opts) => {
  out.push(`${name} ${jwt.sign(payload, key, opts)}`);
};

sign('hs256', claims(), secretA, { algorithm: 'HS256' });
sign('hs256_b', claims(), secretB, { algorithm: 'HS256' });
sign('hs256_bob', claims({ sub: 'bob' }), secretA, { algorithm: 'HS256' });
sign('hs384', claims(), secretLit, { algorithm: 'HS384' });
sign('hs512', claims(), secretLit, { algorithm: 'HS512' });
sign('rs256', claims(), rsa, { algorithm: 'RS256' });
sign('es256', claims(), ec, { algorithm: 'ES256' });
sign('rs512', claims(), rsa, { algorithm: 'RS512' });
sign('es384', claims(), ec384, { algorithm: 'ES384' });
sign('hs256_wrong_key', claims(), 'not-the-secret-0123456789abcdef',
  { algorithm: 'HS256' });
sign('rs256_wrong_key', claims(), rsaOther, { algorithm: 'RS256' });
sign('expired', claims({ exp: now - 60 }), secretA, { algorithm: 'HS256' });
sign('nbf_future', claims({ nbf: now + 3600 }), secretA,
  { algorithm: 'HS256' });
sign('no_exp', claims({}, ['exp']), secretA, { algorithm: 'HS256' });
sign('aud_wrong', claims({ aud: 'other' }), secretA, { algorithm: 'HS256' });
sign('aud_array', claims({ aud: ['web', 'api'] }), secretA,
  { algorithm: 'HS256' });
sign('iss_wrong', claims({ iss: 'https://evil.test' }), secretA,
  { algorithm: 'HS256' });
// Unsigned: jsonwebtoken makes `alg: none` tokens with an empty signature.
sign('none', claims(), undefined, { algorithm: 'none' });
// The confusion attack: HMAC keyed with the RSA public key's PEM text, the
// bytes a verifier that lets the token pick the algorithm would use (the
// whole file), and the same without the final newline, as secret_file
// reads it (to show such a token is accepted where the PEM is a secret).
sign('confusion', claims(), rsaPub, { algorithm: 'HS256' });
sign('confusion_trimmed', claims(), rsaPub.replace(/\r?\n$/, ''),
  { algorithm: 'HS256' });
// A critical header extension nobody implements (RFC 7515 4.1.11).
sign('crit', claims(), secretA,
  { algorithm: 'HS256', header: { crit: ['x-unknown'], 'x-unknown': 1 } });
// An RFC 9068 access token type, which libjwt 1.10 does not decode.
sign('typ_at_jwt', claims(), secretA,
  { algorithm: 'HS256', header: { typ: 'at+jwt' } });
// A validly signed payload that is not a claims object.
sign('payload_array', Buffer.from('[1]'), secretA, { algorithm: 'HS256' });
// JWKS tokens, chosen by kid.
sign('kid_rsa', claims(), rsa, { algorithm: 'RS256', keyid: 'rsa-1' });
sign('kid_ec', claims(), ec, { algorithm: 'ES256', keyid: 'ec-1' });
sign('kid_oct', claims(), secretA, { algorithm: 'HS256', keyid: 'oct-1' });
sign('kid_unknown', claims(), rsa, { algorithm: 'RS256', keyid: 'nope' });
sign('kid_rsa_es256', claims(), ec, { algorithm: 'ES256', keyid: 'rsa-1' });

const jwk = (pem, extra) => Object.assign(
  crypto.createPublicKey(pem).export({ format: 'jwk' }), extra);
const jwks = {
  keys: [
    jwk(rsaOther, { kid: 'enc-1', use: 'enc' }),
    jwk(rsa, { kid: 'rsa-1', use: 'sig' }),
    jwk(ec, { kid: 'ec-1', alg: 'ES256' }),
    {
      kty: 'oct', kid: 'oct-1', alg: 'HS256',
      k: Buffer.from(secretA).toString('base64url'),
    },
  ],
};
fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(jwks, null, 2));
fs.writeFileSync(path.join(dir, 'jwks_ec.json'),
  JSON.stringify({ keys: [jwks.keys[2]] }));
console.log(out.join('\n'));
console.log('done');
