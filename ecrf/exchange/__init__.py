"""Data exchange: exports (CSV, statistics formats, CDISC ODM, Dataset-JSON) and imports."""
