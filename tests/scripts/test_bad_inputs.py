"""What adderhw refuses: one table of bad inputs (and a sample of good ones), run through the CLI.

Each case builds its files under ``tmp_path`` and runs ``adderhw ARGV`` in
process.  Every case asserts the exit code, the whole stderr (one line,
matched against the expected message, no traceback) and that every file under
``tmp_path`` outside the output folder is byte for byte as before; refused
cases also assert that the output folder is as before (absent, or unchanged).
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from scripts.cli import main

SHIPPED_ADDER = Path(__file__).resolve().parents[2] / "checkpoints" / "lenet5_bn_adder_fmnist.pt"
SHIPPED_CNN = SHIPPED_ADDER.with_name("lenet5_bn_cnn_fmnist.pt")


def _snapshot(root: Path, skip: Path | None = None) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        if p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def _evil_pickle(path: Path) -> None:
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": Evil()}, fh)


def _nan_checkpoint(path: Path) -> None:
    import torch

    obj = torch.load(SHIPPED_ADDER, map_location="cpu", weights_only=True)
    sd = obj["state_dict"]
    key = next(k for k in sd if k.endswith("conv1.adder"))
    sd[key] = sd[key].clone()
    sd[key][0, 0, 0, 0] = float("nan")
    torch.save(obj, path)


def _meta_checkpoint(path: Path, **meta) -> None:
    """The shipped adder checkpoint with metadata fields replaced (``None``: removed)."""
    import torch

    obj = torch.load(SHIPPED_ADDER, map_location="cpu", weights_only=True)
    for key, value in meta.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    torch.save(obj, path)


def _dtype_checkpoint(path: Path, dtype) -> None:
    """The shipped adder checkpoint with conv1's weights cast to ``dtype``."""
    import torch

    obj = torch.load(SHIPPED_ADDER, map_location="cpu", weights_only=True)
    sd = obj["state_dict"]
    key = next(k for k in sd if k.endswith("conv1.adder"))
    sd[key] = (sd[key] * 100).to(getattr(torch, dtype))
    torch.save(obj, path)


def _bad_checkpoint(cmd, make):
    """A checkpoint made by ``make(path)`` run through ``cmd`` (eval, quantize or predict)."""
    def setup(t, model_dir):
        p = t / "bad.pt"
        make(p)
        if cmd == "eval":
            return ["eval", str(p), "--limit", "10"]
        if cmd == "quantize":
            return ["quantize", str(p), "--calib", "16", "--eval", "16", "-o", str(t / "out")]
        with open(t / "x.npy", "wb") as fh:
            np.save(fh, np.zeros((2, 1, 28, 28), dtype=np.float32))
        return ["predict", str(p), str(t / "x.npy"), "-o", str(t / "logits.npy")]
    return setup


def _preset(line):
    def setup(t, model_dir):
        p = t / "engine.toml"
        p.write_text(f"rows = 4\ncols = 4\n{line}\n" if not line.startswith("rows") else f"cols = 4\n{line}\n")
        return ["estimate", str(model_dir(t)), "--preset", str(p), "-o", str(t / "out")]
    return setup


def _synth_on_metadata(change):
    """``synth`` of a generated study block whose metadata JSON ``change(dict)`` rewrote (returns the new JSON)."""
    def setup(t, model_dir):
        main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--pe", "adder", "--max-k", "8",
              "--block", "array", "-o", str(t / "rtl")])
        meta = next((t / "rtl").glob("*.json"))
        meta.write_text(json.dumps(change(json.loads(meta.read_text()))))
        return ["synth", str(meta.with_suffix(".v")), "--target", "generic", "-o", str(t / "out")]
    return setup


def _set(key, value, sub=None):
    def change(d):
        if sub is None:
            d[key] = value
        elif isinstance(d[key], list):
            d[key][0][sub] = value
        else:
            d[key][sub] = value
        return d
    return change


def _flow(*opts):
    return lambda t, model_dir: ["flow", str(SHIPPED_ADDER), *opts, "-o", str(t / "out")]


def _scaled_checkpoint(key: str, factor: float):
    def make(path):
        import torch

        obj = torch.load(SHIPPED_ADDER, map_location="cpu", weights_only=True)
        obj["state_dict"][key] = obj["state_dict"][key] * factor
        torch.save(obj, path)
    return make


def _dangling(t, model_dir):
    (t / "dang").symlink_to(t / "nowhere" / "x")
    return ["estimate", str(model_dir(t)), "-o", str(t / "dang")]


def _a_file(t):
    (t / "afile").write_text("mine")
    return t / "afile"


def _bits_file(t: Path, bits: dict) -> str:
    path = t / "bits.json"
    path.write_text(json.dumps(bits))
    return str(path)


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path, Callable], list]  # (tmp_path, tiny model writer) -> argv; builds the inputs
    rc: int
    message: str | None  # regex for the one stderr line (None: a good case, stderr must be empty)
    out: str | None = "out"  # the output folder relative to tmp_path (None: the case writes none)


def _estimate_into_model(t, model_dir):
    m = model_dir(t)
    return ["estimate", str(m), "-o", str(m)]


def _foreign_out(cmd):
    def setup(t, model_dir):
        m = model_dir(t)
        (t / "out").mkdir()
        (t / "out" / "thesis.tex").write_text("precious")
        return {"estimate": ["estimate", str(m), "-o", str(t / "out")],
                "flow": ["flow", str(SHIPPED_ADDER), "-o", str(t / "out")]}[cmd]
    return setup


def _earlier_output_of_another_command(t, model_dir):
    m = model_dir(t)
    main(["estimate", str(m), "-o", str(t / "out")])
    (t / "out" / ".adderhw-output").write_text(json.dumps({"command": "quantize"}))
    return ["estimate", str(m), "-o", str(t / "out")]


def _generate_then_synth_into_it(t, model_dir):
    main(["generate", "--rows", "2", "--cols", "2", "--bits", "4", "--pe", "adder", "--max-k", "8",
          "--block", "array", "-o", str(t / "rtl")])
    v = next((t / "rtl").glob("*.v"))
    return ["synth", str(v), "--target", "generic", "-o", str(t / "rtl")]


def _bytes_file(name, content):
    def setup(t, model_dir):
        p = t / name
        if content == "npy":
            with open(p, "wb") as fh:
                np.save(fh, np.zeros(3))
        elif content == "evil":
            _evil_pickle(p)
        elif content == "nan":
            _nan_checkpoint(p)
        else:
            p.write_bytes(content)
        return ["eval", str(p), "--limit", "10"]
    return setup


def _train_over_existing(t, model_dir):
    p = t / "done.pt"
    p.write_bytes(SHIPPED_ADDER.read_bytes())
    return ["train", "--epochs", "1", "--train-limit", "64", "--test-limit", "64", "--out", str(p)]


def _csv(t, model_dir):
    p = t / "topo.csv"
    p.write_bytes("Layer name,IFMAP Height\ncaf\xe9,1\n".encode("latin-1"))
    return ["estimate", str(p), "-o", str(t / "out")]


def _quantize_into_checkpoint_folder(t, model_dir):
    (t / "out").mkdir()
    ck = t / "out" / "adder.pt"
    ck.write_bytes(SHIPPED_ADDER.read_bytes())
    return ["quantize", str(ck), "--calib", "16", "--eval", "16", "-o", str(t / "out")]


def _quantize_into_foreign(t, model_dir):
    (t / "out").mkdir()
    (t / "out" / "notes.txt").write_text("mine")
    return ["quantize", str(SHIPPED_ADDER), "--calib", "16", "--eval", "16", "-o", str(t / "out")]


def _predict_over_model(t, model_dir):
    m = model_dir(t)
    with open(t / "x.npy", "wb") as fh:
        np.save(fh, np.zeros((2, 1, 6, 6), dtype=np.float32))
    return ["predict", str(m), str(t / "x.npy"), "-o", str(m / "weights.npz")]


def _lenet_int8(t):
    main(["quantize", str(SHIPPED_ADDER), "--calib", "16", "--eval", "16", "-o", str(t / "w8")])
    return t / "w8"


def _verify_images_out_of_range(t, model_dir):
    return ["verify", str(_lenet_int8(t)), "--sim", "icarus", "--images", "3,10000",
            "--build-dir", str(t / "build"), "-o", str(t / "out")]


def _verify_on_a_design(*build):
    def make(t, model_dir):
        m = _lenet_int8(t)
        main(["generate", "--rows", "4", "--cols", "4", "--bits", "4", "--max-k", "400", *build, "-o", str(t / "gen")])
        design = next((t / "gen").glob("*.json"))
        return ["verify", str(m), "--sim", "icarus", "--design", str(design),
                "--build-dir", str(t / "build"), "-o", str(t / "out")]
    return make


def _good_estimate(t, model_dir):
    return ["estimate", str(model_dir(t)), "-o", str(t / "out")]


def _good_estimate_named(name):
    return lambda t, model_dir: ["estimate", str(model_dir(t)), "-o", str(t / name)]


def _good_estimate_twice(t, model_dir):
    m = model_dir(t)
    main(["estimate", str(m), "-o", str(t / "out")])
    return ["estimate", str(m), "-o", str(t / "out")]


CASES = [
    Case("estimate-into-its-input", _estimate_into_model, 1,
         r"adderhw estimate: error: output folder .*/model contains the input .*/model: choose another output "
         r"folder", out="model"),
    Case("estimate-into-a-foreign-folder", _foreign_out("estimate"), 1,
         r"adderhw estimate: error: output folder .*/out is not empty and is not the output of an earlier "
         r"adderhw estimate: choose another folder \(or --force to replace it\)"),
    Case("estimate-into-another-commands-output", _earlier_output_of_another_command, 1,
         r"adderhw estimate: error: output folder .*/out is not empty and is the output of adderhw quantize: "
         r"choose another folder \(or --force to replace it\)"),
    Case("estimate-into-nothing", lambda t, model_dir: ["estimate", str(model_dir(t)), "-o", ""], 1,
         r"adderhw estimate: error: output folder '' must name a folder \(not empty, '\.' or '\.\.'\)", out=None),
    Case("estimate-non-utf8-csv", _csv, 1,
         r"adderhw estimate: error: .*/topo\.csv: not a UTF-8 text file \(byte 27: invalid continuation byte\)"),
    Case("synth-into-the-design-folder", _generate_then_synth_into_it, 1,
         r"adderhw synth: error: output folder .*/rtl contains the input .*\.v: choose another output folder",
         out="rtl"),
    Case("flow-into-a-foreign-folder", _foreign_out("flow"), 1,
         r"adderhw flow: error: output folder .*/out is not empty and is not the output of an earlier "
         r"adderhw flow: choose another folder \(or --force to replace it\)"),
    Case("eval-random-bytes", _bytes_file("x.pt", bytes(range(256)) * 8), 1,
         r"adderhw eval: error: cannot load checkpoint .*/x\.pt: not a PyTorch checkpoint", out=None),
    Case("eval-npy", _bytes_file("x.npy", "npy"), 1,
         r"adderhw eval: error: cannot load checkpoint .*/x\.npy: it is a numpy \.npy file, not a PyTorch "
         r"checkpoint", out=None),
    Case("eval-malicious-pickle", _bytes_file("evil.pt", "evil"), 1,
         r"adderhw eval: error: cannot load checkpoint .*/evil\.pt: it contains objects that could execute "
         r"code \(refused; only tensors and plain values load\)", out=None),
    Case("eval-nan-weights", _bytes_file("nan.pt", "nan"), 1,
         r"adderhw eval: error: checkpoint .*/nan\.pt has non-finite values in conv1\.adder \(1 NaN, 0 Inf "
         r"of \d+\); refused", out=None),
    Case("train-over-a-finished-checkpoint", _train_over_existing, 1,
         r"adderhw train: error: .*/done\.pt already exists; pass --resume to continue it or --force to "
         r"overwrite it", out=None),
    Case("quantize-into-the-checkpoints-folder", _quantize_into_checkpoint_folder, 1,
         r"adderhw quantize: error: output folder .*/out contains the input .*/out/adder\.pt: choose another "
         r"output folder"),
    Case("quantize-into-a-foreign-folder", _quantize_into_foreign, 1,
         r"adderhw quantize: error: output folder .*/out is not empty and is not the output of an earlier "
         r"adderhw quantize: choose another folder \(or --force to replace it\)"),
    Case("quantize-groups-zero",
         lambda t, model_dir: ["quantize", str(SHIPPED_ADDER), "--calib", "16", "--eval", "16", "--groups", "0",
                               "-o", str(t / "out")], 1,
         r"adderhw quantize: error: groups must be an integer in 1\.\.65536, not 0"),
    Case("quantize-more-groups-than-channels",
         lambda t, model_dir: ["quantize", str(SHIPPED_ADDER), "--calib", "16", "--eval", "16", "--groups", "7",
                               "-o", str(t / "out")], 1,
         r"adderhw quantize: error: layer conv1: 6 output channels cannot be split into --groups 7 \(at most 6 "
         r"for this layer\)"),
    Case("quantize-bits-file-unknown-layer",
         lambda t, model_dir: ["quantize", str(SHIPPED_ADDER), "--calib", "16", "--eval", "16", "--bits-file",
                               _bits_file(t, {"conv2": 4, "fc9": 4}), "-o", str(t / "out")], 1,
         r"adderhw quantize: error: --bits-file names unknown layer 'fc9' \(adder layers: conv1, conv2, fc1, fc2, "
         r"fc3\)"),
    Case("quantize-bits-file-impossible-width",
         lambda t, model_dir: ["quantize", str(SHIPPED_ADDER), "--calib", "16", "--eval", "16", "--bits", "4",
                               "--bits-file", _bits_file(t, {"fc1": 6}), "-o", str(t / "out")], 1,
         r"adderhw quantize: error: weight bits of layer 'fc1' \(6\) must be <= act_bits \(4\): weights share "
         r"the activation grid"),
    Case("predict-over-the-models-weights", _predict_over_model, 1,
         r"adderhw predict: error: -o .*/model/weights\.npz would overwrite the input .*/model: choose another "
         r"file", out=None),
    Case("verify-images-out-of-range", _verify_images_out_of_range, 1,
         r"adderhw verify: error: --images 10000 is out of range: the fashion-mnist test split has 10000 "
         r"images \(0\.\.9999\)"),
    Case("verify-on-a-deployable-design", _verify_on_a_design(), 1,
         r"adderhw verify: error: --design \S+ is the deployable engine, without the counters the testbench "
         r"reads: generate it with --build verify"),
    Case("verify-on-a-design-of-other-bits", _verify_on_a_design("--build", "verify"), 1,
         r"adderhw verify: error: the engine \S+ cannot run lenet5-bn: layer conv1: input codes 0\.\.255 do not "
         r"fit the adder PE operands 0\.\.15"),
    # checkpoint metadata is validated on load, naming the key (issue 27, 1 and 5)
    Case("eval-normalization-empty", _bad_checkpoint("eval", lambda p: _meta_checkpoint(p, normalization={})), 1,
         r"adderhw eval: error: checkpoint .*/bad\.pt: metadata normalization must be a dict with 'mean' and "
         r"'std', not \{\}", out=None),
    Case("quantize-mean-a-string",
         _bad_checkpoint("quantize", lambda p: _meta_checkpoint(p, normalization={"mean": "abc", "std": [0.3]})),
         1, r"adderhw quantize: error: checkpoint .*/bad\.pt: metadata normalization\.mean must be a list of "
         r"finite numbers, one per input channel \(1\) or one for all, not 'abc'"),
    Case("predict-input-fit-empty", _bad_checkpoint("predict", lambda p: _meta_checkpoint(p, input_fit={})), 1,
         r"adderhw predict: error: checkpoint .*/bad\.pt: metadata input_fit must be a dict with 'from' and 'to' "
         r"shapes, not \{\}", out=None),
    Case("eval-std-zero",
         _bad_checkpoint("eval", lambda p: _meta_checkpoint(p, normalization={"mean": [0.3], "std": [0.0]})), 1,
         r"adderhw eval: error: checkpoint .*/bad\.pt: metadata normalization\.std must be positive, not 0\.0",
         out=None),
    Case("quantize-std-zero",
         _bad_checkpoint("quantize", lambda p: _meta_checkpoint(p, normalization={"mean": [0.3], "std": [0]})), 1,
         r"adderhw quantize: error: checkpoint .*/bad\.pt: metadata normalization\.std must be positive, not 0"),
    # weights of an integer or complex dtype are refused by dtype, naming the tensor (issue 27, 4)
    *[Case(f"{cmd}-{name}-weights", _bad_checkpoint(cmd, lambda p, d=dtype: _dtype_checkpoint(p, d)), 1,
           rf"adderhw {cmd}: error: checkpoint .*/bad\.pt: conv1\.adder is {name}, not a floating-point tensor; "
           r"refused", out=None if cmd == "eval" else "out")
      for cmd, name, dtype in (("eval", "int64", "int64"), ("eval", "int8", "int8"), ("eval", "bool", "bool"),
                               ("quantize", "complex64", "complex64"))],
    # estimate --preset: one typed loader, messages naming the file and the key (issue 27, 2)
    *[Case(f"estimate-preset-{key}-{kind}", _preset(f"{key} = {value}"), 1,
           rf"adderhw estimate: error: .*/engine\.toml: {key} must be {what}, not {shown}")
      for key, kind, value, what, shown in (
          ("bits", "list", "[8]", "an integer", r"\[8\]"),
          ("rows", "list", "[4]", "an integer", r"\[4\]"),
          ("clock_mhz", "list", "[100]", "a positive number", r"\[100\]"),
          ("bits", "string", '"eight"', "an integer", "'eight'"),
          ("description", "number", "3", "a string", "3"))],
    # synth reads the design metadata strictly (issue 27, 3)
    Case("synth-metadata-a-list", _synth_on_metadata(lambda d: [1, 2, 3]), 1,
         r"adderhw synth: error: .*/array_\w+\.json: not a design metadata file of adderhw generate "
         r"\(format 'list', expected 'adderhw-engine-design'\)"),
    Case("synth-metadata-rows-many", _synth_on_metadata(_set("config", "many", "rows")), 1,
         r"adderhw synth: error: .*/array_\w+\.json: config: rows must be an integer, not 'many'"),
    Case("synth-metadata-counters-a-string", _synth_on_metadata(_set("counters", "x")), 1,
         r"adderhw synth: error: .*/array_\w+\.json: counters must be null or an object, not str"),
    Case("synth-metadata-port-width-abc", _synth_on_metadata(_set("ports", "abc", "width")), 1,
         r"adderhw synth: error: .*/array_\w+\.json: port clk: width must be a positive integer, not 'abc'"),
    Case("synth-metadata-top-a-list", _synth_on_metadata(_set("top", [1])), 1,
         r"adderhw synth: error: .*/array_\w+\.json: top must be the design name 'array_\w+', not \[1\]"),
    # generate sized to a model: --max-ops must hold its program (issue 27, 7)
    Case("generate-max-ops-too-few",
         lambda t, model_dir: ["generate", "--model", str(model_dir(t)), "--rows", "2", "--cols", "2",
                               "--max-ops", "1", "-o", str(t / "out")], 1,
         r"adderhw generate: error: --max-ops 1 cannot hold the program of \S+ \(\d+ operations\): give at least "
         r"\d+, or leave --max-ops out"),
    # no command writes into its input (issue 27, 10)
    Case("generate-into-its-model",
         lambda t, model_dir: ["generate", "--model", str(model_dir(t)), "--rows", "2", "--cols", "2",
                               "-o", str(t / "model")], 1,
         r"adderhw generate: error: output folder .*/model contains the input .*/model: choose another output "
         r"folder", out="model"),
    Case("estimate-into-a-folder-inside-its-input",
         lambda t, model_dir: ["estimate", str(model_dir(t)), "-o", str(t / "model" / "est")], 1,
         r"adderhw estimate: error: output folder .*/model/est is inside the input .*/model: choose another "
         r"output folder", out="model/est"),
    # flow checks every option of every step before the first step runs (issue 27, 8 and 13)
    Case("flow-eval-zero", _flow("--eval", "0"), 1, r"adderhw flow: error: --eval must be a positive integer, not 0"),
    Case("flow-sweep-not-integers", _flow("--eval", "16", "--sweep", "8,x"), 1,
         r"adderhw flow: error: --sweep must be comma-separated integers, not '8,x'"),
    Case("flow-rows-too-many", _flow("--eval", "16", "--rows", "100"), 1,
         r"adderhw flow: error: --rows must be an integer in 1\.\.64, not 100"),
    Case("flow-images-not-integers", _flow("--eval", "16", "--images", "a"), 1,
         r"adderhw flow: error: --images must be comma-separated integers, not 'a'"),
    Case("flow-images-out-of-range", _flow("--eval", "16", "--images", "3,10000"), 1,
         r"adderhw flow: error: --images 10000 is out of range: the fashion-mnist test split has 10000 images "
         r"\(0\.\.9999\)"),
    Case("flow-layer-bogus", _flow("--eval", "16", "--layer", "bogus"), 1,
         r"adderhw flow: error: --layer 'bogus' is not an operation of the engine's program for lenet5-bn "
         r"\(have: .*\)"),
    Case("flow-layer-out-of-range", _flow("--eval", "16", "--layer", "99"), 1,
         r"adderhw flow: error: --layer 99 is out of range: the engine's program for lenet5-bn has \d+ operations "
         r"\(0\.\.\d+\)"),
    # train --out must name a file: a folder or a path under a file is refused before any training (issue 27, 14)
    *[Case(f"train-out-a-folder{suffix}",
           lambda t, model_dir, extra=extra: (t / "runs").mkdir() or [
               "train", "--epochs", "1", "--train-limit", "64", "--test-limit", "64", *extra, "--out",
               str(t / "runs")], 1,
           r"adderhw train: error: --out .*/runs is a folder: name the checkpoint file to write "
           r"\(e\.g\. .*/runs/model\.pt\)", out="runs")
      for suffix, extra in (("", []), ("-force", ["--force"]))],
    Case("train-out-under-a-file",
         lambda t, model_dir: (t / "afile").write_text("x") and [
             "train", "--epochs", "1", "--train-limit", "64", "--test-limit", "64", "--out", str(t / "afile" / "m.pt")],
         1, r"adderhw train: error: --out .*/afile/m\.pt: .*/afile is a file, not a folder", out=None),
    # usage errors: one line naming the argument, exit status 2 (issue 27, 9)
    Case("quantize-bits-not-an-integer",
         lambda t, model_dir: ["quantize", str(SHIPPED_ADDER), "--bits", "abc", "-o", str(t / "out")], 2,
         r"adderhw quantize: error: argument --bits: invalid int value: 'abc' \(see adderhw quantize --help\)"),
    Case("estimate-without-out", lambda t, model_dir: ["estimate", str(model_dir(t))], 2,
         r"adderhw estimate: error: the following arguments are required: -o/--out \(see adderhw estimate "
         r"--help\)", out=None),
    Case("train-eta-not-a-number",
         lambda t, model_dir: ["train", "--eta", "abc", "--out", str(t / "m.pt")], 2,
         r"adderhw train: error: argument --eta: must be a number or 'none', not 'abc' \(see adderhw train "
         r"--help\)", out=None),
    Case("unknown-command", lambda t, model_dir: ["estimat", str(model_dir(t))], 2,
         r"adderhw: error: argument COMMAND: invalid choice: 'estimat' \(choose from .*\) \(see adderhw --help\)",
         out=None),
    # messages name the user's argument and the problem (issue 27, 15)
    Case("eval-a-folder", lambda t, model_dir: (t / "adir").mkdir() or ["eval", str(t / "adir")], 1,
         r"adderhw eval: error: checkpoint .*/adir is a folder, not a checkpoint file", out=None),
    Case("quantize-seed-negative",
         lambda t, model_dir: ["quantize", str(SHIPPED_ADDER), "--calib", "16", "--eval", "16", "--seed", "-1",
                               "-o", str(t / "out")], 1,
         r"adderhw quantize: error: --seed must be a non-negative integer, not -1"),
    Case("verify-seed-negative",
         lambda t, model_dir: ["verify", str(model_dir(t)), "--sim", "icarus", "--seed", "-1", "--build-dir",
                               str(t / "build"), "-o", str(t / "out")], 1,
         r"adderhw verify: error: --seed must be a non-negative integer, not -1"),
    Case("quantize-calib-data-npz",
         lambda t, model_dir: np.savez(t / "x.npz", a=np.zeros((4, 1, 28, 28), np.float32)) or [
             "quantize", str(SHIPPED_ADDER), "--calib-data", str(t / "x.npz"), "--calib", "4", "--eval", "16",
             "-o", str(t / "out")], 1,
         r"adderhw quantize: error: --calib-data .*/x\.npz: a \.npz archive, not one \.npy array of float32 "
         r"\[N, C, H, W\] images"),
    Case("quantize-all-zero-adder-weights", _bad_checkpoint("quantize", _scaled_checkpoint("conv2.adder", 0.0)), 1,
         r"adderhw quantize: error: layer \w+: requant multiplier \S+ does not fit a signed 16-bit integer"),
    Case("quantize-huge-adder-weights", _bad_checkpoint("quantize", _scaled_checkpoint("fc1.adder", 1e30)), 1,
         r"adderhw quantize: error: layer fc1: requant multiplier \S+ does not fit a signed 16-bit integer"),
    Case("quantize-negative-running-var",
         _bad_checkpoint("quantize", _scaled_checkpoint("bn1.running_var", -1.0)), 1,
         r"adderhw quantize: error: checkpoint .*/bad\.pt: bn1\.running_var has negative values \(\d+ of \d+\); "
         r"refused"),
    Case("estimate-out-a-dangling-link", _dangling, 1,
         r"adderhw estimate: error: output folder .*/dang is a dangling symbolic link \(to .*/nowhere/x\): remove "
         r"it or choose another folder", out=None),
    Case("estimate-out-under-a-file",
         lambda t, model_dir: ["estimate", str(model_dir(t)), "-o", str(_a_file(t) / "sub")], 1,
         r"adderhw estimate: error: output folder .*/afile/sub: .*/afile is a file, not a folder", out=None),
    Case("verify-build-dir-a-file",
         lambda t, model_dir: ["verify", str(model_dir(t)), "--sim", "icarus", "--build-dir", str(_a_file(t)),
                               "-o", str(t / "out")], 1,
         r"adderhw verify: error: --build-dir .*/afile exists and is not a folder"),
    Case("predict-out-a-folder",
         lambda t, model_dir: (t / "adir").mkdir() or np.save(t / "x.npy", np.zeros((2, 1, 6, 6), np.float32)) or [
             "predict", str(model_dir(t)), str(t / "x.npy"), "-o", str(t / "adir")], 1,
         r"adderhw predict: error: -o .*/adir is a folder: name the \.npy file to write \(e\.g\. "
         r".*/adir/logits\.npy\)", out="adir"),
    Case("good-estimate-into-a-250-character-name", _good_estimate_named("a" * 250), 0, None, out="a" * 250),
    # good cases: exit 0, nothing on stderr, the inputs untouched
    Case("good-estimate", _good_estimate, 0, None),
    Case("good-estimate-replaces-its-own-output", _good_estimate_twice, 0, None),
    Case("good-estimate-sweep",  # issue 27, 6: the engine estimate sweeps (sweep.csv checked below)
         lambda t, model_dir: ["estimate", str(model_dir(t)), "--sweep", "rows=4,8", "-o", str(t / "out")], 0, None),
    Case("good-eval-shipped-cnn", lambda t, model_dir: ["eval", str(SHIPPED_CNN), "--limit", "200"], 0, None,
         out=None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_table(case, tmp_path, capsys, tiny_model_dir):
    argv = case.setup(tmp_path, tiny_model_dir)
    out = tmp_path / case.out if case.out else None
    capsys.readouterr()
    before_inputs = _snapshot(tmp_path, skip=out)
    before_out = _snapshot(out) if out is not None and out.exists() else None
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    captured = capsys.readouterr()
    assert rc == case.rc, captured.err
    lines = captured.err.strip().splitlines()
    if case.message is None:
        assert captured.err == ""
    else:
        assert len(lines) == 1, captured.err
        assert re.fullmatch(case.message, lines[0]), lines[0]
        assert "Traceback" not in captured.err + captured.out
    assert _snapshot(tmp_path, skip=out) == before_inputs  # every input as it was
    if out is not None and case.rc != 0:
        assert (_snapshot(out) if out.exists() else None) == before_out  # -o as it was
    if out is not None and case.rc == 0:
        assert (out / ".adderhw-output").is_file()
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp." in p.name or ".old." in p.name]
    assert not leftovers


def test_generate_on_a_full_disk_leaves_no_folder(tmp_path, capsys, tiny_model_dir, monkeypatch):
    """A write that fails half-way (ENOSPC) leaves no output folder behind (issue 27, 12)."""
    import errno

    import rtl.design

    real = rtl.design.atomic_write_text
    calls = []

    def full_disk(path, text):
        calls.append(path)
        if len(calls) == 2:  # the .v is written, the .json finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(rtl.design, "atomic_write_text", full_disk)
    m = tiny_model_dir(tmp_path)
    rc = main(["generate", "--model", str(m), "--rows", "2", "--cols", "2", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "No space left" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_estimate_sweep_of_the_engine(tmp_path, capsys, tiny_model_dir):
    """``estimate --dataflow cp --sweep rows=4,8`` writes the sweep (issue 27, 6): one row per point and engine."""
    m = tiny_model_dir(tmp_path)
    rc = main(["estimate", str(m), "--dataflow", "cp", "--sweep", "rows=4,8", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 0 and err == "estimate: --dataflow cp is deprecated: the network engine is the only design\n"
    lines = (tmp_path / "out" / "sweep.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 2 and (tmp_path / "out" / "sweep.png").is_file()  # adder and mult engine


def test_a_second_run_into_an_output_being_written_is_refused(tmp_path, capsys, tiny_model_dir):
    """While another live process stages ``-o``, a second run is refused and leaves it alone (issue 27, polish)."""
    import subprocess
    import sys

    m = tiny_model_dir(tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".out.tmp.{other.pid}.abc"
        busy.mkdir()
        (busy / "partial").write_text("theirs")
        rc = main(["estimate", str(m), "-o", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert rc == 1 and re.fullmatch(
            rf"adderhw estimate: error: output folder .*/out is being written by another adderhw run \(process "
            rf"{other.pid}\): wait for it to finish or choose another folder\n", err), err
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model", busy.name])
        assert (busy / "partial").read_text() == "theirs"
    finally:
        other.kill()
        other.wait()
