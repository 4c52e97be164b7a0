"""Class sets and the keywords that name an emotion in archive, folder and file names."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

BINARY: tuple[str, ...] = ("neutral", "anxious")
SEVEN: tuple[str, ...] = ("neutral", "anxious", "happy", "embarrassed", "angry", "hurt", "sad")
CLASS_SETS: dict[str, tuple[str, ...]] = {"binary": BINARY, "seven": SEVEN}
# Every class a keyword can name, in the order `classes=found` lists them: AI Hub's seven
# first (so a found set of AI Hub data reads like `seven`), then the other basic emotions of
# CK+, FER2013, JAFFE and KDEF.
CANONICAL_ORDER: tuple[str, ...] = (*SEVEN, "surprised", "disgusted", "contempt")

# Keyword -> class name. Korean keywords (AI Hub dataset 82) match anywhere in the name, since
# Korean names glue words together (`[원천]EMOIMG_불안_TRAIN_01.zip`). English keywords match
# the start of a word (a run of letters), so `sadness`, `fearful` and `Neutral01` match but
# `danger` does not name anger. Both after NFC normalisation and lower-casing, so decomposed
# Hangul from macOS file systems matches too. Matching word starts covers the variants:
# fear -> fearful, sad -> sadness, surprise -> surprised, disgust -> disgusted.
KEYWORDS: dict[str, str] = {
    "중립": "neutral",
    "neutral": "neutral",
    "불안": "anxious",
    "anxiety": "anxious",
    "anxious": "anxious",
    "fear": "anxious",
    "afraid": "anxious",
    "scared": "anxious",
    "기쁨": "happy",
    "happy": "happy",
    "happiness": "happy",
    "당황": "embarrassed",
    "embarrassed": "embarrassed",
    "분노": "angry",
    "angry": "angry",
    "anger": "angry",
    "상처": "hurt",
    "hurt": "hurt",
    "슬픔": "sad",
    "sad": "sad",
    "surprise": "surprised",
    "disgust": "disgusted",
    "contempt": "contempt",
}
_WORD = re.compile(r"[^\W\d_]+")
_SUBSTRING_KEYWORDS = {word: emotion for word, emotion in KEYWORDS.items() if not word.isascii()}
_WORD_KEYWORDS = {word: emotion for word, emotion in KEYWORDS.items() if word.isascii()}


def class_map_key(name: str) -> str:
    """How `source.class_map` keys and the names they are looked up with are compared."""
    return unicodedata.normalize("NFC", name).casefold()


def emotion_in_name(name: str, class_map: Mapping[str, str] | None = None) -> str | None:
    """The emotion a file, folder or archive name carries, or None when it names none.

    `class_map` (keys as `class_map_key` gives them) is looked up first, exactly; then the
    keywords. A name that names two different emotions names none.
    """
    if class_map:
        mapped = class_map.get(class_map_key(name))
        if mapped is not None:
            return mapped
    text = unicodedata.normalize("NFC", name).lower()
    found = {emotion for keyword, emotion in _SUBSTRING_KEYWORDS.items() if keyword in text}
    for word in _WORD.findall(text):
        found.update(
            emotion for keyword, emotion in _WORD_KEYWORDS.items() if word.startswith(keyword)
        )
    return found.pop() if len(found) == 1 else None


def canonical_order(names: Iterable[str]) -> tuple[str, ...]:
    """Known classes in CANONICAL_ORDER, then the others (from `source.class_map`) by name."""
    rank = {name: position for position, name in enumerate(CANONICAL_ORDER)}
    return tuple(sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name)))
