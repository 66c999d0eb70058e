"""Pure incident-response domain: policy, rotations, escalation arithmetic, templates.

Nothing in this package performs I/O or imports Temporal, so it can be unit-tested
directly and used from workflow code (deterministically) and activities alike.
"""
