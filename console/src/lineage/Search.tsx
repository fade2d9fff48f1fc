// Finding a node by name (GET /lineage/nodes): show it on the map when the loaded graph has
// it, or open the graph around it.
import { useEffect, useState } from "preact/hooks";
import { call } from "../api";
import type { NodeMatch, NodeMatches } from "./types";

let asked = 0;

export function Search({ has, onShow, onOpen }: {
  has: (id: string) => boolean; onShow: (id: string) => void; onOpen: (id: string) => void;
}) {
  const [text, setText] = useState("");
  const [kind, setKind] = useState("");
  const [found, setFound] = useState<NodeMatches | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const q = text.trim();
    if (!q) { setFound(null); return; }
    const mine = ++asked;
    const timer = setTimeout(async () => {
      const params = new URLSearchParams({ q, limit: "20" });
      if (kind) params.set("type", kind);
      try {
        const got = await call<NodeMatches>(`/lineage/nodes?${params}`);
        if (mine === asked) { setFound(got); setError(null); }
      } catch (e) {
        if (mine === asked) setError((e as Error).message);
      }
    }, 200);
    return () => clearTimeout(timer);
  }, [text, kind]);

  return (
    <div class="lin-search panel">
      <form class="lin-search-form" onSubmit={(e) => e.preventDefault()} role="search">
        <label>Find a job or dataset
          <input type="search" value={text} maxLength={1000} placeholder="name, namespace or node id"
                 onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} data-testid="lin-search" />
        </label>
        <label>Kind
          <select value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value)} data-testid="lin-search-kind">
            <option value="">any</option><option value="job">jobs</option><option value="dataset">datasets</option>
          </select>
        </label>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {found && found.nodes.length === 0 && <p class="muted" data-testid="lin-no-results">Nothing matches.</p>}
      {found && found.nodes.length > 0 && (
        <ul class="lin-results" data-testid="lin-results">
          {found.nodes.map((m: NodeMatch) => (
            <li key={m.id} data-node={m.id}>
              <span class="lin-result-name">{m.name}</span>
              <span class="muted small">{m.type} · {m.type === "job" ? m.system ?? m.namespace : m.namespace}</span>
              <span class="lin-result-actions">
                {has(m.id) && <button type="button" onClick={() => onShow(m.id)} data-testid="lin-show">Show</button>}
                <button type="button" onClick={() => onOpen(m.id)} data-testid="lin-open">Open graph</button>
              </span>
            </li>))}
          {found.more && <li class="muted small">More match: type more of the name.</li>}
        </ul>)}
    </div>
  );
}
