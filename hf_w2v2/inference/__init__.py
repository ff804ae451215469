"""Audio in, logits and transcripts out: :mod:`.transcribe` (model folder -> text),
:mod:`.chunked` (long recordings in overlapping windows), :mod:`.segments` (cutting audio at
pauses: energy VAD or a VAD model), :mod:`.streaming` (live audio: partial and final transcripts)
and :mod:`.evaluation` (greedy versus LM WER/CER on a labelled set). Decoding itself is
:mod:`hf_w2v2.decoding`.
"""
