"""Zero-cost proxies: scores of an untrained subnet from one minibatch, by NASLib's definitions.

A supernet is only worth its training if it ranks subnets better than what costs nothing.
These proxies are the published training-free rankers that the zero-cost literature reports
beside the parameter count (Abdelfattah et al., ICLR 2021; Mellor et al., ICML 2021; NASLib's
``naslib/predictors/utils/pruners/measures``). Each takes a freshly initialised subnet and
one minibatch and returns a float; higher means "predicted better".

* :func:`synflow` -- SynFlow (Tanaka et al., 2020): BatchNorm bypassed, the network in
  float64 with every weight replaced by its absolute value, one forward pass of an all-ones
  input; the score is the sum over convolution and linear layers of ``|w * dL/dw|`` with
  ``L`` the sum of the outputs. The subnet's weights are left as they were.
* :func:`jacov` -- Jacobian covariance (Mellor et al., first version): the Jacobian of the
  summed outputs with respect to each input of the minibatch (BatchNorm on, train mode), the
  correlation matrix of those Jacobians, and ``-sum(log(v + k) + 1 / (v + k))`` over its
  eigenvalues ``v`` with ``k = 1e-5``.
* :func:`nwot` -- NASWOT (Mellor et al., second version): binary codes of the inputs of
  every ReLU on the minibatch, the kernel ``K`` of code agreements summed over ReLUs, and
  the log-determinant of ``K``.

:data:`PROXIES` maps each name to its function.
"""
from __future__ import annotations

import copy
import types
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["synflow", "jacov", "nwot", "PROXIES"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _identity(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x


def synflow(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """SynFlow score of ``model`` (a copy is scored; ``model`` is not changed).

    Parameters
    ----------
    model
        An initialised, untrained subnet.
    inputs, targets
        One minibatch; only the shape of one input is used.

    Returns
    -------
    float
    """
    net = copy.deepcopy(model).double()
    for module in net.modules():
        if isinstance(module, _BN):
            module.forward = types.MethodType(_identity, module)  # NASLib's synflow runs with bn=False
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    net.zero_grad()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    torch.sum(net(ones)).backward()
    total = 0.0
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight.grad is not None:
            total += float(torch.sum(torch.abs(module.weight.detach() * module.weight.grad)))
    return total


def jacov(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Jacobian-covariance score of ``model`` on one minibatch (a copy in train mode is scored).

    Returns
    -------
    float
        NaN when the correlation matrix is undefined (a constant Jacobian row).
    """
    net = copy.deepcopy(model).train()
    net.zero_grad()
    x = inputs.detach().clone().requires_grad_(True)
    y = net(x)
    y.backward(torch.ones_like(y))
    jacobians = x.grad.detach().reshape(x.shape[0], -1).cpu().double().numpy()
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jacobians)
    if not np.all(np.isfinite(corr)):
        return float("nan")
    eigenvalues = np.linalg.eigvals(corr).real
    k = 1e-5
    return float(-np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


def nwot(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """NASWOT score: log-determinant of the ReLU-code agreement kernel on one minibatch.

    Returns
    -------
    float
        ``-inf`` when the kernel is singular (e.g. a subnet without ReLUs on its path).
    """
    net = copy.deepcopy(model).train()
    n = inputs.shape[0]
    kernel = np.zeros((n, n))

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        codes = (args[0].detach().reshape(n, -1) > 0).double()
        kernel[:] += (codes @ codes.t() + (1.0 - codes) @ (1.0 - codes).t()).cpu().numpy()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(inputs)
    finally:
        for handle in handles:
            handle.remove()
    sign, logdet = np.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


PROXIES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "synflow": synflow, "jacov": jacov, "nwot": nwot,
}
"""The zero-cost proxies by name."""
