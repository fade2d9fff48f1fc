// The trace's root cause: the node that failed first in causal order, its system, error,
// log excerpt and deep link, and the path from the clicked node back to it.
import { safeHref, when } from "../format";
import type { RootCause } from "../types";

export function RootCausePanel({ cause, clicked }: { cause: RootCause | null; clicked: string }) {
  if (!cause) return <section class="panel" data-testid="root-cause"><h2>Root cause</h2>
    <p class="muted">The trace names no root cause yet.</p></section>;
  const href = safeHref(cause.deep_link);
  return (
    <section class="panel root-cause" data-testid="root-cause" aria-label="root cause">
      <h2>Root cause</h2>
      {cause.node_id && cause.node_id !== clicked && <p>{clicked} failed because of another node:</p>}
      <dl>
        <dt>node</dt><dd data-testid="root-node">{cause.node_id ?? "(upstream)"}</dd>
        <dt>system</dt><dd>{cause.system ?? "interlock"} {cause.uses && <span class="muted">({cause.uses})</span>}</dd>
        {cause.external_id && <><dt>id</dt><dd>{cause.external_id}</dd></>}
        <dt>at</dt><dd>{when(cause.at)}</dd>
        <dt>error</dt><dd class="error" data-testid="root-error">{cause.error ?? ""}</dd>
        {href && <><dt>link</dt><dd><a href={href} target="_blank" rel="noopener noreferrer" data-testid="root-link">{cause.deep_link}</a></dd></>}
      </dl>
      {cause.path.length > 0 && <ol class="why">{cause.path.map((p, i) => <li key={i}>{p}</li>)}</ol>}
      {cause.log_excerpt && <><h3>Log excerpt</h3><pre tabIndex={0} class="log" data-testid="root-log">{cause.log_excerpt}</pre></>}
    </section>
  );
}
