"""The everyday label vocabulary: the words users see instead of ImageNet classes and WordNet terms.

Three versioned YAML files (src/feedlens/data/vocabulary/): `labels.yaml` (labels with display names,
aliases, a small DAG of everyday parents and a category), `imagenet.yaml` (each of the 1000 ImageNet-1k
classes -> its label ids) and `coco.yaml` (the 80 COCO detector classes -> label ids).

Loading validates everything and raises one `VocabularyError` listing every problem, so a data file is
fixed in one pass. A `Vocabulary` is immutable; the caller keeps (caches) the instance it loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from feedlens.core.errors import FeedlensError

try:  # libyaml's parser, without YAML's implicit typing: loading stays well under 100 ms
    from yaml import CBaseLoader as _BaseLoader
except ImportError:  # pragma: no cover - pure-Python fallback
    from yaml import BaseLoader as _BaseLoader  # type: ignore[assignment]

FILES = ("labels.yaml", "imagenet.yaml", "coco.yaml")
IMAGENET_CLASSES = 1000
COCO_CLASSES = 80  # the detectors' names (person ... "hair drier", toothbrush); tests pin the list
MAX_DEPTH = 4  # parents above a label: Labrador -> Dog -> Mammal -> Animal is 3
_SLUG = re.compile(r"[a-z][a-z0-9_]*")
_WNID = re.compile(r"n\d{8}")
_LABEL_KEYS = frozenset({"id", "name", "aliases", "parents", "category"})

# WordNet's upper levels: the roll-up the labels analyzer used to show ("Organism, Living thing,
# Chordate, Placental, Carnivore"). None of them may be a label's name or alias. "Container" is here too:
# nobody calls a cup or a bag a container, and a label that holds cups, bags and bins says nothing about a
# photo. "Equipment", "Tool" and "Primate" are everyday words and allowed.
# fmt: off
FORBIDDEN_JARGON: frozenset[str] = frozenset({
    "abstraction", "abstract entity", "angiosperm", "animate thing", "anthropoid ape", "arachnid",
    "arthropod", "artefact", "artifact", "article", "being", "bovid", "canid", "canine", "carnivore",
    "cephalopod", "chordate", "cnidarian", "coelenterate", "commodity", "consumer goods", "container",
    "conveyance", "covering", "craniate", "creation", "crustacean", "device", "diapsid", "durables",
    "durable goods", "echinoderm", "edible fruit", "entity", "establishment", "eutherian",
    "eutherian mammal", "even-toed ungulate", "facility", "felid", "feline", "foodstuff", "gastropod",
    "geological formation", "hominid", "implement", "installation", "instrumentality", "instrumentation",
    "invertebrate", "liquid", "matter", "mechanism", "mercantile establishment", "mollusk", "natural object",
    "nutriment", "nutrient", "object", "odd-toed ungulate", "ophidian", "organism", "oscine", "passerine",
    "physical entity", "physical object", "placental", "placental mammal", "place of business",
    "protective covering", "psychological feature", "ruminant", "saurian", "self-propelled vehicle",
    "spermatophyte", "squamate", "structure", "substance", "toiletry", "trade good", "ungulate", "unit",
    "vascular plant", "vertebrate", "wheeled vehicle", "whole", "woody plant", "living thing",
})
# A photo shows a Person; the vocabulary never guesses gender or age.
PERSON_GUESSES: frozenset[str] = frozenset({
    "man", "men", "woman", "women", "boy", "boys", "girl", "girls", "male", "female", "child", "children",
    "kid", "kids", "baby", "babies", "toddler", "teen", "teenager", "adult", "elderly", "old man",
    "old woman", "lady", "ladies", "gentleman", "guy", "senior",
})
# fmt: on


class VocabularyError(FeedlensError):
    """The vocabulary files cannot be used; `problems` lists every reason."""

    code = "vocabulary_invalid"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid label vocabulary: " + "; ".join(self.problems))

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "problems": self.problems}


class UnknownLabelError(FeedlensError, KeyError):
    """A label id, ImageNet wnid or COCO class the vocabulary does not know (also a KeyError)."""

    code = "unknown_label"

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return self.message


@dataclass(frozen=True, slots=True)
class VocabularyLabel:
    id: str
    name: str
    aliases: tuple[str, ...]
    parents: tuple[str, ...]
    category: str  # resolved: the label's own, else its first parent's


_PUNCTUATION = re.compile(r"[^0-9a-z&]+")


def normalise(text: str) -> str:
    """How names, aliases and queries compare: lower case, no apostrophes, other punctuation as spaces."""
    low = text.lower()
    if low.isascii() and low.replace(" ", "").isalnum() and "  " not in low and low == low.strip():
        return low  # the common case, without a regex
    return " ".join(_PUNCTUATION.sub(" ", low.replace("'", "").replace("\u2019", "")).split())


def singular_forms(key: str) -> tuple[str, ...]:
    """Candidate singulars of a normalised phrase's last word ("sports cars" -> "sports car"). Irregular
    plurals (geese, knives, mice) are aliases in the data instead of rules here."""
    head, _, word = key.rpartition(" ")
    prefix = f"{head} " if head else ""
    forms: list[str] = []
    if len(word) > 3 and word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if len(word) > 3 and word.endswith("es"):
        forms.append(word[:-2])
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    return tuple(prefix + f for f in forms)


def plural_forms(key: str) -> tuple[str, ...]:
    """Regular plurals of a normalised phrase's last word ("sports car" -> "sports cars", ...)."""
    head, _, word = key.rpartition(" ")
    prefix = f"{head} " if head else ""
    forms = [word + "s", word + "es"]
    if word.endswith("y"):
        forms.append(word[:-1] + "ies")
    return tuple(prefix + f for f in forms)


class Vocabulary:
    """Validated, immutable label vocabulary with ancestor/descendant and word lookups."""

    def __init__(self, checked: _Checked) -> None:
        """Internal: use `load` or `from_documents`, which validate first."""
        labels = checked.labels
        self.version = checked.version
        self.categories = checked.categories
        self._labels: Mapping[str, VocabularyLabel] = MappingProxyType(labels)
        self._ancestors = MappingProxyType({i: _ancestors_of(i, labels) for i in labels})
        below: dict[str, set[str]] = {i: set() for i in labels}
        for label_id, above in self._ancestors.items():
            for ancestor in above:
                below[ancestor].add(label_id)
        self._descendants = MappingProxyType({k: frozenset(v) for k, v in below.items()})
        self._depth = MappingProxyType(checked.depth)
        self._words = MappingProxyType(checked.words)  # normalised name or alias -> label id
        self._imagenet = MappingProxyType(checked.imagenet)
        self._coco = MappingProxyType(checked.coco)

    @classmethod
    def from_documents(cls, documents: Mapping[str, Any]) -> Vocabulary:
        """Validate and build from parsed documents keyed by file name ({"labels.yaml": {...}, ...})."""
        return cls(_check(documents, []))

    @classmethod
    def load(cls, folder: Path | None = None) -> Vocabulary:
        """Read and validate labels.yaml, imagenet.yaml and coco.yaml (default: the package's data)."""
        root: Traversable = (
            folder if folder is not None else resources.files("feedlens").joinpath("data", "vocabulary")
        )
        problems: list[str] = []
        documents = {name: _read_yaml(root.joinpath(name), name, problems) for name in FILES}
        return cls(_check(documents, problems))

    # -- labels and the DAG -------------------------------------------------------------------------
    def __contains__(self, label_id: object) -> bool:
        return label_id in self._labels

    def __len__(self) -> int:
        return len(self._labels)

    def __iter__(self) -> Iterator[VocabularyLabel]:
        """Labels in file order."""
        return iter(self._labels.values())

    def label(self, label_id: str) -> VocabularyLabel:
        try:
            return self._labels[label_id]
        except KeyError:
            raise UnknownLabelError(f"unknown label id {label_id!r}") from None

    def ancestors(self, label_id: str) -> tuple[str, ...]:
        """Every label above `label_id`, nearest first, each once, without the label itself."""
        self.label(label_id)
        return self._ancestors[label_id]

    def descendants(self, label_id: str) -> frozenset[str]:
        """Every label below `label_id`, without itself (so ?label=animal can also match cat, dog...)."""
        self.label(label_id)
        return self._descendants[label_id]

    def depth(self, label_id: str) -> int:
        """Longest path to a root (0 for a root): larger means more specific."""
        self.label(label_id)
        return self._depth[label_id]

    @property
    def imagenet_wnids(self) -> tuple[str, ...]:
        """The 1000 ImageNet-1k WordNet ids, in imagenet.yaml's (the classifier's) class order."""
        return tuple(self._imagenet)

    # -- model classes --------------------------------------------------------------------------------
    def from_imagenet(self, wnid: str) -> tuple[str, ...]:
        """Label ids of an ImageNet-1k class ("n02123045" -> ("cat",)), most specific first."""
        try:
            return self._imagenet[wnid]
        except KeyError:
            raise UnknownLabelError(f"unknown ImageNet class {wnid!r}") from None

    def from_coco(self, name: str) -> tuple[str, ...]:
        """Label ids of a COCO-80 class name ("person", "hair drier"; case and '_' insensitive)."""
        try:
            return self._coco[normalise(name)]
        except KeyError:
            raise UnknownLabelError(f"unknown COCO class {name!r}") from None

    def imagenet_matrix(self, wnids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Membership matrix that rolls class probabilities up to labels.

        Returns the label ids (columns, in file order: every label some class reaches) and a float32
        array of shape (len(wnids), L): 1 where the label is one of the class's own labels or one of
        their ancestors, else 0. `probs (N, len(wnids)) @ M` gives each label the summed probability of
        the classes under it, each class counted once per label.
        """
        rows = [self.from_imagenet(w) for w in wnids]
        reached: set[str] = set()
        for own in rows:
            for label_id in own:
                reached.add(label_id)
                reached.update(self._ancestors[label_id])
        columns = [i for i in self._labels if i in reached]
        position = {label_id: j for j, label_id in enumerate(columns)}
        matrix = np.zeros((len(wnids), len(columns)), dtype=np.float32)
        for row, own in enumerate(rows):
            for label_id in own:
                matrix[row, position[label_id]] = 1.0
                for ancestor in self._ancestors[label_id]:
                    matrix[row, position[ancestor]] = 1.0
        return columns, matrix

    # -- words ------------------------------------------------------------------------------------------
    def find(self, text: str) -> tuple[str, ...]:
        """Label ids whose name or alias matches `text`, case- and plural-insensitive; exact match first.

        ("Tiger Cat" -> ("cat",); "cats" -> ("cat",); "glasses" -> ("glasses", "glass")).
        """
        key = normalise(text)
        if not key:
            return ()
        singulars = singular_forms(key)
        # the query as typed, then its singulars ("cats"), then words whose singular it is or shares
        # ("jean" -> "jeans"; "glasses" -> "glass")
        forms = (key, *singulars, *plural_forms(key), *(p for s in singulars for p in plural_forms(s)))
        return tuple(dict.fromkeys(self._words[f] for f in forms if f in self._words))


def _ancestors_of(label_id: str, labels: Mapping[str, VocabularyLabel]) -> tuple[str, ...]:
    """Breadth-first over parents: nearest first, each once (the DAG is validated acyclic)."""
    out: dict[str, None] = {}
    frontier = list(labels[label_id].parents)
    while frontier:
        following: list[str] = []
        for parent in frontier:
            if parent not in out:
                out[parent] = None
                following.extend(labels[parent].parents)
        frontier = following
    return tuple(out)


def _depth_of(label_id: str, labels: Mapping[str, VocabularyLabel], memo: dict[str, int]) -> int:
    if label_id not in memo:
        parents = labels[label_id].parents
        memo[label_id] = 1 + max(_depth_of(p, labels, memo) for p in parents) if parents else 0
    return memo[label_id]


# -- reading and validation -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Checked:
    version: str
    categories: tuple[str, ...]
    labels: dict[str, VocabularyLabel]
    depth: dict[str, int]  # longest path to a root
    words: dict[str, str]  # normalised name or alias -> label id
    imagenet: dict[str, tuple[str, ...]]
    coco: dict[str, tuple[str, ...]]  # by normalised COCO name


class _UntypedLoader(_BaseLoader):
    """libyaml parsing without tag resolution: _plain reads every scalar as a string anyway."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        return ""


def _plain(node: yaml.Node, duplicates: list[str]) -> Any:
    """YAML node -> str / list / dict, recording duplicate mapping keys (plain YAML keeps the last one
    silently). Every scalar stays a string: the vocabulary has no numbers or booleans, and skipping
    YAML's implicit typing keeps loading fast."""
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _plain(key_node, duplicates)
            key = key if isinstance(key, str) else str(key)
            if key in out:
                duplicates.append(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
            out[key] = _plain(value_node, duplicates)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, duplicates) for item in node.value]
    return node.value


def _read_yaml(path: Traversable, name: str, problems: list[str]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{name}: cannot read ({exc.__class__.__name__})")
        return None
    duplicates: list[str] = []
    try:
        node = yaml.compose(text, Loader=_UntypedLoader)
        return None if node is None else _plain(node, duplicates)
    except yaml.YAMLError as exc:
        problems.append(f"{name}: invalid YAML ({' '.join(str(exc).split())})")
        return None
    finally:
        problems.extend(f"{name}: {d}" for d in duplicates)


def _check(documents: Mapping[str, Any], problems: list[str]) -> _Checked:
    """Every problem in the three documents, reported at once."""
    versions = _check_versions(documents, problems)
    categories, labels = _check_labels(documents.get("labels.yaml"), problems)
    depth = _check_graph(labels, problems)
    words = _check_words(labels, problems)
    labels = _resolve_categories(labels, problems)
    imagenet = _check_classes("imagenet.yaml", documents.get("imagenet.yaml"), labels, problems)
    if len(imagenet) != IMAGENET_CLASSES or any(not _WNID.fullmatch(w) for w in imagenet):
        bad = sorted(w for w in imagenet if not _WNID.fullmatch(w))[:5]
        problems.append(
            f"imagenet.yaml: needs exactly {IMAGENET_CLASSES} distinct WordNet ids like"
            f" n02123045, found {len(imagenet)}" + (f" (not wnids: {bad})" if bad else "")
        )
    coco: dict[str, tuple[str, ...]] = {}
    for name, ids in _check_classes("coco.yaml", documents.get("coco.yaml"), labels, problems).items():
        if normalise(name) in coco:
            problems.append(f"coco.yaml: {name!r} is listed twice")
        coco[normalise(name)] = ids
    if len(coco) != COCO_CLASSES:
        problems.append(f"coco.yaml: needs the {COCO_CLASSES} COCO class names, found {len(coco)}")
    if problems:
        raise VocabularyError(problems)
    return _Checked(next(iter(versions.values())), categories, labels, depth, words, imagenet, coco)


def _check_versions(documents: Mapping[str, Any], problems: list[str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in FILES:
        doc = documents.get(name)
        if not isinstance(doc, Mapping):
            if doc is not None or not any(p.startswith(name) for p in problems):
                problems.append(f"{name}: must be a mapping with `version`")
        elif not isinstance(doc.get("version"), str) or not doc["version"]:
            problems.append(f'{name}: `version` must be a non-empty string such as "1"')
        else:
            versions[name] = doc["version"]
    if len(set(versions.values())) > 1:
        problems.append(f"the files disagree on `version`: {versions}")
    return versions


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    return None


def _check_labels(doc: Any, problems: list[str]) -> tuple[tuple[str, ...], dict[str, VocabularyLabel]]:
    if not isinstance(doc, Mapping):
        return (), {}
    categories = _strings(doc.get("categories")) or ()
    if not categories or len(set(categories)) != len(categories):
        problems.append("labels.yaml: `categories` must be a non-empty list of distinct names")
    labels: dict[str, VocabularyLabel] = {}
    raw = doc.get("labels")
    for n, entry in enumerate(raw if isinstance(raw, list) else []):
        where = f"labels.yaml: label {entry.get('id', n) if isinstance(entry, Mapping) else n}"
        if not isinstance(entry, Mapping) or set(entry) - _LABEL_KEYS:
            problems.append(f"{where}: must be a mapping with keys {sorted(_LABEL_KEYS)}")
            continue
        label_id, name, category = entry.get("id"), entry.get("name"), entry.get("category")
        aliases, parents = _strings(entry.get("aliases")), _strings(entry.get("parents"))
        if not isinstance(label_id, str) or not _SLUG.fullmatch(label_id):
            problems.append(f"{where}: `id` must be a lowercase slug (letters, digits, _)")
        elif label_id in labels:
            problems.append(f"{where}: duplicate id")
        elif not isinstance(name, str) or not name.strip() or not name[0].isupper():
            problems.append(f"{where}: `name` must be a Title Case display name")
        elif aliases is None or parents is None:
            problems.append(f"{where}: `aliases` and `parents` must be lists of strings")
        elif category is not None and category not in categories:
            problems.append(f"{where}: category {category!r} is not in `categories`")
        else:
            labels[label_id] = VocabularyLabel(label_id, name.strip(), aliases, parents, category or "")
    if not labels:
        problems.append("labels.yaml: `labels` must be a non-empty list")
    return categories, labels


def _check_graph(labels: dict[str, VocabularyLabel], problems: list[str]) -> dict[str, int]:
    """Unknown parents, cycles and over-deep chains; returns each label's depth when acyclic."""
    for label in labels.values():
        for parent in label.parents:
            if parent not in labels:
                problems.append(f"labels.yaml: label {label.id}: unknown parent {parent!r}")
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: set[frozenset[str]] = set()

    def visit(label_id: str, path: list[str]) -> None:
        state[label_id] = 1
        for parent in labels[label_id].parents:
            if parent not in labels:
                continue
            if state.get(parent) == 1:
                loop = [*path[path.index(parent) :], parent]
                if frozenset(loop) not in cycles:
                    cycles.add(frozenset(loop))
                    problems.append(f"labels.yaml: cycle {' -> '.join(loop)}")
            elif parent not in state:
                visit(parent, [*path, parent])
        state[label_id] = 2

    for label_id in labels:
        if label_id not in state:
            visit(label_id, [label_id])
    depth: dict[str, int] = {}
    if cycles:
        return depth
    known = {
        k: VocabularyLabel(k, v.name, v.aliases, tuple(p for p in v.parents if p in labels), "")
        for k, v in labels.items()
    }
    for label_id in labels:
        if _depth_of(label_id, known, depth) > MAX_DEPTH:
            problems.append(
                f"labels.yaml: label {label_id} is {depth[label_id]} levels below a root"
                f" (at most {MAX_DEPTH})"
            )
    return depth


def _check_words(labels: dict[str, VocabularyLabel], problems: list[str]) -> dict[str, str]:
    """A word (name or alias) belongs to one label only, and is never jargon or a person guess."""
    owner: dict[str, str] = {}
    for label in labels.values():
        for word in dict.fromkeys(normalise(w) for w in (label.name, *label.aliases)):
            if not word:
                problems.append(f"labels.yaml: label {label.id}: empty name or alias")
            elif word in FORBIDDEN_JARGON or word in PERSON_GUESSES:
                kind = "WordNet jargon" if word in FORBIDDEN_JARGON else "a gender or age guess"
                problems.append(f"labels.yaml: label {label.id}: {word!r} is {kind}")
            elif word in owner:
                problems.append(f"labels.yaml: {word!r} is claimed by both {owner[word]} and {label.id}")
            else:
                owner[word] = label.id
    return owner


def _resolve_categories(
    labels: dict[str, VocabularyLabel], problems: list[str]
) -> dict[str, VocabularyLabel]:
    """A label without a category takes its first parent's (recursively)."""
    out: dict[str, VocabularyLabel] = {}
    for label in labels.values():
        current, seen = label, set()
        while not current.category and current.parents and current.parents[0] in labels:
            if current.id in seen:
                break
            seen.add(current.id)
            current = labels[current.parents[0]]
        if not current.category:
            problems.append(f"labels.yaml: label {label.id} has no category (nor a first parent with one)")
        out[label.id] = VocabularyLabel(label.id, label.name, label.aliases, label.parents, current.category)
    return out


def _check_classes(
    name: str, doc: Any, labels: Mapping[str, VocabularyLabel], problems: list[str]
) -> dict[str, tuple[str, ...]]:
    """`classes`: model class -> non-empty list of distinct known label ids."""
    if not isinstance(doc, Mapping):
        return {}
    classes = doc.get("classes")
    if not isinstance(classes, Mapping):
        problems.append(f"{name}: `classes` must be a mapping of class -> [label ids]")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for key, value in classes.items():
        ids = _strings(value)
        if not ids or len(set(ids)) != len(ids):
            problems.append(f"{name}: {key}: must list one or more distinct label ids")
            continue
        if unknown := [i for i in ids if i not in labels]:
            problems.append(f"{name}: {key}: unknown label ids {unknown}")
        out[str(key)] = ids
    return out
