"""siVAE's torch network: a cell VAE and a feature (gene) VAE whose decoders meet in the output layer.

The cell decoder maps z_c to y_c and the feature decoder maps v_g to w_g (both of size
``hidden[0]``); the expression of gene g in cell c is y_c . w_g + b_g. Stage 1 of training
learns the cell VAE with a free output matrix W (genes x hidden[0]) in place of the w_g; stage
2 teaches the feature VAE to produce those W rows from each gene's input; stage 3 trains both
through y_c . w_g.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """input -> hidden (ReLU) -> (mean, log variance) of the embedding."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], latent_dim: int):
        super().__init__()
        self.body = nn.Sequential(_mlp([n_in, *hidden]), nn.ReLU())
        self.mean = nn.Linear(hidden[-1], latent_dim)
        self.logvar = nn.Linear(hidden[-1], latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        # the original's sd = softplus + 1e-8, kept as a log variance for the KL
        sd = nn.functional.softplus(self.logvar(h)) + 1e-8
        return self.mean(h), 2 * torch.log(sd)


class Decoder(nn.Module):
    """embedding -> reversed hidden layers (ReLU) -> a linear last layer of size hidden[0].

    ``layers()`` returns every layer's activation, which feature awareness compares between
    the cell and the feature side.
    """

    def __init__(self, hidden: tuple[int, ...], latent_dim: int):
        super().__init__()
        sizes = [latent_dim, *reversed(hidden)]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def layers(self, z: torch.Tensor) -> list[torch.Tensor]:
        out, h = [], z
        for i, linear in enumerate(self.linears):
            h = linear(h)
            if i < len(self.linears) - 1:
                h = torch.relu(h)
            out.append(h)
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)[-1]


class SIVAEModule(nn.Module):
    """Both VAEs, the stage-1 output matrix, per-gene biases and the likelihood's parameters."""

    def __init__(self, n_genes: int, feature_dim: int, hidden: tuple[int, ...], latent_dim: int, likelihood: str):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        self.cell_encoder = Encoder(n_genes, hidden, latent_dim)
        self.cell_decoder = Decoder(hidden, latent_dim)
        self.feature_encoder = Encoder(feature_dim, hidden, latent_dim)
        self.feature_decoder = Decoder(hidden, latent_dim)
        # Stage 1's output layer: row g is the target w_g of the feature VAE in stage 2.
        self.output_weight = nn.Parameter(torch.empty(n_genes, hidden[0]))
        nn.init.kaiming_uniform_(self.output_weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(n_genes))
        # interpretability term's own linear decoder bias: x ~ z v^T + b_zv
        self.zv_bias = nn.Parameter(torch.zeros(n_genes))
        self.likelihood = likelihood
        if likelihood == "gaussian":
            self.cell_log_sd = nn.Linear(hidden[0], 1)  # one sd per cell, predicted from y_c (the original)
        else:
            self.log_theta = nn.Parameter(torch.zeros(n_genes))

    def cell_parameters(self) -> list[nn.Parameter]:
        modules = [self.cell_encoder, self.cell_decoder]
        extra = [self.output_weight, self.bias, self.zv_bias]
        extra += list(self.cell_log_sd.parameters()) if self.likelihood == "gaussian" else [self.log_theta]
        return [p for m in modules for p in m.parameters()] + extra

    def feature_parameters(self) -> list[nn.Parameter]:
        return [*self.feature_encoder.parameters(), *self.feature_decoder.parameters()]

    @staticmethod
    def sample(mean: torch.Tensor, logvar: torch.Tensor, stochastic: bool) -> torch.Tensor:
        return mean + torch.randn_like(mean) * (0.5 * logvar).exp() if stochastic else mean


def kl_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per row."""
    return -0.5 * (1 + logvar - mean.pow(2) - logvar.exp()).sum(dim=-1)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_sd: torch.Tensor) -> torch.Tensor:
    """-log N(x | mean, sd^2) elementwise; ``log_sd`` broadcasts (one per cell)."""
    return 0.5 * ((x - mean) / log_sd.exp()) ** 2 + log_sd + 0.5 * math.log(2 * math.pi)


def nb_nll(counts: torch.Tensor, log_mean: torch.Tensor, log_theta: torch.Tensor) -> torch.Tensor:
    """-log NB(counts | mean, theta) elementwise (mean/dispersion parametrisation)."""
    theta = log_theta.exp()
    log_theta_mu = torch.logaddexp(log_theta, log_mean)
    log_p = (
        theta * (log_theta - log_theta_mu)
        + counts * (log_mean - log_theta_mu)
        + torch.lgamma(counts + theta)
        - torch.lgamma(theta)
        - torch.lgamma(counts + 1)
    )
    return -log_p
