"""Offers: requests, drafts, offers; trigger rules; writers; policy (pure)."""
