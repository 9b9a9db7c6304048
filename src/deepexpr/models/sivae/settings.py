"""siVAE's settings table: the switches of docs/models/sivae.md (S1-S6) and every setting's default per mode.

S5 (which baselines run beside siVAE) and S7 (framework) are workflow and implementation
choices, not model settings.
"""

SWITCHES = {
    # S2: which cells the feature (gene) input is built from
    "feature_cells_from": ("all", "train"),
    "feature_reduction": ("subsample", "pca"),
    # S3: what drives the KL warm-up of the joint stage
    "beta_warmup": ("cell_counter", "global"),
    # S6: whether a non-variational run still samples from a Gaussian encoder
    "encoder_type": ("always_gaussian", "follow_vae"),
    "likelihood": ("gaussian", "nb"),
}

#: Every setting per mode. Faithful follows the original's fetal-liver run (with the gamma
#: that the original never passed set to 0, S1); corrected applies gamma, builds the feature
#: input from training cells only and feeds gene mini-batches (S2), warms beta up on the global
#: step (S3) and uses a deterministic encoder when ``vae`` is False (S6).
_COMMON = {
    "likelihood": "gaussian",
    "vae": True,
    "latent_dim": 2,
    "hidden": (1024, 512, 128),
    "feature_dim": 10_000,
    "train_fraction": 0.8,
    "cell_epochs": 100,
    "feature_epochs": 100,
    "joint_epochs": 100,
    "batch_size": 128,
    "warmup_steps": 1000,
    "lr": 2e-3,
    "l2": 1e-3,
    "feature_l2": 1e-5,
    "grad_clip": 5.0,
}

MODE_DEFAULTS = {
    "faithful": {
        **_COMMON,
        "gamma": 0.0,
        "feature_cells_from": "all",
        "feature_reduction": "subsample",
        "gene_batch_size": 0,  # 0 = all genes every step
        "beta_warmup": "cell_counter",
        "encoder_type": "always_gaussian",
    },
    "corrected": {
        **_COMMON,
        "gamma": 0.05,
        "feature_cells_from": "train",
        "feature_reduction": "subsample",
        "gene_batch_size": 512,
        "beta_warmup": "global",
        "encoder_type": "follow_vae",
    },
}
