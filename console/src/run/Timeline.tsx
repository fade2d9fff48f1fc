// The timeline across systems: one bar per attempt (and per run and foreign run), with its
// queued, running, approval-wait and retry (backoff before it) segments.
import { duration } from "../format";
import type { Span } from "../types";

// What a segment of a bar is (`data-seg`, for tests and styles alike).
type Seg = "queued" | "approval" | "running" | "retry";

const t = (at: string | null) => (at ? Date.parse(at) : null);

export function Timeline({ spans }: { spans: Span[] }) {
  const starts = spans.map((s) => t(s.queued_at) ?? t(s.started_at)).filter((x): x is number => x !== null);
  if (!starts.length) return null;
  const now = Date.now();
  const t0 = Math.min(...starts);
  const t1 = Math.max(t0 + 1000, ...spans.map((s) => t(s.finished_at) ?? now));
  const pct = (x: number) => `${(((x - t0) / (t1 - t0)) * 100).toFixed(2)}%`;
  const width = (a: number, b: number) => `${Math.max(0.3, ((b - a) / (t1 - t0)) * 100).toFixed(2)}%`;
  const previousEnd: Record<string, number> = {};
  return (
    <section class="panel timeline" data-testid="timeline" aria-label="timeline">
      <h2>Timeline <span class="muted">{duration((t1 - t0) / 1000)}</span></h2>
      {spans.map((s) => {
        const queued = t(s.queued_at);
        const started = t(s.started_at) ?? t(s.submitted_at);
        const end = t(s.finished_at) ?? now;
        const segments: { seg: Seg; cls: string; a: number; b: number; title: string }[] = [];
        // People deciding (a node's gate, an agent's tool call): one amber bar, asked to decided.
        const approval = s.kind === "approval";
        const key = s.node_id && !approval ? `${s.run_id}/${s.node_id}` : "";
        if (key && previousEnd[key] !== undefined && queued !== null) {
          segments.push({ seg: "retry", cls: "seg-retry", a: previousEnd[key], b: queued, title: "retry backoff" });
        }
        if (approval) {
          if (started !== null) segments.push({ seg: "approval", cls: "seg-approval", a: started, b: end, title: `awaiting approval: ${s.state}` });
        } else {
          if (queued !== null && started !== null && started > queued) {
            segments.push({ seg: "queued", cls: "seg-queued", a: queued, b: started, title: "queued" });
          }
          if (started !== null) segments.push({ seg: "running", cls: `seg-running s-${s.state ?? ""}`, a: started, b: end, title: s.state ?? "running" });
          else if (queued !== null) segments.push({ seg: "queued", cls: "seg-queued", a: queued, b: end, title: s.state ?? "queued" });
        }
        if (key) previousEnd[key] = end;
        const label = s.kind === "attempt" ? `${s.node_id} #${s.attempt}` : s.label ?? s.external_id ?? s.kind;
        return (
          <div class={`tl-row${s.upstream ? " upstream" : ""}`} key={s.id} data-span={s.id} data-kind={s.kind}>
            <span class="tl-label">{s.upstream ? "↑ " : ""}{label}{s.system ? ` · ${s.system}` : ""}</span>
            <span class="tl-track">
              {segments.map((g, i) => (
                <span key={i} class={`tl-seg ${g.cls}`} title={g.title} data-seg={g.seg}
                      ref={(el) => { if (el) { el.style.left = pct(g.a); el.style.width = width(g.a, g.b); } }} />
              ))}
            </span>
            <span class="tl-dur">{duration(s.duration_s)}</span>
          </div>
        );
      })}
    </section>
  );
}
