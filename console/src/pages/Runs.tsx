// The runs list: filters kept in the URL, rows kept live by the server's event stream.
import { useEffect, useState } from "preact/hooks";
import { duration, between, RUN_STATES, TRIGGERS, triggerType, when } from "../format";
import { onLink } from "../router";
import { listen } from "../sse";
import type { Me, RunSummary } from "../types";

const WINDOWS: Record<string, number> = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
const FIELDS = ["flow_id", "namespace", "system", "state", "trigger", "window"] as const;
type Filters = Record<(typeof FIELDS)[number], string>;

function fromUrl(): Filters {
  const q = new URLSearchParams(location.search);
  return Object.fromEntries(FIELDS.map((f) => [f, q.get(f) ?? ""])) as Filters;
}

function streamPath(f: Filters): string {
  const q = new URLSearchParams({ limit: "100" });
  for (const key of ["flow_id", "namespace", "system", "state", "trigger"] as const) if (f[key]) q.set(key, f[key]);
  if (f.window && WINDOWS[f.window]) q.set("since", new Date(Date.now() - WINDOWS[f.window] * 1000).toISOString());
  return `/stream/runs?${q}`;
}

export function Runs({ me }: { me: Me }) {
  const [filters, setFilters] = useState<Filters>(fromUrl);
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [status, setStatus] = useState("connecting");

  useEffect(() => {
    const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    history.replaceState(null, "", q.toString() ? `/?${q}` : "/");
    setRuns(null);
    const stream = listen(streamPath(filters), (name, data) => {
      if (name === "runs") setRuns((data as { runs: RunSummary[] }).runs);
    }, setStatus);
    return () => stream.close();
  }, [filters]);

  const set = (key: keyof Filters) => (e: Event) =>
    setFilters({ ...filters, [key]: (e.target as HTMLInputElement).value.trim() });
  const namespaces = me.permissions["runs:read"] ?? [];

  return (
    <section>
      <h1>Runs</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="filters">
        <label>Flow <input value={filters.flow_id} onChange={set("flow_id")} data-testid="filter-flow" /></label>
        <label>Namespace <input value={filters.namespace} onChange={set("namespace")} list="namespaces"
                                data-testid="filter-namespace" /></label>
        <datalist id="namespaces">{namespaces.map((n) => <option key={n} value={n} />)}</datalist>
        <label>System <input value={filters.system} onChange={set("system")} placeholder="airflow/prod"
                             data-testid="filter-system" /></label>
        <label>State <select value={filters.state} onChange={set("state")} data-testid="filter-state">
          <option value="">any</option>{RUN_STATES.map((s) => <option key={s}>{s}</option>)}</select></label>
        <label>Trigger <select value={filters.trigger} onChange={set("trigger")} data-testid="filter-trigger">
          <option value="">any</option>{TRIGGERS.map((s) => <option key={s}>{s}</option>)}</select></label>
        <label>Created <select value={filters.window} onChange={set("window")} data-testid="filter-window">
          <option value="">any time</option>{Object.keys(WINDOWS).map((w) => <option key={w} value={w}>last {w}</option>)}
        </select></label>
        <span class="live" data-testid="stream-status">{status}</span>
      </form>
      {runs === null ? <p class="muted">Loading…</p> : runs.length === 0 ? <p class="muted">No runs match.</p> : (
        <table class="runs" data-testid="runs">
          <thead><tr><th>State</th><th>Flow</th><th>Run</th><th>Trigger</th><th>Created</th><th>Duration</th></tr></thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.id} data-run={r.id}>
                <td><span class={`state s-${r.state}`}>{r.state}</span></td>
                <td>{r.namespace}/{r.flow_id} <span class="muted">r{r.revision}</span></td>
                <td><a href={`/runs/${encodeURIComponent(r.id)}`} onClick={onLink}>{r.id.slice(0, 12)}</a></td>
                <td>{triggerType(r.trigger)}</td>
                <td>{when(r.created_at)}</td>
                <td>{duration(between(r.created_at, r.finished_at))}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
