// A holder's wallet on an earlier OpenID4VCI draft, from a library credbatch did not write.
//
//   node tests/wallet_draft/wallet.mjs <offer link> [tx_code]
//
// @sphereon/oid4vci-client 0.16.0 speaks draft 13: it resolves the offer by reference, finds
// the issuer's metadata and then the authorization server's at the well-known paths appended
// to the issuer (openid-configuration first, then oauth-authorization-server), exchanges the
// pre-authorized code (with the transaction code as draft 13's tx_code) for an access token,
// and requests the credential with a singular `proof` in draft 13's shape (format and vct).
// Draft 13 has no nonce endpoint (its c_nonce comes with the token); credbatch hands nonces
// out only at its nonce endpoint, so this wallet fetches one there, as drafts 14 and later do.
//
// Prints one JSON object: {"step": "done", ...} with the credential, or {"step": <where it
// stopped>, "error": ...}; exits non-zero unless done. The package is installed by
// `make wallet-draft-deps` under .tools/wallet_draft (pinned by package-lock.json).

import crypto from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../.tools/wallet_draft/', import.meta.url));
const {
  AccessTokenClient,
  CredentialOfferClient,
  CredentialRequestClientBuilder,
  MetadataClient,
  ProofOfPossessionBuilder,
} = require('@sphereon/oid4vci-client');
const { OpenId4VCIVersion } = require('@sphereon/oid4vci-common');

const [offerLink, txCode] = process.argv.slice(2);
if (!offerLink) {
  console.error('usage: node wallet.mjs <offer link> [tx_code]');
  process.exit(2);
}

const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
const walletKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const walletJwk = (({ kty, crv, x, y }) => ({ kty, crv, x, y }))(
  walletKey.publicKey.export({ format: 'jwk' }),
);

let step = 'offer';
const seen = {};
try {
  const offer = await CredentialOfferClient.fromURI(offerLink, { resolve: true });
  seen.version = offer.version;
  step = 'metadata';
  const metadata = await MetadataClient.retrieveAllMetadataFromCredentialOffer(offer);
  seen.token_endpoint = metadata.token_endpoint;
  seen.authorization_server_type = metadata.authorizationServerType;
  step = 'token';
  const tokenResponse = await new AccessTokenClient().acquireAccessToken({
    credentialOffer: offer,
    metadata,
    pin: txCode,
  });
  if (!tokenResponse.successBody) throw new Error(JSON.stringify(tokenResponse.errorBody));
  const accessToken = tokenResponse.successBody;
  step = 'nonce';
  const nonceResponse = await fetch(`${offer.credential_offer.credential_issuer}/nonce`, {
    method: 'POST',
  });
  const { c_nonce: nonce } = await nonceResponse.json();
  if (!nonce) throw new Error(`no c_nonce (status ${nonceResponse.status})`);
  step = 'credential';
  const [configurationId] = offer.credential_offer.credential_configuration_ids;
  const configuration =
    metadata.credentialIssuerMetadata.credential_configurations_supported[configurationId];
  const proof = ProofOfPossessionBuilder.manual({
    version: OpenId4VCIVersion.VER_1_0_13,
    mode: 'pop',
    callbacks: {
      signCallback: async ({ header, payload }) => {
        const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
        const signature = crypto.sign('sha256', Buffer.from(input), {
          key: walletKey.privateKey,
          dsaEncoding: 'ieee-p1363',
        });
        return `${input}.${b64u(signature)}`;
      },
    },
  })
    .withJWK(walletJwk)
    .withAlg('ES256')
    .withTyp('openid4vci-proof+jwt')
    // In 'pop' mode the library names the proof's audience, the credential issuer, "issuer".
    .withIssuer(offer.credential_offer.credential_issuer)
    .withAccessTokenNonce(nonce);
  const credentialClient = CredentialRequestClientBuilder.fromCredentialOffer({
    credentialOffer: offer,
    metadata,
  })
    .withVersion(OpenId4VCIVersion.VER_1_0_13)
    .withTokenFromResponse(accessToken)
    .build();
  const response = await credentialClient.acquireCredentialsUsingProof({
    proofInput: proof,
    credentialTypes: [configuration.vct],
    format: 'vc+sd-jwt',
  });
  if (!response.successBody) throw new Error(JSON.stringify(response.errorBody));
  const body = response.successBody;
  const credential = body.credential ?? body.credentials?.[0]?.credential;
  if (typeof credential !== 'string') throw new Error(`no credential in ${JSON.stringify(body)}`);
  const [jwt] = credential.split('~');
  const payload = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
  const cnf = payload.cnf?.jwk ?? {};
  process.stdout.write(
    `${JSON.stringify({
      step: 'done',
      ...seen,
      iss: payload.iss,
      vct: payload.vct,
      cnf_matches_wallet_key: ['kty', 'crv', 'x', 'y'].every((k) => cnf[k] === walletJwk[k]),
    })}\n`,
  );
} catch (error) {
  process.stdout.write(`${JSON.stringify({ step, ...seen, error: String(error?.message ?? error) })}\n`);
  process.exit(1);
}
