// What the lineage API answers (docs/lineage.md): the graph in Marquez's shape, impact,
// a dataset's history, and the node search behind the map's search box.

export interface LineageEdge { origin: string; destination: string }

export interface LineageNode {
  id: string;
  type: "JOB" | "DATASET";
  data: { namespace: string; name: string; system: string | null };
  inEdges: LineageEdge[];
  outEdges: LineageEdge[];
}

export interface LineageGraph { graph: LineageNode[]; truncated: boolean }

export interface NodeMatch {
  id: string;
  type: "job" | "dataset";
  namespace: string;
  name: string;
  system: string | null;
}

export interface NodeMatches { nodes: NodeMatch[]; more: boolean }

export interface HistoryEntry {
  jobId: string;
  job: { namespace: string; name: string };
  system: string;
  access: "read" | "write";
  runId: string;
  state: string | null;
  at: string;
  source: string;
}

export interface DatasetHistory { dataset: string; items: HistoryEntry[]; nextCursor: string | null }
