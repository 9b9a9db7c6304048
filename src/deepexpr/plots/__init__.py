"""Figures drawn only from the result tables the workflow wrote.

- :mod:`deepexpr.plots.style`: house style, atomic ``savefig``, table readers that check columns.
- :mod:`deepexpr.plots.training`: every model's training figures (NB-VAE latent space beside the
  PCA baseline; NB-VAE and GENEX loss curves).
- :mod:`deepexpr.plots.de`: NB-VAE / DESeq2 figures (LFC agreement, volcanoes, NA genes, seed
  spread, credible intervals, ROC/PR against simulated truth).
- :mod:`deepexpr.plots.enrich`: gene-set enrichment dot plots.
- :mod:`deepexpr.plots.integration`: batch-correction figures (UMAPs, value histograms, truth
  metrics, scIB table).
- :mod:`deepexpr.plots.explain`: GENEX attribution heatmaps, dot plots and completeness.

Each module's ``CAPTIONS`` holds one honest sentence per figure; ``resources/report/<name>.rst``
carries the same text for ``snakemake --report``.
"""
