"""Coding of reported terms against dictionaries: CTCAE v5.0 (shipped, an NCI publication) and a
site's licensed MedDRA release (imported into the instance folder, never shipped)."""
