// Login: through the identity provider (OIDC, when the server offers it) or with an API token
// kept in this tab's sessionStorage and sent as a bearer header.
import { useEffect, useState } from "preact/hooks";
import { call } from "../api";
import type { LoginOptions } from "../types";

export function Login({ onLogin, error }: { onLogin: (token: string) => void; error: string | null }) {
  const [value, setValue] = useState("");
  const [options, setOptions] = useState<LoginOptions | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    call<LoginOptions>("/login/options").then(setOptions).catch(() => setOptions(null));
  }, []);
  const oidc = options?.oidc ?? null;
  async function provider(): Promise<void> {
    if (!oidc) return;
    setProblem(null);
    const flow = await import("../oidc");  // loaded only by those who use it
    try {
      await flow.startLogin(oidc, location.pathname + location.search);
    } catch (e) {
      setProblem(flow.loginError(e));
    }
  }
  const shown = problem ?? error;
  return (
    <main class="login">
      <h1>Interlock</h1>
      {oidc && (
        <p><button type="button" onClick={() => void provider()} data-testid="login-oidc">
          Log in with your identity provider</button></p>)}
      <form onSubmit={(e) => { e.preventDefault(); if (value.trim()) onLogin(value); }}>
        <label for="token">{oidc ? "Or an API token" : "API token"}</label>
        <input id="token" name="token" type="password" autoComplete="off" value={value}
               onInput={(e) => setValue((e.target as HTMLInputElement).value)}
               placeholder="ilk_…" data-testid="token" />
        <button type="submit" data-testid="login">Log in</button>
        <p class="muted">Create one with <code>interlock tokens create</code>. It is kept in this
          tab only and forgotten when you log out or close it.</p>
        {shown && <p class="error" role="alert" data-testid="login-error">{shown}</p>}
      </form>
    </main>
  );
}
