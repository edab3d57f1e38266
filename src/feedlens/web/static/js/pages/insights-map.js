// Places, #/places: kept locations on a map drawn here, with no tiles and nothing from elsewhere: an
// equirectangular latitude/longitude grid (no coastlines: a bundled world outline would be third-party
// data), zoomed to the places, a circle per grid cell sized by images and coloured by mean sentiment.
import { api, query } from "../api.js";
import { h, pct, status, svg } from "../dom.js";
import {
  SENTIMENT_COLOURS, dataTable, ensureStyles, field, fmtNumber, rangeFields, routeForm, thumb, windowParams,
} from "./insights-common.js";

const WIDTH = 800;
const HEIGHT = 400;
const STEPS = [30, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01];

function moodOf(score) {
  if (score === null || score === undefined) return "unknown";
  return score >= 0.05 ? "positive" : score <= -0.05 ? "negative" : "neutral";
}

/** [west, south, east, north] holding every point with a margin, 2:1 like the drawing, within the world. */
export function extent(points, world = false) {
  if (world || !points.length) return [-180, -90, 180, 90];
  const lons = points.map((p) => p.lon);
  const lats = points.map((p) => p.lat);
  let lonSpan = Math.max(Math.max(...lons) - Math.min(...lons), 1) * 1.4;
  let latSpan = Math.max(Math.max(...lats) - Math.min(...lats), 0.5) * 1.4;
  if (lonSpan < 2 * latSpan) lonSpan = 2 * latSpan;
  else latSpan = lonSpan / 2;
  lonSpan = Math.min(lonSpan, 360);
  latSpan = Math.min(latSpan, 180);
  const cx = (Math.max(...lons) + Math.min(...lons)) / 2;
  const cy = (Math.max(...lats) + Math.min(...lats)) / 2;
  const west = Math.min(Math.max(cx - lonSpan / 2, -180), 180 - lonSpan);
  const south = Math.min(Math.max(cy - latSpan / 2, -90), 90 - latSpan);
  return [west, south, west + lonSpan, south + latSpan];
}

function degrees(value, positive, negative) {
  const text = Math.abs(value) < 1 ? Math.abs(value).toFixed(2).replace(/0+$/, "").replace(/\.$/, "") : Math.abs(value).toFixed(Number.isInteger(value) ? 0 : 1);
  return value === 0 ? "0°" : `${text}°${value > 0 ? positive : negative}`;
}

function drawMap(places, [west, south, east, north]) {
  const x = (lon) => ((lon - west) / (east - west)) * WIDTH;
  const y = (lat) => ((north - lat) / (north - south)) * HEIGHT;
  // the largest step that still draws three lines or more across (30° for the world, 1° for a region)
  const step = STEPS.find((s) => (east - west) / s >= 3) || STEPS[STEPS.length - 1];
  const drawn = places.filter((p) => p.lat !== null && p.lon !== null);
  const most = Math.max(1, ...drawn.map((p) => p.images));
  const lines = [];
  for (let lon = Math.ceil(west / step) * step; lon <= east + 1e-9; lon += step) {
    const v = Number(lon.toFixed(4));
    lines.push(svg("line", { x1: x(v), x2: x(v), y1: 0, y2: HEIGHT, class: v === 0 ? "grid-line grid-zero" : "grid-line" }),
      svg("text", { x: x(v) + 3, y: HEIGHT - 4, class: "grid-label" }, degrees(v, "E", "W")));
  }
  for (let lat = Math.ceil(south / step) * step; lat <= north + 1e-9; lat += step) {
    const v = Number(lat.toFixed(4));
    lines.push(svg("line", { x1: 0, x2: WIDTH, y1: y(v), y2: y(v), class: v === 0 ? "grid-line grid-zero" : "grid-line" }),
      svg("text", { x: 4, y: y(v) - 3, class: "grid-label" }, degrees(v, "N", "S")));
  }
  const dots = drawn.map((p) => {
    const mood = moodOf(p.sentiment);
    const label = `${p.place}: ${p.images} image${p.images === 1 ? "" : "s"}, ${p.posts} posts, sentiment ${fmtNumber(p.sentiment)}`;
    return svg("a", { href: `#/places?${new URLSearchParams({ lat: p.lat, lon: p.lon })}`, class: "place-link", "aria-label": label },
      svg("circle", { cx: x(p.lon), cy: y(p.lat), r: 5 + 12 * Math.sqrt(p.images / most), fill: SENTIMENT_COLOURS[mood], class: `place place-${mood}` },
        svg("title", {}, label)));
  });
  return svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "place-map", id: "place-map", role: "group", "aria-label": `Map of ${drawn.length} places on a latitude and longitude grid` },
    svg("rect", { x: 0, y: 0, width: WIDTH, height: HEIGHT, class: "map-sea" }), ...lines, ...dots);
}

async function cellImages(box, params, span) {
  const lat = params.get("lat");
  const lon = params.get("lon");
  const name = params.get("name");
  if (!(lat && lon) && !name) return;
  box.append(h("h2", { id: "h-place-images" }, "Images here"), status("Loading…"));
  const found = await api(`/v1/insights/places/images${query({ lat, lon, name, ...span })}`);
  box.replaceChildren(h("h2", { id: "h-place-images" }, name ? `Images at ${name}` : `Images near ${degrees(Number(lat), "N", "S")} ${degrees(Number(lon), "E", "W")}`),
    found.items.length ? h("div", { class: "insight-thumbs", id: "place-images" }, found.items.map((i) => thumb(i.id, `Image taken at ${i.place || "this place"}`))) : status("No image here in this range."));
}

export async function renderPlaces(main, { params, navigate }) {
  ensureStyles();
  const span = windowParams(params);
  const form = routeForm(h("form", { class: "filters card", id: "places-form", "aria-label": "Time range and view" },
    ...rangeFields("p", params),
    field("p-view", "View", h("select", { id: "p-view", name: "view" },
      h("option", { value: "" }, "zoomed to the places"), h("option", { value: "world", selected: params.get("view") === "world" }, "whole world"))),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply"))), "places", navigate);
  main.append(h("h1", {}, "Places"), form);
  let answer;
  try {
    answer = await api(`/v1/insights/places${query(span)}`);
  } catch (error) {
    main.append(status(`Could not load the places: ${error.message}`, "error"));
    return;
  }
  if (!answer.kept) {
    main.append(status(answer.note, "info"));
    return;
  }
  const drawn = answer.places.filter((p) => p.lat !== null);
  const legend = h("p", { class: "map-legend help" }, "Circle size: images. Colour: mean sentiment (",
    ["positive", "neutral", "negative"].map((m) => h("span", { class: `legend-dot mood-${m}` }, m)), "). Grid cells of ",
    `${answer.precision} decimal place${answer.precision === 1 ? "" : "s"}; no coastlines are drawn (nothing is loaded from elsewhere).`);
  const columns = [["place", "Place", (v, row) => h("a", { href: `#/places?${new URLSearchParams(row.lat === null ? { name: v } : { lat: row.lat, lon: row.lon })}` }, v)],
    ["images", "Images"], ["posts", "Posts"], ["engagement", "Engagement"], ["sentiment", "Mean sentiment"],
    ["negative_share", "Negative share", (x) => (x === null ? "–" : pct(x))], ["sources", "From", (s) => s.join(", ")]];
  const images = h("section", { class: "card insight-section", id: "place-images-box", "aria-labelledby": "h-place-images" });
  main.append(
    h("section", { class: "card insight-section", id: "map-box", "aria-label": "Map" },
      answer.places.length ? drawMap(answer.places, extent(drawn, params.get("view") === "world")) : status("No kept location in this range."), legend),
    images,
    h("section", { class: "card insight-section", id: "places-list", "aria-labelledby": "h-places-list" }, h("h2", { id: "h-places-list" }, "Every place"),
      dataTable("places-table", columns, answer.places, "Places")));
  await cellImages(images, params, span).catch((error) => images.replaceChildren(status(error.message, "error")));
  if (!images.childNodes.length) images.remove();
}
