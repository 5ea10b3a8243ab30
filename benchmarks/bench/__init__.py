"""Building blocks of ``benchmarks/run.py``: servers, generated files, measures, and the report."""
