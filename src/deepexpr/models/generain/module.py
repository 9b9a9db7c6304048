"""GeneRAIN's torch network: one transformer encoder stack, three ways to read a sample's genes.

- ``gpt``: gene tokens in descending expression order, causal attention, next-gene prediction
  with the output layer tied to the gene embedding (GeneRAIN-vec = that embedding).
- ``bert_genes``: the same gene sequence, bidirectional, masked gene identity predicted (tied head).
- ``bert_expression``: tokens are within-sample expression levels (0 = [MASK], 1..n_levels) and
  each position adds the embedding of *which gene* it is (the original passes the gene index as
  BERT's position id); masked levels are predicted, and GeneRAIN-vec = the gene-identity embedding.

Gene token ids: 0 = padding (also the original's mask in ``bert_genes``), 1 = dedicated [MASK],
2.. = genes. Attention is :func:`torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PAD, MASK, FIRST_GENE = 0, 1, 2


class SelfAttention(nn.Module):
    """Multi-head self-attention on SDPA (fused kernels where the device has them)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, width // self.n_heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(attended.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    """Transformer block: pre-norm (GPT-2) or post-norm (BERT), GELU feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, eps: float, norm_first: bool):
        super().__init__()
        self.norm_first = norm_first
        self.attention = SelfAttention(d_model, n_heads, dropout)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.norm1, self.norm2 = nn.LayerNorm(d_model, eps=eps), nn.LayerNorm(d_model, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self.drop(self.attention(self.norm1(x), mask))
            return x + self.drop(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attention(x, mask)))
        return self.norm2(x + self.drop(self.feed_forward(x)))


class GeneRAINModule(nn.Module):
    """Embeddings, ``n_layers`` blocks and the variant's output head; see the module docstring."""

    def __init__(
        self,
        variant: str,
        n_genes: int,
        d_model: int,
        n_layers: int,
        n_heads: int,
        d_ff: int,
        dropout: float,
        layer_norm_eps: float,
        seq_len: int,
        n_levels: int,
    ):
        super().__init__()
        self.variant = variant
        self.gene_embedding = nn.Embedding(n_genes + FIRST_GENE, d_model)
        if variant == "bert_expression":
            self.level_embedding = nn.Embedding(n_levels + 1, d_model)
            # Per-gene centre and scale of the training bins (for gene-centred levels), saved with the weights.
            self.register_buffer("gene_bin_mean", torch.zeros(n_genes))
            self.register_buffer("gene_bin_sd", torch.ones(n_genes))
        else:
            self.position_embedding = nn.Embedding(seq_len, d_model)
        gpt = variant == "gpt"
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, dropout, layer_norm_eps, norm_first=gpt) for _ in range(n_layers)
        )
        # GPT-2 normalises after the last pre-norm block; BERT's post-norm blocks end normalised.
        self.final_norm = nn.LayerNorm(d_model, eps=layer_norm_eps) if gpt else nn.Identity()
        self.level_head = nn.Linear(d_model, n_levels + 1) if variant == "bert_expression" else None
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor, genes: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Logits (batch x length x classes).

        ``tokens`` are gene ids (gpt, bert_genes) or levels (bert_expression); ``genes`` the gene
        ids of the positions (used by bert_expression); ``valid`` marks positions other positions
        may attend to (non-zero expression).
        """
        length = tokens.shape[1]
        if self.variant == "bert_expression":
            x = self.level_embedding(tokens) + self.gene_embedding(genes)
        else:
            x = self.gene_embedding(tokens) + self.position_embedding.weight[:length]
        mask = valid[:, None, None, :]
        if self.variant == "gpt":
            mask = mask & torch.ones(length, length, dtype=torch.bool, device=tokens.device).tril()
        # A query needs one visible key, else SDPA returns NaN: let each position see itself.
        mask = mask | torch.eye(length, dtype=torch.bool, device=tokens.device)
        for block in self.blocks:
            x = block(x, mask)
        x = self.final_norm(x)
        if self.level_head is not None:
            return self.level_head(x)
        return x @ self.gene_embedding.weight.T  # tied output layer

    def gene_vectors(self) -> torch.Tensor:
        """GeneRAIN-vec: the gene rows of the gene embedding (special tokens dropped)."""
        return self.gene_embedding.weight[FIRST_GENE:].detach()
