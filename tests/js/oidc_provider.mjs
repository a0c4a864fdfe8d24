// Starts node's `oidc-provider` (panva), an OpenID Provider nobody here wrote, for the client
// library's interoperability tests. Prints `READY <issuer>` once it listens.
// Usage: node oidc_provider.mjs PORT [PATH FORM]
//   With PATH (e.g. /oidc) the issuer is http://127.0.0.1:PORT/PATH, the provider mounted there
//   behind a front that publishes its metadata at one place only, FORM:
//     appended  PATH/.well-known/openid-configuration (OIDC Discovery 1.0 §4, the provider's own)
//     inserted  /.well-known/oauth-authorization-server/PATH (RFC 8414 §3.1)
//     inserted-openid  /.well-known/openid-configuration/PATH (RFC 8414 §5)
//   and answers 404 at the other two, so that a client finds the document only through FORM.
//   client `svc` / `svc-secret`: client_credentials, client_secret_basic, scope api:read
//   client `web` / `web-secret`: authorization_code + refresh_token (rotated), PKCE S256,
//     redirect https://app.example/cb; dev interactions accept any login.
import * as http from "node:http";
import Provider from "oidc-provider";

const port = Number(process.argv[2]);
const path = process.argv[3] ?? "";
const form = process.argv[4];
const issuer = `http://127.0.0.1:${port}${path}`;
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
if (!path) {
  provider.listen(port, "127.0.0.1", () => console.log(`READY ${issuer}`));
} else {
  const callback = provider.callback();
  const ownMetadata = `${path}/.well-known/openid-configuration`;
  const published = {
    appended: ownMetadata,
    inserted: `/.well-known/oauth-authorization-server${path}`,
    "inserted-openid": `/.well-known/openid-configuration${path}`,
  }[form];
  if (!published) throw new Error(`unknown form ${form}`);
  // Mounted as a framework mounts it: the path taken off `url`, kept in `originalUrl`, from
  // which the provider builds its endpoints' URLs.
  const forward = (req, res, originalUrl) => {
    req.originalUrl = originalUrl;
    req.url = originalUrl.slice(path.length);
    callback(req, res);
  };
  http.createServer((req, res) => {
    const target = req.url.split("?")[0];
    if (target === published) {
      forward(req, res, ownMetadata);
    } else if (target !== ownMetadata && target.startsWith(`${path}/`)) {
      forward(req, res, req.url);
    } else {
      res.writeHead(404).end();
    }
  }).listen(port, "127.0.0.1", () => console.log(`READY ${issuer}`));
}
