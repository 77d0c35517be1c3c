"""`srgan eval`: benchmark tables and side-by-side reports under the standard protocol.

`evaluate(models, datasets, scale)` scores; `write_report(results, out_dir)` writes CSV/JSON/HTML.
"""

from srgan.evaluation.report import write_report
from srgan.evaluation.runner import PROTOCOL, EvalResults, evaluate, format_table

__all__ = ["PROTOCOL", "EvalResults", "evaluate", "format_table", "write_report"]
