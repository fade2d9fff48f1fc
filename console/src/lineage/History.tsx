// A dataset's history: which runs read or wrote it, when, newest first, by pages.
import { useEffect, useState } from "preact/hooks";
import { call } from "../api";
import { when } from "../format";
import type { DatasetHistory, HistoryEntry } from "./types";

export function History({ namespace, name }: { namespace: string; name: string }) {
  const [items, setItems] = useState<HistoryEntry[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function load(cursor: string | null): Promise<void> {
    const params = new URLSearchParams({ limit: "20" });
    if (cursor) params.set("cursor", cursor);
    try {
      const got = await call<DatasetHistory>(
        `/lineage/datasets/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/history?${params}`);
      setItems((before) => (cursor ? [...(before ?? []), ...got.items] : got.items));
      setNext(got.nextCursor);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  useEffect(() => { setItems(null); setNext(null); void load(null); }, [namespace, name]);

  return (
    <section class="lin-history" data-testid="lin-history">
      <h3>History</h3>
      {error && <p class="error" role="alert">{error}</p>}
      {items === null && !error && <p class="muted">Loading…</p>}
      {items?.length === 0 && <p class="muted" data-testid="lin-history-empty">No run has read or written it yet
        (declared lineage has no history).</p>}
      {items && items.length > 0 && (
        <table class="runs lin-history-table">
          <thead><tr><th>when</th><th>access</th><th>job</th><th>run</th><th>state</th></tr></thead>
          <tbody>{items.map((h) => (
            <tr key={`${h.runId}-${h.access}`} data-testid="lin-history-row">
              <td>{when(h.at)}</td>
              <td class={`lin-access a-${h.access}`}>{h.access}</td>
              <td><span class="lin-wrap">{h.job.name}</span><br /><span class="muted small">{h.system} · {h.source}</span></td>
              <td class="hash">{h.runId}</td>
              <td>{h.state ?? ""}</td>
            </tr>))}</tbody>
        </table>)}
      {next && <button type="button" onClick={() => void load(next)} data-testid="lin-history-older">Older</button>}
    </section>
  );
}
