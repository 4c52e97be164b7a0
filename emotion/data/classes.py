"""Class sets and the keywords that name an emotion in AI Hub archive and folder names."""

from __future__ import annotations

import unicodedata

BINARY: tuple[str, ...] = ("neutral", "anxious")
SEVEN: tuple[str, ...] = ("neutral", "anxious", "happy", "embarrassed", "angry", "hurt", "sad")
CLASS_SETS: dict[str, tuple[str, ...]] = {"binary": BINARY, "seven": SEVEN}

# Keyword (Korean as in AI Hub dataset 82, or English) -> class name. Matched case-insensitively
# after NFC normalisation, so decomposed Hangul from macOS file systems matches too.
KEYWORDS: dict[str, str] = {
    "중립": "neutral",
    "neutral": "neutral",
    "불안": "anxious",
    "anxiety": "anxious",
    "anxious": "anxious",
    "기쁨": "happy",
    "happy": "happy",
    "당황": "embarrassed",
    "embarrassed": "embarrassed",
    "분노": "angry",
    "angry": "angry",
    "상처": "hurt",
    "hurt": "hurt",
    "슬픔": "sad",
    "sad": "sad",
}


def emotion_in_name(name: str) -> str | None:
    """The emotion a file or archive name carries, or None when it names none."""
    text = unicodedata.normalize("NFC", name).lower()
    found = {emotion for keyword, emotion in KEYWORDS.items() if keyword in text}
    return found.pop() if len(found) == 1 else None
