"""Backtesting: the same plugin code over history, fast, with metrics and pictures.

``autotrader backtest`` is ``cli.main``; ``run.run(Spec)`` runs one backtest from code and
``api.backtest_recent`` the last few sessions (the UI). Paths: ``replay`` (the plugin minute by
minute, in memory, the default), ``vectorized`` (whole-array versions of known strategies),
``exact`` (the live engine's tick over temporary SQLite files). ``provider`` serves the seed
data functions without look-ahead; ``metrics``, ``report`` and ``charts`` make the report.
"""
