"""Run every benchmark, each in its own process, and sum up their figures.

Each script's output is shown as it comes. The last line is one JSON object
with the headline figures (poll_10k_s, poll_ratio, restore_10k_s,
restore_ratio, enforce_100k_s, rss_mb) and the rest each script reported.

    .venv/bin/python bench/run_all.py        (or: make bench)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ("poll.py", "restore.py", "enforce.py", "rss.py")
HEADLINE = (
    "poll_10k_s",
    "poll_ratio",
    "restore_10k_s",
    "restore_ratio",
    "enforce_100k_s",
    "rss_mb",
)


def main() -> int:
    figures: dict[str, float] = {}
    failed = []
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        found = run(script)
        if found is None:
            failed.append(script)
        else:
            figures.update(found)

    summary = {name: figures.get(name) for name in HEADLINE}
    summary.update({k: v for k, v in figures.items() if k not in summary})
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    print(json.dumps(summary), flush=True)
    return 1 if failed else 0


def run(script: str) -> dict[str, float] | None:
    """Run one script, echoing its output; its figures, or None if it failed."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / script)],
        stdout=subprocess.PIPE,
        text=True,
    )
    last = ""
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.strip():
            last = line
    if process.wait() != 0:
        return None
    try:
        return json.loads(last)
    except json.JSONDecodeError:
        return None


if __name__ == "__main__":
    sys.exit(main())
