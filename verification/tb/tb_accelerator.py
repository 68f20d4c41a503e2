"""cocotb tests of the generated accelerator (loaded by the simulator, not by pytest).

Parameters come from the job JSON named by ``$ADDERHW_VERIFY_JOB``
(:func:`verification.runner.run_tests` writes it):

``meta``
    path of the design's metadata JSON (``<name>.json`` beside ``<name>.v``);
``seed``
    seed of every random generator (printed in the log);
``model_dir``, ``layers``, ``images``
    optional integer model artifact, the compute layers to run as separate
    tests (``layer_<name>``), and the test-set image indices;
``records``
    JSON-lines file each test appends its measurements to (name,
    cycles_measured, cycles_predicted, mismatches, ...).

Tests: ``random_tiles``, ``requant_corners``, ``extremes``, ``reset_mid_tile``,
``back_pressure``, and with a model ``layer_<name>`` per listed layer and
``network`` (the whole network layer by layer).  Every output beat is
compared exactly with :mod:`verification.model`; cycle counts exactly with
:mod:`hwsim.schedule` whenever there is no back-pressure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from hwsim.schedule import schedule_tiles
from verification.host import AcceleratorEnv
from verification.meta import load_meta
from verification.model import Tile, TileRequant, extreme_tile, random_tile, tile_acc
from verification.runner import JOB_ENV
from verification.streams import BackPressure

__all__: list[str] = []


def _job() -> dict:
    path = os.environ.get(JOB_ENV)
    if not path:
        raise RuntimeError(f"{JOB_ENV} is not set: run these tests through verification.runner.run_tests")
    return json.loads(Path(path).read_text())


def _record(name: str, **fields) -> None:
    rec = {"name": name, "cycles_measured": None, "cycles_predicted": None}
    rec.update(fields)
    with open(_job()["records"], "a") as f:
        f.write(json.dumps(rec) + "\n")


def _rng(job: dict, test: str) -> np.random.Generator:
    seed = int(job.get("seed", 1))
    cocotb.log.info("%s: seed %d", test, seed)
    return np.random.default_rng([seed, sum(map(ord, test))])


async def _start(dut, back_pressure=None):
    """The job, the design's metadata and a started environment.

    ``back_pressure(job)``, if given, makes the environment's :class:`BackPressure`.
    """
    job = _job()
    meta = load_meta(job["meta"])
    env = AcceleratorEnv(dut, meta, *((back_pressure(job),) if back_pressure else ()))
    await env.start()
    return job, meta, env


def _ks(cfg, rng: np.random.Generator) -> list[int]:
    """Reduction lengths covering K=1, the drain-bound/compute-bound boundary and random K."""
    d = cfg.drain_cycles
    cap = min(cfg.max_k, 48)
    ks = [1, 2, d - 1, d, d + 1, int(rng.integers(1, cap + 1)), 1, int(rng.integers(1, cap + 1)),
          int(rng.integers(1, cap + 1)), cap, 3]
    return [min(max(1, k), cfg.max_k) for k in ks]


async def _checked_run(name: str, env: AcceleratorEnv, tiles: list[Tile], *, exact_cycles: bool, **extra) -> None:
    run = await env.run_tiles(tiles)
    predicted = schedule_tiles([t.k for t in tiles], env.cfg).total_cycles
    sb = env.scoreboard
    _record(name, cycles_measured=run.cycles, cycles_predicted=predicted if exact_cycles else None,
            mismatches=len(sb.mismatches) + sb.outstanding + len(sb.unexpected), tiles=len(tiles),
            beats=sb.matched + len(sb.mismatches), **extra)
    sb.check()
    if exact_cycles:
        assert run.cycles == predicted, f"measured {run.cycles} cycles, hwsim predicts {predicted}"
    else:
        assert run.cycles >= predicted, f"{run.cycles} cycles with back-pressure is below the stall-free {predicted}"


@cocotb.test()
async def random_tiles(dut):
    """Random operands and fitted requant parameters on tiles of varied K, no back-pressure."""
    job, meta, env = await _start(dut)
    rng = _rng(job, "random_tiles")
    fb = meta.field_bits()
    tiles = [random_tile(meta.config, k, rng, fb) for k in _ks(meta.config, rng)]
    await _checked_run("random_tiles", env, tiles, exact_cycles=True)


def _corner_requants(meta, acc: np.ndarray, rng: np.random.Generator) -> list[TileRequant]:
    cfg = meta.config
    rows = cfg.rows
    if cfg.requant == "threshold":
        tf = meta.cfg["thr"]
        qmax = (1 << cfg.bits) - 1
        top = tf.hi
        lo_a, hi_a = int(acc.min()), int(acc.max())
        mid = np.sort(rng.integers(lo_a, hi_a + 1, size=(rows, qmax)), axis=1)
        dup = np.repeat(np.sort(rng.integers(lo_a, hi_a + 1, size=(rows, 1)), axis=1), qmax, axis=1)
        return [
            TileRequant(mode="threshold", thr=np.zeros((rows, qmax)), neg=np.arange(rows) % 2),
            TileRequant(mode="threshold", thr=np.full((rows, qmax), top), neg=np.arange(rows) % 2),
            TileRequant(mode="threshold", thr=dup, neg=(np.arange(rows) + 1) % 2),
            TileRequant(mode="threshold", thr=mid, neg=np.ones(rows)),
            TileRequant(mode="threshold", thr=np.sort(rng.integers(0, top + 1, size=(rows, qmax)), axis=1),
                        neg=np.zeros(rows)),
        ]
    mf, nf, bf = meta.cfg["m"], meta.cfg["n"], meta.cfg["lo"]
    smax = nf.width  # shift range 0..P, P the bias width
    mid = [-1, 1] * (rows // 2) + [1] * (rows % 2)
    out = [
        # slope +-1, no shift: the clamp decides (wide and narrow windows)
        TileRequant(mode="fixed", shift=0, lo=bf.lo, hi=bf.hi, m=np.array(mid), n=np.zeros(rows)),
        TileRequant(mode="fixed", shift=0, lo=3, hi=3, m=np.ones(rows), n=rng.integers(-50, 50, rows)),
        # extreme multipliers and biases, largest shift
        TileRequant(mode="fixed", shift=smax, lo=bf.lo, hi=bf.hi,
                    m=np.where(np.arange(rows) % 2 == 0, mf.lo, mf.hi), n=np.where(np.arange(rows) % 2 == 0, nf.hi, nf.lo)),
        TileRequant(mode="fixed", shift=smax - 1, lo=bf.lo, hi=bf.hi,
                    m=np.where(np.arange(rows) % 2 == 0, mf.hi, mf.lo), n=np.zeros(rows)),
        # mid shift with biases at the field limits (saturates both ways)
        TileRequant(mode="fixed", shift=int(rng.integers(1, smax)), lo=-1, hi=bf.hi,
                    m=rng.integers(mf.lo, mf.hi + 1, rows), n=np.where(np.arange(rows) % 2 == 0, nf.hi, nf.lo)),
    ]
    return out


@cocotb.test()
async def requant_corners(dut):
    """Requant parameters at their field limits: clamps, extreme m/n/shift, degenerate thresholds."""
    job, meta, env = await _start(dut)
    cfg = meta.config
    rng = _rng(job, "requant_corners")
    fb = meta.field_bits()
    tiles = []
    k = min(cfg.max_k, 2 * cfg.drain_cycles)
    base = [random_tile(cfg, k, rng, fb) for _ in range(5)]
    for t in base:
        for rq in _corner_requants(meta, tile_acc(t, cfg.pe), rng):
            tiles.append(Tile(w=t.w, x=t.x, rq=rq))
    await _checked_run("requant_corners", env, tiles, exact_cycles=True)


@cocotb.test()
async def extremes(dut):
    """Largest |x - w| (or |x*w|) on every step at K = max_k: the accumulator must not wrap."""
    _, meta, env = await _start(dut)
    cfg = meta.config
    fb = meta.field_bits()
    t = extreme_tile(cfg, cfg.max_k, fb)
    # second tile: operands swapped (x - w of the other sign), same magnitude
    if cfg.pe == "adder":
        t2 = extreme_tile(cfg, cfg.max_k, fb)
        t2 = Tile(w=np.where(t2.w == t2.w.max(), t2.w.min(), t2.w.max()),
                  x=np.where(t2.x == t2.x.max(), t2.x.min(), t2.x.max()), rq=t2.rq)
        tiles = [t, t2]
    else:
        tiles = [t, t]
    await _checked_run("extremes", env, tiles, exact_cycles=True, k=cfg.max_k)


@cocotb.test()
async def reset_mid_tile(dut):
    """Reset while one tile computes and another drains; then a clean, exact run."""
    job, meta, env = await _start(dut)
    cfg = meta.config
    rng = _rng(job, "reset_mid_tile")
    fb = meta.field_bits()
    k = min(cfg.max_k, max(8, cfg.drain_cycles + 4))
    first = [random_tile(cfg, k, rng, fb) for _ in range(3)]
    env.queue_tiles(first)
    w_drv = env.drivers["w"]
    target = k + k // 2  # middle of the second tile: the first one is draining
    while len(w_drv.fired) < min(target, 2 * k - 1):
        await FallingEdge(dut.clk)
    cocotb.log.info("reset after %d reduction steps, %d output beats", len(w_drv.fired), len(env.monitor.beats))
    await env.reset(3)
    await env.idle(2)
    tiles = [random_tile(cfg, kk, rng, fb) for kk in _ks(cfg, rng)[:6]]
    await _checked_run("reset_mid_tile", env, tiles, exact_cycles=True)


@cocotb.test()
async def back_pressure(dut):
    """Random valid gaps on cfg/w/x and ready drops on o: outputs still exact."""
    job, meta, env = await _start(
        dut, lambda job: BackPressure(valid_gap=0.3, ready_drop=0.4, seed=int(job.get("seed", 1))))
    bp = env.bp
    cfg = meta.config
    rng = _rng(job, "back_pressure")
    fb = meta.field_bits()
    tiles = [random_tile(cfg, k, rng, fb) for k in _ks(cfg, rng) * 2]
    await _checked_run("back_pressure", env, tiles, exact_cycles=False,
                       valid_gap=bp.valid_gap, ready_drop=bp.ready_drop)


# --- real layers of an integer model --------------------------------------------

def _model_inputs(job: dict):
    from quant import golden
    from quant.artifact import load_int_model
    from quant.datasets import load_dataset

    model = load_int_model(Path(job["model_dir"]))
    idx = [int(i) for i in job.get("images", [0])]
    images, labels = load_dataset(model.dataset, "test")
    x_q = golden.quantize_input(images[idx], model.input)
    return model, x_q, labels[idx]


def _layer_test(layer_name: str):
    async def layer_test(dut):
        from quant import golden
        from verification.layer import run_layer

        job, _, env = await _start(dut)
        model, x_q, _ = _model_inputs(job)
        layer = model.layer(layer_name)
        ref = golden.run_codes(model, x_q[:1])
        x_in = ref[layer.inputs[0]][0]
        res = await run_layer(env, layer, x_in)
        sb = env.scoreboard
        _record(f"layer_{layer_name}", cycles_measured=res.cycles_measured,
                cycles_predicted=res.cycles_predicted, mismatches=res.mismatches,
                beat_mismatches=len(sb.mismatches), tiles=len(sb.mismatches) + sb.matched)
        sb.check()
        assert res.exact, f"layer {layer_name}: {res.mismatches} outputs differ from the golden model"
        assert res.cycles_measured == res.cycles_predicted, (
            f"layer {layer_name}: measured {res.cycles_measured} cycles, hwsim predicts {res.cycles_predicted}"
        )

    layer_test.__name__ = layer_test.__qualname__ = f"layer_{layer_name}"
    return layer_test


async def _network(dut):
    """The whole network layer by layer through the array; logits equal the golden model's."""
    from verification.layer import run_network

    job, _, env = await _start(dut)
    model, x_q, labels = _model_inputs(job)
    per_layer = []
    bad = []
    measured = predicted = 0
    logits_out = []
    for i in range(x_q.shape[0]):
        results, logits, ref_logits = await run_network(env, model, x_q[i])
        for r in results:
            per_layer.append(dict(r.record(), image=i))
            measured += r.cycles_measured
            predicted += r.cycles_predicted
            if not r.exact or r.cycles_measured != r.cycles_predicted:
                bad.append(r.record())
        logits_out.append({"image": i, "label": int(labels[i]), "rtl": logits.tolist(),
                           "golden": ref_logits.tolist()})
        if not np.array_equal(logits, ref_logits):
            bad.append({"image": i, "logits": logits.tolist(), "golden": ref_logits.tolist()})
    _record("network", cycles_measured=measured, cycles_predicted=predicted,
            mismatches=len(bad), layers=per_layer, logits=logits_out)
    env.scoreboard.check()
    assert not bad, f"network: {len(bad)} layer/logit mismatches: {bad[:3]}"


def _register_model_tests() -> None:
    path = os.environ.get(JOB_ENV)
    if not path:
        return
    job = json.loads(Path(path).read_text())
    if not job.get("model_dir"):
        return
    for name in job.get("layers", []):
        fn = _layer_test(name)
        globals()[fn.__name__] = cocotb.test(fn)
    if job.get("network"):
        globals()["network"] = cocotb.test(name="network")(_network)


_register_model_tests()
