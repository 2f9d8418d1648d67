// A holder's presentations of one SD-JWT VC, made and checked with @sd-jwt/sd-jwt-vc (a library
// credbatch did not write), so what a verifier receives is not judged by credbatch's own code.
//
//   node tests/wallet/present.mjs < {"credential": "...", "frames": {"<name>": {...}, ...}}
//
// For each presentation frame (the claims to disclose: {} discloses nothing), the library builds
// the presentation the holder would send and then verifies it as a verifier would: the issuer's
// signature against the JWKS of the issuer's JWT VC Issuer Metadata, and the status list entry.
// Prints {"<name>": {"presentation": "...", "claims": {...}}}, claims being what the verifier
// reads; exits non-zero on the first failure, with the library's error on stderr.

import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';

const MODULES = new URL('../../.tools/wallet/node_modules/', import.meta.url);

async function load(name) {
  const dir = new URL(`${name}/`, MODULES);
  const manifest = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8'));
  const exported = manifest.exports?.['.'];
  const entry = typeof exported === 'string' ? exported : exported?.import ?? manifest.module;
  return import(new URL(entry, dir).href);
}

const { SDJwtVcInstance } = await load('@sd-jwt/sd-jwt-vc');

const { credential, frames } = JSON.parse(readFileSync(0, 'utf8'));
const headerOf = (data) => JSON.parse(Buffer.from(data.split('.')[0], 'base64url').toString('utf8'));
const payloadOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));

// Keys from the issuer's SD-JWT VC metadata (the well-known path inserted before its path).
const issuerUrl = new URL(payloadOf(credential.split('~')[0]).iss);
const metadata = await (
  await fetch(`${issuerUrl.origin}/.well-known/jwt-vc-issuer${issuerUrl.pathname}`)
).json();
const issuerKeys = metadata.jwks.keys;

const sdjwt = new SDJwtVcInstance({
  hasher: (data, alg) => crypto.createHash(alg.replace('-', '')).update(data).digest(),
  hashAlg: 'sha-256',
  verifier: (data, signature) => {
    const { kid, alg } = headerOf(data);
    const jwk = issuerKeys.find((key) => key.kid === kid);
    if (!jwk) throw new Error(`kid ${kid} is not in the issuer's JWKS`);
    if (alg !== 'ES256') throw new Error(`unexpected alg ${alg}`);
    const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
    const sig = Buffer.from(signature, 'base64url');
    return crypto.verify('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' }, sig);
  },
});

const out = {};
for (const [name, frame] of Object.entries(frames)) {
  const presentation = await sdjwt.present(credential, frame);
  const verified = await sdjwt.verify(presentation, { requiredClaimKeys: ['iss', 'vct', 'status'] });
  out[name] = { presentation, claims: verified.payload };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
