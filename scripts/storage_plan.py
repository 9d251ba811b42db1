#!/usr/bin/env python3
"""Plan a StatefulSet volumeClaimTemplate change before `helm upgrade` (deploy-monitoring.sh).

A StatefulSet's volumeClaimTemplates are immutable: when an upgrade changes them (a larger
`persistence.size`, a label), the API server refuses the whole upgrade. The way through that
keeps every volume: grow the existing PVCs where their StorageClass allows expansion, delete
the StatefulSet with --cascade=orphan (its pods and PVCs stay), and let `helm upgrade`
create it again; the new StatefulSet adopts the pods and claims by name.

Input, one JSON file each (kubectl/helm output, standard library only):
  --live      `kubectl get statefulsets -o json` of the release
  --rendered  the new render as JSON (`helm template ... | kubectl create --dry-run=client -o json -f -`:
              one document after another)
  --pvcs      `kubectl get pvc -o json` of the namespace
  --classes   `kubectl get storageclass -o json`

Output, one action a line, nothing when no template changed:
  expand <pvc> <size>       grow a claim (its StorageClass allows expansion)
  recreate <statefulset>    delete with --cascade=orphan; helm upgrade creates it again
  stop <message>            a change that cannot be made without losing or moving data: the
                            caller changes nothing and prints the messages
"""
import argparse
import json
import re
import sys

UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
         "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(q):
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q).strip())
    if not m or m.group(2) not in UNITS:
        raise ValueError(f"not a storage quantity: {q!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def template_view(t):
    """The parts of a volumeClaimTemplate a user sets (the server adds defaults to the rest)."""
    meta, spec = t.get("metadata") or {}, t.get("spec") or {}
    return {
        "labels": meta.get("labels") or {},
        "annotations": meta.get("annotations") or {},
        "accessModes": spec.get("accessModes") or [],
        "storageClassName": spec.get("storageClassName"),
        "size": ((spec.get("resources") or {}).get("requests") or {}).get("storage"),
    }


def items(doc):
    return doc.get("items", []) if isinstance(doc, dict) and "items" in doc else [doc]


def plan(live, rendered, pvcs, classes):
    new_sets = {o["metadata"]["name"]: o for o in items(rendered) if o.get("kind") == "StatefulSet"}
    classes = {c["metadata"]["name"]: c for c in items(classes)}
    default_class = next((n for n, c in classes.items()
                          if (c["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"), None)
    pvcs = items(pvcs)
    actions, stops = [], []
    for sts in items(live):
        name = sts["metadata"]["name"]
        new = new_sets.get(name)
        if new is None:
            continue
        old_t = {t["metadata"]["name"]: template_view(t) for t in sts["spec"].get("volumeClaimTemplates") or []}
        new_t = {t["metadata"]["name"]: template_view(t) for t in new["spec"].get("volumeClaimTemplates") or []}
        if old_t == new_t:
            continue
        for vct in sorted(set(old_t) | set(new_t)):
            a, b = old_t.get(vct), new_t.get(vct)
            if a is None or b is None:
                stops.append(f"StatefulSet {name}: volumeClaimTemplate '{vct}' is "
                             f"{'added' if a is None else 'removed'} (persistence switched "
                             f"{'on' if a is None else 'off'}); the existing pods cannot keep their data that way: "
                             f"uninstall and reinstall, or set persistence back")
                continue
            for field in ("accessModes", "storageClassName"):
                if a[field] != b[field]:
                    stops.append(f"StatefulSet {name}: {field} of '{vct}' changes {a[field]} -> {b[field]}; existing "
                                 f"claims cannot change it. Keep the old value, or move the data to new claims "
                                 f"yourself (the old ones are never deleted by this script)")
            if a["size"] != b["size"] and b["size"]:
                claims = [p for p in pvcs if re.fullmatch(rf"{re.escape(vct)}-{re.escape(name)}-\d+", p["metadata"]["name"])]
                for p in claims:
                    pname = p["metadata"]["name"]
                    current = ((p["spec"].get("resources") or {}).get("requests") or {}).get("storage")
                    if quantity(b["size"]) < quantity(current):
                        stops.append(f"PVC {pname}: persistence.size {b['size']} is smaller than the claim's {current}; "
                                     f"volumes never shrink. Keep persistence.size at {current} or larger")
                        continue
                    if quantity(b["size"]) == quantity(current):
                        continue
                    sc_name = p["spec"].get("storageClassName") or default_class
                    sc = classes.get(sc_name)
                    if not sc or not sc.get("allowVolumeExpansion"):
                        stops.append(f"PVC {pname}: growing {current} -> {b['size']} needs a StorageClass that allows "
                                     f"volume expansion, and '{sc_name}' does not. Either keep persistence.size at "
                                     f"{current} (add --set <component>.persistence.size={current}), or set "
                                     f"allowVolumeExpansion: true on StorageClass {sc_name} if its provisioner supports it, "
                                     f"then run this again. Nothing was changed")
                        continue
                    actions.append(f"expand {pname} {b['size']}")
        actions.append(f"recreate {name}")
    return [f"stop {s}" for s in stops] if stops else actions


def json_stream(text):
    """Every JSON document in text: `kubectl create --dry-run=client -o json -f` of several
    objects prints them one after another, not as a List."""
    decoder, pos, out = json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        doc, pos = decoder.raw_decode(text, pos)
        out.append(doc)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for a in ("live", "rendered", "pvcs", "classes"):
        ap.add_argument(f"--{a}", required=True)
    args = ap.parse_args(argv)
    load = {}
    for a in ("live", "rendered", "pvcs", "classes"):
        with open(getattr(args, a)) as f:
            load[a] = {"items": [o for doc in json_stream(f.read()) for o in items(doc)]}
    for line in plan(**load):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
