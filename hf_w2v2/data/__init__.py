"""Audio files, corpora, batching and the processor.

- :mod:`~hf_w2v2.data.audio`: decoding to 16 kHz mono, the audio extensions, normalisation;
- :mod:`~hf_w2v2.data.sources`: corpora in the layouts users bring (audiofolder, manifests,
  LibriSpeech, ``datasets``) as :class:`~hf_w2v2.data.sources.Utterance` lists;
- :mod:`~hf_w2v2.data.ctc_filter`: which utterances a CTC training set keeps (one :class:`CTCFilter`);
- :mod:`~hf_w2v2.data.prepare`: decoded, filtered, tokenised CTC datasets (``datasets``);
- :mod:`~hf_w2v2.data.collator`: CTC batches; :mod:`~hf_w2v2.data.sampler`: length-grouped order;
- :mod:`~hf_w2v2.data.processor`: the ``Wav2Vec2Processor`` matching a model config;
- :mod:`~hf_w2v2.data.synthesize`: synthetic speech corpora (espeak-ng, flite, festival, sox);
- :mod:`~hf_w2v2.data.perturb`: speed perturbation (tempo and pitch together);
- :mod:`~hf_w2v2.data.shards`: WebDataset-style tar shards; :mod:`~hf_w2v2.data.stream_sources`: the
  shards of a source; :mod:`~hf_w2v2.data.stream`: streamed training sets (``datasets.IterableDataset``).

Names are imported on first use: ``import hf_w2v2.data.audio`` does not load torch or ``datasets``.
"""

from hf_w2v2.lazy import lazy_namespace

_NAMES = {
    **dict.fromkeys(
        (
            "TARGET_SAMPLING_RATE",
            "AUDIO_EXTENSIONS",
            "AudioInfo",
            "AudioLoadError",
            "audio_info",
            "find_audio_files",
            "load_audio",
            "load_audio_bytes",
            "normalize_waveform",
            "resample",
            "to_mono",
        ),
        "hf_w2v2.data.audio",
    ),
    **dict.fromkeys(
        (
            "MissingAudioFilesError",
            "Utterance",
            "read_audiofolder",
            "read_hf_dataset",
            "read_librispeech",
            "read_manifest",
            "read_source",
            "read_audio_paths",
        ),
        "hf_w2v2.data.sources",
    ),
    "DataCollatorCTCWithPadding": "hf_w2v2.data.collator",
    "LengthGroupedSampler": "hf_w2v2.data.sampler",
    **dict.fromkeys(("CTCFilter", "HasConvGeometry"), "hf_w2v2.data.ctc_filter"),
    "FilterReport": "hf_w2v2.data.prepare",
    "prepare_ctc_dataset": "hf_w2v2.data.prepare",
    **dict.fromkeys(("ShardStats", "read_tar_shards", "write_shards"), "hf_w2v2.data.shards"),
    **dict.fromkeys(("StreamReading", "ctc_stream", "stream_dataset"), "hf_w2v2.data.stream"),
    "find_all_shards": "hf_w2v2.data.stream_sources",
    "speed_perturb": "hf_w2v2.data.perturb",
}
__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
__all__ = sorted(_NAMES)
