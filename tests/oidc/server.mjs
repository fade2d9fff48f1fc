// A real OpenID provider (panva/oidc-provider) for Interlock's OIDC tests, on loopback only.
//
//   node server.mjs <port>
//
// Client `interlock-test` / secret `interlock-test-secret` gets JWT access tokens by
// client_credentials with `resource=<audience>`:
//   urn:interlock:api     the audience the tests trust, with `groups` from the `groups` param
//   urn:interlock:other   another resource server (wrong audience)
//   urn:interlock:short   access tokens that live 1 second (expiry)
//   urn:interlock:future  tokens whose `nbf` is an hour ahead
//
// Client `interlock-console` is the console's public client (authorization code + PKCE, no
// secret; a native client, so any loopback port is a valid redirect and CORS origin). Its
// login page is oidc-provider's own development login form: any login name is accepted (the
// password field is ignored) and becomes the token's `sub`, then its consent page asks to
// confirm; the groups the access token
// carries come from ACCOUNT_GROUPS below.
// The provider's signing keys are generated here at start (RSA, node:crypto) and again on
// each rotation; nothing is read from disk.
//
// Admin endpoints (test control, loopback only):
//   POST /__rotate?keep_old=1|0  a new provider with a new key first in its JWKS; the old
//                                key stays published (keep_old=1) or is removed (0)
//   GET  /__stats                {"jwks_requests": n, "kids": [...]} (n counts GET /jwks)

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.OIDC_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.mjs <port>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const RESOURCES = {
  'urn:interlock:api': { ttl: 300 },
  'urn:interlock:other': { ttl: 300 },
  'urn:interlock:short': { ttl: 1 },
  'urn:interlock:future': { ttl: 7200, nbfAhead: 3600 },
};

// Login name -> the groups its access tokens carry (console login tests).
const ACCOUNT_GROUPS = {
  'olivia': ['interlock-operators'],
  'vera': ['interlock-viewers'],
};
const CONSOLE_CLIENT = 'interlock-console';
const LOOPBACK_ORIGIN = /^http:\/\/127\.0\.0\.1:\d{1,5}$/;

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

function buildProvider(keys) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'interlock-test',
      client_secret: 'interlock-test-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    }, {
      client_id: CONSOLE_CLIENT,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/login/callback'],
    }],
    clientBasedCORS: (ctx, origin, client) =>
      client.clientId === CONSOLE_CLIENT && LOOPBACK_ORIGIN.test(origin),
    findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    jwks: { keys },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:interlock:api',
        getResourceServerInfo: (ctx, resource) => {
          const known = RESOURCES[resource];
          if (!known) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'api',
            audience: resource,
            accessTokenTTL: known.ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    // Claims the test asks for (`groups=a,b` on the token request) become token claims.
    extraTokenClaims: (ctx, token) => {
      if (token.accountId) return { groups: ACCOUNT_GROUPS[token.accountId] ?? [] };
      const raw = ctx.oidc.body?.groups;
      return raw === undefined ? undefined : { groups: String(raw).split(',').filter(Boolean) };
    },
    ttl: {
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
    },
    formats: {
      customizers: {
        jwt: (ctx, token, jwt) => {
          const ahead = RESOURCES[jwt.payload.aud]?.nbfAhead;
          if (ahead) jwt.payload.nbf = jwt.payload.iat + ahead;
        },
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

let keys = [newKey()];
let provider = buildProvider(keys);
let jwksRequests = 0;

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/__rotate' && req.method === 'POST') {
    const keepOld = url.searchParams.get('keep_old') === '1';
    keys = [newKey(), ...(keepOld ? keys : [])];
    provider = buildProvider(keys);
    return json(res, 200, { kids: keys.map((k) => k.kid) });
  }
  if (url.pathname === '/__stats' && req.method === 'GET') {
    return json(res, 200, { jwks_requests: jwksRequests, kids: keys.map((k) => k.kid) });
  }
  if (url.pathname === '/jwks') jwksRequests += 1;
  return provider.callback()(req, res);
});

server.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
