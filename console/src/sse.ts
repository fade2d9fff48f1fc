// Server-sent events read with fetch, so the token travels in the Authorization header
// (EventSource cannot send one, and a token in a URL ends up in logs). Reconnects after
// a dropped connection; `close()` (leaving the page, logging out) aborts the request, which
// ends the stream on the server.
import { API, authHeaders } from "./api";

export interface Stream {
  close(): void;
}

export type Handler = (event: string, data: unknown) => void;

export function listen(path: string, onEvent: Handler, onState?: (s: string) => void): Stream {
  const abort = new AbortController();
  let retryMs = 3000;

  async function run(): Promise<void> {
    while (!abort.signal.aborted) {
      let ended = false;
      try {
        const resp = await fetch(API + path, {
          headers: { Accept: "text/event-stream", ...authHeaders() },
          signal: abort.signal,
          credentials: "omit",
          cache: "no-store",
        });
        if (!resp.ok || !resp.body) {
          onState?.(`stream refused: ${resp.status}`);
          if (resp.status === 401 || resp.status === 403 || resp.status === 404) return;
        } else {
          onState?.("live");
          ended = await read(resp.body, (name, data) => {
            if (name === "end") onState?.(`stream ended: ${(data as { reason?: string }).reason ?? ""}`);
            else onEvent(name, data);
          }, (ms) => (retryMs = ms));
        }
      } catch {
        if (abort.signal.aborted) return;
        onState?.("reconnecting");
      }
      if (ended) return;
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }

  void run();
  return { close: () => abort.abort() };
}

/** Reads events until the body ends; true when the server sent `end`. */
async function read(body: ReadableStream<Uint8Array>, emit: (n: string, d: unknown) => void,
                    retry: (ms: number) => void): Promise<boolean> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let ended = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return ended;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
        else if (line.startsWith("retry: ")) retry(Number(line.slice(7)) || 3000);
      }
      if (!data.length) continue;
      if (name === "end") ended = true;
      emit(name, JSON.parse(data.join("\n")));
    }
  }
}
