// The workspace's images with filters (the GET /v1/images parameters), loaded a page at a time as the
// list scrolls (or with the "Load more" button), following `next_cursor`; images dropped on the page are
// added (upload.js), and the images selected can be labelled, approved, deleted or exported (bulk.js).
import { api, query } from "../api.js";
import { bulkBar } from "../bulk.js";
import { imageCard } from "../cards.js";
import { h, status } from "../dom.js";
import { uploadPanel } from "../upload.js";

const EMOTIONS = ["happy", "neutral", "sad", "surprise", "angry", "fear", "disgust"];
const PAGE = 24;
// filter name -> how it is edited
const TEXT_FILTERS = [
  ["label", "Label", "e.g. dog, coffee, person"],
  ["author", "Author", "e.g. alice"],
  ["hashtag", "Hashtag", "e.g. latte"],
  ["platform", "Platform", "e.g. instagram"],
];

function select(name, label, options, value) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: `f-${name}` }, label),
    h(
      "select",
      { id: `f-${name}`, name },
      h("option", { value: "" }, "Any"),
      options.map((o) => h("option", { value: o, selected: o === value }, o)),
    ),
  );
}

function text(name, label, placeholder, value) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: `f-${name}` }, label),
    h("input", { id: `f-${name}`, name, type: "text", placeholder, value: value || "" }),
  );
}

function dateField(name, label, value) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: `f-${name}` }, label),
    h("input", { id: `f-${name}`, name, type: "date", value: value || "" }),
  );
}

/** The date inputs are whole UTC days: until is inclusive in the form, exclusive in the API. */
export function apiFilters(params) {
  const out = {};
  for (const [k, v] of params) if (v && !["from", "to", "dated", "limit"].includes(k)) out[k] = v;
  const [since, until] = params.get("dated") === "posted" ? ["posted_since", "posted_until"] : ["since", "until"];
  if (params.get("from")) out[since] = `${params.get("from")}T00:00:00Z`;
  if (params.get("to")) {
    const end = new Date(`${params.get("to")}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1);
    out[until] = end.toISOString().replace(".000Z", "Z");
  }
  return out;
}

/** On a phone, `el` folded away under a summary line (the filters, adding images), so that the images
 * come first; on wider screens `el` itself. */
function fold(el, id, title) {
  if (!window.matchMedia("(max-width: 700px)").matches) return el;
  return h("details", { class: "fold card", id }, h("summary", {}, title), el);
}

export async function renderGallery(main, { params, navigate, session }) {
  const [cats, brands] = await Promise.all([
    api("/v1/categories").catch(() => ({ categories: [] })),
    api("/v1/brands").catch(() => ({ brands: [] })),
  ]);
  const form = h(
    "form",
    { class: "filters card", id: "gallery-filters", "aria-label": "Filters" },
    select("category", "Category", cats.categories.map((c) => c.name), params.get("category")),
    text(...TEXT_FILTERS[0], params.get("label")),
    select("safety", "Safety verdict", ["safe", "suggestive", "explicit"], params.get("safety")),
    select("brand", "Brand", brands.brands.map((b) => b.name), params.get("brand")),
    select("emotion", "Dominant emotion", EMOTIONS, params.get("emotion")),
    ...TEXT_FILTERS.slice(1).map((f) => text(...f, params.get(f[0]))),
    dateField("from", "From (UTC day)", params.get("from")),
    dateField("to", "To (UTC day, inclusive)", params.get("to")),
    h(
      "div",
      { class: "field" },
      h("label", { for: "f-dated" }, "Dates are"),
      h(
        "select",
        { id: "f-dated", name: "dated" },
        h("option", { value: "ingested" }, "ingest time"),
        h("option", { value: "posted", selected: params.get("dated") === "posted" }, "post time"),
      ),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, "Apply filters"),
      h("button", { type: "reset", class: "button-secondary" }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = {};
    for (const [k, v] of new FormData(form)) if (v && !(k === "dated" && v === "ingested")) chosen[k] = v;
    navigate("gallery", chosen);
  });
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    navigate("gallery");
  });

  const grid = h("ul", { class: "grid", id: "gallery-grid", "aria-label": "Images" });
  const info = h("div", { "aria-live": "polite" });
  const more = h("button", { type: "button", class: "button-secondary", id: "load-more", hidden: true }, "Load more");
  const views = new Map(); // id -> the image's view, as listed: what the cards show and exports write
  const bulk = bulkBar({
    session, views, categories: cats.categories.map((c) => c.name),
    onDeleted: (ids) => ids.forEach((id) => { views.delete(id); grid.querySelector(`li[data-id="${CSS.escape(id)}"]`)?.remove(); }),
  });
  const card = (image) => imageCard(image, { select: { checked: bulk.selected.has(image.id), onToggle: bulk.toggle } });
  const canWrite = session?.scope === "write" || session?.scope === "admin";
  const upload = uploadPanel({
    canWrite, scope: session?.scope, dropTarget: main,
    onAdded: (view) => {
      if (views.has(view.id)) return;
      views.set(view.id, view);
      grid.prepend(card(view)); // newest first, as the list is ordered
    },
  });
  const active = [...params.keys()].filter((k) => !["dated", "limit"].includes(k)).length;
  main.append(h("h1", {}, "Gallery"), fold(form, "filter-box", `Filters${active ? ` (${active} in force)` : ""}`),
    h("div", { class: "gallery-tools" }, fold(upload, "upload-box", "Add images"), bulk.bar),
    info, grid, h("div", { class: "more" }, more));

  const filters = apiFilters(params);
  const pageSize = Math.min(200, Math.max(1, Number(params.get("limit")) || PAGE)); // ?limit=: images a page
  let cursor = null;
  let loading = false;
  let shown = 0;
  let observer = null;
  async function load() {
    if (loading) return;
    loading = true;
    more.disabled = true;
    try {
      const page = await api(`/v1/images${query({ ...filters, limit: pageSize, cursor })}`);
      for (const image of page.items) {
        if (views.has(image.id)) continue; // uploaded meanwhile, already shown
        views.set(image.id, image);
        grid.append(card(image));
      }
      shown += page.items.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      info.replaceChildren(
        status(shown ? `${shown} image${shown === 1 ? "" : "s"}${cursor ? ", more below" : ""}` : "No images match these filters."),
      );
    } catch (error) {
      info.replaceChildren(status(`Could not load images: ${error.message}`, "error"));
    } finally {
      loading = false;
      more.disabled = false;
    }
    if (cursor && observer) {
      // observing again reports the button's current state: if it is still in view, the next page loads
      observer.unobserve(more);
      observer.observe(more);
    }
  }
  more.addEventListener("click", load);
  // Infinite scroll: the next page loads when the button scrolls into view (the button stays for keyboards).
  observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && cursor) load();
  }, { rootMargin: "400px" });
  observer.observe(more);
  await load();
  return () => observer.disconnect();
}
