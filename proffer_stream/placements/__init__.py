"""Placements: integrations' sites and placements, flows (one visit), and the offer a
placement shows, as segments."""
