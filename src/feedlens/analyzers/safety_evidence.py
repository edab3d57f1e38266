"""Is there a person where the moderation detector flagged skin? Pure geometry over other analyzers' results.

NudeNet (body_regions) finds "exposed buttocks" in a colour wheel and "covered breast" in a CT scan: it
was trained on photos of people and never learned that a picture may hold no body at all. Before a region
counts towards an explicit or suggestive verdict, one of three independent sources must put a person there:

- objects: a Person box (the COCO detector) covering most of the region;
- pose: a person's box covering most of the region, or two or more of their body keypoints in or next to
  it (MoveNet: a different model trained on a different task);
- faces: a face above the region, within the zone a body hangs from a head: up to three face widths to
  either side and eight face heights below (a close-up where the body detectors see only skin).

All boxes are normalised (0..1 per axis); the face zone is measured in the face's own size per axis, so the
image's aspect ratio does not matter. Constants were set from body proportions, not fitted to any image
set; docs/benchmarks.md ("Moderation evidence") gives the false positives they remove and what they cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from feedlens.core.results.faces import FacesResult
from feedlens.core.results.geometry import Box
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.results.pose import PoseResult

COVERED = 0.5  # share of the region's area a person box must cover
PERSON_MARGIN = 0.1  # person boxes grown by this share of their size (limbs at the box edge)
OBJECT_MIN_SCORE = 0.25  # the objects analyzer's reporting floor: a Person it reports
KEYPOINT_MIN_SCORE = 0.3
KEYPOINTS_NEEDED = 2
KEYPOINT_REACH = 0.5  # keypoints within half the region's size of its edges count as "in or next to it"
FACE_SIDE_REACH = 3.0  # face widths to either side of the face
FACE_DOWN_REACH = 8.0  # face heights below the face's top (a standing body is ~7.5 heads tall)


@dataclass(frozen=True, slots=True)
class PersonEvidence:
    """The results person evidence is sought in; None where that analyzer did not run."""

    faces: FacesResult | None = None
    objects: ObjectsResult | None = None
    pose: PoseResult | None = None

    @property
    def checked(self) -> bool:
        """Whether any source ran: without one, nothing can be said either way."""
        return any(r is not None for r in (self.faces, self.objects, self.pose))

    def sources_near(self, region: Box) -> tuple[str, ...]:
        """The sources that put a person at `region`, in a fixed order ("objects", "pose", "faces")."""
        found = []
        if self.objects is not None and _objects_cover(self.objects, region):
            found.append("objects")
        if self.pose is not None and _pose_near(self.pose, region):
            found.append("pose")
        if self.faces is not None and _face_above(self.faces, region):
            found.append("faces")
        return tuple(found)


def grow(box: Box, share_x: float, share_y: float | None = None) -> tuple[float, float, float, float]:
    """The box grown by `share` of its width/height on each side (may extend past 0..1)."""
    dx = (box.x1 - box.x0) * share_x
    dy = (box.y1 - box.y0) * (share_x if share_y is None else share_y)
    return box.x0 - dx, box.y0 - dy, box.x1 + dx, box.y1 + dy


def covered_share(region: Box, by: tuple[float, float, float, float]) -> float:
    """Share of `region`'s area inside the rectangle `by` (x0, y0, x1, y1)."""
    ix = max(0.0, min(region.x1, by[2]) - max(region.x0, by[0]))
    iy = max(0.0, min(region.y1, by[3]) - max(region.y0, by[1]))
    area = region.area
    return ix * iy / area if area > 0 else 0.0


def _objects_cover(objects: ObjectsResult, region: Box) -> bool:
    people = (o.box for o in objects.objects if o.id == "person" and o.score >= OBJECT_MIN_SCORE)
    return _any_covers(people, region)


def _any_covers(boxes: Iterable[Box], region: Box) -> bool:
    return any(covered_share(region, grow(b, PERSON_MARGIN)) >= COVERED for b in boxes)


def _pose_near(pose: PoseResult, region: Box) -> bool:
    if _any_covers((p.box for p in pose.people), region):
        return True
    x0, y0, x1, y1 = grow(region, KEYPOINT_REACH)
    for person in pose.people:
        near = sum(1 for k in person.visible(KEYPOINT_MIN_SCORE) if x0 <= k.x <= x1 and y0 <= k.y <= y1)
        if near >= KEYPOINTS_NEEDED:
            return True
    return False


def _face_above(faces: FacesResult, region: Box) -> bool:
    """A face whose body zone (FACE_SIDE_REACH widths aside, FACE_DOWN_REACH heights down) holds the
    region's centre."""
    cx, cy = (region.x0 + region.x1) / 2, (region.y0 + region.y1) / 2
    for face in faces.faces:
        box = face.box
        w, h = box.x1 - box.x0, box.y1 - box.y0
        if box.x0 - FACE_SIDE_REACH * w <= cx <= box.x1 + FACE_SIDE_REACH * w and (
            box.y0 <= cy <= box.y0 + FACE_DOWN_REACH * h
        ):
            return True
    return False
