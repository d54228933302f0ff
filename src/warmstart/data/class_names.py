"""Training examples written from the class names: a text classifier's prior from what its labels say.

A few labelled texts say little about a class; its name often says more. Emotion's six classes (sadness, joy, love,
anger, fear, surprise) are read by all-MiniLM-L6-v2 well enough that the nearest class name alone scores 0.437 on
its test split, above every recipe trained on 8 labelled texts per class (0.380 at best, SetFit). SetFit's answer
(``setfit.get_templated_dataset``; its docs, "Zero-shot text classification": "adding synthetic examples can also
provide a performance boost to few-shot classification") is to write each class name into a template and add the
sentences to the training set as labelled examples::

    "This sentence is {}"  +  "joy"  ->  ("This sentence is joy", joy),  repeated ``per_class`` times

so that every strategy (a probe, full fine-tuning, SetFit's pairs) learns from them like from any example. Like
SetFit's ``sample_size`` (default 2), ``per_class`` weighs the name against the labelled texts: the copies are
identical, so more of them pull the classifier harder towards the name.

The template is read as SetFit reads it, with Python's ``str.format``: its one ``{}`` is where the name goes, and a
literal brace is written twice (``"Topic: {{{}}}"`` writes "Topic: {joy}"). Anything else ``str.format`` would take
(a second field, ``{0}``, ``{name}``, a format spec, a lone ``{`` or ``}``) is refused, not written as it stands.

Two choices of ours: underscores in a name become spaces (Banking77's ``card_arrival`` is written "card arrival",
as a person would), and names that are all numbers are refused: "This sentence is 1" tells the encoder nothing.

The examples are training examples only. :func:`warmstart.data.load_splits` adds them after the validation split is
held out, at the end of the training split, and counts them (``DataSplits.synthetic``), so that the folds of a
search (:func:`warmstart.run.trial.fold_splits`) train on them and never score them.
"""

from __future__ import annotations

from string import Formatter

import numpy as np

from ..config import DataConfig
from ..errors import WarmstartError
from .dataset import Dataset
from .files import is_number_text

DEFAULT_TEMPLATE = DataConfig.class_name_template  # "This sentence is {}", SetFit's get_templated_dataset
# identical copies: beyond this many per class they only add cost (SetFit's default is 2; 10**6 filled 7 GB)
MAX_PER_CLASS = 1000


def check_template(template: object) -> str:
    """``template`` if it is a string with exactly one replacement field, ``{}``, where the class name goes, read as
    ``str.format`` reads it: ``{{`` and ``}}`` are literal braces."""
    where = f"--class-name-template {template!r} (class_name_template)"
    expected = ("expected a text with one {} where the class name goes, and any literal brace written twice ({{ or "
                "}}, as in Python's str.format)")
    hint = (f'write {{}} where the name goes and a literal brace twice, e.g. --class-name-template "{DEFAULT_TEMPLATE}"'
            ', or "Topic: {{{}}}" for the name in braces ("Topic: {joy}")')
    if not isinstance(template, str):
        raise WarmstartError(f"{where}: {expected}; found a value of type {type(template).__name__}", hint=hint)
    try:
        fields = [_field_text(name, spec, conversion)
                  for _, name, spec, conversion in Formatter().parse(template) if name is not None]
    except ValueError as exc:  # "Single '}' encountered in format string"
        raise WarmstartError(f"{where}: {expected}; found a single brace ({exc})", hint=hint) from None
    if fields == ["{}"]:
        return template
    if not fields:  # "{{}}" is an escaped "{}", not the place for the name
        found = "no {}" + (": its {{}} is a literal '{}'" if "{{}}" in template else "")
    else:
        found = f"{len(fields)} replacement fields: {', '.join(fields)}" if len(fields) > 1 else fields[0]
    raise WarmstartError(f"{where}: {expected}; found {found}", hint=hint)


def _field_text(name: str, spec: str | None, conversion: str | None) -> str:
    """A replacement field as the template wrote it: ``{0}``, ``{name!r}``, ``{:>9}``."""
    return "{" + name + ("" if conversion is None else f"!{conversion}") + (f":{spec}" if spec else "") + "}"


def written_name(name: str) -> str:
    """A class name as the sentence writes it: underscores become spaces."""
    return " ".join(name.replace("_", " ").split())


def class_name_examples(dataset: Dataset, per_class: int, template: str = DEFAULT_TEMPLATE) -> Dataset:
    """``per_class`` labelled texts for every class of ``dataset``: ``template`` with the class name in it."""
    template = check_template(template)
    if dataset.kind != "text":
        raise WarmstartError(f"--class-name-examples writes sentences from the class names, and {dataset.name} holds "
                             f"{dataset.kind} data", hint="drop --class-name-examples: it is for text classification")
    names = [written_name(name) for name in dataset.class_names]
    if all(is_number_text(name) or is_number_text(raw) for name, raw in zip(names, dataset.class_names)):
        raise WarmstartError(f"--class-name-examples: the classes of {dataset.name} are named by numbers "
                             f"({', '.join(map(repr, dataset.class_names[:4]))}"
                             f"{', ...' if dataset.num_classes > 4 else ''}); a sentence made of them tells the "
                             "encoder nothing", hint="name the classes by words in the data's label column, or "
                                                     "drop --class-name-examples")
    same = sorted({name for name in names if names.count(name) > 1})
    if same:
        clashing = [raw for raw, name in zip(dataset.class_names, names) if name == same[0]]
        raise WarmstartError(f"--class-name-examples: the classes {', '.join(map(repr, clashing))} of {dataset.name} "
                             f"are both written {same[0]!r}, so their examples would contradict each other",
                             hint="rename one of the classes in the data's label column, or drop "
                                  "--class-name-examples")
    # str.format, as check_template read it: the name at its {}, doubled braces made single
    texts = np.array([template.format(name) for name in names for _ in range(per_class)], dtype=object)
    labels = np.repeat(np.arange(dataset.num_classes, dtype=np.int64), per_class)
    return Dataset(texts, labels, dataset.class_names, "text", dataset.name)


def with_class_name_examples(dataset: Dataset, per_class: int, template: str = DEFAULT_TEMPLATE) -> Dataset:
    """``dataset`` with :func:`class_name_examples` appended after its own examples."""
    extra = class_name_examples(dataset, per_class, template)
    return Dataset(np.concatenate([dataset.x.astype(object), extra.x]), np.concatenate([dataset.y, extra.y]),
                   dataset.class_names, dataset.kind, dataset.name, dataset.feature_names)


def refuse_written_examples(data: DataConfig, command: str) -> None:
    """``pretrain`` (a source, not a few-shot target) and ``evaluate`` (which scores, never trains) take no
    examples written from the class names: the CLI has no such flag for them, and the API refuses the field rather
    than using or dropping it silently (a pretrain config.json holding it could not be replayed)."""
    if data.class_name_examples:
        raise WarmstartError(f"{command}: class_name_examples={data.class_name_examples} applies to fine-tuning on a "
                             f"few labelled texts, not to {command}",
                             hint="set class_name_examples=0 in the DataConfig (finetune, tune, compare and distill "
                                  "take it)")
