"""Where the `faces` analyzer runs BlazeFace on tiles: only where people are seen who may be small.

Why (benchmarks/face_detectors.py, docs/benchmarks.md "faces"): the 2x2 tiles reach faces half the size the
whole-image pass reaches, but cost 4 more BlazeFace runs plus a Face Mesh check of each candidate they
add, on every large image, most of which show no small person. A tile is run only when it overlaps
evidence of a person whose face may be below the whole-image pass's reach:

- a face candidate of the whole-image pass or NudeNet that is itself small (people stand in groups: their
  neighbours' faces may be smaller still), grown by `FACE_NEIGHBOURHOOD` face widths on every side;
- a person box of `objects` or `pose` (when they run in the pipeline), or a NudeNet body region, no taller
  than a person whose face may be out of reach, grown by `PERSON_MARGIN` of its size.

Floating heads without a body or a larger neighbour (pasted portraits) get no tiles; the
`faces_tile_everywhere` setting (redaction) tiles every large image as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from feedlens.core.results import Box
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.results.pose import PoseResult
from feedlens.core.results.regions import FACE_CLASSES, BodyRegionsResult

# A found face up to this size (/ longer side) may have neighbours half its size, which the whole-image
# pass misses (it finds 7/24 faces at 0.0375, 17/24 at 0.05, all at 0.075). Larger faces (portraits,
# selfies) start no tiles.
SMALL_FACE = 0.1
FACE_NEIGHBOURHOOD = 3.0  # face widths around a small face where its neighbours' faces may be
SMALL_PERSON = 0.6  # person box height / longer side below which the face may be out of reach (~1/8)
SMALL_REGION = 0.3  # NudeNet body-region side / longer side below which its person may be small
PERSON_MARGIN = 0.25  # share of a person box added on every side (heads stick out of pose/region boxes)
PERSON_MIN_SCORE = 0.25  # the objects analyzer's reporting floor (as analyzers/safety_evidence.py)

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels


def _rect(box: Box, width: int, height: int, grow_x: float, grow_y: float) -> Rect:
    """A normalised box in pixels, grown by `grow_x` / `grow_y` of its own width / height on each side."""
    x0, y0, x1, y1 = box.x0 * width, box.y0 * height, box.x1 * width, box.y1 * height
    dx, dy = (x1 - x0) * grow_x, (y1 - y0) * grow_y
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def _longest(box: Box, width: int, height: int) -> tuple[float, float]:
    """(width, height) of a normalised box in pixels."""
    return (box.x1 - box.x0) * width, (box.y1 - box.y0) * height


def person_boxes(
    objects: object, pose: object, regions: object, region_floor: float
) -> list[tuple[Box, bool]]:
    """Every person-ish box other analyzers report for one image (None or a wrong type counts as nothing):
    (box, is a body-part region) for objects' Person boxes, pose's people and NudeNet's body regions
    (other than faces) scored at least `region_floor`."""
    out: list[tuple[Box, bool]] = []
    if isinstance(objects, ObjectsResult):
        out += [(o.box, False) for o in objects.objects if o.id == "person" and o.score >= PERSON_MIN_SCORE]
    if isinstance(pose, PoseResult):
        out += [(p.box, False) for p in pose.people]
    if isinstance(regions, BodyRegionsResult):
        out += [
            (r.box, True) for r in regions.regions if r.kind not in FACE_CLASSES and r.score >= region_floor
        ]
    return out


def people_areas(
    faces: Iterable[Box], people: Iterable[tuple[Box, bool]], width: int, height: int
) -> list[Rect]:
    """The pixel areas of a `width` x `height` image where small faces may be: around small face
    candidates, and around people (or body regions) small enough for their faces to be out of reach."""
    longer = max(width, height)
    areas: list[Rect] = []
    for box in faces:
        w, h = _longest(box, width, height)
        if max(w, h) <= SMALL_FACE * longer:
            areas.append(_rect(box, width, height, FACE_NEIGHBOURHOOD, FACE_NEIGHBOURHOOD))
    for box, part in people:
        w, h = _longest(box, width, height)
        if (max(w, h) <= SMALL_REGION * longer) if part else (h <= SMALL_PERSON * longer):
            areas.append(_rect(box, width, height, PERSON_MARGIN, PERSON_MARGIN))
    return areas


def tiles_near(tiles: Sequence[tuple[int, int, int, int]], areas: Sequence[Rect]) -> list[int]:
    """Indices of the pixel `tiles` (x0, y0, x1, y1) that overlap any of the `areas`."""
    return [
        k
        for k, (x0, y0, x1, y1) in enumerate(tiles)
        if any(a[0] < x1 and x0 < a[2] and a[1] < y1 and y0 < a[3] for a in areas)
    ]
