"""The macro's digital controller in Amaranth: AXI4-Lite registers, sequencers and TDC."""
