// The local platform's OpenID Connect provider: node-oidc-provider (an OpenID Certified
// implementation) with a sign-in page of our own and accounts from a file.
//
// Environment:
//   OIDC_ISSUER        http://127.0.0.1:<port> (the port it listens on, on 127.0.0.1)
//   OIDC_CONFIG        JSON file: {"clients": [...], "cookieKeys": [...], "jwks": {"keys": [...]}}
//                      (read once at start)
//   OIDC_USERS         JSON file: {"users": {"<name>": {"password": "scrypt$<salt>$<hash>",
//                      "email", "name", "groups": [...]}}} (read at every sign-in and token,
//                      so a group change applies at the user's next login)
//   OIDC_MODULES       the node_modules directory holding oidc-provider
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { scryptSync, timingSafeEqual } from "node:crypto";
import { pathToFileURL } from "node:url";

const require = createRequire(`${process.env.OIDC_MODULES}/`);
const { default: Provider, errors } = await import(
  pathToFileURL(require.resolve("oidc-provider")).href
);

const issuer = new URL(process.env.OIDC_ISSUER);
const config = JSON.parse(readFileSync(process.env.OIDC_CONFIG, "utf8"));
const readUsers = () => JSON.parse(readFileSync(process.env.OIDC_USERS, "utf8")).users;

function passwordMatches(stored, given) {
  const [scheme, salt, hash] = String(stored).split("$");
  if (scheme !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64");
  const actual = scryptSync(String(given), Buffer.from(salt, "base64"), expected.length, {
    N: 16384, r: 8, p: 1,
  });
  return timingSafeEqual(expected, actual);
}

const provider = new Provider(issuer.href.replace(/\/$/, ""), {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: config.cookieKeys },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  scopes: ["openid", "email", "profile", "groups"],
  // The ID token carries the scopes' claims (groups included), not only userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  ttl: { AuthorizationCode: 60, AccessToken: 600, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const user = readUsers()[sub];
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        const current = readUsers()[sub] ?? {};
        return {
          sub,
          preferred_username: sub,
          name: current.name ?? sub,
          email: current.email ?? `${sub}@example.com`,
          email_verified: true,
          groups: current.groups ?? [],
        };
      },
    };
  },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, uid, clientId, message) {
  res.statusCode = status;
  res.setHeader("Content-Type", "text/html; charset=utf-8");
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Sign in</title>
<style>body{font-family:sans-serif;max-width:22rem;margin:4rem auto}label,input,button{display:block;width:100%;margin:.4rem 0}
.error{color:#b00020}</style></head><body>
<h1>Sign in</h1><p>to <strong>${escape(clientId)}</strong> (local OpenID Connect provider)</p>
${message ? `<p class="error" role="alert">${escape(message)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label>Username <input name="username" id="username" required autofocus></label>
<label>Password <input name="password" id="password" type="password" required></label>
<button type="submit" id="sign-in">Sign in</button></form></body></html>`);
}

async function formBody(req) {
  let raw = "";
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > 16384) throw new Error("form too large");
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

async function interaction(req, res, url) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  if (req.method === "GET" && prompt.name === "login") {
    return page(res, 200, uid, params.client_id);
  }
  if (req.method === "GET" && prompt.name === "consent") {
    // Every registered client is the platform's own: consent is implied.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(" "));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (req.method === "POST" && url.pathname.endsWith("/login") && prompt.name === "login") {
    const { username = "", password = "" } = await formBody(req);
    const user = readUsers()[username];
    if (!user || !passwordMatches(user.password, password)) {
      console.log(`sign-in refused for ${JSON.stringify(username)}: wrong username or password`);
      return page(res, 401, uid, params.client_id, "Invalid username or password.");
    }
    console.log(`sign-in of ${JSON.stringify(username)} for client ${params.client_id}`);
    return provider.interactionFinished(
      req, res, { login: { accountId: username, remember: false } }, { mergeWithLastSubmission: false },
    );
  }
  res.statusCode = 405;
  res.end("unexpected request for this sign-in step\n");
}

const oidc = provider.callback();
createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  if (!url.pathname.startsWith("/interaction/")) return oidc(req, res);
  try {
    await interaction(req, res, url);
  } catch (err) {
    const known = err instanceof errors.OIDCProviderError;
    res.statusCode = known ? err.statusCode : 500;
    res.setHeader("Content-Type", "text/plain; charset=utf-8");
    res.end(`${known ? err.error_description || err.message : "internal error"}\n`);
    if (!known) console.error(err);
  }
}).listen(Number(issuer.port), "127.0.0.1", () => {
  console.log(`OpenID Connect provider at ${issuer.href} (discovery: ${issuer.href.replace(/\/$/, "")}/.well-known/openid-configuration)`);
});
