// The session: an API token kept in sessionStorage (this tab only), and who it belongs to.
import type { Me } from "./types";

const KEY = "interlock.token";

export function token(): string | null {
  return sessionStorage.getItem(KEY);
}

export function remember(value: string): void {
  sessionStorage.setItem(KEY, value);
}

export function forget(): void {
  sessionStorage.removeItem(KEY);
}

/** Whether the caller holds `permission` on `namespace` (or anywhere, without one). */
export function may(me: Me | null, permission: string, namespace?: string): boolean {
  const patterns = me?.permissions[permission] ?? [];
  if (namespace === undefined) return patterns.length > 0;
  return patterns.some((p) => covers(p, namespace));
}

// As `interlock.spec.namespaces.matches`: `*`; `a.b` and `a.b.*` cover a.b and below.
function covers(pattern: string, namespace: string): boolean {
  if (pattern === "*") return true;
  const anchor = pattern.endsWith(".*") ? pattern.slice(0, -2) : pattern;
  return namespace === anchor || namespace.startsWith(anchor + ".");
}
