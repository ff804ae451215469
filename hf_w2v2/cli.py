"""The ``hf-w2v2`` command line.

    hf-w2v2 transcribe FILES_OR_DIRS --model PATH [--lm PATH] [--chunk-s S] [--format txt|json|srt] ...
    hf-w2v2 export MODEL OUT [--format onnx|onnx-int8|exported-program] [--check-audio FILES]
    hf-w2v2 align MODEL AUDIO TRANSCRIPT [--format json|tsv|srt|textgrid]
    hf-w2v2 segment VAD_MODEL|energy AUDIO... [--format json|rttm|textgrid]   (speech segments)
    hf-w2v2 build-lm CORPUS.txt OUT.arpa [--order 4] [--prune 0 0 1 1]
    hf-w2v2 make-shards SOURCE OUT_DIR [--per_shard 1000] [--unlabeled]   (tar shards for --train_loading stream)
    hf-w2v2 convert-fairseq CHECKPOINT.pt OUT_DIR [--trust-pickle]
    hf-w2v2 classify MODEL AUDIO... [--top-k 3]              (JSON lines: top labels with scores)
    hf-w2v2 verify MODEL A B [--threshold T]                  (cosine score, same speaker or not)
    hf-w2v2 embed MODEL AUDIO... --output embeddings.npz      (x-vector embeddings)
    hf-w2v2 serve --model DIR [--host 127.0.0.1] [--port 8000] [--max-streams N] [--token T]

Nothing heavy is imported at start-up (``hf-w2v2 --help`` and ``--version`` do not load torch):
each handler imports what it needs, and checks its input paths before loading a model.

Each subcommand is an ``add_<name>(subparsers)`` function that declares its arguments
and sets ``handler`` (parsed args -> exit code). To add one, write both functions and
list the first in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from hf_w2v2 import __version__
from hf_w2v2.decoding.formats import ALIGN_FORMATS, FORMATS, render, to_json
from hf_w2v2.exits import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED
from hf_w2v2.files import write_text, written_whole
from hf_w2v2.quiet import quiet_import_notices

if TYPE_CHECKING:
    from hf_w2v2.inference.segments import Segmenter
    from hf_w2v2.inference.transcribe import FileResult, Transcriber


def add_transcribe(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files with a fine-tuned CTC model",
        description="Transcribe audio files (folders are searched recursively).",
    )
    p.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS", help="audio files and/or folders")
    p.add_argument("--model", required=True, help="model folder (save_pretrained output with its processor)")
    p.add_argument(
        "--lm", default=None, help="ARPA/KenLM file for beam search (default: the decoder saved with the model)"
    )
    p.add_argument("--no-lm", action="store_true", help="ignore any saved decoder and decode greedily")
    p.add_argument("--alpha", type=float, default=None, help="LM weight (default: the saved/tuned value)")
    p.add_argument("--beta", type=float, default=None, help="word insertion bonus (default: the saved/tuned value)")
    p.add_argument("--beam-width", type=int, default=None, help="beams kept per frame (default 100)")
    p.add_argument(
        "--token-min-logp",
        type=float,
        default=None,
        help="skip characters below this log-prob at a frame (default: the saved decoder's, or -5)",
    )
    p.add_argument(
        "--beam-prune-logp",
        type=float,
        default=None,
        help="drop beams this far below the best (default: the saved decoder's, or -10)",
    )
    p.add_argument("--hotword", action="append", default=None, help="word or phrase to favour (repeatable)")
    p.add_argument("--hotword-weight", type=float, default=10.0, help="log-score bonus per hotword")
    p.add_argument(
        "--chunk-s", type=float, default=20.0, help="window length in seconds for long audio (0: never chunk)"
    )
    p.add_argument("--stride-s", type=float, default=None, help="context dropped at each window side (default chunk/6)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="recordings (similar lengths, padded) or windows of a long one run together; pays on a GPU or a "
        "busy CPU, while on an idle CPU a small model may run as fast one by one (bench/bench_inference.py)",
    )
    p.add_argument("--format", choices=FORMATS, default="txt", help="output format")
    p.add_argument("--output-dir", default=None, help="write one FILE.<format> per input here instead of stdout")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--bf16", action="store_true", help="same as --precision bf16")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "int8", "auto"),
        default="fp32",
        help="fp32 (exact, default), bf16 (autocast; falls back to fp32 with a warning where only emulated), "
        "int8 (dynamic quantisation, CPU) or auto (the fastest path on this machine whose greedy CER stays "
        "within 0.005 of fp32, measured on the first files and cached for the model)",
    )
    p.add_argument(
        "--calibration",
        default=None,
        metavar="AUDIOFOLDER",
        help="with --precision auto: recordings with transcripts (metadata.csv: file_name, text) on which the "
        "fastest path is chosen, guarded against the transcripts (default: the first files choose, guarded "
        "against fp32's tokens, which rejects more int8 paths)",
    )
    p.add_argument(
        "--no-length-grid",
        action="store_true",
        help="run every file at its own length (default: layer-norm models run padded to a grid of lengths, "
        "the same logits to float rounding, so the CPU builds its kernels for a few lengths, not one per file)",
    )
    p.add_argument("--num-processes", type=int, default=1, help="processes for the beam search")
    p.add_argument("--quiet", action="store_true", help="no progress bars (also none while loading the model and LM)")
    add_segment_options(p)
    p.set_defaults(handler=run_transcribe)


def add_segment_options(p: argparse.ArgumentParser) -> None:
    """``--vad``, ``--pause-s``, ``--no-segment``: how transcribe and align cut recordings at pauses."""
    p.add_argument(
        "--vad", default=None, help="frame-classification (VAD) model folder to find pauses (default: energy VAD)"
    )
    p.add_argument("--pause-s", type=float, default=None, help="pause that cuts a segment (default 0.2 s)")
    p.add_argument(
        "--no-segment", action="store_true", help="do not cut at pauses: the whole recording in --chunk-s windows"
    )


def segmenter_from_args(args: argparse.Namespace) -> Segmenter | None:
    """The :class:`~hf_w2v2.inference.segments.Segmenter` the options ask for (``None``: --no-segment)."""
    if args.no_segment:
        if args.vad is not None or args.pause_s is not None:
            raise ValueError("--no-segment contradicts --vad / --pause-s")
        return None
    from hf_w2v2.inference.segments import ModelVAD, Segmenter, SegmentSettings

    if args.vad is not None and not os.path.isdir(args.vad):
        raise FileNotFoundError(f"VAD model folder not found: {args.vad}")
    settings = SegmentSettings() if args.pause_s is None else SegmentSettings(pause_seconds=args.pause_s)
    return Segmenter(settings, None if args.vad is None else ModelVAD.from_pretrained(args.vad, device="cpu"))


def output_paths(files: list[str], output_dir: str, fmt: str) -> dict[str, str]:
    """One distinct output file per input (keyed by absolute input path), mirroring the inputs' folders.

    ``a.wav`` -> ``a.txt``; inputs that would share a name (``a.flac`` and ``a.wav``) keep their
    extension (``a.flac.txt``, ``a.wav.txt``) so that no transcript overwrites another. Raises
    ``ValueError`` before anything is written if names still collide.
    """
    paths = [os.path.abspath(f) for f in files]
    root = os.path.commonpath([os.path.dirname(p) for p in paths])
    stems = {p: os.path.splitext(os.path.relpath(p, root))[0] for p in paths}
    counts = Counter(stems.values())
    targets = {
        p: os.path.join(output_dir, f"{stem if counts[stem] == 1 else os.path.relpath(p, root)}.{fmt}")
        for p, stem in stems.items()
    }
    clashes = [t for t, n in Counter(targets.values()).items() if n > 1]
    if clashes:
        names = sorted(p for p, t in targets.items() if t in clashes)
        raise ValueError(f"these inputs would write the same output file(s) {clashes}: {names}; rename them")
    return targets


def check_calibration(folder: str | None, precision: str) -> None:
    """Before any model loads: a ``--calibration`` folder is for ``--precision auto`` and must exist."""
    if folder is None:
        return
    if precision != "auto":
        raise ValueError(f"--calibration is for --precision auto, not {precision}")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"calibration folder not found: {folder}")


def report_auto_choice(transcriber: Transcriber) -> None:
    """``precision auto: A for new input lengths (Nx fp32), B for recurring ones (Mx); K of P paths rejected by
    the accuracy guard`` on stderr, once the choice is made."""
    from hf_w2v2.inference.measurement import FALLBACK, Choice

    choice = getattr(transcriber.model, "choice", None)
    if not isinstance(choice, Choice):  # not auto, or not chosen yet
        return

    def path(recurring: bool) -> str:
        name = choice.ranking_for(recurring)[0]
        speedup = choice.speedup(name, recurring)
        return name if speedup is None or name == FALLBACK else f"{name} ({speedup:.2f}x fp32)"

    line = f"precision auto: {path(False)} for new input lengths, {path(True)} for recurring ones"
    rejected = choice.rejected()
    if rejected:
        line += f"; {len(rejected)} of {len(choice.results)} paths rejected by the accuracy guard"
    print(line, file=sys.stderr)


def run_transcribe(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 transcribe``; exit code 1 when some file could not be transcribed."""
    from hf_w2v2.data.audio import find_audio_files

    files = find_audio_files(args.inputs)
    if not files:
        raise ValueError(f"no audio files found in {' '.join(args.inputs)}")
    if args.format == "srt" and len(files) > 1 and args.output_dir is None:
        raise ValueError("--format srt with several files needs --output-dir (one .srt per file)")
    precision = "bf16" if args.bf16 else args.precision
    check_calibration(args.calibration, precision)
    from hf_w2v2.decoding.beam import BeamSettings
    from hf_w2v2.inference.memory import limit_allocator_caching
    from hf_w2v2.inference.transcribe import Transcriber
    from hf_w2v2.quiet import quiet_loading

    limit_allocator_caching()  # peak memory flat in the number of files (issue 35)
    beam = BeamSettings(
        beam_width=args.beam_width or None,
        hotword_weight=args.hotword_weight,
        alpha=args.alpha,
        beta=args.beta,
        token_min_logp=args.token_min_logp,
        beam_prune_logp=args.beam_prune_logp,
    )
    # Quiet: no "Loading weights" bar, no KenLM "Reading FILE" ruler, no bar while precision auto measures
    # (on the calibration folder, or at the first file).
    with quiet_loading(args.quiet):
        transcriber = Transcriber.from_pretrained(
            args.model,
            segmenter=segmenter_from_args(args),
            lm_path=args.lm,
            use_lm=not args.no_lm,
            device=args.device,
            precision=precision,
            chunk_s=args.chunk_s or None,
            stride_s=args.stride_s,
            batch_size=args.batch_size,
            beam=beam,  # per call: the decoder loaded with the model is not changed
            length_grid=not args.no_length_grid,
        )
        if args.calibration is not None:
            transcriber.choose_path_on(args.calibration)
            report_auto_choice(transcriber)
        results = transcriber.iter_files(
            files, hotwords=args.hotword, num_processes=args.num_processes, progress=not args.quiet
        )
        failures = write_results(results, files, args)
    if args.calibration is None:  # auto chose on the first files
        report_auto_choice(transcriber)
    if failures:
        print(f"{failures} of {len(files)} files could not be transcribed", file=sys.stderr)
    return 1 if failures else 0


def write_results(results: Iterable[FileResult], files: list[str], args: argparse.Namespace) -> int:
    """Print or write each transcription in ``args.format`` as it comes (``--output-dir``: one file per
    input); errors go to stderr (and stdout as JSON lines with ``--format json``). Returns the failures."""
    targets = output_paths(files, args.output_dir, args.format) if args.output_dir is not None else {}
    failures = 0
    for result in results:
        if result.error is not None:
            failures += 1
            tqdm.write(f"error: {result.error}", file=sys.stderr)
            if args.format == "json" and args.output_dir is None:
                print(to_json(None, path=result.path, error=result.error), flush=True)
            continue
        assert result.transcription is not None  # a result without an error has one
        text = render(result.transcription, args.format, path=result.path, duration=result.duration)
        if args.output_dir is not None:
            target = targets[os.path.abspath(result.path)]
            os.makedirs(os.path.dirname(target), exist_ok=True)
            write_text(target, text)  # a Ctrl-C leaves the file of the last run, or none, not half of this one
        elif args.format == "txt" and len(files) > 1:
            print(f"{result.path}\t{text}", end="", flush=True)
        else:
            print(text, end="", flush=True)
    return failures


def add_build_lm(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build-lm",
        help="build an n-gram ARPA LM (modified Kneser-Ney) from text",
        description="Estimate an interpolated modified Kneser-Ney n-gram LM and write ARPA.",
    )
    p.add_argument("corpus", help="text file, one sentence per line, cased like the CTC vocabulary")
    p.add_argument("output", help="output .arpa file")
    p.add_argument("--order", type=int, default=4, help="n-gram order")
    p.add_argument("--prune", type=int, nargs="*", default=[], help="per-order count thresholds, e.g. 0 0 1 1")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_build_lm)


def run_build_lm(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 build-lm``."""
    from hf_w2v2.decoding.arpa import build_arpa

    start = time.perf_counter()
    model = build_arpa(args.corpus, args.output, order=args.order, prune=tuple(args.prune), progress=not args.quiet)
    sizes = ", ".join(f"{n}-grams: {len(p)}" for n, p in enumerate(model.probs, 1))
    size_mb = os.path.getsize(args.output) / 1e6
    print(f"wrote {args.output} ({size_mb:.1f} MB; {sizes}) in {time.perf_counter() - start:.1f} s")
    return 0


def add_make_shards(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "make-shards",
        help="write a corpus as WebDataset-style tar shards (for --train_loading stream)",
        description="Copy the audio (as encoded) and transcripts of a corpus into tar shards; see docs/streaming.md.",
    )
    p.add_argument("source", help="audiofolder, LibriSpeech folder, .csv/.tsv/.jsonl manifest, save_to_disk folder")
    p.add_argument("output_dir", help="folder for shard-000000.tar, shard-000001.tar, ...")
    p.add_argument("--per_shard", type=int, default=1000, help="utterances per shard")
    p.add_argument("--unlabeled", action="store_true", help="audio only (any folder of audio files or a list)")
    p.add_argument("--text-column", default="text", help="transcript column of manifests")
    p.add_argument("--audio-column", default=None, help="audio column of manifests (default: auto-detected)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the shards of a non-empty output folder (never mixed)"
    )
    p.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="copy listed files that lie outside the source's folder (refused by default)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_make_shards)


def run_make_shards(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 make-shards``."""
    from hf_w2v2.data.paths import check_inside_root
    from hf_w2v2.data.shards import check_output_folder, write_shards
    from hf_w2v2.data.sources import Utterance, read_audio_paths, read_source

    if not os.path.exists(args.source):
        raise ValueError(f"data source not found: {args.source}")
    check_output_folder(args.output_dir, args.overwrite)  # before reading a large corpus
    allow = args.allow_outside_root or None  # None: the environment variable decides
    if args.unlabeled:
        utterances = [
            Utterance(id=os.path.splitext(os.path.basename(p))[0], text=None, path=p)
            for p in read_audio_paths(args.source, allow)
        ]
    else:
        found = read_source(args.source, args.text_column, args.audio_column, allow)
        if isinstance(found, dict):
            raise ValueError(f"{args.source} holds several splits {sorted(found)}; point at one split")
        utterances = found
    root = args.source if os.path.isdir(args.source) else os.path.dirname(os.path.abspath(args.source))
    check_inside_root([u.path for u in utterances], root, args.source, allow)
    start = time.perf_counter()
    paths = write_shards(
        utterances, args.output_dir, args.per_shard, show_progress=not args.quiet, overwrite=args.overwrite
    )
    size_mb = sum(os.path.getsize(p) for p in paths) / 1e6
    elapsed = time.perf_counter() - start
    where = f"{args.output_dir} ({size_mb:.1f} MB, {elapsed:.1f} s)"
    print(f"wrote {len(utterances)} utterances in {len(paths)} shard(s) to {where}")
    return 0


def add_convert_fairseq(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert-fairseq",
        help="convert a fairseq wav2vec 2.0 checkpoint",
        description="Convert a fairseq .pt (pre-trained or CTC fine-tuned) into a standard folder.",
    )
    p.add_argument("checkpoint", help="fairseq .pt file")
    p.add_argument("output_dir", help="folder for config.json and model.safetensors")
    p.add_argument("--trust-pickle", action="store_true", help="allow full unpickling (trusted files only)")
    p.set_defaults(handler=run_convert_fairseq)


def run_convert_fairseq(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 convert-fairseq``."""
    from hf_w2v2.models.interop import convert_fairseq_checkpoint

    out = convert_fairseq_checkpoint(args.checkpoint, args.output_dir, trust_pickle=args.trust_pickle)
    print(f"wrote {out}")
    return 0


def add_consolidate(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "consolidate",
        help="turn a sharded training checkpoint (FSDP, DeepSpeed ZeRO) into a model folder",
        description="Gather the shards of a checkpoint-N written under FSDP or DeepSpeed ZeRO, in one process, "
        "into config.json + model.safetensors (loads with from_pretrained, ours and stock transformers').",
    )
    p.add_argument("checkpoint", help="checkpoint-N folder of a run")
    p.add_argument("output_dir", help="folder for config.json and model.safetensors")
    p.set_defaults(handler=run_consolidate)


def run_consolidate(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 consolidate``."""
    from hf_w2v2.training.sharded_checkpoints import consolidate_checkpoint

    print(f"wrote {consolidate_checkpoint(args.checkpoint, args.output_dir)}")
    return 0


def _audio_inputs(inputs: Sequence[str]) -> list[str]:
    """Audio files of ``inputs`` (folders searched); a missing path is an error naming it."""
    from hf_w2v2.data.audio import find_audio_files

    for path in inputs:
        if not os.path.exists(path):
            raise ValueError(f"audio file not found: {path}")
    files = find_audio_files(inputs)
    if not files:
        raise ValueError(f"no audio files found in {' '.join(inputs)}")
    return files


def add_classify(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "classify",
        help="label audio files with a fine-tuned classifier (top-k labels, JSON)",
        description="Print one JSON line per file: its top-k labels with softmax scores, best first "
        "(a frame-classification (VAD) model prints its speech segments, as hf-w2v2 segment does).",
    )
    p.add_argument("model", help="model folder (Wav2Vec2ForSequenceClassification with id2label)")
    p.add_argument("inputs", nargs="+", metavar="AUDIO", help="audio files and/or folders")
    p.add_argument("--top-k", type=int, default=3, help="labels printed per file")
    p.add_argument("--batch-size", type=int, default=16, help="clips run together")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.set_defaults(handler=run_classify)


def run_classify(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 classify``."""
    files = _audio_inputs(args.inputs)
    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    from hf_w2v2.classify.inference import classify_files, load_model

    model = load_model(args.model, args.device)
    if type(model).__name__ == "Wav2Vec2ForAudioFrameClassification":  # a VAD: its answer is segments
        from hf_w2v2.inference.segments import ModelVAD, Segmenter, segment_file

        segmenter = Segmenter(vad=ModelVAD(model))
        for path in files:
            print(segment_file(segmenter, path, "json"), end="", flush=True)
        return 0
    failures = 0
    for prediction in classify_files(model, files, args.top_k, args.batch_size):
        print(prediction.to_json(), flush=True)
        if prediction.error is not None:
            failures += 1
            print(f"error: {prediction.error}", file=sys.stderr)
    if failures:
        print(f"{failures} of {len(files)} files could not be classified", file=sys.stderr)
    return 1 if failures else 0


def add_verify(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify",
        help="score whether two recordings have the same speaker (x-vector model)",
        description="Cosine score of the two recordings' x-vectors and the decision at the EER threshold "
        "stored with the model (verification.json) or given with --threshold. JSON output.",
    )
    p.add_argument("model", help="x-vector model folder (Wav2Vec2ForXVector)")
    p.add_argument("a", help="first audio file")
    p.add_argument("b", help="second audio file")
    p.add_argument("--threshold", type=float, default=None, help="accept when score >= this (default: stored)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 verify``; exit code 0 whatever the decision."""
    import json

    for path in (args.a, args.b):
        if not os.path.isfile(path):
            raise ValueError(f"audio file not found: {path}")
    from hf_w2v2.classify.inference import embed_files, load_model, read_threshold
    from hf_w2v2.classify.verification import Trial, cosine_scores

    model = load_model(args.model, args.device)
    embeddings = embed_files(model, [args.a, args.b])
    score = float(cosine_scores(embeddings, {"a": 0, "b": 1}, [Trial(target=False, a="a", b="b")])[0])
    threshold = args.threshold if args.threshold is not None else read_threshold(args.model)
    same = None if threshold is None else score >= threshold
    print(json.dumps({"a": args.a, "b": args.b, "score": score, "threshold": threshold, "same_speaker": same}))
    if threshold is None:
        print("no threshold stored with the model (verification.json); give --threshold to decide", file=sys.stderr)
    return 0


def add_embed(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "embed",
        help="export x-vector speaker embeddings of audio files",
        description="Write the embeddings of the files to an .npz (arrays 'embeddings' (N, E) and 'files').",
    )
    p.add_argument("model", help="x-vector model folder (Wav2Vec2ForXVector)")
    p.add_argument("inputs", nargs="+", metavar="AUDIO", help="audio files and/or folders")
    p.add_argument("--output", required=True, help="output .npz file")
    p.add_argument("--batch-size", type=int, default=16, help="clips run together")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.set_defaults(handler=run_embed)


def run_embed(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 embed``."""
    files = _audio_inputs(args.inputs)
    import numpy as np

    from hf_w2v2.classify.inference import embed_files, load_model

    model = load_model(args.model, args.device)
    embeddings = embed_files(model, files, args.batch_size, show_progress=True)
    output = args.output if args.output.endswith(".npz") else f"{args.output}.npz"  # where np.savez puts it
    with written_whole(output) as part, open(part, "wb") as out:
        np.savez(out, embeddings=embeddings.numpy(), files=np.array(files))
    print(f"wrote {output}: {len(files)} x {embeddings.shape[-1]} embeddings")
    return 0


def add_export(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model's logits graph (ONNX or torch.export) and check it against eager",
        description="Export (audio, attention_mask) -> logits with dynamic batch and time axes, in eval mode, "
        "then print the largest logit difference to the eager model on the given (or generated) clips.",
    )
    p.add_argument("model", help="model folder (CTC or classification head)")
    p.add_argument("output", help="output file (.onnx or .pt2)")
    p.add_argument("--format", choices=("onnx", "onnx-int8", "exported-program"), default="onnx")
    p.add_argument("--check-audio", nargs="*", default=[], help="audio files to compare on (default: random clips)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="largest allowed |eager - exported| logit (default 1e-4; 1.0 for onnx-int8, whose accuracy "
        "bench/bench_inference.py measures as CER/WER)",
    )
    p.set_defaults(handler=run_export)


def add_cache(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cache",
        help="list or remove what --precision auto keeps on disk (measurements and built graphs)",
        description="List the measurements --precision auto cached (model, chosen paths, size, last use) in "
        "$HF_W2V2_CACHE/optimize (default ~/.cache/hf_w2v2/optimize), or remove them: the next use of a model "
        "measures again.",
    )
    p.add_argument("--clear", action="store_true", help="remove every measurement and built graph")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="remove those last used more than DAYS ago")
    p.set_defaults(handler=run_cache)


def run_cache(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 cache``."""
    from hf_w2v2.inference.cache_listing import cache_entries, remove_entries
    from hf_w2v2.inference.machine import cache_dir

    folder = cache_dir()
    if args.clear or args.older_than is not None:
        if args.older_than is not None and args.older_than < 0:
            raise ValueError(f"--older-than must be 0 or more days, got {args.older_than}")
        count, freed = remove_entries(folder, None if args.clear else args.older_than)
        print(f"removed {count} measurements ({freed / 1e6:.1f} MB) from {folder}")
        return 0
    entries = cache_entries(folder)
    for entry in entries:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
        print(f"{entry.key[:12]}  {entry.bytes / 1e6:8.1f} MB  {used}  {entry.chosen}  {entry.model}")
    total = sum(entry.bytes for entry in entries)
    print(f"{len(entries)} measurements, {total / 1e6:.1f} MB in {folder}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 export``; exit code 1 when the export differs from eager beyond the tolerance."""
    if not os.path.isdir(args.model):
        raise FileNotFoundError(f"model folder not found: {args.model}")
    for path in args.check_audio:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"audio file not found: {path}")
    from hf_w2v2.inference.export import export_checked

    diff = export_checked(args.model, args.output, args.format, args.check_audio)
    print(f"wrote {args.output} ({args.format}); max |eager - exported| logit = {diff:.2e}")
    tolerance = args.tolerance if args.tolerance is not None else (1.0 if args.format == "onnx-int8" else 1e-4)
    if diff > tolerance:
        print(f"error: difference {diff:.2e} exceeds the tolerance {tolerance:.0e}", file=sys.stderr)
        return 1
    return 0


def add_align(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "align",
        help="forced alignment: character and word times of a known transcript",
        description="Align a transcript (text or a text file) to an audio file with a CTC model (Viterbi).",
    )
    p.add_argument("model", help="CTC model folder")
    p.add_argument("audio", help="audio file")
    p.add_argument("transcript", help="the transcript, or a text file holding it")
    p.add_argument("--format", choices=ALIGN_FORMATS, default="json")
    p.add_argument("--output", default=None, help="write here instead of stdout")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--chunk-s", type=float, default=20.0, help="window length for long audio (0: never chunk)")
    add_segment_options(p)
    p.set_defaults(handler=run_align)


def run_align(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 align``."""
    for path in (args.model, args.audio):
        if not os.path.exists(path):
            raise FileNotFoundError(f"not found: {path}")
    from hf_w2v2.decoding.align import render_alignment
    from hf_w2v2.inference.align import align_file
    from hf_w2v2.inference.transcribe import Transcriber

    segmenter = segmenter_from_args(args)
    transcriber = Transcriber.from_pretrained(
        args.model, use_lm=False, device=args.device, chunk_s=args.chunk_s or None, segmenter=segmenter
    )
    alignment, duration = align_file(transcriber, args.audio, args.transcript)
    text = render_alignment(alignment, args.format, path=args.audio, duration=duration)
    if args.output is None:
        print(text, end="")
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    return 0


def add_serve(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP and WebSocket (uploads, live streaming, a web page)",
        description="Serve a CTC model folder (POST /v1/transcribe, WS /v1/stream, the page at /) or a "
        "classification folder (POST /v1/classify), with GET /health and GET /metrics. See docs/serving.md.",
    )
    p.add_argument("--model", required=True, help="CTC or sequence-classification model folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--max-streams", type=int, default=8, help="WebSocket streams at once; more get 503")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload in MiB; larger get 413")
    p.add_argument(
        "--token", default=None, help="bearer token every request must carry (default: $HF_W2V2_TOKEN; none: open)"
    )
    p.add_argument("--workers", type=int, default=2, help="threads running the model")
    p.add_argument("--vad", default=None, help="frame-classification (VAD) model folder to cut finals at pauses")
    p.add_argument("--pause-s", type=float, default=None, help="pause that ends an utterance (default 0.3)")
    p.add_argument("--chunk-s", type=float, default=None, help="new audio between partials (default 0.5)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("fp32", "bf16", "int8", "auto"), default="fp32", help="as for transcribe")
    p.add_argument(
        "--calibration",
        default=None,
        metavar="AUDIOFOLDER",
        help="with --precision auto: recordings with transcripts (metadata.csv: file_name, text) on which the "
        "fastest path is chosen before serving, guarded against the transcripts (default: the first request "
        "chooses, guarded against fp32's tokens)",
    )
    p.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 serve``: load the folder, serve until Ctrl-C."""
    if not os.path.isdir(args.model):
        raise FileNotFoundError(f"model folder not found: {args.model}")
    from hf_w2v2.optional import require

    for module in ("starlette", "uvicorn", "websockets", "prometheus_client", "multipart"):
        require(module, "hf-w2v2 serve", "'hf_w2v2[serve]'")
    from hf_w2v2.serving.app import create_app
    from hf_w2v2.serving.server import serve
    from hf_w2v2.serving.service import ModelService
    from hf_w2v2.serving.settings import MIB, TOKEN_ENV, ServerSettings, stream_settings

    if args.vad is not None and not os.path.isdir(args.vad):
        raise FileNotFoundError(f"VAD model folder not found: {args.vad}")
    check_calibration(args.calibration, args.precision)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    settings = ServerSettings(
        max_streams=args.max_streams,
        max_upload_bytes=int(args.max_upload_mb * MIB),
        token=token,
        workers=args.workers,
        stream=stream_settings(pause_seconds=args.pause_s, chunk_seconds=args.chunk_s),
    )
    if "OMP_NUM_THREADS" not in os.environ:  # the workers share the cores instead of each taking all of them
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.workers))
    service = ModelService(
        args.model,
        workers=settings.workers,
        stream=settings.stream,
        vad_dir=args.vad,
        device=args.device,
        precision=args.precision,
        calibration=args.calibration,
    )
    if service.transcriber is not None:
        report_auto_choice(service.transcriber)
    print(f"serving {args.model} ({service.kind}); uvicorn prints the address (--port 0: a free port)", file=sys.stderr)
    serve(create_app(service, settings), args.host, args.port)
    return 0


def add_segment(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "segment",
        help="speech segments of audio files (VAD model or energy) as JSON, RTTM or TextGrid",
        description="Find the speech segments of audio files, cut at pauses as transcribe and align cut them.",
    )
    p.add_argument("vad", metavar="VAD_MODEL", help="frame-classification (VAD) model folder, or 'energy'")
    p.add_argument("inputs", nargs="+", metavar="AUDIO", help="audio files and/or folders")
    p.add_argument("--format", choices=("json", "rttm", "textgrid"), default="json", help="output format")
    p.add_argument("--output-dir", default=None, help="write one FILE.<format> per input here instead of stdout")
    p.add_argument("--pause-s", type=float, default=None, help="pause that cuts a segment (default 0.2 s)")
    p.set_defaults(handler=run_segment)


def run_segment(args: argparse.Namespace) -> int:
    """Handler of ``hf-w2v2 segment``."""
    files = _audio_inputs(args.inputs)
    if args.format == "textgrid" and len(files) > 1 and args.output_dir is None:
        raise ValueError("--format textgrid with several files needs --output-dir (one TextGrid per file)")
    args.no_segment, args.vad = False, None if args.vad == "energy" else args.vad
    segmenter = segmenter_from_args(args)
    assert segmenter is not None  # no --no-segment here
    from hf_w2v2.inference.segments import segment_file

    targets = output_paths(files, args.output_dir, args.format) if args.output_dir is not None else {}
    for path in files:
        text = segment_file(segmenter, path, args.format)
        if args.output_dir is None:
            print(text, end="", flush=True)
            continue
        target = targets[os.path.abspath(path)]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        write_text(target, text)
    return 0


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_transcribe,
    add_export,
    add_align,
    add_segment,
    add_build_lm,
    add_make_shards,
    add_convert_fairseq,
    add_consolidate,
    add_classify,
    add_verify,
    add_embed,
    add_serve,
    add_cache,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-w2v2", description="wav2vec 2.0 tools")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hf-w2v2`` console script; returns the exit code.

    Bad input (missing files, mismatched LM, ...) prints ``error: ...`` and exits with 2; Ctrl-C prints
    ``interrupted`` and exits with 130; a closed stdout (``| head``) ends it quietly with 141.
    """
    quiet_import_notices()
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:  # Ctrl-C: what was written whole stays, partial cache files are removed
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout's reader has gone (``| head``): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush would fail again
        return EXIT_BROKEN_PIPE
    except (ValueError, OSError, ImportError) as err:  # OSError: unreadable, damaged or missing files
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
