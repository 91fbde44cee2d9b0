// A TypeScript-SDK MCP client (@modelcontextprotocol/sdk v1) that gets its session token from deskgate's
// /oauth/token with the SDK's own ClientCredentialsProvider, asking for a deskgate_session bound to one
// customer (RFC 9396 authorization_details added to the provider's token request), then calls tools.
// Usage: CLIENT_SECRET=... node oauth_client.mjs MCP_URL ISSUER CLIENT_ID CUSTOMER_ID OWN_ORDER FOREIGN_ORDER
// Prints one JSON line: {"tools": [...], "own": <result>, "foreign": <result>}.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [mcpUrl, issuer, clientId, customerId, ownOrder, foreignOrder] = process.argv.slice(2);
const clientSecret = process.env.CLIENT_SECRET;  // not on the command line, where `ps` shows it

class BoundSessionProvider extends ClientCredentialsProvider {
  prepareTokenRequest(scope) {
    const params = super.prepareTokenRequest(scope);
    params.set('authorization_details', JSON.stringify([{ type: 'deskgate_session', customer_id: customerId }]));
    return params;
  }
}

const provider = new BoundSessionProvider({ clientId, clientSecret, expectedIssuer: issuer });
const client = new Client({ name: 'deskgate-oauth-test', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }));
const tools = (await client.listTools()).tools.map((t) => t.name);
const own = await client.callTool({ name: 'get_order', arguments: { order_id: ownOrder } });
const foreign = await client.callTool({ name: 'get_order', arguments: { order_id: foreignOrder } });
console.log(JSON.stringify({ tools, own: own.structuredContent, foreign: foreign.structuredContent }));
await client.close();
