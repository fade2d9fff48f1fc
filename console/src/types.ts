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

export interface ApprovalSummary {
  id: string;
  origin: string;
  state: string;
  subject: string;
  namespace: string;
  flow: string | null;
  run_id: string | null;
  node_id: string | null;
  system: string | null;
  options: string[];
  created_at: string;
  deadline: string | null;
  escalated: boolean;
  option: string | null;
  decided_by: unknown;
  decided_at: string | null;
  reason: string | null;
  link: string | null;
  payload_hash: string | null;
}

export interface InputSpec {
  type?: string;
  required?: boolean;
  default?: unknown;
  description?: string;
}

export interface QuorumRule {
  name: string;
  count: number;
  role: string | null;
  group: string | null;
  principals: string[];
}

export interface AffectedNode {
  id: string;
  namespace: string;
  name: string;
  system: string | null;
  distance: number;
}

export interface Impact {
  nodeId: string;
  direction: string;
  depth: number;
  jobs: Record<string, AffectedNode[]>;
  flows: string[];
  systems: string[];
  datasets: AffectedNode[];
  truncated: boolean;
}

export interface ApprovalDetail extends ApprovalSummary {
  body: string | null;
  reject_options: string[];
  inputs: Record<string, InputSpec>;
  rules: QuorumRule[];
  escalation_rules: unknown;
  excluded: Record<string, string>;
  waived: Record<string, unknown>;
  votes: { actor: string; option: string; inputs: Record<string, unknown>; comment: string; at: string }[];
  tally: { leading_option?: string | null; missing?: Record<string, number> };
  decision_inputs: Record<string, unknown> | null;
  payload: unknown;
  details: Record<string, unknown> | null;
  run: {
    id: string; flow: string; revision: number; state: string;
    trigger: Record<string, unknown>; inputs: Record<string, unknown>; created_at: string;
  } | null;
  upstream: Record<string, { state: string; outputs?: unknown }>;
  impact: Impact | null;
}

export interface AuditRecord {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  origin: string;
  prev_hash: string;
  hash: string;
}

export interface AuditVerdict {
  ok: boolean;
  checked: number;
  broken_at: number | null;
  reason: string | null;
  archived: number;
  anchors: number;
}

export interface Latency {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface SystemStats {
  system: string;
  kind: string;
  registered: boolean;
  attempts: Record<string, number>;
  success_rate: number | null;
  run_latency: Latency;
  queue_latency: Latency;
  last_seen: string | null;
  health: { status: string; reasons: string[]; in_flight: number; overdue_polls: number; lost: number };
  contact: Contact;
}

/** How a system's news reached Interlock in the window: pushed by it, or polled. */
export interface Contact {
  mode: "push" | "poll" | "none";
  pushed_events: number;
  last_push: string | null;
  polled_attempts: number;
  foreign_runs: number;
}

export interface CronJob {
  system: string;
  job: string;
  schedule: string;
  timezone: string;
  monitored: boolean;
  next_due: string | null;
  status: string | null;
  last_run: { state: string; started_at: string | null; ended_at: string | null; exit_code: number | null } | null;
}

export interface FlowStats {
  namespace: string;
  flow_id: string;
  total: number;
  success_rate: number | null;
  duration: Latency;
  last_run: { id: string; state: string; created_at: string } | null;
}

export interface OidcOptions { issuer: string; client_id: string; resource: string; scopes: string }
export interface LoginOptions { token: boolean; oidc: OidcOptions | null }
