"""`safety`: unsafe-content verdict from the shared NudeNet regions (no model run of its own), counting only
regions where faces, objects or poses put a person (analyzers/safety_evidence.py), when those ran."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.analyzers.body_regions import MODEL_SIZE
from feedlens.analyzers.safety_evidence import PersonEvidence
from feedlens.core.results.faces import FacesResult
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.results.pose import PoseResult
from feedlens.core.results.regions import BodyRegionsResult
from feedlens.core.results.safety import Category, SafetyRegion, SafetyResult, Verdict

# NudeNet class -> (level-1 category, level-2 type). Classes not listed (faces, feet, armpits, covered
# belly) are not moderation signals. Exposed male chest and belly count as suggestive, like swimwear in
# the big cloud taxonomies; raise FEEDLENS_SAFETY_SUGGESTIVE_THRESHOLD to ignore them in practice.
TAXONOMY: MappingProxyType[str, tuple[Category, str]] = MappingProxyType(
    {
        "FEMALE_GENITALIA_EXPOSED": (Category.EXPLICIT_NUDITY, "exposed_genitalia"),
        "MALE_GENITALIA_EXPOSED": (Category.EXPLICIT_NUDITY, "exposed_genitalia"),
        "ANUS_EXPOSED": (Category.EXPLICIT_NUDITY, "exposed_anus"),
        "FEMALE_BREAST_EXPOSED": (Category.EXPLICIT_NUDITY, "exposed_female_breast"),
        "BUTTOCKS_EXPOSED": (Category.EXPLICIT_NUDITY, "exposed_buttocks"),
        "FEMALE_GENITALIA_COVERED": (Category.SUGGESTIVE, "covered_genitalia"),
        "ANUS_COVERED": (Category.SUGGESTIVE, "covered_anus"),
        "FEMALE_BREAST_COVERED": (Category.SUGGESTIVE, "covered_female_breast"),
        "BUTTOCKS_COVERED": (Category.SUGGESTIVE, "covered_buttocks"),
        "MALE_BREAST_EXPOSED": (Category.SUGGESTIVE, "exposed_male_chest"),
        "BELLY_EXPOSED": (Category.SUGGESTIVE, "exposed_belly"),
    }
)


class SafetyAnalyzer(Analyzer[None, SafetyResult]):
    name = "safety"
    code_version = "safety-2"
    artifacts = ("nudenet-320n-onnx",)
    input_size = MODEL_SIZE
    result_type = SafetyResult
    depends_on = ("body_regions",)
    uses = ("faces", "objects", "pose")  # person evidence, whichever of them run

    def _load(self) -> None:
        pass  # the detector belongs to body_regions

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> None:
        return None

    def _forward(self, batch: None) -> None:
        return None

    def postprocess(
        self, outputs: None, images: Sequence[Image.Image], upstream: Upstream
    ) -> list[SafetyResult]:
        rows = zip(
            upstream["body_regions"], upstream["faces"], upstream["objects"], upstream["pose"], strict=True
        )
        if not self.settings.safety_person_evidence:  # the detector alone decides
            return [self.judge(regions) for regions, *_ in rows]
        return [
            self.judge(
                regions,
                PersonEvidence(
                    faces if isinstance(faces, FacesResult) else None,
                    objects if isinstance(objects, ObjectsResult) else None,
                    pose if isinstance(pose, PoseResult) else None,
                ),
            )
            for regions, faces, objects, pose in rows
        ]

    def judge(self, found: BodyRegionsResult, evidence: PersonEvidence | None = None) -> SafetyResult:
        """Map detector regions onto the taxonomy, set aside those with no person near (when `evidence`
        holds any source), and decide the verdict with the configured thresholds."""
        evidence = evidence or PersonEvidence()
        floor = self.settings.safety_region_min_score
        candidates = [
            SafetyRegion(
                category=cat,
                type=kind,
                detector_class=r.kind,
                score=r.score,
                box=r.box,
                person=evidence.sources_near(r.box),
            )
            for r in found.regions
            if r.kind in TAXONOMY and r.score >= floor
            for cat, kind in (TAXONOMY[r.kind],)
        ]
        checked = evidence.checked
        regions = tuple(r for r in candidates if r.person or not checked)
        set_aside = tuple(r for r in candidates if checked and not r.person)
        scores = {c.value: max((r.score for r in regions if r.category is c), default=0.0) for c in Category}
        if scores[Category.EXPLICIT_NUDITY] >= self.settings.safety_explicit_threshold:
            verdict = Verdict.EXPLICIT
        elif max(scores.values()) >= self.settings.safety_suggestive_threshold:
            # Explicit regions below the explicit threshold still make an image at least suggestive.
            verdict = Verdict.SUGGESTIVE
        else:
            verdict = Verdict.SAFE
        return SafetyResult(
            verdict=verdict, scores=scores, regions=regions, set_aside=set_aside, person_checked=checked
        )
