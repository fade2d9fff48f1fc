// The lineage map: find a node, load the graph around it (GET /lineage), lay it out in a
// worker, draw what is on screen (view.ts), collapse systems into one box each, light up a
// node's upstream and downstream, and show a dataset's history.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { call } from "../api";
import { navigate } from "../router";
import { Details } from "./Details";
import type { LayoutDone, LayoutJob } from "./layout.worker";
import { Legend } from "./Legend";
import { buildGraph, buildView, groupId, light, type Graph, type View } from "./model";
import { Search } from "./Search";
import type { LineageGraph } from "./types";
import { MapView, NODE_H, NODE_W } from "./view";

const DEPTHS = [1, 2, 3, 5, 10, 20];
let worker: Worker | null = null;
let seq = 0;

function layoutWorker(): Worker {
  worker ??= new Worker(new URL("./layout.worker.ts", import.meta.url), { type: "module" });
  return worker;
}

function layout(view: View): Promise<LayoutDone> {
  const w = layoutWorker();
  const job: LayoutJob = { seq: ++seq, n: view.n, src: view.src.slice(), dst: view.dst.slice(),
                           nodeWidth: NODE_W, nodeHeight: NODE_H };
  return new Promise((resolve) => {
    const onMessage = (e: MessageEvent<LayoutDone>) => {
      if (e.data.seq !== job.seq) return;
      w.removeEventListener("message", onMessage);
      resolve(e.data);
    };
    w.addEventListener("message", onMessage);
    w.postMessage(job, [job.src.buffer, job.dst.buffer]);
  });
}

/** The graph nodes a selection stands for: the node, or a collapsed group's members. */
function startsOf(graph: Graph, id: string): number[] {
  const i = graph.index.get(id);
  if (i !== undefined) return [i];
  return graph.groups.find((g) => groupId(g) === id)?.members ?? [];
}

/** Where a node (or group) is in a view: its own box, or the group box holding it. */
function indexIn(graph: Graph, view: View, id: string): number {
  const i = graph.index.get(id);
  if (i !== undefined) return view.viewOf[i];
  const own = view.ids.indexOf(id);
  if (own >= 0) return own;
  const group = graph.groups.find((g) => groupId(g) === id);
  return group ? view.viewOf[group.members[0]] : -1;
}

function depthOf(text: string | null): number {
  const d = Number(text ?? "20");
  return Number.isInteger(d) && d >= 0 && d <= 20 ? d : 20;
}

interface Anchor { id: string; at: { x: number; y: number } }

export function LineageMap({ path }: { path: string }) {
  const params = new URLSearchParams(path.split("?")[1] ?? "");
  const node = params.get("node");
  const depth = depthOf(params.get("depth"));
  const [graph, setGraph] = useState<Graph | null>(null);
  const [collapsed, setCollapsed] = useState<ReadonlySet<number>>(new Set());
  const [selected, setSelected] = useState<string | null>(null);
  const [shown, setShown] = useState<{ view: View; ms: number } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const host = useRef<HTMLDivElement>(null);
  const map = useRef<MapView | null>(null);
  const onMap = useRef<View | null>(null);
  const anchor = useRef<Anchor | null>(null);
  const timing = useRef({ started: 0, fetchMs: 0, buildMs: 0, first: false });

  const view = useMemo(() => (graph ? buildView(graph, collapsed) : null), [graph, collapsed]);
  const lit = useMemo(() => {
    if (!graph || !view || !selected) return null;
    const starts = startsOf(graph, selected);
    return starts.length ? light(graph, view, starts) : null;
  }, [graph, view, selected]);

  useEffect(() => {
    layoutWorker();  // started while the graph loads
    const m = new MapView(host.current!, (v) => {
      const current = onMap.current;
      setSelected(v === null || !current ? null : current.ids[v]);
    });
    map.current = m;
    return () => m.destroy();
  }, []);

  useEffect(() => {
    setSelected(null);
    setError(null);
    if (!node) { setGraph(null); return; }
    let gone = false;
    const started = performance.now();
    setBusy("Loading the graph…");
    call<LineageGraph>(`/lineage?${new URLSearchParams({ nodeId: node, depth: String(depth) })}`).then((api) => {
      if (gone) return;
      const fetched = performance.now();
      const built = buildGraph(api);
      timing.current = { started, fetchMs: fetched - started, buildMs: performance.now() - fetched, first: true };
      anchor.current = null;
      setCollapsed(new Set());
      setGraph(built);
    }).catch((e: Error) => {
      if (gone) return;
      setBusy(null);
      setGraph(null);
      setError(e.message);
    });
    return () => { gone = true; };
  }, [node, depth]);

  useEffect(() => {
    if (!view || !graph) { onMap.current = null; map.current?.setScene(null); setShown(null); return; }
    let gone = false;
    setBusy(`Laying out ${view.n} nodes…`);
    void layout(view).then((done) => {
      if (gone) return;
      setBusy(null);
      if (done.error) { setError(`the layout failed: ${done.error}`); return; }
      const m = map.current!;
      onMap.current = view;
      m.setScene({ view, x: done.x, y: done.y, width: done.width, height: done.height });
      const keep = anchor.current;
      anchor.current = null;
      const v = keep ? indexIn(graph, view, keep.id) : -1;
      if (keep && v >= 0) m.placeAt(v, keep.at);
      else m.fit();
      const drawing = performance.now();
      m.draw();
      const drawMs = performance.now() - drawing;
      setShown({ view, ms: done.ms });
      if (timing.current.first) {
        timing.current.first = false;
        const t = timing.current;
        requestAnimationFrame(() => {  // the frame after the draw: the canvas is on screen
          const d = host.current?.dataset;
          if (!d) return;
          const now = performance.now();
          d.paintMs = now.toFixed(0);  // from navigation start
          d.loadMs = (now - t.started).toFixed(0);
          d.fetchMs = t.fetchMs.toFixed(0);
          d.buildMs = t.buildMs.toFixed(0);
          d.layoutMs = done.ms.toFixed(0);
          d.drawMs = drawMs.toFixed(0);
          performance.mark("lineage-painted");
        });
      }
    });
    return () => { gone = true; };
  }, [view]);

  useEffect(() => {
    if (shown && shown.view === view) map.current?.setMarks(lit?.marks ?? null);
  }, [lit, shown]);

  function open(id: string): void {
    navigate(`/lineage?${new URLSearchParams({ node: id, depth: String(depth) })}`);
  }

  function show(id: string): void {
    if (!graph || !onMap.current) return;
    const v = indexIn(graph, onMap.current, id);
    if (v < 0) return;
    map.current?.placeAt(v, undefined, 1);
    setSelected(id);
  }

  /** Collapse or expand one group, keeping what the user looks at where it was. */
  function toggle(g: number): void {
    if (!graph || !onMap.current) return;
    const group = graph.groups[g];
    const shut = collapsed.has(g);
    const from = shut ? groupId(group) : graph.ids[group.members[0]];
    const at = map.current?.screenOf(indexIn(graph, onMap.current, from));
    anchor.current = at ? { id: shut ? graph.ids[group.members[0]] : groupId(group), at } : null;
    const next = new Set(collapsed);
    if (shut) next.delete(g);
    else next.add(g);
    if (selected === groupId(group)) setSelected(null);
    setCollapsed(next);
  }

  function all(collapse: boolean): void {
    if (!graph) return;
    anchor.current = null;
    setSelected(null);
    setCollapsed(new Set(collapse ? graph.groups.map((_, g) => g) : []));
  }

  const status = graph && shown
    ? `${graph.ids.length} nodes · ${graph.src.length} edges · ${shown.view.n} boxes · laid out in ${shown.ms.toFixed(0)} ms`
    : "";
  return (
    <section class="lineage">
      <div class="lin-toolbar">
        <h1>Lineage</h1>
        <label>Depth{" "}
          <select value={String(depth)} data-testid="lin-depth" disabled={!node}
                  onChange={(e) => node && navigate(`/lineage?${new URLSearchParams({ node, depth: (e.currentTarget as HTMLSelectElement).value })}`)}>
            {DEPTHS.map((d) => <option key={d} value={String(d)}>{d} {d === 1 ? "job" : "jobs"} away</option>)}
          </select>
        </label>
        <span class="lin-zoom" role="group" aria-label="zoom">
          <button type="button" aria-label="zoom in" onClick={() => map.current?.zoomAt(1.25)} data-testid="lin-zoom-in">+</button>
          <button type="button" aria-label="zoom out" onClick={() => map.current?.zoomAt(0.8)} data-testid="lin-zoom-out">−</button>
          <button type="button" onClick={() => map.current?.fit()} data-testid="lin-fit">Fit</button>
        </span>
        <span class="muted small" role="status" data-testid="lin-status">{busy ?? status}</span>
      </div>
      {node && <p class="muted small lin-start">Around <span class="lin-wrap" data-testid="lin-start">{node}</span></p>}
      {error && <p class="error" role="alert" data-testid="lin-error">{error}</p>}
      {graph?.truncated && <p class="lin-warn" data-testid="lin-truncated">The graph stopped at 5,000 nodes (the nearest
        kept): choose a smaller depth, or start from a node nearer what you need.</p>}
      <div class="lin-body">
        <div class="lin-frame">
          <div class="lin-map" ref={host} tabIndex={0} role="application" data-testid="lin-map"
               aria-label="lineage map: drag or arrow keys to pan, wheel or + and - to zoom, 0 to fit; Tab reaches the nodes on screen" />
          {!node && <p class="lin-empty muted">Find a job or a dataset on the right to draw the lineage around it.</p>}
        </div>
        <aside class="lin-side">
          <Search has={(id) => graph?.index.has(id) ?? false} onShow={show} onOpen={open} />
          {graph && selected && <Details graph={graph} selected={selected} lit={lit} onOpen={open}
                                         onCenter={() => show(selected)} onExpand={toggle} />}
          {graph && <Legend graph={graph} collapsed={collapsed} onToggle={toggle} onAll={all} onShow={show} />}
        </aside>
      </div>
      <p class="muted small">Drag, or use the arrow keys, to pan; the wheel or + and − to zoom; 0 fits the graph.
        Select a node to light up what feeds it (<span class="lin-up">upstream</span>) and what it feeds
        (<span class="lin-down">downstream</span>).</p>
    </section>
  );
}
