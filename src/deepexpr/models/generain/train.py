"""Train one GeneRAIN model like the workflow's ``train_generain`` rule, launchable by torchrun.

The rule trains single-process; this entry point trains the same model (same binned directory,
settings from the same config, same output files) on several GPUs of one node::

    PYTHONPATH=src torchrun --standalone --nproc_per_node=4 -m deepexpr.models.generain.train \\
        --configfile config/paper.yaml --dataset archs4 --mode corrected --variant gpt --seed 0

Every process trains (:meth:`GeneRAIN.train` reads the torchrun environment); rank 0 writes the
model, history and GeneRAIN-vec into the rule's output folder. Without torchrun it trains in one
process.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch.distributed as dist
import yaml

from deepexpr.config import load_schema, validate_config
from deepexpr.genes import write_embedding, write_word2vec
from deepexpr.io import write_table
from deepexpr.models.generain.distributed import Ranks
from deepexpr.models.generain.model import GeneRAIN
from deepexpr.models.generain.settings import variant_settings
from deepexpr.workflow import LOG_FORMAT

# Relative to the workflow directory, where torchrun is started (as snakemake is).
DEFAULT_CONFIG = Path("config/config.yaml")
SCHEMA = Path("config/schema.yaml")


def merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``, nested mappings merged key by key (as Snakemake's --configfile does)."""
    merged = dict(base)
    for key, value in update.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge(merged[key], value) if nested else value
    return merged


def load_config(configfiles: list[Path]) -> dict:
    """The workflow config: config/config.yaml, then each ``configfiles`` over it, validated with defaults."""
    config = {}
    for path in [DEFAULT_CONFIG, *configfiles]:
        config = merge(config, yaml.safe_load(Path(path).read_text()) or {})
    return validate_config(config, load_schema(SCHEMA))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", type=Path, action="append", default=[],
                        help="config file(s) over config/config.yaml, as given to snakemake")  # fmt: skip
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--mode", required=True, choices=["faithful", "corrected"])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=Path("results"), help="the workflow's results folder")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: the config's device)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> GeneRAIN:
    """Train and (on rank 0) write the rule's outputs; return the trained model."""
    args = parse_args(argv)
    ranks = Ranks.from_env()
    # One log stream is enough: the other ranks report only warnings and errors.
    logging.basicConfig(level=logging.INFO if ranks.main else logging.WARNING, format=LOG_FORMAT)
    config = load_config(args.configfile)
    settings = variant_settings(config, args.dataset, args.variant)
    root = args.results / args.dataset
    out = root / "models" / "generain" / args.mode / f"{args.variant}_seed{args.seed}"
    model = GeneRAIN(root / "generain" / args.mode / "binned", variant=args.variant, mode=args.mode,
                     seed=args.seed, **settings)  # fmt: skip
    joined_here = not dist.is_initialized()  # a caller's process group is left to the caller
    try:
        model.train(
            device=args.device or config["device"],
            checkpoint_dir=out / "checkpoints",
            checkpoint_every=config["datasets"][args.dataset]["generain"]["checkpoint_every"],
            progress_bar=False,
        )
    finally:
        if joined_here and dist.is_initialized():
            dist.destroy_process_group()
    if ranks.main:
        logging.getLogger(__name__).info("training: %s", model.training_info)
        model.save(out / "model.pt")
        write_table(model.history, out / "history.tsv")
        embedding = model.get_gene_embedding()
        write_embedding(embedding, out / "embedding.tsv")
        write_word2vec(embedding, out / "GeneRAIN-vec.txt.gz")
    return model


if __name__ == "__main__":
    main()
