// The map's drawing surface, outside Preact: a canvas for the edges, and for the nodes while
// more than DOM_CAP are on screen (boxes; with their labels once the text is readable);
// real <button>s for the nodes on screen when there are fewer. Only what intersects the
// viewport is drawn or created; a pan moves one transform and copies a bitmap, once per
// animation frame. Labels are text (textContent), never HTML; positions go through
// element.style (the CSP allows no inline style attribute).
import { PLAIN, type View } from "./model";
import { boxes, edges, labelled, NODE_H, NODE_W, type Scene } from "./paint";

export { NODE_H, NODE_W, type Scene } from "./paint";

const DOM_CAP = 150;       // more nodes on screen than this: drawn on the canvas, no buttons
const LABEL_SCALE = 0.45;  // from this zoom on, the canvas writes labels (readable)
const MIN_SCALE = 0.02;
const MAX_SCALE = 2.5;
const PAN_STEP = 80;
const CACHE_SIDE = 4096;       // the bitmap of the whole graph: at most this wide and high
const CACHE_AREA = 8_000_000;  // and this many pixels (32 MB)
const CACHE_PAD = 8;
const EDGES_ONLY = 0, BOXES = 1, LABELLED = 2;
const ZOOM_REST_MS = 180;
const MARK_CLASS = ["", " m-sel", " m-up", " m-down", " m-dim"];
const KIND_WORD = ["job", "dataset", "group"];

interface Region { x0: number; y0: number; x1: number; y1: number; whole: boolean }

interface Cache extends Region {
  canvas: HTMLCanvasElement;
  scene: Scene;
  marks: Uint8Array | null;
  dpr: number;
  k: number;
  mode: number;  // what it holds besides edges: EDGES_ONLY (buttons show the nodes), BOXES, LABELLED
}

export class MapView {
  private readonly canvas = document.createElement("canvas");
  private readonly ctx: CanvasRenderingContext2D;
  private readonly layer = document.createElement("div");
  private readonly tip = document.createElement("div");
  private readonly observer: ResizeObserver;
  private readonly live = new Map<number, HTMLButtonElement>();
  private scene: Scene | null = null;
  private marks: Uint8Array | null = null;
  private tx = 0;
  private ty = 0;
  private k = 1;
  private cw = 0;
  private ch = 0;
  private frame = 0;
  private drag: { id: number; x: number; y: number; moved: boolean } | null = null;
  private visible = new Int32Array(0);
  private frames = { count: 0, total: 0, recent: [] as number[] };
  private cache: Cache | null = null;
  private zoomedAt = 0;
  private rest = 0;
  private readonly off: (() => void)[] = [];

  constructor(private readonly host: HTMLElement, private readonly onSelect: (v: number | null) => void) {
    this.ctx = this.canvas.getContext("2d")!;
    this.canvas.className = "lin-canvas";
    this.canvas.setAttribute("aria-hidden", "true");
    this.layer.className = "lin-world";
    this.tip.className = "lin-tip";
    this.tip.hidden = true;
    host.append(this.canvas, this.layer, this.tip);
    this.listen("pointerdown", (e) => this.down(e as PointerEvent));
    this.listen("pointermove", (e) => this.move(e as PointerEvent));
    this.listen("pointerup", (e) => this.up(e as PointerEvent));
    this.listen("pointercancel", () => { this.drag = null; });
    this.listen("pointerleave", () => { this.tip.hidden = true; });
    this.listen("wheel", (e) => this.wheel(e as WheelEvent), { passive: false });
    this.listen("keydown", (e) => this.key(e as KeyboardEvent));
    this.observer = new ResizeObserver(() => this.request());
    this.observer.observe(host);
  }

  private listen(type: string, fn: (e: Event) => void, options?: AddEventListenerOptions): void {
    this.host.addEventListener(type, fn, options);
    this.off.push(() => this.host.removeEventListener(type, fn, options));
  }

  destroy(): void {
    cancelAnimationFrame(this.frame);
    clearTimeout(this.rest);
    this.cache = null;
    this.observer.disconnect();
    this.off.forEach((f) => f());
    this.canvas.remove();
    this.layer.remove();
    this.tip.remove();
  }

  /** A new graph (or the same one regrouped): every node button is made again. */
  setScene(scene: Scene | null): void {
    this.scene = scene;
    this.marks = null;
    this.live.forEach((el) => el.remove());
    this.live.clear();
    this.request();
  }

  setMarks(marks: Uint8Array | null): void {
    this.marks = marks;
    this.request();
  }

  fit(): void {
    if (!this.scene) return;
    this.measure();
    const pad = 24;
    const { width, height } = this.scene;
    this.k = clamp(Math.min((this.cw - 2 * pad) / Math.max(width, 1), (this.ch - 2 * pad) / Math.max(height, 1)), MIN_SCALE, 1);
    this.tx = (this.cw - width * this.k) / 2;
    this.ty = (this.ch - height * this.k) / 2;
    this.request();
  }

  /** Where node `v`'s centre is on screen (pixels from the map's top left). */
  screenOf(v: number): { x: number; y: number } | null {
    const s = this.scene;
    if (!s || v < 0 || v >= s.view.n) return null;
    return { x: (s.x[v] + NODE_W / 2) * this.k + this.tx, y: (s.y[v] + NODE_H / 2) * this.k + this.ty };
  }

  /** Puts node `v`'s centre at `at` on screen (the centre by default), at `scale` if given. */
  placeAt(v: number, at?: { x: number; y: number }, scale?: number): void {
    const s = this.scene;
    if (!s || v < 0 || v >= s.view.n) return;
    this.measure();
    if (scale !== undefined) this.k = clamp(scale, MIN_SCALE, MAX_SCALE);
    const to = at ?? { x: this.cw / 2, y: this.ch / 2 };
    this.tx = to.x - (s.x[v] + NODE_W / 2) * this.k;
    this.ty = to.y - (s.y[v] + NODE_H / 2) * this.k;
    this.request();
  }

  panBy(dx: number, dy: number): void {
    this.tx += dx;
    this.ty += dy;
    this.request();
  }

  zoomAt(factor: number, sx?: number, sy?: number): void {
    this.measure();
    const px = sx ?? this.cw / 2, py = sy ?? this.ch / 2;
    const k = clamp(this.k * factor, MIN_SCALE, MAX_SCALE);
    this.tx = px - ((px - this.tx) * k) / this.k;
    this.ty = py - ((py - this.ty) * k) / this.k;
    this.k = k;
    this.zoomedAt = performance.now();
    this.request();
  }

  /** Draws in the next animation frame (several changes in one frame draw once). */
  request(): void {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  private measure(): void {
    this.cw = this.host.clientWidth;
    this.ch = this.host.clientHeight;
  }

  /** Draws now: the visible edges and nodes, and the node buttons when few are on screen. */
  draw(): void {
    const started = performance.now();
    this.measure();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(this.cw * dpr), h = Math.round(this.ch * dpr);
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    const ctx = this.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const s = this.scene;
    if (!s) return;
    const x0 = -this.tx / this.k, y0 = -this.ty / this.k;
    const x1 = (this.cw - this.tx) / this.k, y1 = (this.ch - this.ty) / this.k;
    const { x, y, view } = s;
    if (this.visible.length < view.n) this.visible = new Int32Array(view.n);
    let count = 0;
    for (let v = 0; v < view.n; v++) {
      if (x[v] < x1 && x[v] + NODE_W > x0 && y[v] < y1 && y[v] + NODE_H > y0) this.visible[count++] = v;
    }
    const dom = count <= DOM_CAP;
    this.fromCache(s, dpr, dom ? EDGES_ONLY : this.k >= LABEL_SCALE ? LABELLED : BOXES, x0, y0, x1, y1);
    this.buttons(s, count, dom);
    this.layer.style.transform = `translate(${this.tx}px, ${this.ty}px) scale(${this.k})`;
    if (dom) this.tip.hidden = true;
    this.stats(performance.now() - started, view.n, count);
  }

  private stats(ms: number, nodes: number, visible: number): void {
    this.frames.count++;
    this.frames.total += ms;
    this.frames.recent.push(Math.round(ms * 10) / 10);
    if (this.frames.recent.length > 60) this.frames.recent.shift();
    const d = this.host.dataset;
    d.nodes = String(nodes);
    d.visible = String(visible);
    d.dom = String(this.live.size);
    d.scale = this.k.toFixed(3);
    d.frames = String(this.frames.count);
    d.framesMs = this.frames.total.toFixed(1);
    d.frameRecent = this.frames.recent.join(",");
  }

  /** The canvas is a copy of a bitmap that holds the whole graph at this scale or, when
   * that would be too large, the screen and up to half a screen around it. A pan copies it;
   * only a pan past its edge, a zoom, a selection or a new graph draws the edges again.
   * While the wheel turns, the last bitmap is stretched, and drawn sharp once it rests. */
  private fromCache(s: Scene, dpr: number, mode: number, x0: number, y0: number, x1: number, y1: number): void {
    const k = this.k;
    let c = this.cache;
    const same = c !== null && c.scene === s && c.marks === this.marks && c.dpr === dpr && c.mode === mode;
    const covers = same && c!.k === k && (c!.whole || (c!.x0 <= x0 && c!.y0 <= y0 && c!.x1 >= x1 && c!.y1 >= y1));
    if (!covers) {
      if (same && c!.k !== k && performance.now() - this.zoomedAt < ZOOM_REST_MS) {
        clearTimeout(this.rest);
        this.rest = window.setTimeout(() => this.request(), ZOOM_REST_MS);
      } else {
        c = this.paintCache(s, dpr, mode, this.region(s, k * dpr, x0, y0, x1, y1));
      }
    }
    const r = k / c!.k;
    const dx = (c!.x0 * k + this.tx) * dpr, dy = (c!.y0 * k + this.ty) * dpr;
    this.ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (r === 1) this.ctx.drawImage(c!.canvas, Math.round(dx), Math.round(dy));
    else this.ctx.drawImage(c!.canvas, dx, dy, c!.canvas.width * r, c!.canvas.height * r);
  }

  /** The world rectangle a new bitmap covers (see fromCache), and whether it is all of it. */
  private region(s: Scene, scale: number, x0: number, y0: number, x1: number, y1: number): Region {
    const pad = CACHE_PAD / scale;
    const w = s.width + 2 * pad, h = s.height + 2 * pad;
    if (w * scale <= CACHE_SIDE && h * scale <= CACHE_SIDE && w * h * scale * scale <= CACHE_AREA) {
      return { x0: -pad, y0: -pad, x1: s.width + pad, y1: s.height + pad, whole: true };
    }
    const vw = x1 - x0, vh = y1 - y0;
    const m = clamp((Math.sqrt(CACHE_AREA / (vw * vh * scale * scale)) - 1) / 2, 0, 0.5);
    return { x0: x0 - vw * m, y0: y0 - vh * m, x1: x1 + vw * m, y1: y1 + vh * m, whole: false };
  }

  private paintCache(s: Scene, dpr: number, mode: number, region: Region): Cache {
    const { x0, y0, x1, y1 } = region;
    const k = this.k, scale = k * dpr;
    const canvas = this.cache?.canvas ?? document.createElement("canvas");
    canvas.width = Math.ceil((x1 - x0) * scale);
    canvas.height = Math.ceil((y1 - y0) * scale);
    const ctx = canvas.getContext("2d")!;
    ctx.setTransform(scale, 0, 0, scale, -x0 * scale, -y0 * scale);
    edges(ctx, s, this.marks, x0, y0, x1, y1, k);
    if (mode !== EDGES_ONLY) {
      const { x, y, view } = s;
      const inside = new Int32Array(view.n);
      let count = 0;
      for (let v = 0; v < view.n; v++) {
        if (x[v] < x1 && x[v] + NODE_W > x0 && y[v] < y1 && y[v] + NODE_H > y0) inside[count++] = v;
      }
      if (mode === LABELLED) labelled(ctx, s, this.marks, inside, count, k);
      else boxes(ctx, s, this.marks, inside, count, k);
    }
    this.cache = { canvas, scene: s, marks: this.marks, dpr, k, mode, ...region };
    return this.cache;
  }

  private buttons(s: Scene, count: number, dom: boolean): void {
    const keep = new Set<number>();
    if (dom) {
      for (let i = 0; i < count; i++) {
        const v = this.visible[i];
        keep.add(v);
        let el = this.live.get(v);
        if (!el) {
          el = this.button(s, v);
          this.live.set(v, el);
          this.layer.append(el);
        }
        const cls = this.classOf(s.view, v);
        if (el.className !== cls) el.className = cls;
      }
    }
    for (const [v, el] of this.live) {
      if (!keep.has(v) && el !== document.activeElement) {
        el.remove();
        this.live.delete(v);
      }
    }
  }

  private classOf(view: View, v: number): string {
    return `lin-node k-${KIND_WORD[view.kinds[v]]} lc${view.colors[v]}${MARK_CLASS[this.marks ? this.marks[v] : PLAIN]}`;
  }

  private button(s: Scene, v: number): HTMLButtonElement {
    const { view } = s;
    const el = document.createElement("button");
    el.type = "button";
    el.dataset.node = view.ids[v];
    el.style.left = `${s.x[v]}px`;
    el.style.top = `${s.y[v]}px`;
    // The kind is read out but not shown (the colour and shape show it): the accessible
    // name is then the visible text with the kind first, as axe's label rules want.
    const kind = document.createElement("span");
    kind.className = "sr-only";
    kind.textContent = `${KIND_WORD[view.kinds[v]]} `;
    const name = document.createElement("span");
    name.className = "lin-name";
    name.textContent = view.labels[v];
    const sub = document.createElement("span");
    sub.className = "lin-sub";
    sub.textContent = view.subs[v];
    el.append(kind, name, sub);
    el.addEventListener("click", () => this.onSelect(v));
    return el;
  }

  /** The node under a point of the map (pixels from its top left), or null. */
  private hit(px: number, py: number): number | null {
    const s = this.scene;
    if (!s) return null;
    const wx = (px - this.tx) / this.k, wy = (py - this.ty) / this.k;
    for (let v = s.view.n - 1; v >= 0; v--) {
      if (wx >= s.x[v] && wx <= s.x[v] + NODE_W && wy >= s.y[v] && wy <= s.y[v] + NODE_H) return v;
    }
    return null;
  }

  private local(e: MouseEvent): { x: number; y: number } {
    const r = this.host.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  private down(e: PointerEvent): void {
    if (e.button !== 0) return;
    this.drag = { id: e.pointerId, x: e.clientX, y: e.clientY, moved: false };
  }

  private move(e: PointerEvent): void {
    const d = this.drag;
    if (d && d.id === e.pointerId) {
      if (!d.moved && Math.abs(e.clientX - d.x) + Math.abs(e.clientY - d.y) < 4) return;
      if (!d.moved) {
        d.moved = true;
        this.tip.hidden = true;
        this.host.classList.add("dragging");
        try { this.host.setPointerCapture(e.pointerId); } catch { /* a synthetic pointer */ }
      }
      this.panBy(e.clientX - d.x, e.clientY - d.y);
      d.x = e.clientX;
      d.y = e.clientY;
      return;
    }
    if (this.live.size > 0 || !this.scene) return;
    const at = this.local(e);
    const v = this.hit(at.x, at.y);
    this.tip.hidden = v === null;
    if (v !== null) {
      this.tip.textContent = `${this.scene.view.labels[v]} · ${this.scene.view.subs[v]}`;
      this.tip.style.left = `${at.x + 12}px`;
      this.tip.style.top = `${at.y + 12}px`;
    }
  }

  private up(e: PointerEvent): void {
    const d = this.drag;
    this.drag = null;
    this.host.classList.remove("dragging");
    if (!d || d.id !== e.pointerId) return;
    if (d.moved) {
      try { this.host.releasePointerCapture(e.pointerId); } catch { /* already released */ }
      return;
    }
    if ((e.target as Element).closest?.(".lin-node")) return;  // the button's click selects
    const at = this.local(e);
    this.onSelect(this.hit(at.x, at.y));
  }

  private wheel(e: WheelEvent): void {
    e.preventDefault();
    const at = this.local(e);
    const unit = e.deltaMode === 1 ? 0.05 : e.deltaMode === 2 ? 0.5 : 0.0015;
    this.zoomAt(Math.exp(-e.deltaY * unit), at.x, at.y);
  }

  private key(e: KeyboardEvent): void {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [PAN_STEP, 0], ArrowRight: [-PAN_STEP, 0], ArrowUp: [0, PAN_STEP], ArrowDown: [0, -PAN_STEP] };
    if (moves[e.key]) this.panBy(...moves[e.key]);
    else if (e.key === "+" || e.key === "=") this.zoomAt(1.25);
    else if (e.key === "-" || e.key === "_") this.zoomAt(0.8);
    else if (e.key === "0") this.fit();
    else return;
    e.preventDefault();
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
