"""deepexpr.enrich: GMT validation, ORA against hand-computed numbers, prerank, DE-table wrapper."""

import gzip
from math import comb

import numpy as np
import pandas as pd
import pytest

from deepexpr.enrich import ENRICH_COLUMNS, enrich_de_table, ora, prerank, read_gmt
from deepexpr.errors import InputError

GENES = [f"g{i:02d}" for i in range(1, 61)]  # g01..g60


def hypergeom_tail(k, N, K, n):
    """P(X >= k) for X ~ Hypergeometric(N, K, n), from binomial coefficients."""
    return sum(comb(K, i) * comb(N - K, n - i) for i in range(k, min(K, n) + 1)) / comb(N, n)


def write_gmt(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_read_gmt_parses_gzip_and_drops_empty_fields(tmp_path):
    path = tmp_path / "sets.gmt.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("SET_A\tdesc\tAbc1\tXyz2\tAbc1\t\nSET_B\t\tQrs3\n\n")
    assert read_gmt(path) == {"SET_A": ["Abc1", "Xyz2"], "SET_B": ["Qrs3"]}
    assert read_gmt(path, uppercase=True)["SET_A"] == ["ABC1", "XYZ2"]


@pytest.mark.parametrize(
    "lines, message",
    [
        (["SET_A\td\tg01", "SET_B"], r"sets\.gmt: line 2: expected at least 3 tab-separated fields"),
        (["SET_A\td\tg01", "SET_B\td"], r"line 2: expected at least 3"),
        (["SET_A\td\tg01", "SET_B\td\t\t"], r"line 2: gene set 'SET_B' lists no genes"),
        (["\td\tg01"], r"line 1: empty gene-set name"),
        (
            ["SET_A\td\tg01", "SET_B\td\tg02", "SET_A\td\tg03"],
            r"line 3: duplicate gene-set name 'SET_A' \(first on line 1\)",
        ),
        ([], r"sets\.gmt: no gene sets found"),
    ],
)
def test_read_gmt_rejects_malformed_files(tmp_path, lines, message):
    path = write_gmt(tmp_path / "sets.gmt", lines)
    with pytest.raises(InputError, match=message):
        read_gmt(path)


@pytest.fixture
def collection():
    return {
        "enriched": GENES[0:12],  # K = 12, holds 6 list genes
        "partial": GENES[8:20] + ["x1", "x2", "x3"],  # x* outside the universe: K = 12
        "null": GENES[20:35],  # K = 15, 1 list gene
        "too_small": GENES[35:40] + ["x4", "x5", "x6", "x7", "x8"],  # K = 5 within the universe
        "too_big": GENES[0:40],  # K = 40
    }


def test_ora_matches_hand_computed_hypergeometric_tail(collection):
    universe = GENES[:50]  # g41..g50 are in no set: not part of N
    hits = GENES[0:6] + GENES[10:12] + [GENES[25], GENES[45], "x9"]  # g46 unannotated, x9 outside universe
    table = ora(hits, universe, collection, min_size=10, max_size=30)
    assert list(table.columns) == ENRICH_COLUMNS
    assert set(table["term"]) == {"enriched", "partial", "null"}
    N, n = 40, 9  # annotated universe genes; list genes among them
    rows = table.set_index("term")
    expected = {"enriched": (12, 8), "partial": (12, 2), "null": (15, 1)}
    for term, (K, k) in expected.items():
        assert rows.loc[term, "size"] == K
        assert rows.loc[term, "overlap"] == k
        assert rows.loc[term, "pvalue"] == pytest.approx(hypergeom_tail(k, N, K, n), rel=1e-12)
    assert rows.loc["enriched", "genes"] == ";".join(GENES[0:6] + GENES[10:12])
    assert table["term"].iloc[0] == "enriched"
    assert table["rank"].tolist() == [1, 2, 3]
    assert (table["analysis"] == "ora").all()


def test_ora_bh_adjustment(collection):
    table = ora(GENES[0:6] + [GENES[25]], GENES[:50], collection, min_size=1, max_size=100)
    p = table["pvalue"].to_numpy()  # sorted ascending
    m = len(p)
    expected = np.minimum.accumulate((p * m / np.arange(1, m + 1))[::-1])[::-1].clip(max=1)
    np.testing.assert_allclose(table["padj"], expected, rtol=1e-12)
    assert m == 5


def test_ora_size_filter_counts_universe_genes_only(collection):
    sizes = ora(GENES[:3], GENES, collection, min_size=12, max_size=12).set_index("term")["size"]
    assert sizes.to_dict() == {"enriched": 12, "partial": 12}


def test_ora_without_universe_uses_all_annotated_genes(collection):
    table = ora(GENES[0:6], None, {"a": GENES[0:12], "b": GENES[12:40]}, min_size=1)
    assert table.set_index("term").loc["a", "pvalue"] == pytest.approx(hypergeom_tail(6, 40, 12, 6))


def planted_ranking(seed=0, n_genes=600):
    rng = np.random.default_rng(seed)
    genes = [f"G{i:04d}" for i in range(n_genes)]
    scores = pd.Series(rng.normal(size=n_genes), index=genes)
    planted = list(rng.choice(genes, 25, replace=False))
    scores[planted] += 2.5
    sets = {f"random_{j}": list(rng.choice(genes, 25, replace=False)) for j in range(12)}
    sets["planted"] = planted
    return scores, sets


def test_prerank_ranks_planted_set_first_and_is_deterministic():
    scores, sets = planted_ranking()
    first = prerank(scores, sets, permutations=100, seed=11)
    second = prerank(scores, sets, permutations=100, seed=11)
    pd.testing.assert_frame_equal(first, second)
    top = first.iloc[0]
    assert top["term"] == "planted" and top["nes"] > 0 and top["rank"] == 1
    assert top["size"] == 25
    assert set(top["genes"].split(";")) <= set(sets["planted"])
    assert list(first.columns) == ENRICH_COLUMNS and len(first) == 13


def test_blitzgsea_engine_finds_the_planted_set_with_the_same_columns():
    scores, sets = planted_ranking()
    gseapy_table = prerank(scores, sets, permutations=100, seed=11)
    blitz = prerank(scores, sets, permutations=100, seed=11, engine="blitzgsea")
    assert list(blitz.columns) == ENRICH_COLUMNS and set(blitz["term"]) == set(gseapy_table["term"])
    top = blitz.iloc[0]
    assert top["term"] == "planted" and top["nes"] > 0 and top["padj"] < 0.05
    assert set(top["genes"].split(";")) <= set(sets["planted"])
    # Same sign of enrichment as gseapy for every set.
    merged = blitz.merge(gseapy_table, on="term")
    assert (np.sign(merged["es_x"]) == np.sign(merged["es_y"])).all()
    with pytest.raises(InputError, match="engine.*fgsea"):
        prerank(scores, sets, permutations=10, engine="fgsea")


def test_prerank_breaks_score_ties_by_gene_id_not_input_order():
    scores, sets = planted_ranking()
    tied = scores.round(1)  # many equal scores
    shuffled = tied.sample(frac=1, random_state=5)
    pd.testing.assert_frame_equal(prerank(tied, sets, permutations=20), prerank(shuffled, sets, permutations=20))


def test_prerank_size_filter_and_duplicate_ids():
    scores, sets = planted_ranking()
    assert prerank(scores, sets, permutations=10, min_size=26).empty
    with pytest.raises(ValueError, match="duplicate gene ids"):
        prerank(pd.concat([scores, scores.iloc[:2]]), sets, permutations=10)


def de_table():
    """Entrez-style table: genes 1..200, genes 1..15 called up, 16..30 called down."""
    ids = np.arange(1, 201)
    lfc = np.linspace(-0.5, 0.5, 200)
    lfc[:15] = np.linspace(4, 3, 15)
    lfc[15:30] = -np.linspace(3, 4, 15)
    return pd.DataFrame(
        {
            "gene_id": ids,
            "symbol": [f"Sym{i}" for i in ids],
            "log2fc": lfc,
            "called": [True] * 30 + [False] * 170,
        }
    )


def test_enrich_de_table_runs_up_down_and_prerank_on_tested_universe():
    de = de_table()
    sets = {
        "up_module": [str(i) for i in range(1, 21)] + ["99999"],  # 99999 untested: outside the universe
        "down_module": [str(i) for i in range(16, 36)],
        "background": [str(i) for i in range(100, 140)],
    }
    table = enrich_de_table(de, sets, permutations=50, seed=3)
    assert list(table.columns) == ENRICH_COLUMNS
    assert table["analysis"].unique().tolist() == ["ora_up", "ora_down", "prerank"]
    by = {name: part.set_index("term") for name, part in table.groupby("analysis")}
    # N = 200 - ... only annotated tested genes count: 1..35 and 100..139 = 75
    assert by["ora_up"].loc["up_module", "pvalue"] == pytest.approx(hypergeom_tail(15, 75, 20, 15))
    assert by["ora_down"].loc["down_module", "pvalue"] == pytest.approx(hypergeom_tail(15, 75, 20, 15))
    assert by["ora_up"].loc["up_module", "genes"].split(";")[0].startswith("Sym")
    assert by["prerank"].loc["up_module", "nes"] > 0 > by["prerank"].loc["down_module", "nes"]
    faithful = enrich_de_table(de, sets, faithful=True)
    assert faithful["analysis"].unique().tolist() == ["ora_up"]
    assert faithful.set_index("term").loc["up_module", "pvalue"] == pytest.approx(hypergeom_tail(15, 76, 21, 15))


def test_enrich_de_table_matches_symbols_case_insensitively(tmp_path):
    de = de_table()
    gmt = write_gmt(
        tmp_path / "enrichr.gmt",
        [
            "UP\t\t" + "\t".join(f"SYM{i}" for i in range(1, 21)),
            "OTHER\t\t" + "\t".join(f"SYM{i}" for i in range(100, 130)),
        ],
    )
    table = enrich_de_table(de, read_gmt(gmt), id_type="symbol", permutations=20)
    up = table[table["analysis"] == "ora_up"].set_index("term")
    assert up.loc["UP", "overlap"] == 15
    assert up.loc["UP", "genes"].split(";")[0] == "Sym1"
    with pytest.raises(InputError, match="id_type: expected one of entrez, symbol"):
        enrich_de_table(de, read_gmt(gmt), id_type="ensembl")
    with pytest.raises(InputError, match="DE table: missing column"):
        enrich_de_table(de.drop(columns="called"), read_gmt(gmt))


@pytest.mark.shared_data
def test_real_wehi_mouse_kegg_entrez(shared_data):
    sets = read_gmt(shared_data / "genesets" / "WEHI_Mm.c2.cp.kegg.v7.1.entrez.gmt.gz")
    assert len(sets) == 186
    assert all(name.startswith("KEGG_") for name in sets)
    assert all(gene.isdigit() for genes in sets.values() for gene in genes)


def test_prerank_p_values_never_zero():
    genes = [f"g{i:03d}" for i in range(200)]
    ranking = pd.Series(np.linspace(3, -3, 200), index=genes)
    sets = {"TOP": genes[:20], "RANDOM": genes[::10]}
    table = prerank(ranking, sets, permutations=50, min_size=5, seed=1)
    assert (table["pvalue"] >= 1 / 51).all() and (table["padj"] >= 1 / 51).all()
    assert table.loc[table["term"] == "TOP", "pvalue"].iloc[0] == pytest.approx(1 / 51)
