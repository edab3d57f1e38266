// Building DOM nodes without innerHTML: every value from the API goes in as text, never as markup.

/**
 * h("a", {href: "#/x", class: "btn"}, "text", childNode) -> HTMLElement.
 * Attributes starting with "on" are listeners; `false`/null/undefined attributes are left out.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Same for SVG elements (logo quadrilaterals). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  append(el, children);
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function pct(x) {
  return `${(x * 100).toFixed(1)}%`;
}

export function fmtScore(x) {
  return typeof x === "number" ? x.toFixed(2) : "–";
}

export function fmtDate(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

/** A short description of an image for alt text: its top labels, else its source name. */
export function altText(image) {
  const labels = image?.results?.labels?.labels || [];
  const names = labels.slice(0, 3).map((l) => l.name);
  return names.length ? `Image: ${names.join(", ")}` : `Image ${image?.source || image?.id || ""}`.trim();
}

/** A status line that screen readers announce. */
export function status(message, kind = "info") {
  return h("p", { class: `status status-${kind}`, role: kind === "error" ? "alert" : "status" }, message);
}
