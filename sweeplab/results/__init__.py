"""Reading results. row (core + open metrics) and store (one row file), identity (run ids),
rows (the one reader: load_rows -> DataFrame), filters (--where), analysis (summarize), pareto,
series, tables and render (text), layout, format (cells), stats and compare_view (across
seeds), commands (table, report), plots, report, objectives, wandb.

No module here imports torch or Lightning at module level.
"""
