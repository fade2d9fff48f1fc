// The run's graph: nodes placed by the layout worker, edges as SVG paths. Each node is a
// button (Tab / arrow keys move between them; Enter opens it).
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { duration, safeHref } from "../format";
import type { LayoutRequest, LayoutResult } from "./layout.worker";

export interface GraphNode {
  id: string;
  uses: string;
  system: string | null;
  state: string;
  attempt: number;
  duration: number | null;
  link: string | null;
  needs: string[];
}

const W = 210;
const H = 92;
let worker: Worker | null = null;
let seq = 0;

function layoutWorker(): Worker {
  worker ??= new Worker(new URL("./layout.worker.ts", import.meta.url), { type: "module" });
  return worker;
}

export function Graph({ nodes, selected, onSelect }: {
  nodes: GraphNode[]; selected: string | null; onSelect: (id: string) => void;
}) {
  // When the layout was asked for and when it came back (ms since navigation): the page's
  // first paint, in its parts, for the tests that measure it (`data-*-ms`).
  const [layout, setLayout] = useState<(LayoutResult & { asked: number; laid: number }) | null>(null);
  const shape = useMemo(() => JSON.stringify(nodes.map((n) => [n.id, n.needs])), [nodes]);
  const buttons = useRef<Record<string, HTMLButtonElement | null>>({});

  useEffect(() => {
    const ids = new Set(nodes.map((n) => n.id));
    const request: LayoutRequest = {
      seq: ++seq,
      nodes: nodes.map((n) => ({ id: n.id, width: W, height: H })),
      edges: nodes.flatMap((n) => n.needs.filter((u) => ids.has(u))
        .map((u) => ({ id: `${u}->${n.id}`, source: u, target: n.id }))),
    };
    const w = layoutWorker();
    const asked = performance.now();
    const onMessage = (e: MessageEvent<LayoutResult>) => {
      if (e.data.seq === request.seq) setLayout({ ...e.data, asked, laid: performance.now() });
    };
    w.addEventListener("message", onMessage);
    w.postMessage(request);
    return () => w.removeEventListener("message", onMessage);
  }, [shape]);

  if (!layout) return <p class="muted">Laying out {nodes.length} nodes…</p>;
  if (layout.error) return <p class="error">layout failed: {layout.error}</p>;

  const order = [...nodes].sort((a, b) => (layout.nodes[a.id]?.x ?? 0) - (layout.nodes[b.id]?.x ?? 0)
    || (layout.nodes[a.id]?.y ?? 0) - (layout.nodes[b.id]?.y ?? 0));
  function onKey(e: KeyboardEvent, id: string): void {
    const i = order.findIndex((n) => n.id === id);
    const step = e.key === "ArrowRight" || e.key === "ArrowDown" ? 1 : e.key === "ArrowLeft" || e.key === "ArrowUp" ? -1 : 0;
    if (!step) return;
    e.preventDefault();
    const next = order[Math.min(order.length - 1, Math.max(0, i + step))];
    buttons.current[next.id]?.focus();
  }

  return (
    <div class="graph" role="group" aria-label="run graph" data-testid="graph"
         data-asked-ms={Math.round(layout.asked)} data-laid-ms={Math.round(layout.laid)}
         data-layout-ms={Math.round(layout.ms ?? -1)}
         ref={(el) => { if (el) { el.style.width = `${layout.width + 20}px`; el.style.height = `${layout.height + 20}px`; } }}>
      <svg width={layout.width + 20} height={layout.height + 20} aria-hidden="true">
        {Object.entries(layout.edges).map(([id, pts]) => (
          <path key={id} class="edge" d={pts.map((p, i) => `${i ? "L" : "M"}${p.x + 10},${p.y + 10}`).join(" ")} />
        ))}
      </svg>
      {nodes.map((n) => {
        const at = layout.nodes[n.id] ?? { x: 0, y: 0 };
        const href = safeHref(n.link);
        return (
          <div key={n.id} class={`node s-${n.state}${selected === n.id ? " selected" : ""}`} data-node={n.id}
               ref={(el) => { if (el) { el.style.left = `${at.x + 10}px`; el.style.top = `${at.y + 10}px`; } }}>
            <button type="button" class="node-main" onClick={() => onSelect(n.id)} onKeyDown={(e) => onKey(e, n.id)}
                    ref={(el) => { buttons.current[n.id] = el; }} aria-pressed={selected === n.id}>
              <strong class="node-id">{n.id}</strong>
              <span class="node-state">{n.state}{n.attempt > 1 ? ` · attempt ${n.attempt}` : ""}</span>
              <span class="node-meta">{n.uses}{n.system ? ` · ${n.system}` : ""}{n.duration !== null ? ` · ${duration(n.duration)}` : ""}</span>
            </button>
            {href && <a class="node-link" href={href} target="_blank" rel="noopener noreferrer">open in system</a>}
          </div>
        );
      })}
    </div>
  );
}
