// A real OpenID provider (node-oidc-provider) for Outpost's login tests.
//
// Listens on 127.0.0.1 (a free port, or OIDC_PORT) and prints one line
// `issuer=http://127.0.0.1:PORT` on stdout when it is ready. It serves its
// own HTML interactions: a login page (with a search form first, which has
// no password field, then the login form) that checks passwords, and a
// consent page with Approve / Deny buttons. devInteractions are off: they
// accept any password.
//
// Client: outpost / outpost-secret (client_secret_basic), redirect URI
// http://127.0.0.1/outpost/callback, authorization code + PKCE (required)
// and refresh tokens. Users: alice / alice-password, bob / bob-password.
// ID tokens are RS256 with a key made at start (published at jwks_uri).
//
// Stop it with SIGTERM (the test does, by PID).

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const USERS = { alice: 'alice-password', bob: 'bob-password' };
const REDIRECT_URI = 'http://127.0.0.1/outpost/callback';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body>
<header><form id="search" method="get" action="/search"><input type="search" name="q"><button>Search</button></form></header>
<main>${body}</main></body></html>`;
}

function loginPage(uid, error) {
  return page('Sign in', `<h1>Sign in</h1>${error ? `<p class="error">${esc(error)}</p>` : ''}
<form autocomplete="off" action="/interaction/${esc(uid)}/login" method="post">
<input type="hidden" name="uid" value="${esc(uid)}">
<input required type="text" name="login" placeholder="Enter any login" autofocus="on">
<input required type="password" name="password" placeholder="and password">
<button type="submit" class="login login-submit">Sign-in</button>
</form>`);
}

function consentPage(uid, client, scopes) {
  return page('Authorize', `<h1>Authorize ${esc(client)}</h1><p>Scopes: ${esc(scopes)}</p>
<form autocomplete="off" action="/interaction/${esc(uid)}/confirm" method="post">
<button type="submit" name="decision" value="deny">Deny</button>
<button autofocus type="submit" name="decision" value="approve">Continue</button>
</form>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error('body too large');
  }
  return new URLSearchParams(body);
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'outpost-test-1', alg: 'RS256', use: 'sig' };

const server = createServer();
await new Promise((resolve) => server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'outpost',
    client_secret: 'outpost-secret',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(_ctx, id) {
    if (!Object.hasOwn(USERS, id)) return undefined;
    return { accountId: id, async claims() { return { sub: id, name: id, preferred_username: id }; } };
  },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
  scopes: ['openid', 'offline_access', 'profile'],
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false } },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  pkce: { required: () => true },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  jwks: { keys: [jwk] },
  ttl: { AccessToken: 300, IdToken: 300, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
});

const callback = provider.callback();

async function interaction(req, res, parts) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  const html = (status, text) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(text);
  };
  if (req.method === 'GET' && parts.length === 1) {
    if (prompt.name === 'login') return html(200, loginPage(uid));
    const scopes = [...(prompt.details.missingOIDCScope || [])].join(' ');
    return html(200, consentPage(uid, params.client_id, scopes));
  }
  if (req.method === 'POST' && parts[1] === 'login') {
    const form = await readForm(req);
    const login = form.get('login') || '';
    if (!Object.hasOwn(USERS, login) || USERS[login] !== form.get('password')) {
      return html(200, loginPage(uid, 'Invalid login or password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && parts[1] === 'confirm') {
    const form = await readForm(req);
    if (form.get('decision') === 'deny') {
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'refused' }, { mergeWithLastSubmission: false });
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }
  return html(404, page('Not found', '<h1>Not found</h1>'));
}

server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  const parts = url.pathname.split('/').filter(Boolean);
  if (parts[0] === 'interaction' && parts.length >= 2) {
    try {
      await interaction(req, res, parts.slice(1));
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction error: ${err.name}`);
    }
    return;
  }
  if (url.pathname === '/search') {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(page('Search', '<p>No results.</p>'));
    return;
  }
  callback(req, res);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(`issuer=${issuer}`);
