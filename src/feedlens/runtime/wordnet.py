"""Reads hypernym links out of a WordNet 3.0 `data.noun` file (format: wndb(5)).

nltk's reader was the first choice, but it needs a `lexnames` file that Debian's wordnet-base does not
ship; the part we need (synset words and `@`/`@i` pointers) is a few lines of the documented format.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT_OFFSET = "00001740"  # entity.n.01
_HYPERNYM_POINTERS = {"@", "@i"}  # hypernym, instance hypernym


@dataclass(frozen=True, slots=True)
class NounSynset:
    offset: str  # 8 digits; the ImageNet id is "n" + offset
    words: tuple[str, ...]
    hypernyms: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.words[0].replace("_", " ")


def parse_data_noun(path: Path) -> dict[str, NounSynset]:
    """All noun synsets by 8-digit offset."""
    synsets: dict[str, NounSynset] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):  # licence header lines start with two spaces
                continue
            fields = line.split(" | ", 1)[0].split()
            offset = fields[0]
            word_count = int(fields[3], 16)
            words = tuple(fields[4 + 2 * i] for i in range(word_count))
            pos = 4 + 2 * word_count
            pointer_count = int(fields[pos])
            pointers = fields[pos + 1 : pos + 1 + 4 * pointer_count]
            hypernyms = tuple(
                pointers[i + 1]
                for i in range(0, len(pointers), 4)
                if pointers[i] in _HYPERNYM_POINTERS and pointers[i + 2] == "n"
            )
            synsets[offset] = NounSynset(offset=offset, words=words, hypernyms=hypernyms)
    return synsets


def ancestors(synsets: dict[str, NounSynset], offset: str) -> set[str]:
    """Every synset above `offset` through any hypernym path (not including itself)."""
    seen: set[str] = set()
    queue = deque(synsets[offset].hypernyms)
    while queue:
        current = queue.popleft()
        if current not in seen:
            seen.add(current)
            queue.extend(synsets[current].hypernyms)
    return seen


def depths(synsets: dict[str, NounSynset], offsets: set[str]) -> dict[str, int]:
    """Shortest number of hypernym steps from each synset in `offsets` up to the root `entity`."""
    memo: dict[str, int] = {ROOT_OFFSET: 0}

    def depth(offset: str) -> int:
        if offset not in memo:
            parents = synsets[offset].hypernyms
            memo[offset] = 1 + min(depth(p) for p in parents) if parents else 0
        return memo[offset]

    return {o: depth(o) for o in offsets}
