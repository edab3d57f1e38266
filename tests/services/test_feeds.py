"""Feed exports (JSONL, CSV) written to real files and read back through `read_feed`."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from feedlens.services.feeds import (
    FeedError,
    FeedErrorCode,
    FeedRow,
    PostRecord,
    caption_hashtags,
    feed_format,
    read_feed,
    resolve_image,
)

WHEN = datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
UNIX_WHEN = int(WHEN.timestamp())


def _jsonl(tmp_path: Path, *records: Any, name: str = "feed.jsonl") -> Path:
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _csv(tmp_path: Path, header: list[str], *rows: list[str], name: str = "feed.csv") -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def _rows(path: Path, **kwargs: Any) -> list[FeedRow]:
    return list(read_feed(path, **kwargs))


def _one(path: Path) -> PostRecord:
    rows = _rows(path)
    assert len(rows) == 1
    assert rows[0].error is None, rows[0].error
    assert rows[0].record is not None
    return rows[0].record


def _error(path: Path) -> tuple[FeedErrorCode, str]:
    rows = _rows(path)
    assert len(rows) == 1
    assert rows[0].record is None
    assert rows[0].error is not None
    return rows[0].error.code, rows[0].error.message


def _record_error(tmp_path: Path, **fields: Any) -> tuple[FeedErrorCode, str]:
    return _error(_jsonl(tmp_path, {"id": "p1", "image": "a.jpg"} | fields))


FULL = {
    "id": "  C3xYz  ",
    "platform": "Instagram",
    "image": "photos/a.jpg",
    "images": ["photos/a.jpg", "https://cdn.example.com/b.jpg"],
    "caption": "Sunset at the pier #Sunset #beach",
    "author": "@alice",
    "created_at": "2024-01-02T10:00:00Z",
    "hashtags": ["#Travel", "sunset"],
    "likes": 1234,
    "comments": 56,
    "shares": 7,
    "url": "https://www.instagram.com/p/C3xYz/",
    "other": {"ignored": True},
}


def _assert_full(record: PostRecord) -> None:
    assert record.id == "C3xYz"
    assert record.platform == "instagram"
    assert record.image == "photos/a.jpg"
    assert record.images == ["photos/a.jpg", "https://cdn.example.com/b.jpg"]
    assert record.caption == "Sunset at the pier #Sunset #beach"
    assert record.author == "alice"
    assert record.created_at == WHEN
    assert record.hashtags == ["travel", "sunset", "beach"]
    assert (record.likes, record.comments, record.shares) == (1234, 56, 7)
    assert record.url == "https://www.instagram.com/p/C3xYz/"


def test_feed_format_by_suffix() -> None:
    assert feed_format(Path("a.jsonl")) == "jsonl"
    assert feed_format(Path("a.NDJSON")) == "jsonl"
    assert feed_format(Path("a.json-lines")) == "jsonl"
    assert feed_format(Path("dir.d/a.CSV")) == "csv"
    assert feed_format(Path("a.json")) is None
    assert feed_format(Path("a")) is None


def test_jsonl_with_every_field(tmp_path: Path) -> None:
    _assert_full(_one(_jsonl(tmp_path, FULL)))


def test_jsonl_with_aliases(tmp_path: Path) -> None:
    aliased = {
        "Post ID": "C3xYz",
        "network": "INSTAGRAM",
        "image_url": "photos/a.jpg",
        "media_urls": ["https://cdn.example.com/b.jpg"],
        "text": "Sunset at the pier #Sunset #beach",
        "username": "@alice",
        "timestamp": UNIX_WHEN,
        "tags": "#Travel sunset",
        "like_count": "1,234",
        "comment_count": 56,
        "retweets": "7",
        "permalink": "https://www.instagram.com/p/C3xYz/",
    }
    _assert_full(_one(_jsonl(tmp_path, aliased)))


def test_canonical_key_wins_and_blank_values_fall_through(tmp_path: Path) -> None:
    record = _one(
        _jsonl(
            tmp_path, {"id": "1", "text": "alias", "caption": "canonical", "image": "", "media_url": "m.jpg"}
        )
    )
    assert record.caption == "canonical"
    assert record.image == "m.jpg"


def test_numeric_id_and_direct_construction() -> None:
    record = PostRecord.model_validate(
        {"id": 17900000000000001, "images": ["b.jpg", "b.jpg"], "image": "a.jpg"}
    )
    assert record.id == "17900000000000001"
    assert record.images == ["a.jpg", "b.jpg"]
    assert record.image == "a.jpg"
    only_images = PostRecord(id="x", images=["z.jpg"])
    assert only_images.image == "z.jpg"
    with pytest.raises(ValidationError):
        record.likes = 3  # type: ignore[misc]
    assert record.model_dump(mode="json")["images"] == ["a.jpg", "b.jpg"]


def test_csv_with_every_field_and_aliases(tmp_path: Path) -> None:
    header = ["post_id", "Platform", "image_path", "images", "caption", "user", "date", "hashtags"]
    header += ["likes_count", "comments", "share_count", "url", "unrelated"]
    row = ["C3xYz", "instagram", "photos/a.jpg", "photos/a.jpg https://cdn.example.com/b.jpg"]
    row += ["Sunset at the pier #Sunset #beach", "@alice", "2024-01-02 10:00:00", "#Travel, sunset"]
    row += ["1,234", "56", "7", "https://www.instagram.com/p/C3xYz/", "x"]
    _assert_full(_one(_csv(tmp_path, header, row)))


def test_csv_empty_cells_are_none_and_line_numbers_follow_multiline_cells(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        ["id", "image", "caption", "likes", "created_at", "author"],
        ["a", "a.jpg", "line one\nline two\n\nline four", "", "", ""],
        ["b", "b.jpg", "", "3", "", ""],
    )
    rows = _rows(path)
    assert [row.line for row in rows] == [2, 6]
    first, second = (row.record for row in rows)
    assert first is not None and second is not None
    assert first.caption == "line one\nline two\n\nline four"
    assert (first.likes, first.created_at, first.author) == (None, None, None)
    assert second.caption is None and second.likes == 3


def test_hashtags_from_list_string_and_caption(tmp_path: Path) -> None:
    base = {"id": "1", "image": "a.jpg"}
    from_list = _one(_jsonl(tmp_path, base | {"hashtags": ["#Cat", "dog", "cat", " #Bird "]}, name="a.jsonl"))
    assert from_list.hashtags == ["cat", "dog", "bird"]
    from_string = _one(_jsonl(tmp_path, base | {"hashtags": "#cat,dog  #Bird#fish"}, name="b.jsonl"))
    assert from_string.hashtags == ["cat", "dog", "bird", "fish"]
    merged = _one(
        _jsonl(
            tmp_path, base | {"hashtags": ["cat"], "caption": "Hello #Dog and #cat #Émile"}, name="c.jsonl"
        )
    )
    assert merged.hashtags == ["cat", "dog", "émile"]


@pytest.mark.parametrize(
    ("caption", "tags"),
    [
        ("#sun#sea at 5pm", ["sun", "sea"]),
        ("a#b and c&#39;s page/#anchor", []),
        ("we are #1 and #1st", ["1st"]),
        ("(#in_parens) #end.", ["in_parens", "end"]),
        ("नमस्ते #हिंदी #東京 #café", ["हिंदी", "東京", "café"]),
        ("##double # alone", ["double"]),
    ],
)
def test_caption_hashtag_rules(caption: str, tags: list[str]) -> None:
    assert caption_hashtags(caption) == tags


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-02T10:00:00Z",
        "2024-01-02T10:00:00.000+00:00",
        "2024-01-02T12:00:00+02:00",
        "2024-01-02T05:00:00-05:00",
        "2024-01-02T10:00:00",
        "2024-01-02 10:00:00",
        UNIX_WHEN,
        float(UNIX_WHEN),
        str(UNIX_WHEN),
    ],
)
def test_created_at_formats_become_aware_utc(tmp_path: Path, value: object) -> None:
    record = _one(_jsonl(tmp_path, {"id": "1", "image": "a.jpg", "created_at": value}))
    assert record.created_at == WHEN
    assert record.created_at is not None and record.created_at.utcoffset() is not None
    assert record.created_at.tzinfo == UTC


@pytest.mark.parametrize("value", ["yesterday", UNIX_WHEN * 1000, True, "2024-13-01"])
def test_bad_created_at_is_a_record_error(tmp_path: Path, value: object) -> None:
    code, message = _record_error(tmp_path, created_at=value)
    assert code == FeedErrorCode.INVALID_RECORD
    assert message.startswith("line 1: created_at")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1234, 1234),
        ("1,234", 1234),
        ("1.2k", 1200),
        ("3M", 3_000_000),
        ("2.5 B", 2_500_000_000),
        (12.0, 12),
        ("0", 0),
    ],
)
def test_counts(tmp_path: Path, value: object, expected: int) -> None:
    assert _one(_jsonl(tmp_path, {"id": "1", "image": "a.jpg", "likes": value})).likes == expected


@pytest.mark.parametrize("value", [-1, "-5", "-1.2k", 1.5, "1.5", "12,34", "lots", True, [1]])
def test_bad_counts(tmp_path: Path, value: object) -> None:
    code, message = _record_error(tmp_path, like_count=value)
    assert code == FeedErrorCode.INVALID_RECORD
    assert "likes (from 'like_count')" in message


def test_bad_json_line_is_reported_and_parsing_goes_on(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        {"id": "1", "image": "a.jpg"},
        "",
        '{"id": "2", "image": ',
        "[1, 2]",
        {"id": "3", "image": "c.jpg"},
    )
    rows = _rows(path)
    assert [row.line for row in rows] == [1, 3, 4, 5]
    assert rows[1].error is not None and rows[1].error.code == FeedErrorCode.INVALID_JSON
    assert rows[1].error.message.startswith("line 3: ")
    assert rows[2].error is not None and rows[2].error.code == FeedErrorCode.INVALID_RECORD
    assert "expected a JSON object" in rows[2].error.message
    assert rows[3].record is not None and rows[3].record.id == "3"
    assert rows[0].ok and rows[3].ok


def test_record_errors_name_the_field_and_line(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        {"image": "a.jpg"},
        {"id": "2"},
        {"id": "3", "image": "a.jpg", "likes": -1},
        {"id": "4", "image": "a.jpg", "url": "javascript:alert(1)"},
        {"id": "5", "image": "a.jpg", "caption": "x" * 10_001},
        {"id": "6", "image": "file:///etc/passwd"},
        {"id": "7", "images": ["ok.jpg", "data:image/png;base64,AAAA"]},
        {"id": "x" * 129, "image": "a.jpg"},
        {"id": "9", "image": "a.jpg", "author": 5, "platform": "p" * 33},
        {"id": "10", "image": "a.jpg", "caption": "nul \u0000 here"},
        '{"id": "11", "image": "a.jpg", "caption": "lone \\ud800"}',
    )
    errors = [(row.error.code, row.error.message) for row in _rows(path) if row.error]
    assert len(errors) == 11
    expected = [
        (FeedErrorCode.INVALID_RECORD, "line 1: id: required (keys: id, post_id)"),
        (FeedErrorCode.NO_IMAGE, "line 2: no image"),
        (FeedErrorCode.INVALID_RECORD, "line 3: likes: "),
        (FeedErrorCode.INVALID_RECORD, "line 4: url: only http and https"),
        (FeedErrorCode.INVALID_RECORD, "line 5: caption: "),
        (FeedErrorCode.BAD_IMAGE_REF, "line 6: image 'file:///etc/passwd': only http and https"),
        (FeedErrorCode.BAD_IMAGE_REF, "line 7: images[1] 'data:"),
        (FeedErrorCode.INVALID_RECORD, "line 8: id: "),
        (FeedErrorCode.INVALID_RECORD, "line 9: platform: "),
        (FeedErrorCode.INVALID_RECORD, "line 10: caption: contains a NUL"),
        (FeedErrorCode.INVALID_RECORD, "line 11: caption: contains an unpaired surrogate"),
    ]
    for (code, message), (want_code, want_start) in zip(errors, expected, strict=True):
        assert code == want_code, message
        assert message.startswith(want_start), message
    assert "; author: " in errors[8][1]  # every bad field is named


def test_csv_without_id_or_image_column_raises(tmp_path: Path) -> None:
    for header, missing in (
        (["image", "caption"], "no id column"),
        (["post_id", "caption"], "no image column"),
    ):
        path = _csv(tmp_path, header, ["a.jpg", "x"])
        with pytest.raises(FeedError) as info:
            read_feed(path)  # raised at call time, not at the first next()
        assert info.value.code == "feed_invalid_header"
        assert missing in info.value.message
    path = _csv(tmp_path, ["id", "image", "Image"], ["1", "a.jpg", "b.jpg"])
    with pytest.raises(FeedError, match="repeats column"):
        read_feed(path)


def test_csv_row_with_extra_cells_or_missing_id(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text("id,image\n1,a.jpg,oops\n,b.jpg\n3,c.jpg\n", encoding="utf-8")
    rows = _rows(path)
    assert [(row.line, row.error.code if row.error else None) for row in rows] == [
        (2, FeedErrorCode.INVALID_RECORD),
        (3, FeedErrorCode.INVALID_RECORD),
        (4, None),
    ]
    assert rows[0].error is not None and "more cell" in rows[0].error.message


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
@pytest.mark.parametrize("name", ["feed.jsonl", "feed.csv"])
def test_empty_feed_has_no_rows(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert _rows(path) == []


def test_csv_header_only_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text("\n\nid,image\n\n   \n1,a.jpg\n", encoding="utf-8")
    rows = _rows(path)
    assert [(row.line, row.ok) for row in rows] == [(6, True)]


def test_utf8_bom_is_tolerated(tmp_path: Path) -> None:
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "1", "image": "a.jpg"}).encode() + b"\r\n")
    assert _one(jsonl).id == "1"
    csv_path = tmp_path / "feed.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfid,image\r\n1,a.jpg\r\n")
    assert _one(csv_path).image == "a.jpg"


def test_over_long_line_is_an_error_row_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    huge = json.dumps({"id": "big", "image": "a.jpg", "caption": "x" * 20_000_000}).encode()
    path.write_bytes(
        json.dumps({"id": "1", "image": "a.jpg"}).encode() + b"\n" + huge + b'\n{"id": "3", "image": "c.jpg"}'
    )
    tracemalloc.start()
    try:
        rows = _rows(path, max_line_bytes=10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"peak {peak} bytes: the long line was read whole"
    assert [(row.line, row.error.code if row.error else None) for row in rows] == [
        (1, None),
        (2, FeedErrorCode.LINE_TOO_LONG),
        (3, None),
    ]


def test_line_exactly_at_the_limit_is_accepted(tmp_path: Path) -> None:
    line = json.dumps({"id": "1", "image": "a.jpg"}).encode()
    path = tmp_path / "feed.jsonl"
    path.write_bytes(line + b"\n" + line)
    rows = _rows(path, max_line_bytes=len(line))
    assert [row.ok for row in rows] == [True, True]
    assert [row.ok for row in _rows(path, max_line_bytes=len(line) - 1)] == [False, False]


def test_csv_over_long_line(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text("id,image,caption\n1,a.jpg," + "x" * 5000 + "\n2,b.jpg,ok\n", encoding="utf-8")
    rows = _rows(path, max_line_bytes=1000)
    assert [(row.line, row.error.code if row.error else None) for row in rows] == [
        (2, FeedErrorCode.LINE_TOO_LONG),
        (3, None),
    ]
    with pytest.raises(FeedError) as info:
        read_feed(path, max_line_bytes=10)
    assert info.value.code == "feed_invalid_header"


def test_csv_cell_over_the_csv_field_limit_is_a_row_error(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    big = "y" * (csv.field_size_limit() + 10)
    path.write_text(f'id,image,caption\n1,a.jpg,"{big}"\n2,b.jpg,ok\n', encoding="utf-8")
    rows = _rows(path)
    assert [(row.line, row.error.code if row.error else None) for row in rows] == [
        (2, FeedErrorCode.INVALID_RECORD),
        (3, None),
    ]


def test_non_utf8_bytes_are_row_errors(tmp_path: Path) -> None:
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_bytes(b'{"id": "1", "image": "a.jpg", "caption": "caf\xe9"}\n{"id": "2", "image": "b.jpg"}\n')
    rows = _rows(jsonl)
    assert rows[0].error is not None and rows[0].error.code == FeedErrorCode.INVALID_ENCODING
    assert rows[0].error.message.startswith("line 1: not UTF-8")
    assert rows[1].ok
    csv_path = tmp_path / "feed.csv"
    csv_path.write_bytes(b"id,image,caption\n1,a.jpg,caf\xe9\n2,b.jpg,ok\n")
    rows = _rows(csv_path)
    assert rows[0].error is not None and rows[0].error.code == FeedErrorCode.INVALID_ENCODING
    assert "'caption'" in rows[0].error.message
    assert rows[1].ok


def test_non_utf8_header_or_utf16_feed_raises(tmp_path: Path) -> None:
    csv_path = tmp_path / "feed.csv"
    csv_path.write_bytes(b"id,imag\xe9\n1,a.jpg\n")
    with pytest.raises(FeedError, match="not valid UTF-8"):
        read_feed(csv_path)
    utf16 = tmp_path / "feed.jsonl"
    utf16.write_text('{"id": "1", "image": "a.jpg"}\n', encoding="utf-16")
    with pytest.raises(FeedError) as info:
        read_feed(utf16)
    assert info.value.code == "feed_invalid_encoding"


def test_unreadable_feeds_raise_at_call_time(tmp_path: Path) -> None:
    with pytest.raises(FeedError) as info:
        read_feed(tmp_path / "missing.jsonl")
    assert info.value.code == "feed_unreadable"
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(FeedError) as info:
        read_feed(folder)
    assert info.value.code == "feed_unreadable"
    with pytest.raises(FeedError) as info:
        read_feed(tmp_path / "feed.txt")
    assert info.value.code == "feed_unsupported_format"
    assert info.value.to_dict()["code"] == "feed_unsupported_format"


def test_rows_are_streamed(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(5000):
            fh.write(json.dumps({"id": str(i), "image": f"{i}.jpg"}) + "\n")
    rows = read_feed(path)
    first = next(rows)
    assert first.record is not None and first.record.id == "0"
    assert sum(1 for _ in rows) == 4999


def test_resolve_image(tmp_path: Path) -> None:
    assert resolve_image("photos/a.jpg", tmp_path) == tmp_path / "photos" / "a.jpg"
    assert resolve_image(" ./a.jpg ", tmp_path) == tmp_path / "a.jpg"
    assert resolve_image("/srv/img/a.jpg", tmp_path) == Path("/srv/img/a.jpg")
    assert resolve_image("https://cdn.example.com/a.jpg?x=1", tmp_path) == "https://cdn.example.com/a.jpg?x=1"
    assert resolve_image("HTTP://cdn.example.com/a.jpg", tmp_path) == "HTTP://cdn.example.com/a.jpg"
    for bad in (
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
        "ftp://h/a.jpg",
        "//cdn.example.com/a.jpg",
        "",
        "http://",
        "http://h:99999/a",
    ):
        with pytest.raises(FeedError) as info:
            resolve_image(bad, tmp_path)
        assert info.value.code == "feed_bad_image_ref", bad


def test_errors_serialise(tmp_path: Path) -> None:
    row = _rows(_jsonl(tmp_path, {"id": "1"}))[0]
    assert row.error is not None
    assert row.error.to_dict() == {"code": "feed_no_image", "message": row.error.message}
