// Drives headless Chromium through Tessera's login and consent pages, then exchanges the code
// and verifies the ID token with panva/jose. Prints one JSON line with the results.
// Usage: node browser_flow.mjs CONFIG_JSON
//   {issuer, authorize_url, redirect_uri, username, password, client_id, client_secret,
//    code_verifier, nonce, screenshot_dir?}
import { launchChromium, screenshot } from "./chromium.mjs";
import { createRemoteJWKSet, jwtVerify } from "jose";

const config = JSON.parse(process.argv[2]);
const browser = await launchChromium();
const shot = (page, name) => screenshot(page, config.screenshot_dir, name);
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The client's redirect URI has no server: catch the navigation there.
  let redirected;
  const arrived = new Promise((resolve) => {
    page.route(`${config.redirect_uri}**`, async (route) => {
      redirected = route.request().url();
      await route.fulfill({ status: 200, contentType: "text/plain", body: "client reached" });
      resolve();
    });
  });
  await page.goto(config.authorize_url);
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await shot(page, "login");
  await page.getByLabel("Username").fill(config.username);
  await page.getByLabel("Password").fill(config.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Allow access?" }).waitFor();
  await shot(page, "consent");
  const consentText = await page.locator("main").innerText();
  await page.getByRole("button", { name: "Allow" }).click();
  await arrived;

  const params = new URL(redirected).searchParams;
  const response = await fetch(`${config.issuer}/token`, {
    method: "POST",
    headers: {
      authorization: "Basic " + Buffer.from(`${config.client_id}:${config.client_secret}`).toString("base64"),
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: config.redirect_uri,
      code_verifier: config.code_verifier,
    }),
  });
  const tokens = await response.json();
  if (response.status !== 200) throw new Error(`token endpoint: ${response.status} ${JSON.stringify(tokens)}`);
  const jwks = createRemoteJWKSet(new URL(`${config.issuer}/jwks.json`));
  const { payload } = await jwtVerify(tokens.id_token, jwks, {
    issuer: config.issuer,
    audience: config.client_id,
    algorithms: ["RS256"],
    requiredClaims: ["sub", "auth_time", "nonce", "at_hash"],
  });
  if (payload.nonce !== config.nonce) throw new Error("nonce mismatch");
  console.log(JSON.stringify({
    state: params.get("state"),
    iss: params.get("iss"),
    consent_text: consentText,
    id_token_claims: payload,
  }));
} finally {
  await browser.close();
}
