"""Join the part files of a split sweep: `python -m runners.merge [FOLDER ...]` (`make merge`).

A sweep split over jobs (`part_index`/`part_count`) writes `<stem>.part-<i>-of-<n>.csv` (and its
samples file) per job. Under each folder given (default: results/), every group of part files is
upserted by key into `<stem>.csv` beside them, samples included; rows already there are kept
unless a part has the same key. Parts are left in place, so merging again changes nothing.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

from runners.results_io import MixedGpuError, ResultsFileError, merge

PART_NAME = re.compile(r"^(?P<stem>.+)\.part-(?P<index>\d+)-of-(?P<count>\d+)\.csv$")


def find_parts(folder) -> dict[Path, list[Path]]:
    """Merged file -> its part files, ordered by part index."""
    groups: dict[Path, list[tuple[int, Path]]] = defaultdict(list)
    for path in sorted(Path(folder).rglob("*.part-*-of-*.csv")):
        match = PART_NAME.match(path.name)
        if match:
            groups[path.with_name(match["stem"] + ".csv")].append((int(match["index"]), path))
    return {out: [p for _, p in sorted(parts)] for out, parts in sorted(groups.items())}


def missing_parts(parts: list[Path]) -> list[int]:
    counts = {int(PART_NAME.match(p.name)["count"]) for p in parts}
    present = {int(PART_NAME.match(p.name)["index"]) for p in parts}
    return sorted(set(range(max(counts))) - present)


def main(argv: list[str] | None = None) -> int:
    folders = (sys.argv[1:] if argv is None else argv) or ["results"]
    merged = 0
    for folder in folders:
        for out, parts in find_parts(folder).items():
            counts = sorted({int(PART_NAME.match(p.name)["count"]) for p in parts})
            if len(counts) > 1:  # parts of different splits: stale ones could override fresh rows
                names = ", ".join(p.name for p in parts)
                print(f"{out}: not merged: part files of {len(counts)} different splits ({names}); "
                      "delete the stale split's parts, then merge again")  # fmt: skip
                return 2
            try:
                result = merge(out, parts)
            except (MixedGpuError, ResultsFileError) as error:  # every part checked first: nothing written
                print(f"{out}: not merged: {error}")
                return 2
            missing = missing_parts(parts)
            note = f" (missing parts {missing}: those jobs wrote nothing yet)" if missing else ""
            print(f"{out}: {len(result)} rows after merging {len(parts)} part files{note}")
            merged += 1
    if not merged:
        print(f"no part files (*.part-<i>-of-<n>.csv) under {', '.join(folders)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
