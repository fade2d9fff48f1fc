// One run, live: graph, selected node (root cause when it failed), timeline, actions.
import { useEffect, useMemo, useState } from "preact/hooks";
import { call } from "../api";
import { may } from "../auth";
import { between, duration, NODE_FAILED, RUN_ACTIVE, triggerType, when } from "../format";
import { Graph, type GraphNode } from "../run/Graph";
import { NodePanel } from "../run/NodePanel";
import { RootCausePanel } from "../run/RootCause";
import { Timeline } from "../run/Timeline";
import { onLink } from "../router";
import { listen } from "../sse";
import type { Me, RunDetail, RunTrace, Span } from "../types";

export function RunPage({ runId, me }: { runId: string; me: Me }) {
  const [run, setRun] = useState<RunDetail | null>(null);
  const [trace, setTrace] = useState<RunTrace | null>(null);
  const [status, setStatus] = useState("connecting");
  const [selected, setSelected] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    const stream = listen(`/stream/runs/${encodeURIComponent(runId)}`, (name, data) => {
      if (name !== "run") return;
      const got = data as { run: RunDetail; trace: RunTrace };
      setRun(got.run);
      setTrace(got.trace);
    }, setStatus);
    return () => stream.close();
  }, [runId]);

  const spansOf = useMemo(() => {
    const by: Record<string, Span[]> = {};
    for (const s of trace?.spans ?? []) {
      if (s.kind === "attempt" && s.run_id === runId && s.node_id) (by[s.node_id] ??= []).push(s);
    }
    return by;
  }, [trace, runId]);

  const nodes: GraphNode[] = useMemo(() => (run?.nodes ?? []).map((n) => {
    const last = spansOf[n.id]?.[spansOf[n.id].length - 1];
    const needs = trace?.nodes.find((t) => t.run_id === runId && t.id === n.id)?.needs ?? [];
    const a = n.attempts[n.attempts.length - 1];
    return {
      id: n.id, uses: n.uses, state: n.state, needs, attempt: n.attempts.length,
      system: last?.system ?? a?.handle?.system ?? null,
      duration: last?.duration_s ?? (a ? between(a.submitted_at ?? a.created_at, a.finished_at) : null),
      link: last?.deep_link ?? a?.handle?.url ?? null,
    };
  }), [run, trace, spansOf, runId]);

  if (!run || !trace) {
    return <section><p class="muted" data-testid="stream-status">{status === "connecting" ? "Loading the run…" : status}</p></section>;
  }

  async function act(verb: "cancel" | "retry"): Promise<void> {
    try {
      const done = await call<{ detail: string }>(`/runs/${encodeURIComponent(runId)}/${verb}`, { method: "POST" });
      setNotice(done.detail);
    } catch (e) {
      setNotice(`${verb} refused: ${(e as Error).message}`);
    }
  }

  const node = run.nodes.find((n) => n.id === selected) ?? null;
  const canCancel = may(me, "runs:cancel", run.namespace) && (RUN_ACTIVE.has(run.state));
  const canRetry = may(me, "runs:retry", run.namespace) && run.state === "failed";
  return (
    <section>
      <p><a href="/" onClick={onLink}>← Runs</a></p>
      <h1>{run.namespace}/{run.flow_id} <span class={`state s-${run.state}`} data-testid="run-state">{run.state}</span></h1>
      <p class="muted">run {run.id} · revision {run.revision} · {triggerType(run.trigger)} · created {when(run.created_at)}
        {" "}· {duration(between(run.created_at, run.finished_at))} · <span data-testid="stream-status">{status}</span></p>
      {run.reason && <p>{run.reason}</p>}
      <div class="actions">
        {canCancel && <button type="button" onClick={() => void act("cancel")} data-testid="cancel">Cancel run</button>}
        {canRetry && <button type="button" onClick={() => void act("retry")} data-testid="retry">Retry failed nodes</button>}
        {notice && <span role="status" data-testid="notice">{notice}</span>}
      </div>
      <div class="run-body">
        <Graph nodes={nodes} selected={selected} onSelect={setSelected} />
        <aside>
          {node && NODE_FAILED.has(node.state) && <RootCausePanel cause={trace.root_cause} clicked={node.id} />}
          {node && <NodePanel runId={runId} node={node} spans={spansOf[node.id] ?? []} outputsHidden={run.outputs_hidden}
                              mayLogs={may(me, "logs:read", run.namespace)} />}
          {!node && <p class="muted">Select a node to see its attempts, outputs and log.</p>}
        </aside>
      </div>
      <Timeline spans={trace.spans} />
      {trace.notes.length > 0 && <ul class="muted">{trace.notes.map((n, i) => <li key={i}>{n}</li>)}</ul>}
    </section>
  );
}
