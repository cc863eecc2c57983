"""Reading results: row identity and files, one row reader, aggregates, tables, plots, report.

No module here imports torch or Lightning at module level.
"""
