// oauth4webapi (panva) calls a DPoP-protected API (RFC 9449 §7): a DPoP-bound token from a
// running Tessera, then the API (orders-api) through protectedResourceRequest with proofs of
// the same key; and, to be refused, the same token without a proof (Bearer) and with proofs of
// another key. Prints what the Rust test checks as one JSON line.
//
// Usage: node oauth4webapi_dpop_resource.mjs ISSUER CLIENT_ID CLIENT_SECRET API

import * as oauth from 'oauth4webapi'

const [issuerUrl, clientId, clientSecret, api] = process.argv.slice(2)
const insecure = { [oauth.allowInsecureRequests]: true } // loopback http in the test
const issuer = new URL(issuerUrl)
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }),
)
const client = { client_id: clientId }
const auth = oauth.ClientSecretBasic(clientSecret)
const keyPair = await oauth.generateKeyPair('ES256')
const DPoP = oauth.DPoP(client, keyPair)
const tokenResponse = await oauth.clientCredentialsGrantRequest(
  as, client, auth, { scope: 'orders:read' }, { ...insecure, DPoP },
)
const tokens = await oauth.processClientCredentialsResponse(as, client, tokenResponse)
const orders = new URL('/orders', api)

// The refusal of a request, as the library reports it (a WWW-Authenticate challenge).
async function refusal(request) {
  try {
    const response = await request()
    return { status: response.status, challenges: [] }
  } catch (e) {
    if (!(e instanceof oauth.WWWAuthenticateChallengeError)) throw e
    return { status: e.status, challenges: e.cause.map((c) => ({ scheme: c.scheme, ...c.parameters })) }
  }
}

const accepted = await oauth.protectedResourceRequest(
  tokens.access_token, 'GET', orders, new Headers(), null, { ...insecure, DPoP },
)
const acceptedBody = await accepted.json()
// A second call makes a fresh proof (a new jti): also accepted.
const again = await oauth.protectedResourceRequest(
  tokens.access_token, 'GET', orders, new Headers(), null, { ...insecure, DPoP },
)
const bearer = await refusal(() =>
  oauth.protectedResourceRequest(tokens.access_token, 'GET', orders, new Headers(), null, insecure))
const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
const otherKey = await refusal(() =>
  oauth.protectedResourceRequest(
    tokens.access_token, 'GET', orders, new Headers(), null, { ...insecure, DPoP: thief },
  ))

console.log(JSON.stringify({
  token_type: tokens.token_type,
  status: accepted.status,
  orders: acceptedBody,
  again: again.status,
  bearer,
  other_key: otherKey,
}))
