// The selected node (or collapsed group): what it is, how much lies upstream and downstream
// of it in the loaded graph, and a dataset's history.
import { History } from "./History";
import { DATASET, groupId, JOB, type Graph, type Lit } from "./model";

export function Details({ graph, selected, lit, onOpen, onCenter, onExpand }: {
  graph: Graph; selected: string; lit: Lit | null;
  onOpen: (id: string) => void; onCenter: () => void; onExpand: (group: number) => void;
}) {
  const counts = lit && (
    <p class="lin-counts">
      <span class="lin-up">↑ upstream <strong data-testid="lin-upstream">{lit.upstream}</strong></span>
      {" · "}
      <span class="lin-down">↓ downstream <strong data-testid="lin-downstream">{lit.downstream}</strong></span>
      <br /><span class="muted small">nodes of this graph (depth as loaded)</span>
    </p>);
  const g = graph.groups.findIndex((x) => groupId(x) === selected);
  if (g >= 0) {
    const group = graph.groups[g];
    return (
      <div class="panel lin-details" data-testid="lin-details">
        <h2 class="lin-wrap">{group.label}</h2>
        <p>{group.members.length} {group.kind === "job" ? "jobs of this system" : "datasets of this namespace"}, collapsed into one box.</p>
        {counts}
        <button type="button" onClick={() => onExpand(g)} data-testid="lin-expand">Expand</button>
      </div>);
  }
  const i = graph.index.get(selected);
  if (i === undefined) return null;
  const kind = graph.kinds[i];
  return (
    <div class="panel lin-details" data-testid="lin-details">
      <h2 class="lin-wrap" data-testid="lin-details-name">{graph.names[i]}</h2>
      <dl class="lin-facts">
        <dt>kind</dt><dd>{kind === JOB ? "job" : "dataset"}</dd>
        <dt>namespace</dt><dd class="lin-wrap">{graph.namespaces[i]}</dd>
        {kind === JOB && <><dt>system</dt><dd class="lin-wrap">{graph.systems[i] ?? "–"}</dd></>}
        <dt>reads · writes</dt><dd>{kind === JOB
          ? `${graph.into.start[i + 1] - graph.into.start[i]} in · ${graph.out.start[i + 1] - graph.out.start[i]} out`
          : `written by ${graph.into.start[i + 1] - graph.into.start[i]} · read by ${graph.out.start[i + 1] - graph.out.start[i]}`}</dd>
      </dl>
      {counts}
      <div class="actions">
        <button type="button" onClick={onCenter} data-testid="lin-center">Center</button>
        <button type="button" onClick={() => onOpen(graph.ids[i])} data-testid="lin-open-selected">Open its graph</button>
      </div>
      {kind === DATASET && <History namespace={graph.namespaces[i]} name={graph.names[i]} />}
    </div>
  );
}
