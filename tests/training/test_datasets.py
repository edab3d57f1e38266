"""Datasets: loaders on real files, every refusal, the split, the hash and class balance."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from feedlens.core.errors import FeedlensError, ImageError, ImageErrorCode
from feedlens.images import ImageDecoder
from feedlens.training.datasets import (
    DatasetError,
    Item,
    LabelledDataset,
    from_coco,
    from_csv,
    from_folder,
    from_labels,
    load_image,
)
from feedlens.training.splits import class_report, class_weights, resample, split
from tests.support.tuxpaint import Stamp, load_stamps, stamps_or_skip

PHOTOS = ("chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg", "china.jpg")


@pytest.fixture(scope="module")
def stamps() -> dict[str, list[Stamp]]:
    """Three photo stamps each of animals and food."""
    found = load_stamps(stamps_or_skip())
    return {c: [s for s in found if s.category == c][:3] for c in ("animals & pets", "food & drink")}


@pytest.fixture
def folder(tmp_path: Path, sample_dir: Path, stamps: dict[str, list[Stamp]]) -> Path:
    """root/animals (stamps, one nested two deep), root/food (stamps), root/photos (sample photos)."""
    root = tmp_path / "set"
    for cls, members in zip(("animals", "food"), stamps.values(), strict=True):
        for i, stamp in enumerate(members):
            target = root / cls / ("deep/er" if i == 0 else "") / stamp.path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stamp.path, target)
    (root / "photos").mkdir()
    for name in PHOTOS[:3]:
        shutil.copyfile(sample_dir / name, root / "photos" / name)
    return root


def test_folder_loads_nested_images_and_skips_hidden_files(folder: Path, sample_dir: Path) -> None:
    (folder / "README.txt").write_text("about this set")  # a non-image at the root is ignored
    (folder / "photos" / ".DS_Store").write_bytes(b"\0\1junk")
    (folder / "photos" / ".thumbs").mkdir()
    shutil.copyfile(sample_dir / "rocket.jpg", folder / "photos" / ".thumbs" / "rocket.jpg")
    (folder / ".trash" / "x").mkdir(parents=True)  # a hidden folder is not a class
    data = from_folder(folder)
    assert data.classes == ("animals", "food", "photos")
    assert data.counts() == {"animals": 3, "food": 3, "photos": 3}
    nested = [i for i in data.items if i.key.startswith("animals/deep/er/")]
    assert len(nested) == 1 and nested[0].label == "animals" and isinstance(nested[0].source, Path)
    assert all(i.source == folder / i.key for i in data.items)
    assert "photos/chelsea.png" in {i.key for i in data.items}
    assert not any(".thumbs" in i.key or ".DS_Store" in i.key for i in data.items)
    assert (
        data.targets.tolist() == [data.index(i.label) for i in data.items] and data.targets.dtype == np.int64
    )
    assert data.provenance == f"folder:{folder}"
    ordered = from_folder(folder, classes=["photos", "food", "animals"])
    assert ordered.classes == ("photos", "food", "animals") and ordered.index("photos") == 0


def test_folder_lists_every_problem_at_once(folder: Path, sample_dir: Path) -> None:
    (folder / "photos" / "notes.txt").write_text("not a picture")
    (folder / "photos" / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / "empty").mkdir()
    shutil.copyfile(sample_dir / "china.jpg", folder / "loose.jpg")
    with pytest.raises(DatasetError) as caught:
        from_folder(folder)
    err = caught.value
    assert err.code == "dataset_invalid" and isinstance(err, FeedlensError)
    assert err.codes == {"not_an_image", "empty_class", "malformed"}
    messages = " | ".join(p.message for p in err.problems)
    assert "photos/notes.txt" in messages and "photos/drawing.svg" in messages
    assert "'empty' has no images" in messages and "loose.jpg: image outside any class folder" in messages
    assert {p["code"] for p in err.to_dict()["problems"]} == err.codes


def test_folder_single_class_unknown_folder_and_missing_root(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        from_folder(folder, classes=["photos"])
    assert caught.value.codes == {"too_few_classes", "unknown_label"}  # animals, food: not classes
    with pytest.raises(DatasetError) as caught:
        from_folder(folder, classes=["photos", "food", "animals", "vehicles"])
    assert caught.value.codes == {"empty_class"} and "vehicles" in caught.value.message
    with pytest.raises(DatasetError) as caught:
        from_folder(tmp_path / "nowhere")
    assert caught.value.codes == {"missing_file"}


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_paths_are_relative_to_the_csv(folder: Path) -> None:
    keys = sorted(str(p.relative_to(folder).as_posix()) for p in folder.rglob("*.*"))
    rows = [f"{folder.name}/{k},{k.split('/')[0]}" for k in keys]
    # label,path order, a BOM (Excel) and a blank line are all fine
    csv = _write_csv(folder.parent / "labels.csv", "\ufeffpath,label\n" + "\n".join(rows[:4]) + "\n\n")
    data = from_csv(csv)
    assert data.classes == ("animals", "food") and len(data) == 4
    assert all(isinstance(i.source, Path) and i.source.is_file() for i in data.items)
    flipped = "label,path\n" + "\n".join(f"{r.split(',')[1]},{r.split(',')[0]}" for r in rows[:4])
    again = from_csv(_write_csv(folder.parent / "flipped.csv", flipped))
    assert again.dataset_hash() == data.dataset_hash() and again.provenance.startswith("csv:")
    by_folder = from_folder(folder)
    full = from_csv(
        _write_csv(folder / "all.csv", "path,label\n" + "\n".join(f"{k},{k.split('/')[0]}" for k in keys))
    )
    assert [(i.key, i.label) for i in full.items] == [(i.key, i.label) for i in by_folder.items]
    assert full.dataset_hash() == by_folder.dataset_hash()  # same keys, labels and bytes: same data


def test_csv_refuses_unknown_columns_and_lists_bad_rows(folder: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        from_csv(_write_csv(folder / "a.csv", "path,label,weight\nphotos/chelsea.png,photos,1\n"))
    assert caught.value.codes == {"malformed"} and "weight" in caught.value.message
    with pytest.raises(DatasetError) as caught:
        from_csv(_write_csv(folder / "b.csv", "file,label\nphotos/chelsea.png,photos\n"))
    assert "missing: ['path']" in caught.value.message
    text = (
        "path,label\n"
        "photos/chelsea.png,photos\n"
        "photos/chelsea.png,animals\n"  # listed twice
        "photos/missing.jpg,photos\n"
        "photos/coffee.png,drinks\n"  # not among the classes given
        "photos/astronaut.png\n"  # no label
    )
    with pytest.raises(DatasetError) as caught:
        from_csv(_write_csv(folder / "c.csv", text), classes=["photos", "animals"])
    err = caught.value
    assert err.codes == {"duplicate_item", "missing_file", "unknown_label", "malformed"}
    assert any("line 6" in p.message for p in err.problems)
    assert any("'drinks'" in p.message for p in err.problems)
    with pytest.raises(DatasetError) as caught:
        from_csv(folder / "none.csv")
    assert caught.value.codes == {"missing_file"}


def _coco(images: list[Any], categories: list[Any], annotations: list[Any]) -> dict[str, Any]:
    return {"images": images, "categories": categories, "annotations": annotations}


def test_coco_keeps_single_category_images(folder: Path) -> None:
    stamp_keys = [i.key for i in from_folder(folder).items if i.label != "photos"]
    files = ["photos/chelsea.png", "photos/coffee.png", "photos/astronaut.png", *stamp_keys[:3]]
    images = [{"id": n + 1, "file_name": f} for n, f in enumerate(files)]
    categories = [{"id": 7, "name": "cat"}, {"id": 3, "name": "thing"}]
    annotations = [
        {"image_id": 1, "category_id": 7},
        {"image_id": 1, "category_id": 7},  # a second box of the same category: still single-label
        {"image_id": 2, "category_id": 3},
        {"image_id": 3, "category_id": 3},
        {"image_id": 3, "category_id": 7},  # two categories: left out
        {"image_id": 4, "category_id": 3},
        {"image_id": 5, "category_id": 3},
    ]  # image 6 has no annotation: left out
    path = folder / "coco.json"
    path.write_text(json.dumps(_coco(images, categories, annotations)))
    data = from_coco(path)
    assert data.classes == ("cat", "thing")  # the file's order, not by id
    assert {i.key: i.label for i in data.items} == {
        "photos/chelsea.png": "cat",
        "photos/coffee.png": "thing",
        files[3]: "thing",
        files[4]: "thing",
    }
    assert dict(data.dropped) == {
        "photos/astronaut.png": "several classes: cat, thing",
        files[5]: "no annotation",
    }
    moved = folder.parent / "elsewhere" / "coco.json"
    moved.parent.mkdir()
    shutil.copyfile(path, moved)
    assert from_coco(moved, image_root=folder).dataset_hash() == data.dataset_hash()


def test_coco_problems(folder: Path) -> None:
    images = [
        {"id": 1, "file_name": "photos/chelsea.png"},
        {"id": 2, "file_name": "photos/gone.png"},
        {"id": 1, "file_name": "x.png"},
        {"file_name": "y.png"},
    ]
    categories = [{"id": 1, "name": "cat"}, {"id": 2, "name": "unused"}, {"id": 3, "name": "Cat"}]
    annotations = [
        {"image_id": 1, "category_id": 1},
        {"image_id": 2, "category_id": 3},
        {"image_id": 9, "category_id": 1},
        {"image_id": 2, "category_id": 99},
    ]
    path = folder / "bad.json"
    path.write_text(json.dumps(_coco(images, categories, annotations)))
    with pytest.raises(DatasetError) as caught:
        from_coco(path)
    err = caught.value
    assert err.codes == {"malformed", "unknown_label", "empty_class", "duplicate_class", "missing_file"}
    text = err.message
    assert "image id 1 is listed twice" in text and "images[3] needs id, file_name" in text
    assert "annotations[2]: no image 9" in text and "annotations[3]: no category 99" in text
    assert "'unused' has no images" in text and "photos/gone.png" in text
    path.write_text(json.dumps({"images": {}, "categories": []}))
    with pytest.raises(DatasetError) as caught:
        from_coco(path)
    assert (
        "`images` must be a list" in caught.value.message
        and "`annotations` must be a list" in caught.value.message
    )
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="cannot read"):
        from_coco(path)


def test_from_labels_reduces_multi_label_images(sample_dir: Path, decoder: ImageDecoder) -> None:
    pairs = [
        ("img-a", "animals"),
        ("img-b", "food"),
        ("img-b", "food"),
        ("img-c", "animals"),
        ("img-c", "food"),
    ]
    data = from_labels(pairs, ["animals", "food"], provenance="workspace:brand")
    assert [(i.key, i.source, i.label) for i in data.items] == [
        ("img-a", "img-a", "animals"),
        ("img-b", "img-b", "food"),
    ]
    assert data.dropped == (("img-c", "several classes: animals, food"),)
    files: dict[str, Path | bytes] = {
        "img-a": sample_dir / "chelsea.png",
        "img-b": (sample_dir / "coffee.png").read_bytes(),
    }
    decoded = load_image(data.items[0], decoder, files.__getitem__, min_side=64)
    assert decoded.width == 451 and min(decoded.image.size) >= 64
    with pytest.raises(TypeError, match="resolve"):
        load_image(data.items[0], decoder)
    with pytest.raises(DatasetError) as caught:
        from_labels([("a", "x"), ("b", "y")], ["x", "y", "z"])
    assert caught.value.codes == {"empty_class"}


def test_direct_construction_is_validated(sample_dir: Path) -> None:
    photo = sample_dir / "chelsea.png"
    items = (
        Item("a", photo, "cat"),
        Item("a", photo, "cat"),
        Item("b", sample_dir / "nope.png", "cat"),
        Item("c", b"bytes", "dog"),
    )
    with pytest.raises(DatasetError) as caught:
        LabelledDataset(items, ("cat", "Cat", "bird"))
    assert caught.value.codes == {
        "duplicate_item",
        "missing_file",
        "unknown_label",
        "duplicate_class",
        "empty_class",
    }
    with pytest.raises(DatasetError) as caught:
        LabelledDataset((Item("a", photo, "cat"),), ("cat",))
    assert caught.value.codes == {"too_few_classes"}
    many = tuple(Item(f"k{n}", sample_dir / f"gone{n}.png", "cat") for n in range(30))
    with pytest.raises(DatasetError) as caught:
        LabelledDataset((*many, Item("d", photo, "dog")), ("cat", "dog"))
    assert len(caught.value.problems) == 30 and caught.value.message.endswith("... and 10 more")


def test_check_images_reports_bad_images_by_code(folder: Path, decoder: ImageDecoder) -> None:
    png = (folder / "photos" / "coffee.png").read_bytes()
    (folder / "food" / "broken.png").write_bytes(png[: len(png) // 3])  # a truncated PNG: still sniffed
    data = from_folder(folder)
    gone = data.items[0]
    gone_path = gone.source
    assert isinstance(gone_path, Path)
    gone_path.unlink()  # vanished after loading
    extra = (Item("bytes/empty", b"", "photos"), Item("bytes/pdf", b"%PDF-1.4 nothing", "photos"))
    mixed = LabelledDataset(data.items[1:] + extra, data.classes)  # re-validated: drop the vanished one first
    bad = mixed.check_images(decoder, min_side=64)
    assert {(b.key, b.code) for b in bad} == {
        ("food/broken.png", ImageErrorCode.TRUNCATED.value),
        ("bytes/empty", "empty"),
        ("bytes/pdf", "unsupported_format"),
    }
    assert data.check_images(decoder, min_side=64)[0].key == gone.key  # a missing file: unreadable
    assert data.check_images(decoder, min_side=64)[0].code == "unreadable"
    clean = mixed.without(b.key for b in bad)
    assert len(clean) == len(mixed) - 3 and clean.check_images(decoder, min_side=64) == []

    def resolve(image_id: str) -> bytes:
        raise ImageError(ImageErrorCode.UNREADABLE, f"no image {image_id}")

    ids = from_labels([("x", "a"), ("y", "b")], ["a", "b"])
    assert [b.code for b in ids.check_images(decoder, resolve)] == ["unreadable", "unreadable"]


def _ids(counts: dict[str, int]) -> LabelledDataset:
    pairs = [(f"{c}-{n:03d}", c) for c, k in counts.items() for n in range(k)]
    return from_labels(pairs, list(counts))


def test_split_is_stratified_disjoint_and_deterministic() -> None:
    data = _ids({"a": 40, "b": 12, "c": 3, "d": 2, "e": 1})
    parts = split(data, seed=7)
    counts = {name: Counter(i.label for i in items) for name, items in parts.parts().items()}
    assert {c: (counts["train"][c], counts["val"][c], counts["test"][c]) for c in data.classes} == {
        "a": (28, 6, 6),
        "b": (8, 2, 2),
        "c": (1, 1, 1),  # 3 items: one in each part
        "d": (2, 0, 0),
        "e": (1, 0, 0),
    }
    keys = [{i.key for i in items} for items in parts.parts().values()]
    assert sum(len(k) for k in keys) == len(data) and set().union(*keys) == {i.key for i in data.items}
    assert [list(p) == sorted(p, key=lambda i: i.key) for p in parts.parts().values()] == [True] * 3
    shuffled = LabelledDataset(tuple(reversed(data.items)), data.classes)
    assert split(shuffled, seed=7).parts() == parts.parts() == split(data, seed="7").parts()
    assert split(data, seed=8).test != parts.test
    # golden values: the assignment depends only on sha256(seed, key), so every machine gets these
    assert [i.key for i in parts.test if i.label == "b"] == ["b-004", "b-008"]
    assert [i.key for i in parts.test if i.label == "c"] == ["c-001"]
    assert [i.key for i in parts.val if i.label == "c"] == ["c-000"]
    assert {c: v for c, v in Counter(i.label for i in split(data, val=0.0, test=0.5).val).items()} == {}
    for val, test in ((-0.1, 0.2), (0.5, 0.5)):
        with pytest.raises(ValueError, match="val"):
            split(data, val=val, test=test)


def _path(item: Item) -> Path:
    assert isinstance(item.source, Path)
    return item.source


def test_dataset_hash_covers_keys_labels_classes_and_bytes(folder: Path, tmp_path: Path) -> None:
    data = from_folder(folder)
    digest = data.dataset_hash()
    copy = shutil.copytree(folder, tmp_path / "copy")
    assert from_folder(copy).dataset_hash() == digest  # the location does not count, the content does
    as_bytes = LabelledDataset(
        tuple(Item(i.key, _path(i).read_bytes(), i.label) for i in data.items), data.classes, "mem"
    )
    assert as_bytes.dataset_hash() == digest
    relabelled = [Item(i.key, i.source, "food" if n == 0 else i.label) for n, i in enumerate(data.items)]
    assert LabelledDataset(tuple(relabelled), data.classes).dataset_hash() != digest
    renamed = [Item(i.key + "x" if n == 0 else i.key, i.source, i.label) for n, i in enumerate(data.items)]
    assert LabelledDataset(tuple(renamed), data.classes).dataset_hash() != digest
    assert LabelledDataset(data.items, tuple(reversed(data.classes))).dataset_hash() != digest
    target = copy / "photos" / "coffee.png"
    target.write_bytes(target.read_bytes() + b"\0")  # one byte more: another image
    assert from_folder(copy).dataset_hash() != digest
    ids = from_labels([("x", "a"), ("y", "b")], ["a", "b"])
    # golden (checked by hand): sha256 over b"feedlens-dataset-v1", b'["a", "b"]',
    # b'\n["x", "a", "id:x"]', b'\n["y", "b", "id:y"]'
    assert ids.dataset_hash() == "454b217f6cdb4d3eb6c53fe8029c22b8a38784bae90a6c6068f2001b4fd94181"


def test_class_report_warns_about_small_classes() -> None:
    data = _ids({"big": 60, "mid": 14, "small": 9})
    report = class_report(split(data))
    assert report.counts["big"] == {"total": 60, "train": 42, "val": 9, "test": 9}
    assert sum(report.counts["small"][p] for p in ("train", "val", "test")) == 9
    assert report.imbalance_ratio == pytest.approx(60 / 9)
    assert len(report.warnings) == 1 and report.warnings[0].startswith("class 'small' is under-represented")
    assert json.loads(json.dumps(report.to_dict()))["counts"]["mid"]["total"] == 14
    assert class_report(data, min_count=5, min_share=0.1).warnings == []  # 9 >= 5 and 9 >= 6
    assert class_report(data, min_count=5, min_share=0.16).warnings == report.warnings  # 9 < 9.6
    strict = class_report(data, min_count=15)  # 14 < 15 too
    assert [w.split()[1] for w in strict.warnings] == ["'mid'", "'small'"]
    assert "train" not in class_report(data).counts["big"]


def test_class_weights_are_balanced() -> None:
    data = _ids({"a": 6, "b": 3, "c": 1})
    weights = class_weights(data.items, data.classes)
    assert weights.tolist() == pytest.approx([10 / 18, 10 / 9, 10 / 3])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=data.targets)
    assert weights == pytest.approx(expected)
    assert class_weights(data.items[:6], ["a", "b"]).tolist() == [0.5, 0.0]  # only a's here, b absent


def test_resample_oversamples_train_only() -> None:
    data = _ids({"a": 40, "b": 12, "c": 5})
    parts = split(data, seed=3)
    balanced = resample(parts)
    assert balanced.val == parts.val and balanced.test == parts.test
    assert Counter(i.label for i in balanced.train) == {"a": 28, "b": 28, "c": 28}
    copies = Counter(i.key for i in balanced.train if i.label == "b")
    assert set(copies.values()) <= {3, 4} and set(copies) == {i.key for i in parts.train if i.label == "b"}
    assert resample(parts) == balanced and resample(parts, seed="other") != balanced
    assert class_weights(balanced.train, data.classes).tolist() == pytest.approx([1.0, 1.0, 1.0])
