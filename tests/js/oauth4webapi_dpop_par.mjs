// oauth4webapi (panva), a client library written by nobody here, against a running Tessera:
// a client-credentials token with a DPoP proof from a fresh key (RFC 9449), and a pushed
// authorization request (RFC 9126). Prints what the Rust test checks as one JSON line.
//
// Usage: node oauth4webapi_dpop_par.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI

import * as oauth from 'oauth4webapi'
import { calculateJwkThumbprint, exportJWK } from 'jose'

const [issuerUrl, clientId, clientSecret, redirectUri] = process.argv.slice(2)
const insecure = { [oauth.allowInsecureRequests]: true } // the test server is loopback http
const issuer = new URL(issuerUrl)
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }),
)
const client = { client_id: clientId }
const auth = oauth.ClientSecretBasic(clientSecret)

const keyPair = await oauth.generateKeyPair('ES256')
const DPoP = oauth.DPoP(client, keyPair)
const tokenResponse = await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: 'a:r' }, { ...insecure, DPoP })
const tokens = await oauth.processClientCredentialsResponse(as, client, tokenResponse)

const codeVerifier = oauth.generateRandomCodeVerifier()
const parResponse = await oauth.pushedAuthorizationRequest(as, client, auth, {
  response_type: 'code',
  redirect_uri: redirectUri,
  scope: 'openid',
  state: 'xyz',
  code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: 'S256',
}, insecure)
const pushed = await oauth.processPushedAuthorizationResponse(as, client, parResponse)

console.log(JSON.stringify({
  token_type: tokens.token_type,
  access_token: tokens.access_token,
  jkt: await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)),
  request_uri: pushed.request_uri,
  expires_in: pushed.expires_in,
}))
