"""What every job shares: the Trainer base with every mixin (``trainer``), the run lifecycle
(``lifecycle``: start, evaluate a set, finish), the shared argument groups (``arguments``), recipe
files, the wall-clock budget, checkpoints, loaders, the frozen-feature cache, precision, model cards,
training curves, the health monitor, the Hub push, and the list of transformers internals touched.

Nothing here knows about CTC, labels or contrastive learning; :mod:`hf_w2v2.pretrain`,
:mod:`hf_w2v2.finetune` and :mod:`hf_w2v2.classify` build on it and never on each other.
"""
