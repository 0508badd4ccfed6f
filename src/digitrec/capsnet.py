"""A capsule network for 28x28 digits: Efficient-CapsNet (Mazzia et al. 2021).

Four convolutions, primary capsules made by a depthwise convolution (16 capsules of 8
dimensions), and self-attention routing to 10 digit capsules of 16 dimensions: a fixed
computation with no routing iterations, so it exports to ONNX as it is. A digit capsule's
length (in [0, 1)) says how present that digit is; the logits are the lengths times a fixed
scale, so the cross-entropy of the other models trains it and a temperature calibrates it.
"""

from __future__ import annotations

import torch
from torch import nn

LOGIT_SCALE = 10.0  # lengths lie in [0, 1): scaled so that softmax can become confident
_EPS = 1e-7


def squash(s: torch.Tensor) -> torch.Tensor:
    """Efficient-CapsNet's squash along the last axis: length 1 - 1/e^|s|, direction kept."""
    norm = torch.sqrt((s * s).sum(dim=-1, keepdim=True) + _EPS)
    return (1 - 1 / torch.exp(norm)) * s / norm


class _ConvBn(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride=stride, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class CapsNet(nn.Module):
    """About 0.16 M parameters."""

    def __init__(self, primary: int = 16, primary_dim: int = 8, digit_dim: int = 16) -> None:
        super().__init__()
        self.primary, self.primary_dim = primary, primary_dim
        self.features = nn.Sequential(
            _ConvBn(1, 32, 5),  # (B, 32, 24, 24)
            _ConvBn(32, 64, 3),  # (B, 64, 22, 22)
            _ConvBn(64, 64, 3),  # (B, 64, 20, 20)
            _ConvBn(64, 128, 3, stride=2),  # (B, 128, 9, 9)
        )
        # Depthwise 9x9: each of the 128 maps becomes one number; 16 capsules x 8 dimensions.
        self.to_primary = nn.Conv2d(128, primary * primary_dim, 9, groups=128)
        # One map from each primary capsule to each digit capsule.
        self.weights = nn.Parameter(torch.randn(primary, 10, digit_dim, primary_dim) * 0.05)
        self.prior = nn.Parameter(torch.zeros(1, primary, 10))
        self.scale = digit_dim**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.to_primary(self.features(x)).reshape(-1, self.primary, self.primary_dim)
        u = squash(u)  # (B, 16, 8)
        # Votes of each primary capsule for each digit capsule: (B, 16, 10, 16).
        votes = torch.einsum("njdp,bnp->bnjd", self.weights, u)
        # Self-attention routing: how much each primary capsule agrees with the others' votes.
        agreement = torch.einsum("bnjd,bmjd->bjnm", votes, votes) * self.scale  # (B, 10, 16, 16)
        coupling = torch.softmax(agreement.sum(dim=-1).transpose(1, 2), dim=-1)  # (B, 16, 10)
        s = ((coupling + self.prior).unsqueeze(-1) * votes).sum(dim=1)  # (B, 10, 16)
        lengths = torch.sqrt((squash(s) ** 2).sum(dim=-1) + _EPS)  # (B, 10)
        return lengths * LOGIT_SCALE
