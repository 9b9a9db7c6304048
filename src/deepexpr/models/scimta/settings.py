"""scIMTA's settings table: the switches C1-C7 of docs/models/scimta.md and every setting's default per mode."""

SWITCHES = {
    "search_objective": ("nmi_min", "silhouette"),  # C1
    "recon_loss": ("softmax_ce", "nb", "zinb"),  # C2
    "dec_kl": ("q_p", "p_q"),  # C3
    "learn_centres": (False, True),  # C4
    "target_refresh": ("stale", "current"),  # C5
    "n_clusters_from": ("labels", "leiden"),  # C6
    "graph": ("dense", "sparse"),  # C7
    # GCN input: the original's z-scored HVGs, or the PCA scores the kNN graph is built on (scaled
    # by the first PC's sd): 50 inputs keep each mini-batch's gather small and the first layer stable.
    "encoder_input": ("zscored_hvg", "pca"),
    "gene_graph": (False, True),  # extended mode: gene graph reconstructed jointly
    # Cell graph over batches (with a registered batch_key): one kNN search over all cells (the
    # original), or batch-balanced kNN (BBKNN, Polanski et al. 2020), ceil(k / batches) neighbours
    # from each batch, so that a batch effect does not cut the graph into one component per batch.
    "batch_graph": ("ignore", "balanced"),
    # Expression decoder fed the cell's batch as well as z (as scVI's), so that z need not encode
    # the batch to reconstruct the counts; only with a registered batch_key and two or more batches.
    "decoder_batch": (False, True),
    # DEC centres: k-means on z (the original), or the mean z of each cluster of the Leiden
    # partition K was chosen from (when it was: C6), so the clustering starts from that partition.
    "centre_init": ("kmeans", "leiden"),
}

#: Every setting per mode. Faithful = the released scMGCA defaults (500 HVGs are chosen by the
#: workflow's data preparation, not here); corrected epochs are CPU-sized, see docs/decisions/scimta.md.
MODE_DEFAULTS = {
    "faithful": {
        "search_objective": "nmi_min",
        "recon_loss": "softmax_ce",
        "dec_kl": "q_p",
        "learn_centres": False,
        "target_refresh": "stale",
        "n_clusters_from": "labels",
        "graph": "dense",
        "encoder_input": "zscored_hvg",
        "gene_graph": False,
        "batch_graph": "ignore",
        "decoder_batch": False,
        "centre_init": "kmeans",
        "k": 15,
        "n_pcs": 50,
        "metric": "euclidean",
        "surf_steps": 2,
        "restart": 0.98,
        "hidden": 128,
        "latent_dim": 15,
        "graph_hidden": 32,
        "decoder_hidden": [128, 256, 512],
        "gene_dim": 32,
        "gene_k": 10,
        "dropout": 0.2,
        "weight_graph": 0.3,
        "weight_expression": 1.0,
        "weight_cluster": 1.5,
        "weight_gene": 0.0,
        "pretrain_epochs": 1000,
        "cluster_epochs": 300,
        "lr_pretrain": 1e-4,
        "lr_cluster": 5e-4,
        "refresh_every": 10,
        "label_tol": 0.0,
        "batch_size": None,
        "fanout": None,
        "negatives": 0,
        "n_clusters": None,
        "leiden_resolutions": [0.2, 0.4, 0.6, 0.8, 1.0, 1.5],
    },
    "corrected": {
        "search_objective": "silhouette",
        "recon_loss": "nb",
        "dec_kl": "p_q",
        "learn_centres": True,
        "target_refresh": "current",
        "n_clusters_from": "leiden",
        "graph": "sparse",
        "encoder_input": "pca",
        "gene_graph": True,
        "batch_graph": "balanced",
        "decoder_batch": True,
        "centre_init": "leiden",
        "k": 15,
        "n_pcs": 50,
        "metric": "euclidean",
        "surf_steps": 2,
        "restart": 0.98,
        "hidden": 128,
        "latent_dim": 15,
        "graph_hidden": 32,
        "decoder_hidden": [128],
        "gene_dim": 32,
        "gene_k": 10,
        "dropout": 0.2,
        "weight_graph": 0.3,
        "weight_expression": 1.0,
        "weight_cluster": 1.5,
        "weight_gene": 0.3,
        "pretrain_epochs": 100,
        "cluster_epochs": 60,
        "lr_pretrain": 1e-3,
        "lr_cluster": 5e-4,
        "refresh_every": 5,
        "label_tol": 0.001,
        "batch_size": 1024,
        "fanout": 10,
        "negatives": 5,
        "n_clusters": None,
        "leiden_resolutions": [0.2, 0.4, 0.6, 0.8, 1.0, 1.5],
    },
}
