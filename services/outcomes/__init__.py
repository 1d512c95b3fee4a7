"""Outcome claims, the review queue and the payments ledger."""
