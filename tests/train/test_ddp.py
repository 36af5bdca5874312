"""fit under ``torchrun --nproc_per_node=2`` (DistributedDataParallel, gloo on the CPU): the same weights on both
processes, one run folder written by rank 0, the monitor's statistics reduced across processes, findings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from babysit.history import History

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    import torch
    import torch.distributed as dist
    import babysit
    from babysit import models

    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)
    digits = babysit.data.load("digits", seed=0)
    model = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32, 32], seed=0,
                         bias_init=0.0)
    with torch.no_grad():
        model.fc1.bias.fill_(-10.0)  # dead ReLUs in the first hidden layer: a finding every rank must agree on
    h = babysit.fit(model, digits, optimizer="sgd", lr=0.05, epochs=3, batch_size=32, seed=0,
                    run_dir=out / "run", monitor={"every": 4})
    torch.save(model.state_dict(), out / f"weights{rank}.pt")
    (out / f"status{rank}.txt").write_text(f"{h.status} {len(h.epochs)} {h.num_steps} {len(h.findings)}")
    # activation statistics of each process's own examples, gathered and averaged at the readout
    stds = h.series_of("activation_moments", "std", "act2").values

    # your own loop under DDP: the Monitor on the inner model, end_epoch on every process at the same time
    net = models.build("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32], seed=1)
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    monitor = babysit.Monitor(net, opt, every=2)
    X, y = digits.X_train[rank::2], digits.y_train[rank::2]
    for start in range(0, 512, 32):
        loss = torch.nn.functional.cross_entropy(ddp(X[start:start + 32]), y[start:start + 32])
        opt.zero_grad(); loss.backward(); opt.step(); monitor.step(loss)
    monitor.end_epoch()
    own = monitor.history.series_of("activation_moments", "std", "act1").values
    (out / f"series{rank}.json").write_text(json.dumps({"fit": stds, "own": own}))
    dist.destroy_process_group()
    # torch's gloo backend can abort at interpreter exit even after destroy_process_group ("terminate called
    # without an active exception"), with or without babysit. Everything above is written by then; leave
    # without the interpreter's teardown.
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)
""")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
    out = tmp_path_factory.mktemp("ddp")
    script = out / "train.py"
    script.write_text(SCRIPT)
    result = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(script), str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def test_both_processes_end_with_the_same_weights(two_processes: Path) -> None:
    a = torch.load(two_processes / "weights0.pt", weights_only=True)
    b = torch.load(two_processes / "weights1.pt", weights_only=True)
    # DDP averages the gradients: every process takes the very same steps
    assert all(torch.equal(a[k], b[k]) for k in a)
    # each took its half of every epoch: 1078 examples -> 539 each -> 17 batches of 32 per epoch
    status0 = (two_processes / "status0.txt").read_text().split()
    status1 = (two_processes / "status1.txt").read_text().split()
    assert status0[:3] == status1[:3] == ["completed", "3", str(3 * 17)]
    assert int(status1[3]) == 0 and int(status0[3]) > 0  # only rank 0 diagnoses


def test_the_monitor_reduces_its_statistics_across_processes(two_processes: Path) -> None:
    a = json.loads((two_processes / "series0.json").read_text())
    b = json.loads((two_processes / "series1.json").read_text())
    # each process saw other examples, yet both hold the same numbers: the average over both processes
    for path in ("fit", "own"):
        assert len(a[path]) > 3 and a[path] == b[path], path


def test_one_run_folder_by_rank_0_with_the_findings(two_processes: Path) -> None:
    folders = sorted(p.name for p in two_processes.iterdir() if p.is_dir())
    assert folders == ["run"]  # rank 1 wrote no folder of its own
    h = History.load(two_processes / "run")
    assert h.status == "completed" and len(h.epochs) == 3
    # no page drawn under DDP unless asked (rank 0 alone drawing would hold the other at its next collective)
    assert not (two_processes / "run" / "report.html").exists()
    assert "dead_units" in {f["code"] for f in h.findings}
    # the epoch's accuracy counts both processes' examples (reduced once per epoch)
    assert h.epochs[0]["steps"] == 17
    # the monitor's series were recorded (and reduced across both processes at each readout)
    assert h.series_of("update_ratio", target="fc2.weight").steps == list(range(1, 52, 4))
    dead = h.series_of("dead_fraction", target="act1").values
    assert dead and min(dead) > 0.8
