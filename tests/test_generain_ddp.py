"""GeneRAIN data-parallel training: two real processes (gloo on CPU) through the torchrun entry point."""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from deepexpr.data.archs4 import BinnedDataset
from test_generain_model import binned_dataset

REPO = Path(__file__).resolve().parents[1]
WORLD_SIZE = 2
TIMEOUT_S = 180
# 4 steps of 2 micro-batches of 8 on each rank: two epochs of a 32-sample shard.
TINY_BLOCK = {
    "checkpoint_every": 2,
    "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "seq_len": 64, "batch_size": 8,
              "grad_accumulation": 2, "eval_every": 2, "max_steps": 4},
    "variants": {"gpt": {}},
}  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_thread")


class Stop(Exception):
    pass


def _train_rank(rank: int, port: int, tmp: Path) -> None:
    """One torchrun-like process: an uninterrupted run (results_a) and one stopped after the step-2
    checkpoint and resumed (results_b); writes what it saw and its final weights to rank<k>.pt."""
    os.environ.update(WORLD_SIZE=str(WORLD_SIZE), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    os.chdir(REPO)
    from deepexpr.models.generain import train as train_cli
    from deepexpr.models.generain.model import GeneRAIN

    record = {"shards": [], "seen": [], "saves": 0, "checkpoint_writes": 0}
    rows, batches, save, write = GeneRAIN._rows, GeneRAIN._epoch_batches, GeneRAIN.save, GeneRAIN._write_checkpoint

    def recording_rows(self, dataset, index):
        if dataset is self.train_data:
            record["seen"].append(dataset.rows[np.sort(index)])
        return rows(self, dataset, index)

    def recording_batches(self, epoch, ranks=None):
        shard = batches(self, epoch, ranks)
        record["shards"].append((epoch, np.concatenate(shard)))
        return shard

    def counting_save(self, path):
        record["saves"] += 1
        save(self, path)

    def counting_write(self, *args):
        record["checkpoint_writes"] += 1
        write(self, *args)

    GeneRAIN._rows, GeneRAIN._epoch_batches = recording_rows, recording_batches
    GeneRAIN.save, GeneRAIN._write_checkpoint = counting_save, counting_write
    dist.init_process_group("gloo")
    arguments = ["--configfile", str(tmp / "tiny.yaml"), "--dataset", "sim_archs4", "--mode", "corrected",
                 "--variant", "gpt", "--device", "cpu"]  # fmt: skip
    uninterrupted = train_cli.main([*arguments, "--results", str(tmp / "results_a")])
    observed = {key: list(value) if isinstance(value, list) else value for key, value in record.items()}

    shared_write = GeneRAIN._write_shared_checkpoint

    def stop_after_step_2(self, checkpoint, fingerprint, max_steps, payload, ranks):
        shared_write(self, checkpoint, fingerprint, max_steps, payload, ranks)
        if payload["state"]["step"] == 2:
            raise Stop

    GeneRAIN._write_shared_checkpoint = stop_after_step_2
    try:
        train_cli.main([*arguments, "--results", str(tmp / "results_b")])
    except Stop:
        pass
    GeneRAIN._write_shared_checkpoint = shared_write
    resumed = train_cli.main([*arguments, "--results", str(tmp / "results_b")])
    dist.destroy_process_group()
    torch.save({
        **observed,
        "weights": uninterrupted.module.state_dict(), "history": uninterrupted.history,
        "resumed_weights": resumed.module.state_dict(), "resumed_history": resumed.history,
        "training_info": uninterrupted.training_info,
    }, tmp / f"rank{rank}.pt")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    (tmp / "data").mkdir()
    binned = binned_dataset(tmp / "data", 80, 60, 2, 10)
    for results in ("results_a", "results_b"):
        shutil.copytree(binned, tmp / results / "sim_archs4" / "generain" / "corrected" / "binned")
    (tmp / "tiny.yaml").write_text(yaml.safe_dump({"datasets": {"sim_archs4": {"generain": TINY_BLOCK}}}))
    context = mp.start_processes(_train_rank, args=(free_port(), tmp), nprocs=WORLD_SIZE, join=False,
                                 start_method="spawn")  # fmt: skip
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"2-process training did not finish in {TIMEOUT_S} s")
    return tmp, [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD_SIZE)]


def test_ranks_train_on_disjoint_shards(ddp_run):
    tmp, ranks = ddp_run
    n_train = len(BinnedDataset(tmp / "results_a" / "sim_archs4" / "generain" / "corrected" / "binned"))
    epochs = [dict(r["shards"]) for r in ranks]
    assert set(epochs[0]) == set(epochs[1]) and len(epochs[0]) >= 2
    for epoch in epochs[0]:
        first, second = epochs[0][epoch], epochs[1][epoch]
        assert len(first) == len(second) == n_train // WORLD_SIZE
        assert not set(first) & set(second)  # a sample goes to one rank per epoch
    assert set(epochs[0][0]) != set(epochs[0][1])  # reshuffled each epoch (set_epoch)
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 4 * 2  # steps x micro-batches
    per_epoch = math.ceil(n_train // WORLD_SIZE / TINY_BLOCK["model"]["batch_size"])
    first_epoch = [np.concatenate(r["seen"][:per_epoch]) for r in ranks]
    assert len(first_epoch[0]) == n_train // WORLD_SIZE and not set(first_epoch[0]) & set(first_epoch[1])


def test_weights_equal_and_written_once(ddp_run):
    tmp, ranks = ddp_run
    for name, weight in ranks[0]["weights"].items():
        torch.testing.assert_close(ranks[1]["weights"][name], weight, rtol=0, atol=0, msg=name)
    assert [r["saves"] for r in ranks] == [1, 0]
    assert ranks[0]["checkpoint_writes"] == 2 and ranks[1]["checkpoint_writes"] == 0
    out = tmp / "results_a" / "sim_archs4" / "models" / "generain" / "corrected" / "gpt_seed0"
    assert {p.name for p in out.iterdir()} == {"model.pt", "history.tsv", "embedding.tsv",
                                                "GeneRAIN-vec.txt.gz", "checkpoints"}  # fmt: skip
    history = ranks[0]["history"]
    assert list(history["step"]) == [2, 4] and np.isfinite(history[["train_loss", "val_loss"]]).all().all()
    assert history.equals(ranks[1]["history"])  # losses are means over both ranks
    info = ranks[0]["training_info"]
    assert info["world_size"] == WORLD_SIZE and info["samples_per_step"] == 8 * 2 * WORLD_SIZE


def test_interrupted_run_resumes_on_every_rank(ddp_run):
    _, ranks = ddp_run
    for rank in ranks:
        for name, weight in rank["weights"].items():
            torch.testing.assert_close(rank["resumed_weights"][name], weight, rtol=0, atol=0, msg=name)
        assert rank["resumed_history"].equals(rank["history"])
