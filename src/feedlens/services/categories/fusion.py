"""Zero-shot scores: raw evidence per (image, category), read against the workspace's distribution, fused.

Two raw score components are normalised per workspace (normalise.py), because they are the ones a
category's wording can inflate for every image:

    labels   the everyday-label bridge (bridge.py), raised to the WordNet roll-up of the category's concepts
    visual   cosine of the image's content vector (ConSE) with the category's texts (max over them)

Each becomes a z-score against the workspace's running mean and sd of that category's component (shrunk
towards the taxonomy's prior). The log-odds that the image shows the category are then

    bias + a_labels * z_labels + a_visual * z_visual                        (normalised evidence)
         + signals + text + caption + keywords                             (the image's own words, faces)
         + a_gap * lead                                                    (competition)

where `lead` is how far this category's normalised evidence is ahead of (or behind) the image's best other
category's: an image is more likely a category when nothing else fits it better. The face and text
signals are part of what the picture shows (a screen of text is a meme whatever its labels say); words
(a caption, a keyword, the image's own text) are left out of the lead, so a caption that names a second
category adds it without pushing out the first; the lead is capped (LEAD_CAP, LEAD_FLOOR), so words can
outweigh it. The caption, text, keyword and signal terms are not normalised per workspace: they are
absent from most images and speak only where present. The few fitted numbers (`FUSION`) were fitted on
one image domain and checked on the others (benchmarks/categories_quality.py, docs/categories.md); the
word and signal weights are set by reasoning, since no labelled set here has real captions or much text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from feedlens.services.categories.bridge import bridge_scores, label_vector
from feedlens.services.categories.normalise import Moments, Prior, gap, standardise
from feedlens.services.categories.zero_shot import FEATURES, CompiledTaxonomy, Evidence, max_cosine, sigmoid

COMPONENTS = ("labels", "visual")
SOURCES = ("labels", "visual", "signals", "text", "caption", "keywords")  # evidence shown to users
_COLUMN = {name: i for i, name in enumerate(FEATURES)}
# One two standard deviations ahead of the image's best other category has won the race: a larger lead
# says nothing more. One a standard deviation behind is out of it on the picture alone (-2 log-odds at the
# shipped lead weight), and no further penalty is needed: words must be able to bring it back (a meme
# posted with #foodie and a caption about brunch is food as well).
LEAD_CAP = 2.0
LEAD_FLOOR = 1.0


@dataclass(frozen=True, slots=True)
class Fusion:
    """Log-odds weights: `labels`, `visual` per z-score unit; `lead` per unit of lead over the image's best
    other category; `signals` for a full signal; `text`, `caption` per unit of relative cosine; keyword
    weights for a found keyword. `threshold`: the score at which a category is assigned."""

    bias: float
    labels: float
    visual: float
    lead: float
    signals: float = 3.0  # a clear face or a screen of text counts like a strong label
    text: float = 5.0  # OCR text counts half a caption: noisier, and memes say other things than they show
    caption: float = 10.0  # a caption 0.3 nearer a category than the image's mean: +3, a strong label
    keyword_caption: float = 3.0
    keyword_text: float = 1.5
    threshold: float = 0.5


# Fitted on the OpenCV domain (grid search, benchmarks/categories_quality.py) and shipped because it beats
# the ConSE baseline on each of the five domains it never saw (docs/categories.md has every combination).
# The fit gives the ConSE cosine no weight once the label bridge and the lead are in.
FUSION = Fusion(bias=-2.0, labels=1.0, visual=0.0, lead=2.0)
# With a CLIP model (FEEDLENS_CLIP__*) the cosine of the image with the category's texts is what CLIP was
# trained for, and the only say of a category no everyday label covers (colours, a product): it counts
# like the label bridge. Set, not fitted: no CLIP model's weights are available here to measure with.
FUSION_JOINT = Fusion(bias=-2.0, labels=1.0, visual=1.0, lead=2.0)


def fusion_for(compiled: CompiledTaxonomy) -> Fusion:
    """The shipped fusion for a taxonomy: FUSION_JOINT in a CLIP space, else FUSION."""
    return FUSION_JOINT if compiled.joint else FUSION


def flat_prior(categories: int) -> Prior:
    """A prior that says nothing: used when a taxonomy was compiled without a reference library."""
    shape = (len(COMPONENTS), categories)
    return Prior(np.zeros(shape), np.full(shape, 0.1), weight=1.0)


def raw_scores(compiled: CompiledTaxonomy, evidence: Sequence[Evidence], feats: np.ndarray) -> np.ndarray:
    """(N, K, C) raw components of each image for each category; NaN where an image has no content vector.
    `feats` (N, C, F) are the images' zero_shot.features (the WordNet roll-up is read from them)."""
    n, c = len(evidence), len(compiled.names)
    if not n:
        return np.zeros((0, len(COMPONENTS), c))
    concept = feats[:, :, _COLUMN["labels"]]
    if compiled.bridge is not None and compiled.label_index:
        labels = np.stack([label_vector(e.labels, compiled.label_index) for e in evidence])
        bridge = bridge_scores(labels, compiled.bridge, concept)
    else:
        bridge = concept.copy()
    visual = np.stack([max_cosine(e.content, compiled.prototypes) for e in evidence])
    return np.stack([bridge, visual], axis=1)


def terms(fusion: Fusion, z: np.ndarray, feats: np.ndarray, caption_weight: float = 1.0) -> np.ndarray:
    """Log-odds terms (N, C, S) per source of SOURCES, from z-scores (N, K, C) and features (N, C, F)."""
    col = _COLUMN
    out = np.zeros((*feats.shape[:2], len(SOURCES)))
    out[..., 0] = fusion.labels * z[:, 0]
    out[..., 1] = fusion.visual * z[:, 1]
    out[..., 2] = fusion.signals * feats[..., col["signals"]]
    out[..., 3] = fusion.text * feats[..., col["text_rel"]]
    out[..., 4] = caption_weight * fusion.caption * feats[..., col["caption_rel"]]
    out[..., 5] = (
        caption_weight * fusion.keyword_caption * feats[..., col["keyword_caption"]]
        + fusion.keyword_text * feats[..., col["keyword_text"]]
    )
    return out


def zero_shot(
    compiled: CompiledTaxonomy,
    feats: np.ndarray,
    raw: np.ndarray,
    moments: Moments,
    fusion: Fusion = FUSION,
    caption_weight: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, C) and per-source log-odds terms (N, C, S) of images with features (N, C, F) and
    raw components (N, K, C), read against `moments` (the library's, this batch included)."""
    prior = compiled.prior if compiled.prior is not None else flat_prior(len(compiled.names))
    z = standardise(raw, moments, prior)
    parts = terms(fusion, z, feats, caption_weight)
    # the lead is taken over what the picture shows (the normalised components and the face / text
    # signals): a caption or a keyword that names a second category adds it without pushing the first out
    shown = parts[..., :3].sum(axis=-1)
    lead = np.clip(gap(shown), -LEAD_FLOOR, LEAD_CAP) if len(shown) else shown
    logits = fusion.bias + parts.sum(axis=-1) + fusion.lead * lead
    return sigmoid(logits), parts
