// The labelling queue (active learning, docs/feedback.md): the unlabelled images the model is least sure
// of, one at a time, labelled with a button (or number key) per category of the workspace's taxonomy; the
// retraining loop's learning curve and a "retrain now" button underneath.
import { api, query } from "../api.js";
import { thumbnail } from "../thumbs.js";
import { altText, fmtScore, h, pct, status } from "../dom.js";
import { pollRun, problemText, runText, shortcuts } from "../keys.js";

const BATCH = 20;
const COLOURS = { candidate: "#0072B2", production: "#D55E00" };
const KEYS = [
  ["1 … 9", "label the image with that category"],
  ["s", "skip it (no label)"],
  ["b", "back to the previous image"],
];

function keyHelp() {
  return h("details", { class: "card key-help" }, h("summary", {}, "Keyboard shortcuts"),
    h("dl", { class: "pairs" }, KEYS.map(([k, what]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, what)])));
}

function predictions(pick) {
  if (!pick.predicted) {
    return h("p", { class: "help", id: "label-predicted" }, "No prediction yet: fewer than two categories have labels, so the images come in a random order spread over the library.");
  }
  return h("div", { id: "label-predicted" },
    h("h3", {}, "The model's top guesses"),
    h("ul", { class: "scores" }, pick.predicted.map((p) => h("li", {},
      h("span", {}, p.category),
      h("meter", { min: 0, max: 1, value: p.probability, "aria-label": `${p.category} probability` }),
      h("span", { class: "num" }, pct(p.probability))))));
}

function curveTable(curve) {
  const fmt = (x) => (x === null || x === undefined ? "–" : fmtScore(x));
  return h("table", { class: "data" },
    h("thead", {}, h("tr", {}, ["labels", "candidate", "production", "promoted"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, curve.map((p) => h("tr", {}, h("td", { class: "num" }, p.labels), h("td", { class: "num" }, fmt(p.candidate)),
      h("td", { class: "num" }, fmt(p.production)), h("td", {}, p.promoted ? "yes" : "no")))));
}

/** GET /v1/review/learning as a line chart (holdout metric against labels) with its table. */
async function renderCurve(box, charts) {
  charts.forEach((c) => c.destroy());
  charts.length = 0;
  let learning;
  try {
    learning = await api("/v1/review/learning");
  } catch (error) {
    box.replaceChildren(h("h2", { id: "h-curve" }, "Learning curve"), status(`Could not load it: ${error.message}`, "error"));
    return;
  }
  const next = learning.next_cycle_at === null ? "Automatic cycles are off." : `The next cycle starts by itself at ${learning.next_cycle_at} labelled images.`;
  box.replaceChildren(h("h2", { id: "h-curve" }, "Learning curve"),
    h("p", {}, `${learning.labels} images labelled with one category; ${learning.cycles.length} retraining cycle${learning.cycles.length === 1 ? "" : "s"}. ${next}`));
  if (!learning.curve.length) {
    box.append(status("No cycle yet: the curve starts with the first one."));
    return;
  }
  const metric = learning.cycles.at(-1)?.metric || "score";
  if (learning.curve.every((p) => p.candidate === null && p.production === null)) {
    box.append(status("No cycle could score its models yet: the held-out images (a fixed share of the labelled ones) are too few. Label more."));
  }
  const canvas = h("canvas", { role: "img", "aria-label": `Learning curve: held-out ${metric} against labels; the data table follows` });
  box.append(h("div", { class: "canvas-box" }, canvas), h("details", {}, h("summary", {}, "Data table"), curveTable(learning.curve)));
  if (!window.Chart) return;
  charts.push(new window.Chart(canvas, {
    type: "line",
    data: {
      datasets: ["candidate", "production"].map((arm) => ({
        label: `${arm} (held-out ${metric})`, data: learning.curve.map((p) => ({ x: p.labels, y: p[arm] })),
        borderColor: COLOURS[arm], backgroundColor: COLOURS[arm], spanGaps: true,
        pointStyle: learning.curve.map((p) => (arm === "candidate" && p.promoted ? "star" : "circle")), pointRadius: 5,
      })),
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { position: "bottom" } },
      scales: { x: { type: "linear", ticks: { precision: 0 }, title: { display: true, text: "labelled images" } }, y: { min: 0, max: 1, title: { display: true, text: metric } } },
    },
  }));
}

export async function renderLabelling(main) {
  const view = { picks: [], index: 0, progress: null, categories: [], done: 0, busy: false };
  const charts = [];
  const abort = new AbortController();
  const live = h("div", { id: "label-status", role: "status", class: "status" });
  const progress = h("p", { id: "label-progress", class: "progress" });
  const item = h("section", { class: "card label-item", id: "label-item", "aria-labelledby": "h-label-item", tabindex: "-1" });
  const curve = h("section", { class: "card", id: "learning-curve", "aria-labelledby": "h-curve" }, status("Loading…"));
  const retrainStatus = h("p", { id: "retrain-status", role: "status", class: "status" });
  const retrain = h("button", { type: "button", class: "button-secondary", id: "retrain", onclick: retrainNow }, "Retrain now");
  main.append(h("h1", {}, "Labelling queue"),
    h("div", { class: "toolbar" }, progress, keyHelp()), live,
    item, h("div", { class: "learning" }, curve, h("section", { class: "card", "aria-labelledby": "h-retrain" },
      h("h2", { id: "h-retrain" }, "Retraining"),
      h("p", { class: "help" }, "Train a candidate on the current labels and promote it only if it beats production on held-out images."),
      retrain, retrainStatus)));

  const say = (message, kind = "info") => {
    live.className = `status status-${kind}`;
    live.setAttribute("role", kind === "error" ? "alert" : "status");
    live.textContent = message;
  };

  function drawProgress() {
    const p = view.progress;
    if (!p) return;
    const position = view.picks.length ? `image ${Math.min(view.index + 1, view.picks.length)} of ${view.picks.length} in this batch` : "no batch";
    progress.textContent = `${p.labelled} labelled · ${p.unlabelled} unlabelled · ${position}`;
  }

  function drawItem() {
    drawProgress();
    const pick = view.picks[view.index];
    if (!pick) {
      item.replaceChildren(h("h2", { id: "h-label-item" }, "Nothing to label"), status("Every image of the workspace has a label."));
      return;
    }
    const buttons = view.categories.map((name, i) => h("button", {
      type: "button", class: "category-button", "aria-keyshortcuts": i < 9 ? String(i + 1) : null,
      onclick: () => label(name),
    }, i < 9 ? h("kbd", {}, String(i + 1)) : null, " ", name));
    const skip = h("button", { type: "button", class: "button-secondary", "aria-keyshortcuts": "s", onclick: skipIt }, "Skip ", h("kbd", {}, "s"));
    const img = thumbnail(pick.image_id, { alt: `Image ${pick.image_id}`, id: "label-image" });
    // better alt text (its top labels) once the image's results arrive
    api(`/v1/images/${encodeURIComponent(pick.image_id)}`, { signal: abort.signal }).then((image) => { img.alt = altText(image); }).catch(() => {});
    item.replaceChildren(
      h("h2", { id: "h-label-item" }, "Which category does this image show?"),
      h("div", { class: "label-body" },
        h("div", {}, h("div", { class: "overlay-frame" }, img),
          h("p", { class: "help" }, h("a", { href: `#/image/${encodeURIComponent(pick.image_id)}` }, "Open the image page"))),
        h("div", {},
          h("dl", { class: "pairs" }, h("dt", {}, "Uncertainty"), h("dd", { id: "label-uncertainty" }, fmtScore(pick.uncertainty)),
            h("dt", {}, "Cluster"), h("dd", {}, pick.cluster ?? "–")),
          predictions(pick),
          h("div", { class: "category-buttons", role: "group", "aria-label": "Categories" }, buttons),
          h("div", { class: "actions" }, skip))));
  }

  async function load(message) {
    try {
      const [queue, categories] = await Promise.all([
        api(`/v1/review/labeling${query({ n: BATCH })}`, { signal: abort.signal }),
        view.categories.length ? null : api("/v1/taxonomy", { signal: abort.signal }),
      ]);
      if (categories) view.categories = categories.taxonomy.categories.map((c) => c.name);
      view.picks = queue.picks;
      view.progress = queue.progress;
      view.index = 0;
      const cold = queue.cold_start ? " (random order: fewer than two categories labelled yet)" : "";
      say(`${message ? `${message} ` : ""}A batch of ${queue.picks.length} image${queue.picks.length === 1 ? "" : "s"}, most uncertain first${cold}.`);
      drawItem();
    } catch (error) {
      if (error.name !== "AbortError") say(`Could not load the queue: ${error.message}`, "error");
    }
  }

  async function advance(message) {
    view.index += 1;
    if (view.index >= view.picks.length) await load(`${message} Batch done: the next one is picked with the new labels.`);
    else { say(message); drawItem(); }
    item.focus({ preventScroll: true });
  }

  async function label(name) {
    const pick = view.picks[view.index];
    if (!pick || view.busy) return;
    view.busy = true;
    try {
      await api(`/v1/images/${encodeURIComponent(pick.image_id)}/labels`, { method: "POST", json: { categories: [name] } });
      view.progress.labelled += 1;
      view.progress.unlabelled = Math.max(0, view.progress.unlabelled - 1);
      await advance(`Labelled ${pick.image_id} "${name}".`);
    } catch (error) {
      say(problemText(error, "Labelling"), "error");
    } finally {
      view.busy = false;
    }
  }

  async function skipIt() {
    if (!view.picks[view.index] || view.busy) return;
    await advance(`Skipped ${view.picks[view.index].image_id}.`);
  }

  function back() {
    if (view.index === 0) return;
    view.index -= 1;
    drawItem();
  }

  async function retrainNow() {
    retrain.disabled = true;
    try {
      const run = await api("/v1/review/retrain", { method: "POST", json: {} });
      const last = await pollRun(run.id, (r) => { retrainStatus.textContent = runText(r, `Retraining (run ${r.id})`); }, abort.signal);
      if (last.status === "succeeded") {
        const r = last.result;
        retrainStatus.textContent = `Candidate version ${r.candidate_version}: ${r.promoted ? "promoted" : "not promoted"} (${r.reason}).`;
        renderCurve(curve, charts);
      }
    } catch (error) {
      if (error.name !== "AbortError") retrainStatus.textContent = problemText(error, "Retraining");
    } finally {
      retrain.disabled = false;
    }
  }

  const keys = { s: skipIt, b: back };
  for (let i = 1; i <= 9; i += 1) keys[String(i)] = () => view.categories[i - 1] && label(view.categories[i - 1]);
  const stop = shortcuts(keys);
  await Promise.all([load(), renderCurve(curve, charts)]);
  return () => { stop(); abort.abort(); charts.forEach((c) => c.destroy()); };
}
