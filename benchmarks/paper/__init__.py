"""The paper's Table 1, regenerated: ``python benchmarks/paper/run.py --quick | --full`` (see run.py)."""

__all__: list[str] = []
