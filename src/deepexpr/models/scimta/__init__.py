"""scIMTA: graph-autoencoder clustering with gene communities (the released scMGCA code, corrected).

:class:`SCIMTA` (:mod:`.model`) is the user-facing model, :mod:`.module` the torch network,
:mod:`.graph` the cell and gene graphs, :mod:`.clustering` the label-free Leiden resolution,
:mod:`.impute` the ALRA-like low-rank imputation, :mod:`.settings` the switches and defaults;
:class:`StreamedSCIMTA` (:mod:`.streamed`, on the partition store of :mod:`.store`) trains out of core.
"""

from deepexpr.models.scimta.model import SCIMTA
from deepexpr.models.scimta.streamed import StreamedSCIMTA

__all__ = ["SCIMTA", "StreamedSCIMTA"]
