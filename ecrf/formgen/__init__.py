"""[2] The form engine: a form version → WTForms class and page layout (build), the field-type
registry (fieldtypes), and the one mapping between submitted forms and JSON documents (convert)."""
from ecrf.formgen.build import FormLayout, build_form_class, layout_for
from ecrf.formgen.convert import Context, Converted, form_data, to_document, to_formdata

__all__ = ["Context", "Converted", "FormLayout", "build_form_class", "form_data", "layout_for",
           "to_document", "to_formdata"]
