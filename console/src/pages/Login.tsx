// Token login: the token is kept in this tab's sessionStorage and sent as a bearer header.
import { useState } from "preact/hooks";

export function Login({ onLogin, error }: { onLogin: (token: string) => void; error: string | null }) {
  const [value, setValue] = useState("");
  return (
    <main class="login">
      <h1>Interlock</h1>
      <form onSubmit={(e) => { e.preventDefault(); if (value.trim()) onLogin(value); }}>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autoComplete="off" value={value}
               onInput={(e) => setValue((e.target as HTMLInputElement).value)}
               placeholder="ilk_…" data-testid="token" />
        <button type="submit" data-testid="login">Log in</button>
        <p class="muted">Create one with <code>interlock tokens create</code>. It is kept in this
          tab only and forgotten when you log out or close it.</p>
        {error && <p class="error" role="alert" data-testid="login-error">{error}</p>}
      </form>
    </main>
  );
}
