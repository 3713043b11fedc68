// A real OpenID provider for the sign-in tests: the certified `oidc-provider` package on Node 22.
//   node tests/oidc_provider.mjs PORT RESOURCE   (OIDC_MODULES: the node_modules it is installed in)
// Two users, alice and bob, sign in with the client-credentials grant and get JWT access tokens for
// RESOURCE (the MCP endpoint) with the scope "glm-mcp"; "brief" gets tokens that live one second.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [port, resource] = process.argv.slice(2);
const { default: Provider } = await import(pathToFileURL(join(process.env.OIDC_MODULES, 'oidc-provider', 'lib', 'index.js')).href);
const client = (id) => ({
  client_id: id, client_secret: `${id}-secret`, grant_types: ['client_credentials'],
  redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_post', scope: 'glm-mcp other',
});
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [client('alice'), client('bob'), client('brief')],
  scopes: ['glm-mcp', 'other'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator, c) => ({
        scope: 'glm-mcp other', audience: indicator, accessTokenFormat: 'jwt',
        accessTokenTTL: c.clientId === 'brief' ? 1 : 300,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log('listening'));
