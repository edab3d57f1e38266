"""Copy the real sample photos that scikit-image, scikit-learn and matplotlib ship into a folder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import matplotlib
import skimage
import sklearn.datasets
from PIL import Image


def sample_sources() -> dict[str, Path]:
    skimage_data = Path(skimage.__file__).parent / "data"
    sklearn_images = Path(sklearn.datasets.__file__).parent / "images"
    mpl_samples = Path(matplotlib.get_data_path()) / "sample_data"
    return {
        "astronaut.png": skimage_data / "astronaut.png",
        "chelsea.png": skimage_data / "chelsea.png",
        "coffee.png": skimage_data / "coffee.png",
        "rocket.jpg": skimage_data / "rocket.jpg",
        "motorcycle.png": skimage_data / "motorcycle_left.png",
        "camera.png": skimage_data / "camera.png",
        "hubble_deep_field.jpg": skimage_data / "hubble_deep_field.jpg",
        "china.jpg": sklearn_images / "china.jpg",
        "flower.jpg": sklearn_images / "flower.jpg",
        "grace_hopper.jpg": mpl_samples / "grace_hopper.jpg",
    }


def main(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name, src in sample_sources().items():
        target = dest / name
        if src.is_file():
            shutil.copyfile(src, target)
        else:  # some skimage versions fetch a few images lazily (network): skip, never download
            print(f"skipping {name}: {src} is not shipped with this version", file=sys.stderr)
            continue
        Image.open(target).verify()
    print(f"{len(list(dest.iterdir()))} sample photos in {dest}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "samples"))
