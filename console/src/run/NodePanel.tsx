// One node: attempts, error, outputs, and its searchable log (for those with `logs:read`).
import { useState } from "preact/hooks";
import { call } from "../api";
import { duration, between, safeHref } from "../format";
import type { NodeDetail, Span } from "../types";
import { LogView } from "./LogView";

export function NodePanel({ runId, node, spans, outputsHidden, mayLogs }: {
  runId: string; node: NodeDetail; spans: Span[]; outputsHidden: boolean; mayLogs: boolean;
}) {
  const [log, setLog] = useState<string | null>(null);
  async function loadLog(): Promise<void> {
    try {
      const got = await call<{ text: string }>(`/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(node.id)}/logs`);
      setLog(got.text || "(empty)");
    } catch (e) {
      setLog(`could not read the log: ${(e as Error).message}`);
    }
  }
  const excerpt = [...spans].reverse().find((s) => s.log_excerpt)?.log_excerpt;
  return (
    <section class="panel" data-testid="node-panel" aria-label={`node ${node.id}`}>
      <h2>{node.id} <span class={`state s-${node.state}`}>{node.state}</span></h2>
      <p class="muted">{node.uses}{node.reason ? ` · ${node.reason}` : ""}</p>
      {node.error && <p class="error" data-testid="node-error">{node.error}</p>}
      <h3>Attempts</h3>
      <ul class="attempts">
        {node.attempts.map((a) => {
          const span = spans.find((s) => s.attempt === a.number);
          const href = safeHref(span?.deep_link ?? a.handle?.url);
          return (
            <li key={a.number}>
              #{a.number} <span class={`state s-${a.state}`}>{a.state}</span>
              {a.remote_status && <span class="muted"> ({a.remote_status})</span>}
              {" "}{duration(between(a.submitted_at ?? a.created_at, a.finished_at))}
              {a.handle?.system && <span class="muted"> · {a.handle.system}</span>}
              {href && <> · <a href={href} target="_blank" rel="noopener noreferrer">{a.handle?.external_id ?? "open"}</a></>}
              {a.error && <div class="error">{a.error}</div>}
            </li>
          );
        })}
      </ul>
      <h3>Outputs</h3>
      {outputsHidden ? <p class="muted">Hidden: reading outputs needs <code>outputs:read</code>.</p>
        : Object.keys(node.outputs).length === 0 ? <p class="muted">none</p>
          : <pre tabIndex={0} class="outputs" data-testid="outputs">{JSON.stringify(node.outputs, null, 2)}</pre>}
      {excerpt && <><h3>Log excerpt</h3><pre tabIndex={0} class="log" data-testid="log-excerpt">{excerpt}</pre></>}
      {mayLogs && <p><button type="button" onClick={() => void loadLog()} data-testid="load-log">Show the log</button></p>}
      {log !== null && <LogView text={log} />}
    </section>
  );
}
