"""The OpenAPI 3.1 document of /api/v1 (its schemas are JSON Schema 2020-12, so tests validate real
responses against them). It is as strict as the server: path parameters carry the patterns and
integer ranges the server accepts, request bodies refuse unknown keys, and every status the server
can answer is listed (tests/api/test_fuzz_api.py runs schemathesis against it)."""
from ecrf.capture.service import MAX_REASON, SUBJECT_ID
from ecrf.web.input_guard import MAX_DB_BIGINT, MAX_DB_INT

#: Path parameters by name; anything else is a non-empty string.
PATH_PARAMS = {
    "subject": {"type": "string", "pattern": SUBJECT_ID.pattern},
    "record": {"type": "integer", "minimum": 0, "maximum": MAX_DB_INT,
               "description": "The log record number (the `record` of a created record)"},
    "version": {"type": "integer", "minimum": 0, "maximum": MAX_DB_INT},
}
REASON = {"type": "string", "minLength": 1, "maxLength": MAX_REASON,
          "description": "The reason for change: required to change data already saved (a 422 "
                         "points at /reason without it)."}

ERROR = {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {
    "error": {"type": "string"},
    "errors": {"type": "array", "items": {"type": "object", "required": ["pointer", "message"],
                                          "additionalProperties": False,
                                          "properties": {"pointer": {"type": "string"},
                                                         "message": {"type": "string"}}}}}}
SUBJECT = {"type": "object", "required": ["subject", "site", "state"], "properties": {
    "subject": {"type": "string"}, "site": {"type": "string"},
    "state": {"enum": ["screening", "screen_failed", "enrolled", "withdrawn", "completed"]},
    "state_reason": {"type": ["string", "null"]}}}
RECORD = {"type": "object", "required": ["data", "status", "version", "form_version"], "properties": {
    "data": {"type": "object"}, "missing": {"type": "object"},
    "status": {"enum": ["not_started", "draft", "complete", "verified", "signed", "locked"]},
    "version": {"type": "integer", "minimum": 0}, "form_version": {"type": "string"},
    "record": {"type": "string", "pattern": "^[1-9][0-9]*$"}}}
SAVE = {"type": "object", "required": ["data"], "additionalProperties": False, "properties": {
    "data": {"type": "object"},
    "complete": {"type": "boolean", "description":
                 "The status to save: true = complete (every required field checked), false = draft. "
                 "Omitted: a new record is a draft and an existing one keeps its status (a complete "
                 "record stays complete and is checked as complete). false on a complete record "
                 "reopens it as a draft, which needs a reason."},
    "missing": {"type": "object", "description": "Missing-data flags by field pointer: "
                "{\"/sbp\": {\"flag\": \"not_done\", \"reason\": \"...\"}}."},
    "version": {"type": "integer", "minimum": 0, "description":
                "The version your change is based on (the record's `version`, or its ETag in "
                "`If-Match`; 0 for a form not started). Required to change a record that exists "
                "(428 without it); a stale one gives 409 with the record as it is now."},
    "reason": dict(REASON, description="Required to change data already saved, and to reopen a "
                                       "complete record as a draft (a 422 points at /reason without it).")}}
#: A PUT to an existing log record changes saved data, so it names its reason.
SAVE_EXISTING = dict(SAVE, required=["data", "reason"])
SAVED = {"type": "object", "required": ["version", "status"], "properties": {
    "version": {"type": "integer"}, "status": {"type": "string"},
    "changed": {"type": "array", "items": {"type": "string"}}}}
CONFLICT = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string"}, "version": {"type": "integer"}, "data": {"type": "object"},
    "missing": {"type": "object"},
    "status": {"type": "string"}}}
REPORT = {"type": "object", "required": ["report", "version", "sha256", "pdf"], "properties": {
    "report": {"type": "string"}, "version": {"type": "integer", "minimum": 1},
    "type": {"type": "string"}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "pages": {"type": ["integer", "null"]}, "pdf": {"type": "string"}, "site": {"type": "string"},
    "subject": {"type": "string"}, "ae_entry": {"type": "integer"},
    "issued_at": {"type": ["string", "null"]}, "issued_by": {"type": ["string", "null"]},
    "awareness_at": {"type": ["string", "null"]}, "due_at": {"type": ["string", "null"]},
    "overdue": {"type": "boolean"}, "received_at": {"type": ["string", "null"]},
    "received_by": {"type": ["string", "null"]}}}
AUDIT_EVENT = {"type": "object", "required": ["seq", "ts", "action"], "properties": {
    "seq": {"type": "integer"}, "ts": {"type": "string"}, "action": {"type": "string"},
    "actor": {"type": ["string", "null"]}, "role": {"type": ["string", "null"]},
    "site": {"type": ["string", "null"]}, "subject": {"type": ["string", "null"]},
    "visit": {"type": ["string", "null"]}, "form": {"type": ["string", "null"]},
    "form_version": {"type": ["string", "null"]}, "record": {"type": ["integer", "null"]},
    "field": {"type": ["string", "null"]},
    "old": {"description": "The old value as shown (JSON text), or a masked allocation value"},
    "new": {"description": "The new value as shown (JSON text), or a masked allocation value"},
    "reason": {"type": ["string", "null"]}, "channel": {"type": ["string", "null"]}}}
RANDOMIZATION = {"type": "object", "required": ["randomized"], "properties": {
    "randomized": {"type": "boolean"}, "emergency_unblinded": {"type": "boolean"},
    "randomization_number": {"type": "integer"}, "randomized_at": {"type": "string"},
    "arm": {"type": "string", "description": "Only for a caller who may see the arm"},
    "arm_label": {"type": "string"}, "kit": {"type": "string"}}}
RANDOMIZED = {"type": "object", "required": ["randomization_number", "randomized_at"], "properties": {
    "randomization_number": {"type": "integer"}, "randomized_at": {"type": "string"},
    "arm": {"type": "string", "description": "Only for a caller who may see the arm"}}}
UNBLINDED = {"type": "object", "required": ["arm", "arm_label", "unblinded_at", "notified"], "properties": {
    "arm": {"type": "string"}, "arm_label": {"type": "string"}, "unblinded_at": {"type": "string"},
    "notified": {"type": "string"}}}
BALANCE = {"type": "object", "required": ["arms", "overall", "strata"], "properties": {
    "arms": {"type": "array", "items": {"type": "string"}}, "overall": {"type": "object"},
    "strata": {"type": "object"}, "factors": {"type": "object"}}}
CREATED_RECORD = {"type": "object", "required": ["record", "version"], "properties": {
    "record": {"type": "string", "pattern": "^[1-9][0-9]*$"}, "version": {"type": "integer"}, "status": {"type": "string"}}}


PUT_RULES = ("Changing a record that exists needs the version it was based on: `version` in the "
             "body or its ETag in `If-Match` (428 without; 409 with the current record when stale), "
             "so that no change is overwritten unseen. `complete` omitted keeps the record's status; "
             "`complete: false` on a complete record reopens it and needs a `reason`. Of writers "
             "racing from the same version exactly one wins; the others get 409.")
CONFLICT_TEXT = ("Stale version (the body holds the record as it is now, ETag its version), a locked "
                 "form, or another writer that committed first")


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name, description):
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*codes):
    text = {400: "Malformed request: not JSON, JSON nested too deeply, a NUL character, a bad number", 401: "No valid token", 403: "Your role may not do this",
            404: "Unknown study, subject, visit, form or record (or one you may not see)",
            413: "Body larger than the limit (1 MiB by default)", 415: "Not JSON",
            422: "Invalid data; errors point at the fields (or an Idempotency-Key reused for "
                 "another request)",
            428: "The record exists: send the version your change is based on (`version` or "
                 "`If-Match`)",
            503: "The database is not available (down, locked, read-only or full); nothing was "
                 "saved: try again after `Retry-After` seconds"}
    # Any request may be malformed (400: a NUL anywhere), name something unknown (404) or meet a
    # database that cannot serve (503).
    return {str(c): _json("Error", text[c]) for c in sorted({400, 404, 503, *codes})}


IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "The ETag of the record your change is based on (`\"3\"`), instead of or "
                           "beside `version` in the body (both must agree). Weak tags, lists and * are "
                           "refused (400)."}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
    "description": "Any unique text of yours (a UUID). A retry with the same key and the same request "
                   "(path and body) answers exactly as the first time (with `Idempotent-Replayed: true`) "
                   "and creates nothing again; the same key with another request is a 422. Keys are per "
                   "user, stored with what they created, and kept 24 hours."}
ETAG = {"ETag": {"description": "The record's version as a strong ETag (`\"3\"`): send it back in "
                                "`If-Match`.", "schema": {"type": "string"}}}


def _with_etag(response):
    return dict(response, headers=ETAG)


def _params(*names):
    return [{"name": n, "in": "path", "required": True,
             "schema": PATH_PARAMS.get(n, {"type": "string", "minLength": 1})} for n in names]


def document(base="/api/v1"):
    subject_path = f"{base}/studies/{{study}}/subjects/{{subject}}"
    write_errors = _errors(400, 401, 403, 404, 413, 415, 422)
    put_errors = _errors(400, 401, 403, 404, 413, 415, 422, 428)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ecrf API", "version": "1",
                 "description": "Electronic case report forms. Authenticate with "
                                "`Authorization: Bearer <token>` (`ecrf token create USERNAME`)."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "Subject": SUBJECT, "Record": RECORD, "Save": SAVE,
                        "Saved": SAVED, "Conflict": CONFLICT, "CreatedRecord": CREATED_RECORD,
                        "SubjectList": {"type": "object", "required": ["subjects"], "properties": {
                            "subjects": {"type": "array", "items": _ref("Subject")}}},
                        "Report": REPORT, "AuditEvent": AUDIT_EVENT,
                        "SubjectDetail": {"allOf": [_ref("Subject")], "type": "object",
                                          "properties": {"randomization": RANDOMIZATION}},
                        "Randomized": RANDOMIZED, "Unblinded": UNBLINDED, "Balance": BALANCE,
                        "ReportList": {"type": "object", "required": ["reports"], "properties": {
                            "reports": {"type": "array", "items": _ref("Report")},
                            "clock": {"type": "object"}}},
                        "AuditPage": {"type": "object", "required": ["events"], "properties": {
                            "events": {"type": "array", "items": _ref("AuditEvent")},
                            "next": {"type": ["string", "null"]}}},
                        "RecordList": {"type": "object", "required": ["records"], "properties": {
                            "records": {"type": "array", "items": _ref("Record")}}},
                        "CodingTerms": {"type": "object", "required": ["terms"], "properties": {
                            "terms": {"type": "array", "items": {
                                "type": "object", "required": ["llt_code", "term", "soc", "grades"],
                                "properties": {"llt_code": {"type": "string"}, "term": {"type": "string"},
                                               "soc": {"type": "string"},
                                               "grades": {"type": "object", "description":
                                                          "Only the grades the term defines: grade -> text",
                                                          "additionalProperties": {"type": "string"}}}}}}},
                        "NewSubject": {"type": "object", "required": ["site"], "additionalProperties": False,
                                       "properties": {
                            "site": {"type": "string"},
                            "subject": dict(PATH_PARAMS["subject"], description="Omit to generate one.")}},
                        "SaveExisting": SAVE_EXISTING},
        },
        "security": [{"bearer": []}],
        "paths": {
            f"{base}/studies/{{study}}/subjects": {
                "parameters": _params("study"),
                "get": {"summary": "Subjects the caller may see",
                        "parameters": [{"name": "site", "in": "query", "schema": {"type": "string"}}],
                        "responses": {"200": _json("SubjectList", "Subjects with their states"),
                                      **_errors(401, 403, 404)}},
                "post": {"summary": "Enrol a subject", "parameters": [IDEMPOTENCY_KEY],
                         "description": "Without `subject` the id is generated from the study's template "
                                        "and the site's counter (parallel enrolments never collide).",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": _ref("NewSubject")}}},
                         "responses": {"201": _json("Subject", "Created"),
                                       "409": _json("Error", "The subject id is taken, or a request with "
                                                             "the same Idempotency-Key is running"),
                                       **write_errors}},
            },
            f"{subject_path}/visits/{{visit}}/forms/{{form}}": {
                "parameters": _params("study", "subject", "visit", "form"),
                "get": {"summary": "A visit form", "responses": {"200": _with_etag(_json("Record", "The record")),
                                                                 **_errors(401, 403, 404)}},
                "put": {"summary": "Save a visit form",
                        "description": PUT_RULES, "parameters": [IF_MATCH],
                        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Save")}}},
                        "responses": {"200": _with_etag(_json("Saved", "Saved")),
                                      "409": _json("Conflict", CONFLICT_TEXT), **put_errors}},
            },
            f"{subject_path}/forms/{{form}}": {
                "parameters": _params("study", "subject", "form"),
                "get": {"summary": "The subject's records of a log form",
                        "responses": {"200": _json("RecordList", "Records"), **_errors(401, 403, 404)}},
                "post": {"summary": "Add a log record", "parameters": [IDEMPOTENCY_KEY],
                         "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Save")}}},
                         "responses": {"201": _with_etag(_json("CreatedRecord", "Created (Location: the record)")),
                                       "409": _json("Error", "Locked, or a request with the same "
                                                             "Idempotency-Key is running"),
                                       **write_errors}},
            },
            f"{subject_path}/forms/{{form}}/{{record}}/sae-reports": {
                "parameters": _params("study", "subject", "form", "record"),
                "get": {"summary": "The SAE reports issued for one AE record, with the reporting clock",
                        "responses": {"200": _json("ReportList", "Reports"), **_errors(401, 403, 404)}},
                "post": {"summary": "Issue an SAE report (initial, or a follow-up when one exists)",
                         "parameters": [IDEMPOTENCY_KEY],
                         "responses": {"201": _json("Report", "Issued"),
                                       "409": _json("Error", "Nothing changed since the last report"),
                                       **_errors(400, 401, 403, 404, 422)}},
            },
            f"{base}/studies/{{study}}/sae-reports": {
                "parameters": _params("study"),
                "get": {"summary": "Every SAE report the caller may see (the sponsor inbox)",
                        "responses": {"200": _json("ReportList", "Reports"), **_errors(401, 403, 404)}},
            },
            f"{base}/studies/{{study}}/sae-reports/{{number}}/{{version}}/pdf": {
                "parameters": _params("study", "number", "version"),
                "get": {"summary": "The issued PDF, exactly as stored",
                        "responses": {"200": {"description": "The PDF",
                                              "content": {"application/pdf": {}}},
                                      **_errors(401, 403, 404)}},
            },
            f"{base}/studies/{{study}}/sae-reports/{{number}}/{{version}}/received": {
                "parameters": _params("study", "number", "version"),
                "post": {"summary": "Mark a report received (sponsor)",
                         "parameters": [IDEMPOTENCY_KEY],
                         "responses": {"200": _json("Report", "Marked received"),
                                       "409": _json("Error", "Already received"),
                                       **_errors(400, 401, 403, 404, 422)}},
            },
            f"{base}/coding/ctcae": {
                "get": {"summary": "Search the CTCAE v5.0 terms (words of the term, an LLT code or the SOC)",
                        "parameters": [{"name": "q", "in": "query", "schema": {"type": "string"}}],
                        "responses": {"200": _json("CodingTerms", "Terms with their defined grades, best first"),
                                      **_errors(401, 403)}},
            },
            f"{base}/studies/{{study}}/audit": {
                "parameters": _params("study"),
                "get": {"summary": "Audit events the caller may read, newest first",
                        "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                                       for n in ("site", "subject", "visit", "form", "field", "user",
                                                 "action", "since", "until")]
                                      + [{"name": "record", "in": "query", "schema": {
                                          "type": "integer", "minimum": 1, "maximum": MAX_DB_INT}},
                                         {"name": "before", "in": "query", "schema": {
                                             "type": "integer", "minimum": 1, "maximum": MAX_DB_BIGINT}}],
                        "responses": {"200": _json("AuditPage", "Events"), **_errors(401, 403, 404, 422)}},
            },
            subject_path: {
                "parameters": _params("study", "subject"),
                "get": {"summary": "One subject, with its randomization (the arm only for unblinded callers)",
                        "responses": {"200": _json("SubjectDetail", "The subject"), **_errors(401, 403, 404)}},
            },
            f"{subject_path}/randomize": {
                "parameters": _params("study", "subject"),
                "post": {"summary": "Randomize the subject: the next slot of its stratum",
                         "parameters": [IDEMPOTENCY_KEY],
                         "responses": {"201": _json("Randomized", "Randomized (arm only for unblinded callers)"),
                                       "409": _json("Error", "Not enrolled, already randomized, no list, "
                                                    "or the stratum's slots are used up"),
                                       **_errors(401, 403, 404, 422)}},
            },
            f"{subject_path}/unblind": {
                "parameters": _params("study", "subject"),
                "post": {"summary": "Emergency unblinding of one subject for the caller "
                                    "(body: {\"reason\", \"password\"})",
                         "description": "Takes no Idempotency-Key: each unblinding is an act of its own, "
                                        "recorded and notified each time it is asked for.",
                         "responses": {"200": _json("Unblinded", "The arm, shown to the caller only"),
                                       "409": _json("Error", "The subject is not randomized"),
                                       **write_errors}},
            },
            f"{base}/studies/{{study}}/randomization/balance": {
                "parameters": _params("study"),
                "get": {"summary": "Counts per arm per stratum and overall (unblinded roles)",
                        "responses": {"200": _json("Balance", "The balance"), **_errors(401, 403, 404)}},
            },
            f"{subject_path}/forms/{{form}}/{{record}}": {
                "parameters": _params("study", "subject", "form", "record"),
                "get": {"summary": "One log record", "responses": {"200": _with_etag(_json("Record", "The record")),
                                                                   **_errors(401, 403, 404)}},
                "put": {"summary": "Save a log record",
                        "description": PUT_RULES, "parameters": [IF_MATCH],
                        "requestBody": {"required": True, "content": {"application/json": {
                            "schema": _ref("SaveExisting")}}},
                        "responses": {"200": _with_etag(_json("Saved", "Saved")),
                                      "409": _json("Conflict", CONFLICT_TEXT), **put_errors}},
            },
            **_export_paths(base),
        },
    }


def _export_paths(base):
    """Data exports (ecrf/web/exports.py)."""
    return {f"{base}/studies/{{study}}/export": {
        "parameters": _params("study"),
        "get": {"summary": "Export the study's data the caller may see (streamed; audited)",
                "parameters": [
                    {"name": "format", "in": "query", "schema": {
                        "enum": ["csv", "csv-long", "odm", "dataset-json", "ndjson", "dta", "sav", "xpt"],
                        "default": "csv"}},
                    {"name": "site", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
                     "style": "form", "explode": True},
                    {"name": "form", "in": "query", "schema": {"type": "array", "items": {"type": "string"}},
                     "style": "form", "explode": True}],
                "responses": {"200": {"description": "ODM as XML; every other format a ZIP of its files "
                                                     "with manifest.json",
                                      "content": {"application/xml": {}, "application/zip": {}}},
                              "501": _json("Error", "The format's optional extra is not installed"),
                              "507": _json("Error", "The server could not write the export"),
                              **_errors(401, 403, 404, 422)}}}}
