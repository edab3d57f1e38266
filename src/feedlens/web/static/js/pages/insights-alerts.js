// Alerts, #/alerts: the jumps in negative share the team's rules caught (newest first), the rules, and
// for write keys a form to add one, deletion, and "check now" (ingest checks after every batch anyway).
import { api } from "../api.js";
import { fmtDate, h, pct, status } from "../dom.js";
import { dataTable, ensureStyles, field } from "./insights-common.js";

const ALERT_COLUMNS = [["period", "Period"], ["rule", "Rule"], ["value", "Watching", (v, a) => h("a", { href: `#/insights?kind=${a.kind}&value=${encodeURIComponent(v)}` }, `${a.kind} ${v}`)],
  ["posts", "Posts"], ["negative_share", "Negative share", (x) => pct(x)], ["previous_share", "Before", (x) => (x === null ? "–" : pct(x))],
  ["webhook", "Webhook", (w) => (w.error ? `${w.status}: ${w.error}` : w.status)], ["created_at", "Raised", (x) => fmtDate(x)]];

function ruleText(rule) {
  const hook = rule.webhook_url ? `; webhook ${rule.webhook_url}` : "";
  return `${rule.kind} ${rule.value}: negative share at least ${pct(rule.threshold)} and up ${pct(rule.min_rise)} on the ${rule.bucket} before, in a ${rule.bucket} with ${rule.min_posts}+ posts${hook}`;
}

function addForm(onAdded) {
  const message = h("div", { role: "status" });
  const form = h("form", { class: "filters card", id: "rule-form", "aria-label": "Add an alert rule" },
    field("ar-name", "Rule name", h("input", { id: "ar-name", name: "name", required: true, maxlength: 128 })),
    field("ar-kind", "Watch", h("select", { id: "ar-kind", name: "kind" }, ["brand", "hashtag", "category"].map((k) => h("option", { value: k }, k)))),
    field("ar-value", "Name", h("input", { id: "ar-value", name: "value", required: true, maxlength: 256 })),
    field("ar-bucket", "Per", h("select", { id: "ar-bucket", name: "bucket" }, h("option", { value: "week" }, "week"), h("option", { value: "day" }, "day"))),
    field("ar-threshold", "Negative share at least (%)", h("input", { id: "ar-threshold", name: "threshold", type: "number", min: 1, max: 100, value: 30 })),
    field("ar-rise", "Rise over the period before (points)", h("input", { id: "ar-rise", name: "min_rise", type: "number", min: 0, max: 100, value: 15 })),
    field("ar-posts", "Posts a period needs", h("input", { id: "ar-posts", name: "min_posts", type: "number", min: 1, value: 5 })),
    field("ar-webhook", "Webhook URL (optional)", h("input", { id: "ar-webhook", name: "webhook_url", type: "url", placeholder: "https://…" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Add rule")), message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = Object.fromEntries(new FormData(form));
    const body = { name: d.name, kind: d.kind, value: d.value, bucket: d.bucket, threshold: Number(d.threshold) / 100,
      min_rise: Number(d.min_rise) / 100, min_posts: Number(d.min_posts), webhook_url: d.webhook_url || null };
    try {
      await api("/v1/insights/alerts/rules", { method: "POST", json: body });
      form.reset();
      await onAdded();
    } catch (error) {
      message.replaceChildren(status(`Not added: ${error.message}`, "error"));
    }
  });
  return form;
}

export async function renderAlerts(main, { session }) {
  ensureStyles();
  const canWrite = session.scope !== "read";
  const alertsBox = h("section", { class: "card insight-section", id: "alerts-box", "aria-labelledby": "h-alerts" }, h("h2", { id: "h-alerts" }, "Alerts raised"));
  const rulesBox = h("section", { class: "card insight-section", id: "rules-box", "aria-labelledby": "h-rules" }, h("h2", { id: "h-rules" }, "Rules"));
  const note = h("div", { role: "status", id: "check-status" });
  async function load() {
    const [alerts, rules] = await Promise.all([api("/v1/insights/alerts"), api("/v1/insights/alerts/rules")]);
    alertsBox.replaceChildren(h("h2", { id: "h-alerts" }, "Alerts raised"), alerts.alerts.length
      ? dataTable("alerts-table", ALERT_COLUMNS, alerts.alerts, "Alerts, newest first")
      : status("No alert yet."));
    rulesBox.replaceChildren(h("h2", { id: "h-rules" }, "Rules"), rules.rules.length
      ? h("ul", { class: "insight-rules", id: "rules-list" }, rules.rules.map((rule) => h("li", { dataset: { rule: rule.id } },
        h("strong", {}, rule.name), ` — ${ruleText(rule)} `,
        canWrite ? h("button", { type: "button", class: "button-secondary", onclick: async () => {
          await api(`/v1/insights/alerts/rules/${rule.id}`, { method: "DELETE" });
          await load();
        } }, "Delete", h("span", { class: "visually-hidden" }, ` rule ${rule.name}`)) : null)))
      : status("No rule yet."));
  }
  const check = canWrite ? h("button", { type: "button", id: "check-now", onclick: async () => {
    const found = await api("/v1/insights/alerts/check", { method: "POST" });
    note.replaceChildren(status(found.alerts.length ? `${found.alerts.length} new alert${found.alerts.length === 1 ? "" : "s"}.` : "Nothing new."));
    await load();
  } }, "Check now") : null;
  main.append(h("h1", {}, "Alerts"),
    h("p", {}, "A rule raises an alert once per jump: when a period's share of negative posts about a brand, hashtag or category reaches its threshold and rose enough over the period before."),
    h("div", { class: "toolbar" }, check, note), alertsBox, rulesBox, canWrite ? addForm(load) : null);
  try {
    await load();
  } catch (error) {
    alertsBox.append(status(`Could not load the alerts: ${error.message}`, "error"));
  }
}
