// The approvals inbox: Interlock's gates and foreign systems' requests, kept live by the
// server's event stream (`/stream/approvals`); filters kept in the URL.
import { useEffect, useState } from "preact/hooks";
import { when } from "../format";
import { onLink } from "../router";
import { listen } from "../sse";
import type { ApprovalSummary, Me } from "../types";

const STATES = ["pending", "approved", "rejected", "timed_out", "cancelled", "void", "answered"];
const FIELDS = ["scope", "state", "namespace", "flow", "origin"] as const;
type Filters = Record<(typeof FIELDS)[number], string>;

function fromUrl(): Filters {
  const q = new URLSearchParams(location.search);
  const f = Object.fromEntries(FIELDS.map((k) => [k, q.get(k) ?? ""])) as Filters;
  if (!f.scope) f.scope = "mine";
  return f;
}

function streamPath(f: Filters): string {
  const q = new URLSearchParams({ limit: "100" });
  if (f.scope === "mine") q.set("mine", "true");
  else if (f.state) q.set("state", f.state);
  for (const key of ["namespace", "flow", "origin"] as const) if (f[key]) q.set(key, f[key]);
  return `/stream/approvals?${q}`;
}

export function Approvals({ me }: { me: Me }) {
  const [filters, setFilters] = useState<Filters>(fromUrl);
  const [rows, setRows] = useState<ApprovalSummary[] | null>(null);
  const [status, setStatus] = useState("connecting");

  useEffect(() => {
    const q = new URLSearchParams(Object.entries(filters).filter(([k, v]) => v && !(k === "scope" && v === "mine")));
    history.replaceState(null, "", q.toString() ? `/approvals?${q}` : "/approvals");
    setRows(null);
    const stream = listen(streamPath(filters), (name, data) => {
      if (name === "approvals") setRows((data as { approvals: ApprovalSummary[] }).approvals);
    }, setStatus);
    return () => stream.close();
  }, [filters]);

  const set = (key: keyof Filters) => (e: Event) =>
    setFilters({ ...filters, [key]: (e.target as HTMLInputElement).value.trim() });
  const namespaces = me.permissions["approvals:read"] ?? [];

  return (
    <section>
      <h1>Approvals</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="filters">
        <label>Show <select value={filters.scope} onChange={set("scope")} data-testid="filter-scope">
          <option value="mine">waiting for my vote</option>
          <option value="all">all requests I may read</option>
        </select></label>
        <label>State <select value={filters.state} onChange={set("state")} disabled={filters.scope === "mine"}
                             data-testid="filter-approval-state">
          <option value="">any</option>{STATES.map((s) => <option key={s}>{s}</option>)}</select></label>
        <label>Namespace <input value={filters.namespace} onChange={set("namespace")} list="approval-namespaces"
                                data-testid="filter-approval-namespace" /></label>
        <datalist id="approval-namespaces">{namespaces.map((n) => <option key={n} value={n} />)}</datalist>
        <label>Flow <input value={filters.flow} onChange={set("flow")} placeholder="ns/flow"
                           data-testid="filter-approval-flow" /></label>
        <label>Origin <select value={filters.origin} onChange={set("origin")} data-testid="filter-origin">
          <option value="">any</option><option value="interlock">interlock</option>
          <option value="foreign">foreign</option></select></label>
        <span class="live" data-testid="stream-status">{status}</span>
      </form>
      {rows === null ? <p class="muted">Loading…</p>
        : rows.length === 0 ? <p class="muted" data-testid="no-approvals">No requests match.</p> : (
          <table class="runs" data-testid="approvals">
            <thead><tr><th>State</th><th>Subject</th><th>Flow / system</th><th>Origin</th><th>Asked</th><th>Deadline</th></tr></thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id} data-approval={r.id}>
                  <td><span class={`state s-${r.state}`}>{r.state}</span>{r.escalated && <span class="muted"> escalated</span>}</td>
                  <td><a href={`/approvals/${encodeURIComponent(r.id)}`} onClick={onLink} data-testid="approval-subject">{r.subject || r.id}</a></td>
                  <td>{r.flow ?? r.system ?? ""}{r.node_id ? <span class="muted"> · {r.node_id}</span> : null}</td>
                  <td>{r.origin}</td>
                  <td>{when(r.created_at)}</td>
                  <td>{when(r.deadline)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
    </section>
  );
}
