"""GENEX's torch network: residual generator and critic with adversarial and classifier heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DegenerateAttention(nn.Module):
    """The original's "GeneExpressionAttention": attention over a length-1 sequence.

    softmax over one key is 1, so the output is V(x): W_Q and W_K are dead weights (kept so the
    parameter count matches the original; reported in training_info).
    """

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(n_in, n_out), nn.Linear(n_in, n_out), nn.Linear(n_in, n_out)

    def forward(self, x):
        q, k, v = self.query(x)[:, None], self.key(x)[:, None], self.value(x)[:, None]
        weights = torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)
        return (weights @ v)[:, 0]


def _first_layer(kind: str, n_in: int, n_out: int) -> nn.Module:
    return DegenerateAttention(n_in, n_out) if kind == "degenerate" else nn.Linear(n_in, n_out)


def _block(layer: nn.Module, n_out: int, dropout: float, activation: nn.Module, norm: str) -> list[nn.Module]:
    norms = {"batch": nn.BatchNorm1d(n_out), "layer": nn.LayerNorm(n_out)}
    return [layer, norms[norm], nn.Dropout(dropout), activation]


class GENEXModule(nn.Module):
    """Generator (encoder -> deterministic latent -> residual decoder) and critic with heads.

    ``n_conditions`` covariate levels get embeddings plus one extra row: the learned null token
    (corrected mode); faithful mode replaces the embedding by zeros at inference instead.
    """

    def __init__(
        self,
        n_genes: int,
        n_conditions: int,
        head_sizes: dict[str, int],
        hidden: tuple[int, int],
        latent_dim: int,
        embed_dim: int,
        dropout: float,
        attention_layer: str,
        faithful_critic: bool,
        source_embedding: bool,
        projection: bool,
        multiplicative: bool = False,
    ):
        super().__init__()
        self.multiplicative = multiplicative
        h1, h2 = hidden
        self.null_index = n_conditions
        self.embedding = nn.Embedding(n_conditions + 1, embed_dim)
        # Sources include the null token: the cycle maps a corrected (batch-free) cell back.
        self.source_embedding = nn.Embedding(n_conditions + 1, embed_dim) if source_embedding else None
        n_in = n_genes + embed_dim * (2 if source_embedding else 1)
        self.encoder = nn.Sequential(
            *_block(_first_layer(attention_layer, n_in, h1), h1, dropout, nn.ReLU(), "batch"),
            *_block(nn.Linear(h1, h2), h2, dropout, nn.ReLU(), "batch"),
            nn.Linear(h2, latent_dim),
        )
        self.decoder = nn.Sequential(
            *_block(nn.Linear(latent_dim, h2), h2, dropout, nn.ReLU(), "batch"),
            *_block(nn.Linear(h2, h1), h1, dropout, nn.ReLU(), "batch"),
            nn.Linear(h1, n_genes),
        )
        # WGAN-GP's penalty is per sample, which batch norm breaks: the corrected critic uses layer norm.
        norm = "batch" if faithful_critic else "layer"
        self.critic_body = nn.Sequential(
            *_block(_first_layer(attention_layer, n_genes, h1), h1, dropout, nn.LeakyReLU(0.2), norm),
            *_block(nn.Linear(h1, h2), h2, dropout, nn.LeakyReLU(0.2), norm),
            *_block(nn.Linear(h2, latent_dim), latent_dim, 0.0, nn.LeakyReLU(0.2), norm),
        )
        self.adversarial = nn.Linear(latent_dim, 1)
        self.projection = nn.Embedding(n_conditions + 1, latent_dim) if projection else None
        self.heads = nn.ModuleDict({name: nn.Linear(latent_dim, size) for name, size in head_sizes.items()})
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, a=0.2)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm1d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)
        # Start as the identity map: the residual decoder's last layer begins at zero.
        nn.init.zeros_(self.decoder[-1].weight)

    def generator_parameters(self) -> list[nn.Parameter]:
        source = list(self.source_embedding.parameters()) if self.source_embedding is not None else []
        return [*self.embedding.parameters(), *source, *self.encoder.parameters(), *self.decoder.parameters()]

    def critic_parameters(self) -> list[nn.Parameter]:
        projection = list(self.projection.parameters()) if self.projection is not None else []
        return [*self.critic_body.parameters(), *self.adversarial.parameters(), *projection, *self.heads.parameters()]

    def latent(self, x, target, source=None, zero_token: bool = False):
        embedded = self.embedding(target)
        if zero_token:
            embedded = torch.zeros_like(embedded)
        parts = [x, embedded]
        if self.source_embedding is not None:
            parts.append(self.source_embedding(source))
        return self.encoder(torch.cat(parts, dim=1))

    def transform(self, x, target, source=None, zero_token: bool = False):
        """T(x, t) = relu(x + G(x, e(t)[, e(source)])), or log1p(expm1(x) * exp(G)) (multiplicative)."""
        residual = self.decoder(self.latent(x, target, source, zero_token))
        if self.multiplicative:
            return torch.log1p(torch.expm1(x.float()) * torch.exp(residual.float().clamp(-10, 10))).to(x.dtype)
        return F.relu(x + residual)

    def critic(self, x, condition=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Adversarial score per cell and the logits of every classifier head.

        With a projection critic and a ``condition`` (level index, or the null token), the score of
        the pair (x, c) adds <projection(c), features(x)> (Miyato & Koyama 2018).
        """
        features = self.critic_body(x)
        score = self.adversarial(features)[:, 0]
        if self.projection is not None and condition is not None:
            score = score + (self.projection(condition) * features).sum(dim=1)
        return score, {name: head(features) for name, head in self.heads.items()}
