// A real OpenID provider for the sign-in tests: the certified `oidc-provider` package on Node 22.
//   node tests/oidc_provider.mjs PORT RESOURCE   (OIDC_MODULES: the node_modules it is installed in)
// Two users, alice and bob, sign in with the client-credentials grant and get JWT access tokens for
// RESOURCE (the MCP endpoint) with the scope "glm-mcp"; "brief" gets tokens that live one second.
// Tokens are signed RS256 with the provider's current key, published at its jwks_uri. POST /test/rotate-keys
// rotates it as a provider does: the current key is withdrawn (gone from the JWKS), a new one signs from then
// on; the answer is the new key's kid. The package rotates keys only at construction, so this swaps its
// keystore with the package's own initialisation (lib/helpers/initialize_keystore.js), on the running provider.
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [port, resource] = process.argv.slice(2);
const lib = (path) => import(pathToFileURL(join(process.env.OIDC_MODULES, 'oidc-provider', 'lib', path)).href);
const { default: Provider } = await lib('index.js');
const { default: initializeKeystore } = await lib('helpers/initialize_keystore.js');

let generation = 0;
const signingKeys = () => {
  generation += 1;
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: `key-${generation}`, alg: 'RS256', use: 'sig' }] };
};
const client = (id) => ({
  client_id: id, client_secret: `${id}-secret`, grant_types: ['client_credentials'],
  redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_post', scope: 'glm-mcp other',
});
const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks: signingKeys(),
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
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/test/rotate-keys') {
    const jwks = signingKeys();
    initializeKeystore.call(provider, jwks);
    ctx.body = { kid: jwks.keys[0].kid };
    return;
  }
  await next();
});
provider.listen(Number(port), '127.0.0.1', () => console.log('listening'));
