"""[1] Study definitions: forms/<study>/*.json → validated, frozen, content-hashed definitions."""
from ecrf.definitions.loader import DefinitionError, StudyInvalid, load_study
from ecrf.definitions.model import FieldDef, FormDef, Study, Visit

__all__ = ["DefinitionError", "FieldDef", "FormDef", "Study", "StudyInvalid", "Visit", "load_study"]
