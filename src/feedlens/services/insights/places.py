"""Where posts come from: a location in the stored copy's EXIF (GPS) or in the feed export, grouped on a
latitude/longitude grid (FEEDLENS_INSIGHTS__PLACE_PRECISION decimal places: 1 is cells of about 11 km).

Locations are kept only while FEEDLENS_STORE_METADATA=all: that is the operator's opt-in to keeping GPS
(`none` and `no_gps` strip it from stored copies, so there is nothing to read and nothing is kept).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

GPS_IFD = 0x8825
_LAT_REF, _LAT, _LON_REF, _LON = 1, 2, 3, 4
MAX_NAME = 128
MAX_LINE = 100_000
NAME_KEYS = ("location", "place", "place_name", "location_name", "city")
LAT_KEYS = ("lat", "latitude")
LON_KEYS = ("lon", "lng", "long", "longitude")


@dataclass(frozen=True, slots=True)
class Place:
    """A location: a name (a feed's "Lisbon, Portugal"), coordinates in degrees, or both."""

    name: str | None
    lat: float | None
    lon: float | None

    def __post_init__(self) -> None:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both latitude and longitude, or neither")
        if self.lat is not None and not -90.0 <= self.lat <= 90.0:
            raise ValueError(f"latitude {self.lat} is outside -90..90")
        if self.lon is not None and not -180.0 <= self.lon <= 180.0:
            raise ValueError(f"longitude {self.lon} is outside -180..180")
        if self.name is None and self.lat is None:
            raise ValueError("a place needs a name or coordinates")


def _degrees(value: Any) -> float:
    """EXIF (degrees, minutes, seconds) rationals, or one number, as decimal degrees."""
    if isinstance(value, tuple | list):
        parts = [float(Fraction(str(v))) if not isinstance(v, float | int) else float(v) for v in value]
        parts += [0.0] * (3 - len(parts))
        return parts[0] + parts[1] / 60 + parts[2] / 3600
    return float(value)


def exif_place(data: bytes | Path) -> Place | None:
    """The GPS position an image's EXIF states, or None (no EXIF, no GPS block, unreadable, or 0,0: a
    camera that had no fix writes zeros, and no one posts from that spot in the Gulf of Guinea)."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            gps = image.getexif().get_ifd(GPS_IFD)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None
    if not gps or _LAT not in gps or _LON not in gps:
        return None
    try:
        lat, lon = _degrees(gps[_LAT]), _degrees(gps[_LON])
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if str(gps.get(_LAT_REF, "N")).upper().startswith("S"):
        lat = -lat
    if str(gps.get(_LON_REF, "E")).upper().startswith("W"):
        lon = -lon
    if not (math.isfinite(lat) and math.isfinite(lon)) or (lat == 0 and lon == 0):
        return None
    try:
        return Place(None, round(lat, 6), round(lon, 6))
    except ValueError:
        return None


def _first(record: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = record.get(key)
        if value is not None and value != "":
            return value
    return None


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {str(value)[:30]!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite")
    return number


def place_of(record: Mapping[str, Any]) -> Place | None:
    """A feed record's location: `location` (text, or an object with name/lat/lon), `place`, `city`,
    `lat`/`latitude` and `lon`/`lng`/`longitude`. None when it has none; ValueError when it is bad."""
    keys = {str(k).strip().lower().replace(" ", "_").replace("-", "_"): v for k, v in record.items()}
    nested = keys.get("location")
    if isinstance(nested, Mapping):
        keys = {**keys, **{str(k).lower(): v for k, v in nested.items()}, "location": nested.get("name")}
    name = _first(keys, NAME_KEYS)
    lat = _number(_first(keys, LAT_KEYS), "latitude")
    lon = _number(_first(keys, LON_KEYS), "longitude")
    if name is None and lat is None and lon is None:
        return None
    text = " ".join(str(name).split())[:MAX_NAME] if name is not None else None
    return Place(text or None, lat, lon)


@dataclass(frozen=True, slots=True)
class FeedPlace:
    """One line of a feed with a location (`place`), or the reason it could not be read (`error`)."""

    line: int
    platform: str
    post_id: str
    place: Place | None
    error: str | None = None


def _post_key(record: Mapping[str, Any]) -> tuple[str, str]:
    keys = {str(k).strip().lower().replace(" ", "_").replace("-", "_"): v for k, v in record.items()}
    post_id = _first(keys, ("id", "post_id"))
    platform = _first(keys, ("platform", "network"))
    return str(platform or "").strip().lower(), str(post_id or "").strip()


def read_places(path: Path) -> Iterator[FeedPlace]:
    """The locations of a feed export (JSONL or CSV, the schema of docs/feeds.md plus the location keys
    above, which `feedlens ingest` ignores). Lines without a location are skipped silently."""
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if suffix == ".csv":
            records: Iterator[tuple[int, Any]] = (
                (n + 2, row) for n, row in enumerate(csv.DictReader(handle))
            )
        else:
            records = _jsonl(handle)
        for line, record in records:
            if isinstance(record, str):
                yield FeedPlace(line, "", "", None, record)
                continue
            platform, post_id = _post_key(record)
            try:
                place = place_of(record)
            except ValueError as exc:
                yield FeedPlace(line, platform, post_id, None, f"line {line}: {exc}")
                continue
            if place is not None:
                error = None if post_id else f"line {line}: no post id"
                yield FeedPlace(line, platform, post_id, place, error)


def _jsonl(handle: io.TextIOBase | Any) -> Iterator[tuple[int, Any]]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        if len(text) > MAX_LINE:
            yield number, f"line {number}: longer than {MAX_LINE} characters"
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, f"line {number}: not JSON ({exc.msg})"
            continue
        yield number, record if isinstance(record, dict) else f"line {number}: not an object"


def cell(lat: float, lon: float, precision: int) -> tuple[float, float]:
    """The grid cell a point falls in, named by its rounded coordinates."""
    return round(lat, precision), round(lon, precision)


def describe(lat: float, lon: float, precision: int) -> str:
    """ "38.7°N 9.1°W": coordinates as a person reads them."""
    ns = "N" if lat >= 0 else "S"
    ew = "E" if lon >= 0 else "W"
    return f"{abs(lat):.{precision}f}°{ns} {abs(lon):.{precision}f}°{ew}"


def most_common(names: list[str]) -> str | None:
    found = Counter(n for n in names if n)
    return found.most_common(1)[0][0] if found else None
