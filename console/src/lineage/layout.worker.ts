// Lays out the lineage map off the main thread (layout.ts); arrays go both ways as
// transferable buffers, so a 5,000-node graph costs no copying.
import { layered } from "./layout";

export interface LayoutJob { seq: number; n: number; src: Int32Array; dst: Int32Array; nodeWidth: number; nodeHeight: number }

export interface LayoutDone {
  seq: number;
  x: Float32Array;
  y: Float32Array;
  width: number;
  height: number;
  ms: number;
  error?: string;
}

self.onmessage = (e: MessageEvent<LayoutJob>) => {
  const { seq, n, src, dst, nodeWidth, nodeHeight } = e.data;
  const started = performance.now();
  try {
    const out = layered({ n, src, dst, nodeWidth, nodeHeight });
    const done: LayoutDone = { seq, x: out.x, y: out.y, width: out.width, height: out.height,
                               ms: performance.now() - started };
    (self as unknown as Worker).postMessage(done, [out.x.buffer, out.y.buffer]);
  } catch (err) {
    const failed: LayoutDone = { seq, x: new Float32Array(0), y: new Float32Array(0), width: 0, height: 0,
                                 ms: performance.now() - started, error: String(err) };
    (self as unknown as Worker).postMessage(failed);
  }
};
