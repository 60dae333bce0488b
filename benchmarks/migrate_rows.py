"""Rewrites recorded results into the form the runners record now; safe to run again and again.

    python -m benchmarks.migrate_rows            # every benchmarks/results/*.jsonl and *.json
    python -m benchmarks.migrate_rows --dry_run  # say what would change, write nothing
    python -m benchmarks.migrate_rows FILE ...

Two rewrites, on the text of each line (the JSON around them is left byte for byte):

- absolute paths become relative to the repository (`runner.relative_text`): a path inside it
  loses its prefix, one beside it starts with `../` (`../runs/overfit/...`, `../cache/cifar10`),
  the home directory is `~`;
- a recorded `python benchmarks/NAME.py` becomes `python -m benchmarks.NAME`, the way the
  scripts run now.

A line already in that form is left alone, so a second run changes nothing. Runs and ids are
not touched: a run's id hashes its flags as the subprocess gets them (absolute paths), so the
rows keep the ids their model directories are named by.

Each file is rewritten atomically (a reader sees the old file or the new one), and a runner may
keep appending while this runs: lines that reach the old file after it was read are carried
over to the new one, rewritten the same way.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from typing import Optional

from benchmarks import runner
from rat_tf.files import atomic_write_text

SCRIPT = re.compile(r"\bpython benchmarks/(\w+)\.py\b")


def rewrite_line(line: str) -> str:
    """One line (or any text) in the current form."""
    return SCRIPT.sub(r"python -m benchmarks.\1", runner.relative_text(line))


def migrate(path: str, dry_run: bool = False) -> int:
    """Rewrites `path` in place (atomically); returns the number of lines that changed."""
    with open(path, "rb") as old:
        data = old.read()
        # A JSON-lines file may get a line appended meanwhile: one not yet complete is carried over below.
        complete = data[:data.rfind(b"\n") + 1] if path.endswith(".jsonl") else data
        lines = complete.decode("utf-8").splitlines(keepends=True)
        new = [rewrite_line(line) for line in lines]
        changed = sum(a != b for a, b in zip(lines, new))
        if changed == 0 or dry_run:
            return changed
        atomic_write_text(path, "".join(new))
        old.seek(len(complete))
        late = old.read().decode("utf-8")   # appended to the old file after it was read
    if late:
        with open(path, "a", encoding="utf-8") as f:
            f.write(rewrite_line(late))
    return changed


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("files", nargs="*", help="results files (default: benchmarks/results/*.jsonl and *.json)")
    parser.add_argument("--dry_run", action="store_true", help="count the lines that would change, write nothing")
    args = parser.parse_args(argv)
    paths = args.files or sorted(glob.glob(os.path.join(runner.RESULTS_DIR, "*.jsonl"))
                                 + glob.glob(os.path.join(runner.RESULTS_DIR, "*.json")))
    for path in paths:
        changed = migrate(path, args.dry_run)
        verb = "would change" if args.dry_run else "changed"
        print(f"{os.path.relpath(path, runner.REPO)}: {changed} line(s) {verb}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
