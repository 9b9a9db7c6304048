"""Out-of-core scIMTA (Cluster-GCN style) for data larger than memory.

:class:`StreamedSCIMTA` trains the same network (:class:`SCIMTAModule`), losses and corrected-mode
settings as :class:`~deepexpr.models.scimta.model.SCIMTA`, but never holds an N-sized matrix: the
cells live in a :class:`~deepexpr.models.scimta.store.PartitionStore` (partitions of at most
``partition_size`` cells) and every step reads a bounded number of partitions (Chiang et al.,
KDD 2019). Per training step, ``partitions_per_batch`` random partitions form the batch; the kNN
edges inside it, symmetrised, are the batch's cell graph; the random-surf + PPMI target is
computed on that subgraph (:func:`random_surf_ppmi`) and the two GCN layers run full-batch on it.
A cell with no neighbour inside the batch keeps only its self-loop (target 1 on the diagonal).

Inference embeds each partition together with its ``n_probe`` nearest partitions (the ones its
kNN was searched in), so every cell sees all of its own kNN edges.

    model = StreamedSCIMTA.from_h5ad("big.h5ad", "big.store", layer="counts", n_clusters=8)
    model.train()
    for cells, z in model.iter_latent(): ...
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from deepexpr.errors import InputError
from deepexpr.models._base import ProgressReporter, resolve_device, seed_everything
from deepexpr.models._base.settings import resolve_settings
from deepexpr.models.scimta import clustering
from deepexpr.models.scimta.graph import knn_graph, normalized_adjacency, padded_neighbours, random_surf_ppmi
from deepexpr.models.scimta.model import HISTORY_COLUMNS, SCIMTA, gene_graph_from_gram
from deepexpr.models.scimta.module import SCIMTAModule, nb_log_prob, zinb_log_prob
from deepexpr.models.scimta.settings import MODE_DEFAULTS, SWITCHES
from deepexpr.models.scimta.store import CENTROID_SAMPLE, CountsReader, PartitionStore, open_or_build, source_fingerprint

logger = logging.getLogger(__name__)

#: Settings of the streamed path only (on top of the corrected mode's table). Many small partitions
#: per batch, as Cluster-GCN recommends: a k-means partition holds one cell type, so a batch of few
#: large ones has its negative pairs within one or two types and training pulls the types together
#: (docs/decisions/scimta.md, "Batch composition").
STREAMED_DEFAULTS = {"partition_size": 256, "partitions_per_batch": 8, "n_probe": 16}
#: What the streamed path needs of the switches (the in-memory SCIMTA covers the others).
REQUIRED = {"graph": "sparse", "encoder_input": "pca", "target_refresh": "current"}


class StreamedSCIMTA:
    """scIMTA trained from a partition store on disk; memory bounded by the partition size, not N."""

    def __init__(self, store: PartitionStore, source: str | os.PathLike, mode: str = "corrected", seed: int = 0, **settings):
        self.config = cfg = self.resolve_settings(mode, seed, settings)
        self.store, self.source = store, str(source)
        self.genes = pd.Index(store.genes)
        summary = store.summary
        self._pca_scale = float(summary["sample_pca"][:, 0].std()) or 1.0
        self.n_clusters = self._number_of_clusters()
        self.device = torch.device("cpu")
        if cfg["gene_graph"]:
            gene_index, gene_weight = padded_neighbours(gene_graph_from_gram(summary["gram"], summary["mean"], cfg))
            self._gene_index, self._gene_weight = torch.as_tensor(gene_index), torch.as_tensor(gene_weight)
        self.history = pd.DataFrame(columns=HISTORY_COLUMNS)
        self.training_info: dict = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = SCIMTAModule(
                summary["components"].shape[1], len(self.genes), cfg["hidden"], cfg["latent_dim"], cfg["graph_hidden"],
                list(cfg["decoder_hidden"]), cfg["gene_dim"], cfg["dropout"], zero_inflated=cfg["recon_loss"] == "zinb",
            )
            self.module.set_centres(torch.zeros(self.n_clusters, cfg["latent_dim"]), cfg["learn_centres"])

    @staticmethod
    def resolve_settings(mode: str, seed: int, settings: dict) -> dict:
        """The mode's table with ``settings`` applied, plus the streamed settings; InputError for
        settings the streamed path does not support."""
        settings = dict(settings)
        streamed = {key: settings.pop(key, None) for key in STREAMED_DEFAULTS}
        config = {
            "mode": mode,
            "seed": seed,
            **resolve_settings("scimta", SWITCHES, MODE_DEFAULTS, mode, settings),
            **{key: STREAMED_DEFAULTS[key] if value is None else value for key, value in streamed.items()},
        }
        for key, needed in REQUIRED.items():
            if config[key] != needed:
                raise InputError(f"scimta.{key}", f"the streamed path needs {key}={needed!r}; use the in-memory SCIMTA for {config[key]!r}")
        if config["recon_loss"] not in ("nb", "zinb"):
            raise InputError("scimta.recon_loss", "the streamed path needs 'nb' or 'zinb'")
        return config

    @classmethod
    def from_h5ad(cls, path, store_dir, layer: str = "counts", mode: str = "corrected", seed: int = 0, **settings) -> "StreamedSCIMTA":
        """Build (or reuse, when it matches the file and the settings) the partition store of the
        counts in ``layers[layer]`` (``"X"`` for X) of ``path`` and set up the model on it."""
        config = cls.resolve_settings(mode, seed, settings)  # bad settings fail before the store is built
        build = {key: config[key] for key in ("n_pcs", "k", "partition_size", "n_probe")}
        store = open_or_build(path, store_dir, layer, seed=seed, **build)
        return cls(store, path, mode, seed, **settings)

    def _number_of_clusters(self) -> int:
        """K from the settings or, label-free, Leiden on a kNN graph of the store's fixed-size PCA subsample."""
        cfg = self.config
        if cfg["n_clusters"] is not None:
            return int(cfg["n_clusters"])
        if cfg["n_clusters_from"] == "labels":
            raise InputError("scimta.n_clusters_from", "the streamed path has no labels: set n_clusters or use 'leiden'")
        sample = self.store.summary["sample_pca"]
        scan = clustering.resolution_scan(sample, knn_graph(sample, cfg["k"], source="scimta PCA subsample"), cfg["leiden_resolutions"], cfg["seed"])
        chosen = clustering.label_free_choice(scan)
        logger.info("K = %d from Leiden on a %d-cell PCA subsample (resolution %.2f)", chosen["n_clusters"], len(sample), chosen["resolution"])
        return max(2, chosen["n_clusters"])

    # ------------------------------------------------------------ batches
    def _batch(self, partitions, counts: bool) -> dict:
        """Concatenated partitions with their kNN subgraph's PPMI target and GCN propagation."""
        parts = [self.store.read(p, ("pca", "knn", "cell", *(("counts", "library") if counts else ()))) for p in partitions]
        sizes = np.asarray([len(p["pca"]) for p in parts])
        batch = {
            "pca": np.vstack([p["pca"] for p in parts]),
            "cell": np.concatenate([p["cell"] for p in parts]),
            "sizes": sizes,
        }
        if counts:
            batch["counts"] = sp.vstack([p["counts"] for p in parts]).tocsr()
            batch["library"] = np.concatenate([p["library"] for p in parts])
        graph = _induced_graph(np.vstack([p["knn"] for p in parts]), self.store.offsets[partitions], sizes)
        target = _subgraph_target(graph, self.config["surf_steps"], self.config["restart"])
        batch["target"] = target
        batch["propagation"] = _torch_sparse(normalized_adjacency(target), self.device)
        return batch

    def _embed(self, batch: dict) -> torch.Tensor:
        x = torch.as_tensor(batch["pca"] / self._pca_scale, dtype=torch.float32, device=self.device)
        x = self.module.dropout(x)
        propagation = batch["propagation"]
        h = self.module.first_layer(torch.sparse.mm(propagation, x), x)
        return self.module.second_layer(torch.sparse.mm(propagation, h), h)

    # ------------------------------------------------------------ losses
    def _graph_loss(self, z: torch.Tensor, target: sp.csr_matrix, generator) -> torch.Tensor:
        """BCE of one target edge per cell (target = A* weight) and ``negatives`` random pairs per cell, as SCIMTA."""
        n = z.shape[0]
        degree = np.diff(target.indptr)
        draw = torch.rand(n, generator=generator, device=self.device).cpu().numpy()
        edge = target.indptr[:-1] + np.minimum((draw * degree).astype(np.int64), degree - 1)
        partners = torch.as_tensor(target.indices[edge], dtype=torch.long, device=self.device)
        weights = torch.as_tensor(target.data[edge], dtype=torch.float32, device=self.device)
        positives = self.module.edge_logits(z, z[partners])
        n_negative = self.config["negatives"] * n
        a = torch.randint(0, n, (n_negative,), generator=generator, device=self.device)
        b = torch.randint(0, n, (n_negative,), generator=generator, device=self.device)
        logits = torch.cat([positives, self.module.edge_logits(z[a], z[b])])
        return F.binary_cross_entropy_with_logits(logits, torch.cat([weights, torch.zeros(n_negative, device=self.device)]))

    def _expression_loss(self, z: torch.Tensor, batch: dict) -> torch.Tensor:
        proportions, dropout_logits = self.module.expression(z)
        counts = torch.as_tensor(batch["counts"].toarray(), dtype=torch.float32, device=self.device)
        library = torch.as_tensor(batch["library"], dtype=torch.float32, device=self.device)[:, None]
        theta = self.module.log_theta.exp()
        if dropout_logits is None:
            log_p = nb_log_prob(counts, proportions * library, theta)
        else:
            log_p = zinb_log_prob(counts, proportions * library, theta, dropout_logits)
        return -log_p.mean()

    # SCIMTA's gene-graph and DEC losses read only config, module, device and the padded gene graph.
    _gene_loss = SCIMTA._gene_loss
    _cluster_loss = SCIMTA._cluster_loss

    # ------------------------------------------------------------ training
    def _epoch(self, optimizer, phase: str, frequency: torch.Tensor | None, generator) -> dict:
        cfg = self.config
        totals = dict.fromkeys(("loss", "graph", "expression", "gene", "cluster"), 0.0)
        order = torch.randperm(self.store.n_partitions, generator=generator, device=self.device).cpu().numpy()
        for start in range(0, len(order), cfg["partitions_per_batch"]):
            batch = self._batch(order[start : start + cfg["partitions_per_batch"]], counts=True)
            z = self._embed(batch)
            graph_loss = self._graph_loss(z, batch["target"], generator)
            expression_loss = self._expression_loss(z, batch)
            loss = cfg["weight_graph"] * graph_loss + cfg["weight_expression"] * expression_loss
            gene_loss = torch.zeros((), device=self.device)
            if cfg["gene_graph"] and cfg["weight_gene"] > 0:
                gene_loss = self._gene_loss(generator)
                loss = loss + cfg["weight_gene"] * gene_loss
            cluster_loss = torch.zeros((), device=self.device)
            if phase == "cluster":
                with torch.no_grad():
                    p = _sharpened(self.module.soft_assign(z), frequency)
                cluster_loss = self._cluster_loss(z, p)
                loss = loss + cfg["weight_cluster"] * cluster_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            share = len(batch["cell"]) / self.store.n_cells
            for name, value in zip(totals, (loss, graph_loss, expression_loss, gene_loss, cluster_loss)):
                totals[name] += float(value.detach()) * share
        return totals

    def train(self, device: str = "auto", log_every: int = 10, progress_bar: bool | None = None) -> pd.DataFrame:
        """Pretrain (graph + expression [+ gene graph]) on partition batches, initialise the centres by
        k-means on z of a fixed-size sample of partitions, then train with the DEC term; the DEC
        target of a batch is sharpened from its current q with cluster frequencies from the last
        streamed pass (refreshed every ``refresh_every`` epochs, stop when < ``label_tol`` change)."""
        cfg = self.config
        seed_everything(cfg["seed"])
        self.device = resolve_device(device)
        self.module.to(self.device).train()
        if cfg["gene_graph"]:
            self._gene_index, self._gene_weight = self._gene_index.to(self.device), self._gene_weight.to(self.device)
        generator = torch.Generator(device=self.device).manual_seed(cfg["seed"])
        started = time.perf_counter()
        rows: list[tuple] = []
        optimizer = torch.optim.Adam(self.module.parameters(), lr=cfg["lr_pretrain"])
        progress = ProgressReporter(cfg["pretrain_epochs"], "scIMTA streamed pretrain", log_every, bar=progress_bar)
        for epoch in range(1, cfg["pretrain_epochs"] + 1):
            totals = self._epoch(optimizer, "pretrain", None, generator)
            rows.append((epoch, "pretrain", *totals.values(), np.nan))
            progress.update(epoch, **totals)
        changed = self._cluster_phase(rows, generator, log_every, progress_bar)
        self.module.eval()
        self.history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        self.training_info = {
            "epochs": len(rows),
            "n_clusters": self.n_clusters,
            "last_label_change": changed,
            "train_seconds": time.perf_counter() - started,
            "device": str(self.device),
            "n_partitions": self.store.n_partitions,
        }
        return self.history

    def _cluster_phase(self, rows, generator, log_every, progress_bar) -> float:
        from sklearn.cluster import KMeans

        cfg = self.config
        order = np.random.default_rng(cfg["seed"]).permutation(self.store.n_partitions)
        covered = int(np.searchsorted(np.cumsum(self.store.sizes[order]), CENTROID_SAMPLE) + 1)
        sample = np.vstack([z for _, z in self.iter_latent(order[:covered])])
        kmeans = KMeans(self.n_clusters, n_init=10, random_state=cfg["seed"]).fit(sample)
        self.module.set_centres(torch.as_tensor(kmeans.cluster_centers_, device=self.device), cfg["learn_centres"])
        optimizer = torch.optim.Adam([p for p in self.module.parameters() if p.requires_grad], lr=cfg["lr_cluster"])
        progress = ProgressReporter(cfg["cluster_epochs"], "scIMTA streamed cluster", log_every, bar=progress_bar)
        labels, changed, frequency = None, np.nan, None
        for epoch in range(1, cfg["cluster_epochs"] + 1):
            if (epoch - 1) % cfg["refresh_every"] == 0:
                frequency, refreshed = self._frequencies_and_labels()
                if labels is not None:
                    changed = float((refreshed != labels).mean())
                    if changed < cfg["label_tol"]:
                        logger.info("labels converged: %.4f changed between refreshes", changed)
                        break
                labels = refreshed
            totals = self._epoch(optimizer, "cluster", frequency, generator)
            rows.append((cfg["pretrain_epochs"] + epoch, "cluster", *totals.values(), changed))
            progress.update(epoch, **totals)
        return changed

    @torch.no_grad()
    def _frequencies_and_labels(self) -> tuple[torch.Tensor, np.ndarray]:
        """One streamed pass: f_j = sum_i q_ij over all cells, and the labels in partition order
        (int16: 2 bytes per cell is the only N-sized array the training keeps)."""
        frequency = torch.zeros(self.n_clusters, device=self.device)
        labels = []
        for _, z in self.iter_latent(as_numpy=False):
            q = self.module.soft_assign(z)
            frequency += q.sum(dim=0)
            labels.append(q.argmax(dim=1).cpu().numpy().astype(np.int16))
        return frequency, np.concatenate(labels)

    # ------------------------------------------------------------ outputs
    @torch.no_grad()
    def iter_latent(self, partitions=None, as_numpy: bool = True):
        """(original cell indices, z) per partition, each embedded with its ``n_probe`` nearest partitions."""
        was_training = self.module.training
        self.module.eval()
        try:
            for partition in range(self.store.n_partitions) if partitions is None else partitions:
                batch = self._batch(self.store.probes[partition], counts=False)
                size = int(batch["sizes"][0])
                z = self._embed(batch)[:size]
                yield batch["cell"][:size], (z.cpu().numpy() if as_numpy else z)
        finally:
            self.module.train(was_training)

    def get_latent(self) -> pd.DataFrame:
        """z per cell in the file's order (cells x latent_dim; holds N x latent_dim in memory:
        use :meth:`iter_latent` to stream)."""
        z = np.zeros((self.store.n_cells, self.config["latent_dim"]), dtype=np.float32)
        for cells, values in self.iter_latent():
            z[cells] = values
        return pd.DataFrame(z, index=self._obs_names(), columns=[f"z{i + 1}" for i in range(z.shape[1])])

    def predict(self) -> pd.Series:
        """Cluster of each cell (argmax of q) in the file's order."""
        labels = np.zeros(self.store.n_cells, dtype=np.int64)
        for cells, z in self.iter_latent(as_numpy=False):
            labels[cells] = self.module.soft_assign(z).argmax(dim=1).cpu().numpy()
        return pd.Series(labels, index=self._obs_names(), name="scimta")

    def save(self, path: str | os.PathLike) -> None:
        """Weights, settings (with the K in use), history and the store's location."""
        state = {
            "config": {**self.config, "n_clusters": self.n_clusters},
            "store": str(self.store.directory.resolve()),
            "source": self.source,
            "module": self.module.state_dict(),
            "history": self.history,
            "training_info": self.training_info,
        }
        torch.save(state, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "StreamedSCIMTA":
        """A saved model on its store; refused when the .h5ad the store was built from has changed."""
        state = torch.load(path, map_location="cpu", weights_only=False)
        store = PartitionStore(state["store"])
        recorded = store.manifest["fingerprint"]
        settings = {key: recorded[key] for key in ("n_pcs", "k", "partition_size", "n_probe", "seed")}
        if source_fingerprint(state["source"], recorded["layer"], settings) != recorded:
            raise InputError(state["source"], f"changed since the store {state['store']} was built; rebuild it with from_h5ad and retrain")
        config = dict(state["config"])
        mode, seed = config.pop("mode"), config.pop("seed")
        model = cls(store, state["source"], mode, seed, **config)
        model.module.load_state_dict(state["module"])
        model.module.eval()
        model.history, model.training_info = state["history"], state["training_info"]
        return model

    def _obs_names(self) -> pd.Index:
        reader = CountsReader(self.source, self.store.manifest["fingerprint"]["layer"])
        try:
            return pd.Index(reader.obs_names())
        finally:
            reader.close()


def _induced_graph(knn: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> sp.csr_matrix:
    """Symmetric 0/1 graph of the kNN edges (global positions) whose both ends are in the batch,
    whose partitions begin at the global positions ``starts`` and hold ``sizes`` cells."""
    n = int(sizes.sum())
    order = np.argsort(starts)
    sorted_starts, sorted_sizes = starts[order], sizes[order]
    local_base = np.concatenate([[0], np.cumsum(sizes)[:-1]])[order]
    slot = np.clip(np.searchsorted(sorted_starts, knn, side="right") - 1, 0, None)
    inside = (knn >= sorted_starts[slot]) & (knn < sorted_starts[slot] + sorted_sizes[slot])
    columns = (local_base[slot] + knn - sorted_starts[slot])[inside]
    rows = np.repeat(np.arange(n), knn.shape[1])[inside.ravel()]
    graph = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, columns)), shape=(n, n))
    graph = graph.maximum(graph.T).tocsr()
    graph.data[:] = 1.0
    return graph


def _subgraph_target(graph: sp.csr_matrix, steps: int, restart: float) -> sp.csr_matrix:
    """Random-surf PPMI target of the batch subgraph; cells without a neighbour in the batch get a
    self-loop of weight 1 (random_surf_ppmi refuses isolated cells, and the GCN then embeds them
    from their own input, as a cell whose edges all leave the batch)."""
    connected = np.flatnonzero(np.diff(graph.indptr) > 0)
    isolated = np.flatnonzero(np.diff(graph.indptr) == 0)
    if connected.size == 0:
        return sp.identity(graph.shape[0], format="csr", dtype=np.float32)
    target = random_surf_ppmi(graph[connected][:, connected], steps, restart).tocoo()
    rows = np.concatenate([connected[target.row], isolated])
    columns = np.concatenate([connected[target.col], isolated])
    values = np.concatenate([target.data, np.ones(isolated.size, dtype=np.float32)])
    return sp.csr_matrix((values, (rows, columns)), shape=graph.shape)


def _torch_sparse(matrix: sp.csr_matrix, device) -> torch.Tensor:
    coo = matrix.tocoo()
    index = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.long)
    return torch.sparse_coo_tensor(index, torch.as_tensor(coo.data, dtype=torch.float32), coo.shape, device=device).coalesce()


def _sharpened(q: torch.Tensor, frequency: torch.Tensor) -> torch.Tensor:
    """DEC's target p_ij ~ q_ij^2 / f_j with the cluster frequencies f of the whole data
    (target_distribution would take f from the batch alone)."""
    weight = q.pow(2) / frequency.clamp_min(1e-12)
    return weight / weight.sum(dim=1, keepdim=True)
