"""Writing transcriptions as plain text, JSON or SubRip (``.srt``) subtitles."""

from __future__ import annotations

import json

from hf_w2v2.decoding.outputs import Span, Transcription

FORMATS = ("txt", "json", "srt")
ALIGN_FORMATS = ("json", "tsv", "srt", "textgrid")  # hf_w2v2.decoding.align.render_alignment


def srt_timestamp(seconds: float) -> str:
    """``HH:MM:SS,mmm`` as SubRip writes times."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def group_words(
    words: list[Span], max_chars: int = 42, max_duration: float = 6.0, max_gap: float = 1.0
) -> list[list[Span]]:
    """Split words into subtitle cues: a new cue when a line would pass ``max_chars``
    characters or ``max_duration`` seconds, or after a pause longer than ``max_gap`` seconds."""
    cues: list[list[Span]] = []
    for word in words:
        if cues:
            cue = cues[-1]
            length = sum(len(w.text) + 1 for w in cue) + len(word.text)
            if length <= max_chars and word.end - cue[0].start <= max_duration and word.start - cue[-1].end <= max_gap:
                cue.append(word)
                continue
        cues.append([word])
    return cues


def to_srt(transcription: Transcription, max_chars: int = 42) -> str:
    """SubRip subtitles from the word times (empty string when there are no words)."""
    blocks = []
    for index, cue in enumerate(group_words(transcription.words, max_chars=max_chars), 1):
        text = " ".join(w.text for w in cue)
        blocks.append(f"{index}\n{srt_timestamp(cue[0].start)} --> {srt_timestamp(cue[-1].end)}\n{text}\n")
    return "\n".join(blocks)


def to_json(
    transcription: Transcription | None,
    path: str | None = None,
    error: str | None = None,
    duration: float | None = None,
) -> str:
    """One JSON object: file, duration, text, words (:func:`word_record`), error."""
    record: dict = {"file": path, "duration": duration, "error": error}
    if transcription is not None:
        record["text"] = transcription.text
        record["words"] = [word_record(w) for w in transcription.words]
        if transcription.score is not None:
            record["score"] = transcription.score
    return json.dumps(record, ensure_ascii=False)


def word_record(word: Span) -> dict:
    """A word as JSON: ``text``, ``start`` and ``end`` (seconds) and ``confidence`` when it has one."""
    record: dict = {"text": word.text, "start": round(word.start, 3), "end": round(word.end, 3)}
    if word.confidence is not None:
        record["confidence"] = round(word.confidence, 4)
    return record


def render(transcription: Transcription, fmt: str, path: str | None = None, duration: float | None = None) -> str:
    """The transcription in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "txt":
        return transcription.text + "\n"
    if fmt == "json":
        return to_json(transcription, path=path, duration=duration) + "\n"
    if fmt == "srt":
        return to_srt(transcription)
    raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")


def textgrid(tiers: list[tuple[str, list[tuple[float, float, str]]]], duration: float) -> str:
    """Praat TextGrid (long text format): one interval tier per ``(name, [(start, end, label), ...])``
    (seconds, in order); gaps between intervals become empty intervals, so each tier covers the file."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {duration:.3f}"]
    lines += ["tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for n, (name, spans) in enumerate(tiers, 1):
        intervals = _with_gaps(spans, duration)
        lines += [f"    item [{n}]:", '        class = "IntervalTier"', f'        name = "{name}"']
        lines += ["        xmin = 0", f"        xmax = {duration:.3f}", f"        intervals: size = {len(intervals)}"]
        for i, (start, end, text) in enumerate(intervals, 1):
            label = text.replace('"', '""')
            lines += [f"        intervals [{i}]:", f"            xmin = {start:.3f}", f"            xmax = {end:.3f}"]
            lines.append(f'            text = "{label}"')
    return "\n".join(lines) + "\n"


def _with_gaps(spans: list[tuple[float, float, str]], duration: float) -> list[tuple[float, float, str]]:
    """TextGrid tiers cover the whole file: empty intervals fill the gaps between spans."""
    out, cursor = [], 0.0
    for start, end, text in spans:
        if start > cursor:
            out.append((cursor, start, ""))
        out.append((start, end, text))
        cursor = end
    if duration > cursor:
        out.append((cursor, duration, ""))
    return out
