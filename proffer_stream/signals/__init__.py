"""Signals: a customer's live profile, how events fold into it, and its read views. No I/O."""
