"""Training state saved after every epoch, so an interrupted run resumes exactly where it stopped.

Everything that decides what happens next is kept: the model's weights, the optimizer's state (momentum, Adam's
moments, for every group, including groups still frozen in the current phase), the scheduler's step, the random
number generators, the epoch logs so far and the state of callbacks that have one (the best weights so far).
Strategy phases are a function of the epoch alone, so the phase follows from the epoch; there is nothing else to
restore across a phase change (the failure in Lightning #6891 was optimizer state lost at exactly that point).

Layout of ``state_dir``: ``weights.safetensors`` (the model, with the epoch in its header) and ``trainer.pt``
(everything else: tensors and plain values only, read back with ``torch.load(weights_only=True)``). Each is written
atomically, but two files cannot be renamed at once, so the weights of the epoch before are kept beside them as
``weights.previous.safetensors`` until the new trainer state is in place. Saving epoch N:

1. the new weights are written to a temporary file; 2. ``weights`` (epoch N-1) becomes ``weights.previous``;
3. the temporary file becomes ``weights``; 4. ``trainer.pt`` (epoch N) replaces the old one atomically.

A kill at any point leaves a consistent pair: the trainer state names its epoch, and whichever weights file holds
that epoch is loaded (N-1 until step 4 finishes, N after). Anything unreadable (a damaged or hostile file, a missing
key) is a :class:`WarmstartError` saying so, never a traceback and never an unpickled object.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import WarmstartError, first_line
from ..io import atomic_write

WEIGHTS, PREVIOUS_WEIGHTS, TRAINER = "weights.safetensors", "weights.previous.safetensors", "trainer.pt"
_RESTART = "run the command again with --overwrite instead of --resume to start training again"


def _callback_states(callbacks: Sequence[Any]) -> dict[str, Any]:
    """Callbacks with state, keyed by class name and rank among callbacks of that class (not by position, so a
    resumed run may add or drop stateless callbacks)."""
    keyed, seen = {}, {}
    for cb in callbacks:
        if hasattr(cb, "state_dict"):
            name = type(cb).__name__
            seen[name] = seen.get(name, 0) + 1
            keyed[f"{name}:{seen[name]}"] = cb
    return keyed


def save_training_state(state_dir: Path, *, epoch: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: Any, generator: torch.Generator, history: list[dict[str, Any]],
                        callbacks: Sequence[Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=f".{WEIGHTS}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"epoch": str(epoch)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if (state_dir / WEIGHTS).is_file():
            os.replace(state_dir / WEIGHTS, state_dir / PREVIOUS_WEIGHTS)
        os.replace(tmp, state_dir / WEIGHTS)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    trainer = {"epoch": epoch, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "history": history,
               "callbacks": {key: cb.state_dict() for key, cb in _callback_states(callbacks).items()}}
    atomic_write(state_dir / TRAINER, lambda tmp: torch.save(trainer, tmp))


def has_training_state(state_dir: Path) -> bool:
    return (state_dir / TRAINER).is_file() and any((state_dir / name).is_file() for name in (WEIGHTS, PREVIOUS_WEIGHTS))


def _unreadable(state_dir: Path, what: str) -> WarmstartError:
    return WarmstartError(f"{state_dir}: the training state cannot be read ({what})",
                          hint=f"the state is damaged or was not written by warmstart; {_RESTART}")


def _read_trainer(state_dir: Path) -> dict[str, Any]:
    try:
        trainer = torch.load(state_dir / TRAINER, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError, TypeError, AttributeError,
            IndexError, KeyError, ImportError) as exc:  # what a damaged or hostile file raises inside torch.load
        raise _unreadable(state_dir, f"{TRAINER}: {type(exc).__name__}: {first_line(exc)}") from None
    expected = {"epoch": int, "optimizer": dict, "scheduler": dict, "generator": torch.Tensor,
                "torch_rng": torch.Tensor, "history": list, "callbacks": dict}
    if not isinstance(trainer, dict):
        raise _unreadable(state_dir, f"{TRAINER} holds a {type(trainer).__name__}, not the trainer's dict")
    for key, kind in expected.items():
        if not isinstance(trainer.get(key), kind):
            found = "nothing" if key not in trainer else f"a {type(trainer[key]).__name__}"
            raise _unreadable(state_dir, f"{TRAINER}: {key!r} should be a {kind.__name__}, found {found}")
    return trainer


def _read_weights(state_dir: Path, epoch: int) -> dict[str, torch.Tensor]:
    """The weights of ``epoch``: the current file, or the previous one when a save was cut off before the trainer
    state of the new epoch was in place."""
    found = []
    for name in (WEIGHTS, PREVIOUS_WEIGHTS):
        if not (state_dir / name).is_file():
            continue
        try:
            with safe_open(str(state_dir / name), framework="pt") as f:
                weights_epoch = int((f.metadata() or {}).get("epoch", -1))
                if weights_epoch == epoch:
                    return {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise _unreadable(state_dir, f"{name}: {exc}") from None
        found.append(str(weights_epoch))
    raise WarmstartError(f"{state_dir}: weights are from epoch {' and '.join(found) or 'none'} but the trainer state "
                         f"from epoch {epoch} (damaged, or copied from another run?)", hint=_RESTART)


def load_training_state(state_dir: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: Any, generator: torch.Generator, callbacks: Sequence[Any]) -> tuple[int, list]:
    """Restore everything in place; returns the last finished epoch and the epoch logs so far."""
    if not has_training_state(state_dir):
        raise WarmstartError(f"{state_dir}: no training state to resume from",
                             hint="run without --resume to start training")
    trainer = _read_trainer(state_dir)
    weights = _read_weights(state_dir, trainer["epoch"])
    try:
        model.load_state_dict(weights)
        optimizer.load_state_dict(trainer["optimizer"])
        scheduler.load_state_dict(trainer["scheduler"])
        generator.set_state(trainer["generator"])
        torch.set_rng_state(trainer["torch_rng"])
        for key, cb in _callback_states(callbacks).items():
            if key in trainer["callbacks"]:
                cb.load_state_dict(trainer["callbacks"][key])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:  # it does not fit this run
        raise WarmstartError(f"{state_dir}: the saved training state does not fit this run's model and optimizer "
                             f"({type(exc).__name__}: {first_line(exc)})", hint=_RESTART) from None
    return trainer["epoch"], trainer["history"]
