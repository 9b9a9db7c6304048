"""scIMTA's graphs: kNN cell graph on PCA, random-surfing + PPMI target, padded neighbour lists.

The original builds a dense N x N PPMI matrix with O(N^3) surfing (C7). The corrected graph keeps
everything on the kNN support: random surfing is done for a fixed-size block of rows at a time and
masked to the kNN edges before PPMI, so memory is O(N k) and does not depend on a dense N x N.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deepexpr.errors import InputError

#: Above this many cells neighbours are approximate (pynndescent) instead of exact (scikit-learn).
EXACT_LIMIT = 50_000
#: Rows surfed at a time, so the surfing's working memory is bounded whatever N is.
SURF_BLOCK = 4096


def knn_graph(
    embedding: np.ndarray, k: int, metric: str = "euclidean", seed: int = 0, source: str = "PCA", batches=None
) -> sp.csr_matrix:
    """Symmetric 0/1 kNN connectivity (self excluded) of the rows of ``embedding``.

    Exact neighbours (scikit-learn) up to :data:`EXACT_LIMIT` cells, pynndescent above. Fewer
    cells than ``k + 1`` is an InputError: the graph would not be a kNN graph. With ``batches``
    (one label per row, two or more distinct) the graph is batch-balanced: every cell gets its
    ceil(k / batches) nearest cells of each batch (BBKNN); a batch with no more cells than that is
    an InputError naming it.
    """
    n = embedding.shape[0]
    if n <= k:
        raise InputError(source, f"{n} cells but k = {k} neighbours requested; need more than k cells (lower k)")
    names = None if batches is None else np.unique(np.asarray(batches).astype(str))
    if names is None or len(names) < 2:
        indices = _nearest(embedding, embedding, k + 1, metric, seed)
        rows = np.repeat(np.arange(n), k + 1)
    else:
        batches = np.asarray(batches).astype(str)
        per_batch = int(np.ceil(k / len(names)))
        rows, columns = [], []
        for name in names:
            members = np.flatnonzero(batches == name)
            if members.size <= per_batch:
                raise InputError(
                    source, f"batch {str(name)!r} has {members.size} cells; a batch-balanced graph takes {per_batch} "
                    f"neighbours from each batch (k = {k} over {len(names)} batches): lower k or merge the batch"
                )
            # One more than per_batch: a member's nearest member is itself (dropped below).
            found = members[_nearest(embedding[members], embedding, per_batch + 1, metric, seed)]
            own = np.zeros(n, bool)
            own[members] = True
            found = np.where(own[:, None], found, np.c_[found[:, :per_batch], found[:, :1]])
            rows.append(np.repeat(np.arange(n), per_batch + 1))
            columns.append(found.ravel())
        rows, indices = np.concatenate(rows), np.concatenate(columns)
    graph = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, indices.ravel())), shape=(n, n))
    graph.setdiag(0)
    graph.eliminate_zeros()
    graph = graph.maximum(graph.T).tocsr()
    graph.data[:] = 1.0
    return graph


def _nearest(reference: np.ndarray, queries: np.ndarray, n_neighbors: int, metric: str, seed: int) -> np.ndarray:
    """Indices into ``reference`` of each query's ``n_neighbors`` nearest rows (a query that is in
    the reference finds itself first; the caller drops self-loops)."""
    n_neighbors = min(n_neighbors, reference.shape[0])
    if reference.shape[0] <= EXACT_LIMIT:
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors(n_neighbors=n_neighbors, metric=metric).fit(reference).kneighbors(queries)[1]
    from pynndescent import NNDescent

    index = NNDescent(reference, n_neighbors=n_neighbors, metric=metric, random_state=seed, low_memory=True)
    if queries is reference:
        return index.neighbor_graph[0]
    return index.query(queries, k=n_neighbors)[0]


def check_graph(graph: sp.spmatrix, source: str = "graph") -> sp.csr_matrix:
    """A square graph with at least one neighbour per cell; isolated cells are an InputError
    (a GCN would embed them from their own expression only and the graph loss would ignore them)."""
    graph = sp.csr_matrix(graph)
    if graph.shape[0] != graph.shape[1]:
        raise InputError(source, f"graph must be square, got shape {graph.shape}")
    off_diagonal = graph - sp.diags(graph.diagonal())
    isolated = np.flatnonzero(np.asarray(abs(off_diagonal).sum(axis=1)).ravel() == 0)
    if isolated.size:
        raise InputError(
            source, f"{isolated.size} isolated cells without neighbours (e.g. rows {isolated[:5].tolist()}); "
            "rebuild the kNN graph or remove them"
        )
    return graph


def random_surf_ppmi(graph: sp.spmatrix, steps: int = 2, restart: float = 0.98, dense: bool = False):
    """Random-surfing co-occurrence M = sum_s P_s, P_s = restart * P_{s-1} A_rw + (1 - restart) I,
    then PPMI(M), each row divided by its maximum (the original's target A*).

    ``dense=True`` is the original (dense N x N, every pair). Otherwise rows are surfed in blocks
    of :data:`SURF_BLOCK` and M is kept on the support of ``graph`` + I only (C7): returns CSR.
    """
    graph = check_graph(graph)
    n = graph.shape[0]
    adjacency = (graph + sp.identity(n, format="csr", dtype=np.float32)).tocsr()
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    transition = sp.diags(1.0 / degree) @ adjacency
    if dense:
        walk = np.eye(n, dtype=np.float64)
        transition = transition.toarray()
        total = np.zeros((n, n))
        for _ in range(steps):
            walk = restart * walk @ transition + (1 - restart) * np.eye(n)
            total += walk
        return _ppmi_dense(total)
    support = adjacency.copy()
    support.data[:] = 1.0
    blocks = []
    for start in range(0, n, SURF_BLOCK):
        stop = min(n, start + SURF_BLOCK)
        rows = np.arange(stop - start)
        identity = sp.csr_matrix((np.ones(rows.size), (rows, rows + start)), shape=(rows.size, n))
        walk, total = identity, sp.csr_matrix((stop - start, n))
        for _ in range(steps):
            walk = (restart * (walk @ transition) + (1 - restart) * identity).tocsr()
            total = total + support[start:stop].multiply(walk)
        blocks.append(sp.csr_matrix(total))
    return _ppmi_sparse(sp.vstack(blocks).tocsr())


def _ppmi_dense(total: np.ndarray) -> np.ndarray:
    total = total / total.sum()
    row, col = total.sum(axis=1, keepdims=True), total.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(total / (row * col))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    peak = ppmi.max(axis=1, keepdims=True)
    return np.divide(ppmi, peak, out=np.zeros_like(ppmi), where=peak > 0)


def _ppmi_sparse(total: sp.csr_matrix) -> sp.csr_matrix:
    total = total.multiply(1.0 / total.sum()).tocsr()
    row = np.asarray(total.sum(axis=1)).ravel()
    col = np.asarray(total.sum(axis=0)).ravel()
    coo = total.tocoo()
    pmi = np.log(coo.data / (row[coo.row] * col[coo.col]))
    ppmi = sp.csr_matrix((np.maximum(pmi, 0.0), (coo.row, coo.col)), shape=total.shape)
    ppmi.eliminate_zeros()
    peak = ppmi.max(axis=1).toarray().ravel()
    scale = np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > 0)
    return (sp.diags(scale) @ ppmi).tocsr().astype(np.float32)


def normalized_adjacency(target) -> sp.csr_matrix | np.ndarray:
    """The GCN propagation matrix D^-1/2 (A* + I) D^-1/2 (dense for a dense target)."""
    if isinstance(target, np.ndarray):
        adjacency = target + np.eye(target.shape[0])
        scale = 1.0 / np.sqrt(adjacency.sum(axis=1))
        return (adjacency * scale[:, None] * scale[None, :]).astype(np.float32)
    adjacency = (target + sp.identity(target.shape[0], format="csr")).tocsr()
    scale = sp.diags(1.0 / np.sqrt(np.asarray(adjacency.sum(axis=1)).ravel()))
    return (scale @ adjacency @ scale).tocsr().astype(np.float32)


def padded_neighbours(adjacency: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise neighbour indices and weights padded to the largest degree (weight 0 = padding),
    so mini-batches can sample neighbours with array indexing instead of slicing CSR rows."""
    adjacency = sp.csr_matrix(adjacency)
    degree = np.diff(adjacency.indptr)
    width = int(degree.max())
    indices = np.zeros((adjacency.shape[0], width), dtype=np.int64)
    weights = np.zeros((adjacency.shape[0], width), dtype=np.float32)
    position = np.arange(adjacency.nnz) - np.repeat(adjacency.indptr[:-1], degree)
    rows = np.repeat(np.arange(adjacency.shape[0]), degree)
    indices[rows, position] = adjacency.indices
    weights[rows, position] = adjacency.data
    indices[weights == 0] = np.repeat(np.arange(adjacency.shape[0]), width).reshape(-1, width)[weights == 0]
    return indices, weights
