"""Face identity figures (issue 20, docs/faces.md): how faceres Similarity separates the same face from
different people on the sample portraits, what a descriptor costs, and search latency in a collection.

    .venv/bin/python benchmarks/face_identity_bench.py --out docs/benchmarks.md [--faces 10000 100000]

1. Pairs: the two sample portraits (astronaut, grace_hopper) each under six edits (mirror, crop, Gaussian
   blur 2 px, rotation 10 degrees, a third of the size, JPEG quality 30); same-face pairs are an image and
   its edits, different-people pairs every astronaut image with every grace_hopper image. This is the
   only identity-labelled material available offline: it measures robustness to edits of ONE photo, not
   recognition across photos of a person (shared/MODELS.md's LFW figures, not re-measured, cover that).
2. Descriptor cost: faceres on one face crop, 1 thread, median of the runs (the `faces` detection before it
   is the DetectFaces cost, measured elsewhere).
3. Search: a SQLite collection of N synthetic unit vectors (random; latency only, no quality), SearchFaces'
   path (`FaceIdentityService.search`) median of 5 queries.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import uuid
from itertools import combinations, product
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from feedlens.analyzers.face_identity import (
    DECODE_SIDE,
    SIMILARITY_THRESHOLD,
    FaceEmbedder,
    cut,
    face_crop,
    similarity,
)
from feedlens.config import load_settings
from feedlens.services.access import AccessService
from feedlens.services.faces.identity import build_identity
from feedlens.services.factory import build_services
from feedlens.storage import face_collections as fc
from feedlens.storage.database import Database

START, END = "<!-- bench:face-identity:start -->", "<!-- bench:face-identity:end -->"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def edits(image: Image.Image) -> dict[str, Image.Image]:
    w, h = image.size
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=30)
    return {
        "original": image,
        "mirror": ImageOps.mirror(image),
        "crop": image.crop((int(0.1 * w), int(0.05 * h), w, int(0.95 * h))),
        "blur": image.filter(ImageFilter.GaussianBlur(2)),
        "rotate 10": image.rotate(10),
        "third size": image.resize((w // 3, h // 3)),
        "jpeg 30": Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"),
    }


def summary(cosines: list[float]) -> str:
    scores = [float(similarity(c)) for c in cosines]
    accepted = sum(score >= SIMILARITY_THRESHOLD for score in scores)
    return (
        f"cosine {min(cosines):.3f}-{max(cosines):.3f}, Similarity {min(scores):.1f}-{max(scores):.1f}, "
        f"{accepted}/{len(scores)} at or above the default threshold {SIMILARITY_THRESHOLD:g}"
    )


def pairs_section(services: object, embedder: FaceEmbedder) -> tuple[list[str], float]:
    from feedlens.services.factory import Services

    assert isinstance(services, Services)
    pipeline = services.pipeline(["faces"])
    vectors: dict[tuple[str, str], np.ndarray] = {}
    crops = []
    for name in ("astronaut.png", "grace_hopper.jpg"):
        for edit, image in edits(Image.open(SAMPLES / name).convert("RGB")).items():
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            data = buffer.getvalue()
            faces = pipeline.analyze_one(data, name).results["faces"].faces  # type: ignore[attr-defined]
            if len(faces) != 1:
                print(f"{name} {edit}: {len(faces)} faces, left out", file=sys.stderr)
                continue
            decoded = services.decoder.decode(data, min_side=DECODE_SIDE).image
            crops.append(cut(decoded, face_crop(faces[0], *decoded.size)))
            vectors[(name, edit)] = embedder.embed(decoded, faces)[0]
    same = [
        float(vectors[a] @ vectors[b])
        for a, b in combinations(vectors, 2)
        if a[0] == b[0] and "original" in (a[1], b[1])
    ]
    astronaut = [k for k in vectors if k[0] == "astronaut.png"]
    hopper = [k for k in vectors if k[0] == "grace_hopper.jpg"]
    different = [float(vectors[a] @ vectors[b]) for a, b in product(astronaut, hopper)]
    per_edit: dict[str, float] = {}
    for (name, edit), vector in vectors.items():
        if edit != "original":
            score = float(similarity(float(vector @ vectors[(name, "original")])))
            per_edit[edit] = min(per_edit.get(edit, 100.0), score)
    timings = []
    one = np.stack(crops[:1])
    for _ in range(10):
        start = time.perf_counter()
        embedder.embed_crops(one)
        timings.append(time.perf_counter() - start)
    lines = [
        f"Same face, original vs an edit ({len(same)} pairs): {summary(same)}.",
        f"Different people ({len(different)} pairs): {summary(different)}.",
        "Lowest Similarity per edit (the worse of the two portraits): "
        + ", ".join(f"{edit} {score:.1f}" for edit, score in per_edit.items())
        + ".",
    ]
    return lines, statistics.median(timings)


def search_latency(services: object, sizes: list[int]) -> list[str]:
    from feedlens.services.factory import Services

    assert isinstance(services, Services)
    rng = np.random.default_rng(0)
    lines = []
    with tempfile.TemporaryDirectory(prefix="feedlens-faces-") as tmp:
        database = Database(f"sqlite:///{tmp}/faces.db")
        database.migrate()
        ws = AccessService(database).create_workspace("bench")
        service = build_identity(database, services.store, 1)
        service.enable(ws, "bench")
        service.create_collection(ws, "bench")
        have = 0
        box = {"Width": 0.1, "Height": 0.1, "Left": 0.0, "Top": 0.0}
        for size in sorted(sizes):
            start = time.perf_counter()
            with database.session() as session:
                collection = fc.get_collection(session, ws, "bench")
                assert collection is not None
                for chunk in range(have, size, 5000):
                    n = min(5000, size - chunk)
                    vectors = rng.standard_normal((n, 1024)).astype(np.float32)
                    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                    session.add_all(
                        fc.FaceVector(
                            face_id=str(uuid.uuid4()), collection_id=collection.id, workspace_id=ws,
                            image_ref="bench", box=box, confidence=99.0, vector=fc.to_bytes(v),
                        )
                        for v in vectors
                    )  # fmt: skip
                    session.flush()
            loaded = time.perf_counter() - start
            have = size
            first, times = 0.0, []
            for k in range(6):
                query = rng.standard_normal(1024).astype(np.float32)
                query /= np.linalg.norm(query)
                start = time.perf_counter()
                service.search(ws, "bench", query, -1.0, 80)
                elapsed = time.perf_counter() - start
                first, times = (elapsed, times) if k == 0 else (first, [*times, elapsed])
            scan = []
            with database.session() as session:
                collection = fc.get_collection(session, ws, "bench")
                assert collection is not None
                for _ in range(3):
                    start = time.perf_counter()
                    fc.best_matches(session, collection.id, query, -1.0, 80, "")
                    scan.append(time.perf_counter() - start)
            lines.append(
                f"| {size:,} | {1000 * statistics.median(times):.0f} ms | {1000 * first:.0f} ms | "
                f"{1000 * statistics.median(scan):.0f} ms | {size * 4 / 1024:.0f} MB | {loaded:.0f} s |"
            )
        database.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--faces", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    services = build_services(load_settings())
    embedder = FaceEmbedder(services.store, 1)
    pairs, per_face = pairs_section(services, embedder)
    search = search_latency(services, args.faces)
    section = "\n".join(
        [
            START,
            "## Face identity (issue 20; benchmarks/face_identity_bench.py)",
            "",
            "Measured on this machine (2 shared CPU cores). The sample portraits are the only "
            "identity-labelled faces available offline: these pairs measure robustness to edits of one "
            "photo, not recognition across photos of a person; for that, shared/MODELS.md records faceres "
            "on 100 LFW identities (AUC 0.981, equal-error rate 8%, 80% true matches at 1% false matches), "
            "not re-measured here.",
            "",
            *[f"- {line}" for line in pairs],
            f"- faceres per face crop, 1 thread: {1000 * per_face:.0f} ms (median of 10).",
            "",
            "SearchFaces / SearchFacesByImage over one collection (exact, synthetic unit vectors, SQLite, "
            "median of 5 searches after the first):",
            "",
            "| faces | search (cached copy) | first search (loads the copy) | scan without the copy | "
            "vectors | adding the faces |",
            "|---|---|---|---|---|---|",
            *search,
            END,
        ]
    )
    print(section)
    if args.out:
        sys.path.insert(0, str(Path(__file__).parent))
        from run import write_section

        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
