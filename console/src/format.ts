// Small formatting helpers: states, durations, times, safe links.
export const RUN_STATES = ["pending", "queued", "running", "cancelling", "succeeded", "failed", "cancelled"];
export const RUN_ACTIVE = new Set(["pending", "queued", "running"]);
export const NODE_FAILED = new Set(["failed", "timed_out", "lost"]);
export const TRIGGERS = ["manual", "api", "schedule", "webhook", "after"];

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m ${Math.round(seconds % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function between(start: string | null, end: string | null): number | null {
  if (!start) return null;
  const to = end ? Date.parse(end) : Date.now();
  return Math.max(0, (to - Date.parse(start)) / 1000);
}

export function when(at: string | null): string {
  return at ? new Date(at).toLocaleString() : "";
}

/** A link only for schemes that open a page or a file, never `javascript:` or `data:`. */
export function safeHref(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url, location.origin);
    return ["http:", "https:", "file:"].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

export function triggerType(trigger: Record<string, unknown>): string {
  return typeof trigger.type === "string" ? trigger.type : "";
}

/** A link only for http and https (for values a foreign system or a request supplied). */
export function webHref(url: string | null | undefined): string | null {
  const href = safeHref(url);
  return href && /^https?:/.test(href) ? href : null;
}

/** Any value as readable text (never HTML). */
export function text(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)}%`;
}
