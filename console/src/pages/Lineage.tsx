// The lineage map (`/lineage?node=<id>&depth=<n>`, `lineage:read`). Its code (the canvas
// view, the layout worker) is a chunk of its own, fetched the first time the page opens.
import type { FunctionComponent } from "preact";
import { useEffect, useState } from "preact/hooks";

type MapPage = FunctionComponent<{ path: string }>;
let loaded: MapPage | null = null;

export function Lineage({ path }: { path: string }) {
  const [Page, setPage] = useState<MapPage | null>(() => loaded);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (loaded) return;
    import("../lineage/LineageMap").then((m) => {
      loaded = m.LineageMap;
      setPage(() => m.LineageMap);
    }).catch((e: unknown) => setError(`the lineage map could not be loaded: ${String(e)}`));
  }, []);

  if (error) return <section><h1>Lineage</h1><p class="error" role="alert">{error}</p></section>;
  return Page ? <Page path={path} /> : <section><h1>Lineage</h1><p class="muted">Loading the map…</p></section>;
}
