// Trained category models: the registry's versions (aliases, metrics, runtime, int8 compression,
// warnings), a version's evaluation report, promote / rollback (admin keys), the A/B test and training.
import { api } from "../api.js";
import { fmtDate, fmtScore, h, pct, status } from "../dom.js";
import { pollRun, problemText, runText } from "../keys.js";

const mb = (bytes) => (typeof bytes === "number" ? `${(bytes / 1e6).toFixed(1)} MB` : "–");
const fmtPct = (x) => (typeof x === "number" ? pct(x) : "–");

function int8Text(model) {
  const c = model.compression;
  if (!c) return "not tried";
  const kept = c.kept ? "kept" : "not kept";
  return `${kept}: ${fmtScore(c.speedup)}× faster, ${mb(c.fp32_bytes)} → ${mb(c.int8_bytes)}, accuracy ${c.accuracy_change_points >= 0 ? "+" : ""}${fmtScore(c.accuracy_change_points)} points`;
}

function versionRow(model, actions) {
  const m = model.metrics || {};
  const warnings = model.warnings || [];
  return h("tr", { id: `model-${model.version}`, class: model.aliases.includes("production") ? "row-marked" : null },
    h("th", { scope: "row" }, `v${model.version}`),
    h("td", {}, model.aliases.length ? model.aliases.map((a) => h("span", { class: `badge badge-alias-${a}` }, a)) : "–"),
    h("td", {}, model.mode),
    h("td", {}, h("span", { title: model.classes.join(", ") }, `${model.classes.length}`)),
    h("td", { class: "num" }, fmtPct(m.accuracy)),
    h("td", { class: "num" }, fmtScore(m.macro_f1)),
    h("td", { class: "num" }, fmtScore(m.ece)),
    h("td", { class: "num" }, m.n ?? "–"),
    h("td", {}, model.runtime || "–"),
    h("td", { class: "int8" }, int8Text(model)),
    h("td", {}, warnings.length
      ? h("details", {}, h("summary", {}, `${warnings.length} warning${warnings.length === 1 ? "" : "s"}`), h("ul", { class: "warnings" }, warnings.map((w) => h("li", {}, w))))
      : "none"),
    h("td", {}, fmtDate(model.created_at), h("br"), h("span", { class: "help" }, model.created_by || "")),
    h("td", {}, h("div", { class: "row-actions" }, actions)));
}

/** Versions that were production, oldest first, replaying promotions (push) and rollbacks (pop) as the
 * server does: a rollback goes to the one before the last, so it needs two. */
export function productionStack(events) {
  const stack = [];
  for (const e of events) {
    if (e.action === "promote" && e.version !== null && e.version !== undefined) stack.push(e.version);
    else if (e.action === "rollback") stack.pop();
  }
  return stack;
}

/** An alarm when production does worse than guessing on its own test images (0% included). */
function productionAlarm(listing) {
  const model = listing.models.find((m) => m.aliases.includes("production"));
  const accuracy = model?.metrics?.accuracy;
  if (typeof accuracy !== "number" || !model.classes.length) return null;
  const chance = 1 / model.classes.length;
  if (accuracy > chance && accuracy > 0) return null;
  return h("section", { class: "alarm", id: "production-alarm", role: "alert", "aria-labelledby": "h-alarm" },
    h("h2", { id: "h-alarm" }, `Production model v${model.version} gets ${pct(accuracy)} of its test images right`),
    h("p", {}, `That is no better than guessing among its ${model.classes.length} categories (${pct(chance)}): new images are being sorted badly. `,
      "Roll back to the version before it, promote a better version, or label more images and train again."));
}

function abSection(ab, models, onSubmit, admin) {
  const arm = (name, a) => h("tr", {},
    h("th", { scope: "row" }, name), h("td", {}, a ? `v${a.version}` : "–"),
    h("td", { class: "num" }, a?.predictions ?? "–"), h("td", { class: "num" }, a?.served ?? "–"),
    h("td", { class: "num" }, a ? `${fmtPct(a.accuracy)} (${a.labelled})` : "–"),
    h("td", { class: "num" }, a ? `${fmtPct(a.served_accuracy)} (${a.served_labelled})` : "–"));
  const paired = ab.paired
    ? `On the ${ab.paired.images} labelled images both predicted: production ${fmtPct(ab.paired.production_accuracy)}, candidate ${fmtPct(ab.paired.candidate_accuracy)}.`
    : "No paired comparison yet: it needs labelled images that both models predicted.";
  const candidates = models.filter((m) => !m.aliases.includes("production"));
  const form = h("form", { class: "filters", id: "ab-form", "aria-label": "A/B test" },
    h("div", { class: "field" }, h("label", { for: "ab-mode" }, "Mode"),
      h("select", { id: "ab-mode", name: "mode" }, ["off", "split", "shadow"].map((m) => h("option", { value: m, selected: m === ab.mode }, m)))),
    h("div", { class: "field" }, h("label", { for: "ab-candidate" }, "Candidate version"),
      h("select", { id: "ab-candidate", name: "candidate" }, h("option", { value: "" }, "–"),
        candidates.map((m) => h("option", { value: m.version, selected: ab.candidate?.version === m.version }, `v${m.version}`)))),
    h("div", { class: "field" }, h("label", { for: "ab-share" }, "Candidate's share (split)"),
      h("input", { id: "ab-share", name: "share", type: "number", min: 0, max: 1, step: 0.05, value: ab.share ?? 0 })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply A/B settings")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { mode: data.get("mode"), share: Number(data.get("share") || 0) };
    if (data.get("candidate")) body.candidate = Number(data.get("candidate"));
    onSubmit(body);
  });
  return [
    h("p", { id: "ab-summary" }, `Mode ${ab.mode}${ab.mode === "split" ? `, the candidate answers ${pct(ab.share)} of images` : ""}${ab.mode === "shadow" ? ": the candidate predicts alongside, production answers" : ""}.`),
    h("table", { class: "data", id: "ab-table" },
      h("thead", {}, h("tr", {}, ["arm", "version", "predictions", "served", "live accuracy (labelled)", "served accuracy (labelled)"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, arm("production", ab.production), arm("candidate", ab.candidate))),
    h("p", {}, paired),
    admin ? form : h("p", { class: "help" }, "Starting or changing an A/B test needs an admin key."),
  ];
}

export async function renderModels(main, { session }) {
  const abort = new AbortController();
  const live = h("div", { id: "models-status", role: "status", class: "status" });
  const registry = h("section", { class: "card", "aria-labelledby": "h-registry" }, status("Loading…"));
  const report = h("section", { class: "card", id: "model-report", "aria-labelledby": "h-report" },
    h("h2", { id: "h-report" }, "Evaluation report"), h("p", { class: "help" }, "Choose a version's “Report” above."));
  const ab = h("section", { class: "card", id: "ab", "aria-labelledby": "h-ab" });
  const trainStatus = h("p", { id: "train-status", role: "status", class: "status" });
  const trainForm = h("form", { class: "filters", id: "train-form", "aria-label": "Train" },
    h("div", { class: "field" }, h("label", { for: "train-mode" }, "Training"),
      h("select", { id: "train-mode", name: "mode" }, h("option", { value: "probe" }, "probe (linear head, quick)"), h("option", { value: "finetune" }, "fine-tune (slow)"))),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "train" }, "Train a new version")));
  const admin = session?.scope === "admin";
  const alarm = h("div", { id: "alarm-box" });
  main.append(h("h1", {}, "Models"));
  if (!admin) main.append(h("p", { class: "help", id: "admin-note" }, `Promoting, rolling back and A/B tests need an admin key; this one is ${session?.scope ?? "unknown"}, so those buttons are not shown.`));
  main.append(live, alarm, registry, report,
    h("div", { class: "models-lower" }, ab, h("section", { class: "card", "aria-labelledby": "h-train" },
      h("h2", { id: "h-train" }, "Train"),
      h("p", { class: "help" }, "On the workspace's images labelled with exactly one category; the new version is registered, not promoted."),
      trainForm, trainStatus)));

  const say = (message, kind = "info") => {
    live.className = `status status-${kind}`;
    live.setAttribute("role", kind === "error" ? "alert" : "status");
    live.textContent = message;
  };

  function showReport(version) {
    const url = `/v1/models/${version}/report`;
    // the report is a self-contained page (its own CSP: no scripts); sandboxed all the same
    report.replaceChildren(h("h2", { id: "h-report" }, `Evaluation report of v${version}`),
      h("p", {}, h("a", { href: url, target: "_blank", rel: "noopener" }, `Open the report of v${version} in a new tab`)),
      h("iframe", { src: url, title: `Evaluation report of version ${version}`, class: "report-frame", id: "report-frame", sandbox: "" }));
    report.querySelector("h2").setAttribute("tabindex", "-1");
    report.querySelector("h2").focus();
  }

  async function act(what, path, method = "POST", json = undefined, focusId = "h-registry") {
    try {
      await api(path, { method, json });
      say(`${what}: done.`);
      await load();
      // the button pressed is gone with the old table: keyboard focus goes to the fresh section
      const heading = main.querySelector(`#${focusId}`);
      heading.setAttribute("tabindex", "-1");
      heading.focus();
      return true;
    } catch (error) {
      say(problemText(error, what), "error");
      return false;
    }
  }

  async function load() {
    let listing;
    let history;
    try {
      [listing, history] = await Promise.all([
        api("/v1/models", { signal: abort.signal }),
        api("/v1/models/history", { signal: abort.signal }).catch(() => ({ events: [] })),
      ]);
    } catch (error) {
      if (error.name !== "AbortError") registry.replaceChildren(h("h2", { id: "h-registry" }, "Versions"), status(`Could not load the models: ${error.message}`, "error"));
      return;
    }
    const head = ["version", "aliases", "mode", "classes", "accuracy", "macro F1", "ECE", "test images", "runtime", "int8", "warnings", "created", ""];
    const rows = listing.models.map((m) => versionRow(m, [
      h("button", { type: "button", class: "button-secondary", onclick: () => showReport(m.version) }, "Report", h("span", { class: "visually-hidden" }, ` of v${m.version}`)),
      !admin || m.aliases.includes("production") ? null // only admin keys may promote: others see no button
        : h("button", { type: "button", onclick: () => act(`Promoting v${m.version}`, `/v1/models/${m.version}/promote`) }, "Promote", h("span", { class: "visually-hidden" }, ` v${m.version}`)),
    ]));
    // a rollback needs an earlier production model to go back to (else the API answers 409)
    const stack = productionStack(history.events || []);
    const back = admin && listing.production && stack.length >= 2 ? stack[stack.length - 2] : null;
    alarm.replaceChildren(productionAlarm(listing) || "");
    registry.replaceChildren(
      h("div", { class: "chart-head" }, h("h2", { id: "h-registry" }, "Versions"),
        back === null ? null
          : h("button", { type: "button", class: "button-secondary", id: "rollback", onclick: () => act(`Rolling back to v${back}`, "/v1/models/rollback") }, `Roll back production to v${back}`)),
      h("p", { id: "production" }, listing.production ? `Production: v${listing.production}.`
        : "No production model yet: new images get their categories from the built-in rules, without a trained model."),
      listing.models.length
        ? h("div", { class: "table-scroll" }, h("table", { class: "data models", id: "models-table" },
          h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows)))
        : status("No trained version yet: label images with one category each, then train."));
    ab.replaceChildren(h("h2", { id: "h-ab" }, "A/B test"),
      ...abSection(listing.ab, listing.models, (body) => act("Changing the A/B test", "/v1/models/ab", "PUT", body, "h-ab"), admin));
  }

  trainForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = trainForm.querySelector("button");
    button.disabled = true;
    try {
      const run = await api("/v1/models/train", { method: "POST", json: { mode: new FormData(trainForm).get("mode") } });
      const last = await pollRun(run.id, (r) => { trainStatus.textContent = runText(r, `Training (run ${r.id})`); }, abort.signal);
      if (last.status === "succeeded") {
        trainStatus.textContent = `Trained v${last.result.version}: accuracy ${fmtPct(last.result.metrics?.accuracy)} on ${last.result.metrics?.n ?? "?"} test images.`;
        await load();
      }
    } catch (error) {
      if (error.name !== "AbortError") trainStatus.textContent = problemText(error, "Training");
    } finally {
      button.disabled = false;
    }
  });

  await load();
  return () => abort.abort();
}
