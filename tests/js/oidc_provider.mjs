// Starts node's `oidc-provider` (panva), an OpenID Provider nobody here wrote, for the client
// library's interoperability tests. Prints `READY <issuer>` once it listens.
// Usage: node oidc_provider.mjs PORT
//   client `svc` / `svc-secret`: client_credentials, client_secret_basic, scope api:read
//   client `web` / `web-secret`: authorization_code + refresh_token (rotated), PKCE S256,
//     redirect https://app.example/cb; dev interactions accept any login.
import Provider from "oidc-provider";

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "svc",
      client_secret: "svc-secret",
      grant_types: ["client_credentials"],
      response_types: [],
      redirect_uris: [],
      scope: "api:read",
    },
    {
      client_id: "web",
      client_secret: "web-secret",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      redirect_uris: ["https://app.example/cb"],
    },
  ],
  scopes: ["openid", "offline_access", "api:read"],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: true } },
  // Every code grant of `web` gets a refresh token, rotated at each use (RFC 9700 §4.14.2).
  issueRefreshToken: async () => true,
  rotateRefreshToken: true,
  pkce: { required: () => true },
  cookies: { keys: ["tessera-interop-test-only"] },
  ttl: { AccessToken: 3600, ClientCredentials: 600, IdToken: 3600, RefreshToken: 86400,
         AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
});
provider.listen(port, "127.0.0.1", () => console.log(`READY ${issuer}`));
