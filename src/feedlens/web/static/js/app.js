// The single-page app: hash routes (#/gallery, #/image/<id>, ...), the layout and the session.
import { api } from "./api.js";
import { clear, h } from "./dom.js";
import { renderGallery } from "./pages/gallery.js";
import { renderImage } from "./pages/image.js";
import { renderInsights } from "./pages/insights.js";
import { renderAlerts } from "./pages/insights-alerts.js";
import { renderAuthor } from "./pages/insights-author.js";
import { renderPlaces } from "./pages/insights-map.js";
import { renderRecommend } from "./pages/insights-recommend.js";
import { renderLogin } from "./pages/login.js";
import { renderLabelling } from "./pages/labelling.js";
import { renderModels } from "./pages/models.js";
import { renderPeople } from "./pages/people.js";
import { renderReview } from "./pages/review.js";
import { renderSearch } from "./pages/search.js";
import { renderTrends } from "./pages/trends.js";

// Pages in the main navigation. Others add theirs here: {path, label, render(main, ctx) -> cleanup?}.
const PAGES = [
  { path: "gallery", label: "Gallery", render: renderGallery },
  { path: "search", label: "Search", render: renderSearch },
  { path: "trends", label: "Trends", render: renderTrends },
  { path: "insights", label: "Insights", render: renderInsights },
  { path: "places", label: "Places", render: renderPlaces },
  { path: "alerts", label: "Alerts", render: renderAlerts },
  { path: "recommend", label: "What to show next", render: renderRecommend },
  { path: "review", label: "Review queue", render: renderReview },
  { path: "labelling", label: "Labelling", render: renderLabelling },
  { path: "models", label: "Models", render: renderModels },
  { path: "people", label: "People", render: renderPeople },
];
// Pages reached from others, not from the navigation.
const HIDDEN = [
  { path: "image", label: "Image", render: renderImage },
  { path: "author", label: "Author", render: renderAuthor },
];

const app = { session: null, cleanup: null };

/** "#/gallery?category=food" -> {path: "gallery", id: null, params: URLSearchParams} */
export function parseHash(hash = location.hash) {
  const [route, q = ""] = hash.replace(/^#\/?/, "").split("?");
  const [path, ...rest] = route.split("/");
  return { path: path || "gallery", id: rest.length ? decodeURIComponent(rest.join("/")) : null, params: new URLSearchParams(q) };
}

export function navigate(path, params) {
  const q = params ? new URLSearchParams(params).toString() : "";
  location.hash = `#/${path}${q ? `?${q}` : ""}`;
}

/** Go to a page, rendering it even when the hash is already there (no hashchange then). */
function show(path) {
  if (location.hash === `#/${path}`) route();
  else navigate(path);
}

function buildNav() {
  const nav = clear(document.getElementById("nav"));
  for (const page of PAGES) {
    nav.append(h("li", {}, h("a", { href: `#/${page.path}`, dataset: { path: page.path } }, page.label)));
  }
}

/** The phone's folded navigation: the Menu button opens and closes it; choosing a page closes it. */
function setMenu(open) {
  document.getElementById("menu-toggle").setAttribute("aria-expanded", String(open));
  document.getElementById("top").classList.toggle("menu-open", open);
}

function markNav(path) {
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.path === path) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function loadSession() {
  try {
    app.session = await api("/v1/session");
  } catch {
    app.session = null;
  }
  const top = document.getElementById("top");
  top.hidden = !app.session;
  if (app.session) {
    document.getElementById("who").textContent = `Workspace ${app.session.workspace} (${app.session.scope})`;
  }
}

async function route() {
  if (app.cleanup) app.cleanup();
  app.cleanup = null;
  // Each route renders into its own container: a slower page still loading when the next one starts
  // writes into a detached node, never over the new page.
  const main = h("div", { class: "view" });
  document.getElementById("main").replaceChildren(main);
  const { path, id, params } = parseHash();
  if (!app.session) {
    document.title = "Log in · feedlens";
    // after logging in, a bookmarked address opens where it points; the login page leads to the gallery
    renderLogin(main, { onLogin: async () => { await loadSession(); if (path === "login") show("gallery"); else route(); } });
    return;
  }
  if (path === "login") {
    show("gallery"); // already logged in
    return;
  }
  const page = [...PAGES, ...HIDDEN].find((p) => p.path === path);
  if (!page) {
    main.append(h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/gallery" }, "Go to the gallery")));
    return;
  }
  markNav(path);
  setMenu(false);
  document.title = `${page.label} · feedlens`;
  const cleanup = (await page.render(main, { id, params, session: app.session, navigate })) || null;
  if (!main.isConnected) {
    if (cleanup) cleanup();
    return;
  }
  app.cleanup = cleanup;
  // Move focus to the new page's heading, so keyboard and screen-reader users start at the content.
  const heading = main.querySelector("h1");
  if (heading && document.activeElement?.closest("main") === null) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

async function logout() {
  try {
    await api("/v1/session", { method: "DELETE" });
  } finally {
    app.session = null;
    document.getElementById("top").hidden = true;
    show("login");
  }
}

async function start() {
  buildNav();
  document.getElementById("logout").addEventListener("click", logout);
  const toggle = document.getElementById("menu-toggle");
  toggle.addEventListener("click", () => setMenu(toggle.getAttribute("aria-expanded") !== "true"));
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault(); // the hash is the router's
    document.getElementById("main").focus();
  });
  window.addEventListener("feedlens:unauthorized", () => {
    if (app.session) { app.session = null; document.getElementById("top").hidden = true; route(); }
  });
  await loadSession();
  window.addEventListener("hashchange", route);
  route();
}

start();
