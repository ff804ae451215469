"""Make a voice-activity corpus: recordings placed at known offsets in silence or noise.

    python examples/make_vad_corpus.py splits/digits_train.csv vad/train 1500
    python examples/make_vad_corpus.py splits/digits_test.csv vad/test 300 --seed 1

The first argument is any manifest or folder of recordings (their labels are not used). The
output folder is an audiofolder with a ``segments`` column for ``--task frame --label_column segments``.
Logic: :mod:`hf_w2v2.classify.vad`.
"""

import argparse

from hf_w2v2.classify.vad import make_vad_corpus
from hf_w2v2.data.sources import read_audio_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="manifest or folder of recordings")
    parser.add_argument("output", help="output folder")
    parser.add_argument("num_clips", type=int)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each clip")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(make_vad_corpus(read_audio_paths(args.source), args.output, args.num_clips, args.seconds, args.seed))


if __name__ == "__main__":
    main()
