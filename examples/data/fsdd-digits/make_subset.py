"""How this subset was cut from the Free Spoken Digit Dataset (kept for reproducibility; not needed to use it).

    python examples/data/fsdd-digits/make_subset.py ../shared/data/fsdd examples/data/fsdd-digits

train: five speakers, takes 0-5 of every digit (300 clips); dev: the same five speakers, take 6 (50 clips,
recordings not used in training); unseen-speaker: the sixth speaker (yweweler), never heard in training,
takes 0-4 (50 clips). The original 8 kHz FLAC files are copied unchanged; ``text`` is the digit as an
upper-case English word (the shipped model's alphabet).
"""

import csv
import shutil
import sys
from pathlib import Path

WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
UNSEEN_SPEAKER = "yweweler"
SPLITS = {  # split -> (speaker held out?, takes)
    "train": (False, range(0, 6)),
    "dev": (False, range(6, 7)),
    "unseen-speaker": (True, range(0, 5)),
}


def main(source: Path, target: Path) -> None:
    with open(source / "metadata.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for split, (unseen, takes) in SPLITS.items():
        chosen = [r for r in rows if (r["speaker_id"] == UNSEEN_SPEAKER) == unseen and int(r["take"]) in takes]
        chosen.sort(key=lambda r: (r["speaker_id"], int(r["label"]), int(r["take"])))
        (target / split / "audio").mkdir(parents=True, exist_ok=True)
        with open(target / split / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["file_name", "text", "label", "speaker_id", "take", "duration"])
            for r in chosen:
                name = "audio/" + Path(r["file_name"]).name
                shutil.copyfile(source / r["file_name"], target / split / name)
                writer.writerow([name, WORDS[int(r["label"])], r["label"], r["speaker_id"], r["take"], r["duration"]])
        print(f"{split}: {len(chosen)} clips")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
