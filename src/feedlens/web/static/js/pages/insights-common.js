// Shared by the audience-insights pages (docs/insights.md): their style sheet, time windows, sentiment
// badges and the parts behind a score, plain data tables and small thumbnails.
import { thumbnailUrl } from "../api.js";
import { fmtScore, h } from "../dom.js";

/** The insights pages' own style sheet, added once (same origin: the page's CSP allows it). */
export function ensureStyles() {
  if (document.getElementById("insights-css")) return;
  document.head.append(h("link", { id: "insights-css", rel: "stylesheet", href: "/static/insights.css" }));
}

export const SENTIMENT_COLOURS = { positive: "#009E73", neutral: "#7F7F7F", negative: "#D55E00", unknown: "#BBBBBB" };

/** {bucket, since, until} for the API from a page's #/...?bucket=&from=&to= (UTC days, `to` inclusive). */
export function windowParams(params, bucket = "week") {
  const out = { bucket: params.get("bucket") || bucket };
  if (params.get("from")) out.since = `${params.get("from")}T00:00:00Z`;
  if (params.get("to")) {
    const end = new Date(`${params.get("to")}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1);
    out.until = end.toISOString().replace(".000Z", "Z");
  }
  return out;
}

export function field(id, label, input) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

/** The time-range fields every insights page shares. */
export function rangeFields(prefix, params) {
  return [
    field(`${prefix}-bucket`, "Time step", h("select", { id: `${prefix}-bucket`, name: "bucket" },
      h("option", { value: "week" }, "week"), h("option", { value: "day", selected: params.get("bucket") === "day" }, "day"))),
    field(`${prefix}-from`, "From (UTC day)", h("input", { id: `${prefix}-from`, name: "from", type: "date", value: params.get("from") || "" })),
    field(`${prefix}-to`, "To (UTC day, inclusive)", h("input", { id: `${prefix}-to`, name: "to", type: "date", value: params.get("to") || "" })),
  ];
}

/** A form whose submit navigates to `path` with its filled fields as the hash's query. */
export function routeForm(form, path, navigate, extra = {}) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const filled = Object.fromEntries([...new FormData(form)].filter(([, v]) => v));
    navigate(path, { ...extra, ...filled });
  });
  return form;
}

export function sentimentBadge(label, score) {
  const text = score === null || score === undefined ? label : `${label} ${fmtScore(score)}`;
  return h("span", { class: `badge mood mood-${label}` }, text);
}

const PART_NAMES = { caption: "caption", image_text: "text in image", faces: "faces" };

/** "caption +0.82 · faces +0.67" (the parts a score came from; absent parts left out). */
export function partsText(parts) {
  const shown = Object.entries(PART_NAMES)
    .filter(([key]) => parts && parts[key] !== null && parts[key] !== undefined)
    .map(([key, name]) => `${name} ${parts[key] >= 0 ? "+" : ""}${parts[key].toFixed(2)}`);
  return shown.length ? shown.join(" · ") : "nothing to read";
}

export function fmtNumber(x) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  return Number.isInteger(x) ? x.toLocaleString("en-US") : x.toFixed(2);
}

/** A data table of rows [{col: value}] with the given columns [[key, header, format?]]. */
export function dataTable(id, columns, rows, caption) {
  return h("div", { class: "table-scroll" },
    h("table", { class: "data", id },
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map(([, header]) => h("th", { scope: "col" }, header)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([key, , format]) => {
        const value = format ? format(row[key], row) : fmtNumber(row[key]);
        return h("td", { class: typeof row[key] === "number" ? "num" : null }, value);
      }))))));
}

export function authorLink(name) {
  return h("a", { href: `#/author/${encodeURIComponent(name)}`, class: "author-link" }, `@${name}`);
}

/** A small linked thumbnail of a stored image. */
export function thumb(id, alt) {
  return h("a", { href: `#/image/${encodeURIComponent(id)}`, class: "insight-thumb" },
    h("img", { src: thumbnailUrl(id), alt: alt || `Image ${id.slice(0, 8)}`, loading: "lazy", width: 96, height: 72 }));
}

/** A post as a list item: author, date, caption, its sentiment and parts, and its images. */
export function postItem(post) {
  return h("li", { class: "card insight-post", dataset: { post: post.post_id } },
    h("div", { class: "insight-post-head" },
      post.author ? authorLink(post.author) : h("span", {}, "no author"),
      h("span", { class: "help" }, post.created_at ? post.created_at.slice(0, 10) : ""),
      sentimentBadge(post.label, post.score)),
    h("p", { class: "insight-caption" }, post.caption || "(no caption)"),
    h("p", { class: "help" }, partsText(post.parts), ` · ${fmtNumber((post.likes || 0) + (post.comments || 0) + (post.shares || 0))} engagement`),
    h("div", { class: "insight-thumbs" }, (post.images || []).map((id) => thumb(id, `Image of a post by @${post.author || "unknown"}`))));
}
