"""atheris (libFuzzer) harness for the one safe decoder, `feedlens.images.ImageDecoder.decode`, and the
pipeline's decode path. The contract (tests/fuzz/contract.py): any bytes end in a valid `DecodedImage`
or an `ImageError`; any other exception, an image outside the limits, an input slower than `-timeout`
or heavier than `-rss_limit_mb` is a bug, and libFuzzer writes it to `<artifact_prefix>crash-<sha1>`.

    python -m tests.fuzz.fuzz_decoder --seed-corpus build/fuzz/decoder -max_total_time=600   # make fuzz
    python -m tests.fuzz.fuzz_decoder build/fuzz/crash-0123...                               # replay one

`--seed-corpus DIR` writes the generated seeds (tests/fuzz/seeds.py) into DIR and fuzzes with it as the
corpus, with a dictionary of format tokens; `--tolerate-known` steps over the bugs already listed in
tests/fuzz/regressions.py (the bounded CI run: they have their own tests). Every libFuzzer flag passes
through (-runs=, -max_total_time=, -timeout=, -rss_limit_mb=, -jobs=, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["PIL", "feedlens.images", "feedlens.services.pipeline"]):
    from PIL import Image

    Image.init()  # imports every format plugin now, so their Python code is instrumented too
    from tests.fuzz.contract import check_input, check_input_tolerant

from tests.fuzz.seeds import write_corpus, write_dictionary


def _take(args: list[str], flag: str, value: bool) -> str | bool | None:
    """Remove `flag` (and its value, if it has one) from `args`; what it was."""
    if flag not in args:
        return None
    at = args.index(flag)
    if not value:
        del args[at]
        return True
    found = args[at + 1]
    del args[at : at + 2]
    return found


def main(argv: list[str]) -> None:
    args = list(argv)
    corpus = _take(args, "--seed-corpus", value=True)
    tolerate = _take(args, "--tolerate-known", value=False)
    if isinstance(corpus, str):
        write_corpus(Path(corpus))
        args.append(corpus)
        if not any(a.startswith("-dict=") for a in args):
            args.append(f"-dict={write_dictionary(Path(corpus).parent / 'decoder.dict')}")
    if not any(a.startswith("-max_len=") for a in args):
        args.append("-max_len=65536")  # room to grow past the seeds (a few KB) without slowing every run
    atheris.Setup(args, check_input_tolerant if tolerate else check_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
