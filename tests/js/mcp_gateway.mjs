// An MCP server (the official SDK's, streamable HTTP, stateless) behind `tessera gateway`, and
// the SDK's own client doing the whole MCP authorization flow against Tessera: discovery from
// the gateway's 401, RFC 9728 metadata, RFC 8414 metadata, PKCE, `resource`, login and consent
// in headless Chromium, code exchange — ending in a tool call. Prints one JSON line.
// Usage: node mcp_gateway.mjs CONFIG_JSON
//   {mode, mcp_port, mcp_url, client_id, redirect_uri, username, password, screenshot,
//    document_port}
// `mode` says how the client is known to Tessera:
//   "registered" (default): pre-registered with `tessera client create` as `client_id`;
//   "dcr": not at all — the SDK registers itself at /register (RFC 7591) first;
//   "cimd": by a client ID metadata document this script serves on loopback `document_port`,
//           whose URL is the client_id.
// For the clients the operator did not register, the consent page must name the client, show
// the redirect URI's host and mark the client unverified; `screenshot` (a PNG path) receives
// Chromium's picture of that page.
import http from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { launchChromium } from "./chromium.mjs";

const config = JSON.parse(process.argv[2]);

// --- The MCP server: knows nothing of OAuth, reads the identity the gateway verified. ---
const seenAuthorization = [];
const upstream = http.createServer(async (req, res) => {
  seenAuthorization.push(req.headers.authorization ?? null);
  let body = "";
  for await (const chunk of req) body += chunk;
  const server = new McpServer({ name: "orders-mcp", version: "1.0.0" });
  server.registerTool(
    "whoami",
    { description: "Who the gateway says is calling" },
    async (extra) => ({
      content: [{
        type: "text",
        text: JSON.stringify({
          sub: extra.requestInfo?.headers["x-tessera-sub"] ?? null,
          scope: extra.requestInfo?.headers["x-tessera-scope"] ?? null,
        }),
      }],
    }),
  );
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on("close", () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
});
await new Promise((resolve) => upstream.listen(config.mcp_port, "127.0.0.1", resolve));

// --- The client's metadata, and for "cimd" the document publishing it. ---
const mode = config.mode ?? "registered";
// For "registered", the name the test gave `tessera client create`.
const clientName = { registered: "MCP e2e", dcr: "MCP agent (self-registered)",
  cimd: "MCP agent (metadata document)" }[mode];
if (!clientName) throw new Error(`unknown mode ${mode}`);
const clientMetadata = {
  client_name: clientName,
  redirect_uris: [config.redirect_uri],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none",
};
let documentServer;
let documentUrl;
let documentFetches = 0;
if (mode === "cimd") {
  documentUrl = `http://127.0.0.1:${config.document_port}/oauth/client.json`;
  documentServer = http.createServer((req, res) => {
    if (req.url !== "/oauth/client.json") { res.writeHead(404).end(); return; }
    documentFetches += 1;
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=60" });
    res.end(JSON.stringify({ client_id: documentUrl, ...clientMetadata }));
  });
  await new Promise((resolve) => documentServer.listen(config.document_port, "127.0.0.1", resolve));
}

// --- The client side: an OAuthClientProvider keeping everything in memory. ---
let authorizationUrl;
let savedTokens;
let verifier;
let clientInfo = {
  registered: { client_id: config.client_id }, // made with `tessera client create`
  dcr: undefined, // the SDK registers and hands the answer to saveClientInformation
  // The SDK's own `clientMetadataUrl` accepts only https URLs, and a test cannot hold a
  // certificate for a public name, so the document's loopback http URL (which Tessera's
  // fetcher admits only with `outbound_allow_private_networks`) is given as the client_id.
  cimd: { client_id: documentUrl },
}[mode];
// Registrations the SDK made: successful POSTs to the authorization server's /register,
// seen through the fetch function the SDK is given for all its requests.
let registrations = 0;
const countingFetch = async (input, init) => {
  const response = await fetch(input, init);
  const url = new URL(input instanceof Request ? input.url : input.toString());
  const method = init?.method ?? (input instanceof Request ? input.method : "GET");
  if (url.pathname === "/register" && method === "POST" && response.status === 201) registrations += 1;
  return response;
};
const provider = {
  get redirectUrl() { return config.redirect_uri; },
  get clientMetadata() { return clientMetadata; },
  clientInformation() { return clientInfo; },
  saveClientInformation(info) { clientInfo = info; },
  tokens() { return savedTokens; },
  saveTokens(tokens) { savedTokens = tokens; },
  redirectToAuthorization(url) { authorizationUrl = url; },
  saveCodeVerifier(v) { verifier = v; },
  codeVerifier() { return verifier; },
};

const browser = await launchChromium();
try {
  const first = new StreamableHTTPClientTransport(new URL(config.mcp_url), { authProvider: provider, fetch: countingFetch });
  let unauthorized = false;
  try {
    await new Client({ name: "e2e", version: "1.0.0" }).connect(first);
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    unauthorized = true;
  }
  if (!unauthorized || !authorizationUrl) throw new Error("the SDK did not start an authorization");

  // Login and consent in headless Chromium; catch the redirect to the client.
  const page = await (await browser.newContext()).newPage();
  let redirected;
  const arrived = new Promise((resolve) => {
    page.route(`${config.redirect_uri}**`, async (route) => {
      redirected = route.request().url();
      await route.fulfill({ status: 200, contentType: "text/plain", body: "client reached" });
      resolve();
    });
  });
  await page.goto(authorizationUrl.toString());
  await page.getByLabel("Username").fill(config.username);
  await page.getByLabel("Password").fill(config.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  const allow = page.getByRole("button", { name: "Allow" });
  await allow.waitFor();
  // What the consent page tells the user about who asks and where the answer goes.
  const consent = {
    client_name: (await page.locator("#client-name").textContent())?.trim(),
    redirect_host: (await page.locator("#redirect-host").textContent())?.trim(),
    unverified: await page.locator("#unverified").isVisible(),
    loopback_warning: await page.locator("#loopback").isVisible(),
    text: await page.locator("body").innerText(),
  };
  const redirectHost = new URL(config.redirect_uri).hostname;
  if (consent.client_name !== clientName) throw new Error(`consent names ${consent.client_name}`);
  if (!consent.text.includes(redirectHost)) throw new Error(`no ${redirectHost} in: ${consent.text}`);
  const selfRegistered = mode !== "registered";
  if (consent.unverified !== selfRegistered || consent.text.includes("registered itself") !== selfRegistered) {
    throw new Error(`mode ${mode}, unverified marker ${consent.unverified}: ${consent.text}`);
  }
  if (config.screenshot) await page.screenshot({ path: config.screenshot, fullPage: true });
  await allow.click();
  await arrived;
  const code = new URL(redirected).searchParams.get("code");
  if (!code) throw new Error(`no code in ${redirected}`);
  await first.finishAuth(code);

  const transport = new StreamableHTTPClientTransport(new URL(config.mcp_url), { authProvider: provider, fetch: countingFetch });
  const client = new Client({ name: "e2e", version: "1.0.0" });
  await client.connect(transport);
  const result = await client.callTool({ name: "whoami", arguments: {} });
  await client.close();
  console.log(JSON.stringify({
    authorization_url: authorizationUrl.toString(),
    client_id: clientInfo?.client_id,
    registrations,
    document_fetches: documentFetches,
    consent,
    token_type: savedTokens?.token_type,
    tool_result: JSON.parse(result.content[0].text),
    upstream_saw_authorization: seenAuthorization.some((a) => a !== null),
    upstream_requests: seenAuthorization.length,
  }));
} finally {
  await browser.close();
  upstream.close();
  upstream.closeAllConnections?.();
  documentServer?.close();
  documentServer?.closeAllConnections?.();
}
