"""What both trainers share: recipe files, the wall-clock budget, checkpoints, loaders, precision,
model cards, training curves, the Hub push, and the list of transformers internals touched.

Nothing here knows about CTC or contrastive learning; :mod:`hf_w2v2.finetune` and
:mod:`hf_w2v2.pretrain` build on it.
"""
