"""Decisions: the one best offer for a customer in a request's context, and its trace."""
