"""scIMTA: graph-autoencoder clustering (the released scMGCA code) with gene communities.

Re-implements ShengPengYu/scIMTA = Philyzh8/scMGCA (docs/models/scimta.md) in two modes:
``faithful`` keeps the original's losses (dense graph, softmax cross-entropy on z-scored data,
reversed KL, frozen centres, stale labels, K from the labels); ``corrected`` fixes C1-C7 (sparse
graph, NB/ZINB with size factors, KL(P||Q), learned centres, current labels, K without labels,
mini-batches by neighbourhood sampling) and adds the gene graph of the paper's extended mode.

Layout follows scvi-tools: :class:`~deepexpr.models.scimta.module.SCIMTAModule` is the network,
:class:`SCIMTA` the user-facing model (``setup_anndata`` -> ``SCIMTA(adata, mode, seed, **settings)``
-> ``train`` -> ``get_latent`` / ``predict`` / ``gene_communities`` -> ``save``/``load``).
"""

from __future__ import annotations

import logging
import os
import time

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from deepexpr.errors import InputError
from deepexpr.models._base import BaseModel, ProgressReporter, resolve_device, seed_everything
from deepexpr.models.scimta import clustering
from deepexpr.models.scimta.graph import (
    check_graph,
    knn_graph,
    normalized_adjacency,
    padded_neighbours,
    random_surf_ppmi,
)
from deepexpr.models.scimta.module import SCIMTAModule, nb_log_prob, target_distribution, zinb_log_prob
from deepexpr.models.scimta.settings import MODE_DEFAULTS, SWITCHES

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "phase", "loss", "graph", "expression", "gene", "cluster", "changed"]
#: The original's limit of its dense full-batch mode.
DENSE_LIMIT = 25_000
#: Cells embedded at a time at inference (bounded memory).
INFERENCE_CHUNK = 4096


class SCIMTA(BaseModel):
    """User-facing scIMTA for one single-cell dataset and one seed.

    ``settings`` are the keys of :data:`~deepexpr.models.scimta.settings.MODE_DEFAULTS`; None
    takes the mode's default. ``graph`` (extra setting) is a precomputed symmetric cell graph
    (cells x cells) used instead of the kNN graph on PCA.
    """

    NAME = "scimta"
    SWITCHES = SWITCHES
    MODE_DEFAULTS = MODE_DEFAULTS
    SETUP_KEY = "scimta_setup"
    HISTORY_COLUMNS = HISTORY_COLUMNS

    def __init__(self, adata: ad.AnnData, mode: str = "corrected", seed: int = 0, cell_graph: sp.spmatrix | None = None, **settings):
        self.config = {"mode": mode, "seed": seed, **self.resolve_settings(mode, settings)}
        cfg = self.config
        self.adata = adata
        self.setup = self.registration(adata)
        self.genes = adata.var_names.copy()
        self.counts, self.library = _registered_counts(adata, self.setup["layer"])
        n_cells = self.counts.shape[0]
        dense = cfg["graph"] == "dense"
        if dense and n_cells > DENSE_LIMIT:
            raise InputError(
                "scimta.graph",
                f"'dense' (faithful) builds N x N matrices and is limited to {DENSE_LIMIT} cells as the "
                f"original; this data has {n_cells}: use graph='sparse'",
            )
        self.log_norm = _log_normalised(self.counts, self.library)
        self.pca = _pca(self.log_norm, cfg["n_pcs"], seed)
        if cell_graph is None:
            cell_graph = knn_graph(self.pca, cfg["k"], cfg["metric"], seed, "scimta PCA embedding", self.graph_batches())
        self.cell_graph = check_graph(cell_graph, source="scimta cell graph")
        self.target = random_surf_ppmi(self.cell_graph, cfg["surf_steps"], cfg["restart"], dense=dense)
        self.propagation = normalized_adjacency(self.target)
        self.n_clusters = self._number_of_clusters()
        self.batch_codes, n_batches = self._decoder_batches()
        self.gene_target = self._gene_graph() if cfg["gene_graph"] else None
        self.history = pd.DataFrame(columns=HISTORY_COLUMNS)
        self.training_info: dict = {}
        self.device = torch.device("cpu")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = SCIMTAModule(
                len(self.genes) if cfg["encoder_input"] == "zscored_hvg" else self.pca.shape[1],
                len(self.genes),
                cfg["hidden"],
                cfg["latent_dim"],
                cfg["graph_hidden"],
                list(cfg["decoder_hidden"]),
                cfg["gene_dim"],
                cfg["dropout"],
                zero_inflated=cfg["recon_loss"] == "zinb",
                n_batches=n_batches,
            )
            self.module.set_centres(torch.zeros(self.n_clusters, cfg["latent_dim"]), cfg["learn_centres"])

    @staticmethod
    def setup_anndata(adata: ad.AnnData, layer: str = "counts", labels_key: str | None = None, batch_key: str | None = None) -> None:
        """Register the raw-count layer, the label column (faithful K from labels) and the batch
        column (batch-balanced cell graph, ``batch_graph="balanced"``)."""
        _registered_counts(adata, layer)
        for key in (labels_key, batch_key):
            if key is not None and key not in adata.obs.columns:
                raise InputError(f"obs[{key!r}]", f"column not found; obs columns are {list(adata.obs.columns)}")
        SCIMTA._store_registration(adata, {"layer": layer, "labels_key": labels_key, "batch_key": batch_key})

    def _decoder_batches(self) -> tuple[np.ndarray | None, int]:
        """(batch index per cell, number of batches) for a batch-conditioned decoder, else (None, 0)."""
        key = self.setup.get("batch_key")
        if key is None or not self.config["decoder_batch"]:
            return None, 0
        codes, names = pd.factorize(self.adata.obs[key].astype(str), sort=True)
        return (codes.astype(np.int64), len(names)) if len(names) > 1 else (None, 0)

    def graph_batches(self) -> np.ndarray | None:
        """Batch of each cell when the cell graph is batch-balanced (else None)."""
        key = self.setup.get("batch_key")
        if key is None or self.config["batch_graph"] != "balanced":
            return None
        return self.adata.obs[key].astype(str).to_numpy()

    @classmethod
    def _setup_from_saved(cls, adata, setup: dict) -> None:
        if not cls.is_registered(adata):
            cls.setup_anndata(adata, **setup)

    def fingerprint_parts(self):
        yield np.asarray(self.genes, dtype=str)
        yield self.counts.data
        yield self.counts.indices
        yield self.counts.indptr

    # ------------------------------------------------------------ preparation
    def _number_of_clusters(self) -> int:
        cfg = self.config
        if cfg["n_clusters"] is not None:
            return int(cfg["n_clusters"])
        if cfg["n_clusters_from"] == "labels":
            key = self.setup.get("labels_key")
            if key is None:
                raise InputError("scimta.n_clusters_from", "'labels' needs setup_anndata(labels_key=...) or n_clusters")
            return int(self.adata.obs[key].nunique())
        scan = clustering.resolution_scan(self.pca, self.cell_graph, cfg["leiden_resolutions"], cfg["seed"])
        chosen = clustering.label_free_choice(scan)
        self.leiden_labels = np.asarray(chosen["labels"], dtype=np.int64)
        self.leiden_scan = [{k: v for k, v in row.items() if k != "labels"} for row in scan]
        logger.info("K = %d from Leiden on the PCA kNN graph at resolution %.2f (best silhouette)", chosen["n_clusters"], chosen["resolution"])
        return max(2, chosen["n_clusters"])

    def _gene_graph(self) -> sp.csr_matrix:
        """PPMI target of a kNN graph over genes on their Pearson correlation across cells."""
        gram, mean = _gram(self.log_norm)
        return gene_graph_from_gram(gram, mean, self.config)

    # ------------------------------------------------------------ batches
    def _encoder_input(self, rows: np.ndarray) -> torch.Tensor:
        if self.config["encoder_input"] == "zscored_hvg":
            values = self._zscored[rows]
        else:
            values = self.pca[rows] / self._pca_scale
        return torch.as_tensor(values, dtype=torch.float32, device=self.device)

    def _sample(self, nodes: torch.Tensor, fanout: int | None, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled neighbours (incl. self) of ``nodes`` and weights rescaled to the full row's sum."""
        index, weight = self._neighbour_index[nodes], self._neighbour_weight[nodes]
        if fanout is not None and fanout < index.shape[1]:
            score = torch.rand(weight.shape, generator=generator, device=self.device).masked_fill(weight == 0, -1.0)
            pick = score.topk(fanout, dim=1).indices
            full = weight.sum(dim=1, keepdim=True)
            index, weight = index.gather(1, pick), weight.gather(1, pick)
            weight = weight * full / weight.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return index, weight

    def _embed(self, seeds: torch.Tensor, fanout: int | None, generator=None) -> torch.Tensor:
        """z of ``seeds`` from their sampled 2-hop neighbourhood (memory ~ len(seeds) x fanout^2)."""
        index1, weight1 = self._sample(seeds, fanout, generator)
        layer1_nodes, inverse1 = torch.unique(torch.cat([seeds, index1.ravel()]), return_inverse=True)
        index2, weight2 = self._sample(layer1_nodes, fanout, generator)
        input_nodes, inverse2 = torch.unique(torch.cat([layer1_nodes, index2.ravel()]), return_inverse=True)
        x = self.module.dropout(self._encoder_input(input_nodes.cpu().numpy()))
        own1 = inverse2[: len(layer1_nodes)]
        aggregated_x = _aggregate(inverse2[len(layer1_nodes):].view(index2.shape), weight2, x)
        h = self.module.first_layer(aggregated_x, x[own1])
        own0 = inverse1[: len(seeds)]
        aggregated_h = _aggregate(inverse1[len(seeds):].view(index1.shape), weight1, h)
        return self.module.second_layer(aggregated_h, h[own0])

    def _embed_dense(self) -> torch.Tensor:
        x = self.module.dropout(self._encoder_input(np.arange(self.counts.shape[0])))
        h = self.module.first_layer(self._dense_propagation @ x, x)
        return self.module.second_layer(self._dense_propagation @ h, h)

    @torch.no_grad()
    def _embed_all(self) -> torch.Tensor:
        was_training = self.module.training
        self.module.eval()
        if self.config["graph"] == "dense":
            z = self._embed_dense()
        else:
            cells = torch.arange(self.counts.shape[0], device=self.device)
            z = torch.cat([self._embed(cells[s : s + INFERENCE_CHUNK], None) for s in range(0, len(cells), INFERENCE_CHUNK)])
        self.module.train(was_training)
        return z

    # ------------------------------------------------------------ losses
    def _expression_loss(self, z: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        batch = None if self.batch_codes is None else torch.as_tensor(self.batch_codes[rows], device=self.device)
        proportions, dropout_logits = self.module.expression(z, batch)
        if self.config["recon_loss"] == "softmax_ce":
            target = torch.as_tensor(self._zscored[rows], dtype=torch.float32, device=self.device)
            return (-target * torch.log(proportions + 1e-12)).mean()
        counts = torch.as_tensor(self.counts[rows].toarray(), dtype=torch.float32, device=self.device)
        library = torch.as_tensor(self.library[rows], dtype=torch.float32, device=self.device)[:, None]
        mean = proportions * library
        theta = self.module.log_theta.exp()
        if dropout_logits is None:
            log_p = nb_log_prob(counts, mean, theta)
        else:
            log_p = zinb_log_prob(counts, mean, theta, dropout_logits)
        return -log_p.mean()

    def _graph_loss_sparse(self, seeds: torch.Tensor, z: torch.Tensor, partners: torch.Tensor, n_batch: int, generator) -> torch.Tensor:
        """BCE of observed edges (target = A* weight) and sampled negative pairs (target 0)."""
        positives = self.module.edge_logits(z[:n_batch], z[n_batch : 2 * n_batch])
        target = self._target_weight_of(seeds[:n_batch], partners)
        n_negative = self.config["negatives"] * n_batch
        a = torch.randint(0, len(seeds), (n_negative,), generator=generator, device=self.device)
        b = torch.randint(0, len(seeds), (n_negative,), generator=generator, device=self.device)
        negatives = self.module.edge_logits(z[a], z[b])
        logits = torch.cat([positives, negatives])
        targets = torch.cat([target, torch.zeros(n_negative, device=self.device)])
        return F.binary_cross_entropy_with_logits(logits, targets)

    def _target_weight_of(self, cells: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        hit = self._target_index[cells] == partners[:, None]
        return (self._target_weight[cells] * hit).sum(dim=1)

    def _gene_loss(self, generator) -> torch.Tensor:
        n = self._gene_index.shape[0]
        genes = torch.randint(0, n, (min(n, 512),), generator=generator, device=self.device)
        column = _valid_column(self._gene_weight[genes], generator)
        partners = self._gene_index[genes, column]
        target = self._gene_weight[genes, column]
        negatives = torch.randint(0, n, (len(genes) * self.config["negatives"],), generator=generator, device=self.device)
        anchors = genes.repeat(self.config["negatives"])
        logits = torch.cat([self.module.gene_edge_logits(genes, partners), self.module.gene_edge_logits(anchors, negatives)])
        targets = torch.cat([target, torch.zeros(len(negatives), device=self.device)])
        return F.binary_cross_entropy_with_logits(logits, targets)

    def _cluster_loss(self, z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        q = self.module.soft_assign(z)
        if self.config["dec_kl"] == "p_q":
            return (p * (torch.log(p + 1e-12) - torch.log(q + 1e-12))).sum(dim=1).mean()
        return (q * (torch.log(q + 1e-12) - torch.log(p + 1e-12))).sum(dim=1).mean()

    # ------------------------------------------------------------ training
    def _prepare_device_data(self) -> None:
        cfg = self.config
        self._pca_scale = float(self.pca[:, 0].std()) or 1.0
        if cfg["recon_loss"] == "softmax_ce" or cfg["encoder_input"] == "zscored_hvg":
            values = self.log_norm.toarray()
            sd = values.std(axis=0)
            self._zscored = (values - values.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        if cfg["graph"] == "dense":
            self._dense_propagation = torch.as_tensor(self.propagation, device=self.device)
            self._dense_target = torch.as_tensor(self.target, dtype=torch.float32, device=self.device)
            return
        index, weight = padded_neighbours(self.propagation)
        self._neighbour_index = torch.as_tensor(index, device=self.device)
        self._neighbour_weight = torch.as_tensor(weight, device=self.device)
        target_index, target_weight = padded_neighbours(self.target)
        self._target_index = torch.as_tensor(target_index, device=self.device)
        self._target_weight = torch.as_tensor(target_weight, device=self.device)
        if self.gene_target is not None:
            gene_index, gene_weight = padded_neighbours(self.gene_target)
            self._gene_index = torch.as_tensor(gene_index, device=self.device)
            self._gene_weight = torch.as_tensor(gene_weight, device=self.device)

    def _epoch(self, optimizer, phase: str, p_all: torch.Tensor | None, generator) -> dict:
        cfg = self.config
        totals = {"loss": 0.0, "graph": 0.0, "expression": 0.0, "gene": 0.0, "cluster": 0.0}
        n_cells = self.counts.shape[0]
        if cfg["graph"] == "dense":
            batches = [None]
        else:
            order = torch.randperm(n_cells, generator=generator, device=self.device)
            batches = list(order.split(int(cfg["batch_size"])))
        for batch in batches:
            if batch is None:
                z = self._embed_dense()
                rows = np.arange(n_cells)
                graph_loss = F.mse_loss(self.module.dense_graph(z), self._dense_target)
                z_cells, p = z, p_all
            else:
                partners = self._target_index[batch, _valid_column(self._target_weight[batch], generator)]
                seeds = torch.cat([batch, partners])
                z = self._embed(seeds, cfg["fanout"], generator)
                graph_loss = self._graph_loss_sparse(seeds, z, partners, len(batch), generator)
                z_cells, rows = z[: len(batch)], batch.cpu().numpy()
                p = None if p_all is None else p_all[batch]
            expression_loss = self._expression_loss(z_cells, rows)
            loss = cfg["weight_graph"] * graph_loss + cfg["weight_expression"] * expression_loss
            gene_loss = torch.zeros((), device=self.device)
            if self.gene_target is not None and cfg["weight_gene"] > 0 and batch is not None:
                gene_loss = self._gene_loss(generator)
                loss = loss + cfg["weight_gene"] * gene_loss
            cluster_loss = torch.zeros((), device=self.device)
            if phase == "cluster":
                cluster_loss = self._cluster_loss(z_cells, p)
                loss = loss + cfg["weight_cluster"] * cluster_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            share = len(rows) / n_cells
            for name, value in zip(totals, (loss, graph_loss, expression_loss, gene_loss, cluster_loss)):
                totals[name] += float(value.detach()) * share
        return totals

    def train(
        self,
        device: str = "auto",
        checkpoint_dir: str | os.PathLike | None = None,
        log_every: int = 10,
        progress_bar: bool | None = None,
    ) -> pd.DataFrame:
        """Pretrain (graph + expression [+ gene graph]), initialise centres by k-means on z, then
        train with the DEC term; returns the per-epoch history.

        The DEC target p is recomputed from the current q every ``refresh_every`` epochs; with
        ``target_refresh="current"`` the clustering stops when fewer than ``label_tol`` of the
        labels changed between refreshes and the final labels are argmax of the final q (C5);
        ``"stale"`` reports the labels of the last refresh, as the original. A checkpoint written
        after pretraining (with ``checkpoint_dir``) lets a killed run skip the pretraining.
        """
        cfg = self.config
        seed_everything(cfg["seed"])
        self.device = resolve_device(device)
        self.module.to(self.device).train()
        self._prepare_device_data()
        generator = torch.Generator(device=self.device).manual_seed(cfg["seed"])
        checkpoint = self._checkpoint_path(checkpoint_dir)
        fingerprint = self.data_fingerprint() if checkpoint is not None else ""
        total_epochs = cfg["pretrain_epochs"] + cfg["cluster_epochs"]
        started = time.perf_counter()
        rows: list[tuple] = []
        payload = self._read_checkpoint(checkpoint, fingerprint, total_epochs, self.device)
        if payload is not None:
            self.module.load_state_dict(payload["module"])
            rows = list(payload["rows"])
            generator.set_state(payload["generator"].cpu())
            logger.info("resumed after pretraining from %s", checkpoint)
        else:
            optimizer = torch.optim.Adam(self.module.parameters(), lr=cfg["lr_pretrain"])
            progress = ProgressReporter(cfg["pretrain_epochs"], "scIMTA pretrain", log_every, bar=progress_bar)
            for epoch in range(1, cfg["pretrain_epochs"] + 1):
                totals = self._epoch(optimizer, "pretrain", None, generator)
                rows.append((epoch, "pretrain", *totals.values(), np.nan))
                progress.update(epoch, **totals)
            if checkpoint is not None:
                state = {"module": self.module.state_dict(), "rows": rows, "generator": generator.get_state()}
                self._write_checkpoint(checkpoint, fingerprint, total_epochs, state)
        labels, changed = self._cluster_phase(rows, generator, log_every, progress_bar)
        self.labels = labels
        self.module.eval()
        self.history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        self.training_info = {
            "epochs": len(rows),
            "n_clusters": self.n_clusters,
            "last_label_change": changed,
            "train_seconds": time.perf_counter() - started,
            "device": str(self.device),
        }
        return self.history

    def _cluster_phase(self, rows, generator, log_every, progress_bar):
        from sklearn.cluster import KMeans

        cfg = self.config
        z = self._embed_all().cpu().numpy()
        leiden = getattr(self, "leiden_labels", None)
        if cfg["centre_init"] == "leiden" and leiden is not None and len(np.unique(leiden)) == self.n_clusters:
            # The partition K was chosen from: its clusters' mean z (no second, different clustering).
            initial = np.unique(leiden, return_inverse=True)[1]
            centres = np.stack([z[initial == c].mean(axis=0) for c in range(self.n_clusters)])
        else:
            kmeans = KMeans(self.n_clusters, n_init=10 if cfg["mode"] == "corrected" else 20, random_state=cfg["seed"]).fit(z)
            initial, centres = kmeans.labels_, kmeans.cluster_centers_
        self.module.set_centres(torch.as_tensor(centres, dtype=torch.float32, device=self.device), cfg["learn_centres"])
        optimizer = torch.optim.Adam([p for p in self.module.parameters() if p.requires_grad], lr=cfg["lr_cluster"])
        progress = ProgressReporter(cfg["cluster_epochs"], "scIMTA cluster", log_every, bar=progress_bar)
        labels, changed, p = initial.astype(np.int64), np.nan, None
        for epoch in range(1, cfg["cluster_epochs"] + 1):
            if (epoch - 1) % cfg["refresh_every"] == 0:
                with torch.no_grad():
                    q = self.module.soft_assign(self._embed_all())
                p = target_distribution(q)
                refreshed = q.argmax(dim=1).cpu().numpy()
                changed = float((refreshed != labels).mean())
                labels = refreshed
                if epoch > 1 and cfg["target_refresh"] == "current" and changed < cfg["label_tol"]:
                    logger.info("labels converged: %.4f changed between refreshes", changed)
                    break
            totals = self._epoch(optimizer, "cluster", p, generator)
            rows.append((cfg["pretrain_epochs"] + epoch, "cluster", *totals.values(), changed))
            progress.update(epoch, **totals)
        if cfg["target_refresh"] == "current":
            with torch.no_grad():
                labels = self.module.soft_assign(self._embed_all()).argmax(dim=1).cpu().numpy()
        return labels, changed

    # ------------------------------------------------------------ outputs
    def get_latent(self) -> pd.DataFrame:
        """z per cell (cells x latent_dim)."""
        z = self._ensure_device()._embed_all().cpu().numpy()
        return pd.DataFrame(z, index=self.adata.obs_names.copy(), columns=[f"z{i + 1}" for i in range(z.shape[1])])

    def predict(self) -> pd.Series:
        """Cluster of each cell: argmax of the current q (corrected) or the labels of the last
        target refresh (faithful ``stale``, as the original reports them)."""
        if self.config["target_refresh"] == "stale" and hasattr(self, "labels"):
            labels = self.labels
        else:
            with torch.no_grad():
                labels = self._ensure_device().module.soft_assign(self._embed_all()).argmax(dim=1).cpu().numpy()
        return pd.Series(labels.astype(np.int64), index=self.adata.obs_names.copy(), name="scimta")

    def _ensure_device(self) -> "SCIMTA":
        if not hasattr(self, "_neighbour_index") and not hasattr(self, "_dense_propagation"):
            self._prepare_device_data()
        return self

    def gene_communities(self, resolution: float = 1.0) -> pd.Series:
        """Leiden communities of the genes on a kNN graph of their learned embeddings."""
        embedding = self.module.gene_embedding.detach().cpu().numpy()
        graph = knn_graph(embedding, min(self.config["gene_k"], len(self.genes) - 1), source="scimta gene embedding")
        labels = clustering.leiden(graph, resolution, self.config["seed"])
        return pd.Series(labels, index=self.genes.copy(), name="community")

    @classmethod
    def load(cls, path, adata):
        model = super().load(path, adata)
        model._ensure_device()
        return model


def _valid_column(weights: torch.Tensor, generator) -> torch.Tensor:
    """One uniformly drawn non-padding column per row (an edge of the target graph)."""
    return torch.multinomial((weights > 0).float(), 1, generator=generator).squeeze(1)


def _aggregate(neighbours: torch.Tensor, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """sum_j w_ij values_j as one sparse x dense product (a gathered rows x neighbours x genes
    tensor would be fanout times larger than the input)."""
    rows = torch.arange(neighbours.shape[0], device=values.device).repeat_interleave(neighbours.shape[1])
    matrix = torch.sparse_coo_tensor(
        torch.stack([rows, neighbours.reshape(-1)]), weights.reshape(-1), (neighbours.shape[0], values.shape[0])
    )
    return torch.sparse.mm(matrix, values)


# ------------------------------------------------------------------- inputs
def _registered_counts(adata: ad.AnnData, layer: str) -> tuple[sp.csr_matrix, np.ndarray]:
    """Raw counts (CSR float32) and per-cell totals; zero-count cells are an InputError (their
    size factor would be 0 and the NB mean undefined)."""
    if layer not in adata.layers:
        raise InputError(f"layers[{layer!r}]", f"layer not found; layers are {list(adata.layers)}")
    counts = sp.csr_matrix(adata.layers[layer], dtype=np.float32)
    where = f"layers[{layer!r}]"
    if not np.isfinite(counts.data).all() or (counts.data < 0).any() or (counts.data != np.round(counts.data)).any():
        raise InputError(where, "expected raw non-negative integer counts")
    library = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
    empty = np.flatnonzero(library == 0)
    if empty.size:
        raise InputError(
            where,
            f"{empty.size} cells have zero counts over the {adata.n_vars} genes after filtering "
            f"(e.g. {list(adata.obs_names[empty[:5]])}); remove them (e.g. sc.pp.filter_cells(min_counts=1))",
        )
    return counts, library


def _log_normalised(counts: sp.csr_matrix, library: np.ndarray) -> sp.csr_matrix:
    """log1p of counts scaled to 1e4 per cell (sparse)."""
    values = sp.diags((1e4 / library).astype(np.float32)) @ counts
    values = values.tocsr()
    values.data = np.log1p(values.data)
    return values


def _gram(values: sp.csr_matrix, chunk: int = INFERENCE_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """(X^T X / N, column means) of sparse X, densifying one block of rows at a time (memory
    genes^2 + chunk x genes, whatever the number of cells)."""
    gram = np.zeros((values.shape[1], values.shape[1]))
    for start in range(0, values.shape[0], chunk):
        block = values[start : start + chunk]
        # Sparse product for sparse blocks (large data), BLAS for dense-ish ones (small HVG sets).
        if block.nnz > 0.1 * block.shape[0] * block.shape[1]:
            block = block.toarray().astype(np.float64)
            gram += block.T @ block
        else:
            gram += (block.T @ block).toarray()
    return gram / values.shape[0], np.asarray(values.mean(axis=0)).ravel()


def _pca(values: sp.csr_matrix, n_pcs: int, seed: int) -> np.ndarray:
    """PCA of sparse log-normalised data from the genes x genes covariance (eigendecomposition),
    projected block by block: no dense cells x genes matrix at any N."""
    gram, mean = _gram(values)
    components, shift = pca_components(gram, mean, n_pcs, values.shape[0])
    return np.vstack(
        [values[s : s + INFERENCE_CHUNK] @ components - shift for s in range(0, values.shape[0], INFERENCE_CHUNK)]
    ).astype(np.float32)


def pca_components(gram: np.ndarray, mean: np.ndarray, n_pcs: int, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """(genes x n_pcs loadings, their shift mean @ loadings) from X^T X / N and the column means:
    the covariance's leading eigenvectors (shared with the streamed build, which sums the Gram
    matrix over chunks read from disk)."""
    covariance = gram - np.outer(mean, mean)
    _, eigenvectors = np.linalg.eigh(covariance)
    n_pcs = min(n_pcs, gram.shape[0] - 1, n_cells - 1)
    components = eigenvectors[:, ::-1][:, :n_pcs]
    return components, mean @ components


def gene_graph_from_gram(gram: np.ndarray, mean: np.ndarray, config: dict) -> sp.csr_matrix:
    """PPMI target of a kNN graph over genes on their Pearson correlation across cells, from the
    Gram matrix X^T X / N and column means of the log-normalised data (N-independent)."""
    covariance = gram - np.outer(mean, mean)
    sd = np.sqrt(np.clip(np.diag(covariance), 1e-12, None))
    correlation = covariance / np.outer(sd, sd)
    k = min(config["gene_k"], gram.shape[0] - 1)
    distance = np.clip(1.0 - correlation, 0.0, None)
    graph = knn_graph(distance, k, metric="precomputed", source="scimta gene correlation")
    return random_surf_ppmi(graph, config["surf_steps"], config["restart"])
