// Drawing the lineage map on a canvas (view.ts decides what and where): edges as curves or
// lines, nodes as coloured boxes when zoomed out or as labelled boxes (text by fillText,
// never HTML) when the text is readable. Each style is one path, filled or stroked once.
import { DIMMED, DOWNSTREAM, GROUP, JOB, PALETTE, PLAIN, SELECTED, UPSTREAM, type View } from "./model";

export const NODE_W = 200;
export const NODE_H = 44;
export const MARK_COLOR = ["", "#1f5fbf", "#7b3fbf", "#d9480f", "#d5d9e0"];

export interface Scene { view: View; x: Float32Array; y: Float32Array; width: number; height: number }

/** The edges that may cross the world rectangle (x0, y0)-(x1, y1), by how they are lit. */
export function edges(ctx: CanvasRenderingContext2D, s: Scene, marks: Uint8Array | null,
                      x0: number, y0: number, x1: number, y1: number, k: number): void {
  const { x, y, view } = s;
  const curved = k >= 0.25;
  const paths = [new Path2D(), new Path2D(), new Path2D(), new Path2D()];  // plain, dim, up, down
  for (let e = 0; e < view.src.length; e++) {
    const a = view.src[e], b = view.dst[e];
    const sx = x[a] + NODE_W, sy = y[a] + NODE_H / 2, ex = x[b], ey = y[b] + NODE_H / 2;
    if (Math.max(sx, ex) < x0 || Math.min(sx, ex) > x1 || Math.max(sy, ey) < y0 || Math.min(sy, ey) > y1) continue;
    let which = 0;
    if (marks) {
      const ma = marks[a], mb = marks[b];
      if (ma === UPSTREAM && (mb === UPSTREAM || mb === SELECTED)) which = 2;
      else if ((ma === DOWNSTREAM || ma === SELECTED) && mb === DOWNSTREAM) which = 3;
      else which = 1;
    }
    const p = paths[which];
    p.moveTo(sx, sy);
    if (curved) {
      const dx = Math.max(40, (ex - sx) / 2);
      p.bezierCurveTo(sx + dx, sy, ex - dx, ey, ex, ey);
    } else p.lineTo(ex, ey);
  }
  const colors = ["#aab2c0", "#e6e9ee", MARK_COLOR[UPSTREAM], MARK_COLOR[DOWNSTREAM]];
  paths.forEach((p, i) => {
    ctx.strokeStyle = colors[i];
    ctx.lineWidth = (i >= 2 ? 2 : 1) / k;  // in screen pixels
    ctx.stroke(p);
  });
}

/** Zoomed out: each node a box of its system's colour, or of how it is lit. */
export function boxes(ctx: CanvasRenderingContext2D, s: Scene, marks: Uint8Array | null,
                      nodes: Int32Array, count: number, k: number): void {
  const { x, y, view } = s;
  const buckets = new Map<number, Path2D>();
  let selected = -1;
  for (let i = 0; i < count; i++) {
    const v = nodes[i];
    const mark = marks ? marks[v] : PLAIN;
    if (mark === SELECTED) selected = v;
    const key = mark === PLAIN ? view.colors[v] * 3 + view.kinds[v] : 100 + mark;
    let p = buckets.get(key);
    if (!p) buckets.set(key, p = new Path2D());
    p.rect(x[v], y[v], NODE_W, NODE_H);
  }
  for (const [key, p] of buckets) {
    if (key >= 100) {
      ctx.fillStyle = MARK_COLOR[key - 100];
      ctx.globalAlpha = 1;
    } else {
      ctx.fillStyle = PALETTE[Math.floor(key / 3)];
      ctx.globalAlpha = key % 3 === JOB ? 0.9 : key % 3 === GROUP ? 1 : 0.45;
    }
    ctx.fill(p);
  }
  ctx.globalAlpha = 1;
  if (selected >= 0) {
    ctx.strokeStyle = "#0b1f40";
    ctx.lineWidth = 3 / k;
    ctx.strokeRect(x[selected], y[selected], NODE_W, NODE_H);
  }
}

/** The nodes as the buttons look, on the canvas: a box, its colour stripe, its text. */
export function labelled(ctx: CanvasRenderingContext2D, s: Scene, marks: Uint8Array | null,
                         nodes: Int32Array, count: number, k: number): void {
  const { x, y, view } = s;
  const fills = ["#fff", "#fff", "#f1e9fb", "#fdece4", "#fff"];
  const boxes = new Map<string, Path2D>(), stripes = new Map<string, Path2D>();
  const add = (m: Map<string, Path2D>, key: string) => m.get(key) ?? m.set(key, new Path2D()).get(key)!;
  let selected = -1;
  for (let i = 0; i < count; i++) {
    const v = nodes[i];
    const mark = marks ? marks[v] : PLAIN;
    if (mark === SELECTED) selected = v;
    add(boxes, fills[mark]).rect(x[v], y[v], NODE_W, NODE_H);
    add(stripes, mark === PLAIN || mark === DIMMED ? PALETTE[view.colors[v]] : MARK_COLOR[mark]).rect(x[v], y[v], 5, NODE_H);
  }
  ctx.lineWidth = 1 / k;
  ctx.strokeStyle = "#8a93a6";
  for (const [fill, p] of boxes) { ctx.fillStyle = fill; ctx.fill(p); ctx.stroke(p); }
  for (const [fill, p] of stripes) { ctx.fillStyle = fill; ctx.fill(p); }
  if (selected >= 0) {
    ctx.strokeStyle = MARK_COLOR[SELECTED];
    ctx.lineWidth = 3 / k;
    ctx.strokeRect(x[selected], y[selected], NODE_W, NODE_H);
  }
  ctx.textBaseline = "middle";
  const lines = [["13px system-ui, sans-serif", 16, "#1d2230", view.labels, 26],
                 ["11px system-ui, sans-serif", 31, "#5b6475", view.subs, 32]] as const;
  for (const [font, dy, color, text, chars] of lines) {
    ctx.font = font;
    for (let i = 0; i < count; i++) {
      const v = nodes[i];
      ctx.fillStyle = marks?.[v] === DIMMED ? "#a9afba" : color;
      ctx.fillText(clip(text[v], chars), x[v] + 12, y[v] + dy);
    }
  }
}

function clip(text: string, chars: number): string {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}
