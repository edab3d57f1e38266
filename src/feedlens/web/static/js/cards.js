// Image cards shared by the gallery, search results and "more like this".
import { altText, fmtScore, h } from "./dom.js";
import { thumbnail } from "./thumbs.js";

/** Top label, assigned categories and a non-safe verdict of an image view. */
export function summary(image) {
  const labels = image.results?.labels?.labels || [];
  const categories = image.results?.categories?.assigned || [];
  const verdict = image.results?.safety?.verdict;
  return { label: labels[0]?.name, categories, verdict };
}

/** A checkbox that selects the card's image (the gallery's bulk actions); onToggle(id, checked). */
function selectBox(image, checked, onToggle) {
  const id = `select-${image.id}`;
  const box = h("input", { type: "checkbox", id, class: "select-image", value: image.id, checked });
  box.addEventListener("change", () => onToggle(image.id, box.checked));
  return h("div", { class: "select-box" }, box,
    h("label", { for: id }, "Select", h("span", { class: "visually-hidden" }, ` ${altText(image)}`)));
}

export function imageCard(image, { score, cosine, select } = {}) {
  const { label, categories, verdict } = summary(image);
  const post = (image.posts || [])[0];
  return h(
    "li",
    { class: `card image-card${select?.checked ? " is-selected" : ""}`, dataset: { id: image.id } },
    select ? selectBox(image, select.checked, select.onToggle) : null,
    h(
      "a",
      { href: `#/image/${encodeURIComponent(image.id)}`, class: "image-link" },
      thumbnail(image.id, { alt: altText(image), loading: "lazy", width: 240, height: 180 }),
      h("span", { class: "card-title" }, label || image.source || image.id),
    ),
    h(
      "div",
      { class: "card-meta" },
      categories.map((c) => h("span", { class: "badge" }, c)),
      verdict && verdict !== "safe" ? h("span", { class: `badge badge-${verdict}` }, verdict) : null,
      post?.author ? h("span", { class: "author" }, `@${post.author}`) : null,
      score !== undefined
        ? h("span", { class: "score", title: `cosine ${fmtScore(cosine)}` }, `score ${fmtScore(score)}`)
        : null,
    ),
  );
}
