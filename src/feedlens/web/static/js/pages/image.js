// One image: every analyzer's result, what they found drawn over the picture (objects, people's skeletons,
// faces with their emotion, text lines, unsafe regions, logos: image-overlay.js), its posts, duplicates
// and "more like this".
import { api } from "../api.js";
import { thumbnail } from "../thumbs.js";
import { imageCard } from "../cards.js";
import { fmtDate, fmtScore, h, pct, status } from "../dom.js";
import { inPicture, legend, overlay, regionsOf } from "./image-overlay.js";

function section(title, ...content) {
  const id = `s-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return h("section", { class: "card result", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

function dl(pairs) {
  return h("dl", { class: "pairs" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function scoreList(items, name = "name") {
  return h("ul", { class: "scores" }, items.map((i) => h("li", {}, h("span", {}, i[name]), h("meter", { min: 0, max: 1, value: i.score, title: fmtScore(i.score) }), h("span", { class: "num" }, fmtScore(i.score)))));
}

function safeUrl(url) {
  return /^https?:\/\//i.test(url || "") ? url : null;
}

function results(image) {
  const r = image.results || {};
  const out = [];
  if (r.labels) {
    out.push(section("Labels", scoreList(r.labels.labels || []),
      h("details", {}, h("summary", {}, "What the classifier saw (ImageNet classes)"),
        h("p", {}, (r.labels.classes || []).map((c) => `${c.name} ${fmtScore(c.score)}`).join(" · ") || "none"))));
  }
  if (r.categories) {
    out.push(section("Categories", h("p", {}, "Assigned: ", (r.categories.assigned || []).join(", ") || "none (other)"),
      scoreList((r.categories.categories || []).slice(0, 6))));
  }
  if (r.safety) {
    out.push(section("Safety", dl([["Verdict", r.safety.verdict]]),
      scoreList(Object.entries(r.safety.scores || {}).map(([name, score]) => ({ name, score }))),
      h("p", {}, `${(r.safety.regions || []).length} region(s)`)));
  }
  if (r.faces) {
    const s = r.faces.emotion_summary;
    out.push(section("Faces", dl([["Faces", r.faces.count], ["Dominant emotion", s?.dominant], ["Sentiment", s?.sentiment]]),
      h("ol", {}, (r.faces.faces || []).map((f) => h("li", {}, `${f.dominant_emotion} (${fmtScore(f.emotions?.[f.dominant_emotion])}), confidence ${fmtScore(f.confidence)}`)))));
  }
  if (r.text) {
    out.push(section("Text", h("p", { class: "ocr" }, r.text.full_text || (r.text.gated ? "No text (skipped: no text-like regions)" : "No text found")),
      dl([["Hashtags", (r.text.hashtags || []).join(" ")], ["Mentions", (r.text.mentions || []).join(" ")], ["URLs", (r.text.urls || []).join(" ")]])));
  }
  if (r.brands) {
    out.push(section("Brands", (r.brands.mentions || []).length
      ? h("ul", {}, r.brands.mentions.map((m) => h("li", {}, `${m.brand} ${fmtScore(m.score)} — ${(m.evidence || []).map((e) => e.kind).join(", ")}`)))
      : h("p", {}, "No registered brand found")));
  }
  if (r.properties) {
    const p = r.properties;
    out.push(section("Properties",
      h("ul", { class: "colours" }, (p.colours || []).map((c) => {
        const sw = h("span", { class: "colour-swatch", "aria-hidden": "true" });
        sw.style.background = c.hex || "transparent";
        return h("li", {}, sw, `${c.name} ${c.fraction !== undefined ? pct(c.fraction) : ""}`);
      })),
      dl([["Orientation", p.orientation], ["Brightness", fmtScore(p.brightness)], ["Contrast", fmtScore(p.contrast)],
        ["Sharpness", fmtScore(p.sharpness)], ["Blurry", p.blurry === undefined ? undefined : String(p.blurry)], ["Colourfulness", fmtScore(p.colourfulness)]])));
  }
  return out;
}

function posts(image) {
  if (!image.posts?.length) return section("Posts", h("p", {}, "Not linked to a post (ingested from a folder or upload)."));
  return section("Posts", h("ul", { class: "posts" }, image.posts.map((p) => {
    const link = safeUrl(p.url);
    return h("li", {}, dl([
      ["Platform", p.platform], ["Post", p.post_id], ["Author", p.author ? `@${p.author}` : null],
      ["Posted", p.created_at ? fmtDate(p.created_at) : null], ["Caption", p.caption],
      ["Hashtags", (p.hashtags || []).map((t) => `#${t}`).join(" ")],
      ["Likes", p.likes], ["Comments", p.comments], ["Shares", p.shares],
      ["Link", link ? h("a", { href: link, rel: "noopener noreferrer", target: "_blank" }, link) : null],
    ]));
  })));
}

async function duplicates(image, box) {
  try {
    const d = await api("/v1/duplicates");
    const groups = [];
    for (const kind of ["near", "similar"]) {
      for (const g of d[kind] || []) if (g.images.includes(image.id)) groups.push([kind, g.images.filter((i) => i !== image.id)]);
    }
    const exact = (d.exact || []).find((e) => e.image_id === image.id);
    const items = [];
    if (exact) items.push(h("li", {}, `Exact: the same file in ${exact.posts.length} posts`));
    for (const [kind, ids] of groups) {
      items.push(h("li", {}, `${kind === "near" ? "Near duplicates" : "Similar scene"}: `,
        ids.map((id) => h("a", { href: `#/image/${encodeURIComponent(id)}`, class: "dup-link" },
          thumbnail(id, { alt: `${kind === "near" ? "near duplicate" : "similar scene"} ${id.slice(0, 8)}`, width: 64, height: 64 })))));
    }
    box.replaceChildren(items.length ? h("ul", {}, items) : h("p", {}, "No duplicates."));
  } catch (error) {
    box.replaceChildren(status(`Could not load duplicates: ${error.message}`, "error"));
  }
}

async function similar(image, grid) {
  try {
    const found = await api(`/v1/search/similar?image_id=${encodeURIComponent(image.id)}&limit=9`, { method: "POST" });
    const others = found.items.filter((i) => i.image_id !== image.id);
    grid.replaceChildren(...others.map((i) => imageCard(i.image, { score: i.score, cosine: i.cosine })));
    if (!others.length) grid.replaceWith(h("p", {}, `Nothing above the relevance cut-off (${fmtScore(found.min_score)}).`));
  } catch (error) {
    grid.replaceWith(status(`Could not search: ${error.message}`, "error"));
  }
}

export async function renderImage(main, { id }) {
  let image;
  try {
    image = await api(`/v1/images/${encodeURIComponent(id)}`);
  } catch (error) {
    main.append(h("h1", {}, "Image"), status(error.status === 404 ? "No such image in this workspace." : error.message, "error"));
    return;
  }
  const regions = regionsOf(image);
  const frame = overlay(image, regions);
  const summary = inPicture(image);
  const dupBox = h("div", {}, status("Looking for duplicates…"));
  const likeGrid = h("ul", { class: "grid grid-small", id: "similar-grid", "aria-label": "More like this" });
  main.append(
    h("p", {}, h("a", { href: "#/gallery" }, "← Gallery")),
    h("h1", {}, image.results?.labels?.labels?.[0]?.name || image.source || "Image"),
    h("div", { class: "image-page" },
      h("div", { class: "image-left" },
        frame,
        legend(regions, frame),
        summary ? section("In the picture", summary) : null,
        section("File", dl([["Id", image.id], ["Source", image.source], ["Size", `${image.width} × ${image.height} ${image.format}`],
          ["Ingested", fmtDate(image.created_at)], ["Stale results", (image.stale || []).join(", ") || "none"]])),
        posts(image),
        section("Duplicates", dupBox),
      ),
      h("div", { class: "image-right" }, results(image)),
    ),
    h("h2", {}, "More like this"),
    likeGrid,
  );
  duplicates(image, dupBox);
  similar(image, likeGrid);
}
