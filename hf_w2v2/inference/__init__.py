"""Audio in, logits and transcripts out: :mod:`.transcribe` (model folder -> text),
:mod:`.chunked` (long recordings in overlapping windows) and :mod:`.evaluation`
(greedy versus LM WER/CER on a labelled set). Decoding itself is :mod:`hf_w2v2.decoding`.
"""
