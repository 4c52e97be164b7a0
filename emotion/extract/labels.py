"""Labels: from the archive or folder name (keyword), or from the annotators' majority vote."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from emotion.errors import EmotionError
from emotion.extract.report import Tally
from emotion.extract.settings import ExtractSettings
from emotion.extract.sources import (
    NOT_REGULAR,
    Container,
    Member,
    label_archives,
    member_source,
)
from emotion.facemesh.files import nfc, open_zip, zip_member_names
from emotion.store.classes import emotion_in_name

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


def load_votes(settings: ExtractSettings, layout: str, inventory: Tally) -> AnnotatorVotes | None:
    if settings.labels_source != "annotators":
        return None
    if layout != "aihub":
        raise EmotionError(
            "labels.source=annotators needs the AI Hub layout with [라벨] label archives",
            "use labels.source=folder for plain image folders",
        )
    not_regular: list[str] = []
    votes = AnnotatorVotes.load(label_archives(settings.root, not_regular), settings.zip_encoding)
    for example in not_regular:
        inventory.problem(NOT_REGULAR, example)
    for example in votes.problems:
        inventory.problem("broken_label_archive", example)
    if not len(votes):
        raise EmotionError(
            f"no annotator votes found in [라벨]*.zip under {settings.root}",
            "add the label archives next to the photo archives, or use labels.source=folder",
        )
    return votes


def member_emotion(
    settings: ExtractSettings,
    inventory: Tally,
    container: Container,
    member: Member,
    folder_emotion: str | None,
    votes: AnnotatorVotes | None,
    vote_stats: dict[str, Counter[str]],
    class_pattern: re.Pattern[str] | None,
) -> str | None:
    """The member's emotion, or None when it has none (counted and named in the report)."""
    name = container.name
    if class_pattern is not None:
        emotion = emotion_by_regex(class_pattern, member.file_name, settings.class_map)
        if emotion is None:
            inventory.count(name, "other_emotion")
            inventory.problem("no_emotion_in_name", member_source(container, member))
        return emotion
    if votes is None:
        return folder_emotion
    found, vote = votes.lookup(container.split, member.file_name)
    stats = vote_stats[f"{folder_emotion}/{container.split}"]
    stats["photos"] += 1
    if not found:
        stats["no_vote"] += 1
        inventory.count(name, "no_vote")
        inventory.problem("no_vote", member_source(container, member))
        return None
    if vote is None:
        stats["no_majority"] += 1
        inventory.count(name, "no_majority")
        inventory.problem("no_majority", member_source(container, member))
        return None
    stats["vote_agrees" if vote == folder_emotion else "vote_differs"] += 1
    if vote != folder_emotion:
        stats[f"voted_{vote}"] += 1
    return vote
