"""What the sample photos must be called within the first three labels, wherever labels are answered:
the CLI, the native API and both cloud APIs at their default settings (issue "labels")."""

from __future__ import annotations

SAMPLE_HEADLINES: dict[str, set[str]] = {
    "chelsea.png": {"Cat"},
    "coffee.png": {"Coffee", "Espresso"},
    "motorcycle.png": {"Motorcycle"},
    "astronaut.png": {"Person"},
    "grace_hopper.jpg": {"Person"},
    "camera.png": {"Person"},
}
