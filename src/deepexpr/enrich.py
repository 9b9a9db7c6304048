"""Offline gene-set enrichment: GMT reading, over-representation and prerank GSEA.

Everything runs on local GMT files (no Enrichr/MSigDB web calls), so results
are reproducible and tests need no network.  All functions return tidy tables
with the enrichment-table contract columns (``ENRICH_COLUMNS``).
"""

from __future__ import annotations

import gzip
import logging
import os
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy.stats import false_discovery_control, hypergeom

from deepexpr.errors import InputError

log = logging.getLogger(__name__)

ENRICH_COLUMNS = ["analysis", "term", "size", "overlap", "pvalue", "padj", "nes", "es", "genes", "rank"]
ID_TYPES = ("entrez", "symbol")
PRERANK_ENGINES = ("gseapy", "blitzgsea")


def read_gmt(path: str | os.PathLike, uppercase: bool = False) -> dict[str, list[str]]:
    """Read a GMT file (gzip allowed) into ``{term: [genes]}``.

    Validation is strict because a silently skipped or merged set changes every
    adjusted p-value.  ``uppercase=True`` upper-cases gene ids so that symbol
    matching is case-insensitive (Enrichr writes mouse genes in UPPERCASE).
    Duplicate genes within a set and empty trailing fields are dropped.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    gene_sets: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 3:
                raise InputError(
                    path,
                    f"line {number}: expected at least 3 tab-separated fields "
                    f"(name, description, genes), found {len(fields)}",
                )
            term = fields[0].strip()
            genes = [gene.strip() for gene in fields[2:] if gene.strip()]
            if not term:
                raise InputError(path, f"line {number}: empty gene-set name")
            if not genes:
                raise InputError(path, f"line {number}: gene set {term!r} lists no genes")
            if term in gene_sets:
                raise InputError(
                    path, f"line {number}: duplicate gene-set name {term!r} (first on line {first_line[term]})"
                )
            if uppercase:
                genes = [gene.upper() for gene in genes]
            gene_sets[term] = list(dict.fromkeys(genes))
            first_line[term] = number
    if not gene_sets:
        raise InputError(path, "no gene sets found (empty GMT file)")
    return gene_sets


def ora(
    genes: Iterable[str],
    universe: Iterable[str] | None,
    gene_sets: Mapping[str, Iterable[str]],
    min_size: int = 10,
    max_size: int = 500,
    analysis: str = "ora",
) -> pd.DataFrame:
    """Over-representation analysis by the one-sided hypergeometric test.

    N = universe genes annotated to at least one set of the collection,
    K = |set ∩ universe|, n = list genes among those N, k = overlap,
    p = P(X >= k).  List genes without any annotation are left out of n, as
    in clusterProfiler, because they could never be drawn from N.
    ``universe=None`` means all annotated genes (the original's behaviour).
    Sets with K outside [min_size, max_size] are not tested; BH runs over the
    tested sets.  Rows are sorted by p-value; ``genes`` lists the overlap.
    """
    annotated = set().union(*map(set, gene_sets.values()))
    if universe is not None:
        annotated &= set(universe)
    hits = annotated.intersection(genes)
    rows = []
    for term, members in gene_sets.items():
        in_universe = annotated.intersection(members)
        if min_size <= len(in_universe) <= max_size:
            overlap = sorted(in_universe & hits)
            rows.append((term, len(in_universe), len(overlap), ";".join(overlap)))
    table = pd.DataFrame(rows, columns=["term", "size", "overlap", "genes"])
    if table.empty:
        return _finish(table.assign(pvalue=[], padj=[]), analysis, sort_by=["pvalue", "term"])
    table["pvalue"] = hypergeom.sf(table["overlap"] - 1, len(annotated), table["size"], len(hits))
    table["padj"] = false_discovery_control(table["pvalue"], method="bh")
    return _finish(table, analysis, sort_by=["pvalue", "term"])


def prerank(
    ranking: pd.Series,
    gene_sets: Mapping[str, Iterable[str]],
    permutations: int = 1000,
    min_size: int = 15,
    max_size: int = 500,
    seed: int = 123,
    threads: int = 1,
    analysis: str = "prerank",
    engine: str = "gseapy",
) -> pd.DataFrame:
    """Prerank GSEA of ``ranking`` (gene id -> score, unique ids) with gseapy (default) or
    blitzgsea (``engine``; its gamma approximation of the null needs far fewer permutations,
    bench/bench_enrichment.py compares the two on GSE60450).

    Non-finite scores are dropped.  Genes are ordered here (score descending,
    ties by gene id) and sets are cut to ranked genes before gseapy sees them,
    so the result depends only on the inputs and ``seed`` (gseapy would break
    score ties by input order).
    ``size`` = set genes in the ranking; ``genes`` = leading edge; rows sorted
    by nominal p-value, then |NES|. gseapy reports 0 when no permutation reaches
    the observed score; p and q are floored at 1 / (permutations + 1), the
    smallest value the permutations can support. blitzgsea fits a gamma
    distribution to the permutation null, so its p-values go below that floor;
    its NES is the normal quantile of the p-value (sign of ES), not ES over the
    mean null ES.
    """
    if engine not in PRERANK_ENGINES:
        raise InputError("engine", f"expected one of {list(PRERANK_ENGINES)}, got {engine!r}")
    if ranking.index.duplicated().any():
        duplicated = ranking.index[ranking.index.duplicated()].unique()[:5].tolist()
        raise ValueError(f"ranking has duplicate gene ids, e.g. {duplicated}")
    scores = ranking.astype(float)
    scores = scores[np.isfinite(scores)].rename("score")
    scores.index = scores.index.astype(str)
    scores = scores.sort_index().sort_values(ascending=False, kind="stable")
    ranked = set(scores.index)
    sets = {term: sorted(ranked.intersection(members)) for term, members in gene_sets.items()}
    # gseapy also requires a set to be smaller than the whole ranking.
    sets = {
        term: genes for term, genes in sets.items() if min_size <= len(genes) <= max_size and len(genes) < len(scores)
    }
    columns = ["term", "size", "es", "nes", "pvalue", "padj", "genes"]
    if not sets:
        return _finish(pd.DataFrame(columns=columns), analysis, sort_by=["pvalue", "term"])
    if engine == "blitzgsea":
        table = _blitzgsea_prerank(scores, sets, permutations, min_size, max_size, seed, threads)
    else:
        table = _gseapy_prerank(scores, sets, permutations, min_size, max_size, seed, threads)
    table["abs_nes"] = -table["nes"].abs()
    return _finish(table, analysis, sort_by=["pvalue", "abs_nes", "term"])


def _gseapy_prerank(scores, sets, permutations, min_size, max_size, seed, threads) -> pd.DataFrame:
    import gseapy  # slow import; only needed here

    result = gseapy.prerank(
        rnk=scores,
        gene_sets=sets,
        permutation_num=permutations,
        min_size=min_size,
        max_size=max_size,
        ascending=None,
        threads=threads,
        seed=seed,
        outdir=None,
        no_plot=True,
        verbose=False,
    ).res2d
    table = pd.DataFrame(
        {
            "term": result["Term"],
            "size": result["Term"].map(lambda term: len(sets[term])),
            "es": result["ES"].astype(float),
            "nes": result["NES"].astype(float),
            "pvalue": result["NOM p-val"].astype(float).clip(lower=1 / (permutations + 1)),
            "padj": result["FDR q-val"].astype(float).clip(lower=1 / (permutations + 1)),
            "genes": result["Lead_genes"],
        }
    )
    return table


def _blitzgsea_prerank(scores, sets, permutations, min_size, max_size, seed, threads) -> pd.DataFrame:
    import blitzgsea  # slow import; only needed here

    # Not centred: gseapy weights genes by the raw score, so blitzgsea must see the same one.
    result = blitzgsea.gsea(
        pd.DataFrame({"gene": scores.index, "score": scores.to_numpy()}),
        sets,
        permutations=permutations,
        min_size=min_size,
        max_size=max_size,
        processes=threads,
        seed=seed,
        center=False,
    )
    return pd.DataFrame(
        {
            "term": result.index.astype(str),
            "size": [len(sets[term]) for term in result.index],
            "es": result["es"].astype(float).to_numpy(),
            "nes": result["nes"].astype(float).to_numpy(),
            "pvalue": result["pval"].astype(float).to_numpy(),
            "padj": result["fdr"].astype(float).to_numpy(),
            "genes": result["leading_edge"].astype(str).str.replace(",", ";").to_numpy(),
        }
    )


def enrich_de_table(
    de: pd.DataFrame,
    gene_sets: Mapping[str, Iterable[str]],
    *,
    id_type: str = "entrez",
    score: str = "log2fc",
    called: str = "called",
    faithful: bool = False,
    ora_min_size: int = 10,
    ora_max_size: int = 500,
    prerank_min_size: int = 15,
    prerank_max_size: int = 500,
    permutations: int = 1000,
    seed: int = 123,
    threads: int = 1,
    source: str = "DE table",
    engine: str = "gseapy",
) -> pd.DataFrame:
    """Enrichment of one DE table: ORA of up and down genes plus prerank GSEA.

    ``de`` has ``gene_id``, ``symbol``, the ``score`` column (an LFC) and a
    boolean ``called`` column; up = called & score > 0, down = called &
    score < 0.  ``id_type`` says which column the collection's ids match:
    ``entrez`` -> gene_id, ``symbol`` -> symbol, case-insensitively.
    Corrected (default): universe = tested genes (the table's rows), up and
    down ORA and prerank on ``score``.  ``faithful=True`` reproduces the
    original: all annotated genes as universe, up list only, no prerank.
    Returns one table with ``analysis`` in {ora_up, ora_down, prerank};
    gene ids in ``genes`` are given as symbols where known.
    """
    if id_type not in ID_TYPES:
        raise InputError("id_type", f"expected one of {', '.join(ID_TYPES)}, got {id_type!r}")
    missing = [column for column in ("gene_id", "symbol", score, called) if column not in de.columns]
    if missing:
        raise InputError(
            source,
            f"missing column(s) {', '.join(missing)}; expected gene_id, symbol, {score} and a boolean {called}",
        )
    id_column = "gene_id" if id_type == "entrez" else "symbol"
    de = de[de[id_column].notna()]
    keys = de[id_column].astype(str)
    if id_type == "symbol":
        keys = keys.str.upper()
        gene_sets = {term: [gene.upper() for gene in genes] for term, genes in gene_sets.items()}
    labels = dict(zip(keys[de["symbol"].notna()], de["symbol"].dropna().astype(str)))
    is_called = de[called].eq(True)
    lfc = de[score].astype(float)
    up, down = keys[is_called & (lfc > 0)], keys[is_called & (lfc < 0)]
    universe = None if faithful else keys
    log.info("%s: %d genes, %d up, %d down, %d gene sets", source, len(keys), len(up), len(down), len(gene_sets))

    parts = [ora(up, universe, gene_sets, ora_min_size, ora_max_size, analysis="ora_up")]
    if not faithful:
        parts.append(ora(down, universe, gene_sets, ora_min_size, ora_max_size, analysis="ora_down"))
        # Symbols can repeat across gene ids; the strongest score stands for the symbol.
        ranking = pd.Series(lfc.to_numpy(), index=keys.to_numpy()).dropna()
        ranking = ranking.iloc[np.argsort(-ranking.abs().to_numpy(), kind="stable")]
        ranking = ranking[~ranking.index.duplicated()]
        parts.append(
            prerank(
                ranking, gene_sets, permutations, prerank_min_size, prerank_max_size, seed, threads, engine=engine
            )
        )
    table = pd.concat([part for part in parts if not part.empty] or parts[:1], ignore_index=True)
    table["genes"] = table["genes"].map(
        lambda genes: ";".join(labels.get(gene, gene) for gene in genes.split(";")) if genes else genes
    )
    return table


def _finish(table: pd.DataFrame, analysis: str, sort_by: list[str]) -> pd.DataFrame:
    """Sort, number the rows within the analysis and return the contract columns."""
    table = table.sort_values(sort_by, kind="stable").reset_index(drop=True)
    table["analysis"] = analysis
    table["rank"] = np.arange(1, len(table) + 1)
    for column in ENRICH_COLUMNS:
        if column not in table:
            table[column] = np.nan
    for column in ("size", "overlap", "rank"):
        table[column] = table[column].astype("Int64")
    return table[ENRICH_COLUMNS]


def enrich_method_table(
    table: pd.DataFrame,
    method: str,
    gene_sets: Mapping[str, Iterable[str]],
    id_type: str,
    settings: Mapping,
    seed: int,
    source: str,
    threads: int = 1,
) -> pd.DataFrame:
    """Enrichment of one method's DE table with the workflow's rules for up/down genes
    (prerank with gseapy on ``threads`` threads).

    ``deseq2``: called = padj < ``padj`` and |log2FC| > ``min_abs_log2fc``, ranked by the shrunk
    LFC (unshrunk where shrinkage is undefined). ``generative_corrected``: the model's
    FDR-controlled calls, ranked by the posterior-mean LFC. ``generative_faithful``: the
    original's procedure (its top/bottom-500 genes, up list only, all annotated genes as universe).
    """
    if method == "deseq2":
        de = table.assign(
            score=table["log2fc_shrunk"].fillna(table["log2fc"]),
            called=(table["padj"] < settings["padj"]) & (table["log2fc"].abs() > settings["min_abs_log2fc"]),
        )
    elif method.startswith("generative_"):
        de = table.assign(score=table["lfc_mean"], called=table["called"].astype(str).str.lower() == "true")
    else:
        raise InputError(source, f"unknown method {method!r}; expected deseq2 or generative_<mode>")
    return enrich_de_table(
        de,
        gene_sets,
        id_type=id_type,
        score="score",
        called="called",
        faithful=method == "generative_faithful",
        ora_min_size=settings["ora_min_size"],
        ora_max_size=settings["ora_max_size"],
        prerank_min_size=settings["prerank_min_size"],
        prerank_max_size=settings["prerank_max_size"],
        permutations=settings["permutations"],
        seed=seed,
        threads=threads,
        source=source,
    )
