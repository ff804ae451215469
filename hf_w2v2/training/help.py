"""``--help`` of the training scripts: options grouped by what they set, the ones that matter first.

``HfArgumentParser`` prints every field of every argument dataclass as one flat list: for fine-tuning
about 190 options in 800 lines, 150 of them transformers' ``TrainingArguments`` that a recipe rarely
sets. :func:`grouped_help` prints the options most runs set, then one group per argument dataclass of
the job (titled with its docstring's first line), and of ``TrainingArguments`` only
:data:`KEY_TRAINING_OPTIONS`; ``--help_all`` prints the flat list with every option.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from transformers import TrainingArguments

HELP_ALL = "--help_all"
# What most runs set (those the job has, in this order): the rest have working defaults.
ESSENTIALS = (
    "model_name_or_path",
    "config_name",
    "train_data",
    "train_source",
    "eval_data",
    "output_dir",
    "max_steps",
    "learning_rate",
    "per_device_train_batch_size",
)
# transformers' TrainingArguments that the project's recipes set; --help_all lists the other ~140.
KEY_TRAINING_OPTIONS = (
    "output_dir",
    "do_train",
    "do_eval",
    "max_steps",
    "num_train_epochs",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "eval_strategy",
    "eval_steps",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "report_to",
    "seed",
    "bf16",
    "gradient_checkpointing",
    "group_by_length",
    "dataloader_num_workers",
    "resume_from_checkpoint",
    "push_to_hub",
    "hub_model_id",
)


def wants_help(argv: Sequence[str]) -> bool:
    """``-h``/``--help`` or ``--help_all`` on the command line (before a lone ``--``)."""
    words = list(argv)[: list(argv).index("--")] if "--" in argv else list(argv)
    return any(word in ("-h", "--help", HELP_ALL) for word in words)


def grouped_help(parser: argparse.ArgumentParser, argument_classes: Sequence[type], argv: Sequence[str]) -> str:
    """The help to print for ``argv`` (see :func:`wants_help`): grouped, or every option with ``--help_all``."""
    if HELP_ALL in argv:
        return parser.format_help()
    actions: dict[str, list[argparse.Action]] = {}
    for action in parser._actions:  # a bool field has two actions: --name and --no_name
        actions.setdefault(action.dest, []).append(action)
    shown = argparse.ArgumentParser(
        prog=parser.prog,
        usage="%(prog)s [RECIPE.yaml|RECIPE.json] [--option value ...]",
        description="A recipe file (YAML or JSON, option: value) sets any option below; options given after "
        f"it win. Grouped, with the options most runs set first; {HELP_ALL} lists all of them.",
        formatter_class=CompactFormatter,
        add_help=False,
    )
    fields = {cls: [f.name for f in dataclasses.fields(cls) if f.init] for cls in argument_classes}
    everything = {name for names in fields.values() for name in names}
    essentials = [name for name in ESSENTIALS if name in everything]
    add_group(shown, "the options most runs set", essentials, actions)
    for cls, names in fields.items():
        names = [name for name in names if name not in essentials]
        if issubclass(cls, TrainingArguments):
            key = [name for name in names if name in KEY_TRAINING_OPTIONS]
            title = f"training (transformers TrainingArguments: {len(key)} of {len(names)}, {HELP_ALL} for all)"
            add_group(shown, title, key, actions)
        else:
            add_group(shown, (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip("."), names, actions)
    return shown.format_help()


class CompactFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option once, as ``--name VALUE`` (HfArgumentParser also declares ``--name-with-dashes``)."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        flag = action.option_strings[0]
        return flag if action.nargs == 0 else f"{flag} VALUE"

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help and "default" in action.help:  # it says its default itself
            return action.help
        return super()._get_help_string(action)


def add_group(
    parser: argparse.ArgumentParser, title: str, names: Sequence[str], actions: dict[str, list[argparse.Action]]
) -> None:
    """A help section ``title`` listing the parsed options ``names`` (their help text as declared)."""
    group = parser.add_argument_group(title)
    for name in names:
        for action in actions.get(name, []):
            group._add_action(action)  # the declared action itself: same flags, default and help
