// The trends dashboard: the /v1/analytics/... endpoints as Chart.js charts (from the npm package, served
// by the server at /vendor/chart.js), each with its data as a table and a CSV export link.
import { api, query } from "../api.js";
import { h, status } from "../dom.js";

// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C6D00", "#000000", "#7F7F7F", "#B30059"];
const SENTIMENT_COLOURS = { positive: "#009E73", neutral: "#7F7F7F", negative: "#D55E00" };

/** rows [{period, <key>, images}] -> {labels: periods, datasets: one per value} */
export function pivot(rows, key, value = "images") {
  const periods = [...new Set(rows.map((r) => r.period))].sort();
  const names = [...new Set(rows.map((r) => r[key]))];
  const index = new Map(rows.map((r) => [`${r.period}\u0000${r[key]}`, r[value]]));
  return {
    labels: periods,
    datasets: names.map((name, i) => ({
      label: name,
      data: periods.map((p) => index.get(`${p}\u0000${name}`) || 0),
      backgroundColor: SENTIMENT_COLOURS[name] || PALETTE[i % PALETTE.length],
      borderColor: SENTIMENT_COLOURS[name] || PALETTE[i % PALETTE.length],
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
  block.append(h("div", { class: "canvas-box" }, canvas),
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
    categories: (d) => ({ type: "bar", data: pivot(d.rows, "category"), options: stacked }),
    labels: (d) => ({ type: "line", data: pivot(d.rows, "label"), options: counts }),
    brands: (d) => ({ type: "line", data: pivot(d.rows, "brand"), options: counts }),
    sentiment: (d) => ({ type: "bar", data: pivot(d.rows, "sentiment"), options: stacked }),
    safety: (d) => ({
      type: "line",
      data: { labels: d.rows.map((r) => r.period), datasets: [{ label: "unsafe share (%)", data: d.rows.map((r) => r.unsafe_share * 100), borderColor: PALETTE[3], backgroundColor: PALETTE[3] }] },
      options: { scales: { y: { beginAtZero: true, suggestedMax: 100 } } },
    }),
    engagement: (d, key) => ({
      type: "bar",
      data: { labels: d.rows.map((r) => r[key]), datasets: ["likes", "comments", "shares"].map((m, i) => ({ label: m, data: d.rows.map((r) => r[m]), backgroundColor: PALETTE[i] })) },
      options: counts,
    }),
    hashtags: (d) => ({
      type: "bar",
      data: { labels: d.rows.map((r) => `#${r.hashtag}`), datasets: [{ label: "posts", data: d.rows.map((r) => r.posts), backgroundColor: PALETTE[0] }] },
      options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
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
