// Health (`systems:read`): per system success rate, latency percentiles, last contact, push
// or poll and health over a window (`/dashboards/systems`); cron jobs on time, LATE or MISSED
// (`/cron/jobs`); flows' success rates (`/dashboards/flows`, for those reading every flow).
import { useEffect, useState } from "preact/hooks";
import { call } from "../api";
import { duration, percent, when } from "../format";
import type { Contact, CronJob, FlowStats, Me, SystemStats } from "../types";
import { ContactChart, LatencyChart } from "./HealthCharts";

const WINDOWS: Record<string, number> = { "1h": 3600, "24h": 86400, "7d": 7 * 86400 };

/** Push or poll, and the counts behind it. */
function ContactCell({ contact }: { contact: Contact }) {
  const parts = [contact.pushed_events ? `${contact.pushed_events} pushed` : "",
    contact.polled_attempts ? `${contact.polled_attempts} polled` : "",
    contact.foreign_runs ? `${contact.foreign_runs} foreign run${contact.foreign_runs > 1 ? "s" : ""}` : ""];
  return <td data-testid="contact"><span class={`state k-${contact.mode}`}>{contact.mode}</span>
    <div class="muted small">{parts.filter(Boolean).join(" · ")}{contact.last_push ? ` · last push ${when(contact.last_push)}` : ""}</div></td>;
}

function Rate({ rate }: { rate: number | null }) {
  return <span class="rate">{rate !== null && <meter min={0} max={1} low={0.9} high={0.99} optimum={1} value={rate} />}
    {" "}{percent(rate)}</span>;
}

export function Health({ me }: { me: Me }) {
  const [span, setSpan] = useState("24h");
  const [systems, setSystems] = useState<SystemStats[] | null>(null);
  const [cron, setCron] = useState<CronJob[] | null>(null);
  const [flows, setFlows] = useState<FlowStats[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [at, setAt] = useState<Date | null>(null);
  const allFlows = (me.permissions["flows:read"] ?? []).includes("*");

  async function load(): Promise<void> {
    const since = new Date(Date.now() - WINDOWS[span] * 1000).toISOString();
    const q = new URLSearchParams({ since });
    try {
      const [s, c, f] = await Promise.all([
        call<{ systems: SystemStats[] }>(`/dashboards/systems?${q}`),
        call<CronJob[]>("/cron/jobs"),
        allFlows ? call<{ flows: FlowStats[] }>(`/dashboards/flows?${q}&limit=100`) : Promise.resolve(null),
      ]);
      setSystems(s.systems);
      setCron(c);
      setFlows(f ? f.flows : null);
      setError(null);
      setAt(new Date());
    } catch (e) {
      setError((e as Error).message);
    }
  }

  useEffect(() => { void load(); }, [span]);

  return (
    <section>
      <h1>Health</h1>
      <div class="actions">
        <label>Window <select value={span} onChange={(e) => setSpan((e.target as HTMLSelectElement).value)}
                              data-testid="health-window">
          {Object.keys(WINDOWS).map((w) => <option key={w} value={w}>last {w}</option>)}</select></label>
        <button type="button" onClick={() => void load()} data-testid="health-refresh">Refresh</button>
        {at && <span class="muted">as of {at.toLocaleTimeString()}</span>}
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      <h2>Systems</h2>
      {systems === null ? <p class="muted">Loading…</p> : systems.length === 0 ? <p class="muted">No system seen in the window.</p> : (
        <table class="runs" data-testid="systems">
          <thead><tr><th>System</th><th>Health</th><th>Success</th><th>Attempts</th><th>Run p50 / p95 / p99</th>
            <th>Queue p50</th><th>In flight</th><th>Last seen</th><th>Push or poll</th></tr></thead>
          <tbody>{systems.map((s) => (
            <tr key={s.system} data-system={s.system}>
              <td>{s.system} <span class="muted">{s.kind}{s.registered ? "" : " (adapter)"}</span></td>
              <td><span class={`state h-${s.health.status}`}>{s.health.status}</span>
                {s.health.reasons.map((r, i) => <div key={i} class="muted small">{r}</div>)}</td>
              <td><Rate rate={s.success_rate} /></td>
              <td>{Object.entries(s.attempts).filter(([, n]) => n > 0).map(([st, n]) => `${st} ${n}`).join(" · ") || "0"}</td>
              <td>{[s.run_latency.p50, s.run_latency.p95, s.run_latency.p99].map((v) => duration(v) || "–").join(" / ")}</td>
              <td>{duration(s.queue_latency.p50) || "–"}</td>
              <td>{s.health.in_flight}</td>
              <td>{when(s.last_seen)}</td>
              <ContactCell contact={s.contact} />
            </tr>))}</tbody>
        </table>)}
      {systems && <div class="charts"><LatencyChart systems={systems} /><ContactChart systems={systems} /></div>}
      <h2>Cron jobs</h2>
      {cron === null ? <p class="muted">Loading…</p> : cron.length === 0 ? <p class="muted">No cron jobs registered.</p> : (
        <table class="runs" data-testid="cron">
          <thead><tr><th>Job</th><th>Schedule</th><th>Status</th><th>Next due</th><th>Last run</th></tr></thead>
          <tbody>{cron.map((j) => (
            <tr key={`${j.system}/${j.job}`}>
              <td>{j.system}/{j.job}{j.monitored ? "" : <span class="muted"> (not monitored)</span>}</td>
              <td>{j.schedule} <span class="muted">{j.timezone}</span></td>
              <td><span class={`state c-${j.status ?? "none"}`}>{(j.status ?? "never expected").toUpperCase()}</span></td>
              <td>{when(j.next_due)}</td>
              <td>{j.last_run ? `${j.last_run.state} ${when(j.last_run.started_at)}${j.last_run.exit_code !== null ? ` · exit ${j.last_run.exit_code}` : ""}` : ""}</td>
            </tr>))}</tbody>
        </table>)}
      {flows !== null && (<>
        <h2>Flows</h2>
        {flows.length === 0 ? <p class="muted">No flows.</p> : (
          <table class="runs" data-testid="flows">
            <thead><tr><th>Flow</th><th>Runs</th><th>Success</th><th>Duration p50 / p95</th><th>Last run</th></tr></thead>
            <tbody>{flows.map((f) => (
              <tr key={`${f.namespace}/${f.flow_id}`}>
                <td>{f.namespace}/{f.flow_id}</td><td>{f.total}</td><td><Rate rate={f.success_rate} /></td>
                <td>{duration(f.duration.p50) || "–"} / {duration(f.duration.p95) || "–"}</td>
                <td>{f.last_run ? <><span class={`state s-${f.last_run.state}`}>{f.last_run.state}</span> {when(f.last_run.created_at)}</> : ""}</td>
              </tr>))}</tbody>
          </table>)}
      </>)}
    </section>
  );
}
