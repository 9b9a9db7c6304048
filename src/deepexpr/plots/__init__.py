"""Figures drawn only from the result tables the workflow wrote.

- :mod:`deepexpr.plots.style`: house style, atomic ``savefig``, table readers that check columns.
- :mod:`deepexpr.plots.de`: NB-VAE / DESeq2 figures (latent space, training curves, LFC agreement,
  volcanoes, NA genes, seed spread, credible intervals, ROC/PR against simulated truth).
- :mod:`deepexpr.plots.enrich`: gene-set enrichment dot plots.

Each module's ``CAPTIONS`` holds one honest sentence per figure; ``resources/report/<name>.rst``
carries the same text for ``snakemake --report``.
"""
