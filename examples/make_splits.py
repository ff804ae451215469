"""Write train/test manifests of a labelled audiofolder by rules on its columns.

    python examples/make_splits.py ../shared/data/fsdd/metadata.csv splits \
        digits_train="take>=5" digits_test="take<5"
    python examples/make_splits.py ../shared/data/fsdd/metadata.csv splits \
        loso_theo_train="speaker_id!=theo" loso_theo_test="speaker_id=theo"

    python examples/make_splits.py --concat splits/all.csv splits/a.csv splits/b.csv   # shared columns
    python examples/make_splits.py --speed splits/train_sp.csv splits/train.csv 0.9 1.1  # + perturbed copies

Rule syntax: :mod:`hf_w2v2.classify.splits`.
"""

import sys

from hf_w2v2.classify.splits import concat_manifests, write_speed_perturbed, write_split


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    if sys.argv[1] == "--concat":
        count = concat_manifests(sys.argv[3:], sys.argv[2])
        print(f"{sys.argv[2]}: {count} clips")
        return
    if sys.argv[1] == "--speed":
        factors = [float(f) for f in sys.argv[4:]] or [0.9, 1.1]
        count = write_speed_perturbed(sys.argv[3], sys.argv[2], factors)
        print(f"{sys.argv[2]}: {count} clips (originals and speeds {factors})")
        return
    metadata, out = sys.argv[1], sys.argv[2]
    for item in sys.argv[3:]:
        name, _, rule = item.partition("=")
        count = write_split(metadata, rule, f"{out}/{name}.csv")
        print(f"{out}/{name}.csv: {count} clips ({rule})")


if __name__ == "__main__":
    main()
