// Lays out a run's graph with ELK (layered, left to right) off the main thread.
import ELK from "elkjs/lib/elk.bundled.js";
import type { ElkNode } from "elkjs/lib/elk-api";

export interface LayoutRequest {
  seq: number;
  nodes: { id: string; width: number; height: number }[];
  edges: { id: string; source: string; target: string }[];
}

export interface LayoutResult {
  seq: number;
  width: number;
  height: number;
  nodes: Record<string, { x: number; y: number }>;
  edges: Record<string, { x: number; y: number }[]>;
  ms?: number;  // the layout's own time in the worker
  error?: string;
}

const elk = new ELK();

self.onmessage = async (e: MessageEvent<LayoutRequest>) => {
  const { seq, nodes, edges } = e.data;
  const started = performance.now();
  try {
    const input: ElkNode = {
      id: "root",
      layoutOptions: {
        "elk.algorithm": "layered",
        "elk.direction": "RIGHT",
        "elk.layered.spacing.nodeNodeBetweenLayers": "60",
        "elk.spacing.nodeNode": "24",
        "elk.edgeRouting": "ORTHOGONAL",
      },
      children: nodes,
      edges: edges.map((x) => ({ id: x.id, sources: [x.source], targets: [x.target] })),
    };
    const graph = await elk.layout(input);
    const result: LayoutResult = { seq, width: graph.width ?? 0, height: graph.height ?? 0, nodes: {}, edges: {} };
    for (const n of graph.children ?? []) result.nodes[n.id] = { x: n.x ?? 0, y: n.y ?? 0 };
    for (const x of graph.edges ?? []) {
      const s = x.sections?.[0];
      if (s) result.edges[x.id] = [s.startPoint, ...(s.bendPoints ?? []), s.endPoint];
    }
    result.ms = performance.now() - started;
    (self as unknown as Worker).postMessage(result);
  } catch (err) {
    (self as unknown as Worker).postMessage({ seq, width: 0, height: 0, nodes: {}, edges: {}, error: String(err) });
  }
};
