"""Describe in words what loading a study folder would change against the stored current version."""

from ecrf.definitions.model import FieldDef, code_values, thaw


def describe_changes(old_definition, new_study):
    """Lines describing the change from ``old_definition`` (stored JSON, or None) to ``new_study``."""
    if old_definition is None:
        return [f"new study {new_study.id!r} with {len(new_study.forms)} forms and "
                f"{len(new_study.visits)} visits"]
    lines = []
    old_study, new_doc = old_definition["study"], thaw(new_study.document)
    old_forms = old_definition["forms"]
    new_forms = {fid: thaw(f.schema) for fid, f in new_study.forms.items()}

    for fid in sorted(set(new_forms) - set(old_forms)):
        lines.append(f"form {fid!r} added")
    for fid in sorted(set(old_forms) - set(new_forms)):
        lines.append(f"form {fid!r} removed")
    for fid in sorted(set(old_forms) & set(new_forms)):
        lines.extend(_form_changes(fid, old_forms[fid], new_forms[fid]))

    old_visits = {v["id"]: v for v in old_study["visits"]}
    new_visits = {v["id"]: v for v in new_doc["visits"]}
    for vid in sorted(set(new_visits) - set(old_visits)):
        lines.append(f"visit {vid!r} added")
    for vid in sorted(set(old_visits) - set(new_visits)):
        lines.append(f"visit {vid!r} removed")
    for vid in sorted(set(old_visits) & set(new_visits)):
        old, new = old_visits[vid], new_visits[vid]
        for key in ("label", "day", "window_before", "window_after"):
            if old.get(key) != new.get(key):
                lines.append(f"visit {vid!r}: {key} {old.get(key)!r} -> {new.get(key)!r}")
        added = [f for f in new["forms"] if f not in old["forms"]]
        removed = [f for f in old["forms"] if f not in new["forms"]]
        if added:
            lines.append(f"visit {vid!r}: forms added {', '.join(added)}")
        if removed:
            lines.append(f"visit {vid!r}: forms removed {', '.join(removed)}")

    rest_old = {k: v for k, v in old_study.items() if k != "visits"}
    rest_new = {k: v for k, v in new_doc.items() if k != "visits"}
    for key in sorted(set(rest_old) | set(rest_new)):
        if rest_old.get(key) != rest_new.get(key):
            lines.append(f"study {key!r} changed")
    return lines


def _form_changes(fid, old, new):
    lines = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in new_props:
        if name not in old_props:
            lines.append(f"form {fid!r}: field {name!r} added")
    for name in old_props:
        if name not in new_props:
            lines.append(f"form {fid!r}: field {name!r} removed")
    for name in new_props:
        if name not in old_props:
            continue
        before, after = old_props[name], new_props[name]
        if before == after:
            continue
        old_kind = FieldDef(name, name, before, False).kind
        new_kind = FieldDef(name, name, after, False).kind
        if old_kind != new_kind:
            lines.append(f"form {fid!r}: field {name!r} retyped from {old_kind} to {new_kind}")
        old_codes, new_codes = code_values(before), code_values(after)
        if old_codes != new_codes and old_codes is not None and new_codes is not None:
            added = [c for c in new_codes if c not in old_codes]
            removed = [c for c in old_codes if c not in new_codes]
            parts = ([f"added {', '.join(added)}"] if added else []) + (
                [f"removed {', '.join(removed)}"] if removed else [])
            lines.append(f"form {fid!r}: field {name!r} code list changed ({'; '.join(parts) or 'reordered'})")
        elif old_kind == new_kind:
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            lines.append(f"form {fid!r}: field {name!r} changed ({', '.join(changed)})")
    if old.get("required", []) != new.get("required", []):
        lines.append(f"form {fid!r}: required fields changed")
    rest = sorted(k for k in set(old) | set(new) if k not in ("properties", "required")
                  and old.get(k) != new.get(k))
    if rest:
        lines.append(f"form {fid!r}: {', '.join(rest)} changed")
    return lines
