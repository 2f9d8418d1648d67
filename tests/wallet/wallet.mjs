// A holder's wallet assembled from libraries credbatch did not write, run against a live issuer.
//
//   node tests/wallet/wallet.mjs <offer link> [tx_code]
//
// @openid4vc/openid4vci and @openid4vc/oauth2 take the pre-authorized code flow (offer, token
// with the transaction code, nonce, key proof, credential); @sd-jwt/sd-jwt-vc then checks the
// credential as a verifier would: the issuer's signature against the JWKS the issuer publishes,
// the key binding of a presentation the wallet signs with the key the credential is bound to,
// and the credential's entry in its status list. Prints one JSON object; exits non-zero on the
// first failure, with the library's error on stderr.
//
// The packages are installed by `make wallet-deps` under .tools/wallet (pinned by this
// directory's package-lock.json), outside the source tree, so they are loaded by path.

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

const { Openid4vciClient, setGlobalConfig } = await load('@openid4vc/openid4vci');
const { clientAuthenticationAnonymous } = await load('@openid4vc/oauth2');
const { SDJwtVcInstance } = await load('@sd-jwt/sd-jwt-vc');

const [offerLink, txCode] = process.argv.slice(2);
if (!offerLink) {
  console.error('usage: node wallet.mjs <offer link> [tx_code]');
  process.exit(2);
}
// The test issuer listens on plain HTTP on loopback.
setGlobalConfig({ allowInsecureUrls: true });

const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
const json64 = (value) => b64u(JSON.stringify(value));

// The wallet's key: P-256, the key the credential is to be bound to.
const walletKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const walletJwk = (({ kty, crv, x, y }) => ({ kty, crv, x, y }))(
  walletKey.publicKey.export({ format: 'jwk' }),
);

function signEs256(input) {
  return b64u(
    crypto.sign('sha256', Buffer.from(input), { key: walletKey.privateKey, dsaEncoding: 'ieee-p1363' }),
  );
}

// JWS verification with a public JWK, for the algorithms an issuer may publish.
function verifyWithJwk(jwk, alg, data, signature) {
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const sig = Buffer.from(signature, 'base64url');
  const digests = { ES256: 'sha256', ES384: 'sha384', ES512: 'sha512', EdDSA: null, Ed25519: null };
  if (!(alg in digests)) throw new Error(`unsupported alg ${alg}`);
  return crypto.verify(digests[alg], Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' }, sig);
}

const headerOf = (data) => JSON.parse(Buffer.from(data.split('.')[0], 'base64url').toString('utf8'));

const client = new Openid4vciClient({
  callbacks: {
    fetch,
    hash: (data, alg) => crypto.createHash(alg.replace('-', '')).update(data).digest(),
    generateRandom: (length) => crypto.randomBytes(length),
    clientAuthentication: clientAuthenticationAnonymous(),
    signJwt: async (signer, { header, payload }) => {
      if (signer.method !== 'jwk') throw new Error(`this wallet signs only with its jwk, not ${signer.method}`);
      const input = `${json64(header)}.${json64(payload)}`;
      return { jwt: `${input}.${signEs256(input)}`, signerJwk: walletJwk };
    },
  },
});

// 1. The offer, the issuer's metadata, and an access token for the pre-authorized code.
const offer = await client.resolveCredentialOffer(offerLink);
const issuerMetadata = await client.resolveIssuerMetadata(offer.credential_issuer);
const { accessTokenResponse } = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
  credentialOffer: offer,
  issuerMetadata,
  txCode,
});
// 2. A fresh nonce, a proof of the wallet key over it, and the credential.
const { c_nonce: nonce } = await client.requestNonce({ issuerMetadata });
const [configurationId] = offer.credential_configuration_ids;
const { jwt: proof } = await client.createCredentialRequestJwtProof({
  issuerMetadata,
  credentialConfigurationId: configurationId,
  nonce,
  signer: { method: 'jwk', publicJwk: walletJwk, alg: 'ES256' },
});
const { credentialResponse } = await client.retrieveCredentials({
  issuerMetadata,
  accessToken: accessTokenResponse.access_token,
  credentialConfigurationId: configurationId,
  proofs: { jwt: [proof] },
});
const credential = credentialResponse.credentials[0].credential;

// 3. Verify as a verifier would: keys from the issuer's SD-JWT VC metadata (JWT VC Issuer
// Metadata: the well-known path inserted before the issuer's path).
const issuerUrl = new URL(offer.credential_issuer);
const jwtVcIssuer = await (
  await fetch(`${issuerUrl.origin}/.well-known/jwt-vc-issuer${issuerUrl.pathname}`)
).json();
const issuerKeys = jwtVcIssuer.jwks.keys;

// What the credential's status list entry said; null until the library looked it up.
let statusSeen = null;
const sdjwt = new SDJwtVcInstance({
  hasher: (data, alg) => crypto.createHash(alg.replace('-', '')).update(data).digest(),
  hashAlg: 'sha-256',
  // The credential and the status list token: the key the JWS header names, from the JWKS.
  verifier: (data, signature) => {
    const { kid, alg } = headerOf(data);
    const jwk = issuerKeys.find((key) => key.kid === kid);
    if (!jwk) throw new Error(`kid ${kid} is not in the issuer's JWKS`);
    return verifyWithJwk(jwk, alg, data, signature);
  },
  // The presentation's key binding: the key the credential's cnf names.
  kbVerifier: (data, signature, payload) =>
    verifyWithJwk(payload.cnf.jwk, headerOf(data).alg, data, signature),
  statusValidator: async (status) => {
    statusSeen = status;
    if (status !== 0) throw new Error(`status list entry is ${status}, not VALID (0)`);
  },
  kbSigner: (data) => signEs256(data),
  kbSignAlg: 'ES256',
});

// 4. The credential type as a wallet renders it: the library resolves the credential's vct
// to its SD-JWT VC Type Metadata through this fetcher, which checks vct#integrity as W3C
// Subresource Integrity defines it (sha256-<base64 digest> of the bytes served).
let integrityChecked = false;
const vctFetcher = async (uri, integrity) => {
  const response = await fetch(uri);
  if (!response.ok) throw new Error(`type metadata ${uri}: HTTP ${response.status}`);
  const body = Buffer.from(await response.arrayBuffer());
  if (!integrity) throw new Error('the credential carries no vct#integrity');
  const [alg, digest] = [integrity.slice(0, integrity.indexOf('-')), integrity.slice(integrity.indexOf('-') + 1)];
  if (alg !== 'sha256') throw new Error(`unexpected integrity algorithm ${alg}`);
  const actual = crypto.createHash('sha256').update(body).digest('base64');
  if (actual !== digest) throw new Error(`vct#integrity ${digest} does not match the document (${actual})`);
  integrityChecked = true;
  return JSON.parse(body.toString('utf8'));
};
const typeReader = new SDJwtVcInstance({
  hasher: (data, alg) => crypto.createHash(alg.replace('-', '')).update(data).digest(),
  vctFetcher,
});
const resolvedType = await typeReader.getVct(credential);
const typeMetadata = resolvedType?.mergedTypeMetadata ?? resolvedType;

const audience = 'https://verifier.example';
const kbNonce = b64u(crypto.randomBytes(16));
const presentation = await sdjwt.present(credential, undefined, {
  kb: { payload: { iat: Math.floor(Date.now() / 1000), aud: audience, nonce: kbNonce } },
});
// verify() checks the signature, the key binding (with this nonce) and the status list entry
// (statusValidator above refuses any status but 0, VALID).
const verified = await sdjwt.verify(presentation, {
  keyBindingNonce: kbNonce,
  requiredClaimKeys: ['iss', 'vct', 'cnf', 'status'],
});
const cnf = verified.payload.cnf?.jwk ?? {};

process.stdout.write(
  `${JSON.stringify({
    credential_verified: true,
    issuer_display: issuerMetadata.credentialIssuer.display ?? [],
    type_metadata: typeMetadata ?? null,
    vct_integrity_checked: integrityChecked,
    iss: verified.payload.iss,
    vct: verified.payload.vct,
    cnf_matches_wallet_key: ['kty', 'crv', 'x', 'y'].every((k) => cnf[k] === walletJwk[k]),
    key_binding: verified.kb?.payload?.nonce === kbNonce && verified.kb?.payload?.aud === audience,
    status: statusSeen === null ? 'unchecked' : statusSeen === 0 ? 'valid' : String(statusSeen),
    status_index: verified.payload.status?.status_list?.idx,
    disclosed: Object.fromEntries(
      Object.entries(verified.payload).filter(
        ([k]) => !['iss', 'vct', 'vct#integrity', 'cnf', 'status', 'iat', 'exp', 'nbf', '_sd_alg', 'sub'].includes(k),
      ),
    ),
  })}\n`,
);
