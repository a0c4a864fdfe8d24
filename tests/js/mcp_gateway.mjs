// An MCP server (the official SDK's, streamable HTTP, stateless) behind `tessera gateway`, and
// the SDK's own client doing the whole MCP authorization flow against Tessera: discovery from
// the gateway's 401, RFC 9728 metadata, RFC 8414 metadata, PKCE, `resource`, login and consent
// in headless Chromium, code exchange — ending in a tool call. Prints one JSON line.
// Usage: node mcp_gateway.mjs CONFIG_JSON
//   {mcp_port, mcp_url, client_id, redirect_uri, username, password}
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

// --- The client side: an OAuthClientProvider keeping everything in memory. ---
let authorizationUrl;
let savedTokens;
let verifier;
const provider = {
  get redirectUrl() { return config.redirect_uri; },
  get clientMetadata() {
    return {
      client_name: "MCP end-to-end",
      redirect_uris: [config.redirect_uri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  },
  // Pre-registered with `tessera client create` (no dynamic registration needed).
  clientInformation() { return { client_id: config.client_id }; },
  tokens() { return savedTokens; },
  saveTokens(tokens) { savedTokens = tokens; },
  redirectToAuthorization(url) { authorizationUrl = url; },
  saveCodeVerifier(v) { verifier = v; },
  codeVerifier() { return verifier; },
};

const browser = await launchChromium();
try {
  const first = new StreamableHTTPClientTransport(new URL(config.mcp_url), { authProvider: provider });
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
  await page.getByRole("button", { name: "Allow" }).click();
  await arrived;
  const code = new URL(redirected).searchParams.get("code");
  if (!code) throw new Error(`no code in ${redirected}`);
  await first.finishAuth(code);

  const transport = new StreamableHTTPClientTransport(new URL(config.mcp_url), { authProvider: provider });
  const client = new Client({ name: "e2e", version: "1.0.0" });
  await client.connect(transport);
  const result = await client.callTool({ name: "whoami", arguments: {} });
  await client.close();
  console.log(JSON.stringify({
    authorization_url: authorizationUrl.toString(),
    token_type: savedTokens?.token_type,
    tool_result: JSON.parse(result.content[0].text),
    upstream_saw_authorization: seenAuthorization.some((a) => a !== null),
    upstream_requests: seenAuthorization.length,
  }));
} finally {
  await browser.close();
  upstream.close();
  upstream.closeAllConnections?.();
}
