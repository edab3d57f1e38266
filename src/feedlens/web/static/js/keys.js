// Single-key shortcuts for the queue pages, and the helpers the review, labelling and models pages share.
import { api } from "./api.js";

const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);

/**
 * Listen for single keys ({"a": fn, "1": fn, ...}) on the page; returns the function that stops listening.
 * Keys typed into a field, or pressed with Ctrl/Alt/Meta, are the field's and the browser's.
 */
export function shortcuts(handlers) {
  const onKey = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    const target = event.target;
    if (target instanceof HTMLElement && (TYPING.has(target.tagName) || target.isContentEditable)) return;
    const handler = handlers[event.key.length === 1 ? event.key.toLowerCase() : event.key];
    if (!handler) return;
    event.preventDefault();
    handler(event);
  };
  document.addEventListener("keydown", onKey);
  return () => document.removeEventListener("keydown", onKey);
}

/** A problem answer in words: a missing scope says which key is needed, other problems their detail. */
export function problemText(error, action = "This") {
  if (error?.status === 403 && error.code === "forbidden") {
    // detail: "this key has scope write; admin is needed"
    const need = /(\w+) is needed/.exec(error.message)?.[1];
    return `${action} needs ${need ? `a key of scope ${need}` : "a key with more rights"}: ${error.message}. Log out and log in with such a key to do it.`;
  }
  return `${action} failed: ${error?.message || String(error)}`;
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); reject(new DOMException("aborted", "AbortError")); }, { once: true });
  });

/**
 * Poll a background run (GET /v1/models/runs/{id}) until it succeeds or fails, calling onUpdate(run) on
 * each answer; resolves to the last run. `signal` aborts (the page was left).
 */
export async function pollRun(id, onUpdate, signal, everyMs = 1000) {
  for (;;) {
    const run = await api(`/v1/models/runs/${encodeURIComponent(id)}`, { signal });
    onUpdate(run);
    if (run.status === "succeeded" || run.status === "failed") return run;
    await sleep(everyMs, signal);
  }
}

/** One line saying where a run stands. */
export function runText(run, what) {
  if (run.status === "failed") return `${what} failed: ${run.error?.detail || run.error?.message || JSON.stringify(run.error)}`;
  if (run.status === "succeeded") return `${what} finished.`;
  return `${what}: ${run.status}…`;
}
