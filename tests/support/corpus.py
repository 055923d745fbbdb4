"""Helpers shared by the tests over ../shared/corpora."""

from __future__ import annotations

from collections import Counter


def print_outcomes(title: str, outcomes: Counter[str], by_folder: Counter[tuple[str, str]]) -> None:
    """Print how a corpus run ended: per outcome, then per corpus folder."""
    print(f"\n{title}")
    for kind, count in outcomes.most_common():
        print(f"  {count:5d}  {kind}")
    print("by folder:")
    for (folder, kind), count in sorted(by_folder.items()):
        print(f"  {folder:<10} {count:5d}  {kind}")
