"""Data-parallel training over several processes with PyTorch DDP: a thin layer around the one-process loop.

Nothing here starts processes. torchrun (which ``warmstart finetune --nproc N`` runs, and Spark's TorchDistributor
runs too) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in every worker;
:func:`setup` joins the process group they describe (gloo on the CPU, NCCL on CUDA). With none of them set,
everything here is the identity and training runs in one process as before.

The rules, as a user sees them:

- ``batch_size`` is global. Every rank draws the same seeded permutation (the run's generator is seeded alike
  everywhere), cuts the same global batches and takes its own contiguous 1/W of each (``torch.tensor_split``, so
  shares differ by one example at most), which is what ``DistributedSampler`` does with the same seed. Each rank's
  mean loss is weighted by ``W * n_rank / n_step``, so DDP's average of the ranks' gradients is the gradient of
  the whole step's mean loss: W processes follow the one-process run step for step (to float rounding), with the
  same learning rate. Raising ``batch_size`` with W is a different run; the usual rule is then to scale the
  learning rate linearly with the batch, with a warm-up (Goyal et al., "Accurate, Large Minibatch SGD", 2017).
- BatchNorm computes its batch statistics per rank (plain DDP; ``SyncBatchNorm`` needs CUDA), so models with
  BatchNorm match the one-process run only approximately. Under W > 1 a last batch of fewer than 2W examples is
  dropped, so that every rank steps the same number of times and BatchNorm never sees a batch of one.
- Validation and test rows are split across ranks and the predictions gathered, so every rank computes the metrics
  one process would; callbacks that decide training (best weights, early stopping) see the same values everywhere
  and all ranks stop together. Only rank 0 writes files, logs and prints.
- A parameter's ``requires_grad`` decides whether DDP synchronises it, and DDP reads it once, when it wraps the
  model. Strategies that change phase (gradual unfreezing, LP-FT) therefore get a fresh wrapper whenever the set of
  trainable parameters changes (:meth:`DataParallel.for_phase`): no unused-parameter errors, and no parameter that
  starts to train unsynchronised.
- A failing rank stops the run: torchrun's elastic agent sees the worker exit, stops the others and exits with an
  error naming the failed rank. Collectives time out after ``WARMSTART_DIST_TIMEOUT_S`` seconds (default 300),
  so a rank waiting on a dead peer errors out rather than hangs.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import WarmstartError
from .batches import TensorBatches

TIMEOUT_ENV = "WARMSTART_DIST_TIMEOUT_S"
# (x, y) -> (model inputs, loss targets): augmentation and mixup (data/augment.py)
Transform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: its rank among ``world_size`` processes, and its rank on its own machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True in a worker that torchrun (or TorchDistributor) started with more than one process in the run."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def current() -> Distributed:
    if dist.is_available() and dist.is_initialized():
        return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return Distributed()


def setup(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join torchrun's process group (once per process) and return this rank and its device.

    On CUDA each rank takes the GPU of its local rank; ``device`` of another type is kept as it is.
    """
    if not launched_by_torchrun():
        return Distributed(), device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "300")))
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timeout, device_id=device if device.type == "cuda" else None)
        atexit.register(_leave)
    return current(), device


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _communication_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def sum_across_ranks(*values: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor summed over all ranks (one all-reduce); the tensors themselves where there is one process."""
    if not current().enabled:
        return list(values)
    flat = torch.stack([v.detach().double().reshape(()) for v in values]).to(_communication_device())
    dist.all_reduce(flat)
    return [flat[i].to(v.device, v.dtype) for i, v in enumerate(values)]


def gather_rows(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``function(x)``, computed by splitting the rows of ``x`` over the ranks and gathering the results in order.

    ``function`` must map rows to rows (predictions, backbone features). Every rank gets the whole result. With
    fewer rows than ranks, every rank computes it all.
    """
    state = current()
    if not state.enabled or len(x) < state.world_size:
        return function(x)
    shares = torch.tensor_split(torch.arange(len(x)), state.world_size)
    mine = function(x[shares[state.rank]]).contiguous()
    longest = len(shares[0])  # tensor_split puts the longer shares first
    padded = torch.zeros((longest, *mine.shape[1:]), dtype=mine.dtype, device=_communication_device())
    padded[:len(mine)] = mine.to(padded.device)
    gathered = [torch.empty_like(padded) for _ in range(state.world_size)]
    dist.all_gather(gathered, padded)
    return torch.cat([part[:len(share)] for part, share in zip(gathered, shares)]).to(mine.device)


class StepBatches:
    """This rank's micro-batches for each optimizer step: ``(inputs, targets, labels, weight)``, the weight being
    that of the micro-batch's mean loss.

    A step takes ``accumulation`` consecutive global batches of ``batches`` (gradient accumulation) and, under DDP,
    this rank's contiguous share of each. ``transform`` (augmentation, mixup) runs on the whole global batch in
    every rank, with the same seed, before it is shared out: the shares are exactly the one-process batch's, at the
    cost of W times the augmentation work. Weighting every micro-batch's mean loss by ``W * n_micro / n_step`` makes
    the summed gradient, averaged over ranks by DDP, the gradient of the mean loss over the whole step: K batches of
    B match one batch of K x B, and W ranks match one process.
    """

    def __init__(self, batches: TensorBatches, accumulation: int = 1, state: Distributed | None = None,
                 transform: Transform | None = None):
        self.batches, self.accumulation, self.transform = batches, accumulation, transform
        self.state = state or Distributed()
        self.usable = len(batches)
        if self.state.enabled and self.usable:
            last = min(batches.batch_size, batches.num_examples - (self.usable - 1) * batches.batch_size)
            if last < 2 * self.state.world_size:  # some rank would get a batch of one, or none
                self.usable -= 1
        if self.usable == 0:
            raise WarmstartError(f"{batches.num_examples} training examples make no batch of at least "
                                 f"{2 * self.state.world_size} for {self.state.world_size} processes",
                                 hint="use fewer processes (--nproc), or more data")

    def __len__(self) -> int:
        return math.ceil(self.usable / self.accumulation)

    def __iter__(self) -> Iterator[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]]:
        group: list[tuple[torch.Tensor, torch.Tensor]] = []
        for index, batch in enumerate(self.batches):
            if index >= self.usable:
                break
            group.append(batch)
            if len(group) == self.accumulation:
                yield self._share(group)
                group = []
        if group:
            yield self._share(group)

    def _share(self, group: list[tuple[torch.Tensor, torch.Tensor]]
               ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]:
        total = sum(len(y) for _, y in group)
        world, rank = self.state.world_size, self.state.rank
        shares = []
        for x, y in group:
            inputs, targets = (x, y) if self.transform is None else self.transform(x, y)
            mine = [torch.tensor_split(t, world)[rank] for t in (inputs, targets, y)]
            if len(mine[2]):
                shares.append((*mine, world * len(mine[2]) / total))
        return shares


class DataParallel:
    """Wraps the model in DDP for the current phase; the identity in one process."""

    def __init__(self, state: Distributed, device: torch.device):
        self.state, self.device = state, device
        self._trainable: tuple[bool, ...] | None = None
        self._wrapped: nn.Module | None = None

    def for_phase(self, model: nn.Module, runner: nn.Module) -> nn.Module:
        """The module that runs training steps now: ``runner`` (the model, compiled or not) in a DDP wrapper built
        for the parameters that train now, rebuilt when that set changes."""
        if not self.state.enabled:
            return runner
        trainable = tuple(p.requires_grad for p in model.parameters())
        if trainable != self._trainable:
            self._trainable = trainable
            self._wrapped = runner if not any(trainable) else DistributedDataParallel(
                runner, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self._wrapped.training = model.training  # the strategy set the modes inside; train() would reset them
        return self._wrapped

    @staticmethod
    def gradient_sync(wrapped: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
        """DDP all-reduces gradients in the backward pass of the last micro-batch of a step only."""
        if sync or not isinstance(wrapped, DistributedDataParallel):
            return contextlib.nullcontext()
        return wrapped.no_sync()
