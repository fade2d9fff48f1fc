// Calls to /api/v1 with the session's token; a 401 ends the session.
import { forget, token } from "./auth";

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

let onUnauthenticated: () => void = () => {};

export function whenUnauthenticated(handler: () => void): void {
  onUnauthenticated = handler;
}

export function authHeaders(): Record<string, string> {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(API + path, { ...init, headers, credentials: "omit" });
  if (resp.status === 401) {
    forget();
    onUnauthenticated();
  }
  if (!resp.ok) throw new ApiError(resp.status, await detail(resp));
  return (await resp.json()) as T;
}

async function detail(resp: Response): Promise<string> {
  try {
    const body = await resp.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    return `${resp.status} ${resp.statusText}`;
  }
}
