"""The macro on an FPGA board: controller, synthesisable array stand-in and a UART bridge.

Submodules (imported on demand, so :mod:`rtl.board.protocol` stays free of Amaranth):

- :mod:`rtl.board.protocol` -- the framed serial protocol (pure Python, shared with the firmware);
- :mod:`rtl.board.uart`, :mod:`rtl.board.bridge` -- 8N1 UART and the UART-to-AXI4-Lite bridge;
- :mod:`rtl.board.array_model` -- the digital array stand-in;
- :mod:`rtl.board.top` -- :class:`~rtl.board.top.BoardTop` and the amaranth-boards wrapper;
- :mod:`rtl.board.sim` -- Verilog of the board top and its cocotb build;
- :mod:`rtl.board.fpga` -- synthesis, place and route and the resource report (``make fpga``).

See docs/fpga.md.
"""
