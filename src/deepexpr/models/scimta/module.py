"""scIMTA's torch network: GCN encoder with skip connections, graph, expression and gene decoders,
DEC clustering layer, and the count likelihoods.

Graph convolutions take the neighbour aggregate as an argument (``A_hat @ H`` computed by the
caller), so the same layers run full-batch on a dense matrix (faithful) and on sampled
neighbourhoods of a mini-batch (corrected).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class GraphConvSkip(nn.Module):
    """H' = act(A_hat H W + H W_skip + b), spektral's GraphConvSkip used by the original."""

    def __init__(self, n_in: int, n_out: int, activation: bool):
        super().__init__()
        self.weight = nn.Linear(n_in, n_out, bias=False)
        self.skip = nn.Linear(n_in, n_out)
        self.activation = activation

    def forward(self, aggregated: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        out = self.weight(aggregated) + self.skip(own)
        return F.relu(out) if self.activation else out


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


def nb_log_prob(counts, mean, theta, eps: float = 1e-8):
    """Elementwise NB log-likelihood (mean, inverse dispersion theta)."""
    log_theta_mean = torch.log(theta + mean + eps)
    return (
        torch.lgamma(counts + theta)
        - torch.lgamma(theta)
        - torch.lgamma(counts + 1)
        + theta * (torch.log(theta + eps) - log_theta_mean)
        + counts * (torch.log(mean + eps) - log_theta_mean)
    )


def zinb_log_prob(counts, mean, theta, dropout_logits, eps: float = 1e-8):
    """Zero-inflated NB: a zero is a dropout (probability sigmoid(logit)) or an NB zero."""
    nb = nb_log_prob(counts, mean, theta, eps)
    log_pi = F.logsigmoid(dropout_logits)
    log_not_pi = F.logsigmoid(-dropout_logits)
    zero = torch.logaddexp(log_pi, log_not_pi + nb)
    return torch.where(counts < 0.5, zero, log_not_pi + nb)


class SCIMTAModule(nn.Module):
    """Encoder X -> Dropout -> GraphConvSkip(hidden, ReLU) -> GraphConvSkip(latent) = z.

    Graph decoder: h = Dense(graph_hidden)(z), edge logit h_i W h_j. Expression decoder:
    z (with the cell's one-hot batch when ``n_batches`` > 0) -> decoder_hidden (ReLU) -> gene_dim, then logits against the gene embeddings E (genes x
    gene_dim) plus a gene bias, softmax over genes = expression proportions (the original ends in
    Dense(G, softmax); factorising that last layer gives each gene the embedding the gene graph
    is reconstructed from). Gene-wise NB inverse dispersion, optional zero-inflation head, and the
    DEC centres (a parameter whose gradient is switched off when centres are not learned, C4).
    """

    def __init__(
        self,
        n_inputs: int,
        n_genes: int,
        hidden: int,
        latent_dim: int,
        graph_hidden: int,
        decoder_hidden: list[int],
        gene_dim: int,
        dropout: float,
        zero_inflated: bool,
        n_batches: int = 0,
    ):
        super().__init__()
        self.n_batches = n_batches
        self.dropout = nn.Dropout(dropout)
        self.conv1 = GraphConvSkip(n_inputs, hidden, activation=True)
        self.conv2 = GraphConvSkip(hidden, latent_dim, activation=False)
        self.graph_head = nn.Linear(latent_dim, graph_hidden)
        self.graph_weight = nn.Parameter(torch.eye(graph_hidden))
        self.decoder = mlp([latent_dim + n_batches, *decoder_hidden]) if decoder_hidden else nn.Identity()
        last = decoder_hidden[-1] if decoder_hidden else latent_dim + n_batches
        self.to_gene_space = nn.Linear(last, gene_dim)
        self.gene_embedding = nn.Parameter(torch.randn(n_genes, gene_dim) / gene_dim**0.5)
        self.gene_bias = nn.Parameter(torch.zeros(n_genes))
        self.log_theta = nn.Parameter(torch.zeros(n_genes))
        self.dropout_head = nn.Linear(last, n_genes) if zero_inflated else None
        self.centres = nn.Parameter(torch.zeros(0, latent_dim))

    def set_centres(self, centres: torch.Tensor, learn: bool) -> None:
        self.centres = nn.Parameter(centres.clone().float(), requires_grad=learn)

    # ------------------------------------------------------------- encoder
    def first_layer(self, aggregated_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Layer 1 from A_hat X and X (the caller applies ``dropout`` to X first, as the original)."""
        return self.conv1(aggregated_x, x)

    def second_layer(self, aggregated_h: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.conv2(aggregated_h, h)

    # ------------------------------------------------------------- decoders
    def edge_logits(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Logits of edges (a_i, b_i) (pairwise rows)."""
        h_a, h_b = self.graph_head(z_a), self.graph_head(z_b)
        return ((h_a @ self.graph_weight) * h_b).sum(dim=1)

    def dense_graph(self, z: torch.Tensor) -> torch.Tensor:
        """The original's sigmoid(h W h^T) over every pair (faithful only)."""
        h = self.graph_head(z)
        return torch.sigmoid(h @ self.graph_weight @ h.T)

    def expression(self, z: torch.Tensor, batch: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(proportions over genes, zero-inflation logits or None); ``batch`` = the cells' batch
        indices when the decoder is batch-conditioned (``n_batches`` > 0)."""
        if self.n_batches:
            z = torch.cat([z, F.one_hot(batch, self.n_batches).to(z.dtype)], dim=1)
        hidden = self.decoder(z)
        logits = self.to_gene_space(hidden) @ self.gene_embedding.T + self.gene_bias
        dropout_logits = self.dropout_head(hidden) if self.dropout_head is not None else None
        return torch.softmax(logits, dim=1), dropout_logits

    def gene_edge_logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (self.gene_embedding[a] * self.gene_embedding[b]).sum(dim=1)

    # ------------------------------------------------------------- clustering
    def soft_assign(self, z: torch.Tensor) -> torch.Tensor:
        """Student-t q_ij proportional to (1 + |z_i - mu_j|^2)^-1."""
        q = 1.0 / (1.0 + torch.cdist(z, self.centres).pow(2))
        return q / q.sum(dim=1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """DEC's sharpened target p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'), f_j = sum_i q_ij."""
    weight = q.pow(2) / q.sum(dim=0)
    return weight / weight.sum(dim=1, keepdim=True)
