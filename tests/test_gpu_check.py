"""benchmarks/gpu_check.py runs anywhere: on a machine without CUDA it says so and runs a tiny size."""

import importlib.util
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_runs_and_reports(tmp_path, capsys):
    gpu_check = load_script()
    assert gpu_check.main(["--sizes", "48", "--steps", "2", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    info = json.loads((tmp_path / "gpu_check.json").read_text())
    offered = [p for p, _ in gpu_check.precisions(torch.device("cpu"))]
    assert [r["precision"] for r in info["rows"]] == offered and offered[0] == "fp32"
    for row in info["rows"]:
        assert row["side"] == 48 and row["steps"] == 2 and row["status"] == "completed"
        assert row["loss_fp32"] > 0 and Path(row["image"]).is_file()
    assert "| 48 px | fp32 (reference) |" in printed and "+0.0%" in printed
    if not torch.cuda.is_available():
        assert "no CUDA GPU here" in printed and info["gpu"] is None
