// The audit trail (`audit:read`): filtered records, newest first, paged by cursor; and the
// chain's verification, with where it breaks.
import { useEffect, useState } from "preact/hooks";
import { call } from "../api";
import { text, when } from "../format";
import type { AuditRecord, AuditVerdict } from "../types";

const FIELDS = ["actor", "action", "target", "since", "until"] as const;
type Filters = Record<(typeof FIELDS)[number], string>;
const PAGE = 50;

function fromUrl(): Filters {
  const q = new URLSearchParams(location.search);
  return Object.fromEntries(FIELDS.map((f) => [f, q.get(f) ?? ""])) as Filters;
}

/** A `datetime-local` value (the browser's zone) as ISO 8601 with a zone, as the API needs. */
function zoned(local: string): string | null {
  if (!local) return null;
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? null : at.toISOString();
}

export function Audit() {
  const [filters, setFilters] = useState<Filters>(fromUrl);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);  // the pages seen so far
  const [page, setPage] = useState<{ records: AuditRecord[]; next_cursor: string | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [verdict, setVerdict] = useState<AuditVerdict | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [open, setOpen] = useState<number | null>(null);
  const cursor = cursors[cursors.length - 1];

  useEffect(() => {
    const shown = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    history.replaceState(null, "", shown.toString() ? `/audit?${shown}` : "/audit");
    const q = new URLSearchParams({ limit: String(PAGE) });
    for (const key of ["actor", "action", "target"] as const) if (filters[key]) q.set(key, filters[key]);
    for (const key of ["since", "until"] as const) {
      const at = zoned(filters[key]);
      if (at) q.set(key, at);
    }
    if (cursor) q.set("cursor", cursor);
    setPage(null);
    call<{ records: AuditRecord[]; next_cursor: string | null }>(`/audit?${q}`)
      .then((got) => { setPage(got); setError(null); })
      .catch((e: Error) => setError(e.message));
  }, [filters, cursor]);

  async function verify(): Promise<void> {
    setVerifying(true);
    try {
      setVerdict(await call<AuditVerdict>("/audit/verify"));
    } catch (e) {
      setVerdict({ ok: false, checked: 0, broken_at: null, reason: `could not verify: ${(e as Error).message}`, archived: 0, anchors: 0 });
    } finally {
      setVerifying(false);
    }
  }

  const set = (key: keyof Filters) => (e: Event) => {
    setCursors([null]);
    setFilters({ ...filters, [key]: (e.target as HTMLInputElement).value.trim() });
  };

  return (
    <section>
      <h1>Audit trail</h1>
      <div class="actions">
        <button type="button" onClick={() => void verify()} disabled={verifying} data-testid="verify">
          {verifying ? "Verifying…" : "Verify the chain"}</button>
        {verdict && (
          <span role="status" data-testid="verify-result" class={verdict.ok ? "ok" : "error"}>
            {verdict.ok
              ? `ok: ${verdict.checked} records checked${verdict.archived ? `, ${verdict.archived} archived under ${verdict.anchors} signed anchors` : ""}`
              : `broken${verdict.broken_at !== null ? ` at record ${verdict.broken_at}` : ""}: ${verdict.reason ?? "unknown reason"} (${verdict.checked} checked)`}
          </span>)}
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="filters">
        <label>Actor <input value={filters.actor} onChange={set("actor")} placeholder="user:alice" data-testid="filter-actor" /></label>
        <label>Action <input value={filters.action} onChange={set("action")} placeholder="approval.voted" data-testid="filter-action" /></label>
        <label>Target <input value={filters.target} onChange={set("target")} placeholder="runs/*" data-testid="filter-target" /></label>
        <label>Since <input type="datetime-local" value={filters.since} onChange={set("since")} data-testid="filter-since" /></label>
        <label>Until <input type="datetime-local" value={filters.until} onChange={set("until")} data-testid="filter-until" /></label>
      </form>
      {error && <p class="error" role="alert" data-testid="audit-error">{error}</p>}
      {page === null ? (!error && <p class="muted">Loading…</p>) : page.records.length === 0 ? <p class="muted">No records match.</p> : (
        <table class="runs audit" data-testid="audit">
          <thead><tr><th>#</th><th>At</th><th>Actor</th><th>Action</th><th>Target</th><th>Origin</th><th /></tr></thead>
          <tbody>
            {page.records.map((r) => [
              <tr key={r.seq} data-seq={r.seq}>
                <td>{r.seq}</td><td>{when(r.at)}</td><td>{r.actor}</td>
                <td data-testid="audit-action">{r.action}</td><td>{r.target}</td><td>{r.origin}</td>
                <td><button type="button" onClick={() => setOpen(open === r.seq ? null : r.seq)}
                            aria-expanded={open === r.seq}>{open === r.seq ? "Hide" : "Details"}</button></td>
              </tr>,
              open === r.seq && (
                <tr key={`${r.seq}-detail`} class="detail"><td colSpan={7}>
                  <div class="before-after">
                    <div><h3>Before</h3><pre tabIndex={0} class="outputs">{text(r.before) || "—"}</pre></div>
                    <div><h3>After</h3><pre tabIndex={0} class="outputs">{text(r.after) || "—"}</pre></div>
                  </div>
                  <p class="muted hash">prev {r.prev_hash} · hash {r.hash}</p>
                </td></tr>),
            ])}
          </tbody>
        </table>
      )}
      <div class="actions">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}
                data-testid="newer">Newer</button>
        <button type="button" disabled={!page?.next_cursor} data-testid="older"
                onClick={() => page?.next_cursor && setCursors([...cursors, page.next_cursor])}>Older</button>
        <span class="muted">page {cursors.length}</span>
      </div>
    </section>
  );
}
