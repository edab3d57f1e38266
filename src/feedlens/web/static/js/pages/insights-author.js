// An author's page, #/author/<name>: their totals and sentiment, what their posts carry, a timeline,
// their latest posts, and what to show their audience next.
import { api, query } from "../api.js";
import { h, pct, status } from "../dom.js";
import {
  dataTable, ensureStyles, fmtNumber, postItem, rangeFields, routeForm, sentimentBadge, windowParams,
} from "./insights-common.js";
import { recommendPanel } from "./insights-recommend.js";

const GROUP_COLUMNS = [["name", "Name"], ["posts", "Posts"], ["engagement", "Engagement"], ["sentiment", "Mean sentiment"],
  ["negative_share", "Negative share", (x) => (x === null ? "–" : pct(x))]];

function summary(s) {
  const figures = [["Posts", s.posts], ["Images", s.images], ["Likes", s.likes], ["Comments", s.comments], ["Shares", s.shares],
    ["Engagement", s.engagement], ["Mean sentiment", s.sentiment]];
  return h("dl", { class: "insight-figures", id: "author-summary" },
    figures.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, fmtNumber(value)))),
    h("div", {}, h("dt", {}, "Posting"), h("dd", {}, `${s.first_post.slice(0, 10)} to ${s.last_post.slice(0, 10)}`)));
}

function groups(id, title, rows) {
  return h("section", { class: "card insight-section", id, "aria-labelledby": `h-${id}` }, h("h2", { id: `h-${id}` }, title),
    rows.length ? dataTable(`${id}-table`, GROUP_COLUMNS, rows, title) : status("None."));
}

export async function renderAuthor(main, { id, params, navigate }) {
  ensureStyles();
  if (!id) {
    main.append(h("h1", {}, "Author"), status("No author named.", "error"));
    return;
  }
  const form = routeForm(h("form", { class: "filters card", id: "author-form", "aria-label": "Time range" },
    ...rangeFields("a", params), h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply"))),
  `author/${encodeURIComponent(id)}`, navigate);
  main.append(h("h1", {}, `@${id}`), form);
  let page;
  try {
    page = await api(`/v1/insights/authors/${encodeURIComponent(id)}${query(windowParams(params))}`);
  } catch (error) {
    main.append(status(error.status === 404 ? `No post by @${id} in this workspace.` : `Could not load the author: ${error.message}`, "error"));
    return;
  }
  const s = page.summary;
  const mood = s.sentiment === null ? "unknown" : s.sentiment >= 0.05 ? "positive" : s.sentiment <= -0.05 ? "negative" : "neutral";
  main.append(
    h("section", { class: "card insight-section", id: "author-overview", "aria-labelledby": "h-author-overview" },
      h("h2", { id: "h-author-overview" }, "Overview ", sentimentBadge(mood, s.sentiment)), summary(s)),
    groups("author-brands", "Brands in their posts", page.brands),
    groups("author-categories", "Categories", page.categories),
    groups("author-hashtags", "Hashtags", page.hashtags),
    h("section", { class: "card insight-section", id: "author-timeline", "aria-labelledby": "h-author-timeline" }, h("h2", { id: "h-author-timeline" }, "Timeline"),
      dataTable("timeline-table", [["period", "Period"], ["posts", "Posts"], ["engagement", "Engagement"], ["sentiment", "Mean sentiment"]], page.timeline, "Posts per period")),
    h("section", { class: "card insight-section", id: "author-posts", "aria-labelledby": "h-author-posts" }, h("h2", { id: "h-author-posts" }, "Latest posts"),
      h("ul", { class: "insight-posts" }, page.posts.map(postItem))),
    h("section", { class: "card insight-section", id: "author-next", "aria-labelledby": "h-author-next" }, h("h2", { id: "h-author-next" }, "What to show their audience next"),
      recommendPanel(page.author)));
}
