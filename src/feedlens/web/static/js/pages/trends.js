// The trends dashboard: the /v1/analytics/... endpoints as Chart.js charts (from the npm package, served
// by the server at /vendor/chart.js), each with its data as a table and a CSV export link.
import { api, query } from "../api.js";
import { h, status } from "../dom.js";

// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C6D00", "#000000", "#7F7F7F", "#B30059"];
const SENTIMENT_COLOURS = { positive: "#009E73", neutral: "#7F7F7F", negative: "#D55E00" };

/** The n-th colour: the palette's, then hues a golden angle apart (a taxonomy has more than ten
 * categories, and no two may share a colour). */
function nthColour(n) {
  if (n < PALETTE.length) return PALETTE[n];
  return `hsl(${Math.round((n * 137.508) % 360)}, 65%, ${n % 2 ? 38 : 52}%)`;
}

/** A name's colour, the same in every chart and on every visit: its place in `order` (the taxonomy's
 * categories, the registered brands) when it has one, else a hash of the name. */
export function colourOf(name, order = []) {
  if (SENTIMENT_COLOURS[name]) return SENTIMENT_COLOURS[name];
  const at = order.indexOf(name);
  if (at >= 0) return nthColour(at);
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return nthColour(order.length + (hash % 360)); // past the named ones: clear of their colours
}

/** rows [{period, <key>, images}] -> {labels: periods, datasets: one per value} */
export function pivot(rows, key, value = "images", order = []) {
  const periods = [...new Set(rows.map((r) => r.period))].sort();
  const names = [...new Set(rows.map((r) => r[key]))];
  const index = new Map(rows.map((r) => [`${r.period}\u0000${r[key]}`, r[value]]));
  return {
    labels: periods,
    datasets: names.map((name) => ({
      label: name,
      data: periods.map((p) => index.get(`${p}\u0000${name}`) || 0),
      backgroundColor: colourOf(name, order),
      borderColor: colourOf(name, order),
    })),
  };
}

function table(data) {
  return h("table", { class: "data" },
    h("thead", {}, h("tr", {}, data.columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, data.rows.map((r) => h("tr", {}, data.columns.map((c) => h("td", {}, r[c] ?? ""))))));
}

function chartBlock(id, title, path, params, data, config, charts) {
  const csv = `${path}${query({ ...params, format: "csv" })}`;
  const block = h("section", { class: "card chart", id: `chart-${id}`, "aria-labelledby": `h-${id}` },
    h("div", { class: "chart-head" },
      h("h2", { id: `h-${id}` }, title),
      h("a", { href: csv, download: `feedlens-${id}.csv`, class: "csv-link" }, "Download CSV", h("span", { class: "visually-hidden" }, ` of ${title}`))));
  if (!data.rows.length) {
    block.append(status("No data in this range."));
    return block;
  }
  const canvas = h("canvas", { role: "img", "aria-label": `${title}: chart; the data table follows` });
  const box = h("div", { class: "canvas-box" }, canvas);
  // a bar per row on the side (top hashtags): tall enough that every label is written, none skipped
  if (config.options?.indexAxis === "y") box.style.height = `${Math.max(260, 60 + 24 * config.data.labels.length)}px`;
  block.append(box,
    h("details", {}, h("summary", {}, "Data table"), table(data)));
  if (window.Chart) {
    charts.push(new window.Chart(canvas, {
      ...config,
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { position: "bottom" } },
        ...config.options,
      },
    }));
  }
  return block;
}

function controls(params, navigate) {
  const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id }, label), input);
  const form = h("form", { class: "filters card", id: "trends-form", "aria-label": "Time range" },
    field("t-bucket", "Time step", h("select", { id: "t-bucket", name: "bucket" },
      h("option", { value: "day" }, "day"), h("option", { value: "week", selected: params.get("bucket") === "week" }, "week"))),
    field("t-from", "From (UTC day)", h("input", { id: "t-from", name: "from", type: "date", value: params.get("from") || "" })),
    field("t-to", "To (UTC day, inclusive)", h("input", { id: "t-to", name: "to", type: "date", value: params.get("to") || "" })),
    field("t-kind", "Labels as", h("select", { id: "t-kind", name: "kind" },
      h("option", { value: "headline" }, "Main label of each image"), h("option", { value: "label", selected: params.get("kind") === "label" }, "Every label (Animal counts every cat and dog)"))),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate("trends", Object.fromEntries([...new FormData(form)].filter(([, v]) => v)));
  });
  return form;
}

function windowParams(params) {
  const out = { bucket: params.get("bucket") || "day" };
  if (params.get("from")) out.since = `${params.get("from")}T00:00:00Z`;
  if (params.get("to")) {
    const end = new Date(`${params.get("to")}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1);
    out.until = end.toISOString().replace(".000Z", "Z");
  }
  return out;
}

export async function renderTrends(main, { params, navigate }) {
  const charts = [];
  const board = h("div", { class: "board", id: "trends-board" }, status("Loading…"));
  main.append(h("h1", {}, "Trends"), controls(params, navigate), board);
  if (!window.Chart) board.before(status("Chart.js is not installed (run `make setup`); the data is shown as tables.", "error"));
  const span = windowParams(params);
  const kind = params.get("kind") || "headline";
  // the order colours are given in: each category and brand keeps its colour in every chart
  const [cats, brandList] = await Promise.all([
    api("/v1/categories").catch(() => ({ categories: [] })),
    api("/v1/brands").catch(() => ({ brands: [] })),
  ]);
  const order = { category: cats.categories.map((c) => c.name), brand: brandList.brands.map((b) => b.name) };
  const specs = [
    ["categories", "Images per category", "/v1/analytics/categories", span],
    ["labels", kind === "label" ? "Images per label" : "Images per main label", "/v1/analytics/labels", { ...span, kind }],
    ["brands", "Images per brand", "/v1/analytics/brands", span],
    ["sentiment", "Face emotion sentiment", "/v1/analytics/sentiment", span],
    ["safety", "Share of unsafe content", "/v1/analytics/safety", span],
    ["engagement-category", "Engagement by category", "/v1/analytics/engagement", { ...span, by: "category" }],
    ["engagement-brand", "Engagement by brand", "/v1/analytics/engagement", { ...span, by: "brand" }],
    ["hashtags", "Top hashtags", "/v1/analytics/hashtags", span],
  ];
  let answers;
  try {
    answers = await Promise.all(specs.map(([, , path, p]) => api(`${path}${query(p)}`)));
  } catch (error) {
    board.replaceChildren(status(`Could not load the analytics: ${error.message}`, "error"));
    return () => {};
  }
  const stacked = { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } };
  const counts = { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } };
  const configs = {
    categories: (d) => ({ type: "bar", data: pivot(d.rows, "category", "images", order.category), options: stacked }),
    // labels have no fixed order: sorted, each label of this chart gets a colour of its own
    labels: (d) => ({ type: "line", data: pivot(d.rows, "label", "images", [...new Set(d.rows.map((r) => r.label))].sort()), options: counts }),
    brands: (d) => ({ type: "line", data: pivot(d.rows, "brand", "images", order.brand), options: counts }),
    sentiment: (d) => ({ type: "bar", data: pivot(d.rows, "sentiment"), options: stacked }),
    safety: (d) => ({
      type: "line",
      data: { labels: d.rows.map((r) => r.period), datasets: [{ label: "unsafe share (%)", data: d.rows.map((r) => r.unsafe_share * 100), borderColor: PALETTE[3], backgroundColor: PALETTE[3] }] },
      options: { scales: { y: { beginAtZero: true, suggestedMax: 100 } } },
    }),
    // a bar per category (or brand) in its own colour, grouped by likes, comments and shares
    engagement: (d, key) => ({
      type: "bar",
      data: {
        labels: ["likes", "comments", "shares"],
        datasets: d.rows.map((r) => ({ label: r[key], data: [r.likes, r.comments, r.shares], backgroundColor: colourOf(r[key], order[key]) })),
      },
      options: counts,
    }),
    hashtags: (d) => ({
      type: "bar",
      data: { labels: d.rows.map((r) => `#${r.hashtag}`), datasets: [{ label: "posts", data: d.rows.map((r) => r.posts), backgroundColor: PALETTE[0] }] },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { ticks: { autoSkip: false } } } },
    }),
  };
  board.replaceChildren();
  specs.forEach(([id, title, path, p], i) => {
    const data = answers[i];
    const config = id.startsWith("engagement") ? configs.engagement(data, p.by) : configs[id](data);
    board.append(chartBlock(id, title, path, p, data, config, charts));
  });
  return () => charts.forEach((c) => c.destroy());
}
