// Pages that other parts of feedlens will fill in (issue 10): their routes and navigation entries exist
// so the app's layout does not change when they land.
import { h } from "../dom.js";

function placeholder(main, title, text) {
  main.append(
    h("h1", {}, title),
    h("p", { class: "placeholder" }, text),
  );
}

export function renderReview(main) {
  placeholder(main, "Moderation review queue", "Not built yet: suggestive and explicit images waiting for a decision will be listed here.");
}

export function renderLabelling(main) {
  placeholder(main, "Labelling queue", "Not built yet: images whose category the model is least sure of will be offered for labelling here.");
}

export function renderModels(main) {
  placeholder(main, "Models", "Not built yet: trained category models, their evaluation reports and promotion will be here.");
}
