"""The benchmark scripts run end to end on tiny settings and print their tables (no timing is
asserted: only that each script works and reports what its docs say)."""
import os
import re
import subprocess
import sys

import pytest

import nnfast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(not nnfast.backends.compiled_available(),
                                reason="the benchmarks measure the compiled extension")
FASHION = "/usr/share/datasets/fashion-mnist"


def run_script(name, *args, tmp_path):
    # PYTHONPATH (set in conftest) points at the nnfast under test; the scripts import their
    # siblings (_tree, peak) from their own folder, which PYTHONSAFEPATH would hide
    env = dict(os.environ, MPLBACKEND="Agg", HOME=str(tmp_path))
    env.pop("PYTHONSAFEPATH", None)
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", name), *args],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       check=False)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_peak_prints_a_positive_roof_per_thread_count(tmp_path):
    out = run_script("peak.py", "--seconds", "0.05", "--threads", "1,2", tmp_path=tmp_path)
    rows = re.findall(r"^\s+(\d)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert [r[0] for r in rows] == ["1", "2"], out
    assert all(float(f32) > 0 and float(f64) > 0 for _, f32, f64 in rows), out


def test_compare_prints_ratio_quartiles_and_peak_share(tmp_path):
    out = run_script("compare.py", "--quick", "--threads", "1", "--shapes", "128x128x10",
                     tmp_path=tmp_path)
    assert "ratio IQR" in out and "OPENBLAS_CORETYPE=(unset)" in out, out
    row = re.search(r"^128x128x10\s+1\s+([\d.]+)\s+([\d.]+)\s.*?([\d.]+)x\s+([\d.]+)-([\d.]+)"
                    r"\s+(\d+)%$", out, re.M)
    assert row, out
    ratio, q1, q3 = (float(row.group(i)) for i in (3, 4, 5))
    assert float(row.group(1)) > 0 and float(row.group(2)) > 0 and q1 <= ratio <= q3, out


@pytest.mark.skipif(not os.path.isdir(FASHION),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_bench_train_trains_and_reports_accuracy(tmp_path):
    out = run_script("bench_train.py", "--quick", "--no-torch", "--no-jax", "--epochs", "1",
                     tmp_path=tmp_path)
    row = re.search(r"^nnfast\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%$", out,
                    re.M)
    assert row, out
    assert 0.5 < float(row.group(4)) <= 1.0, out   # 1 epoch on 10 000 images: ~80%
    assert 0 < float(row.group(5)) <= 100, out     # share of the measured FMA peak
    assert re.search(r"^FMA peak \d+ GFLOP/s float32 on \d+ thread\(s\)", out, re.M), out


@pytest.mark.skipif(not os.path.isdir(FASHION),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_bench_cnn_smoke_trains_lenet_and_reports_flops_peak_and_ratio(tmp_path):
    pytest.importorskip("torch", reason="PyTorch (bench extra) not installed")
    out = run_script("bench_cnn.py", "--quick", "--no-jax", "--threads", "1",
                     tmp_path=tmp_path)
    assert "Fashion-MNIST 3000 train / 1000 test, LeNet-5 class" in out, out
    # 758 520 multiply-adds per image (docstring), 3 000 images
    assert "4.55 GFLOP per epoch (1517040 per image)" in out, out
    rows = re.findall(r"^(nnfast|torch \S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
                      r"\s+([\d.]+)%$", out, re.M)
    assert len(rows) == 2 and rows[0][0] == "nnfast" and rows[1][0].startswith("torch"), out
    for _, median, first, total, acc, share in rows:
        assert float(median) > 0 and float(total) == pytest.approx(float(first), abs=0.011), out
        assert 0.3 < float(acc) <= 1.0, out    # 1 epoch on 3 000 images: about 65%
        assert 0 < float(share) <= 100, out
    ratio = re.search(r"^epoch-time ratio nnfast / torch \S+: ([\d.]+) .*issue 18's target: "
                      r"<= 0.25\)$", out, re.M)
    assert ratio and float(ratio.group(1)) > 0, out


def test_bench_cnn_flop_count_matches_the_layer_shapes():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import bench_cnn
    finally:
        sys.path.pop(0)
    # forward 86 400 + 153 600 + 41 640 MACs; weight grads the same; input grads without conv1
    fwd = 24 * 24 * 6 * 25 + 8 * 8 * 16 * 25 * 6 + 256 * 120 + 120 * 84 + 84 * 10
    assert fwd == 281_640
    assert bench_cnn.step_flops_per_image(28) == 2 * (2 * fwd + fwd - 86_400) == 1_517_040


def test_onnx_inference_prints_both_batches_and_ratios(tmp_path):
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    pytest.importorskip("onnxruntime", reason="ONNX Runtime (bench extra) not installed")
    out = run_script("onnx_inference.py", "--quick", "--repeats", "3", tmp_path=tmp_path)
    rows = re.findall(r"^\s*(\d+)\s+1\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+([\d.]+)$", out,
                      re.M)
    assert [r[0] for r in rows] == ["1", "256"], out
    for _, t_nn, t_ort, _, _, ratio in rows:
        assert float(t_nn) > 0 and float(t_ort) > 0, out
        assert abs(float(ratio) - float(t_nn) / float(t_ort)) <= 0.01 + 0.01 * float(ratio), out
    assert "medians of 3 interleaved rounds" in out, out


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads Linux's /proc")
def test_core_share_prints_both_situations_with_shares_and_bound(tmp_path):
    pytest.importorskip("threadpoolctl")
    out = run_script("core_share.py", "--calls", "3", "--shape", "64x64x64", tmp_path=tmp_path)
    rows = re.findall(r"^(alone|after numpy)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+"
                      r"([\d.]+)$", out, re.M)
    assert [r[0] for r in rows] == ["alone", "after numpy"], out
    for _, wall, share, _blas, bound, _ratio in rows:
        assert float(wall) > 0 and 0 <= float(share) <= 1 and 0.5 <= float(bound) <= 1, out


def test_bench_sklearn_prints_times_speedup_and_peak_share(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("threadpoolctl")
    out = run_script("bench_sklearn.py", "--repeats", "1", "--datasets", "digits", "--dtype",
                     "float32", "--threads", "1", tmp_path=tmp_path)
    row = re.search(r"^digits\s+1797x64\s+float32\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+(\d+)%$",
                    out, re.M)
    assert row, out
    assert float(row.group(1)) > 0 and float(row.group(2)) > 0, out
    assert 0 <= int(row.group(4)) <= 100, out


def test_latency_prints_every_contender_and_the_peak_share(tmp_path):
    out = run_script("latency.py", "--quick", "--repeats", "3", "--batches", "1,8",
                     tmp_path=tmp_path)
    header = re.search(r"^batch\s+threads\s+(.*?)\s+plan %peak$", out, re.M)
    assert header, out
    names = header.group(1).split()
    assert names[:4] == ["predict", "model(x)", "on_batch", "plan"] and "numpy" in names, out
    rows = re.findall(r"^\s*(\d+)\s+1\s+((?:[\d.]+\s+)+)(\d+)%$", out, re.M)
    assert [r[0] for r in rows] == ["1", "8"], out
    for _, times, share in rows:
        assert len(times.split()) == len(names) and all(float(v) > 0 for v in times.split())
        assert int(share) >= 0
    assert "median us of 3 interleaved rounds" in out, out
