// Gets a client-credentials token from a running Tessera and verifies it with panva/jose,
// a JOSE library independent of Tessera's own code, against the JWKS found through discovery.
// Usage: node verify_token.mjs ISSUER CLIENT_ID CLIENT_SECRET
import { createRemoteJWKSet, jwtVerify } from "jose";

const [issuer, clientId, clientSecret] = process.argv.slice(2);
const metadata = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json();
if (metadata.issuer !== issuer) throw new Error(`metadata issuer ${metadata.issuer} != ${issuer}`);

const response = await fetch(metadata.token_endpoint, {
  method: "POST",
  headers: {
    authorization: "Basic " + Buffer.from(`${clientId}:${clientSecret}`).toString("base64"),
    "content-type": "application/x-www-form-urlencoded",
  },
  body: "grant_type=client_credentials",
});
if (response.status !== 200) throw new Error(`token endpoint answered ${response.status}`);
const { access_token } = await response.json();

const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));
// RFC 9068 §4: check typ, iss, aud, exp; only asymmetric algorithms are allowed.
const { payload, protectedHeader } = await jwtVerify(access_token, jwks, {
  issuer,
  audience: issuer,
  typ: "at+jwt",
  algorithms: ["ES256", "RS256", "EdDSA"],
  requiredClaims: ["exp", "iat", "jti", "sub", "client_id"],
});
console.log(JSON.stringify({ alg: protectedHeader.alg, sub: payload.sub, client_id: payload.client_id, scope: payload.scope }));
