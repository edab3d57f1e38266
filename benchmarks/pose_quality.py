"""Pose quality (issue "pose"): people counts, keypoint sanity and activity cues of the `pose` analyzer.

Data: the labelled corpus (tests/support/corpus.py: 645 images from Debian and PyPI packages, each with a
hand count of people: 0, 1, 2 or "3 or more"), decoded as the pipeline decodes them.

1. People count: the analyzer's count (capped at 3) against the corpus's `people`; recall of "has a
   person"; images without people that got one. Swept over the input's longer side (model cost grows
   with its area) and the person score floor, on one analyzer instance.
2. Keypoint sanity on the frontal portraits: nose between the eyes, eyes above the nose, shoulders below
   the eyes and on the right sides, nose and eyes inside the hand-checked face box where there is one.
3. Activity cues: image-level labels given by looking at each corpus image with people (`ACTIVITY_LABELS`
   below; a cue is true when some person in the image shows it, "unsure" when it cannot be told), plus
   every image without people as a negative for every cue. A cue fires when some person scores >= 0.5.
   Lying down has no real example here: whole-body standing people turned 90 degrees either way stand in
   for it (reported apart, as such).
4. Cost: ms per image of the whole analyzer (pre-processing, model, post-processing) and of the model.

Run: `benchmarks/pose_quality.py --out docs/benchmarks.md` (about 10-25 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from run import write_section
from tests.support.corpus import MANY, CorpusImage, load_corpus

from feedlens.analyzers.pose import (
    DEFAULT_SIDE,
    PoseAnalyzer,
    fit,
)
from feedlens.config import load_settings
from feedlens.core.errors import ImageError
from feedlens.core.results.pose import Activity, PoseResult
from feedlens.images import ImageDecoder
from feedlens.services.factory import build_services

START, END = "<!-- bench:pose:start -->", "<!-- bench:pose:end -->"
SIDES = (256, 320, 384, 512)
FLOORS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
CUE_THRESHOLD = 0.5
_DEFAULTS = load_settings()
DEFAULT_MIN_SCORE = _DEFAULTS.pose_min_score
DEFAULT_KEYPOINT_MIN_SCORE = _DEFAULTS.pose_keypoint_min_score
S, SIT, LIE, ARMS, RUN = (a.value for a in Activity)
# Image-level activity labels, given by looking at each corpus image with people: (true, unsure). Cues in
# neither are false. Tiny figures count (a monument photo's walkers are standing people).
ACTIVITY_LABELS: dict[str, tuple[set[str], set[str]]] = {
    "gcompris/details-eglise-dauvers-sur-oise-background": ({S}, set()),
    "gcompris/details-gogh4-background": ({S, SIT}, set()),
    "gcompris/details-portraitofperetanguy-background": ({SIT}, set()),
    "gcompris/details-van-gogh-the-night-cafe-background": ({S, SIT}, set()),
    "gcompris/details-vincentvangogh0013-background": ({S}, set()),
    "gcompris/explore-monuments-berlincathedral": ({S}, {SIT}),
    "gcompris/explore-monuments-brandenburggate": ({S}, {SIT}),
    "gcompris/explore-monuments-castleclinton": ({S}, {SIT}),
    "gcompris/explore-monuments-chichenitza": ({S}, {SIT}),
    "gcompris/explore-monuments-colosseum": ({S}, {SIT}),
    "gcompris/explore-monuments-gatewayofindia": ({S}, {SIT}),
    "gcompris/explore-monuments-mysorepalace": ({S}, {SIT}),
    "gcompris/explore-monuments-palaisdespapes": ({S}, {SIT}),
    "gcompris/explore-monuments-tajmahal": ({S}, {SIT}),
    "gcompris/explore-world-music-australia": ({SIT}, set()),
    "gcompris/explore-world-music-ireland": ({SIT}, set()),
    "gcompris/explore-world-music-italy": ({S}, {SIT}),
    "gcompris/explore-world-music-japan": ({S}, {SIT}),
    "gcompris/explore-world-music-mexico": (set(), {S, SIT}),  # upper bodies only
    "gcompris/explore-world-music-orchestra": ({S, SIT}, set()),  # seated players, a standing conductor
    "gcompris/lang-brother": (set(), {S, SIT}),
    "gcompris/lang-family": ({S}, set()),
    "gcompris/lang-mother": ({S}, set()),
    "gcompris/lang-woman": ({S}, set()),
    "gcompris/louis-braille-louis": (set(), {S, SIT}),
    "gimp/enhance-red-eye-before": (set(), {S, SIT}),
    "gimp/taj-orig": ({S}, set()),
    "matplotlib/grace-hopper": (set(), {S, SIT}),
    "openclipart/woman-01": ({S}, set()),
    "opencv/basketball1": ({S}, {ARMS}),  # ball held at head height
    "opencv/html-227943776-1": (set(), {S, SIT}),
    "opencv/html-230501201-1": (set(), {S, SIT}),
    "opencv/html-background-subtraction-tutorial-frame": ({S}, set()),
    "opencv/html-cascade-classifier-tutorial-result-haar": (set(), {S, SIT}),
    "opencv/html-face-swapped": (set(), {S, SIT}),
    "opencv/html-messiup": ({RUN}, set()),
    "opencv/html-newspaper": (set(), {S, SIT}),
    "opencv/html-template-matching-original-image": ({SIT}, set()),  # two people in a glider's cockpit
    "opencv/messi5": ({RUN}, {ARMS, SIT}),  # a kick mid-run; arms out; seated crowd behind
    "opencv/scenetext01": ({S}, set()),
    "opencv/scenetext06": (set(), {S, SIT}),
    "plasma/autumn": (set(), {S, RUN}),
    "skimage/astronaut": (set(), {S, SIT}),
    "skimage/camera": ({S}, set()),
    "tuxpaint/fireman200b": ({S}, set()),
    "tuxpaint/fireman240a": ({S}, set()),
    "ultralytics/bus": ({S}, set()),
    "ultralytics/zidane": ({S}, set()),
}
# Whole-body standing people, turned 90 degrees both ways: the stand-in for lying down.
TURNED = ("opencv/basketball1", "tuxpaint/fireman200b", "tuxpaint/fireman240a", "ultralytics/bus",
          "gcompris/lang-woman", "gcompris/lang-family", "openclipart/woman-01",
          "gcompris/details-vincentvangogh0013-background")  # fmt: skip
# Frontal portraits: (corpus id, hand-checked face box in px or None).
PORTRAITS = {
    "skimage/astronaut": (173, 82, 274, 180),
    "matplotlib/grace-hopper": (169, 142, 359, 341),
    "opencv/html-227943776-1": None,
    "opencv/html-230501201-1": None,
    "opencv/html-face-swapped": None,
    "gcompris/louis-braille-louis": None,
    "gcompris/details-portraitofperetanguy-background": None,
}


@dataclass
class Run:
    """One pass of the analyzer (at the lowest floor) over the corpus: results by id."""

    side: int
    results: dict[str, PoseResult]

    def count(self, image_id: str, floor: float) -> int:
        return min(MANY, sum(p.score >= floor for p in self.results[image_id].people))


def decode_all(corpus: Sequence[CorpusImage], side: int) -> tuple[dict[str, Image.Image], int]:
    decoder = ImageDecoder(load_settings().decode)
    images, skipped = {}, 0
    for item in corpus:
        try:
            images[item.id] = decoder.decode(item.path, min_side=side).image
        except ImageError:
            skipped += 1
    return images, skipped


def run_side(pose: PoseAnalyzer, images: dict[str, Image.Image], side: int) -> Run:
    pose.side, pose.min_score = side, min(FLOORS)
    ids = list(images)
    found = pose([images[i] for i in ids])  # batches of settings.batch_size, as the pipeline runs it
    return Run(side, dict(zip(ids, found, strict=True)))


def timings(
    pose: PoseAnalyzer, images: Sequence[Image.Image], sides: Sequence[int], rounds: int = 3
) -> dict[str, str]:
    """Median ms per image, of the whole analyzer and of the model alone, on the same images at each side.

    Sides are interleaved round by round, so a burst of load from elsewhere hits every side alike.
    """
    whole: dict[int, list[float]] = {side: [] for side in sides}
    model: dict[int, list[float]] = {side: [] for side in sides}
    for _ in range(rounds):
        for side in sides:
            pose.side = side
            for image in images:
                began = time.perf_counter()
                pose([image])
                whole[side].append(1000 * (time.perf_counter() - began))
                pixels = fit(image, side).pixels
                began = time.perf_counter()
                pose._session.run({"input": pixels})
                model[side].append(1000 * (time.perf_counter() - began))
    out = {f"whole{side}": f"{statistics.median(whole[side]):.0f}" for side in sides}
    return out | {f"model{side}": f"{statistics.median(model[side]):.0f}" for side in sides}


def count_row(run: Run, corpus: Sequence[CorpusImage], floor: float, kinds: set[str] | None) -> list[str]:
    items = [c for c in corpus if c.id in run.results and (kinds is None or c.kind in kinds)]
    with_people = [c for c in items if c.people > 0]
    without = [c for c in items if c.people == 0]
    exact = sum(run.count(c.id, floor) == c.people for c in items)
    found = sum(run.count(c.id, floor) > 0 for c in with_people)
    exact_people = sum(run.count(c.id, floor) == c.people for c in with_people)
    false = sum(run.count(c.id, floor) > 0 for c in without)
    return [
        f"{exact / len(items):.3f}",
        f"{exact_people}/{len(with_people)}",
        f"{found / len(with_people):.2f} ({found}/{len(with_people)})",
        f"{false}/{len(without)}",
    ]


def confusion(run: Run, corpus: Sequence[CorpusImage], floor: float) -> list[str]:
    lines = ["| labelled \\ counted | 0 | 1 | 2 | 3+ |", "|---|---|---|---|---|"]
    for truth in range(MANY + 1):
        row = [0] * (MANY + 1)
        for c in corpus:
            if c.id in run.results and c.people == truth:
                row[run.count(c.id, floor)] += 1
        lines.append(f"| {truth if truth < MANY else '3+'} | " + " | ".join(map(str, row)) + " |")
    return lines


def fired(result: PoseResult, floor: float) -> set[str]:
    """The cues some person scored at least `floor` shows (score >= CUE_THRESHOLD)."""
    return {a for p in result.people if p.score >= floor for a in p.doing(CUE_THRESHOLD)}


def cue_table(run: Run, corpus: Sequence[CorpusImage], floor: float) -> list[str]:
    lines = [
        "| cue | images it fired on | right | wrong | on unsure images (left out) | precision | recall "
        "| wrong on |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cue in Activity:
        right, wrong, unsure, positives = 0, [], 0, 0
        for c in corpus:
            if c.id not in run.results or (c.people > 0 and c.id not in ACTIVITY_LABELS):
                continue
            truth, doubt = ACTIVITY_LABELS.get(c.id, (set(), set()))
            fires = cue.value in fired(run.results[c.id], floor)
            if cue.value in doubt:
                unsure += fires
                continue
            positives += cue.value in truth
            right += fires and cue.value in truth
            if fires and cue.value not in truth:
                wrong.append(c.id + ("" if c.people else " (no people)"))
        fired_on = right + len(wrong)
        precision = f"{right / fired_on:.2f}" if fired_on else "-"
        recall = f"{right}/{positives}" if positives else "no example"
        lines.append(
            f"| {cue.value} | {fired_on} | {right} | {len(wrong)} | {unsure} | {precision} | {recall} "
            f"| {', '.join(wrong) or '-'} |"
        )
    return lines


def turned_rows(pose: PoseAnalyzer, images: dict[str, Image.Image]) -> list[str]:
    """The whole-body standing people turned 90 degrees each way: how often lying / standing fire."""
    found = lying = standing = total = 0
    for image_id in TURNED:
        for turn in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270):
            [result] = pose([images[image_id].transpose(turn)])
            total += 1
            found += result.count > 0
            cues = fired(result, pose.min_score)
            lying += LIE in cues
            standing += S in cues
    return [
        "| turned images | with a person found | lying_down fired | standing fired (wrong) |",
        "|---|---|---|---|",
        f"| {total} ({len(TURNED)} photos x 2 turns) | {found} | {lying} | {standing} |",
    ]


def portrait_rows(run: Run, corpus: Sequence[CorpusImage], floor: float) -> list[str]:
    by_id = {c.id: c for c in corpus}
    lines = [
        "| portrait | person score | nose between the eyes | eyes above the nose | shoulders below the eyes, "
        "left on the right | nose and eyes in the face box |",
        "|---|---|---|---|---|---|",
    ]
    for image_id, face in PORTRAITS.items():
        result = run.results.get(image_id)
        people = [p for p in result.people if p.score >= floor] if result else []
        if not people:
            lines.append(f"| {image_id} | not found | | | | |")
            continue
        p = people[0]
        k = {name: p.keypoint(name) for name in ("nose", "left_eye", "right_eye", "left_shoulder",
                                                   "right_shoulder")}  # fmt: skip
        seen = all(v.score >= DEFAULT_KEYPOINT_MIN_SCORE for v in k.values())
        between = k["right_eye"].x < k["nose"].x < k["left_eye"].x
        above = max(k["left_eye"].y, k["right_eye"].y) < k["nose"].y
        eyes_y = max(k["left_eye"].y, k["right_eye"].y)
        shoulders = (min(k["left_shoulder"].y, k["right_shoulder"].y) > eyes_y
                     and k["left_shoulder"].x > k["right_shoulder"].x)  # fmt: skip
        inside = "-"
        if face is not None:
            w, h = Image.open(by_id[image_id].path).size
            x0, y0, x1, y1 = face[0] / w, face[1] / h, face[2] / w, face[3] / h
            inside = yes(
                all(x0 <= k[n].x <= x1 and y0 <= k[n].y <= y1 for n in ("nose", "left_eye", "right_eye"))
            )
        note = "" if seen else " (some of these points scored under the keypoint floor)"
        lines.append(f"| {image_id} | {p.score:.2f}{note} | {yes(between)} | {yes(above)} | {yes(shoulders)} "
                     f"| {inside} |")  # fmt: skip
    return lines


def yes(value: bool) -> str:
    return "yes" if value else "**no**"


def section(
    runs: dict[int, Run], corpus: Sequence[CorpusImage], pose: PoseAnalyzer, notes: dict[str, str]
) -> str:
    chosen, floor = runs[DEFAULT_SIDE], DEFAULT_MIN_SCORE
    head = (
        "| floor | count exact, all images | exact on images with people | has-a-person recall "
        "| images without people given one |"
    )
    rule = "|---|---|---|---|---|"
    lines = [
        START,
        "## Pose: people, keypoints, activity cues (`pose`)",
        "",
        f"MoveNet MultiPose (`movenet-multipose-onnx`), {notes['machine']}. Corpus: {notes['corpus']}. "
        'Counts are capped at 3 ("3 or more", as labelled). Figures are measured, not asserted.',
        "",
        f"### Input size (longer side; aspect kept, padded to multiples of 32), person floor {floor}",
        "",
        "| longer side | count exact, all | exact on images with people | has-a-person recall "
        "| images without people given one | analyzer ms/image | model ms/image |",
        "|---|---|---|---|---|---|---|",
    ]
    for side, run in runs.items():
        cells = count_row(run, corpus, floor, None)
        lines.append(
            f"| {side} | " + " | ".join(cells) + f" | {notes[f'whole{side}']} | {notes[f'model{side}']} |"
        )
    lines += [
        "",
        f"### Person score floor at longer side {DEFAULT_SIDE}",
        "",
        head,
        rule,
    ]
    for f in FLOORS:
        lines.append(f"| {f} | " + " | ".join(count_row(chosen, corpus, f, None)) + " |")
    lines += ["", "Photos only (`kind: photo`):", "", head, rule]
    for f in FLOORS:
        lines.append(f"| {f} | " + " | ".join(count_row(chosen, corpus, f, {"photo"})) + " |")
    missed = [
        c.id for c in corpus if c.people > 0 and c.id in chosen.results and chosen.count(c.id, floor) == 0
    ]
    lines += [
        "",
        f"People counted at side {DEFAULT_SIDE}, floor {floor}:",
        "",
        *confusion(chosen, corpus, floor),
    ]
    lines += ["", f"Images with people where none was found ({len(missed)}): " + ", ".join(missed) + "."]
    lines += ["", "### Keypoint sanity on the frontal portraits", "", *portrait_rows(chosen, corpus, floor)]
    lines += [
        "",
        f"### Activity cues (a cue fires at >= {CUE_THRESHOLD}; people scored >= {floor})",
        "",
        f"Labelled set: {notes['labelled']}.",
        "",
        *cue_table(chosen, corpus, floor),
        "",
        "Lying down, stand-in: whole-body standing people turned 90 degrees (not real lying people):",
        "",
        *notes["turned"].splitlines(),
        "",
        notes["summary"],
        END,
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="pose analyzer quality")
    parser.add_argument("--out", type=Path, help="markdown file whose pose section is (re)written")
    parser.add_argument("--sides", default=",".join(map(str, SIDES)), help="longer sides to compare")
    args = parser.parse_args(argv)
    sides = sorted({int(s) for s in args.sides.split(",")} | {DEFAULT_SIDE})
    settings = load_settings()
    pose = PoseAnalyzer(build_services(settings).store, settings)
    corpus = load_corpus()
    images, skipped = decode_all(corpus, max(sides))
    runs = {side: run_side(pose, images, side) for side in sides}
    sample = [images[c.id] for c in corpus if c.id in images][:: max(1, len(images) // 60)]
    notes = timings(pose, sample, sides)
    pose.side, pose.min_score = DEFAULT_SIDE, DEFAULT_MIN_SCORE
    labelled = sum(c.id in ACTIVITY_LABELS for c in corpus)
    negatives = sum(c.people == 0 for c in corpus if c.id in images)
    notes |= {
        "machine": f"{platform.processor() or platform.machine()}, {settings.threads_per_worker} threads, "
        f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f} at the end (a shared machine: "
        "take the ms as rough)",
        "corpus": f"{len(images)} images decoded ({skipped} refused by the decoder), "
        f"{sum(c.people > 0 for c in corpus if c.id in images)} with people",
        "labelled": f"{labelled} corpus images with people, labelled by looking at each (image level: a cue "
        "is true when some person shows it; unsure when it cannot be told, e.g. standing or sitting in a "
        f"head-and-shoulders portrait), and the {negatives} images without people as negatives for every cue",
        "turned": "\n".join(turned_rows(pose, images)),
        "summary": f"ms: medians over {len(sample)} corpus images x 3 interleaved rounds, one image per call "
        "(the converted graph fixes the batch at 1); the analyzer's include resizing the decoded image and "
        "the keypoint rules.",
    }
    text = section(runs, corpus, pose, notes)
    print(text)
    if args.out:
        write_section(args.out, text, START, END)


if __name__ == "__main__":
    main()
