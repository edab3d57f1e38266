// Thumbnails that recover: an <img> whose load fails waits a moment, then fetches the thumbnail itself, so
// that it can read the answer: "too many requests" or "busy" means waiting as long as its Retry-After says
// (else a growing pause with jitter) and trying again, a few at a time across the page, so a long gallery
// never ends with broken pictures nor floods the server. An image that is gone (404) shows its alt text
// on a plain box instead of a broken icon.
import { thumbnailUrl } from "./api.js";
import { h } from "./dom.js";

const MAX_TRIES = 6;
const AT_ONCE = 3; // retries in flight together, across the page
const RETRYABLE = new Set([429, 502, 503, 504]);
let running = 0;
const waiting = [];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function slot() {
  if (running < AT_ONCE) { running += 1; return; }
  await new Promise((resolve) => waiting.push(resolve));
}

function release() {
  const next = waiting.shift();
  if (next) next(); else running -= 1;
}

/**
 * Milliseconds to wait before try `tries` (1-based): what the last answer's Retry-After said, else a pause
 * that doubles from one second (an <img> cannot read the header of the answer that failed it), with jitter
 * that only lengthens it, so many thumbnails refused together do not come back together.
 */
export function retryDelay(response, tries) {
  const after = Number(response?.headers.get("Retry-After") ?? NaN);
  if (Number.isFinite(after) && after >= 0) return after * 1000 + Math.random() * 250;
  return Math.min(8000, 1000 * 2 ** (tries - 1)) * (1 + Math.random() * 0.5);
}

async function recover(img, url) {
  img.dataset.thumb = "retrying";
  let response = null;
  for (let tries = 1; tries <= MAX_TRIES; tries += 1) {
    await sleep(retryDelay(response, tries));
    if (!img.isConnected) return; // the page was left
    await slot();
    try {
      response = await fetch(url, { credentials: "same-origin" });
      if (response.ok) {
        const objectUrl = URL.createObjectURL(await response.blob());
        img.addEventListener("load", () => URL.revokeObjectURL(objectUrl), { once: true });
        img.src = objectUrl;
        img.dataset.thumb = "loaded";
        return;
      }
    } catch {
      response = null; // the network dropped: wait and try again
    } finally {
      release();
    }
    if (response && !RETRYABLE.has(response.status)) break; // gone (404) or not ours (401, 403): no retry
  }
  img.dataset.thumb = "failed";
  img.classList.add("thumb-missing");
  img.removeAttribute("src"); // no broken-image icon: the alt text on a plain box instead
}

/** An <img> of an image's thumbnail (attrs as for h(), alt required) that retries politely. */
export function thumbnail(id, attrs) {
  const url = thumbnailUrl(id);
  const img = h("img", { ...attrs, src: url, dataset: { thumb: "loading" } });
  img.addEventListener("load", () => { if (img.dataset.thumb === "loading") img.dataset.thumb = "loaded"; });
  img.addEventListener("error", () => { if (img.dataset.thumb === "loading") recover(img, url); });
  return img;
}
