// The moderation review queue (docs/feedback.md "Moderation review"): one image at a time, blurred until the
// reviewer reveals it, approved / rejected / escalated from the keyboard with a reason; the calibration of
// the unsafe flag by those decisions underneath.
import { api, query } from "../api.js";
import { altText, fmtDate, fmtScore, h, pct, status } from "../dom.js";
import { problemText, shortcuts } from "../keys.js";
import { thumbnail } from "../thumbs.js";

const DECISIONS = [
  { decision: "approve", key: "a", label: "Approve", help: "safe: keep it" },
  { decision: "reject", key: "r", label: "Reject", help: "unsafe: take it down" },
  { decision: "escalate", key: "e", label: "Escalate", help: "pass it on to a senior moderator" },
];
const KEYS = [
  ["a / r / e", "approve / reject / escalate the image shown"],
  ["v", "reveal or blur the image"],
  ["j / k", "next / previous image in the queue"],
  ["c", "type a reason (Esc leaves the field)"],
];

function keyHelp() {
  return h("details", { class: "card key-help" }, h("summary", {}, "Keyboard shortcuts"),
    h("dl", { class: "pairs" }, KEYS.map(([k, what]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, what)])));
}

/** The image, blurred (thumbnail and flagged regions) until revealed; regions from the safety result. */
function preview(image, revealed) {
  const frame = h("div", { class: `overlay-frame review-frame${revealed ? "" : " is-blurred"}`, id: "review-frame" },
    thumbnail(image.id, { alt: altText(image), id: "review-image" }));
  for (const region of image.results?.safety?.regions || []) {
    const label = `${region.category}: ${region.type} ${fmtScore(region.score)}`;
    const box = h("div", { class: "region region-unsafe review-region", title: label }, h("span", { class: "region-label" }, label));
    Object.assign(box.style, {
      left: pct(region.box.x0), top: pct(region.box.y0),
      width: pct(region.box.x1 - region.box.x0), height: pct(region.box.y1 - region.box.y0),
    });
    frame.append(box);
  }
  return frame;
}

function facts(item, image) {
  const scores = image.results?.safety?.scores || {};
  const row = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
  return h("dl", { class: "pairs", id: "review-facts" },
    row("Verdict", h("span", { class: `badge badge-${item.verdict}` }, item.verdict ?? "–")),
    row("Risk", fmtScore(item.risk)),
    row("Uncertainty", fmtScore(item.uncertainty)),
    row("Priority", fmtScore(item.priority)),
    Object.entries(scores).map(([k, v]) => row(`Score ${k.replace("_", " ")}`, fmtScore(v))),
    row("State", item.state),
    row("Queued", fmtDate(item.queued_at)),
    row("Source", image.source || "–"),
    row("Image", h("a", { href: `#/image/${encodeURIComponent(item.image_id)}` }, item.image_id)));
}

function calibrationTable(cal) {
  const current = cal.current?.threshold;
  const suggested = cal.suggested?.threshold;
  const fmt = (x) => (x === null || x === undefined ? "–" : pct(x));
  return h("table", { class: "data", id: "calibration-table" },
    h("caption", {}, `Unsafe flag "risk ≥ threshold" judged by ${cal.decisions} decision${cal.decisions === 1 ? "" : "s"} (${cal.unsafe} rejected, ${cal.safe} approved)`),
    h("thead", {}, h("tr", {}, ["risk threshold", "images flagged", "right when flagged (precision)", "rejected images caught (recall)", ""]
      .map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, cal.grid.map((p) => {
      const notes = [p.threshold === current ? "current" : null, p.threshold === suggested ? "suggested" : null].filter(Boolean);
      return h("tr", { class: notes.length ? "row-marked" : null },
        h("td", { class: "num" }, p.threshold.toFixed(2)), h("td", { class: "num" }, p.flagged),
        h("td", { class: "num" }, fmt(p.precision)), h("td", { class: "num" }, fmt(p.recall)), h("td", {}, notes.join(", ")));
    })));
}

/** Precision and recall against the threshold, as a Chart.js line chart (the table has the numbers). */
function calibrationChart(cal, charts) {
  const canvas = h("canvas", { role: "img", "aria-label": "Precision and recall per threshold: chart; the table follows" });
  if (window.Chart) {
    const line = (label, key, colour) => ({
      label, data: cal.grid.map((p) => ({ x: p.threshold, y: p[key] })), borderColor: colour, backgroundColor: colour, spanGaps: true,
    });
    charts.push(new window.Chart(canvas, {
      type: "line",
      data: { datasets: [line("right when flagged (precision)", "precision", "#0072B2"), line("rejected images caught (recall)", "recall", "#D55E00")] },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { position: "bottom" } },
        scales: { x: { type: "linear", min: 0, max: 1, title: { display: true, text: "risk threshold" } }, y: { min: 0, max: 1 } },
      },
    }));
  }
  return h("div", { class: "canvas-box" }, canvas);
}

async function renderCalibration(box, charts) {
  charts.forEach((c) => c.destroy());
  charts.length = 0;
  try {
    const cal = await api("/v1/review/moderation/calibration");
    const share = (x) => (x === null || x === undefined ? null : pct(x));
    const now = cal.current;
    const current = share(now.precision) === null
      ? `Today an image is flagged when its risk is ${now.threshold.toFixed(2)} or more. Too few decisions yet to say how well that works.`
      : `Today an image is flagged when its risk is ${now.threshold.toFixed(2)} or more. Of the images it flagged, people rejected ${share(now.precision)} (precision); of the images people rejected, it had flagged ${share(now.recall) ?? "–"} (recall).`;
    const suggested = cal.suggested
      ? `To be right ${pct(cal.target_precision)} of the time when it flags, the threshold would be ${cal.suggested.threshold.toFixed(2)}: it would then catch ${pct(cal.suggested.recall ?? 0)} of the images people rejected.`
      : `No threshold is right ${pct(cal.target_precision)} of the time yet: more decisions are needed to suggest one.`;
    const verdicts = cal.current_verdicts;
    box.replaceChildren(h("h2", { id: "h-calibration" }, "Calibration: how well the unsafe flag works"), h("div", { class: "calibration-body" },
      h("div", {}, h("p", {}, current), h("p", { id: "calibration-suggested" }, suggested),
        h("p", {}, share(verdicts.precision) === null && share(verdicts.recall) === null
          ? `The verdicts the images were given flagged ${verdicts.flagged}; too few decisions yet to judge them.`
          : `The verdicts the images were given flagged ${verdicts.flagged}: people rejected ${share(verdicts.precision) ?? "–"} of those, and ${share(verdicts.recall) ?? "–"} of the images people rejected had been flagged.`),
        h("p", { class: "help" }, "Each approved image counts as safe and each rejected one as unsafe (the latest decision per image); escalated images are left out. To use another threshold, set FEEDLENS_SAFETY_SUGGESTIVE_THRESHOLD and restart the server."),
        cal.decisions ? calibrationChart(cal, charts) : null),
      h("details", { open: true }, h("summary", {}, "Each threshold: how many images it flags and how often it is right"), calibrationTable(cal))));
  } catch (error) {
    box.replaceChildren(h("h2", { id: "h-calibration" }, "Calibration"), status(`Could not load the calibration: ${error.message}`, "error"));
  }
}

export async function renderReview(main, { params, navigate }) {
  const queueState = params.get("state") === "escalated" ? "escalated" : "pending";
  const view = { items: [], index: 0, revealed: false, image: null, busy: false };
  const charts = [];
  // an escalated image is approved or rejected: escalating it again is a 409
  const choices = DECISIONS.filter((d) => queueState === "pending" || d.decision !== "escalate");
  const live = h("div", { id: "review-status", role: "status", class: "status" });
  const list = h("ol", { class: "queue-list", id: "review-list", "aria-label": "Images waiting" });
  const detail = h("section", { class: "card review-item", id: "review-item", "aria-labelledby": "h-item" });
  const calibration = h("section", { class: "card", id: "review-calibration", "aria-labelledby": "h-calibration" }, status("Loading…"));
  const stateSelect = h("select", { id: "r-state" },
    h("option", { value: "pending" }, "pending"), h("option", { value: "escalated", selected: queueState === "escalated" }, "escalated"));
  stateSelect.addEventListener("change", () => navigate("review", stateSelect.value === "pending" ? null : { state: stateSelect.value }));
  main.append(h("h1", {}, "Moderation review queue"),
    h("div", { class: "toolbar" }, h("div", { class: "field" }, h("label", { for: "r-state" }, "Queue"), stateSelect), keyHelp()),
    live, h("div", { class: "review-page" }, h("nav", { class: "card", "aria-label": "Waiting images" }, h("h2", {}, "Waiting"), list), detail), calibration);

  const say = (message, kind = "info") => {
    live.className = `status status-${kind}`;
    live.setAttribute("role", kind === "error" ? "alert" : "status");
    live.textContent = message;
  };

  const revealHelp = () => (view.revealed
    ? "Shown as is."
    : "Blurred: the picture and its flagged regions (outlined) stay blurred until you reveal them.");

  function drawList() {
    // each entry has a small thumbnail, blurred like the image shown until it is revealed
    list.replaceChildren(...view.items.map((item, i) => h("li", {},
      h("button", {
        type: "button", class: "queue-entry", "aria-current": i === view.index ? "true" : null,
        onclick: () => select(i),
      }, thumbnail(item.image_id, { alt: "blurred preview", class: "queue-thumb", width: 48, height: 48, loading: "lazy" }),
      h("span", {}, `${item.verdict ?? "?"} · risk ${fmtScore(item.risk)} · uncertainty ${fmtScore(item.uncertainty)}`)))));
  }

  function drawDetail() {
    const item = view.items[view.index];
    if (!item) {
      detail.replaceChildren(h("h2", { id: "h-item" }, "Nothing to review"), status(`No ${queueState} images.`));
      return;
    }
    const image = view.image;
    const reveal = h("button", { type: "button", class: "button-secondary", id: "reveal", "aria-keyshortcuts": "v", "aria-pressed": String(view.revealed), onclick: toggleReveal },
      view.revealed ? "Blur again" : "Reveal image", " ", h("kbd", {}, "v"));
    const reason = h("textarea", { id: "reason", rows: 2, maxlength: 2000, placeholder: "e.g. a cup, not skin" });
    reason.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); reason.blur(); detail.focus(); }
    });
    const buttons = choices.map((d) => h("button", {
      type: "button", class: `decide decide-${d.decision}`, "aria-keyshortcuts": d.key, title: d.help,
      onclick: () => decide(d.decision),
    }, d.label, " ", h("kbd", {}, d.key)));
    detail.replaceChildren(
      h("h2", { id: "h-item" }, `Image ${view.index + 1} of ${view.items.length}`),
      h("div", { class: "review-body" },
        h("div", {}, image ? preview(image, view.revealed) : status("Loading the image…"), h("div", { class: "actions" }, reveal),
          h("p", { class: "help", id: "reveal-help" }, revealHelp())),
        h("div", {}, image ? facts(item, image) : null,
          h("div", { class: "field" }, h("label", { for: "reason" }, "Reason (optional, kept with the decision)"), reason),
          h("div", { class: "actions decisions" }, buttons))));
  }

  async function select(i) {
    if (!view.items.length) { drawDetail(); drawList(); return; }
    view.index = Math.max(0, Math.min(i, view.items.length - 1));
    view.revealed = false;
    view.image = null;
    drawList();
    drawDetail();
    const item = view.items[view.index];
    try {
      const image = await api(`/v1/images/${encodeURIComponent(item.image_id)}`);
      if (view.items[view.index] !== item) return; // moved on meanwhile
      view.image = image;
      drawDetail();
    } catch (error) {
      say(`Could not load image ${item.image_id}: ${error.message}`, "error");
    }
  }

  function toggleReveal() {
    if (!view.items[view.index]) return;
    view.revealed = !view.revealed;
    const frame = detail.querySelector("#review-frame");
    if (frame) frame.classList.toggle("is-blurred", !view.revealed);
    const button = detail.querySelector("#reveal");
    button.setAttribute("aria-pressed", String(view.revealed));
    button.firstChild.textContent = view.revealed ? "Blur again" : "Reveal image";
    detail.querySelector("#reveal-help").textContent = revealHelp();
  }

  async function load(message) {
    try {
      const answer = await api(`/v1/review/moderation${query({ state: queueState, limit: 50 })}`);
      view.items = answer.items;
      if (message) say(message);
      else say(`${view.items.length} ${queueState} image${view.items.length === 1 ? "" : "s"}${view.items.length === 50 ? " (the 50 most urgent)" : ""}.`);
      await select(0);
    } catch (error) {
      say(`Could not load the queue: ${error.message}`, "error");
    }
  }

  async function decide(decision) {
    const item = view.items[view.index];
    if (!item || view.busy) return;
    view.busy = true;
    const reason = detail.querySelector("#reason")?.value.trim() || "";
    try {
      const done = await api(`/v1/review/moderation/${encodeURIComponent(item.image_id)}`, { method: "POST", json: { decision, reason } });
      view.items.splice(view.index, 1);
      const message = `Image ${item.image_id}: ${done.state}.`;
      if (!view.items.length) await load(`${message} Queue reloaded.`);
      else { say(message); await select(view.index); }
      renderCalibration(calibration, charts);
      detail.focus({ preventScroll: true });
    } catch (error) {
      if (error.code === "not_in_review") { // decided meanwhile, by someone else: drop it
        view.items.splice(view.index, 1);
        say(`${error.message}: skipped.`, "error");
        await select(view.index);
      } else {
        say(problemText(error, "Deciding"), "error");
      }
    } finally {
      view.busy = false;
    }
  }

  detail.setAttribute("tabindex", "-1"); // the decision keys' home after a decision
  const stop = shortcuts({
    a: () => decide("approve"),
    r: () => decide("reject"),
    e: () => queueState === "pending" && decide("escalate"),
    v: toggleReveal,
    j: () => select(view.index + 1),
    k: () => select(view.index - 1),
    c: () => detail.querySelector("#reason")?.focus(),
  });
  await Promise.all([load(), renderCalibration(calibration, charts)]);
  return () => { stop(); charts.forEach((c) => c.destroy()); };
}
