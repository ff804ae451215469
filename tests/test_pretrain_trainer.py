"""PreTrainingTrainer: loss normalisation, logged metrics, evaluation, learning, resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback, TrainingArguments

from hf_w2v2 import Wav2Vec2ForPreTraining
from hf_w2v2.data.sampler import LengthGroupedSampler
from hf_w2v2.data.sources import read_audio_paths
from hf_w2v2.models.configuration import tiny
from hf_w2v2.pretrain.collator import DataCollatorForPreTraining
from hf_w2v2.pretrain.data import UnlabeledAudioDataset, scan_audio
from hf_w2v2.pretrain.temperature import GumbelSchedule
from hf_w2v2.pretrain.trainer import (
    MetricAccumulator,
    PreTrainingTrainer,
    draw_pretraining_targets,
    pretraining_statistics,
)

FIXTURES = Path(__file__).parent / "fixtures" / "pretrain"
NO_DROPOUT = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, layerdrop=0.0)
METRICS = ("contrastive_loss", "diversity_loss", "codevector_perplexity", "contrastive_accuracy", "gumbel_temperature")


def small_config(**overrides):
    fields = dict(
        feat_extract_norm="layer",
        conv_dim=(32,) * 7,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        num_conv_pos_embedding_groups=4,
        mask_time_prob=0.65,
        mask_time_length=5,
        num_negatives=10,
        num_codevectors_per_group=16,
        **NO_DROPOUT,
    )
    fields.update(overrides)
    return tiny(**fields)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models spend their time in thread hand-offs; one thread is several times faster on shared CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clips():
    return scan_audio(read_audio_paths(FIXTURES), min_seconds=2.0, progress=False).clips


def make_trainer(tmp_path, clips, config=None, max_seconds=1.0, **args):
    torch.manual_seed(0)
    model = Wav2Vec2ForPreTraining(config or small_config())
    defaults = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=3,
        max_steps=4,
        learning_rate=1e-3,
        logging_steps=2,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    defaults.update(args)
    dataset = UnlabeledAudioDataset(clips, max_seconds=max_seconds, seed=0)
    return PreTrainingTrainer(
        model=model,
        args=TrainingArguments(**defaults),
        train_dataset=dataset,
        eval_dataset=dataset,
        data_collator=DataCollatorForPreTraining(),
        gumbel_schedule=GumbelSchedule(2.0, 0.5, 0.9),
    )


def test_loss_is_the_sum_divided_by_masked_frames(tmp_path, clips):
    trainer = make_trainer(tmp_path, clips)
    batch = DataCollatorForPreTraining()([trainer.train_dataset[i] for i in range(3)])
    model = trainer.model.train()
    torch.manual_seed(1)
    loss = trainer.compute_loss(model, batch)
    torch.manual_seed(1)
    out = model(**batch)
    assert torch.allclose(loss, out.loss / out.mask_time_indices.sum())
    assert 1.0 < loss.item() < 10.0  # per frame, not a sum over hundreds of frames


def test_statistics_from_outputs_match_the_transformers_collator_path(tmp_path, clips):
    trainer = make_trainer(tmp_path, clips)
    batch = DataCollatorForPreTraining()([trainer.train_dataset[i] for i in range(3)])
    model = trainer.model.eval()
    mask, negatives = draw_pretraining_targets(
        model.config,
        batch["input_values"].shape[1],
        batch["attention_mask"],
        batch_size=3,
        device="cpu",
        generator=torch.Generator().manual_seed(0),
    )
    inputs = {**batch, "mask_time_indices": mask, "sampled_negative_indices": negatives}
    with torch.no_grad():
        out = model(**inputs)
    ours = pretraining_statistics(out, inputs, model.config)
    out.contrastive_logits = None  # as transformers' output: rebuilt from the inputs
    out.mask_time_indices = None
    theirs = pretraining_statistics(out, inputs, model.config)
    assert ours.keys() == theirs.keys()
    assert all(torch.allclose(ours[k], theirs[k]) for k in ours)
    assert ours["masked_frames"] == mask.sum()


def test_accumulator_averages_per_frame_and_per_batch():
    acc = MetricAccumulator()
    for frames, correct in ((100.0, 10.0), (300.0, 90.0)):
        acc.add(
            {
                "masked_frames": torch.tensor(frames),
                "correct": torch.tensor(correct),
                "contrastive_loss": torch.tensor(2.0 * frames),
                "diversity_loss": torch.tensor(0.5 * frames),
                "codevector_perplexity": torch.tensor(frames / 10),
                "batches": torch.tensor(1.0),
            }
        )
    metrics = acc.pop()
    assert metrics["contrastive_accuracy"] == pytest.approx(0.25)
    assert metrics["contrastive_loss"] == pytest.approx(2.0) and metrics["diversity_loss"] == pytest.approx(0.5)
    assert metrics["codevector_perplexity"] == pytest.approx(20.0)
    assert acc.pop() == {}


def test_training_logs_metrics_and_evaluation_is_reproducible(tmp_path, clips):
    trainer = make_trainer(tmp_path, clips, train_sampling_strategy="group_by_length")
    loader = trainer.get_train_dataloader()
    assert isinstance(loader.batch_sampler.sampler, LengthGroupedSampler)
    trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    assert len(logs) == 2
    for entry in logs:
        assert all(key in entry for key in METRICS + ("learning_rate", "grad_norm"))
        assert 0.0 <= entry["contrastive_accuracy"] <= 1.0
        assert 2.0 <= entry["codevector_perplexity"] <= 32.0  # between G and G x V
    assert logs[-1]["gumbel_temperature"] == pytest.approx(2.0 * 0.9**4)
    first, second = trainer.evaluate(), trainer.evaluate()
    assert first["eval_loss"] == second["eval_loss"]
    assert all(f"eval_{key}" in first for key in METRICS[:4])


def test_loss_goes_down_over_a_few_dozen_steps(tmp_path, clips):
    """24 steps on the fixture: the loss per masked frame falls, the contrastive term below chance.

    From random init the contrastive loss starts above chance level ln(K + 1);
    accuracy well above chance needs hundreds of steps (docs/pretraining/).
    """
    trainer = make_trainer(
        tmp_path,
        clips,
        max_seconds=1.5,
        max_steps=24,
        learning_rate=5e-4,
        warmup_steps=0.1,
        per_device_train_batch_size=6,
        logging_steps=4,
    )
    trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    assert logs[-1]["loss"] < logs[0]["loss"]
    assert min(e["contrastive_loss"] for e in logs[1:]) < math.log(11)  # K = 10 distractors


class StopAfter(TrainerCallback):
    """Simulates a crash after ``step`` optimizer steps (after the checkpoint of that step)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = True
            control.should_training_stop = True


@pytest.mark.parametrize("sampling", ["random", "group_by_length"])
def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path, clips, sampling):
    args = dict(max_steps=5, save_strategy="no", logging_steps=1, train_sampling_strategy=sampling)
    straight = make_trainer(tmp_path / "a", clips, **args)
    straight.train()
    interrupted = make_trainer(tmp_path / "b", clips, **args)
    interrupted.add_callback(StopAfter(3))  # mid-epoch: 2 steps per epoch
    interrupted.train()
    resumed = make_trainer(tmp_path / "b", clips, **args)
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-3"))
    assert resumed.state.global_step == 5
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert resumed.model.quantizer.temperature == straight.model.quantizer.temperature
    straight_logs = [e["loss"] for e in straight.state.log_history if "loss" in e]
    resumed_logs = [e["loss"] for e in resumed.state.log_history if "loss" in e]
    assert resumed_logs == pytest.approx(straight_logs, rel=1e-5)


def test_evaluation_masks_are_the_models_own_and_honour_equal_count():
    """fairseq's require_same_masks (mask_time_equal_count): evaluation masks every row equally, as training does."""
    config = tiny(mask_time_prob=0.3, mask_time_length=2, mask_time_equal_count=True)
    samples = 16000
    attention = torch.ones(3, samples, dtype=torch.long)
    attention[1, 9000:] = 0  # a shorter clip: fewer valid frames
    attention[2, 5000:] = 0
    generator = torch.Generator().manual_seed(0)
    mask, _ = draw_pretraining_targets(config, samples, attention, batch_size=3, device="cpu", generator=generator)
    counts = mask.sum(dim=-1).tolist()
    assert len(set(counts)) == 1 and counts[0] > 0, counts
