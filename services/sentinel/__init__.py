"""SENTINEL: every agent tool call judged before it runs, logged, and blocked or escalated when dangerous.

Everything in this package that the hooks import (model, shell, judge, rules, policy, audit, approvals,
spool, paths) is **stdlib only**: the hooks run on every tool call and must start in milliseconds.
The bot-side pieces (`alerts.py`, `report.py`) may use the database.
"""
