// The console's shell: login, who is logged in, and the pages.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, call, whenUnauthenticated } from "./api";
import { forget, may, remember, token } from "./auth";
import { ApprovalPage } from "./pages/ApprovalPage";
import { Approvals } from "./pages/Approvals";
import { Audit } from "./pages/Audit";
import { Health } from "./pages/Health";
import { Lineage } from "./pages/Lineage";
import { Login } from "./pages/Login";
import { RunPage } from "./pages/RunPage";
import { Runs } from "./pages/Runs";
import { CALLBACK } from "./callback";
import { navigate, onLink, usePath } from "./router";
import type { LoginOptions, Me } from "./types";
import "./styles.css";

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [checking, setChecking] = useState(token() !== null);
  const path = usePath();

  useEffect(() => {
    whenUnauthenticated(() => {
      setMe(null);
      setError("your session ended: the token is no longer accepted");
    });
    if (location.pathname === CALLBACK) void callback();
    else if (token()) void login(null);
  }, []);

  // Back from the identity provider: trade the code for a token, then log in with it.
  async function callback(): Promise<void> {
    setChecking(true);
    try {
      const options = await call<LoginOptions>("/login/options");
      if (!options.oidc) throw new Error("this server does not offer identity-provider login");
      const oidc = await import("./oidc");  // loaded only by those who use it
      try {
        const done = await oidc.finishLogin(options.oidc);
        await login(done.token);
        navigate(done.returnTo);
      } catch (e) {
        setError(oidc.loginError(e));
        setChecking(false);
      }
    } catch (e) {
      setError(String(e));
      setChecking(false);
    }
  }

  async function login(value: string | null): Promise<void> {
    if (value !== null) remember(value.trim());
    setChecking(true);
    try {
      setMe(await call<Me>("/me"));
      setError(null);
    } catch (e) {
      forget();
      setMe(null);
      setError(e instanceof ApiError && e.status === 403
        ? "this token may not read runs anywhere: the console needs `runs:read`"
        : e instanceof ApiError && e.status === 401 ? "this token was refused" : String(e));
    } finally {
      setChecking(false);
    }
  }

  function logout(): void {
    forget();
    setMe(null);  // unmounting the pages closes their streams
    navigate("/");
  }

  if (me === null) {
    return checking ? <p class="muted">Checking the session…</p>
      : <Login onLogin={(v) => void login(v)} error={error} />;
  }
  const runMatch = /^\/runs\/([^/?#]+)/.exec(path);
  const approvalMatch = /^\/approvals\/([^/?#]+)/.exec(path);
  const route = path.split("?")[0];
  // Only the pages the caller may use are linked; the API refuses the rest anyway.
  const pages = [
    { href: "/", label: "Runs", ok: true },
    { href: "/approvals", label: "Approvals", ok: may(me, "approvals:read") },
    { href: "/audit", label: "Audit", ok: may(me, "audit:read", "*") },
    { href: "/health", label: "Health", ok: may(me, "systems:read", "*") },
    { href: "/lineage", label: "Lineage", ok: may(me, "lineage:read", "*") },
  ].filter((p) => p.ok);
  const denied = (label: string, permission: string) => (
    <section><h1>{label}</h1><p class="error" role="alert" data-testid="page-denied">
      This page needs <code>{permission}</code>.</p></section>);
  let page;
  if (runMatch) page = <RunPage key={runMatch[1]} runId={decodeURIComponent(runMatch[1])} me={me} />;
  else if (approvalMatch) page = may(me, "approvals:read")
    ? <ApprovalPage key={approvalMatch[1]} id={decodeURIComponent(approvalMatch[1])} me={me} />
    : denied("Approval", "approvals:read");
  else if (route === "/approvals") page = may(me, "approvals:read") ? <Approvals me={me} /> : denied("Approvals", "approvals:read");
  else if (route === "/audit") page = may(me, "audit:read", "*") ? <Audit /> : denied("Audit", "audit:read");
  else if (route === "/health") page = may(me, "systems:read", "*") ? <Health me={me} /> : denied("Health", "systems:read");
  else if (route === "/lineage") page = may(me, "lineage:read", "*") ? <Lineage path={path} /> : denied("Lineage", "lineage:read");
  else page = <Runs me={me} />;
  return (
    <div class="shell">
      <header class="top">
        <a href="/" onClick={onLink} class="brand">Interlock</a>
        <nav data-testid="nav">{pages.map((p) => (
          <a key={p.href} href={p.href} onClick={onLink} data-testid={`nav-${p.label.toLowerCase()}`}
             aria-current={(p.href === "/" ? route === "/" || route.startsWith("/runs") : route.startsWith(p.href)) ? "page" : undefined}>
            {p.label}</a>))}</nav>
        <span class="who" data-testid="who">{me.actor}</span>
        <button type="button" onClick={logout} data-testid="logout">Log out</button>
      </header>
      <main>{page}</main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
