// Many images at once in the gallery: the selection (a checkbox on each card), and what can be done to the
// selected images: label them with a category, approve them in the moderation review, delete them, or
// export their results as CSV or JSON (from the views the gallery already loaded: no further requests).
import { apiPatient } from "./api.js";
import { h } from "./dom.js";
import { problemText } from "./keys.js";

const AT_ONCE = 3;

/** Run `work(id)` over ids, AT_ONCE at a time; resolves to {ok: [ids], failed: [[id, error]]}. */
async function each(ids, work, onStep) {
  const out = { ok: [], failed: [] };
  const queue = [...ids];
  async function worker() {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      try { await work(id); out.ok.push(id); } catch (error) { out.failed.push([id, error]); }
      onStep(out.ok.length + out.failed.length);
    }
  }
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, ids.length) }, worker));
  return out;
}

/** The fields of an image's export row, in everyday words. */
export function exportRow(view) {
  const r = view.results || {};
  const posts = view.posts || [];
  return {
    id: view.id,
    source: view.source ?? "",
    format: view.format ?? "",
    width: view.width ?? "",
    height: view.height ?? "",
    added: view.created_at ?? "",
    labels: (r.labels?.labels || []).slice(0, 5).map((l) => `${l.name} ${l.score.toFixed(2)}`).join("; "),
    categories: (r.categories?.assigned || []).join("; "),
    safety: r.safety?.verdict ?? "",
    faces: r.faces?.count ?? "",
    text: r.text?.full_text ?? "",
    authors: [...new Set(posts.map((p) => p.author).filter(Boolean))].join("; "),
    hashtags: [...new Set(posts.flatMap((p) => p.hashtags || []))].join("; "),
    platforms: [...new Set(posts.map((p) => p.platform).filter(Boolean))].join("; "),
  };
}

/** RFC 4180 CSV; a cell starting with = + - @ gets a ' so spreadsheets show it instead of running it. */
export function toCsv(rows) {
  if (!rows.length) return "";
  const columns = Object.keys(rows[0]);
  const cell = (value) => {
    let s = String(value ?? "");
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [columns.join(","), ...rows.map((row) => columns.map((c) => cell(row[c])).join(","))].join("\r\n") + "\r\n";
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/**
 * The selection toolbar. `views`: Map id -> image view (what the gallery shows); `onDeleted(ids)`;
 * `categories`: names of the workspace's taxonomy. Returns {bar, selected: Set, toggle(id, on), refresh()}.
 */
export function bulkBar({ session, views, categories, onDeleted }) {
  const selected = new Set();
  const canWrite = session?.scope === "write" || session?.scope === "admin";
  const count = h("span", { id: "selected-count", class: "selected-count", role: "status" }, "None selected");
  const live = h("p", { id: "bulk-status", class: "status", role: "status" });
  const category = h("select", { id: "bulk-category", disabled: !canWrite },
    h("option", { value: "" }, "Choose a category"), categories.map((c) => h("option", { value: c }, c)));
  const button = (id, text, onclick, writes = true) =>
    h("button", { type: "button", id, class: "button-secondary", onclick, disabled: true, dataset: { writes: String(writes) } }, text);
  const buttons = [
    button("bulk-label", "Label", () => label()),
    button("bulk-approve", "Approve", () => approve()),
    button("bulk-delete", "Delete…", () => remove()),
    button("bulk-csv", "Export CSV", () => exportAs("csv"), false),
    button("bulk-json", "Export JSON", () => exportAs("json"), false),
  ];
  const selectAll = h("button", { type: "button", class: "button-secondary", id: "select-all", onclick: () => setAll(true) }, "Select all shown");
  const clearAll = h("button", { type: "button", class: "button-secondary", id: "select-none", onclick: () => setAll(false) }, "Clear selection");
  const bar = h("section", { class: "card bulk-bar", id: "bulk-bar", "aria-labelledby": "h-bulk" },
    h("h2", { id: "h-bulk" }, "Selected images"),
    h("p", { class: "help" }, "Tick images to label, approve, delete or export several at once."),
    h("div", { class: "bulk-row" }, count, selectAll, clearAll),
    h("div", { class: "bulk-row", id: "bulk-actions", hidden: true },
      h("div", { class: "field" }, h("label", { for: "bulk-category" }, "Label selected as"), category),
      buttons),
    canWrite ? null : h("p", { class: "help" }, `Labelling, approving and deleting need a key of scope write; this one is ${session?.scope}. Exports work with any key.`),
    live);

  const say = (text, kind = "info") => {
    live.className = `status status-${kind}`;
    live.setAttribute("role", kind === "error" ? "alert" : "status");
    live.textContent = text;
  };

  function refresh() {
    const n = selected.size;
    count.textContent = n ? `${n} selected` : "None selected";
    for (const b of buttons) b.disabled = !n || (b.dataset.writes === "true" && !canWrite);
    bar.querySelector("#bulk-actions").hidden = !n; // the actions show once there is something to act on
    clearAll.hidden = !n;
    for (const box of document.querySelectorAll("#gallery-grid input.select-image")) {
      box.checked = selected.has(box.value);
      box.closest(".image-card")?.classList.toggle("is-selected", box.checked);
    }
  }

  function toggle(id, on) {
    if (on) selected.add(id); else selected.delete(id);
    refresh();
  }

  function setAll(on) {
    if (on) for (const id of views.keys()) selected.add(id); else selected.clear();
    refresh();
  }

  async function run(what, work, describe) {
    const ids = [...selected];
    for (const b of buttons) b.disabled = true;
    say(`${what}: 0 of ${ids.length}…`);
    const result = await each(ids, work, (n) => say(`${what}: ${n} of ${ids.length}…`));
    say(describe(result), result.failed.length ? "error" : "info");
    refresh();
    return result;
  }

  const failures = (result, action) => result.failed.length
    ? ` ${result.failed.length} failed (${problemText(result.failed[0][1], action)})`
    : "";

  async function label() {
    const name = category.value;
    if (!name) { say("Choose a category to label the selected images with.", "error"); category.focus(); return; }
    await run(`Labelling as ${name}`, (id) => apiPatient(`/v1/images/${encodeURIComponent(id)}/labels`, { method: "POST", json: { categories: [name] } }),
      (r) => `Labelled ${r.ok.length} image${r.ok.length === 1 ? "" : "s"} as ${name}.${failures(r, "Labelling")}`);
  }

  async function approve() {
    const result = await run("Approving", (id) => apiPatient(`/v1/review/moderation/${encodeURIComponent(id)}`, { method: "POST", json: { decision: "approve", reason: "approved from the gallery" } }),
      () => "");
    const notWaiting = result.failed.filter(([, e]) => e.code === "not_in_review").length;
    const other = result.failed.filter(([, e]) => e.code !== "not_in_review");
    let text = `Approved ${result.ok.length} image${result.ok.length === 1 ? "" : "s"} waiting for review.`;
    if (notWaiting) text += ` ${notWaiting} ${notWaiting === 1 ? "was" : "were"} not waiting for review: nothing to approve.`;
    if (other.length) text += ` ${other.length} failed (${problemText(other[0][1], "Approving")})`;
    say(text, other.length ? "error" : "info");
  }

  async function remove() {
    const n = selected.size;
    if (!window.confirm(`Delete ${n} image${n === 1 ? "" : "s"} for good? Their results, stored copies and thumbnails are erased.`)) return;
    const result = await run("Deleting", (id) => apiPatient(`/v1/images/${encodeURIComponent(id)}`, { method: "DELETE" }),
      (r) => `Deleted ${r.ok.length} image${r.ok.length === 1 ? "" : "s"}.${failures(r, "Deleting")}`);
    for (const id of result.ok) selected.delete(id);
    onDeleted(result.ok);
    refresh();
  }

  function exportAs(kind) {
    const chosen = [...selected].map((id) => views.get(id)).filter(Boolean);
    const stamp = new Date().toISOString().slice(0, 10);
    if (kind === "json") download(`feedlens-images-${stamp}.json`, "application/json", `${JSON.stringify(chosen, null, 2)}\n`);
    else download(`feedlens-images-${stamp}.csv`, "text/csv", toCsv(chosen.map(exportRow)));
    say(`Exported ${chosen.length} image${chosen.length === 1 ? "" : "s"} as ${kind.toUpperCase()}.`);
  }

  return { bar, selected, toggle, refresh };
}
