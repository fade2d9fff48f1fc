// A layered layout (left to right) fast enough for 5,000 nodes: cycles broken by a depth-first
// search, layers by longest path (sources pulled next to what reads them), order within a
// layer by a few barycenter sweeps, rows nudged towards their neighbours. ELK's layered
// algorithm does more (long-edge dummies, orthogonal routing) and takes seconds at this size;
// docs/console.md has the numbers. Pure: the worker (layout.worker.ts) runs it.

export interface LayoutInput {
  n: number;
  src: Int32Array;   // edge i goes from src[i] to dst[i] (node indexes)
  dst: Int32Array;
  nodeWidth: number;
  nodeHeight: number;
  gapX?: number;     // between layers
  gapY?: number;     // between rows
  sweeps?: number;   // barycenter sweeps (each one down and one up)
}

export interface LayoutOutput {
  x: Float32Array;   // top left corner of each node
  y: Float32Array;
  width: number;
  height: number;
  layers: number;
}

interface Csr { start: Int32Array; node: Int32Array; edge: Int32Array }

function csr(n: number, from: Int32Array, to: Int32Array): Csr {
  const start = new Int32Array(n + 1);
  for (let e = 0; e < from.length; e++) start[from[e] + 1]++;
  for (let i = 0; i < n; i++) start[i + 1] += start[i];
  const fill = start.slice(0, n);
  const node = new Int32Array(from.length);
  const edge = new Int32Array(from.length);
  for (let e = 0; e < from.length; e++) {
    const at = fill[from[e]]++;
    node[at] = to[e];
    edge[at] = e;
  }
  return { start, node, edge };
}

/** Edges that close a cycle (found by an iterative depth-first search), and the preorder. */
function backEdges(n: number, out: Csr): { back: Uint8Array; preorder: Int32Array } {
  const back = new Uint8Array(out.node.length);
  const state = new Uint8Array(n);  // 0 new, 1 on the stack, 2 done
  const preorder = new Int32Array(n);
  const stack = new Int32Array(n);
  const next = new Int32Array(n);   // the next out-edge to look at, per node on the stack
  let seen = 0;
  for (let root = 0; root < n; root++) {
    if (state[root]) continue;
    let top = 0;
    stack[0] = root;
    state[root] = 1;
    preorder[root] = seen++;
    next[root] = out.start[root];
    while (top >= 0) {
      const v = stack[top];
      if (next[v] < out.start[v + 1]) {
        const at = next[v]++;
        const w = out.node[at];
        if (state[w] === 1) back[out.edge[at]] = 1;
        else if (state[w] === 0) {
          state[w] = 1;
          preorder[w] = seen++;
          next[w] = out.start[w];
          stack[++top] = w;
        }
      } else {
        state[v] = 2;
        top--;
      }
    }
  }
  return { back, preorder };
}

function layering(n: number, out: Csr, into: Csr, back: Uint8Array): Int32Array {
  const layer = new Int32Array(n);
  const indegree = new Int32Array(n);
  for (let v = 0; v < n; v++) {
    for (let at = into.start[v]; at < into.start[v + 1]; at++) if (!back[into.edge[at]]) indegree[v]++;
  }
  const order = new Int32Array(n);
  let head = 0, tail = 0;
  for (let v = 0; v < n; v++) if (indegree[v] === 0) order[tail++] = v;
  while (head < tail) {
    const v = order[head++];
    for (let at = out.start[v]; at < out.start[v + 1]; at++) {
      if (back[out.edge[at]]) continue;
      const w = out.node[at];
      if (layer[v] + 1 > layer[w]) layer[w] = layer[v] + 1;
      if (--indegree[w] === 0) order[tail++] = w;
    }
  }
  // Sources sit just before the first node that reads them, not all in the first layer.
  for (let i = tail - 1; i >= 0; i--) {
    const v = order[i];
    let hasIn = false;
    for (let at = into.start[v]; at < into.start[v + 1] && !hasIn; at++) hasIn = !back[into.edge[at]];
    if (hasIn) continue;
    let least = Infinity;
    for (let at = out.start[v]; at < out.start[v + 1]; at++) {
      if (!back[out.edge[at]]) least = Math.min(least, layer[out.node[at]]);
    }
    if (least !== Infinity) layer[v] = least - 1;
  }
  return layer;
}

/** Reorders each layer by the mean relative position of its neighbours in `adj`. */
function sweep(layers: Int32Array[], pos: Float64Array, adj: Csr, back: Uint8Array,
               fromLast: boolean): void {
  const count = layers.length;
  const key = new Float64Array(pos.length);
  for (let s = 0; s < count; s++) {
    const nodes = layers[fromLast ? count - 1 - s : s];
    for (const v of nodes) {
      let sum = 0, k = 0;
      for (let at = adj.start[v]; at < adj.start[v + 1]; at++) {
        if (back[adj.edge[at]]) continue;
        sum += pos[adj.node[at]];
        k++;
      }
      key[v] = k ? sum / k : pos[v];
    }
    nodes.sort((a, b) => key[a] - key[b] || pos[a] - pos[b]);
    nodes.forEach((v, i) => { pos[v] = (i + 0.5) / nodes.length; });
  }
}

/** Rows: each node as near the mean row of its neighbours as its layer's order allows,
 * placed once from the top and once from the bottom and averaged (neither end drifts). */
function rows(layers: Int32Array[], y: Float32Array, adj: Csr, step: number, fromLast: boolean): void {
  const count = layers.length;
  for (let s = 1; s < count; s++) {
    const nodes = layers[fromLast ? count - 1 - s : s];
    const m = nodes.length;
    if (m === 0) continue;
    const want = new Float64Array(m);
    nodes.forEach((v, i) => {
      let sum = 0, k = 0;
      for (let at = adj.start[v]; at < adj.start[v + 1]; at++) { sum += y[adj.node[at]]; k++; }
      want[i] = k ? sum / k : y[v];
    });
    const down = new Float64Array(m), up = new Float64Array(m);
    for (let i = 0; i < m; i++) down[i] = i === 0 ? want[0] : Math.max(want[i], down[i - 1] + step);
    for (let i = m - 1; i >= 0; i--) up[i] = i === m - 1 ? want[i] : Math.min(want[i], up[i + 1] - step);
    for (let i = 0; i < m; i++) y[nodes[i]] = (down[i] + up[i]) / 2;
  }
}

export function layered(input: LayoutInput): LayoutOutput {
  const { n, src, dst, nodeWidth, nodeHeight } = input;
  const gapX = input.gapX ?? 90, gapY = input.gapY ?? 14, sweeps = input.sweeps ?? 4;
  const out = csr(n, src, dst), into = csr(n, dst, src);
  const { back, preorder } = backEdges(n, out);
  const layer = layering(n, out, into, back);
  let first = 0, last = 0;
  for (let v = 0; v < n; v++) { first = Math.min(first, layer[v]); last = Math.max(last, layer[v]); }
  const buckets: number[][] = Array.from({ length: last - first + 1 }, () => []);
  for (let v = 0; v < n; v++) buckets[layer[v] - first].push(v);
  const layers = buckets.map((b) => Int32Array.from(b).sort((a, c) => preorder[a] - preorder[c]));
  const pos = new Float64Array(n);
  for (const nodes of layers) nodes.forEach((v, i) => { pos[v] = (i + 0.5) / nodes.length; });
  for (let s = 0; s < sweeps; s++) {
    sweep(layers, pos, into, back, false);
    sweep(layers, pos, out, back, true);
  }
  const x = new Float32Array(n), y = new Float32Array(n);
  const step = nodeHeight + gapY;
  for (const nodes of layers) nodes.forEach((v, i) => { y[v] = (i - nodes.length / 2) * step; });
  for (let s = 0; s < 2; s++) {
    rows(layers, y, into, step, false);
    rows(layers, y, out, step, true);
  }
  let top = Infinity, bottom = -Infinity;
  for (let v = 0; v < n; v++) { top = Math.min(top, y[v]); bottom = Math.max(bottom, y[v]); }
  if (n === 0) top = bottom = 0;
  for (let v = 0; v < n; v++) {
    x[v] = (layer[v] - first) * (nodeWidth + gapX);
    y[v] -= top;
  }
  return { x, y, width: layers.length * (nodeWidth + gapX) - gapX, height: bottom - top + nodeHeight,
           layers: layers.length };
}
