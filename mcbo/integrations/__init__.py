"""Bridges to the tools mcbo users already run (``mcbo.integrations.optuna``).

Each bridge lives in its own module and imports its tool only when that module is imported.
"""
