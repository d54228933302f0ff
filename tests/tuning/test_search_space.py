"""Every strategy's declared search space names only what the run can set, and every value in it is accepted."""

from __future__ import annotations

import pytest

from warmstart import TrainConfig
from warmstart.search_space import SearchParam, apply_overrides, for_kind
from warmstart.strategies import STRATEGIES, create_strategy
from warmstart.tuning.objective import TRAIN_FIELDS, apply, check_space, searchable


@pytest.mark.parametrize("name", [n for n in STRATEGIES.names() if n != "auto"])  # auto searches what it picks
def test_every_strategy_declares_a_space_of_settings_it_accepts(name):
    strategy = create_strategy(name)
    space = strategy.search_space
    assert space and all(isinstance(p, SearchParam) for p in space)
    assert {p.name for p in space} <= set(searchable(strategy)), name
    train = TrainConfig.for_command("tune", epochs=10)
    own = {"lr": 1e-3, "epochs": 10}
    check_space(space, train, strategy, own, f"{name}'s space")  # raises, naming the key, on a refused value
    for param in space:  # a parameter of the strategy reaches the strategy, a training field the config
        value = param.choices[-1] if param.choices else param.bounds(own.get(param.name))[1]
        new_train, new_strategy = apply({param.name: value}, train, strategy)
        got = getattr(new_train, param.name) if param.name in TRAIN_FIELDS else getattr(new_strategy, param.name)
        assert got == value or param.name == "warmup_epochs", (name, param.name, got, value)


def test_relative_ranges_scale_with_the_run_and_kinds_filter():
    lr = SearchParam("lr", 0.1, 10.0, log=True, relative=True)
    assert lr.bounds(5e-5) == pytest.approx((5e-6, 5e-4))
    assert SearchParam("epochs", 0.5, 2.0, integer=True, relative=True).bounds(3) == (2, 6)
    space = create_strategy("full").search_space
    assert "augment" in {p.name for p in for_kind(space, "image")}
    assert "augment" not in {p.name for p in for_kind(space, "text")}
    changed = apply_overrides(space, {"augment": None, "lr": SearchParam("lr", 1e-4, 1e-2, log=True)},
                              searchable(create_strategy("full")))
    assert "augment" not in {p.name for p in changed} and next(p for p in changed if p.name == "lr").high == 1e-2


def test_a_space_given_as_a_mapping_is_asked_for_as_a_file():
    # a --config holding `space: {lr: {...}}` said "--space {'lr': ...}: no such file"
    from warmstart.errors import WarmstartError
    from warmstart.search_space import read_space_file

    with pytest.raises(WarmstartError, match="--space: expected the path of a YAML file, got dict"):
        read_space_file({"lr": {"low": 1e-4, "high": 1e-2}})


@pytest.mark.parametrize("options", [{"solver": "loop"}, {"solver": "lbfgs"}])
def test_a_setting_the_strategy_never_reads_is_refused_in_a_space(options):
    """linear-probe's C under the loop solver, and the loop's lr or epochs under L-BFGS: searched before, the trials
    differing only there scored alike, and best_config.yaml presented the inert value as the winning recipe."""
    from warmstart.errors import WarmstartError
    from warmstart.search_space import fixed

    probe = create_strategy("linear-probe", **options)
    inert = "C" if options["solver"] == "loop" else "lr"
    assert not {p.name for p in probe.search_space} & set(probe.unused_settings())  # its own space reads all
    with pytest.raises(WarmstartError, match=f"key '{inert}': searching it changes nothing: "):
        apply_overrides(probe.search_space, {inert: SearchParam(inert, 0.1, 10.0, log=True)}, searchable(probe),
                        unused=probe.unused_settings())
    # fixing it to one value searches nothing, and stays allowed
    apply_overrides(probe.search_space, {inert: fixed(inert, 1.0)}, searchable(probe), unused=probe.unused_settings())
    assert create_strategy("full").unused_settings() == {}


def test_a_space_that_is_a_folder_or_empty_says_so(tmp_path, caplog):
    from warmstart.errors import WarmstartError
    from warmstart.search_space import read_space_file

    with pytest.raises(WarmstartError, match="a folder, not a file"):
        read_space_file(tmp_path)
    (tmp_path / "empty.yaml").write_text("")
    with caplog.at_level("WARNING", logger="warmstart"):
        assert read_space_file(tmp_path / "empty.yaml") == {}
    assert "is empty: the strategy's own space is searched" in caplog.text


def test_a_range_of_a_whole_number_setting_draws_whole_numbers_without_int(tmp_path):
    """``epochs: {low: 1, high: 3}`` was refused as "got 1.0": the user wrote 1, and only `int: true` (in no
    message) made it work. A declared whole-number setting keeps whole numbers; another says to add `int: true`."""
    from warmstart.errors import WarmstartError
    from warmstart.search_space import read_space_file

    full = create_strategy("full")
    file = tmp_path / "space.yaml"
    file.write_text("epochs: {low: 1, high: 3}\nwarmup_epochs: {low: 0, high: 1}\n")
    space = apply_overrides(full.search_space, read_space_file(file), searchable(full), path=file)
    epochs = next(p for p in space if p.name == "epochs")
    assert (epochs.low, epochs.high, epochs.integer, epochs.relative) == (1, 3, True, False)
    assert next(p for p in space if p.name == "warmup_epochs").integer
    check_space(space, TrainConfig.for_command("tune", epochs=10), full, {"lr": 1e-3, "epochs": 10}, str(file))
    file.write_text("batch_size: {low: 16, high: 64}\n")  # not declared: no type to go by
    space = apply_overrides(full.search_space, read_space_file(file), searchable(full), path=file)
    with pytest.raises(WarmstartError, match="key 'batch_size': the value 16.0 is refused") as error:
        check_space(space, TrainConfig.for_command("tune", epochs=10), full, {"lr": 1e-3, "epochs": 10}, str(file))
    assert error.value.hint == ("if batch_size takes whole numbers, add `int: true` to its range: batch_size: "
                                "{low: 16, high: 64, int: true}")
    file.write_text("label_smoothing: {low: 0, high: 1}\n")  # refused for another reason: the usual hint
    space = apply_overrides(full.search_space, read_space_file(file), searchable(full), path=file)
    with pytest.raises(WarmstartError, match="key 'label_smoothing'") as error:
        check_space(space, TrainConfig.for_command("tune", epochs=10), full, {"lr": 1e-3, "epochs": 10}, str(file))
    assert "int: true" not in error.value.hint
