"""Tables that fit the terminal: one line per row, never wrapped.

On a narrow terminal the least useful columns go first (each column says when), then the long cells of
the flexible columns are cut with an ellipsis (paths from the start: the file name is the end). Off a
terminal (a pipe, a file) nothing is cut unless COLUMNS asks for a width.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

FLEX_MIN = 10  # the default narrowest a flexible column is cut to
UNLIMITED = 100_000


@dataclass(frozen=True, slots=True)
class Col:
    header: str
    drop: int = 0  # 0: always shown; otherwise dropped on a narrow terminal, the highest number first
    flex: bool = False  # long cells may be cut to fit
    min_width: int = FLEX_MIN  # a flexible column is not cut below this (it is dropped first, if it may be)
    cut_start: bool = False  # cut at the start, keeping the end (paths)
    justify: Literal["left", "right", "center"] = "left"


def out_console() -> Console:
    """stdout: the terminal's width on a terminal or where COLUMNS says; unlimited in a pipe or file."""
    console = Console()
    if console.is_terminal or os.environ.get("COLUMNS"):
        return console
    return Console(width=UNLIMITED)


def _cells(rows: Iterable[Sequence[str]], markup: bool) -> list[list[Text]]:
    return [[Text.from_markup(c) if markup else Text(c) for c in row] for row in rows]


def _natural(columns: Sequence[Col], cells: list[list[Text]]) -> list[int]:
    return [max([len(col.header), *(row[i].cell_len for row in cells)]) for i, col in enumerate(columns)]


def _fit(columns: Sequence[Col], natural: list[int], width: int) -> tuple[list[int], list[int]]:
    """The columns kept (indexes) and their widths within `width` characters of table."""
    kept = list(range(len(columns)))

    def floor(i: int) -> int:
        col = columns[i]
        return min(natural[i], max(col.min_width, len(col.header))) if col.flex else natural[i]

    def frame(n: int) -> int:
        return 3 * n + 1  # borders and one space of padding either side of each cell

    droppable = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    while droppable and sum(floor(i) for i in kept) + frame(len(kept)) > width:
        kept.remove(droppable.pop(0))
    widths = {i: natural[i] for i in kept}
    excess = sum(widths.values()) + frame(len(kept)) - width
    while excess > 0:  # shave the widest flexible column, one character at a time
        room = [i for i in kept if columns[i].flex and widths[i] > floor(i)]
        if not room:
            break  # rich cuts the rest
        widest = max(room, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return kept, [widths[i] for i in kept]


def _cut(text: Text, width: int, from_start: bool) -> Text:
    if text.cell_len <= width or not from_start:
        return text
    return Text("…") + text[len(text) - (width - 1) :]


def fitted_table(
    console: Console, columns: Sequence[Col], rows: Iterable[Sequence[str]], markup: bool = True
) -> Table:
    """A table of `rows` (cells as rich markup unless `markup` is False) that fits `console`'s width."""
    cells = _cells(rows, markup)
    natural = _natural(columns, cells)
    kept, widths = _fit(columns, natural, console.width)
    table = Table()
    for i, width in zip(kept, widths, strict=True):
        col = columns[i]
        table.add_column(col.header, width=width, no_wrap=True, overflow="ellipsis", justify=col.justify)
    for row in cells:
        table.add_row(*(_cut(row[i], w, columns[i].cut_start) for i, w in zip(kept, widths, strict=True)))
    return table


def print_table(
    columns: Sequence[Col],
    rows: Iterable[Sequence[str]],
    console: Console | None = None,
    markup: bool = True,
) -> None:
    console = console or out_console()
    console.print(fitted_table(console, columns, rows, markup))
