// The admin API's OpenAPI document, checked by tools nobody here wrote:
// @seriousme/openapi-schema-validator validates it against the OpenAPI 3.1 JSON Schema, and
// openapi-client-axios builds a client from it at run time, which makes one call.
// Usage: node admin_openapi.mjs ISSUER CLIENT_ID CLIENT_SECRET
// Prints {"openapi", "valid", "errors", "users"} as JSON.
import { Validator } from "@seriousme/openapi-schema-validator";
import { OpenAPIClientAxios } from "openapi-client-axios";

const [issuer, clientId, clientSecret] = process.argv.slice(2);
const document = await (await fetch(`${issuer}/admin/v1/openapi.json`)).json();

const validator = new Validator();
const result = await validator.validate(structuredClone(document));

// A token for the client, at the token URL the document names.
const flows = document.components.securitySchemes.tessera.flows;
const tokenResponse = await fetch(flows.clientCredentials.tokenUrl, {
  method: "POST",
  headers: {
    "content-type": "application/x-www-form-urlencoded",
    authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`,
  },
  body: new URLSearchParams({ grant_type: "client_credentials", scope: "admin:users" }),
});
const { access_token: token } = await tokenResponse.json();

// The generated client: operations by their operationId, at the document's server.
const api = new OpenAPIClientAxios({ definition: document });
const client = await api.init();
const users = await client.listUsers(null, null, {
  headers: { authorization: `Bearer ${token}` },
});

console.log(
  JSON.stringify({
    openapi: validator.version,
    valid: result.valid,
    errors: result.errors ?? null,
    users: users.data,
  }),
);
