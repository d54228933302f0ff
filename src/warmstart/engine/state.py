"""Training state saved after every epoch, so an interrupted run resumes exactly where it stopped.

Everything that decides what happens next is kept: the model's weights, the optimizer's state (momentum, Adam's
moments, for every group, including groups still frozen in the current phase), the scheduler's step, the random
number generators, the epoch logs so far and the state of callbacks that have one (the best weights so far).
Strategy phases are a function of the epoch alone, so the phase follows from the epoch; there is nothing else to
restore across a phase change (the failure in Lightning #6891 was optimizer state lost at exactly that point).

Layout of ``state_dir``: ``weights.safetensors`` (the model, with the epoch in its header) and ``trainer.pt``
(everything else: tensors and plain values only, read back with ``torch.load(weights_only=True)``). Both are written
atomically and must name the same epoch, or the state is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import WarmstartError
from ..io import atomic_write

WEIGHTS, TRAINER = "weights.safetensors", "trainer.pt"


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
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write(state_dir / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"epoch": str(epoch)}))
    trainer = {"epoch": epoch, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "history": history,
               "callbacks": {key: cb.state_dict() for key, cb in _callback_states(callbacks).items()}}
    atomic_write(state_dir / TRAINER, lambda tmp: torch.save(trainer, tmp))


def has_training_state(state_dir: Path) -> bool:
    return (state_dir / WEIGHTS).is_file() and (state_dir / TRAINER).is_file()


def load_training_state(state_dir: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler: Any, generator: torch.Generator, callbacks: Sequence[Any]) -> tuple[int, list]:
    """Restore everything in place; returns the last finished epoch and the epoch logs so far."""
    if not has_training_state(state_dir):
        raise WarmstartError(f"{state_dir}: no training state to resume from",
                             hint="run without --resume to start training")
    try:
        trainer = torch.load(state_dir / TRAINER, weights_only=True)
        with safe_open(str(state_dir / WEIGHTS), framework="pt") as f:
            weights_epoch = int((f.metadata() or {}).get("epoch", -1))
            weights = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError) as exc:
        raise WarmstartError(f"{state_dir}: the training state cannot be read ({exc})",
                             hint="run without --resume to start again") from None
    if weights_epoch != trainer["epoch"]:
        raise WarmstartError(f"{state_dir}: weights are from epoch {weights_epoch} but the trainer state from epoch "
                             f"{trainer['epoch']} (interrupted while saving?)", hint="run without --resume")
    model.load_state_dict(weights)
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    generator.set_state(trainer["generator"])
    torch.set_rng_state(trainer["torch_rng"])
    for key, cb in _callback_states(callbacks).items():
        if key in trainer["callbacks"]:
            cb.load_state_dict(trainer["callbacks"][key])
    return trainer["epoch"], trainer["history"]
