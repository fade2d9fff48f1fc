// Shapes of the API's answers the console reads (see /openapi.json).
export interface Me {
  actor: string;
  kind: string;
  name: string;
  groups: string[];
  roles: { role: string; namespace: string }[];
  permissions: Record<string, string[]>;
}

export interface RunSummary {
  id: string;
  namespace: string;
  flow_id: string;
  revision: number;
  state: string;
  reason: string | null;
  trace_id: string;
  trigger: Record<string, unknown>;
  created_at: string;
  finished_at: string | null;
}

export interface Attempt {
  number: number;
  key: string;
  state: string;
  handle: { kind: string; external_id: string; system: string | null; url: string | null } | null;
  remote_status: string | null;
  outputs: Record<string, unknown>;
  error: string | null;
  created_at: string;
  submitted_at: string | null;
  finished_at: string | null;
}

export interface NodeDetail {
  id: string;
  uses: string;
  state: string;
  reason: string | null;
  error: string | null;
  outputs: Record<string, unknown>;
  retry_at: string | null;
  attempts: Attempt[];
}

export interface RunDetail extends RunSummary {
  inputs: Record<string, unknown>;
  nodes: NodeDetail[];
  outputs_hidden: boolean;
}

export interface Span {
  id: string;
  kind: string;
  parent_id: string | null;
  run_id: string | null;
  node_id: string | null;
  attempt: number | null;
  uses: string | null;
  system: string | null;
  external_id: string | null;
  state: string | null;
  remote_status: string | null;
  queued_at: string | null;
  submitted_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  duration_s: number | null;
  error: string | null;
  log_excerpt: string | null;
  deep_link: string | null;
  upstream: boolean;
  label: string | null;
  job_id: string | null;
}

export interface TraceNode {
  run_id: string;
  id: string;
  uses: string;
  state: string;
  needs: string[];
  reason: string | null;
  error: string | null;
  attempts: string[];
}

export interface RootCause {
  span_id: string | null;
  node_id: string | null;
  run_id: string | null;
  system: string | null;
  uses: string | null;
  external_id: string | null;
  error: string | null;
  log_excerpt: string | null;
  deep_link: string | null;
  at: string | null;
  path: string[];
  also_failed: unknown[];
}

export interface RunTrace {
  run: RunSummary;
  started_at: string | null;
  finished_at: string | null;
  spans: Span[];
  nodes: TraceNode[];
  root_cause: RootCause | null;
  notes: string[];
}
