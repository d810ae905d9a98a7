"""Projections: views built from the event log, each remembering how far it got (a checkpoint)."""
