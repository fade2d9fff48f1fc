// One approval request: what is asked, the rules and what is still missing, who may not
// decide, the votes, the evidence (run, trigger, upstream outputs, impact, payload), and the
// vote form for those holding `approvals:approve` in its namespace.
import { useEffect, useState } from "preact/hooks";
import { call } from "../api";
import { may } from "../auth";
import { text, triggerType, webHref, when } from "../format";
import { onLink } from "../router";
import { listen } from "../sse";
import type { ApprovalDetail, InputSpec, Me, QuorumRule } from "../types";

function ruleLabel(r: QuorumRule): string {
  const who = [r.role && `role ${r.role}`, r.group && `group ${r.group}`,
    r.principals.length ? r.principals.join(", ") : null].filter(Boolean).join(" or ");
  return `${r.name ? `${r.name}: ` : ""}${r.count} × ${who}`;
}

function decidedBy(who: unknown): string {
  const names = Array.isArray(who) ? who.map(String) : who ? [text(who)] : [];
  return names.length ? ` by ${names.join(", ")}` : "";
}

export function ApprovalPage({ id, me }: { id: string; me: Me }) {
  const [req, setReq] = useState<ApprovalDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Kept here, not in the form: a deciding vote removes the form, never its outcome.
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);

  async function load(): Promise<void> {
    try {
      setReq(await call<ApprovalDetail>(`/approvals/${encodeURIComponent(id)}`));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  useEffect(() => {
    void load();
    // The inbox stream tells when a request of this run changes (a vote, a decision): reload
    // then, instead of polling.
    let seen: string | null = null;
    const stream = listen("/stream/approvals?limit=200", (name, data) => {
      if (name !== "approvals") return;
      const mine = (data as { approvals: { id: string; state: string }[] }).approvals.find((a) => a.id === id);
      const now = mine ? mine.state : null;
      if (seen !== null && now !== seen) void load();
      seen = now;
    });
    return () => stream.close();
  }, [id]);

  if (error && !req) return <section><p class="error" role="alert" data-testid="approval-error">{error}</p></section>;
  if (!req) return <section><p class="muted">Loading the request…</p></section>;

  const link = webHref(req.link);
  const canVote = req.state === "pending" && may(me, "approvals:approve", req.namespace);
  const missing = Object.entries(req.tally.missing ?? {});
  return (
    <section class="approval">
      <p><a href="/approvals" onClick={onLink}>← Approvals</a></p>
      <h1><span data-testid="approval-title">{req.subject || req.id}</span>{" "}
        <span class={`state s-${req.state}`} data-testid="approval-state">{req.state}</span></h1>
      <p class="muted">{req.namespace}{req.flow ? ` · ${req.flow}` : ""}{req.node_id ? ` · node ${req.node_id}` : ""}
        {" "}· {req.origin}{req.system ? ` (${req.system})` : ""} · asked {when(req.created_at)}
        {req.deadline ? ` · deadline ${when(req.deadline)}` : ""}
        {link && <> · <a href={link} target="_blank" rel="noopener noreferrer">open in {req.system ?? "the system"}</a></>}</p>
      {req.body && <pre tabIndex={0} class="body" data-testid="approval-body">{req.body}</pre>}
      {req.state !== "pending" && (
        <p data-testid="approval-decision">Decided: {req.option ?? req.state}
          {decidedBy(req.decided_by)}{req.decided_at ? ` at ${when(req.decided_at)}` : ""}
          {req.reason ? ` · ${req.reason}` : ""}</p>)}

      <div class="approval-grid">
        <div>
          <section class="panel" aria-label="rules">
            <h2>Who decides</h2>
            <p class="muted">Options: {req.options.join(", ")}{req.reject_options.length ? ` (rejecting: ${req.reject_options.join(", ")})` : ""}</p>
            <ul data-testid="rules">{req.rules.map((r, i) => <li key={i}>{ruleLabel(r)}</li>)}</ul>
            {req.state === "pending" && (missing.length
              ? <p data-testid="missing">Still missing{req.tally.leading_option ? ` for “${req.tally.leading_option}”` : ""}:{" "}
                  {missing.map(([rule, n]) => `${rule}: ${n} more`).join("; ")}</p>
              : <p data-testid="missing">Nothing missing.</p>)}
            {Object.keys(req.excluded).length > 0 && (<>
              <h3>May not decide (separation of duties)</h3>
              <ul data-testid="excluded">{Object.entries(req.excluded).map(([who, why]) => <li key={who}>{who}: {why}</li>)}</ul>
            </>)}
            {Object.keys(req.waived).length > 0 && (<>
              <h3>Waived by policy</h3>
              <ul data-testid="waived">{Object.entries(req.waived).map(([who, why]) => <li key={who}>{who}: {text(why)}</li>)}</ul>
            </>)}
            <h3>Votes</h3>
            {req.votes.length === 0 ? <p class="muted">none yet</p> : (
              <ul data-testid="votes">{req.votes.map((v, i) => (
                <li key={i}><strong>{v.actor}</strong>: {v.option} <span class="muted">{when(v.at)}</span>
                  {Object.keys(v.inputs ?? {}).length > 0 && <div class="muted">inputs: {text(v.inputs)}</div>}
                  {v.comment && <div class="comment">{v.comment}</div>}</li>))}</ul>)}
          </section>
          {canVote ? <VoteForm req={req} onResult={(r) => { setResult(r); if (r.ok) void load(); }} />
            : req.state === "pending" && <p class="muted" data-testid="no-vote">Voting needs <code>approvals:approve</code> in {req.namespace}.</p>}
          {result && <p class={result.ok ? "" : "error"} role={result.ok ? "status" : "alert"}
                        data-testid={result.ok ? "vote-result" : "vote-error"}>{result.text}</p>}
        </div>
        <Evidence req={req} />
      </div>
    </section>
  );
}

function Evidence({ req }: { req: ApprovalDetail }) {
  const impact = req.impact;
  return (
    <section class="panel" aria-label="evidence" data-testid="evidence">
      <h2>Evidence</h2>
      {req.run && (<>
        <h3>Run</h3>
        <p><a href={`/runs/${encodeURIComponent(req.run.id)}`} onClick={onLink} data-testid="approval-run">{req.run.flow}</a>
          {" "}<span class={`state s-${req.run.state}`}>{req.run.state}</span>{" "}
          <span class="muted">revision {req.run.revision} · {when(req.run.created_at)}</span></p>
        <p data-testid="trigger">Started by: {triggerType(req.run.trigger)}
          {typeof req.run.trigger.by === "string" ? ` · ${req.run.trigger.by}` : ""}</p>
        <pre tabIndex={0} class="outputs">{text(req.run.trigger)}</pre>
        {Object.keys(req.run.inputs ?? {}).length > 0 && <><h3>Run inputs</h3><pre tabIndex={0} class="outputs">{text(req.run.inputs)}</pre></>}
      </>)}
      <h3>Payload: what the node will be submitted with</h3>
      <pre tabIndex={0} class="outputs" data-testid="payload">{text(req.payload)}</pre>
      {req.payload_hash && <p class="muted hash">sha256 {req.payload_hash}</p>}
      {Object.keys(req.upstream).length > 0 && (<>
        <h3>Upstream</h3>
        <ul data-testid="upstream">{Object.entries(req.upstream).map(([node, u]) => (
          <li key={node}>{node} <span class={`state s-${u.state}`}>{u.state}</span>
            {u.outputs !== undefined ? <pre tabIndex={0} class="outputs">{text(u.outputs)}</pre>
              : <span class="muted"> · outputs hidden (needs outputs:read)</span>}</li>))}</ul>
      </>)}
      <h3>Impact downstream</h3>
      {impact === null ? <p class="muted" data-testid="impact">No lineage recorded for this node.</p> : (
        <div data-testid="impact">
          <p>Systems: {impact.systems.join(", ") || "none"} · Flows: {impact.flows.join(", ") || "none"}
            {impact.truncated ? " (truncated)" : ""}</p>
          {Object.entries(impact.jobs).map(([system, jobs]) => (
            <div key={system}><h4>Jobs on {system}</h4>
              <ul>{jobs.map((j) => <li key={j.id}>{j.namespace}/{j.name} <span class="muted">distance {j.distance}</span></li>)}</ul></div>))}
          <h4>Datasets</h4>
          {impact.datasets.length === 0 ? <p class="muted">none</p>
            : <ul data-testid="impact-datasets">{impact.datasets.map((d) => (
              <li key={d.id}>{d.namespace}/{d.name} <span class="muted">distance {d.distance}</span></li>))}</ul>}
        </div>)}
    </section>
  );
}

function parseInput(spec: InputSpec, raw: string | boolean): unknown {
  if (typeof raw === "boolean") return raw;
  switch (spec.type) {
    case "integer": case "number": {
      const n = Number(raw);
      if (raw.trim() === "" || Number.isNaN(n)) throw new Error("is not a number");
      return n;
    }
    case "object": case "array":
      try { return JSON.parse(raw); } catch { throw new Error("is not valid JSON"); }
    default:
      return raw;
  }
}

type Outcome = { ok: boolean; text: string };

function VoteForm({ req, onResult }: { req: ApprovalDetail; onResult: (r: Outcome) => void }) {
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState(false);

  async function vote(option: string): Promise<void> {
    const rejecting = req.reject_options.includes(option);
    const inputs: Record<string, unknown> = {};
    try {
      if (!rejecting) {
        for (const [name, spec] of Object.entries(req.inputs)) {
          const raw = values[name];
          if (raw === undefined || raw === "") continue;
          try { inputs[name] = parseInput(spec, raw); } catch (e) { throw new Error(`${name} ${(e as Error).message}`); }
        }
      }
    } catch (e) {
      onResult({ ok: false, text: (e as Error).message });
      return;
    }
    setBusy(true);
    try {
      const done = await call<{ state: string; tally: string; counted_toward: string[] }>(
        `/approvals/${encodeURIComponent(req.id)}/votes`,
        { method: "POST", body: JSON.stringify({ option, inputs, comment }) });
      onResult({ ok: true, text: `vote recorded (${option}): the request is ${done.state}`
        + (done.tally ? ` · ${done.tally}` : "") });
    } catch (e) {
      onResult({ ok: false, text: `vote refused: ${(e as Error).message}` });
    } finally {
      setBusy(false);
    }
  }

  const inputs = Object.entries(req.inputs);
  return (
    <section class="panel vote" aria-label="vote" data-testid="vote-form">
      <h2>Your vote</h2>
      {inputs.length > 0 && <fieldset><legend>Inputs (when approving)</legend>
        {inputs.map(([name, spec]) => (
          <label key={name}>{name} <span class="muted">{spec.type ?? "string"}{spec.required ? ", required" : ""}
            {spec.description ? ` · ${spec.description}` : ""}</span>
            {spec.type === "boolean"
              ? <input type="checkbox" checked={values[name] === true} data-testid={`input-${name}`}
                       onChange={(e) => setValues({ ...values, [name]: (e.target as HTMLInputElement).checked })} />
              : spec.type === "object" || spec.type === "array"
                ? <textarea value={String(values[name] ?? "")} data-testid={`input-${name}`}
                            onInput={(e) => setValues({ ...values, [name]: (e.target as HTMLTextAreaElement).value })} />
                : <input type={spec.type === "integer" || spec.type === "number" ? "number" : "text"}
                         value={String(values[name] ?? "")} data-testid={`input-${name}`}
                         onInput={(e) => setValues({ ...values, [name]: (e.target as HTMLInputElement).value })} />}
          </label>))}
      </fieldset>}
      <label for="vote-comment">Comment</label>
      <textarea id="vote-comment" maxLength={4000} value={comment} data-testid="vote-comment"
                onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
      <div class="actions">
        {req.options.map((o) => (
          <button type="button" key={o} disabled={busy} onClick={() => void vote(o)} data-testid={`vote-${o}`}
                  class={req.reject_options.includes(o) ? "reject" : ""}>{o}</button>))}
      </div>
    </section>
  );
}
