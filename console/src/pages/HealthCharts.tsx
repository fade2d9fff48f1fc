// The health page's charts, drawn as SVG with attributes only: no inline style, which the
// page's CSP forbids.
import { duration } from "../format";
import type { SystemStats } from "../types";

const ROW = 26, LABEL = 160, WIDTH = 640, BAR = WIDTH - LABEL - 120;

const short = (name: string) => (name.length > 22 ? `${name.slice(0, 21)}…` : name);

/** Run latency p50 / p95 / p99 per system as bars on one linear scale. */
export function LatencyChart({ systems }: { systems: SystemStats[] }) {
  const shown = systems.filter((s) => s.run_latency.count > 0);
  if (shown.length === 0) return null;
  const max = Math.max(...shown.map((s) => s.run_latency.p99 ?? s.run_latency.p95 ?? s.run_latency.p50 ?? 0), 0.001);
  const keys = [["p50", "lat-p50"], ["p95", "lat-p95"], ["p99", "lat-p99"]] as const;
  return (
    <figure class="chart" data-testid="latency-chart">
      <svg viewBox={`0 0 ${WIDTH} ${shown.length * ROW + 6}`} width={WIDTH} height={shown.length * ROW + 6}
           role="img" aria-label="run latency percentiles per system">
        {shown.map((s, i) => (
          <g key={s.system} transform={`translate(0 ${i * ROW + 3})`}>
            <text x={0} y={15} class="chart-label">{short(s.system)}</text>
            {[...keys].reverse().map(([k, cls]) => {
              const v = s.run_latency[k];
              return v === null ? null : <rect key={k} x={LABEL} y={3} height={16} class={cls}
                                               width={Math.max(1, (v / max) * BAR)}><title>{`${k} ${duration(v)}`}</title></rect>;
            })}
            <text x={LABEL + BAR + 6} y={15} class="chart-value">{duration(s.run_latency.p95) || duration(s.run_latency.p50)}</text>
          </g>))}
      </svg>
      <figcaption class="muted small">Run latency per system: p50 (dark), p95, p99 (light); the figure is p95.</figcaption>
    </figure>
  );
}

/** Push or poll per system: what the system pushed (signed events) beside what Interlock
 * polled (attempts followed by polling, and foreign runs the watcher found when nothing was
 * pushed), on one count scale. */
export function ContactChart({ systems }: { systems: SystemStats[] }) {
  const shown = systems.map((s) => {
    const c = s.contact;
    return { s, push: c.pushed_events, poll: c.polled_attempts + (c.mode === "push" ? 0 : c.foreign_runs) };
  }).filter((x) => x.push + x.poll > 0);
  if (shown.length === 0) return null;
  const max = Math.max(...shown.map((x) => x.push + x.poll));
  const scale = (n: number) => (n / max) * BAR;
  return (
    <figure class="chart" data-testid="contact-chart">
      <svg viewBox={`0 0 ${WIDTH} ${shown.length * ROW + 6}`} width={WIDTH} height={shown.length * ROW + 6}
           role="img" aria-label="events pushed by each system and polled by Interlock">
        {shown.map(({ s, push, poll }, i) => (
          <g key={s.system} transform={`translate(0 ${i * ROW + 3})`} data-system={s.system}>
            <text x={0} y={15} class="chart-label">{short(s.system)}</text>
            {push > 0 && <rect x={LABEL} y={3} height={16} width={Math.max(1, scale(push))} class="contact-push">
              <title>{`${push} pushed`}</title></rect>}
            {poll > 0 && <rect x={LABEL + scale(push)} y={3} height={16} width={Math.max(1, scale(poll))} class="contact-poll">
              <title>{`${poll} polled`}</title></rect>}
            <text x={LABEL + BAR + 6} y={15} class="chart-value">{`${push} push · ${poll} poll`}</text>
          </g>))}
      </svg>
      <figcaption class="muted small">How each system reached Interlock: events it pushed (dark) and work Interlock polled (light).</figcaption>
    </figure>
  );
}
