// A small OpenID Connect provider for the tests, on loopback, in plain node:
// discovery, a JWKS, an /authorize that approves at once (the user is the
// test's choice), and a /token that checks the client, the code, the
// redirect URI and the PKCE S256 verifier, and answers with an ID token
// really signed with RS256.
//
// `mode` makes the next ID tokens wrong in one way each, as a broken or
// hostile provider would: 'wrongAudience', 'expired', 'badSignature' (signed
// by a key that is not in the JWKS, under the same kid), 'unverified'
// (email_verified false), 'unknownEmail' (an email no account has).

import { createServer } from 'node:http';
import { createHash, createSign, generateKeyPairSync, randomBytes } from 'node:crypto';

const b64url = (/** @type {Buffer|string} */ b) => Buffer.from(b).toString('base64url');

/**
 * @param {{clientId: string, clientSecret: string, email?: string}} opts
 */
export async function startProvider(opts) {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'test-key-1';
  const jwk = { ...key.publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
  /** @type {Map<string, any>} */
  const codes = new Map();
  const provider = {
    issuer: '',
    clientId: opts.clientId,
    clientSecret: opts.clientSecret,
    /** The user /authorize approves. */
    email: opts.email || 'agent1@demo.local',
    /** @type {'ok'|'wrongAudience'|'expired'|'badSignature'|'unverified'|'unknownEmail'} */
    mode: 'ok',
    /** Every code and ID token handed out, to look for them in logs. */
    issued: /** @type {string[]} */ ([]),
    /** Token requests answered with an ID token, and refused (with why). */
    tokens: 0,
    refused: /** @type {string[]} */ ([]),
    authorizations: 0,
    stop: () => new Promise((r) => server.close(r)),
  };

  /** @param {any} claims @param {any} signer */
  function sign(claims, signer) {
    const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
    const body = b64url(JSON.stringify(claims));
    const s = createSign('RSA-SHA256');
    s.update(`${head}.${body}`);
    return `${head}.${body}.${b64url(s.sign(signer.privateKey))}`;
  }

  /** @param {any} grant */
  function idToken(grant) {
    const now = Math.floor(Date.now() / 1000);
    const mode = grant.mode;
    const claims = {
      iss: provider.issuer,
      sub: `user-${grant.email}`,
      aud: mode === 'wrongAudience' ? 'someone-else' : provider.clientId,
      iat: mode === 'expired' ? now - 1200 : now,
      exp: mode === 'expired' ? now - 600 : now + 300,
      nonce: grant.nonce,
      email: mode === 'unknownEmail' ? 'nobody@demo.local' : grant.email,
      email_verified: mode !== 'unverified',
    };
    return sign(claims, mode === 'badSignature' ? stranger : key);
  }

  /** @param {import('node:http').ServerResponse} res @param {number} status @param {any} body */
  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url || '/', provider.issuer);
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer: provider.issuer,
        authorization_endpoint: `${provider.issuer}/authorize`,
        token_endpoint: `${provider.issuer}/token`,
        jwks_uri: `${provider.issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        code_challenge_methods_supported: ['S256'],
        scopes_supported: ['openid', 'email'],
      });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') return json(res, 200, { keys: [jwk] });
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      const redirect = q.get('redirect_uri') || '';
      const scopes = (q.get('scope') || '').split(' ');
      if (q.get('client_id') !== provider.clientId || q.get('response_type') !== 'code'
        || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')
        || !q.get('nonce') || !q.get('state') || !scopes.includes('openid') || !redirect) {
        provider.refused.push('authorize: bad request');
        return json(res, 400, { error: 'invalid_request' });
      }
      provider.authorizations += 1;
      const code = b64url(randomBytes(24));
      provider.issued.push(code);
      codes.set(code, {
        redirect, challenge: q.get('code_challenge'), nonce: q.get('nonce'),
        email: provider.email, mode: provider.mode, at: Date.now(),
      });
      const back = new URL(redirect);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state') || '');
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      let raw = '';
      req.on('data', (d) => { raw += d; });
      req.on('end', () => {
        const form = new URLSearchParams(raw);
        const refuse = (/** @type {string} */ why, status = 400, error = 'invalid_grant') => {
          provider.refused.push(why);
          json(res, status, { error });
        };
        let id = form.get('client_id');
        let secret = form.get('client_secret');
        const auth = req.headers.authorization || '';
        if (auth.startsWith('Basic ')) {
          const [u, p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
          id = decodeURIComponent((u || '').replace(/\+/g, ' '));
          secret = decodeURIComponent((p || '').replace(/\+/g, ' '));
        }
        if (id !== provider.clientId || secret !== provider.clientSecret) return refuse('client', 401, 'invalid_client');
        if (form.get('grant_type') !== 'authorization_code') return refuse('grant_type');
        const code = form.get('code') || '';
        const grant = codes.get(code);
        codes.delete(code); // once
        if (!grant || Date.now() - grant.at > 60_000) return refuse('code');
        if (form.get('redirect_uri') !== grant.redirect) return refuse('redirect_uri');
        const verifier = form.get('code_verifier') || '';
        if (b64url(createHash('sha256').update(verifier).digest()) !== grant.challenge) return refuse('pkce');
        const token = idToken(grant);
        const access = b64url(randomBytes(24));
        provider.issued.push(token, access);
        provider.tokens += 1;
        json(res, 200, { access_token: access, token_type: 'Bearer', expires_in: 3600, id_token: token });
      });
      return undefined;
    }
    return json(res, 404, { error: 'not_found' });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
  const addr = /** @type {import('node:net').AddressInfo} */ (server.address());
  provider.issuer = `http://127.0.0.1:${addr.port}`;
  return provider;
}
