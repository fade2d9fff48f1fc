// Login through the identity provider: the authorization-code flow with PKCE (RFC 7636), run
// in the browser by oauth4webapi as a public client (the console has no secret to keep). The
// access token asked for the API's audience (an RFC 8707 resource indicator) is the same OIDC
// JWT the API verifies for any caller; it is kept like an API token (this tab only).
import * as oauth from "oauth4webapi";
import { CALLBACK } from "./callback";
import type { OidcOptions } from "./types";

const PENDING = "interlock.oidc";  // sessionStorage: verifier, state, nonce, where to return

interface Pending { verifier: string; state: string; nonce: string; returnTo: string }

// Plain http only for an issuer on this machine (a local provider), as the API allows.
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

function options(issuer: URL) {
  return { [oauth.allowInsecureRequests]: issuer.protocol === "http:" && LOOPBACK.has(issuer.hostname) };
}

function redirectUri(): string {
  return location.origin + CALLBACK;
}

/** Only a path of this console: never another origin (no open redirect after login). */
function local(path: string): string {
  return path.startsWith("/") && !path.startsWith("//") && !path.startsWith(CALLBACK) ? path : "/";
}

async function discover(o: OidcOptions): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(o.issuer);
  const response = await oauth.discoveryRequest(issuer, { algorithm: "oidc", ...options(issuer) });
  return oauth.processDiscoveryResponse(issuer, response);
}

function wantsIdToken(o: OidcOptions): boolean {
  return o.scopes.split(" ").includes("openid");
}

/** Leave for the provider's login page; it comes back to CALLBACK. */
export async function startLogin(o: OidcOptions, returnTo: string): Promise<void> {
  const as = await discover(o);
  if (!as.authorization_endpoint) throw new Error("the identity provider names no authorization endpoint");
  const pending: Pending = {
    verifier: oauth.generateRandomCodeVerifier(), state: oauth.generateRandomState(),
    nonce: oauth.generateRandomNonce(), returnTo: local(returnTo),
  };
  const url = new URL(as.authorization_endpoint);
  const query = url.searchParams;
  query.set("client_id", o.client_id);
  query.set("redirect_uri", redirectUri());
  query.set("response_type", "code");
  query.set("scope", o.scopes);
  query.set("resource", o.resource);
  query.set("state", pending.state);
  if (wantsIdToken(o)) query.set("nonce", pending.nonce);
  query.set("code_challenge", await oauth.calculatePKCECodeChallenge(pending.verifier));
  query.set("code_challenge_method", "S256");
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  location.assign(url.href);
}

/** Back on CALLBACK: check the state, trade the code (with the verifier) for the token. */
export async function finishLogin(o: OidcOptions): Promise<{ token: string; returnTo: string }> {
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);  // one use: a reloaded callback cannot replay it
  const here = new URL(location.href);
  history.replaceState(null, "", "/");  // the code leaves the address bar and the history
  if (!raw) throw new Error("no login was started in this tab: start it again");
  const pending = JSON.parse(raw) as Pending;
  const as = await discover(o);
  const client: oauth.Client = { client_id: o.client_id };
  const params = oauth.validateAuthResponse(as, client, here, pending.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as, client, oauth.None(), params, redirectUri(), pending.verifier,
    { additionalParameters: { resource: o.resource }, ...options(new URL(o.issuer)) });
  const result = await oauth.processAuthorizationCodeResponse(as, client, response, wantsIdToken(o)
    ? { expectedNonce: pending.nonce, requireIdToken: true } : {});
  return { token: result.access_token, returnTo: local(pending.returnTo) };
}

/** What went wrong, in a sentence for the login page. */
export function loginError(e: unknown): string {
  if (e instanceof oauth.AuthorizationResponseError) {
    return `the identity provider refused: ${e.error}${e.error_description ? ` (${e.error_description})` : ""}`;
  }
  if (e instanceof oauth.ResponseBodyError) return `the token request was refused: ${e.error}`;
  return `login through the identity provider failed: ${e instanceof Error ? e.message : String(e)}`;
}
