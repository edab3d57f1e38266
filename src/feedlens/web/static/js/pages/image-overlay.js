// The image page's picture with what the analyzers found drawn over it (objects, people's skeletons, faces,
// text lines, unsafe regions, logos), the legend that shows or hides each kind, and the short "in the
// picture" list. Every position is a fraction of the picture (the results' boxes are normalised 0..1), so
// the drawing fits any aspect ratio and follows the picture when the window is resized, with no script.
import { thumbnail } from "../thumbs.js";
import { altText, fmtScore, h, pct, svg } from "../dom.js";

export const LAYERS = [
  ["objects", "Objects"],
  ["people", "People"],
  ["faces", "Faces"],
  ["text", "Text lines"],
  ["unsafe", "Unsafe regions"],
  ["logos", "Logos"],
];

// Joints drawn (and the bones between them) when the pose model is at least this sure of them.
export const MIN_KEYPOINT = 0.3;
// An activity cue holds at 0.5 and up (core/results/pose.py PersonPose).
const CUE_HOLDS = 0.5;
// The COCO skeleton: pairs of keypoint names (a person's own left / right) joined by a line.
const BONES = [
  ["nose", "left_eye"], ["nose", "right_eye"], ["left_eye", "left_ear"], ["right_eye", "right_ear"],
  ["left_shoulder", "right_shoulder"], ["left_shoulder", "left_elbow"], ["left_elbow", "left_wrist"],
  ["right_shoulder", "right_elbow"], ["right_elbow", "right_wrist"], ["left_shoulder", "left_hip"],
  ["right_shoulder", "right_hip"], ["left_hip", "right_hip"], ["left_hip", "left_knee"],
  ["left_knee", "left_ankle"], ["right_hip", "right_knee"], ["right_knee", "right_ankle"],
];
const ACTIVITIES = {
  standing: "Standing",
  sitting: "Sitting",
  lying_down: "Lying down",
  arms_raised: "Arms raised",
  running_jumping: "Running or jumping",
};

/** "lying_down" -> "Lying down": the words people read for an activity cue. */
export function activityName(key) {
  const words = String(key).replace(/_/g, " ");
  return ACTIVITIES[key] || words.charAt(0).toUpperCase() + words.slice(1);
}

const percent = (score) => (typeof score === "number" ? `${Math.round(score * 100)}%` : "");
// SVG lengths in % of the picture, finer than pct() (0.01% of a 1,000 px picture is 0.1 px)
const frac = (v) => `${(v * 100).toFixed(2)}%`;
const isUnit = (v) => typeof v === "number" && Number.isFinite(v) && v >= -0.01 && v <= 1.01;
const isBox = (b) => !!b && isUnit(b.x0) && isUnit(b.y0) && isUnit(b.x1) && isUnit(b.y1) && b.x1 >= b.x0 && b.y1 >= b.y0;

/** The activity cues that hold for a person or a whole pose result ({standing: 0.8, ...}), strongest first. */
export function heldActivities(cues) {
  return Object.entries(cues || {})
    .filter(([, v]) => typeof v === "number" && v >= CUE_HOLDS)
    .sort((a, b) => b[1] - a[1])
    .map(([k]) => activityName(k));
}

/** A person's visible joints {name: {x, y}} and the bones between them [[a, b]], both at MIN_KEYPOINT. */
export function skeletonOf(person) {
  const joints = {};
  for (const k of person.keypoints || []) {
    if (typeof k.score === "number" && k.score >= MIN_KEYPOINT && isUnit(k.x) && isUnit(k.y)) joints[k.name] = k;
  }
  const bones = BONES.filter(([a, b]) => joints[a] && joints[b]).map(([a, b]) => [joints[a], joints[b]]);
  return { joints: Object.values(joints), bones };
}

/**
 * Every region of an image view: {layer, label, box: {x0,y0,x1,y1}} for boxes, {layer, label, quad:
 * [[x,y] x4]} for logos, {layer: "people", label, person} for skeletons. Anything malformed is left out.
 */
export function regionsOf(image) {
  const r = image.results || {};
  const out = [];
  for (const o of r.objects?.objects || []) {
    if (isBox(o.box)) out.push({ layer: "objects", box: o.box, label: `${o.name} ${percent(o.score)}`.trim() });
  }
  for (const person of r.pose?.people || []) {
    const doing = heldActivities(person.activities);
    out.push({ layer: "people", person, label: `Person ${percent(person.score)}${doing.length ? `: ${doing.join(", ")}` : ""}` });
  }
  for (const face of r.faces?.faces || []) {
    const score = face.emotions?.[face.dominant_emotion];
    if (isBox(face.box)) out.push({ layer: "faces", box: face.box, label: `face: ${face.dominant_emotion} ${fmtScore(score)}` });
  }
  for (const line of r.text?.lines || []) if (isBox(line.box)) out.push({ layer: "text", box: line.box, label: `text: ${line.text}` });
  for (const region of r.safety?.regions || []) {
    if (isBox(region.box)) out.push({ layer: "unsafe", box: region.box, label: `${region.category}: ${region.type} ${fmtScore(region.score)}` });
  }
  for (const mention of r.brands?.mentions || []) {
    for (const ev of mention.evidence || []) {
      if (Array.isArray(ev.quad)) out.push({ layer: "logos", quad: ev.quad, label: `logo: ${mention.brand} ${fmtScore(ev.score)}` });
    }
  }
  return out;
}

function boxRegion(region) {
  const { box } = region;
  // a label above a box at the top edge would leave the picture: it goes inside the box instead
  const inside = box.y0 < 0.07 ? " region-label-inside" : "";
  const el = h("div", { class: `region region-${region.layer}`, dataset: { layer: region.layer }, title: region.label },
    h("span", { class: `region-label${inside}` }, region.label));
  // positions set through the style object, not a style attribute (the page's CSP allows no inline styles)
  Object.assign(el.style, { left: pct(box.x0), top: pct(box.y0), width: pct(box.x1 - box.x0), height: pct(box.y1 - box.y0) });
  return el;
}

function quadRegion(region, quads) {
  const points = region.quad.map(([x, y]) => `${x},${y}`).join(" ");
  quads.append(svg("polygon", { points, class: "region-logos", "data-layer": "logos" }, svg("title", {}, region.label)));
  // the quadrilateral is turned with the logo; its label sits on the corner nearest the top left
  const xs = region.quad.map(([x]) => x);
  const ys = region.quad.map(([, y]) => y);
  const tag = h("div", { class: "region region-logos region-quad", title: region.label }, h("span", { class: "region-label" }, region.label));
  Object.assign(tag.style, { left: pct(Math.min(...xs)), top: pct(Math.min(...ys)), width: "0", height: "0" });
  return tag;
}

/** One person's skeleton: an SVG group of lines (a dark halo under each) and joints, in % of the picture. */
function skeleton(region) {
  const { joints, bones } = skeletonOf(region.person);
  const line = (a, b, cls) => svg("line", { x1: frac(a.x), y1: frac(a.y), x2: frac(b.x), y2: frac(b.y), class: cls });
  return svg("g", { class: "skeleton region-people", "data-layer": "people" },
    svg("title", {}, region.label),
    bones.map(([a, b]) => line(a, b, "bone-halo")),
    bones.map(([a, b]) => line(a, b, "bone")),
    joints.map((k) => svg("circle", { cx: frac(k.x), cy: frac(k.y), r: 3.5, class: "joint" })));
}

/** The picture and everything drawn over it; the drawing is left out when there is nothing to draw. */
export function overlay(image, regions) {
  const frame = h("div", { class: "overlay-frame", id: "image-frame" });
  // width and height give the picture its aspect ratio before it loads: nothing below it moves then
  const size = image.width > 0 && image.height > 0 ? { width: image.width, height: image.height } : {};
  frame.append(thumbnail(image.id, { alt: altText(image), id: "image-main", ...size }));
  if (!regions.length) return frame;
  const quads = svg("svg", { class: "quads", viewBox: "0 0 1 1", preserveAspectRatio: "none", "aria-hidden": "true" });
  // no viewBox here: % coordinates keep joints round and lines even on any aspect ratio
  const people = svg("svg", { class: "skeletons", "aria-hidden": "true", focusable: "false" });
  for (const region of regions) {
    if (region.person) people.append(skeleton(region));
    else if (region.box) frame.append(boxRegion(region));
    else if (region.quad) frame.append(quadRegion(region, quads));
  }
  frame.append(people, quads);
  return frame;
}

/** A checkbox per kind of region that hides or shows it; none when nothing is drawn. */
export function legend(regions, frame) {
  if (!regions.length) return h("p", { class: "help legend-empty" }, "Nothing found to draw over this picture.");
  const counts = Object.fromEntries(LAYERS.map(([k]) => [k, regions.filter((r) => r.layer === k).length]));
  return h(
    "fieldset",
    { class: "legend" },
    h("legend", {}, "Shown over the picture"),
    LAYERS.map(([key, label]) => {
      const box = h("input", { type: "checkbox", id: `layer-${key}`, checked: true });
      box.addEventListener("change", () => frame.classList.toggle(`hide-${key}`, !box.checked));
      return h("label", { for: `layer-${key}`, class: `swatch swatch-${key}` }, box, ` ${label} (${counts[key]})`);
    }),
  );
}

/** "Person ×2, Tie ×1": each everyday name once, most frequent first (ties: best score first). */
export function objectCounts(objects) {
  const counts = new Map();
  for (const o of objects || []) if (o?.name) counts.set(o.name, (counts.get(o.name) || 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ×${n}`).join(", ");
}

/** "1 — Standing": how many people and what they are doing, in everyday words. */
export function peopleLine(pose) {
  const people = pose.people || [];
  const count = typeof pose.count === "number" ? pose.count : people.length;
  if (!count) return "none found";
  // the result's own summary of the cues; worked out from the people where an older result lacks it
  let cues = pose.activities;
  if (!cues) {
    cues = {};
    for (const p of people) for (const [k, v] of Object.entries(p.activities || {})) cues[k] = Math.max(cues[k] ?? 0, v);
  }
  const doing = heldActivities(cues);
  return doing.length ? `${count} — ${doing.join(", ")}` : String(count);
}

/** The short list beside the picture (objects and people), or null without either result. */
export function inPicture(image) {
  const r = image.results || {};
  if (!r.objects && !r.pose) return null;
  const row = (name, text) => h("li", {}, h("span", { class: "in-picture-name" }, `${name}: `), text);
  return h("ul", { class: "in-picture", id: "in-picture" },
    r.objects ? row("Objects", objectCounts(r.objects.objects) || "none found") : null,
    r.pose ? row("People", peopleLine(r.pose)) : null);
}
