"""deepexpr: interpretable deep generative models of gene expression."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deepexpr")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"
