// Image cards shared by the gallery, search results and "more like this".
import { thumbnailUrl } from "./api.js";
import { altText, fmtScore, h } from "./dom.js";

/** Top label, assigned categories and a non-safe verdict of an image view. */
export function summary(image) {
  const labels = image.results?.labels?.labels || [];
  const categories = image.results?.categories?.assigned || [];
  const verdict = image.results?.safety?.verdict;
  return { label: labels[0]?.name, categories, verdict };
}

export function imageCard(image, { score, cosine } = {}) {
  const { label, categories, verdict } = summary(image);
  const post = (image.posts || [])[0];
  return h(
    "li",
    { class: "card image-card" },
    h(
      "a",
      { href: `#/image/${encodeURIComponent(image.id)}`, class: "image-link" },
      h("img", {
        src: thumbnailUrl(image.id),
        alt: altText(image),
        loading: "lazy",
        width: 240,
        height: 180,
      }),
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
