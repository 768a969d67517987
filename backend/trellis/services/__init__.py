"""The use cases: catalog refresh, scoring, observability pages, scaffolding and updates.

Each service receives plain typed objects (sources behind their ports, options, clocks); only
the composition roots (``trellis.wiring``, with ``trellis.app`` and ``trellis.cli.wiring``
above it) read ``Settings``.
"""
