// A real OpenID Connect provider on loopback (the OpenID Certified npm package
// oidc-provider) with the demo company's people, for `airisk-viewer demo --team`
// and the team-mode tests. Not for production: people and passwords are fixed.
//
// Usage: node provider.js [config.json]
//   config (all optional): {"host": "127.0.0.1", "port": 0,
//     "clients": [{"client_id", "client_secret", "redirect_uris": [...],
//                  "post_logout_redirect_uris": [...]}],
//     "jwks": {"keys": [<private JWKs>]}, "id_token_ttl": 3600,
//     "issuer": <public issuer URL, when a proxy fronts the provider>}
// Prints one JSON line, {"issuer": "http://127.0.0.1:<port>"}, once it listens.
//
// Sign-in is a plain HTML form at /interaction/<uid> (fields `login`,
// `password`), so tests can drive it over HTTP; consent is implied for the
// configured clients (they are the company's own applications).

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

export const PASSWORD = 'demo-password';

// login -> claims. E-mails of members match demo AIRisk users (Alice's in
// another case, as directories often do); Erin has no AIRisk account; Victor's
// e-mail is Carol's but unverified, so it must never match.
export const PEOPLE = {
  rita: {
    name: 'Rita Reyes', email: 'rita.reyes@northwind.example',
    email_verified: true, groups: ['airisk-reviewers', 'staff'],
  },
  sam: {
    name: 'Sam Patel', email: 'sam.patel@northwind.example',
    email_verified: true, groups: ['airisk-reviewers', 'security'],
  },
  alice: {
    name: 'Alice Martin', email: 'Alice.Martin@Northwind.example',
    email_verified: true, groups: ['staff'],
  },
  bob: {
    name: 'Bob Chen', email: 'bob.chen@northwind.example',
    email_verified: true, groups: ['staff'],
  },
  erin: {
    name: 'Erin Novak', email: 'erin.novak@northwind.example',
    email_verified: true, groups: ['staff'],
  },
  victor: {
    name: 'Victor Unverified', email: 'carol.diaz@northwind.example',
    email_verified: false, groups: ['staff'],
  },
};

const SCOPES = ['openid', 'email', 'profile', 'groups'];

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  // No external resources: tests and the demo never leave loopback.
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>${escape(title)}</title><link rel="icon" href="data:,">
<style>body{font-family:sans-serif;max-width:28rem;margin:2rem auto}
label{display:block;margin:.5rem 0}input,select,button{font-size:1rem}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, clientId, error) {
  const people = Object.entries(PEOPLE).map(
    ([login, p]) => `<li><code>${escape(login)}</code>: ${escape(p.name)}, `
      + `${escape(p.email)}${p.email_verified ? '' : ' (unverified)'}, `
      + `groups ${escape(p.groups.join(', '))}</li>`,
  ).join('');
  return page('Northwind sign-in', `
<p>Demo identity provider. Signing in to <code>${escape(clientId)}</code>.</p>
${error ? `<p role="alert" id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label>User name <input name="login" id="login" required autofocus></label>
<label>Password <input type="password" name="password" id="password" required></label>
<button type="submit" id="sign-in">Sign in</button>
</form>
<p>Demo people (password <code>${PASSWORD}</code>):</p><ul>${people}</ul>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function configuration(config) {
  return {
    clients: config.clients || [],
    jwks: config.jwks,
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: SCOPES,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    // Put the requested claims in the ID token too, as the big providers do,
    // so a relying party need not call userinfo.
    conformIdTokenClaims: false,
    ttl: { IdToken: config.id_token_ttl || 3600 },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page('Sign out of Northwind?', `${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" id="logout">
Yes, sign me out</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out', '<p>You are signed out of Northwind.</p>');
        },
      },
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<p>${escape(out.error)}: `
        + `${escape(out.error_description || '')}</p>`);
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (ctx, sub) => {
      const person = PEOPLE[sub];
      if (!person) return undefined;
      return {
        accountId: sub,
        claims: async () => ({ sub, preferred_username: sub, ...person }),
      };
    },
    // The configured clients are the company's own applications: consent is
    // implied, so every requested scope is granted without a consent screen.
    loadExistingGrant: async (ctx) => {
      const { oidc } = ctx;
      const found = oidc.result?.consent?.grantId
        || oidc.session.grantIdFor(oidc.client.clientId);
      if (found) {
        const grant = await oidc.provider.Grant.find(found);
        if (grant) return grant;
      }
      const grant = new oidc.provider.Grant({
        clientId: oidc.client.clientId,
        accountId: oidc.session.accountId,
      });
      grant.addOIDCScope(SCOPES.join(' '));
      await grant.save();
      return grant;
    },
  };
}

function interactions(provider) {
  return async (ctx, next) => {
    const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(ctx.path);
    if (!match) return next();
    ctx.set('Cache-Control', 'no-store');
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (match[1] !== details.uid) return next();
    if (ctx.method === 'GET' && !match[2]) {
      ctx.type = 'html';
      ctx.body = loginPage(details.uid, details.params.client_id, '');
      return undefined;
    }
    if (ctx.method === 'POST' && match[2]) {
      const form = await readForm(ctx.req);
      const login = (form.get('login') || '').trim().toLowerCase();
      if (!PEOPLE[login] || form.get('password') !== PASSWORD) {
        ctx.status = 401;
        ctx.type = 'html';
        ctx.body = loginPage(details.uid, details.params.client_id,
          'Unknown user name or wrong password.');
        return undefined;
      }
      const result = { login: { accountId: login } };
      const to = await provider.interactionResult(ctx.req, ctx.res, result, {
        mergeWithLastSubmission: false,
      });
      ctx.status = 303;
      ctx.redirect(to);
      return undefined;
    }
    return next();
  };
}

function main() {
  const path = process.argv[2];
  const config = path ? JSON.parse(readFileSync(path, 'utf8')) : {};
  const host = config.host || '127.0.0.1';
  const server = http.createServer();
  server.listen(config.port || 0, host, () => {
    const issuer = config.issuer || `http://${host}:${server.address().port}`;
    const provider = new Provider(issuer, configuration(config));
    provider.use(interactions(provider));
    server.on('request', provider.callback());
    const listening = `http://${host}:${server.address().port}`;
    process.stdout.write(`${JSON.stringify({ issuer, listening })}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent holds our stdin open: when it ends (the parent exited, even
  // killed), so do we, instead of lingering on the port.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

main();
