"""The register map source: layout rules, field helpers, and the generated documentation."""

from pathlib import Path

import pytest

from macro_spec.params import MacroParams
from macro_spec.regmap import REGISTERS, Field, Register, reg, render_c_header, render_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_registers_md_is_up_to_date():
    committed = (ROOT / "docs" / "registers.md").read_text()
    assert committed == render_markdown(), "docs/registers.md is stale: run 'make docs'"


def test_windows_fit_the_largest_geometry():
    big = MacroParams(rows=128, cols=128, tdc_bits=16)
    for r in REGISTERS:
        assert r.words(big) <= r.reserve, r.name


def test_overlapping_fields_and_bad_access_are_rejected():
    with pytest.raises(ValueError, match="overlaps"):
        Register("BAD", 0x0, "RW", "x", (Field("A", 0, 4, "a"), Field("B", 3, 2, "b")))
    with pytest.raises(ValueError, match="access"):
        Register("BAD", 0x0, "RX", "x")
    with pytest.raises(ValueError, match="aligned"):
        Register("BAD", 0x2, "RW", "x")


def test_field_insert_extract_signed():
    f = reg("COL_OFFSET").field("VALUE")
    assert f.extract(f.insert(-5)) == -5
    assert f.insert(-1) == 0xFFFF
    with pytest.raises(ValueError):
        f.insert(40000)
    with pytest.raises(KeyError, match="NOPE"):
        reg("NOPE")


def test_c_header_names_every_register():
    h = render_c_header()
    for r in REGISTERS:
        assert f"MRAM_CIM_{r.name}_OFFSET 0x{r.offset:03X}u" in h


@pytest.mark.parametrize("kw", [dict(rows=7), dict(cols=129), dict(tdc_bits=3), dict(sync_stages=5), dict(rows=64.0),
                                dict(post_lanes=2), dict(post_lanes=6), dict(post_lanes=32)])
def test_params_out_of_range_are_rejected(kw):
    with pytest.raises((ValueError, TypeError), match=list(kw)[0]):
        MacroParams(**kw)
