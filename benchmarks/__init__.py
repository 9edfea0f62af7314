"""bpgpu's throughput benchmarks, installed as ``bpgpu.benchmarks``.

``bpgpu bench ARGS`` (or ``python -m bpgpu.benchmarks.bench ARGS``) runs
:func:`bpgpu.benchmarks.bench.main`; see ``benchmarks/README.md`` for the method and the fields.
"""
