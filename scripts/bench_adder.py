"""Benchmark: our adder layers vs the straightforward unfold-and-broadcast code.

For each layer shape (ResNet-20 at batch 64, LeNet-5 at batch 128) both
implementations run forward + backward (output, input gradient and the
adaptive-LR-scaled weight gradient) on the same random data, each in a fresh
subprocess:

* ``time`` — the median wall time of ``--repeat`` runs after one warm-up;
* ``peak`` — the peak resident memory above the resident set just before the
  timed runs (Linux: ``/proc/self/clear_refs`` resets ``VmHWM`` after the
  warm-up; torch's CPU allocator returns large blocks to the OS, so this is
  the memory one forward + backward needs, inputs excluded; ratios are
  shown only where the naive code needs >= 1 MiB, below that the number is
  allocator noise);
* ``max rel diff`` — ``max |ours - naive| / max |naive|`` over the output and
  both gradients (float32, same inputs).

The baseline is written here (the reference AdderNet code's maths); it
materialises ``[O, K, N*L]`` tensors, which is exactly what ours avoids.

Usage: ``python scripts/bench_adder.py [--repeat R] [--threads T] [--only NAME] [--json PATH]``;
``ADDERHW_ADDER_BACKEND=torch`` measures the PyTorch fallback kernels instead of the C ones.
Besides printing them, it writes its table and summary to ``--json`` (default
``build/bench/adder.json``) for ``python -m scripts.results collect --bench``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from quant.base.intops import conv_out_size
from scripts.results import BenchTable, bench_command, bench_json_option, write_bench

__all__ = ["CASES", "naive_forward_backward", "main"]

# name, batch, in_ch, out_ch, kernel, stride, padding, size (0 = linear layer)
CASES = [
    ("resnet20.layer1.conv", 64, 16, 16, 3, 1, 1, 32),
    ("resnet20.layer2.0.conv1", 64, 16, 32, 3, 2, 1, 32),
    ("resnet20.layer2.0.downsample", 64, 16, 32, 1, 2, 0, 32),
    ("resnet20.layer2.conv", 64, 32, 32, 3, 1, 1, 16),
    ("resnet20.layer3.0.conv1", 64, 32, 64, 3, 2, 1, 16),
    ("resnet20.layer3.conv", 64, 64, 64, 3, 1, 1, 8),
    ("lenet5.conv1", 128, 1, 6, 5, 1, 2, 28),
    ("lenet5.conv2", 128, 6, 16, 5, 1, 0, 14),
    ("lenet5.fc1", 128, 400, 120, 1, 1, 0, 0),
    ("lenet5.fc2", 128, 120, 84, 1, 1, 0, 0),
    ("lenet5.fc3", 128, 84, 10, 1, 1, 0, 0),
]
ETA = 0.2
#: Peak-memory ratios are reported only where the naive code needs at least this much (KiB).
MIN_PEAK_KIB = 1024


def naive_forward_backward(x, w, g, stride, padding, eta=ETA):
    """Reference maths with broadcast ``[O, K, N*L]`` tensors; returns ``(y, dx, dw)``."""
    import torch
    import torch.nn.functional as F

    if x.dim() == 2:  # linear layer: one "pixel" per sample
        cols = x.t()  # [K, N]
        n, size, ohw = x.shape[0], None, 1
    else:
        n, _, h, wd = x.shape
        kh, kw = w.shape[2:]
        cols3 = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # [N, K, L]
        ohw = cols3.shape[2]
        cols = cols3.permute(1, 0, 2).reshape(cols3.shape[1], -1)  # [K, N*L]
        size = (h, wd)
    o = w.shape[0]
    wc = w.reshape(o, -1)  # [O, K]
    y = -(cols.unsqueeze(0) - wc.unsqueeze(2)).abs().sum(1)  # [O, N*L]
    if x.dim() == 2:
        gc = g.t()  # [O, N]
    else:
        gc = g.reshape(n, o, ohw).permute(1, 0, 2).reshape(o, -1)
    diff = cols.unsqueeze(0) - wc.unsqueeze(2)  # [O, K, N*L]  X - W
    dw = (diff * gc.unsqueeze(1)).sum(2)
    dw = dw * (eta * math.sqrt(dw.numel()) / dw.norm(p=2).clamp(min=1e-12))
    dcols = (-(diff.clamp(-1, 1)) * gc.unsqueeze(1)).sum(0)  # [K, N*L]
    if x.dim() == 2:
        return y.t(), dcols.t(), dw
    y = y.reshape(o, n, ohw).permute(1, 0, 2).reshape(g.shape)
    dcols3 = dcols.reshape(-1, n, ohw).permute(1, 0, 2)
    dx = F.fold(dcols3, size, w.shape[2:], padding=padding, stride=stride)
    return y, dx, dw.reshape(w.shape)


def _ours_forward_backward(x, w, g, stride, padding):
    import torch

    from quant.net.layers import adder_conv2d, adder_linear

    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    y = adder_linear(x, w, ETA) if x.dim() == 2 else adder_conv2d(x, w, stride, padding, ETA)
    y.backward(g)
    return y.detach(), x.grad, w.grad


def _make_inputs(case, seed=0):
    import torch

    name, n, c, o, k, s, p, size = case
    gen = torch.Generator().manual_seed(seed)
    if size == 0:
        x = torch.rand(n, c, generator=gen) * 3.0
        w = torch.randn(o, c, generator=gen)
        g = torch.randn(n, o, generator=gen)
    else:
        x = torch.rand(n, c, size, size, generator=gen) * 3.0  # post-ReLU-like activations
        w = torch.randn(o, c, k, k, generator=gen)
        oh = conv_out_size(size, k, s, p)
        g = torch.randn(n, o, oh, oh, generator=gen)
    return x, w, g, (s, s), (p, p)


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _worker(case_name: str, impl: str, repeat: int, threads: int, out: str) -> None:
    import torch

    torch.set_num_threads(threads)
    case = next(c for c in CASES if c[0] == case_name)
    x, w, g, stride, padding = _make_inputs(case)
    if impl == "naive":
        def run():
            return naive_forward_backward(x, w, g, stride, padding)
    else:
        def run():
            return _ours_forward_backward(x, w, g, stride, padding)
    result = run()  # warm-up (and the outputs compared by the parent)
    torch.save([t.contiguous() for t in result], out + ".pt")
    del result
    with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM to the current RSS
        fh.write("5")
    base = _rss_kib("VmRSS")
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    peak = _rss_kib("VmHWM") - base
    with open(out, "w") as fh:
        json.dump({"time_s": statistics.median(times), "peak_kib": peak}, fh)


def _run_case(case_name, impl, repeat, threads, tmp):
    out = os.path.join(tmp, f"{case_name}.{impl}.json")
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cmd = [sys.executable, __file__, "--worker", case_name, impl, str(repeat), str(threads), out]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{case_name}/{impl} failed:\n{proc.stderr}")
    with open(out) as fh:
        return json.load(fh), out + ".pt"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="run only cases whose name contains this")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    bench_json_option(parser, "adder")
    args = parser.parse_args(argv)
    if args.worker:
        name, impl, repeat, threads, out = args.worker
        _worker(name, impl, int(repeat), int(threads), out)
        return 0
    if not Path("/proc/self/clear_refs").exists():
        print("bench_adder: needs Linux /proc/self/clear_refs to measure peak memory", file=sys.stderr)
        return 1
    import torch

    from quant.net import native

    cases = [c for c in CASES if args.only is None or args.only in c[0]]
    print(f"# adder layer forward+backward: ours ({native.backend()} kernels) vs naive broadcast "
          f"(torch {torch.__version__}, {args.threads} threads, median of {args.repeat}, float32, eta={ETA})")
    print()
    header = ("| layer | N | C→O | k/s/p | size | naive time_ms | ours time_ms | speedup | naive peak_MiB | "
              "ours peak_MiB | memory ratio | max rel diff |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    speedups, mem_ratios, worst, rows = [], [], 0.0, []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_adder_") as tmp:
        for case in cases:
            name, n, c, o, k, s, p, size = case
            naive, naive_pt = _run_case(name, "naive", args.repeat, args.threads, tmp)
            ours, ours_pt = _run_case(name, "ours", args.repeat, args.threads, tmp)
            ref = torch.load(naive_pt, weights_only=True)
            got = torch.load(ours_pt, weights_only=True)
            diff = max(float((a - b).abs().max() / b.abs().max().clamp(min=1e-30)) for a, b in zip(got, ref))
            worst = max(worst, diff)
            sp = naive["time_s"] / ours["time_s"]
            speedups.append(sp)
            mr = None
            if naive["peak_kib"] >= MIN_PEAK_KIB:
                mr = naive["peak_kib"] / max(ours["peak_kib"], 4)
                mem_ratios.append(mr)
                mr_text = f"{mr:.1f}x"
            else:  # below allocator/page noise: no meaningful ratio
                mr_text = "n/a"
            shape = f"{size}x{size}" if size else "linear"
            print(f"| {name} | {n} | {c}→{o} | {k}/{s}/{p} | {shape} | {naive['time_s'] * 1e3:.1f} | "
                  f"{ours['time_s'] * 1e3:.1f} | {sp:.1f}x | {naive['peak_kib'] / 1024:.1f} | "
                  f"{ours['peak_kib'] / 1024:.1f} | {mr_text} | {diff:.1e} |", flush=True)
            rows.append(dict(layer=name, batch=n, in_ch=c, out_ch=o, kernel=k, stride=s, padding=p, size=shape,
                             naive_time_ms=round(naive["time_s"] * 1e3, 1), ours_time_ms=round(ours["time_s"] * 1e3, 1),
                             speedup_x=round(sp, 1), naive_peak_mib=round(naive["peak_kib"] / 1024, 1),
                             ours_peak_mib=round(ours["peak_kib"] / 1024, 1),
                             memory_ratio_x=None if mr is None else round(mr, 1), max_rel_diff=float(f"{diff:.1e}")))
    gmean = lambda v: math.exp(sum(math.log(x) for x in v) / len(v))  # noqa: E731
    print()
    mem = (f"min {min(mem_ratios):.1f}x, geometric mean {gmean(mem_ratios):.1f}x" if mem_ratios
           else "no selected layer needs 1 MiB")
    print(f"speedup: min {min(speedups):.1f}x, geometric mean {gmean(speedups):.1f}x (target >= 10x); "
          f"peak-memory ratio (layers where naive needs >= 1 MiB): {mem} (target >= 4x); "
          f"max rel diff {worst:.1e} (target <= 1e-5); bench wall time {time.perf_counter() - t_start:.0f} s")
    summary = dict(layers=len(rows), speedup_min_x=round(min(speedups), 1), speedup_gmean_x=round(gmean(speedups), 1),
                   speedup_target_x=10,
                   memory_ratio_min_x=round(min(mem_ratios), 1) if mem_ratios else None,
                   memory_ratio_gmean_x=round(gmean(mem_ratios), 1) if mem_ratios else None, memory_ratio_target_x=4,
                   max_rel_diff=float(f"{worst:.1e}"), max_rel_diff_target=1e-5,
                   wall_s=round(time.perf_counter() - t_start))
    write_bench(args.json, bench="adder", title="Benchmark: adder layers vs the naive broadcast code",
                tables=[BenchTable("layers", f"Forward + backward per layer: ours ({native.backend()} kernels) vs naive "
                                             f"broadcast ({args.threads} threads, median of {args.repeat}, float32, "
                                             f"eta={ETA})", tuple(rows)),
                        BenchTable("summary", "Summary (peak-memory ratios only where naive needs >= 1 MiB)",
                                   (summary,))],
                command=bench_command(__file__, argv), tools={"torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
