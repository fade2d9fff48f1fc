// The console's shell: login, who is logged in, and the pages.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, call, whenUnauthenticated } from "./api";
import { forget, remember, token } from "./auth";
import { Login } from "./pages/Login";
import { RunPage } from "./pages/RunPage";
import { Runs } from "./pages/Runs";
import { navigate, onLink, usePath } from "./router";
import type { Me } from "./types";
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
    if (token()) void login(null);
  }, []);

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
  return (
    <div class="shell">
      <header class="top">
        <a href="/" onClick={onLink} class="brand">Interlock</a>
        <nav><a href="/" onClick={onLink}>Runs</a></nav>
        <span class="who" data-testid="who">{me.actor}</span>
        <button type="button" onClick={logout} data-testid="logout">Log out</button>
      </header>
      <main>
        {runMatch ? <RunPage key={runMatch[1]} runId={decodeURIComponent(runMatch[1])} me={me} />
          : <Runs me={me} />}
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
