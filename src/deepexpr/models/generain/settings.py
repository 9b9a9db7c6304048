"""GeneRAIN's settings table: the switches of docs/models/generain.md and every setting's default per mode.

Model switches (R4-R8) and hyper-parameters go to :class:`~deepexpr.models.generain.GeneRAIN`;
the data switches (R1-R3, R9) are arguments of :mod:`deepexpr.data.archs4` and listed in
``DATA_MODE_DEFAULTS`` so the workflow reads both modes from one place.
"""

from deepexpr.errors import InputError

VARIANTS = ("gpt", "bert_genes", "bert_expression")

SWITCHES = {
    "accumulation": ("sum", "mean"),  # R4
    "lr_schedule": ("onecycle_epoch", "warmup_cosine"),  # R5
    "mask_token": ("pad_id", "dedicated"),  # R6
    "gpt_zero_labels": ("included", "ignored"),  # R7
    "rank_ties": ("argsort", "stable"),  # R8
    # BERT-expression's levels: the within-sample quantile of the gene's bin (the original), or of
    # the bin centred and scaled by the gene's training mean and sd (so the gene's own typical level
    # no longer predicts its masked level). Not a flaw fix: same default in both modes
    # (docs/decisions/generain.md: it did not raise planted-module recovery).
    "expression_levels": ("within_sample", "gene_centred"),
    # BERT-expression's loss on a masked level: cross-entropy against the level as one of n_levels
    # unrelated classes (the original), or against a Gaussian over the neighbouring levels
    # (sd ``level_label_sd`` levels), so a prediction one level off is nearly right: with the
    # one-hot target the tiny models of sim_archs4 never learnt co-expression (docs/decisions/generain.md).
    "level_loss": ("categorical", "ordinal"),
}

_ARCHITECTURE = {
    "d_model": 200,
    "n_layers": 6,
    "n_heads": 4,
    "d_ff": 800,
    "dropout": 0.05,
    "layer_norm_eps": 1e-10,
    "seq_len": 2048,
    "n_levels": 100,
    "mask_prob": 0.15,
    "level_label_sd": 5.0,
    "batch_size": 12,
    "grad_accumulation": 5,
    "weight_decay": 0.01,
    "eval_every": 100,
}

MODE_DEFAULTS = {
    "faithful": {
        "accumulation": "sum",
        "lr_schedule": "onecycle_epoch",
        "mask_token": "pad_id",
        "gpt_zero_labels": "included",
        "rank_ties": "argsort",
        "expression_levels": "within_sample",
        "level_loss": "categorical",
        **_ARCHITECTURE,
        "lr": 1e-4,
        "warmup_fraction": 0.2,
        "final_lr_fraction": 0.1,
        "max_steps": 100_000,
    },
    "corrected": {
        "accumulation": "mean",
        "lr_schedule": "warmup_cosine",
        "mask_token": "dedicated",
        "gpt_zero_labels": "ignored",
        "rank_ties": "stable",
        "expression_levels": "within_sample",
        "level_loss": "ordinal",
        **_ARCHITECTURE,
        "lr": 1e-4,
        "warmup_fraction": 0.05,
        "final_lr_fraction": 0.1,
        "max_steps": 100_000,
    },
}

#: The data side of the switch table (arguments of deepexpr.data.archs4).
DATA_SWITCHES = {
    "binning": ("rank", "boundaries"),  # R1
    "duplicates": ("max_mean", "sum"),  # R2
    "split": ("sample", "series"),  # R3
}
DATA_MODE_DEFAULTS = {
    "faithful": {"binning": "rank", "duplicates": "max_mean", "split": "sample", "n_bins": 2000},
    "corrected": {
        "binning": "boundaries",
        "duplicates": "sum",
        "split": "series",
        "n_bins": 2000,
        "boundary_fraction": 0.1,
    },
}


def variant_settings(config: dict, dataset: str, variant: str) -> dict:
    """Model settings of one variant: the block's ``model`` keys, then the variant's own (None =
    the mode's default), for the train_generain rule and the torchrun entry point alike."""
    if "generain" not in config["datasets"].get(dataset, {}):
        raise InputError("config", f"datasets.{dataset}.generain: no GeneRAIN block for dataset {dataset!r}")
    block = config["datasets"][dataset]["generain"]
    if variant not in block["variants"]:
        raise InputError("config", f"datasets.{dataset}.generain.variants: no variant {variant!r} "
                         f"(configured: {sorted(block['variants'])})")  # fmt: skip
    settings = {k: v for k, v in block["model"].items() if v is not None}
    settings.update({k: v for k, v in block["variants"][variant].items() if v is not None})
    return settings
