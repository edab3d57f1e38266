from __future__ import annotations

from feedlens.runtime import wordnet
from feedlens.services.factory import Services


def test_tabby_rolls_up_to_animal(services: Services) -> None:
    synsets = wordnet.parse_data_noun(services.store.path("wordnet-noun"))
    above = {synsets[o].name for o in wordnet.ancestors(synsets, "02123045")}
    assert {"cat", "feline", "carnivore", "mammal", "animal", "entity"} <= above
    depth = wordnet.depths(synsets, {wordnet.ROOT_OFFSET, "02121620"})
    assert depth[wordnet.ROOT_OFFSET] == 0
    assert depth["02121620"] > 6  # cat is well below entity
    espresso = {synsets[o].name for o in wordnet.ancestors(synsets, "07920052")}
    assert "beverage" in espresso and "animal" not in espresso
