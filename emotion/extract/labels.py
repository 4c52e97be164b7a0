"""Labels: from the archive or folder name (keyword), or from the annotators' majority vote."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from emotion.data.classes import emotion_in_name
from emotion.extract.sources import nfc, open_zip, zip_member_names

ANNOTATORS = ("annot_A", "annot_B", "annot_C")


def emotion_of_path(relative: str, class_map: Mapping[str, str] | None = None) -> str | None:
    """The emotion named by the deepest path component that names exactly one
    (`source.class_map` first, then the keywords)."""
    for part in reversed(relative.split("/")):
        emotion = emotion_in_name(part, class_map)
        if emotion:
            return emotion
    return None


def emotion_by_regex(
    pattern: re.Pattern[str], file_name: str, class_map: Mapping[str, str] | None = None
) -> str | None:
    """The emotion in the first group (or group `class`) of `pattern` matched on a file name:
    a code looked up in `source.class_map` (`FE`), else a keyword (`fear`)."""
    match = pattern.search(file_name)
    if not match:
        return None
    text = match.groupdict().get("class") or (match.group(1) if match.groups() else match.group())
    return emotion_in_name(text or "", class_map)


def majority(votes: list[str | None]) -> str | None:
    """The emotion at least two of the three annotators chose, else None."""
    counts = Counter(vote for vote in votes if vote)
    if not counts:
        return None
    emotion, count = counts.most_common(1)[0]
    return emotion if count * 2 > len(ANNOTATORS) else None


class AnnotatorVotes:
    """Majority votes from the `[라벨]` JSON archives, keyed by (split, NFC file name)."""

    def __init__(self) -> None:
        self.votes: dict[tuple[str, str], list[str | None]] = {}
        self.problems: list[str] = []

    @classmethod
    def load(cls, archives: list[tuple[Path, str]], legacy_encoding: str) -> AnnotatorVotes:
        votes = cls()
        for path, split in archives:
            try:
                with open_zip(path) as archive:
                    for info, name in zip_member_names(archive, legacy_encoding):
                        if name.lower().endswith(".json"):
                            votes._add(json.loads(archive.read(info)), split)
            except Exception as error:  # a broken label archive is counted, never fatal
                votes.problems.append(f"{path.name}: {type(error).__name__}: {error}")
        return votes

    def _add(self, records: object, split: str) -> None:
        if isinstance(records, dict):
            records = records.get("data") or records.get("annotations") or [records]
        for record in records if isinstance(records, list) else []:
            if not isinstance(record, dict) or "filename" not in record:
                continue
            emotions = [
                emotion_in_name(str((record.get(key) or {}).get("faceExp") or ""))
                for key in ANNOTATORS
            ]
            self.votes[(split, nfc(str(record["filename"])))] = emotions

    def __len__(self) -> int:
        return len(self.votes)

    def lookup(self, split: str, file_name: str) -> tuple[bool, str | None]:
        """(found, majority emotion or None)."""
        emotions = self.votes.get((split, nfc(file_name)))
        if emotions is None:
            return False, None
        return True, majority(emotions)
