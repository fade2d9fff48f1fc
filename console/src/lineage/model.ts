// The loaded graph in flat arrays (5,000 nodes: no object per node on the hot paths), the
// view of it with some systems collapsed into one node each, and the walks that light up
// a node's upstream and downstream.
import type { LineageGraph } from "./types";

export const JOB = 0, DATASET = 1, GROUP = 2;
export const PALETTE = ["#1f5fbf", "#1f8a45", "#b35c00", "#7b3fbf", "#0f7c8c", "#a4161a", "#6b7a00", "#c2185b"];

/** Nodes of one system (jobs) or namespace (datasets). */
export interface Group { key: string; kind: "job" | "dataset"; label: string; members: number[]; color: number }

export interface Adjacency { start: Int32Array; node: Int32Array }

export interface Graph {
  ids: string[];
  names: string[];
  namespaces: string[];
  systems: (string | null)[];
  kinds: Uint8Array;
  groupOf: Int32Array;
  groups: Group[];
  index: Map<string, number>;
  src: Int32Array;
  dst: Int32Array;
  out: Adjacency;
  into: Adjacency;
  truncated: boolean;
}

function adjacency(n: number, from: Int32Array, to: Int32Array): Adjacency {
  const start = new Int32Array(n + 1);
  for (let e = 0; e < from.length; e++) start[from[e] + 1]++;
  for (let i = 0; i < n; i++) start[i + 1] += start[i];
  const fill = start.slice(0, n);
  const node = new Int32Array(from.length);
  for (let e = 0; e < from.length; e++) node[fill[from[e]]++] = to[e];
  return { start, node };
}

export function buildGraph(api: LineageGraph): Graph {
  const n = api.graph.length;
  const index = new Map<string, number>();
  api.graph.forEach((node, i) => index.set(node.id, i));
  const kinds = new Uint8Array(n);
  const groupOf = new Int32Array(n);
  const groups: Group[] = [];
  const groupIndex = new Map<string, number>();
  const src: number[] = [], dst: number[] = [];
  const seen = new Set<number>();
  api.graph.forEach((node, i) => {
    const job = node.type === "JOB";
    kinds[i] = job ? JOB : DATASET;
    const label = job ? node.data.system ?? node.data.namespace : node.data.namespace;
    const key = `${job ? "job" : "dataset"}:${label}`;
    let g = groupIndex.get(key);
    if (g === undefined) {
      g = groups.push({ key, kind: job ? "job" : "dataset", label, members: [], color: 0 }) - 1;
      groupIndex.set(key, g);
    }
    groups[g].members.push(i);
    groupOf[i] = g;
    for (const e of node.outEdges) {
      const to = index.get(e.destination);
      if (to === undefined || to === i || seen.has(i * n + to)) continue;
      seen.add(i * n + to);
      src.push(i);
      dst.push(to);
    }
  });
  // Colours in order of kind and name: the first eight groups all differ.
  [...groups].sort((a, b) => a.kind.localeCompare(b.kind) || a.label.localeCompare(b.label))
    .forEach((g, i) => { g.color = i % PALETTE.length; });
  const s = Int32Array.from(src), d = Int32Array.from(dst);
  return {
    ids: api.graph.map((x) => x.id), names: api.graph.map((x) => x.data.name),
    namespaces: api.graph.map((x) => x.data.namespace), systems: api.graph.map((x) => x.data.system),
    kinds, groupOf, groups, index, src: s, dst: d, out: adjacency(n, s, d), into: adjacency(n, d, s),
    truncated: api.truncated,
  };
}

/** What the map draws: the graph with each collapsed group as one node. */
export interface View {
  n: number;
  ids: string[];
  labels: string[];
  subs: string[];
  kinds: Uint8Array;
  colors: Uint8Array;
  base: Int32Array;    // view node -> graph node, -1 for a group
  group: Int32Array;   // view node -> its group
  viewOf: Int32Array;  // graph node -> view node
  src: Int32Array;
  dst: Int32Array;
}

export function groupId(g: Group): string {
  return `group:${g.key}`;
}

export function buildView(graph: Graph, collapsed: ReadonlySet<number>): View {
  const count = graph.ids.length;
  const viewOf = new Int32Array(count);
  const ids: string[] = [], labels: string[] = [], subs: string[] = [];
  const kinds: number[] = [], colors: number[] = [], base: number[] = [], group: number[] = [];
  const groupNode = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const g = graph.groupOf[i];
    if (collapsed.has(g)) {
      let v = groupNode.get(g);
      if (v === undefined) {
        const grp = graph.groups[g];
        v = ids.push(groupId(grp)) - 1;
        labels.push(grp.label);
        subs.push(`${grp.members.length} ${grp.kind === "job" ? "jobs" : "datasets"} · collapsed`);
        kinds.push(GROUP); colors.push(grp.color); base.push(-1); group.push(g);
        groupNode.set(g, v);
      }
      viewOf[i] = v;
    } else {
      viewOf[i] = ids.push(graph.ids[i]) - 1;
      labels.push(graph.names[i]);
      subs.push(graph.kinds[i] === JOB ? graph.systems[i] ?? graph.namespaces[i] : graph.namespaces[i]);
      kinds.push(graph.kinds[i]); colors.push(graph.groups[g].color); base.push(i); group.push(g);
    }
  }
  const n = ids.length;
  const src: number[] = [], dst: number[] = [];
  const seen = new Set<number>();
  for (let e = 0; e < graph.src.length; e++) {
    const a = viewOf[graph.src[e]], b = viewOf[graph.dst[e]];
    if (a === b || seen.has(a * n + b)) continue;
    seen.add(a * n + b);
    src.push(a);
    dst.push(b);
  }
  return { n, ids, labels, subs, kinds: Uint8Array.from(kinds), colors: Uint8Array.from(colors),
           base: Int32Array.from(base), group: Int32Array.from(group), viewOf,
           src: Int32Array.from(src), dst: Int32Array.from(dst) };
}

/** Every node reachable from `starts` along `adj` (the starts themselves not marked). */
export function reach(adj: Adjacency, starts: number[], n: number): Uint8Array {
  const mark = new Uint8Array(n);
  const queue = new Int32Array(n);
  const done = new Uint8Array(n);
  let head = 0, tail = 0;
  for (const s of starts) if (!done[s]) { done[s] = 1; queue[tail++] = s; }
  while (head < tail) {
    const v = queue[head++];
    for (let at = adj.start[v]; at < adj.start[v + 1]; at++) {
      const w = adj.node[at];
      mark[w] = 1;
      if (!done[w]) { done[w] = 1; queue[tail++] = w; }
    }
  }
  for (const s of starts) mark[s] = 0;
  return mark;
}

export const PLAIN = 0, SELECTED = 1, UPSTREAM = 2, DOWNSTREAM = 3, DIMMED = 4;

export interface Lit { marks: Uint8Array; upstream: number; downstream: number }

/** The view's marks for a selection (graph nodes, or a group's members): what feeds it
 * (upstream), what it feeds (downstream), the rest dimmed. Counts are graph nodes. */
export function light(graph: Graph, view: View, starts: number[]): Lit {
  const n = graph.ids.length;
  const up = reach(graph.into, starts, n), down = reach(graph.out, starts, n);
  const marks = new Uint8Array(view.n).fill(DIMMED);
  let upstream = 0, downstream = 0;
  for (let i = 0; i < n; i++) {
    const v = view.viewOf[i];
    if (up[i]) { upstream++; if (marks[v] === DIMMED) marks[v] = UPSTREAM; }
    if (down[i]) { downstream++; if (marks[v] === DIMMED) marks[v] = DOWNSTREAM; }
  }
  for (const s of starts) marks[view.viewOf[s]] = SELECTED;
  return { marks, upstream, downstream };
}
