// Search by words (GET /v1/search) or by an example image dropped or chosen (POST /v1/search/similar),
// with each result's calibrated score and the relevance cut-off under which results are not returned.
import { api, query } from "../api.js";
import { imageCard } from "../cards.js";
import { fmtScore, h, status } from "../dom.js";

function showResults(box, found, what) {
  const items = found.items || [];
  const cut = h("p", { class: "cutoff", id: "cutoff" },
    `Relevance cut-off: score ≥ ${fmtScore(found.min_score)}. Weaker matches are not shown. `,
    `${items.length} result${items.length === 1 ? "" : "s"} for ${what}.`);
  const grid = h("ul", { class: "grid", id: "search-grid", "aria-label": "Search results" },
    items.map((i) => imageCard(i.image, { score: i.score, cosine: i.cosine })));
  box.replaceChildren(cut, items.length ? grid : status("Nothing scores above the cut-off."));
}

export function renderSearch(main, { params, navigate }) {
  const q = params.get("q") || "";
  const minScore = params.get("min_score") || "";
  const results = h("div", { id: "search-results", "aria-live": "polite" });
  const words = h("form", { class: "card search-form", id: "search-form", role: "search" },
    h("div", { class: "field field-wide" },
      h("label", { for: "search-q" }, "Words"),
      h("input", { id: "search-q", name: "q", type: "search", value: q, placeholder: "e.g. dog on a beach, latte art", required: true })),
    h("div", { class: "field" },
      h("label", { for: "search-min" }, "Minimum score (blank: server default)"),
      h("input", { id: "search-min", name: "min_score", type: "number", min: 0, max: 1, step: 0.05, value: minScore })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")));
  words.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries([...new FormData(words)].filter(([, v]) => v));
    navigate("search", data);
  });

  const file = h("input", { id: "search-file", type: "file", accept: "image/*", "aria-describedby": "drop-help" });
  const drop = h("div", { class: "dropzone card", id: "dropzone" },
    h("div", { class: "field" }, h("label", { for: "search-file" }, "Example image"), file),
    h("p", { id: "drop-help", class: "help" }, "Find images that look like it: choose a file, or drop one on this box."));
  async function byImage(blob, name) {
    results.replaceChildren(status(`Looking for images like ${name}…`));
    const form = new FormData();
    form.append("file", blob, name);
    try {
      const found = await api(`/v1/search/similar${query({ limit: 30, min_score: minScore })}`, { method: "POST", body: form });
      showResults(results, found, `images like ${name}`);
    } catch (error) {
      results.replaceChildren(status(`Search failed: ${error.message}`, "error"));
    }
  }
  file.addEventListener("change", () => file.files[0] && byImage(file.files[0], file.files[0].name));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("dragging"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    const f = event.dataTransfer?.files?.[0];
    if (f) byImage(f, f.name);
  });

  main.append(h("h1", {}, "Search"), words, drop, results);
  if (q) {
    results.replaceChildren(status(`Searching for “${q}”…`));
    api(`/v1/search${query({ q, limit: 30, min_score: minScore })}`)
      .then((found) => showResults(results, found, `“${q}”`))
      .catch((error) => results.replaceChildren(status(`Search failed: ${error.message}`, "error")));
  }
}
