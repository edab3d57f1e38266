"""Search indexes of several processes (replicas) over one database, on both real backends: each loads
what the others write by the embeddings' sequence, also when transactions commit out of order, drops
what they erase, and a restarted one reads only what was written since its saved index. No models: the
vectors are random and only the `visual` index is used."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from feedlens.config import Settings
from feedlens.index.store import IndexStore, load_index
from feedlens.runtime.text_encoder import TextEncoder
from feedlens.services.access import AccessService
from feedlens.services.search import VISUAL, SearchService
from feedlens.storage import embeddings as vectors
from feedlens.storage.database import Database
from feedlens.storage.tables import Image

RNG = np.random.default_rng(21)


def replica(db: Database, settings: Settings, index_dir: Path) -> SearchService:
    """A search service as one `feedlens serve` has it; erasures elsewhere are looked for on every search."""
    search = settings.search.model_copy(update={"removal_check_s": 0.0, "save_interval_s": 0.0})
    encoder = cast(TextEncoder, SimpleNamespace(dim=384))  # word queries are not used here
    return SearchService(
        db, IndexStore(index_dir), encoder, settings.model_copy(update={"search": search}), "t"
    )


def add_image(db: Database, workspace: int, name: str) -> str:
    """An image row and its visual vector, committed (what another replica's ingest does)."""
    with db.session() as session:
        image_id = write_image(session, workspace, name)
    return image_id


def write_image(session: Session, workspace: int, name: str) -> str:
    image = Image(
        workspace_id=workspace,
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        blob=hashlib.sha256(name.encode()).hexdigest(),
        format="png",
        width=32,
        height=32,
        size_bytes=100,
        source=name,
    )
    session.add(image)
    session.flush()
    vectors.put(session, image.id, VISUAL, "test", RNG.standard_normal(1280).astype(np.float32))
    return image.id


def held(search: SearchService, workspace: int) -> set[str]:
    """What a search would find: the index after the search's catch-up."""
    search._catch_up(workspace, VISUAL)
    return set(search.indexes.get(workspace, VISUAL, 1280).ids())


def test_replicas_catch_up_with_each_other(db: Database, settings: Settings, tmp_path: Path) -> None:
    workspace = AccessService(db).create_workspace("team-s")
    a_id = add_image(db, workspace, "a")
    b = replica(db, settings, tmp_path / "index")
    assert held(b, workspace) == {a_id}
    later = add_image(db, workspace, "later")  # written by another replica after B loaded its index
    assert held(b, workspace) == {a_id, later}
    with db.session() as session:  # erased through another replica: no hook runs here
        session.execute(delete(Image).where(Image.id == later))
    assert held(b, workspace) == {a_id}


def test_a_transaction_that_commits_late_is_not_passed_over(
    db: Database, settings: Settings, tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: its commits come in sequence order")
    workspace = AccessService(db).create_workspace("team-s")
    b = replica(db, settings, tmp_path / "index")
    assert held(b, workspace) == set()
    with db.session() as slow:  # began first (lower sequence), commits last
        early = write_image(slow, workspace, "early")
        quick = add_image(db, workspace, "quick")
        assert held(b, workspace) == {quick}
    assert held(b, workspace) == {quick, early}


def test_a_restarted_replica_reads_only_what_was_written_since_its_saved_index(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    workspace = AccessService(db).create_workspace("team-s")
    first = [add_image(db, workspace, f"i{n}") for n in range(3)]
    before = replica(db, settings, tmp_path / "index")
    assert held(before, workspace) == set(first)
    before.flush()
    saved = load_index(before.indexes.path(workspace, VISUAL))
    assert set(saved.ids()) == set(first) and isinstance(saved.note.get("seq"), int)
    newer = add_image(db, workspace, "newer")
    with db.session() as session:
        assert vectors.changed_from(session, workspace, VISUAL, saved.note["seq"]) == [newer]
    after = replica(db, settings, tmp_path / "index")  # one data folder: it opens the saved file
    assert held(after, workspace) == {*first, newer}


def test_numbers_freed_by_deleting_the_newest_row_are_not_handed_out_again(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The newest vector rewritten, then the newest image erased and another added: the index holds as many
    vectors as the table each time, so only the sequence can tell it what changed."""
    workspace = AccessService(db).create_workspace("team-s")
    old, newest = add_image(db, workspace, "old"), add_image(db, workspace, "newest")
    b = replica(db, settings, tmp_path / "index")
    assert held(b, workspace) == {old, newest}
    rewritten = RNG.standard_normal(1280).astype(np.float32)
    with db.session() as session:
        vectors.put(session, newest, VISUAL, "test", rewritten)
    held(b, workspace)
    index = b.indexes.get(workspace, VISUAL, 1280)
    [[(hit, score)]] = index.search((rewritten / np.linalg.norm(rewritten))[None], 1)
    assert hit == newest and score == pytest.approx(1.0, abs=1e-5)  # the new vector, not the old one
    with db.session() as session:  # erased elsewhere, and another image added there at once
        session.execute(delete(Image).where(Image.id == newest))
        replacement = write_image(session, workspace, "replacement")
    assert held(b, workspace) == {old, replacement}
