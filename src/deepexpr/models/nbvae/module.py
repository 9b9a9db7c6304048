"""NB-VAE's torch network and its negative-binomial likelihood."""

from __future__ import annotations

import torch
from torch import nn


def nb_log_prob(
    counts: torch.Tensor, log_mean: torch.Tensor, log_theta: torch.Tensor, lgamma_counts_1: torch.Tensor
) -> torch.Tensor:
    """Elementwise NB log-likelihood with mean exp(log_mean) and inverse dispersion exp(log_theta).

    The density of torch's ``NegativeBinomial(total_count=theta, logits=log_mean - log_theta)``
    used by the original, written in log space so tiny means stay finite;
    ``lgamma(counts + 1)`` is passed in because it never changes during training.
    """
    theta = log_theta.exp()
    log_theta_plus_mean = torch.logaddexp(log_theta, log_mean)
    return (
        torch.lgamma(counts + theta)
        - torch.lgamma(theta)
        - lgamma_counts_1
        + theta * (log_theta - log_theta_plus_mean)
        + counts * (log_mean - log_theta_plus_mean)
    )


class NBVAEModule(nn.Module):
    """Encoder Linear(G->hidden)+ReLU -> (mean, log variance) of a K-dim Gaussian posterior;
    decoder z -> Linear(K->hidden)+ReLU -> Linear(hidden->G) = log mean per gene on the
    size-normalised scale (library offsets are added by the caller, never learned).

    ``log_theta`` is a learned gene-wise parameter for ``dispersion="gene"`` and a fixed
    buffer otherwise (one global value, or one value per gene from DESeq2).
    """

    def __init__(self, n_genes: int, latent_dim: int, hidden: int, dispersion: str, log_theta: torch.Tensor):
        super().__init__()
        # Subtracted from the encoder input (zeros unless the model centres its input).
        self.register_buffer("input_shift", torch.zeros(n_genes))
        self.encoder = nn.Sequential(nn.Linear(n_genes, hidden), nn.ReLU())
        self.mean_head = nn.Linear(hidden, latent_dim)
        self.logvar_head = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_genes))
        if dispersion == "gene":
            self.log_theta = nn.Parameter(log_theta.clone())
        else:
            self.register_buffer("log_theta", log_theta.clone())

    def encode(self, encoder_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(encoder_input - self.input_shift)
        return self.mean_head(hidden), self.logvar_head(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @staticmethod
    def sample(mean: torch.Tensor, logvar: torch.Tensor, n: int | None = None) -> torch.Tensor:
        """Reparameterised draw(s) from N(mean, exp(logvar)); ``n`` adds a leading draw axis."""
        shape = mean.shape if n is None else (n, *mean.shape)
        return mean + torch.randn(shape, device=mean.device) * (0.5 * logvar).exp()
