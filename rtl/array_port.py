"""The digital pins between the controller and the analog MRAM array (docs/timing.md)."""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from macro_spec.params import MacroParams


class ArraySignature(wiring.Signature):
    """Array port, seen from the controller (``Out`` = driven by the controller).

    No real-valued signal crosses it: the analog model behind it keeps every analog quantity
    and answers with edges at exact times.

    Parameters
    ----------
    params : MacroParams
        Geometry.
    """

    def __init__(self, params: MacroParams):
        if not isinstance(params, MacroParams):
            raise TypeError(f"params must be a MacroParams, not {params!r}")
        super().__init__({
            "x": Out(params.rows),
            "evaluate": Out(1),
            "cmp": In(params.cols),
            "row": Out(range(params.rows)),
            "side": Out(1),
            "wr_en": Out(1),
            "wr_cols": Out(params.cols),
            "wr_data": Out(params.cols),
            "rd_en": Out(1),
            "rd_data": In(params.cols),
        })
