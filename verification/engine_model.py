"""Model and checker of the engine testbench (pure Python: no cocotb, usable on plain lists).

The cocotb input monitors push every beat they see on ``prog``, ``w`` and
``x`` into :class:`ObservedRun`; the expected results of an image are
computed **from those beats** (cocotb's ``examples/matrix_multiplier``
idea), never from what the drivers meant to send:

* the image codes are decoded from the observed ``x`` words and the weight
  stream rebuilt from the observed ``w`` beats (the inverse of
  :func:`rtl.engine.top.w_beats`); :func:`hwsim.reference.run_engine`
  runs them (what the engine must compute from what it was given);
* :func:`quant.intmodel.golden.run_codes` runs the observed image through the integer
  model (the one integer truth, DESIGN §6);
* the observed ``prog`` descriptors (unpacked with the codec of the design's
  metadata, :class:`rtl.layout.Payload`) and ``w`` beats are compared with the compiled
  program, so a dropped, repeated or corrupted beat is reported as such.

Resident weights (``hwsim.engine`` rule 7): when the host sends the load
phase (:attr:`ObservedRun.loading`), the first ``prog`` beat is the load
descriptor and the first ``op_done`` its end; the ``w`` beats seen are the
store's, and every image runs on them.  :func:`check_load` compares the load
phase with hwsim's :class:`~hwsim.engine.LoadPhase`; image ``k``'s cycles
then count on from the load phase's.  Without a load since the reset the
images run on the store as it was (a reset keeps it).

:func:`check_image` then compares the DUT's logits (the ``o`` monitor) and
per-operation counters (``op_done`` monitor) with those and with
:class:`hwsim.engine.EngineModel`'s prediction, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.config import ENGINE_COUNTERS
from rtl.layout import Payload

__all__ = ["flat_values", "weights_from_beats", "image_from_words", "ObservedRun", "OpObservation",
           "check_image", "check_load", "OP_COUNTERS"]

#: Per-operation counters compared with hwsim (:data:`hwsim.config.ENGINE_COUNTERS` without ``cycles``).
OP_COUNTERS = tuple(c for c in ENGINE_COUNTERS if c != "cycles")


def flat_values(values: dict, prefix: str = "") -> dict:
    """``{"ag": {"kh": 3}}`` -> ``{"ag.kh": 3}`` (the field names of :func:`rtl.layout.describe_layout`)."""
    out = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out.update(flat_values(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = int(v)
    return out


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def weights_from_beats(program, beats):
    """Rebuild the :class:`~hwsim.compiler.WeightStream` from ``w`` beats (inverse of ``w_beats``).

    Weight ``(r, n)`` of a word is the code at bits ``(r*cols + n)*bits``,
    two's complement on the multiplier unit.  Raises ValueError when the
    number of beats is not the program's.
    """
    from hwsim.compiler import Op, Unit, WeightStream

    cfg = program.config
    b, rows, cols = cfg.bits, cfg.rows, cfg.cols
    mask = (1 << b) - 1
    words, params = [], []
    pos = 0
    need = sum(op.tiles * (op.weight_words + op.param_beats) for op in program.ops if op.op == Op.CONV)
    if len(beats) != need:
        raise ValueError(f"the program takes {need} w beats per image, {len(beats)} were observed")
    for op in program.ops:
        if op.op != Op.CONV:
            continue
        sgn = op.unit == Unit.MULT
        for _ in range(op.tiles):
            for _ in range(op.weight_words):
                v = int(beats[pos])
                pos += 1
                codes = [(v >> (k * b)) & mask for k in range(rows * cols)]
                if sgn:
                    codes = [_signed(c, b) for c in codes]
                words.append(np.asarray(codes, dtype=np.int64).reshape(rows, cols))
            params.extend(int(p) for p in beats[pos : pos + op.param_beats])
            pos += op.param_beats
    arr = np.zeros((len(words), rows, cols), dtype=np.int64)
    for i, w in enumerate(words):
        arr[i] = w
    return WeightStream(words=arr, params=tuple(params))


def image_from_words(program, words):
    """The input codes (the model's input shape) from ``x`` words (inverse of ``x_beats``)."""
    from hwsim.compiler import from_words

    cfg = program.config
    t = program.tensors[program.input]
    if len(words) != t.words:
        raise ValueError(f"the input takes {t.words} x beats, {len(words)} were observed")
    ab = cfg.act_bits
    mask = (1 << ab) - 1
    lanes = np.zeros((len(words), cfg.cols), dtype=np.int64)
    for i, w in enumerate(words):
        for n in range(cfg.cols):
            v = (int(w) >> (n * ab)) & mask
            lanes[i, n] = _signed(v, ab) if t.signed else v
    return from_words(lanes, t.channels, t.height, t.width).reshape(program.layer_shapes["input"])


@dataclass
class OpObservation:
    """One ``op_done`` pulse: the operation, its last cycle (``cycles`` port) and every counter after it."""

    index: int
    end: int
    counters: dict


@dataclass
class ObservedRun:
    """What the monitors saw since the last reset (the model's inputs and the DUT's outputs).

    Parameters
    ----------
    model : quant.intmodel.artifact.IntModel
    compiled : hwsim.compiler.CompiledModel
        The program of the engine (its structure: which beats belong to which
        operation); the data come from the observed beats.
    prog_payload, o_payload : rtl.layout.Payload
        The codecs of the ``prog`` and ``o`` payloads (the design's metadata).
    """

    model: object
    compiled: object
    prog_payload: Payload
    o_payload: Payload
    prog: list = field(default_factory=list)
    x: list = field(default_factory=list)  # (word, cycle)
    w: list = field(default_factory=list)
    o: list = field(default_factory=list)  # (code, cycle)
    ops: list = field(default_factory=list)
    origin: int | None = None
    loading: bool = False  # a resident engine's load phase comes first since the reset
    load_prog: tuple | None = None  # (word, cycle) of the load descriptor
    load_op: OpObservation | None = None  # the load phase's end
    store_w: list = field(default_factory=list)  # the w beats of the last completed load (kept over a reset)

    def __post_init__(self) -> None:
        from rtl.engine.top import encode_program, w_beats

        p = self.compiled.program
        self.expected_prog = [flat_values(b) for b in encode_program(p)]
        self.expected_w = w_beats(p, self.compiled.weights)
        self.n_x = p.tensors[p.input].words
        self.n_ops = len(p.ops)
        self.n_out = p.tensors[p.output].channels
        # with config.trace every operation but the last sends its output first (hwsim.engine rule 6)
        cfg = p.config
        self.trace_beats = [p.tensors[op.dst].words * cfg.cols if cfg.trace else 0 for op in p.ops[:-1]]
        self.o_per_image = sum(self.trace_beats) + self.n_out

    def reset(self) -> None:
        """Forget everything (after a reset of the DUT) but a loaded store's beats: cycle 0 is the next
        ``prog`` beat."""
        if self.load_op is not None:
            self.store_w = list(self.w[: len(self.expected_w)])
        self.prog, self.x, self.w, self.o, self.ops = [], [], [], [], []
        self.origin = None
        self.loading, self.load_prog, self.load_op = False, None, None

    @property
    def resident(self) -> bool:
        return self.compiled.program.config.resident

    def image_w(self) -> list:
        """The ``w`` beats image ``k`` runs on: its own (streamed), the store's (resident)."""
        return self.w[: len(self.expected_w)] if self.load_op is not None or self.loading else self.store_w

    # --- monitor callbacks ---------------------------------------------------------
    def on_prog(self, word: int, cycle: int) -> None:
        if self.origin is None:
            self.origin = cycle
        if self.loading and self.load_prog is None:
            self.load_prog = (word, cycle)
            return
        self.prog.append((word, cycle))

    def on_x(self, word: int, cycle: int) -> None:
        self.x.append((word, cycle))

    def on_w(self, word: int, cycle: int) -> None:
        self.w.append(word)

    def on_o(self, word: int, cycle: int) -> None:
        self.o.append((self.o_payload.unpack_vector(word)[0], cycle))

    def on_op_done(self, cycle: int, now: dict, after: dict) -> None:
        obs = OpObservation(index=now["op_index"], end=now["cycles"], counters=after)
        if self.loading and self.load_op is None:
            self.load_op = obs
            return
        self.ops.append(obs)

    def base(self) -> tuple[int, dict]:
        """The cycle image 0 starts in and the counters before it: after the load phase, or 0 and zeros."""
        if self.load_op is None:
            return 0, {n: 0 for n in (*OP_COUNTERS, "prog_beats", "x_beats")}
        return self.load_op.end + 1, self.load_op.counters

    # --- per image -----------------------------------------------------------------
    def images_done(self) -> int:
        """Images whose every operation has finished."""
        return len(self.ops) // self.n_ops

    def expect(self, k: int) -> dict:
        """Expected results of image ``k``, from the observed beats of that image."""
        from quant.intmodel import golden
        from hwsim.reference import run_engine

        p = self.compiled.program
        xw = [w for w, _ in self.x[k * self.n_x : (k + 1) * self.n_x]]
        nw = len(self.expected_w)
        wb = self.image_w() if self.resident else self.w[k * nw : (k + 1) * nw]
        image = image_from_words(p, xw)
        ws = weights_from_beats(p, wb)
        ref = run_engine(p, ws, image)
        outs = golden.run_codes(self.model, image[None])
        gold = outs[self.model.output.name][0].reshape(-1)
        return {
            "ref_traces": ref.traces,
            "golden_layers": {op.name: outs[op.name][0] for op in p.ops[:-1]},
            "image": image,
            "ref_logits": np.asarray(ref.logits, dtype=np.int64),
            "golden_logits": np.asarray(gold, dtype=np.int64),
            "prog_intact": [self.prog_payload.unpack(b)
                            for b, _ in self.prog[k * self.n_ops : (k + 1) * self.n_ops]] == self.expected_prog,
            "prog_cycles": [c - self.origin for _, c in self.prog[k * self.n_ops : (k + 1) * self.n_ops]],
            "w_intact": [int(b) for b in wb] == [int(b) for b in self.expected_w],
            "x_last_cycle": self.x[(k + 1) * self.n_x - 1][1],
        }


def check_image(run: ObservedRun, k: int, est, *, exact_cycles: bool) -> dict:
    """Compare image ``k`` of ``run`` with its expectation and hwsim's ``est`` (an ``EngineEstimate``).

    Returns a record: ``logits`` (DUT), ``ref``, ``golden``, per operation the
    measured and predicted ``start``/``end``/``cycles`` and counters, the
    image's ``cycles_measured``/``cycles_predicted`` (its span: first cycle
    after the previous image's last event, or cycle 0, to its last event) and
    ``mismatches`` (human-readable lines; empty when everything is exact).
    With ``exact_cycles`` False (back-pressure) cycles must only be no fewer
    than predicted; everything else stays exact.
    """
    exp = run.expect(k)
    bad: list[str] = []
    n_ops, n_out, per = run.n_ops, run.n_out, run.o_per_image
    beats = run.o[k * per : (k + 1) * per]
    logits = [v for v, _ in beats[per - n_out :]]
    traced = _check_traces(run, exp, [v for v, _ in beats[: per - n_out]], bad)
    if not exp["prog_intact"]:
        bad.append("prog: the observed descriptors differ from the compiled program")
    if not exp["w_intact"]:
        bad.append("w: the observed weight stream differs from the compiled one")
    if logits != exp["ref_logits"].tolist():
        bad.append(f"logits {logits} != engine reference on the observed beats {exp['ref_logits'].tolist()}")
    if logits != exp["golden_logits"].tolist():
        bad.append(f"logits {logits} != quant.intmodel.golden {exp['golden_logits'].tolist()}")
    obs = run.ops[k * n_ops : (k + 1) * n_ops]
    at, before = run.base()  # image 0 starts after the load phase (resident, loaded since the reset) or in 0
    prev = run.ops[k * n_ops - 1].counters if k else before
    shift = at + k * est.total_cycles  # image k > 0 repeats the schedule, program included
    # an operation starts the cycle after its descriptor beat; operation 0 after the image's last x beat
    starts = [c + 1 for c in exp["prog_cycles"]]
    if starts:
        starts[0] = exp["x_last_cycle"] - run.origin + 1
    ops = []
    for j, (o, layer) in enumerate(zip(obs, est.layers)):
        got = {n: o.counters[n] - prev[n] for n in OP_COUNTERS}
        want = {n: getattr(layer, n) for n in OP_COUNTERS}
        start = starts[j] if j < len(starts) else o.end
        rec = {"name": layer.name, "start": start, "end": o.end, "cycles": o.end - start + 1,
               "start_predicted": layer.start + shift, "end_predicted": layer.end + shift,
               "cycles_predicted": layer.cycles, "counters": got, "counters_predicted": want}
        ops.append(rec)
        if o.index != j:
            bad.append(f"op_done reported operation {o.index} where operation {j} ({layer.name}) ends")
        if got != want:
            diff = {n: (got[n], want[n]) for n in OP_COUNTERS if got[n] != want[n]}
            bad.append(f"{layer.name}: counters (measured, predicted) {diff}")
        if exact_cycles:
            if (rec["start"], rec["end"]) != (rec["start_predicted"], rec["end_predicted"]):
                bad.append(f"{layer.name}: cycles {rec['start']}..{rec['end']}, hwsim predicts "
                           f"{rec['start_predicted']}..{rec['end_predicted']}")
        elif rec["cycles"] < layer.cycles:
            bad.append(f"{layer.name}: {rec['cycles']} cycles under back-pressure, below the stall-free {layer.cycles}")
        prev = o.counters
    last = obs[-1] if len(obs) == n_ops else None
    if len(obs) != n_ops:
        bad.append(f"{len(obs)} of {n_ops} operations finished")
    first = at if k == 0 else run.ops[k * n_ops - 1].end + 1
    measured = (last.end + 1 - first) if last else None
    predicted = est.total_cycles
    if last is not None:
        c = last.counters
        want_px = (before["prog_beats"] + (k + 1) * est.prog_beats, (k + 1) * est.x_beats)
        if (c["prog_beats"], c["x_beats"]) != want_px:
            bad.append(f"prog/x beats {c['prog_beats']}/{c['x_beats']}, expected {want_px[0]}/{want_px[1]}")
        o_last = run.o[(k + 1) * per - 1][1] - run.origin if len(run.o) >= (k + 1) * per else None
        if o_last != last.end:
            bad.append(f"the last o beat fired in cycle {o_last}, the last operation ended in {last.end}")
        if exact_cycles and measured != predicted:
            bad.append(f"image took {measured} cycles, hwsim predicts {predicted}")
        if not exact_cycles and measured < predicted:
            bad.append(f"image took {measured} cycles under back-pressure, below the stall-free {predicted}")
    return {"image": k, "logits": logits, "ref": exp["ref_logits"].tolist(), "golden": exp["golden_logits"].tolist(),
            "cycles_measured": measured, "cycles_predicted": predicted, "ops": ops,
            "traced_layers": list(traced), "traces_ok": traced,
            "mismatches": bad}


def check_load(run: ObservedRun, est, *, exact_cycles: bool) -> dict:
    """Compare the load phase of ``run`` (resident weights) with hwsim's ``est.load``.

    Returns a record: ``counters`` measured and predicted
    (:data:`hwsim.engine.LOAD_COUNTERS`; ``cycles`` is the phase's last
    event's cycle + 1, counted from its descriptor) and ``mismatches``.
    Without ``exact_cycles`` (back-pressure) the cycles must be no fewer.
    """
    from hwsim.engine import LOAD_COUNTERS
    from rtl.engine.top import encode_load

    bad: list[str] = []
    want = est.load.as_dict()
    if run.load_op is None:
        return {"counters": None, "counters_predicted": want, "mismatches": ["the load phase did not finish"]}
    got = {n: run.load_op.counters[n] for n in LOAD_COUNTERS if n != "cycles"}
    got["cycles"] = run.load_op.end + 1
    if run.load_op.index != 0:
        bad.append(f"op_done reported operation {run.load_op.index} at the load phase's end")
    if [int(b) for b in run.w[: len(run.expected_w)]] != [int(b) for b in run.expected_w]:
        bad.append("w: the observed load differs from the compiled weight stream")
    if run.load_prog is None or run.prog_payload.unpack(run.load_prog[0]) != flat_values(
            encode_load(run.compiled.program)):
        bad.append("prog: the observed load descriptor differs from the compiled one")
    for n in LOAD_COUNTERS:
        if n == "cycles" and not exact_cycles:
            if got[n] < want[n]:
                bad.append(f"load phase: {got[n]} cycles under back-pressure, below the stall-free {want[n]}")
        elif got[n] != want[n]:
            bad.append(f"load phase: {n} {got[n]}, hwsim predicts {want[n]}")
    return {"counters": got, "counters_predicted": want, "mismatches": bad}


def _check_traces(run: ObservedRun, exp: dict, beats: list, bad: list) -> list:
    """Compare one image's trace beats, layer by layer, with golden's layer outputs and the reference's beats.

    Returns, for each layer whose trace was compared (none without
    ``config.trace``), its name -> whether it was equal to both.
    """
    from rtl.engine.top import trace_codes

    p = run.compiled.program
    mask = (1 << p.config.act_bits) - 1
    out, pos = {}, 0
    for op, n in zip(p.ops[:-1], run.trace_beats):
        if not n:
            continue
        part = [int(b) & mask for b in beats[pos : pos + n]]
        pos += n
        before = len(bad)
        if len(part) != n:
            bad.append(f"{op.name}: trace has {len(part)} of {n} beats")
        else:
            if part != exp["ref_traces"][op.name]:
                bad.append(f"{op.name}: trace differs from the engine reference on the observed beats")
            got = trace_codes(p, op.name, part)
            want = exp["golden_layers"][op.name]
            if not np.array_equal(got, want):
                at = np.argwhere(got != want)[0].tolist()
                bad.append(f"{op.name}: traced output differs from quant.intmodel.golden at {at}: "
                           f"{int(got[tuple(at)])} != {int(want[tuple(at)])}")
        out[op.name] = len(bad) == before
    return out
