"""Layer groups of models warmstart did not write (timm, torchvision): a view of some of a module's parameters.

A strategy walks ``layer_groups()`` and, in each group, freezes parameters by name (BitFit trains those named
``*bias``), builds optimizer groups from them and puts frozen groups in eval mode. A :class:`ParameterGroup` gives
exactly that for any set of a backbone's parameters: ``named_parameters`` yields them under their names in the
backbone, in the backbone's order, and ``train()``/``eval()`` reach the modules that own them (so BatchNorm of a
frozen group keeps its statistics). Nothing is copied, and the group is built on demand, never registered in the
model, so the model's state dict stays the library's own.
"""

from __future__ import annotations

from typing import Callable, Iterator

from torch import nn


class ParameterGroup(nn.Module):
    def __init__(self, backbone: nn.Module, names: list[str]):
        super().__init__()
        parameters = dict(backbone.named_parameters())
        self._named = [(name, parameters[name]) for name in names]
        owners = {name.rpartition(".")[0] for name in names}
        # the modules that own the parameters (a parameter of the backbone itself, such as ViT's class token, has
        # no owner below it); registered, so that eval() and forward hooks reach them
        self.owners = nn.ModuleList([module for path, module in backbone.named_modules() if path and path in owners])

    # The group is built anew on every layer_groups() call, so its mode must be its modules' mode: a strategy
    # puts a frozen group in eval mode through one view and reads it back through another.
    @property
    def training(self) -> bool:  # type: ignore[override]
        owners = self._modules.get("owners")
        return all(m.training for m in owners) if owners else self.__dict__.get("_training", True)

    @training.setter
    def training(self, mode: bool) -> None:
        self.__dict__["_training"] = mode

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, nn.Parameter]]:
        for name, parameter in self._named:
            yield (f"{prefix}.{name}" if prefix else name), parameter


def group_name(names: list[str]) -> str:
    """A readable name for parameters: their modules' common path (``layer1.0``), else their top-level modules
    joined with ``+`` (``conv1+bn1``)."""
    paths = [name.split(".")[:-1] for name in names]
    common: list[str] = []
    for parts in zip(*paths):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    if common:
        return ".".join(common)
    tops = list(dict.fromkeys(name.split(".")[0] for name in names))
    return "+".join(tops)


def parameter_groups(backbone: nn.Module, group_of: Callable[[str], object]) -> list[tuple[str, ParameterGroup]]:
    """The backbone's parameters in consecutive groups (``group_of(name)`` labels each; a new label starts a new
    group), named by :func:`group_name`, unique, and never ``head`` (the head is the TransferModel's)."""
    runs: list[list[str]] = []
    previous = object()
    for name, _ in backbone.named_parameters():
        label = group_of(name)
        if not runs or label != previous:
            runs.append([])
        runs[-1].append(name)
        previous = label
    groups, seen = [], set()
    for names in runs:
        base = group_name(names)
        base = "backbone." + base if base in ("head", "") else base
        name, n = base, 2
        while name in seen:
            name, n = f"{base}#{n}", n + 1
        seen.add(name)
        groups.append((name, ParameterGroup(backbone, names)))
    return groups
