// Audience insights for one brand, hashtag or category (docs/insights.md): how people feel about it over
// time, who drives it, where posts come from, the most negative posts, its alerts, and what to show next.
import { api, query } from "../api.js";
import { h, pct, status } from "../dom.js";
import {
  SENTIMENT_COLOURS, authorLink, dataTable, ensureStyles, field, fmtNumber, postItem, rangeFields, routeForm,
  windowParams,
} from "./insights-common.js";
import { recommendPanel } from "./insights-recommend.js";

const KINDS = { brand: "Brand", hashtag: "Hashtag", category: "Category" };

function controls(params, names, navigate) {
  const kind = params.get("kind") || "brand";
  const list = h("datalist", { id: "insight-names" }, names.map((n) => h("option", { value: n })));
  const form = h("form", { class: "filters card", id: "insights-form", "aria-label": "What to watch" },
    field("i-kind", "Watch", h("select", { id: "i-kind", name: "kind" },
      Object.entries(KINDS).map(([value, label]) => h("option", { value, selected: value === kind }, label)))),
    field("i-value", "Name", h("input", { id: "i-value", name: "value", list: "insight-names", value: params.get("value") || "", placeholder: "e.g. a registered brand" })),
    list, ...rangeFields("i", params),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply")));
  return routeForm(form, "insights", navigate);
}

function section(id, title, ...children) {
  return h("section", { class: "card insight-section", id, "aria-labelledby": `h-${id}` },
    h("h2", { id: `h-${id}` }, title), ...children);
}

function feelChart(rows, charts) {
  const canvas = h("canvas", { role: "img", "aria-label": "Posts by sentiment per period and mean sentiment: chart; the data table follows" });
  if (!window.Chart || !rows.length) return null;
  charts.push(new window.Chart(canvas, {
    data: {
      labels: rows.map((r) => r.period),
      datasets: [
        ...["positive", "neutral", "negative"].map((label) => ({
          type: "bar", label: `${label} posts`, data: rows.map((r) => r[label]), backgroundColor: SENTIMENT_COLOURS[label], stack: "posts", yAxisID: "y",
        })),
        { type: "line", label: "mean sentiment", data: rows.map((r) => r.sentiment), borderColor: "#0072B2", backgroundColor: "#0072B2", yAxisID: "mood" },
      ],
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { position: "bottom" } },
      scales: {
        x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "posts" } },
        mood: { position: "right", min: -1, max: 1, grid: { drawOnChartArea: false }, title: { display: true, text: "sentiment (−1 to 1)" } },
      },
    },
  }));
  return h("div", { class: "canvas-box" }, canvas);
}

function latest(rows) {
  const last = rows[rows.length - 1];
  if (!last) return h("div", { id: "insight-latest" }, status("No posts about it in this range."));
  return h("dl", { class: "insight-figures", id: "insight-latest" },
    h("div", {}, h("dt", {}, `Posts (${last.period})`), h("dd", {}, fmtNumber(last.posts))),
    h("div", {}, h("dt", {}, "Engagement"), h("dd", {}, fmtNumber(last.engagement))),
    h("div", {}, h("dt", {}, "Mean sentiment"), h("dd", {}, fmtNumber(last.sentiment))),
    h("div", {}, h("dt", {}, "Negative share"), h("dd", {}, last.negative_share === null ? "–" : pct(last.negative_share))));
}

const MONITOR_COLUMNS = [["period", "Period"], ["posts", "Posts"], ["images", "Images"], ["engagement", "Engagement"],
  ["sentiment", "Mean sentiment"], ["positive", "Positive"], ["neutral", "Neutral"], ["negative", "Negative"],
  ["negative_share", "Negative share", (x) => (x === null ? "–" : pct(x))]];
const INFLUENCER_COLUMNS = [["author", "Author", (a) => authorLink(a)], ["posts_about", "Posts about it"],
  ["share_about", "Share of their posts", (x) => (x === null ? "–" : pct(x))], ["engagement", "Engagement"],
  ["sentiment", "Their sentiment"], ["negative", "Negative posts"]];

async function board(main, target, span, charts, session) {
  const [monitor, people, places, negative, alerts] = await Promise.all([
    api(`/v1/insights/monitor${query({ ...span, ...target })}`),
    api(`/v1/insights/influencers${query({ ...span, ...target, limit: 10 })}`),
    api(`/v1/insights/places${query(span)}`),
    api(`/v1/insights/sentiment/posts${query({ [target.kind]: target.value, mood: "negative", limit: 5, posted_since: span.since, posted_until: span.until })}`),
    api("/v1/insights/alerts?limit=200"),
  ]);
  const mine = alerts.alerts.filter((a) => a.kind === target.kind && a.value === target.value.toLowerCase().replace(/^#/, ""));
  main.append(
    section("insight-feel", "How people feel", latest(monitor.rows), feelChart(monitor.rows, charts),
      h("details", {}, h("summary", {}, "Data table"), dataTable("monitor-table", MONITOR_COLUMNS, monitor.rows, "Posts per period")),
      h("a", { href: `/v1/insights/monitor${query({ ...span, ...target, format: "csv" })}`, download: "feedlens-monitor.csv", class: "csv-link" }, "Download CSV")),
    section("insight-who", "Who drives it", people.rows.length
      ? dataTable("influencers-table", INFLUENCER_COLUMNS, people.rows, "Authors by engagement")
      : status("No author posted about it in this range.")),
    section("insight-where", "Where", places.kept
      ? dataTable("places-table", [["place", "Place"], ["images", "Images"], ["posts", "Posts"], ["sentiment", "Mean sentiment"]], places.places.slice(0, 5), "Top places")
      : status(places.note), h("p", {}, h("a", { href: "#/places" }, "Open the map"))),
    section("insight-negative", "Most negative posts", negative.items.length
      ? h("ul", { class: "insight-posts" }, negative.items.map(postItem))
      : status("No negative post about it in this range.")),
    section("insight-alerts", "Alerts", mine.length
      ? h("ul", { class: "insight-alert-list" }, mine.slice(0, 5).map((a) => h("li", {}, `${a.period}: ${pct(a.negative_share)} negative (${a.posts} posts; rule “${a.rule}”)`)))
      : status("No alert for it."), h("p", {}, h("a", { href: "#/alerts" }, session.scope === "read" ? "All alerts" : "All alerts and rules"))),
    section("insight-next", "What to show next", recommendPanel(people.rows[0]?.author)));
}

export async function renderInsights(main, { params, navigate, session }) {
  ensureStyles();
  const charts = [];
  const [brands, categories] = await Promise.all([
    api("/v1/brands").catch(() => ({ brands: [] })),
    api("/v1/categories").catch(() => ({ categories: [] })),
  ]);
  const kind = params.get("kind") || "brand";
  const names = kind === "brand" ? brands.brands.map((b) => b.name) : kind === "category" ? categories.categories.map((c) => c.name) : [];
  const value = params.get("value") || (kind === "brand" ? names[0] : "");
  main.append(h("h1", {}, "Audience insights"), controls(params, names, navigate));
  if (!window.Chart) main.append(status("Chart.js is not installed (run `make setup`); the data is shown as tables.", "error"));
  const span = windowParams(params);
  if (!value) {
    main.append(status(`Choose a ${KINDS[kind].toLowerCase()} to watch.`));
    return () => {};
  }
  main.append(h("p", { class: "insight-target", id: "insight-target" }, `Watching ${KINDS[kind].toLowerCase()} `, h("strong", {}, value)));
  const box = h("div", { class: "insight-board", id: "insights-board" }, status("Loading…"));
  main.append(box);
  try {
    const ready = h("div", {});
    await board(ready, { kind, value }, span, charts, session);
    box.replaceChildren(...ready.childNodes);
  } catch (error) {
    box.replaceChildren(status(`Could not load the insights: ${error.message}`, "error"));
  }
  return () => charts.forEach((c) => c.destroy());
}
