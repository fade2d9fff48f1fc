// Systems (jobs) and namespaces (datasets) of the loaded graph, each collapsible into one box.
import { groupId, type Graph } from "./model";

const SHOWN = 200;

export function Legend({ graph, collapsed, onToggle, onAll, onShow }: {
  graph: Graph; collapsed: ReadonlySet<number>; onToggle: (g: number) => void;
  onAll: (collapse: boolean) => void; onShow: (id: string) => void;
}) {
  const order = graph.groups.map((_, g) => g).sort((a, b) => {
    const x = graph.groups[a], y = graph.groups[b];
    return x.kind.localeCompare(y.kind) || y.members.length - x.members.length || x.label.localeCompare(y.label);
  });
  return (
    <div class="panel lin-legend" data-testid="lin-legend">
      <h2>Systems and namespaces</h2>
      <div class="actions">
        <button type="button" onClick={() => onAll(true)} data-testid="lin-collapse-all">Collapse all</button>
        <button type="button" onClick={() => onAll(false)} data-testid="lin-expand-all">Expand all</button>
      </div>
      <ul>
        {order.slice(0, SHOWN).map((g) => {
          const group = graph.groups[g];
          const shut = collapsed.has(g);
          return (
            <li key={group.key} data-group={group.key}>
              <span class={`lin-swatch lc${group.color}${group.kind === "dataset" ? " k-dataset" : ""}`} aria-hidden="true" />
              <button type="button" class="link" title={`show ${group.label} on the map`}
                      onClick={() => onShow(shut ? groupId(group) : graph.ids[group.members[0]])}
                      data-testid="lin-group-show">{group.label}</button>
              <span class="muted small">{group.members.length} {group.kind === "job" ? "jobs" : "datasets"}</span>
              <button type="button" class="small" aria-pressed={shut} onClick={() => onToggle(g)}
                      data-testid="lin-group-toggle">{shut ? "Expand" : "Collapse"}</button>
            </li>);
        })}
      </ul>
      {order.length > SHOWN && <p class="muted small">and {order.length - SHOWN} more (collapse all, then expand those you need)</p>}
    </div>
  );
}
