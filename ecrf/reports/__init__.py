"""Reports [6]: the SAE report (CIOMS I) and subject casebooks, as PDFs.

``sae`` builds a report's content from the AE record, the subject's other forms and the study
definition; ``service`` issues (stores the PDF with its sha256, audited), lists and acknowledges
reports; ``mail`` sends them; ``casebook`` renders a subject's whole record; ``pdf`` is the one place
WeasyPrint is called, behind a closed URL fetcher.
"""
