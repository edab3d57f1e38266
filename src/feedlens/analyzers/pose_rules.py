"""Pure rules over one person's 17 keypoints: cleaning (left/right swaps, impossible points), activity cues.

Every function takes `points`, a (17, 3) float array of (x, y, score) rows in MoveNet's keypoint order
(`feedlens.core.results.pose.KEYPOINTS`), with x and y in **isotropic** units (pixels of the image, y
pointing down), so angles are real angles. A keypoint counts as visible when its score is at least
`min_score`.

What each cue looks at (scores are soft ramps between the thresholds below, multiplied together):

- torso tilt: the angle of the hip-centre -> shoulder-centre line from straight up (0 upright, 90 flat).
- `standing`: torso upright (tilt under 25-45 deg), the legs straight (hip-knee-ankle angle over 130-160 deg)
  and vertical (hip -> knee within 25-50 deg of straight down), thighs not foreshortened (hip -> knee at
  least 0.45-0.65 of the torso length; a thigh pointing at the camera is a seated person seen from the
  front), the thighs not in a stride (under 35-60 deg apart when both show). Needs a shoulder, a hip and a
  knee; the ankle when visible.
- `sitting`: torso upright-ish (tilt under 35-60 deg) and every visible thigh bent forward at the hip
  (shoulder-hip-knee angle under 140-115 deg), or near level (hip -> knee over 45-65 deg from straight
  down), or foreshortened (under 0.65-0.45 of the torso length); not in a stride (see `running_jumping`:
  a lunge has one level and one foreshortened thigh too). Needs a shoulder, a hip and a knee.
- `lying_down`: the torso near horizontal (tilt over 45-70 deg) and, when a knee or ankle is visible, the
  legs too (hip -> knee/ankle over 40-65 deg from straight down; a person bent over stands on vertical
  legs). Needs a shoulder and a hip.
- `arms_raised`: a wrist above its shoulder by 0.3-0.6 of the torso length (or of twice the head-to-
  shoulder height when the hips are hidden). Needs a shoulder and its wrist, and a torso that is not tilted
  over 45 deg when the hips show.
- `running_jumping`: a stride, the two thighs spread 45-80 deg apart (walking spreads them less), or one
  knee folded back (under 100-70 deg) over a straight other leg (over 140-160 deg); a thigh at full
  length (0.45-0.65 of the torso: spread, foreshortened thighs are a seated person's knees) and the torso
  not lying (tilt under 60-40 deg). Needs both hips and both knees (the fold needs both ankles). A single
  photo cannot tell a running stride from a jump, hence one cue.
"""

from __future__ import annotations

import numpy as np

from feedlens.core.results.pose import Activity

NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
HEAD = (NOSE, L_EYE, R_EYE, L_EAR, R_EAR)
# Pairs whose left/right order is fixed by which way the body faces (they rarely cross).
TORSO_PAIRS = ((L_EYE, R_EYE), (L_EAR, R_EAR), (L_SHOULDER, R_SHOULDER), (L_HIP, R_HIP))
# Limb pairs the model sometimes mixes up.
LIMB_PAIRS = ((L_ELBOW, R_ELBOW), (L_WRIST, R_WRIST), (L_KNEE, R_KNEE), (L_ANKLE, R_ANKLE))
SIDES = ((L_SHOULDER, L_HIP, L_KNEE, L_ANKLE), (R_SHOULDER, R_HIP, R_KNEE, R_ANKLE))
UPRIGHT_TILT = 45.0  # degrees: below this the torso counts as upright for the vertical-order checks
ANKLE_MARGIN = 0.5  # of the torso: a runner's back foot rises to about knee height, so only higher is dropped
SWAP_MARGIN = 0.1  # of the torso length: smaller left/right offsets are noise (a body in profile)


def ramp(value: float, low: float, high: float) -> float:
    """0 at `low`, 1 at `high`, linear between (either direction: low > high ramps down)."""
    t = (value - low) / (high - low)
    return float(min(max(t, 0.0), 1.0))


def angle_at(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """The angle a-b-c at b, degrees (180 = straight); 180 when a segment has no length."""
    u, v = a - b, c - b
    norm = float(np.linalg.norm(u) * np.linalg.norm(v))
    if norm == 0.0:
        return 180.0
    return float(np.degrees(np.arccos(np.clip(float(u @ v) / norm, -1.0, 1.0))))


def from_vertical(vector: np.ndarray, down: bool) -> float:
    """Degrees between `vector` (x, y; y down) and straight down (or up): 0 along it, 180 against it."""
    length = float(np.linalg.norm(vector))
    if length == 0.0:
        return 0.0
    cos = (vector[1] if down else -vector[1]) / length
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


class Body:
    """Derived geometry of one person's visible keypoints, shared by the cue rules."""

    def __init__(self, points: np.ndarray, min_score: float) -> None:
        self.xy = points[:, :2].astype(np.float64)
        self.seen = points[:, 2] >= min_score
        self.shoulder = self.centre(L_SHOULDER, R_SHOULDER)
        self.hip = self.centre(L_HIP, R_HIP)
        self.torso = None if self.shoulder is None or self.hip is None else self.shoulder - self.hip
        self.torso_length = 0.0 if self.torso is None else float(np.linalg.norm(self.torso))
        self.tilt = None if self.torso is None or self.torso_length == 0 else from_vertical(self.torso, False)

    def centre(self, *indices: int) -> np.ndarray | None:
        """Mean position of the visible ones among `indices`, or None."""
        shown = [i for i in indices if self.seen[i]]
        return self.xy[shown].mean(axis=0) if shown else None

    def legs(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """(hip, knee, ankle or None) per side whose hip and knee are visible."""
        out = []
        for _, hip, knee, ankle in SIDES:
            if self.seen[hip] and self.seen[knee]:
                out.append((self.xy[hip], self.xy[knee], self.xy[ankle] if self.seen[ankle] else None))
        return out

    def scale(self) -> float | None:
        """A body length unit: the torso, else twice the head-to-shoulder height; None when neither shows."""
        if self.torso_length > 0:
            return self.torso_length
        head = self.centre(*HEAD)
        if self.shoulder is None or head is None:
            return None
        height = 2.0 * abs(float(self.shoulder[1] - head[1]))
        return height if height > 0 else None


def clean(points: np.ndarray, min_score: float) -> np.ndarray:
    """Fix the model's usual keypoint mistakes (a copy; the input is not changed).

    1. Left/right: the way the body faces is the majority order of the eye, ear, shoulder and hip pairs
       (left point to the right in the image = facing the camera); elbow, wrist, knee and ankle pairs that
       contradict it by more than `SWAP_MARGIN` of the torso are swapped. Human's MoveNet code assumes every
       body faces the camera; a majority vote keeps people seen from behind right.
    2. Vertical order, for upright torsos only (a lying person's knee may well be above a shoulder): a knee
       above the shoulders or an ankle more than `ANKLE_MARGIN` torso above its knee gets score 0. Human
       drops any ankle above its knee; a runner's back foot is there, so a margin.
    """
    out = points.astype(np.float64, copy=True)
    body = Body(out, min_score)
    votes = [
        np.sign(out[left, 0] - out[right, 0])
        for left, right in TORSO_PAIRS
        if body.seen[left] and body.seen[right]
    ]
    facing = float(np.sign(sum(votes)))
    margin = SWAP_MARGIN * (body.scale() or 0.0)
    if facing != 0:
        for left, right in LIMB_PAIRS:
            if body.seen[left] and body.seen[right]:
                dx = out[left, 0] - out[right, 0]
                if np.sign(dx) == -facing and abs(dx) > margin:
                    out[[left, right]] = out[[right, left]]
    if body.tilt is not None and body.tilt < UPRIGHT_TILT and body.shoulder is not None:
        seen = out[:, 2] >= min_score
        for _, _, knee, ankle in SIDES:
            if seen[knee] and out[knee, 1] < body.shoulder[1]:
                out[knee, 2] = 0.0
                seen[knee] = False
            if seen[knee] and seen[ankle] and out[ankle, 1] < out[knee, 1] - ANKLE_MARGIN * body.torso_length:
                out[ankle, 2] = 0.0
    return out


def standing(body: Body) -> float | None:
    legs = body.legs()
    if body.tilt is None or not legs:
        return None
    scores = []
    for hip, knee, ankle in legs:
        straight = 1.0 if ankle is None else ramp(angle_at(hip, knee, ankle), 130.0, 160.0)
        vertical = ramp(from_vertical(knee - hip, True), 50.0, 25.0)
        full = ramp(float(np.linalg.norm(knee - hip)) / body.torso_length, 0.45, 0.65)
        scores.append(straight * vertical * full)
    stride = ramp(thigh_spread(body) or 0.0, 60.0, 35.0)
    return ramp(body.tilt, 45.0, 25.0) * min(scores) * stride


def sitting(body: Body) -> float | None:
    legs = body.legs()
    if body.tilt is None or body.shoulder is None or not legs:
        return None
    scores = []
    for hip, knee, _ in legs:
        bent = ramp(angle_at(body.shoulder, hip, knee), 140.0, 115.0)
        short = ramp(float(np.linalg.norm(knee - hip)) / body.torso_length, 0.65, 0.45)
        level = ramp(from_vertical(knee - hip, True), 45.0, 65.0)
        scores.append(max(bent, short, level))
    return ramp(body.tilt, 60.0, 35.0) * min(scores) * (1.0 - stride(body))


def lying_down(body: Body) -> float | None:
    if body.tilt is None or body.hip is None:
        return None
    score = ramp(body.tilt, 45.0, 70.0)
    ends = [a if a is not None else k for _, k, a in body.legs()]
    if ends:
        legs_flat = [ramp(from_vertical(end - body.hip, True), 40.0, 65.0) for end in ends]
        score *= max(legs_flat)
    return score


def arms_raised(body: Body) -> float | None:
    scale = body.scale()
    arms = [
        (s, w) for s, w in ((L_SHOULDER, L_WRIST), (R_SHOULDER, R_WRIST)) if body.seen[s] and body.seen[w]
    ]
    if scale is None or not arms:
        return None
    if body.tilt is not None and body.tilt >= UPRIGHT_TILT:
        return None  # "above the shoulder" says nothing about a body that is not upright
    lift = max(float(body.xy[s, 1] - body.xy[w, 1]) / scale for s, w in arms)
    return ramp(lift, 0.3, 0.6)


def thigh_spread(body: Body) -> float | None:
    """Degrees between the two hip -> knee directions, or None without both."""
    if not all(body.seen[i] for i in (L_HIP, R_HIP, L_KNEE, R_KNEE)):
        return None
    return angle_at(body.xy[L_KNEE] - body.xy[L_HIP], np.zeros(2), body.xy[R_KNEE] - body.xy[R_HIP])


def stride(body: Body) -> float:
    """0..1: the thighs spread 45-80 deg apart, at least one at full length (0 without both thighs).

    Two foreshortened thighs (pointing at the camera) spread apart are a seated person's knees, not a stride;
    in a lunge the bent front leg may point at the camera, so one full-length thigh is enough.
    """
    spread = thigh_spread(body)
    if spread is None or body.torso_length == 0:
        return 0.0
    full = max(ramp(float(np.linalg.norm(k - h)) / body.torso_length, 0.45, 0.65) for h, k, _ in body.legs())
    return ramp(spread, 45.0, 80.0) * full


def running_jumping(body: Body) -> float | None:
    if thigh_spread(body) is None or body.tilt is None:
        return None
    knees = [angle_at(h, k, a) for h, k, a in body.legs() if a is not None]
    # one leg folded back at the knee while the other is straight: a runner's back leg
    kick = 0.0
    if len(knees) == 2:
        kick = max(ramp(knees[i], 100.0, 70.0) * ramp(knees[1 - i], 140.0, 160.0) for i in range(2))
    return ramp(body.tilt, 60.0, 40.0) * max(stride(body), kick)


RULES = {
    Activity.STANDING: standing,
    Activity.SITTING: sitting,
    Activity.LYING_DOWN: lying_down,
    Activity.ARMS_RAISED: arms_raised,
    Activity.RUNNING_JUMPING: running_jumping,
}


def activity_cues(points: np.ndarray, min_score: float) -> dict[str, float]:
    """The cues whose keypoints are visible, each 0..1 (rounded to 3 decimals), in `Activity` order.

    `points`: (17, 3) cleaned keypoints (x, y, score) in isotropic units.
    """
    body = Body(points, min_score)
    cues: dict[str, float] = {}
    for activity, rule in RULES.items():
        value = rule(body)
        if value is not None:
            cues[activity.value] = round(value, 3)
    return cues
