"""The commands that train: pretrain, finetune, lr-find and compare."""

from __future__ import annotations

from typing import Any, List, Optional

from ..errors import WarmstartError
from . import build, render
from .app import app
from .command import Given, command
from .defaults import from_adapt, from_api
from .options import (ADAPTATION_OPTIONS, DATA_OPTIONS, LAUNCH_OPTIONS, MODEL, MODEL_OPTIONS, OUTPUT, OUTPUT_OPTIONS,
                      SCALING_OPTIONS, SELECTION, SELECTION_OPTIONS, START, STRATEGY, STRATEGY_OPTIONS,
                      TRACKING_OPTIONS, TRAINING_DATA, TRAINING_OPTIONS, Group, Opt)

SELF_SUPERVISED = "Self-supervised"
OBJECTIVE_OPTIONS = Group(
    Opt("objective", ("--objective",), str, "supervised (labels), or without labels simclr (images) or simcse "
        "(text): `warmstart list objectives`.", from_api("objective"), SELF_SUPERVISED),
    Opt("objective_option", ("--objective-option",), Optional[List[str]], "KEY=VALUE, repeatable: e.g. "
        "augment=strong, projection_dim=64, gather=false.", None, SELF_SUPERVISED, key_values=True),
    Opt("temperature", ("--temperature",), Optional[float], "The contrastive temperature (default: the objective's, "
        "0.5 for simclr, 0.05 for simcse).", None, SELF_SUPERVISED),
    Opt("ignore_labels", ("--ignore-labels",), bool, "Pretrain without labels on a labelled set's training inputs.",
        from_api("ignore_labels"), SELF_SUPERVISED),
    Opt("checkpoint", ("--from",), Optional[str], "With --objective simclr/simcse: start from a pretrained model "
        "(minilm, hf:SOURCE, timm:NAME) or a checkpoint instead of --model from scratch.", from_api("checkpoint"),
        SELF_SUPERVISED),
)

ADAPT_OPTIONS = Group(
    Opt("adapt_on", ("--adapt-on",), Optional[str], "Task-adaptive pretraining first: a self-supervised stage on "
        "these unlabelled inputs (a dataset, or `self`: the training split's, labels ignored).", from_api("adapt_on"),
        SELF_SUPERVISED),
    Opt("adapt_objective", ("--adapt-objective",), str, "auto (images simclr; text mlm with an MLM head, else "
        "simcse), or an objective.", from_adapt("objective"), SELF_SUPERVISED),
    Opt("adapt_epochs", ("--adapt-epochs",), int, "Epochs of the self-supervised stage.", from_adapt("epochs"),
        SELF_SUPERVISED),
    Opt("adapt_batch_size", ("--adapt-batch-size",), int, "Its batch size (its negatives: larger is better).",
        from_adapt("batch_size"), SELF_SUPERVISED),
    Opt("adapt_lr", ("--adapt-lr",), Optional[float], "Its learning rate (default: the objective's).",
        from_adapt("lr"), SELF_SUPERVISED),
    Opt("adapt_temperature", ("--adapt-temperature",), Optional[float], "Its temperature (default: the "
        "objective's).", from_adapt("temperature"), SELF_SUPERVISED),
)

ADAPT_SCRATCH = Opt("adapt_scratch", ("--adapt-scratch",), bool, "compare: give scratch the --adapt-on stage too "
                    "(by default only the transfer arms run it).", from_api("adapt_scratch"), SELF_SUPERVISED)

KEEP_HEAD = Opt("keep_head", ("--keep-head",), bool, "Keep the checkpoint's classifier when the target has its "
                "classes.", False, MODEL, when_set=True)
STRICT = Opt("strict", ("--strict/--no-strict",), bool, "With --from keras:FILE or torch:FILE: every weight must fit "
             "--model (--no-strict loads what fits and names the rest).", from_api("strict"), MODEL, when_set=True)
RACE = Opt("race", ("--race",), bool, "With --from auto: race the top candidates in short fine-tunes (successive "
           "halving on validation accuracy) instead of trusting the score.", False, SELECTION, when_set=True)
AVERAGE = Opt("average", ("--average",), Optional[str], "wise-ft: mix the fine-tuned backbone with its pretrained "
              "weights, the weight chosen on validation.", from_api("average"), STRATEGY, when_set=True)


@command(app, "pretrain", DATA_OPTIONS.without("shots", "resize", *TRAINING_DATA), MODEL_OPTIONS, OBJECTIVE_OPTIONS,
         TRAINING_OPTIONS, SCALING_OPTIONS, LAUNCH_OPTIONS, TRACKING_OPTIONS, OUTPUT_OPTIONS)
def pretrain(given: Given) -> None:
    """Train a model on a source dataset and save it as a checkpoint; with --objective simclr or simcse, without
    labels."""
    if build.launched(given):
        return
    from .. import api

    result = api.pretrain(build.data_config(given), model=build.model_config(given), train=build.train_config(given),
                          out=given.out, resume=given.resume,
                          objective=objective(given), ignore_labels=given.ignore_labels, checkpoint=given.checkpoint,
                          **given.changed("overwrite"))
    if result.metrics is None:
        render.print_pretext(result, given.as_json)
    else:
        render.print_metrics(result.metrics, f"pretrain test ({given.data})", given.as_json, result.run_dir)


def objective(given: Given):
    """``--objective`` with its ``--objective-option``s and ``--temperature``: the name ``supervised``, or an
    Objective."""
    options = build.key_values(given.objective_option, "--objective-option")
    if given.temperature is not None:
        options["temperature"] = given.temperature
    if given.objective == "supervised":
        if options:
            raise WarmstartError("--objective-option and --temperature apply to self-supervised objectives",
                                 hint="add --objective simclr (images) or simcse (text), or drop them")
        return "supervised"
    from ..objectives import create_objective

    return create_objective(given.objective, **options)


def adapt_config(given: Given):
    """``--adapt-on`` and its settings as an AdaptConfig (None without --adapt-on)."""
    from ..config import AdaptConfig, field_defaults

    settings = {name: getattr(given, f"adapt_{name}") for name in ("objective", "epochs", "batch_size", "lr",
                                                                  "temperature")}
    if given.adapt_on is None:
        changed = [f"--adapt-{k.replace('_', '-')}" for k, v in settings.items() if v != field_defaults(AdaptConfig)[k]]
        if changed:
            raise WarmstartError(f"{', '.join(changed)} set the --adapt-on stage, and there is none",
                                 hint="add --adapt-on DATA (or --adapt-on self), or drop them")
        return None
    return AdaptConfig(given.adapt_on, **settings)


@command(app, "finetune", Group(START.with_(help=START.help + " `auto` ranks --candidates and starts from the best.")),
         DATA_OPTIONS, MODEL_OPTIONS, Group(KEEP_HEAD, STRICT), Group(*STRATEGY_OPTIONS, AVERAGE), TRAINING_OPTIONS,
         SCALING_OPTIONS, LAUNCH_OPTIONS, ADAPTATION_OPTIONS, ADAPT_OPTIONS, Group(*SELECTION_OPTIONS, RACE),
         TRACKING_OPTIONS, OUTPUT_OPTIONS)
def finetune(given: Given) -> None:
    """Start from a checkpoint, give it a head for the target's classes, fine-tune it and save it."""
    if build.launched(given):
        return
    from .. import api

    starting_model = build.starting_model(given)
    method = build.adaptation(given)
    result = api.finetune(
        build.starting_checkpoint(given), build.data_config(given), target_unlabeled=build.target_data(given),
        adaptation=method, strategy=build.strategy(given), model=starting_model, train=build.train_config(given),
        out=given.out, resume=given.resume, candidates=build.listed(given.candidates), rank_score=given.rank_score,
        adapt_on=adapt_config(given), **given.changed("keep_head", "overwrite", "strict", "average", "race"))
    render.print_metrics(result.metrics, f"finetune test ({given.data})", given.as_json, result.run_dir)


LR_FIND_OPTIONS = Group(
    Opt("start_lr", ("--start-lr",), float, "The first step's learning rate.", from_api("start_lr")),
    Opt("end_lr", ("--end-lr",), float, "The last step's learning rate.", from_api("end_lr")),
    Opt("steps", ("--steps",), int, "Mini-batches, at exponentially growing rates.", from_api("steps")),
)


@command(app, "lr-find", Group(START.with_(help="Checkpoint (run folder), or `none` for scratch.")), DATA_OPTIONS,
         MODEL_OPTIONS, STRATEGY_OPTIONS, TRAINING_OPTIONS.without("lr"), SCALING_OPTIONS, LR_FIND_OPTIONS,
         ADAPT_OPTIONS, OUTPUT_OPTIONS.pick("out", "as_json").with_help(out="Folder for lr_find.json and lr_find.png."))
def lr_find(given: Given) -> None:
    """Learning-rate range test: train briefly at exponentially growing rates and suggest one (no checkpoint
    changes). The test runs in the strategy's first phase; --epochs places the strategy's phases; --adapt-on runs
    the task-adaptive stage first, as finetune would."""
    from .. import api

    starting_model = build.starting_model(given)
    result = api.lr_find(build.starting_checkpoint(given), build.data_config(given), strategy=build.strategy(given),
                         model=starting_model, train=build.train_config(given), start_lr=given.start_lr,
                         end_lr=given.end_lr, steps=given.steps, out=given.out, adapt_on=adapt_config(given))
    if given.as_json:
        render.print_json(result)
    else:
        render.print_lr_find(result, given.out)


COMPARE_OPTIONS = Group(
    Opt("strategies", ("--strategies",), List[str], "Strategies to test against scratch: full freeze.",
        from_api("strategies"), STRATEGY, spread=True),
    Opt("strategy_option", ("--strategy-option",), Optional[List[str]],
        "STRATEGY:KEY=VALUE (full:head_lr_scale=100), or KEY=VALUE for every strategy that takes KEY; repeatable.",
        None, STRATEGY, key_values=True),
    Opt("shots", ("--shots",), List[str], "Shots (K per class): 5 10 50, or 5,10,50.", from_api("shots"),
        spread=True),
    Opt("seeds", ("--seeds",), int, "Seeds 0..N-1; each draws its own K examples.", from_api("seeds")),
    Opt("plateau", ("--plateau/--no-plateau",), bool,
        "Also train each arm until its loss plateaus and report that gain beside the equal-budget one.",
        from_api("plateau"), OUTPUT),
)


@command(app, "compare", Group(START.with_(help="Source checkpoint (run folder) or pretrained model.")),
         DATA_OPTIONS.without("shots"), COMPARE_OPTIONS, STRATEGY_OPTIONS.pick("frozen_batchnorm"),
         Group(*(o.with_(help=o.help.replace("with --from none", "the scratch arm's (default: the checkpoint's)"))
                 for o in MODEL_OPTIONS)),
         TRAINING_OPTIONS.without("seed"), SCALING_OPTIONS, Group(*ADAPT_OPTIONS, ADAPT_SCRATCH), TRACKING_OPTIONS,
         OUTPUT_OPTIONS.without("resume").with_help(overwrite="Replace a comparison (or a run) in --out."))
def compare(given: Given) -> None:
    """Scratch and each strategy over seeds and shot counts: mean ± std, 95% CI, paired gain and its p-value.
    --adapt-on runs the task-adaptive stage before each transfer arm (scratch too with --adapt-scratch)."""
    from ..compare import compare as run_compare

    strategies = build.listed(given.strategies)
    options = strategy_options(given.strategy_option, strategies)
    newer = {"strategy_options": options} if options else {}
    adapt = adapt_config(given)
    if adapt is not None:
        newer.update(adapt_on=adapt, adapt_scratch=given.adapt_scratch)
    elif given.adapt_scratch:
        raise WarmstartError("--adapt-scratch gives scratch the --adapt-on stage, and there is none",
                             hint="add --adapt-on DATA (or --adapt-on self), or drop --adapt-scratch")
    result = run_compare(given.checkpoint, build.data_config(given, shots=None), strategies=strategies,
                         shots=build.whole_numbers("--shots", build.listed(given.shots)), seeds=given.seeds,
                         model=build.model_config(given), train=build.train_config(given), out=given.out,
                         plateau=given.plateau, **newer, **given.changed("overwrite"))
    if given.as_json:
        render.print_compare_json(result)
    else:
        render.print_compare(result)


def strategy_options(pairs: list[str] | None, strategies: list[str]) -> dict[str, dict[str, Any]]:
    """``--strategy-option`` of compare, per strategy: ``full:head_lr_scale=100`` for one strategy, a plain
    ``KEY=VALUE`` for every compared strategy that takes KEY (at least one must). A strategy's own option wins over a
    plain one, whatever their order."""
    from ..registry import option_names
    from ..strategies import STRATEGIES

    options: dict[str, dict[str, Any]] = {name: {} for name in strategies}
    named = [(pair, pair.partition("=")[0].partition(":")) for pair in pairs or []]
    for pair, (key, colon, _) in named:
        if colon:
            continue
        (key, value), = build.key_values([pair], "--strategy-option").items()
        takers = [s for s in strategies if key in option_names(STRATEGIES.get(s, parameter="--strategies"))]
        if not takers:
            raise WarmstartError(f"--strategy-option {pair!r}: none of {', '.join(strategies)} takes {key!r}",
                                 hint="see `warmstart list strategies`, or name one: STRATEGY:KEY=VALUE")
        for name in takers:
            options[name][key] = value
    for pair, (target, colon, _) in named:
        if not colon:
            continue
        if target not in options:
            raise WarmstartError(f"--strategy-option {pair!r}: {target!r} is not among --strategies "
                                 f"({', '.join(strategies)})", hint=f"add --strategies {target}, or fix the name")
        options[target].update(build.key_values([pair[len(target) + 1:]], "--strategy-option"))
    return {name: values for name, values in options.items() if values}
