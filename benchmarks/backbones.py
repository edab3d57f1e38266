"""EfficientNet-Lite0 vs EfficientNet-Lite2 as the `labels` backbone: ONNX Runtime speed and label accuracy.

Prints a markdown section (not run by tests); `--out docs/benchmarks.md` rewrites its marked section.

Both backbones get one protocol. Each image is decoded once by the service's decoder (shorter side at least
the larger backbone's resize), then per backbone: shorter side to `resize` (bilinear), centre crop `crop`
(224/256 for Lite0 and 260/292 for Lite2: TensorFlow EfficientNet's evaluation crop, the input size plus 32
before cropping), (x - 127) / 128, ONNX Runtime on CPU with 2 intra-op threads.

Speed: model time only (`session.run`), ms per image at batch 1 and batch 8, on real photos of the corpus;
rounds interleave the backbones (their order alternating) so a burst of load elsewhere on a shared machine
hits both; the median over every timed run of every round is reported, with the spread of per-round medians.

Accuracy: the labelled corpus (tests/support/corpus.py). Class probabilities are rolled up to everyday
labels with the vocabulary (`Vocabulary.imagenet_matrix`: a label scores the summed probability of every
class under it). Ranking: labels scoring at least LEAD come first, most specific (deepest) first, then the
rest by score; so a confident "Cat" leads rather than its ancestors "Mammal" and "Animal", which always
score at least as much. The corpus's `headline` words map to label ids with `Vocabulary.find` (its first
match); images none of whose headline words is a label are left out (the `n` column counts those scored).
- top-1 headline: the first label is one of the headline labels;
- top-1 broader: otherwise it is an ancestor of a headline label (Animal for a cat): right but vague;
- top-1 narrower (counted in the text, not the table): it is below a headline label (a dog breed where the
  labeller wrote "dog"): unverifiable, not counted as right;
- headline in top 3: a headline label is among the first three labels;
- same top class: both backbones' raw ImageNet top-1 class is the same.

Run: `benchmarks/backbones.py [--rounds 7] [--out docs/benchmarks.md]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from tests.support.corpus import CorpusImage, load_corpus

from feedlens.config import load_settings
from feedlens.core.errors import ImageError
from feedlens.core.imageops import center_crop, resize_shorter_side, softmax, to_nchw
from feedlens.core.vocabulary import Vocabulary
from feedlens.images import ImageDecoder
from feedlens.runtime.conversions import default_converters
from feedlens.runtime.manifest import Manifest
from feedlens.runtime.sessions import InferenceSession, open_session
from feedlens.runtime.store import ModelStore

START, END = "<!-- bench:backbones:start -->", "<!-- bench:backbones:end -->"
THREADS = 2
BATCHES = (1, 8)
SPEED_IMAGES = 8  # real photos timed per batch size and round
LEAD = 0.5  # rolled-up labels from this score lead the ranking, most specific first
TOP = 3
CLASSIFY_BATCH = 16


@dataclass(frozen=True)
class Backbone:
    name: str
    artifact: str
    crop: int
    resize: int
    mean: float = 127.0
    std: float = 128.0

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB images -> float32 (N, 3, crop, crop)."""
        crops = [
            center_crop(resize_shorter_side(im, self.resize, Image.Resampling.BILINEAR), self.crop)
            for im in images
        ]
        return to_nchw(crops, self.mean, self.std)


BACKBONES = (
    Backbone("Lite0", "efficientnet-lite0-onnx", 224, 256),
    Backbone("Lite2", "efficientnet-lite2-onnx", 260, 292),
)
# The corpus README's independent photo sources; everything that is not a photo is one more row.
PHOTO_GROUPS = {
    "gcompris-qt-data": "GCompris",
    "opencv-doc": "OpenCV",
    "tuxpaint-stamps-default": "Tux Paint cut-outs",
    "gimp-help-en": "GIMP",
    "plasma-workspace-wallpapers": "wallpapers",
    "mate-backgrounds": "wallpapers",
    "lomiri-wallpapers-16.04": "wallpapers",
    "lomiri-wallpapers-20.04": "wallpapers",
    "ukui-wallpapers": "wallpapers",
    "gnome-backgrounds": "wallpapers",
}
GROUP_ORDER = ("GCompris", "OpenCV", "Tux Paint cut-outs", "wallpapers", "GIMP", "Python wheels")


def group_of(image: CorpusImage) -> str:
    if image.kind != "photo":
        return "not photos (art, clip art, renders...)"
    return PHOTO_GROUPS.get(image.source, "Python wheels")


def decode_all(images: Sequence[CorpusImage], min_side: int) -> list[tuple[CorpusImage, Image.Image]]:
    """Each corpus image decoded once; the few the decoder refuses (too small) are left out, for both."""
    decoder = ImageDecoder(load_settings().decode)
    out = []
    for image in images:
        try:
            out.append((image, decoder.decode(image.path, min_side=min_side).image))
        except ImageError as exc:
            print(f"left out {image.id}: {exc}", file=sys.stderr)
    return out


def classify(session: InferenceSession, backbone: Backbone, images: Sequence[Image.Image]) -> np.ndarray:
    """Class probabilities, float64 (N, 1000)."""
    chunks = []
    for i in range(0, len(images), CLASSIFY_BATCH):
        logits, _features = session.run({"input": backbone.preprocess(images[i : i + CLASSIFY_BATCH])})
        chunks.append(softmax(logits.astype(np.float64)))
    return np.concatenate(chunks)


class LabelRanker:
    """Rolls (1000,) class probabilities up to everyday labels and ranks them (see the module docstring)."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.columns, self.matrix = vocabulary.imagenet_matrix(vocabulary.imagenet_wnids)  # (1000, L)
        self.depth = np.array([vocabulary.depth(c) for c in self.columns])

    def ranked(self, probs: np.ndarray, k: int = TOP) -> list[str]:
        rolled = probs @ self.matrix  # (L,)
        # leading labels by depth (specific first), the rest by score: key (group, -depth or 0, -score)
        keys = [(0, -d, -s) if s >= LEAD else (1, 0, -s) for d, s in zip(self.depth, rolled, strict=True)]
        order = sorted(range(len(self.columns)), key=keys.__getitem__)
        return [self.columns[j] for j in order[:k]]

    def targets(self, words: Sequence[str]) -> set[str]:
        return {found[0] for w in words if (found := self.vocabulary.find(w))}


def judge(ranked: Sequence[str], headline: set[str], vocabulary: Vocabulary) -> tuple[str, bool]:
    """(top-1 verdict: headline / broader / narrower / miss, headline label within the top 3)."""
    first = ranked[0]
    if first in headline:
        verdict = "headline"
    elif any(first in vocabulary.ancestors(h) for h in headline):
        verdict = "broader"
    elif any(h in vocabulary.ancestors(first) for h in headline):
        verdict = "narrower"
    else:
        verdict = "miss"
    return verdict, any(label in headline for label in ranked[:TOP])


def time_backbones(
    sessions: dict[str, InferenceSession], inputs: dict[str, np.ndarray], rounds: int
) -> dict[tuple[str, int], list[list[float]]]:
    """(backbone, batch) -> per round, the ms/image of each timed run. `inputs`: (SPEED_IMAGES, 3, s, s)."""
    for name, session in sessions.items():  # warm-up: arena, kernels and caches for both shapes
        for batch in BATCHES:
            session.run({"input": inputs[name][:batch]})
    times: dict[tuple[str, int], list[list[float]]] = defaultdict(list)
    names = list(sessions)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            for batch in BATCHES:
                runs = []
                for i in range(0, SPEED_IMAGES, batch):
                    x = np.ascontiguousarray(inputs[name][i : i + batch])
                    t = time.perf_counter()
                    sessions[name].run({"input": x})
                    runs.append(1000 * (time.perf_counter() - t) / batch)
                if batch == SPEED_IMAGES:  # one run per round is few: repeat the batch
                    for _ in range(2):
                        t = time.perf_counter()
                        sessions[name].run({"input": inputs[name]})
                        runs.append(1000 * (time.perf_counter() - t) / batch)
                times[(name, batch)].append(runs)
    return times


def accuracy(
    decoded: Sequence[tuple[CorpusImage, Image.Image]],
    probs: dict[str, np.ndarray],
    ranker: LabelRanker,
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """Per group: scored image count, per-backbone hits and top-class agreement. Also, over all photos,
    counts: narrower top-1 labels and the images only one backbone's top class gets right."""
    tallies: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, int] = defaultdict(int)
    wnids = ranker.vocabulary.imagenet_wnids
    for i, (image, _) in enumerate(decoded):
        headline = ranker.targets(image.headline)
        if not headline:
            continue
        classes = {b.name: int(np.argmax(probs[b.name][i])) for b in BACKBONES}
        hit = {n: ranker.vocabulary.from_imagenet(wnids[c])[0] in headline for n, c in classes.items()}
        verdicts = {
            b.name: judge(ranker.ranked(probs[b.name][i]), headline, ranker.vocabulary) for b in BACKBONES
        }
        for group in (group_of(image), *(("all photos",) if image.kind == "photo" else ())):
            t = tallies[group]
            t["n"] += 1
            for name, (verdict, top3) in verdicts.items():
                t[f"{name} class"] += hit[name]
                t[f"{name} headline"] += verdict == "headline"
                t[f"{name} broader"] += verdict == "broader"
                t[f"{name} top3"] += top3
            t["same class"] += classes["Lite0"] == classes["Lite2"]
        if image.kind == "photo":
            for name, (verdict, _) in verdicts.items():
                counts[f"{name} narrower"] += verdict == "narrower"
                counts[f"{name} only"] += hit[name] and not any(v for n, v in hit.items() if n != name)
    return tallies, counts


def render(
    tallies: dict[str, dict[str, float]],
    counts: dict[str, int],
    times: dict[tuple[str, int], list[list[float]]],
    facts: dict[str, str],
) -> str:
    def pct(t: dict[str, float], key: str) -> str:
        return f"{100 * t[key] / t['n']:.0f}%"

    def pair(t: dict[str, float], what: str) -> str:
        return " / ".join(pct(t, f"{b.name} {what}") for b in BACKBONES)

    lines = [
        START,
        "## Labels backbone: EfficientNet-Lite0 vs Lite2 (`benchmarks/backbones.py`)",
        "",
        f"Machine: {facts['machine']}. Load average during the run: {facts['load']}.",
        "",
        "| backbone | input | batch 1 ms/image | batch 8 ms/image | round spread (b1, b8) | ONNX MB |",
        "|---|---|---|---|---|---|",
    ]
    for b in BACKBONES:
        cells = []
        spreads = []
        for batch in BATCHES:
            rounds = times[(b.name, batch)]
            cells.append(f"{statistics.median([v for r in rounds for v in r]):.1f}")
            medians = [statistics.median(r) for r in rounds]
            spreads.append(f"{max(medians) / min(medians):.2f}x")
        lines.append(
            f"| {b.name} | {b.crop} px (resize {b.resize}) | {cells[0]} | {cells[1]} | {', '.join(spreads)} "
            f"| {facts[b.name + ' MB']} |"
        )
    lines += [
        "",
        f"ONNX Runtime {facts['ort']}, {THREADS} intra-op threads, model time only, on {SPEED_IMAGES} corpus "
        f"photos; median of every run over {facts['rounds']} interleaved rounds.",
        "",
        "Labels on the hand-labelled corpus (Lite0 / Lite2; protocol in the script's docstring):",
        "",
        "| images | n | top class's label | top-1 headline | top-1 broader | headline in top 3 "
        "| same top class |",
        "|---|---|---|---|---|---|---|",
    ]
    groups = [*GROUP_ORDER, "all photos", "not photos (art, clip art, renders...)"]
    for group in [g for g in groups if g in tallies]:
        t = tallies[group]
        lines.append(
            f"| {group} | {int(t['n'])} | {pair(t, 'class')} | {pair(t, 'headline')} | {pair(t, 'broader')} "
            f"| {pair(t, 'top3')} | {pct(t, 'same class')} |"
        )
    only = ", ".join(f"{b.name} {counts[b.name + ' only']}" for b in BACKBONES)
    narrow = ", ".join(f"{b.name} {counts[b.name + ' narrower']}" for b in BACKBONES)
    lines += [
        "",
        '"top class\'s label": the first label of the raw top ImageNet class is a headline label (no roll-up,'
        " so independent of how confident the model is). The other columns rank rolled-up labels.",
        f"All photos: images whose top class's label only one backbone gets right: {only}. "
        f"Median top-class probability: {facts['confidence']} (the roll-up ranking's {LEAD} lead threshold "
        "favours the more confident model: a less confident one leads with a broader label more often). "
        f"Top-1 label below a headline label (not counted as right): {narrow}. {facts['left out']}",
        END,
    ]
    return "\n".join(lines)


def cpu_description() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        model = found[0] if found else model
    return f"{model}, {os.cpu_count()} cores shared with other work"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="EfficientNet-Lite0 vs Lite2 as the labels backbone")
    parser.add_argument("--out", type=Path, help="markdown file whose backbones section is (re)written")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    args = parser.parse_args(argv)
    import onnxruntime

    settings = load_settings()
    store = ModelStore(settings.models_dir, Manifest.load(), default_converters())
    paths = {b.name: store.pull(b.artifact) for b in BACKBONES}  # builds Lite2 on first use
    sessions = {name: open_session(path, THREADS) for name, path in paths.items()}
    corpus = load_corpus()
    decoded = decode_all(corpus, max(b.resize for b in BACKBONES))
    load = [os.getloadavg()[0]]
    photos = [im for image, im in decoded if image.kind == "photo"][:SPEED_IMAGES]
    inputs = {b.name: b.preprocess(photos) for b in BACKBONES}
    times = time_backbones(sessions, inputs, args.rounds)
    load.append(os.getloadavg()[0])
    images = [im for _, im in decoded]
    probs = {b.name: classify(sessions[b.name], b, images) for b in BACKBONES}
    tallies, counts = accuracy(decoded, probs, LabelRanker(Vocabulary.load()))
    photo = np.array([image.kind == "photo" for image, _ in decoded])
    facts = {
        "machine": cpu_description(),
        "load": " -> ".join(f"{v:.1f}" for v in load),
        "ort": onnxruntime.__version__,
        "rounds": str(args.rounds),
        "confidence": " / ".join(f"{np.median(probs[b.name][photo].max(axis=1)):.2f}" for b in BACKBONES),
        "left out": f"{len(corpus) - len(decoded)} of {len(corpus)} corpus images refused by the decoder.",
        **{f"{name} MB": f"{path.stat().st_size / 1e6:.1f}" for name, path in paths.items()},
    }
    section = render(tallies, counts, times, facts)
    print(section)
    if args.out:
        from run import write_section  # imports the service stack: only when writing the file

        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
