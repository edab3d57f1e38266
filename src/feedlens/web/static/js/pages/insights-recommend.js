// "More like what this follower engaged with": a panel (on the insights and author pages) and a page of
// its own, #/recommend?follower=NAME or ?author=NAME (docs/insights.md "Recommendations").
import { api, query } from "../api.js";
import { fmtScore, h, status } from "../dom.js";
import { ensureStyles, field, thumb } from "./insights-common.js";

async function show(list, who) {
  list.replaceChildren(status("Loading…"));
  try {
    const found = await api(`/v1/insights/recommendations${query({ ...who, k: 10 })}`);
    if (!found.items.length) {
      list.replaceChildren(status("Nothing new to show: every stored image was seen, or is a copy of one."));
      return;
    }
    list.replaceChildren(
      h("p", { class: "help" }, `From ${found.engaged} engaged image${found.engaged === 1 ? "" : "s"}; ranked by visual and category likeness, one of each near-duplicate picture.`),
      h("ol", { class: "grid grid-small insight-recs", id: "recommendations" }, found.items.map((item) => h("li", { class: "card insight-rec", dataset: { id: item.id } },
        thumb(item.id, `Recommended image ${item.id.slice(0, 8)}`),
        h("span", { class: "score" }, `relevance ${fmtScore(item.relevance)}`),
        h("span", { class: "help" }, `looks ${fmtScore(item.visual)} · categories ${fmtScore(item.categories)}`),
        h("a", { href: `#/image/${encodeURIComponent(item.because)}`, class: "help" }, "because of this one")))));
  } catch (error) {
    list.replaceChildren(status(error.code === "no_history" ? error.message : `Could not recommend: ${error.message}`, error.code === "no_history" ? "info" : "error"));
  }
}

/** A form (follower or author) and the list it fills; `author` pre-fills the author field. */
export function recommendPanel(author, follower) {
  const list = h("div", { class: "insight-recs-box" });
  const form = h("form", { class: "filters", id: "recommend-form", "aria-label": "Recommend images" },
    field("r-follower", "Follower", h("input", { id: "r-follower", name: "follower", value: follower || "", placeholder: "a follower's handle" })),
    field("r-author", "or author", h("input", { id: "r-author", name: "author", value: (!follower && author) || "", placeholder: "an author's handle" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Recommend")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const who = data.follower ? { follower: data.follower.trim() } : data.author ? { author: data.author.trim() } : null;
    if (!who) list.replaceChildren(status("Give a follower or an author.", "error"));
    else show(list, who);
  });
  if (follower || author) show(list, follower ? { follower } : { author });
  return h("div", { class: "insight-recommend" }, form, list);
}

export async function renderRecommend(main, { params }) {
  ensureStyles();
  const follower = params.get("follower");
  const author = params.get("author");
  main.append(h("h1", {}, "What to show next"),
    h("p", {}, "Unseen images most like what a follower engaged with (their likes, comments and shares, sent to POST /v1/insights/engagements), or like an author's own posts."),
    h("section", { class: "card insight-section" }, recommendPanel(author, follower)));
}
