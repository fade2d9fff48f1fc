// A node's log with search: only the lines holding the words typed (any case), the matches
// marked. Lines stay text (no HTML from the log is ever inserted).
import { useMemo, useState } from "preact/hooks";

const MAX_SHOWN = 2000;  // lines drawn at once: a huge log stays responsive

export function LogView({ text }: { text: string }) {
  const [query, setQuery] = useState("");
  const lines = useMemo(() => text.split("\n"), [text]);
  const needle = query.trim().toLowerCase();
  const hits = useMemo(() => lines.map((line, i) => ({ line, n: i + 1 }))
    .filter(({ line }) => !needle || line.toLowerCase().includes(needle)), [lines, needle]);
  const shown = hits.slice(-MAX_SHOWN);  // the end of a log is where failures are
  return (
    <div class="logview">
      <label for="log-search">Search the log</label>{" "}
      <input id="log-search" type="search" value={query} data-testid="log-search"
             onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
      <span class="muted" role="status" data-testid="log-count">
        {needle ? ` ${hits.length} of ${lines.length} lines` : ` ${lines.length} lines`}
        {hits.length > shown.length ? ` (the last ${shown.length} shown)` : ""}</span>
      <pre tabIndex={0} class="log" data-testid="log">{shown.map(({ line, n }) => (
        <span key={n} class="logline" data-line={n}>{mark(line, needle)}{"\n"}</span>))}</pre>
    </div>
  );
}

function mark(line: string, needle: string) {
  if (!needle) return line;
  const parts = [];
  const lower = line.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(needle); i >= 0; i = lower.indexOf(needle, at)) {
    parts.push(line.slice(at, i), <mark>{line.slice(i, i + needle.length)}</mark>);
    at = i + needle.length;
  }
  parts.push(line.slice(at));
  return parts;
}
