// The JSON API, authenticated by the session cookie (HttpOnly: this script never sees it). Requests that
// change state carry the CSRF header the server requires of cookie-authenticated writes.

export const CSRF_HEADER = "X-Feedlens-CSRF";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || "http_error";
    this.problem = problem;
  }
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function api(path, { method = "GET", json, body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers[CSRF_HEADER] = "1";
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers, body, signal, credentials: "same-origin" });
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = new ApiError(response.status, typeof data === "object" ? data : null);
    error.retryAfter = Number(response.headers.get("Retry-After") ?? NaN);
    if (response.status === 401) window.dispatchEvent(new CustomEvent("feedlens:unauthorized"));
    throw error;
  }
  return data;
}

/**
 * api(), waiting and trying again (up to `tries` times) when the answer is 429 "too many requests" or 503
 * "busy": as long as Retry-After says, else a growing pause. For the gallery's bulk actions.
 */
export async function apiPatient(path, options = {}, tries = 4) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await api(path, options);
    } catch (error) {
      if (attempt >= tries || ![429, 503].includes(error.status)) throw error;
      const wait = Number.isFinite(error.retryAfter) ? error.retryAfter * 1000 : 1000 * 2 ** attempt;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

export const thumbnailUrl = (id) => `/v1/images/${encodeURIComponent(id)}/thumbnail`;
