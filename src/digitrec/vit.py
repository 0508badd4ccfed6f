"""A small Vision Transformer for 28x28 digits (Dosovitskiy et al. 2021, scaled down).

Patches of 4x4 pixels (49 tokens) are embedded, a class token and learned positions are added,
and pre-norm transformer blocks mix them; the class token's final state gives the 10 logits.
Attention is written out with plain layers so that the ONNX export is a graph of MatMul and
Softmax that any runtime reads.
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


class ViT(nn.Module):
    """Patch 4, width 64, 6 blocks of 4 heads: about 0.2 M parameters."""

    def __init__(
        self,
        patch: int = 4,
        dim: int = 64,
        depth: int = 6,
        heads: int = 4,
        mlp_dim: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        tokens = (IMAGE_PX // patch) ** 2
        self.embed = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)  # a linear patch map
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
