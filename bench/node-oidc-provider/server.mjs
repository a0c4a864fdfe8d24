// node-oidc-provider (panva's `oidc-provider`, the version pinned in tests/js/package.json) set
// up as the benchmark's peer: the same clients, secrets and scopes as the Tessera that
// bench/run.sh starts, its store the provider's default in-memory adapter, nothing dev-only on.
// bench/run.sh starts it pinned to the server's CPU with NODE_ENV=production; see
// bench/README.md for what each scenario measures on each side.
//
// Environment: PORT (listens on 127.0.0.1:PORT; the issuer is http://127.0.0.1:PORT),
// CC_SECRET, OPAQUE_SECRET, INTRO_OPAQUE_SECRET, WEB_SECRET (the client secrets Tessera's
// `client create` made), BENCH_USER / BENCH_PASSWORD (the one account), REDIRECT_URI.
// Prints `READY <issuer>` once it listens.
import * as crypto from "node:crypto";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

// The install of tests/js (npm ci --prefix tests/js), rather than a second lockfile here.
const require = createRequire(new URL("../../tests/js/package.json", import.meta.url));
const { default: Provider } = await import(pathToFileURL(require.resolve("oidc-provider")).href);

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const port = Number(env("PORT"));
const issuer = `http://127.0.0.1:${port}`;
const user = env("BENCH_USER");
const password = Buffer.from(env("BENCH_PASSWORD"));

// The one resource server every access token is for. oidc-provider issues a JWT access token
// only for a resource server whose `accessTokenFormat` is `jwt` (features.resourceIndicators);
// without a resource the token would be opaque and without an audience.
const RESOURCE = "urn:tessera-bench";
const SCOPE = "bench:read";
// The clients Tessera gives opaque access tokens (`--opaque-access-tokens`); the others get
// ES256 JWTs, as Tessera's do with TESSERA_ACCESS_TOKEN_SIGNING_ALG=ES256.
const OPAQUE = new Set(["bench-opaque", "bench-introspect-opaque"]);

const apiClient = (clientId, secret) => ({
  client_id: clientId,
  client_secret: env(secret),
  grant_types: ["client_credentials"],
  response_types: [],
  redirect_uris: [],
  scope: SCOPE,
  token_endpoint_auth_method: "client_secret_basic",
});

// One ES256 signing key, made at start-up as Tessera's `serve --dev` makes its own; ID tokens
// are signed with it too, so that no RSA key is needed.
const signingKey = {
  ...crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }),
  kid: crypto.randomUUID(),
  alg: "ES256",
  use: "sig",
};

const provider = new Provider(issuer, {
  clients: [
    apiClient("bench-cc", "CC_SECRET"),
    apiClient("bench-opaque", "OPAQUE_SECRET"),
    apiClient("bench-introspect-opaque", "INTRO_OPAQUE_SECRET"),
    {
      client_id: "bench-web",
      client_secret: env("WEB_SECRET"),
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      redirect_uris: [env("REDIRECT_URI")],
      scope: `openid offline_access ${SCOPE}`,
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  clientDefaults: { id_token_signed_response_alg: "ES256" },
  jwks: { keys: [signingKey] },
  scopes: ["openid", "offline_access", SCOPE],
  cookies: { keys: [crypto.randomBytes(32).toString("base64url")] },
  features: {
    // The provider's own login and consent pages are for development; ours are below.
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource, client) => {
        if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return OPAQUE.has(client.clientId)
          ? { scope: SCOPE, audience: RESOURCE, accessTokenFormat: "opaque" }
          : { scope: SCOPE, audience: RESOURCE, accessTokenFormat: "jwt", jwt: { sign: { alg: "ES256" } } };
      },
    },
  },
  // Tessera's bench-web is first-party: no consent page. The provider's recipe for skipping
  // consent is a grant made on the spot for the signed-in account. A new one for every
  // authorization, rather than the session's earlier grant, so that each of the benchmark's
  // refresh-token families has its own grant, as each has its own family at Tessera (a grant
  // lists all its tokens, and reuse detection revokes the whole grant).
  loadExistingGrant: async (ctx) => {
    const { client, session } = ctx.oidc;
    if (client.clientId !== "bench-web" || !session.accountId) return undefined;
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope(`openid offline_access ${SCOPE}`);
    grant.addResourceScope(RESOURCE, SCOPE);
    await grant.save();
    return grant;
  },
  findAccount: async (_ctx, sub) => (sub === user ? { accountId: sub, claims: async () => ({ sub }) } : undefined),
  // Every code grant of bench-web gets a refresh token, rotated at each use, as Tessera does.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
  rotateRefreshToken: true,
  // Codes and tokens are not bound to the sign-in session, as Tessera's refresh families are
  // not: by default a grant without offline_access is, and every use then looks the session
  // up and requires its latest grant for the client to be this one, which the families made
  // one after the other in one session are not.
  expiresWithSession: async () => false,
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

const loginPage = (uid) =>
  `<!doctype html><form method="post" action="/interaction/${uid}/login">` +
  `<input type="text" name="username"><input type="password" name="password">` +
  `<button type="submit">Sign in</button></form>`;

const readForm = async (req) => {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 4096) throw new Provider.errors.InvalidRequest("form too large");
  }
  return new URLSearchParams(body);
};

const passwordMatches = (given) => {
  const bytes = Buffer.from(given ?? "");
  return bytes.length === password.length && crypto.timingSafeEqual(bytes, password);
};

// The login page: GET shows the form, POST checks the one account's password and resumes the
// authorization. The interaction cookie ties it to the authorization request.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(ctx.path);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== match[1] || details.prompt.name !== "login") {
    ctx.status = 400;
    ctx.body = { error: "invalid_request", error_description: `unexpected prompt ${details.prompt.name}: ${details.prompt.reasons.join(", ")}` };
    return undefined;
  }
  if (ctx.method === "POST" && match[2]) {
    const form = await readForm(ctx.req);
    if (form.get("username") === user && passwordMatches(form.get("password"))) {
      const returnTo = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: user } }, {
        mergeWithLastSubmission: false,
      });
      ctx.redirect(returnTo);
      ctx.status = 303;
      return undefined;
    }
  }
  ctx.type = "html";
  ctx.body = loginPage(details.uid);
  return undefined;
});

provider.listen(port, "127.0.0.1", () => console.log(`READY ${issuer}`));
