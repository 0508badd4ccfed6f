"""A small Vision Transformer for 28x28 digits (Dosovitskiy et al. 2021, scaled down).

Each 4x4 patch of the image becomes one of 49 tokens; a class token and learned positions are
added, and pre-norm transformer blocks mix them; the class token's final state gives the 10
logits. Attention is written out with plain layers so that the ONNX export is a graph of MatMul
and Softmax that any runtime reads.

The patches are embedded by a small convolutional stem (two stride-2 3x3 convolutions, then a
1x1 projection) rather than one linear 4x4 map: Xiao et al. 2021, "Early convolutions help
transformers see better", found that such a stem makes ViTs train faster and less fussily at the
same size, which is what an hour on two cores needs. All mixing between patches is still done
by attention.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGE_PX = 28


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape  # (B, tokens, dim)
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, heads, tokens, head_dim)
        weights = torch.softmax(q @ k.transpose(-2, -1) * self.head_dim**-0.5, dim=-1)
        mixed = (self.dropout(weights) @ v).transpose(1, 2).reshape(b, n, d)
        return self.out(mixed)


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = _Attention(dim, heads, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


PATCH_PX = 4  # each token stands for a 4x4 patch: 7x7 = 49 tokens


def _stem(dim: int) -> nn.Sequential:
    """Image (B, 1, 28, 28) -> one embedding per 4x4 patch (B, dim, 7, 7)."""
    width = dim // 2
    return nn.Sequential(
        nn.Conv2d(1, width // 2, kernel_size=3, stride=2, padding=1, bias=False),  # 14x14
        nn.BatchNorm2d(width // 2),
        nn.ReLU(),
        nn.Conv2d(width // 2, width, kernel_size=3, stride=2, padding=1, bias=False),  # 7x7
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, dim, kernel_size=1),  # one token per 4x4 patch
    )


class ViT(nn.Module):
    """Patch 4, width 64, 4 blocks of 4 heads: about 0.14 M parameters."""

    def __init__(
        self,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_dim: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        tokens = (IMAGE_PX // PATCH_PX) ** 2
        self.embed = _stem(dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*(_Block(dim, heads, mlp_dim, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.embed(x).flatten(2).transpose(1, 2)  # (B, 49, dim)
        cls = self.cls.expand(x.shape[0], -1, -1)
        tokens = torch.cat([cls, patches], dim=1) + self.position  # (B, 50, dim)
        return self.head(self.norm(self.blocks(tokens))[:, 0])  # (B, 10)
