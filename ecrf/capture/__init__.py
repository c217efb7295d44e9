"""[4] The one writer for clinical data: subjects and form records, each change audited with it."""
