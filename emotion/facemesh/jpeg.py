"""What a JPEG's marker segments say before it is decoded: its size, and how many scans it has.

Both are read by walking the segments' lengths (microseconds; opening the file with PIL costs
0.25 ms), so that a photo whose decoding would cost too much memory (its frame size) or too
much time (its scan count) is refused before libjpeg is handed it.
"""

from __future__ import annotations

# JPEG start-of-frame markers (all but DHT 0xC4, JPG 0xC8 and DAC 0xCC in 0xC0-0xCF).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SOS = 0xDA
# libjpeg decodes a progressive JPEG's every scan over the whole coefficient buffer, so its
# time grows with scans x pixels: a 6000x6000 photo with one scan repeated 5,000 times (0.55 MB)
# held a FaceMesh worker for 19 s. Encoders write about 10 scans (libjpeg's default
# progression), mozjpeg's optimised ones a few dozen at most; 100 leaves room for them all.
MAX_SCANS = 100


def _segments(data: bytes) -> tuple[tuple[int, int] | None, int | None]:
    """(width, height) of the first frame header and the offset of the first scan (SOS),
    each None when the walk does not reach it."""
    if not data.startswith(b"\xff\xd8"):
        return None, None
    size: tuple[int, int] | None = None
    position, end = 2, len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return size, None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
            continue
        if marker == _SOS:
            return size, position
        if marker in _SOF_MARKERS and size is None and position + 9 <= end:
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            size = (width, height) if width and height else None
            if size is None:
                return None, None
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return size, None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as stored, before EXIF orientation, from the JPEG frame header.

    None for anything that is not a JPEG with a readable frame header before its first scan.
    """
    return _segments(data)[0]


def scan_count(data: bytes) -> int:
    """How many scans (SOS markers) the first image of a JPEG holds; 0 when it is no JPEG.

    Counted from the first scan to the first end-of-image marker: inside entropy-coded data
    every 0xFF byte is followed by 0x00 or a restart marker, so FF DA there is a real scan,
    and what follows the end (a phone's motion-photo video) is not counted.
    """
    first = _segments(data)[1]
    if first is None:
        return 0
    end = data.find(b"\xff\xd9", first)
    return data.count(b"\xff\xda", first, end if end >= 0 else len(data))
