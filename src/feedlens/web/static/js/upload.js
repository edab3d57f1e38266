// Adding images to the library from the gallery: files chosen or dropped are sent to POST /v1/images two
// at a time, each with its own progress bar (sending, then analysing), retried after a "too many requests"
// or "busy" answer as long as its Retry-After says.
import { CSRF_HEADER } from "./api.js";
import { h } from "./dom.js";

const AT_ONCE = 2;
const MAX_TRIES = 5;
const RETRYABLE = new Set([429, 503]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One POST /v1/images with upload progress (fetch has none): resolves {status, body, retryAfter}. */
function send(file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/images");
    xhr.setRequestHeader(CSRF_HEADER, "1");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.upload.addEventListener("load", () => onProgress(1));
    xhr.addEventListener("load", () => resolve({ status: xhr.status, body: xhr.response, retryAfter: Number(xhr.getResponseHeader("Retry-After")) }));
    xhr.addEventListener("error", () => resolve({ status: 0, body: null, retryAfter: NaN }));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** A file's row: its name, a progress bar and a line saying where it stands. */
function fileRow(file) {
  const bar = h("progress", { max: 100, value: 0, "aria-label": `Upload of ${file.name}` });
  const state = h("span", { class: "upload-state" }, "waiting");
  const row = h("li", { class: "upload-row" }, h("span", { class: "upload-name" }, file.name), bar, state);
  return {
    row,
    progress(fraction) {
      bar.value = Math.round(fraction * 100);
      state.textContent = fraction < 1 ? `sending ${bar.value}%` : "analysing…";
    },
    done(text, kind) { bar.value = 100; state.textContent = text; row.classList.add(`upload-${kind}`); },
  };
}

async function uploadOne(file, ui) {
  for (let tries = 1; tries <= MAX_TRIES; tries += 1) {
    const answer = await send(file, (f) => ui.progress(f));
    if (answer.status === 200 || answer.status === 201) return answer;
    if (!RETRYABLE.has(answer.status) && answer.status !== 0) return answer;
    const wait = Number.isFinite(answer.retryAfter) ? answer.retryAfter * 1000 : 1000 * 2 ** tries;
    ui.done(`busy: trying again in ${Math.ceil(wait / 1000)} s`, "waiting");
    await sleep(wait);
  }
  return { status: 429, body: { detail: "the server stayed busy" } };
}

/**
 * The "Add images" panel. `dropTarget`: the element files may be dropped on (the panel too);
 * `onAdded(view, status)`: called with each stored image's view ("added" or "exists").
 */
export function uploadPanel({ canWrite, scope, dropTarget, onAdded }) {
  const input = h("input", { id: "upload-files", type: "file", accept: "image/*", multiple: true, "aria-describedby": "upload-help", disabled: !canWrite });
  const list = h("ul", { class: "upload-list", id: "upload-list", "aria-label": "Uploads" });
  const summary = h("p", { class: "status", id: "upload-status", role: "status" });
  const help = canWrite
    ? "Choose images, or drop them anywhere on this page. Each is analysed as it arrives."
    : `Adding images needs a key of scope write; this one is ${scope}. Log out and log in with such a key to add images.`;
  const panel = h("section", { class: "card dropzone upload", id: "upload", "aria-labelledby": "h-upload" },
    h("h2", { id: "h-upload" }, "Add images"),
    h("div", { class: "field" }, h("label", { for: "upload-files" }, "Images to add"), input),
    h("p", { class: "help", id: "upload-help" }, help), summary, list);
  const counts = { sent: 0, added: 0, exists: 0, failed: 0, total: 0 };
  const pending = [];
  let running = 0;

  function tell() {
    const parts = [`${counts.added} added`];
    if (counts.exists) parts.push(`${counts.exists} already in the library`);
    if (counts.failed) parts.push(`${counts.failed} failed`);
    const left = counts.total - counts.added - counts.exists - counts.failed;
    summary.textContent = `${parts.join(", ")}${left ? `; ${left} to go` : "."}`;
  }

  async function pump() {
    while (running < AT_ONCE && pending.length) {
      const [file, ui] = pending.shift();
      running += 1;
      uploadOne(file, ui).then((answer) => {
        if (answer.status === 200 || answer.status === 201) {
          const added = answer.body.status === "added";
          counts[added ? "added" : "exists"] += 1;
          ui.done(added ? "added" : "already in the library", "ok");
          onAdded(answer.body, answer.body.status);
        } else {
          counts.failed += 1;
          ui.done(`failed: ${answer.body?.detail || (answer.status ? `HTTP ${answer.status}` : "no connection")}`, "failed");
        }
        tell();
      }).finally(() => { running -= 1; pump(); });
    }
  }

  function add(files) {
    if (!canWrite) { summary.textContent = help; return; }
    for (const file of files) {
      if (!file.type.startsWith("image/") && file.type !== "") continue; // a folder or a document: not ours
      const ui = fileRow(file);
      list.append(ui.row);
      pending.push([file, ui]);
      counts.total += 1;
    }
    tell();
    pump();
  }

  input.addEventListener("change", () => { add([...input.files]); input.value = ""; });
  for (const target of new Set([panel, dropTarget])) {
    target.addEventListener("dragover", (event) => {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      event.preventDefault();
      panel.classList.add("dragging");
    });
    target.addEventListener("dragleave", (event) => {
      if (!target.contains(event.relatedTarget)) panel.classList.remove("dragging");
    });
    target.addEventListener("drop", (event) => {
      if (!event.dataTransfer?.files?.length) return;
      event.preventDefault();
      panel.classList.remove("dragging");
      add([...event.dataTransfer.files]);
    });
  }
  return panel;
}
