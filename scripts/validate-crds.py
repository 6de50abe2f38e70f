#!/usr/bin/env python3
"""Validates the Prometheus Operator resources of deploy/kubernetes/ against
the operator's CRD schemas, strictly: an unknown field is an error, as with
`kubectl apply` (strict field validation). tests/deploy.rs runs it.

The schemas (deploy/kubernetes/schemas/) are the openAPIV3Schema of the
operator's Prometheus, PodMonitor and PrometheusRule CRDs (monitoring.coreos.com/v1,
release named in each file's $comment), with descriptions removed.

Checked: every Prometheus, PodMonitor and PrometheusRule in the YAML files
given (default: deploy/kubernetes/prometheus-operator/*.yaml), and in
kube-prometheus-stack's values.yaml the prometheusSpec (after the chart's
renames: storageSpec is storage), additionalPodMonitors and
additionalPrometheusRulesMap against the matching spec schemas.

Usage: validate-crds.py [FILE.yaml ...]     (needs jsonschema and PyYAML)
"""

import copy
import glob
import json
import os
import sys

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy", "kubernetes")
KINDS = ("Prometheus", "PodMonitor", "PrometheusRule")

errors = []


def strict(schema):
    """Unknown fields refused wherever the schema lists the fields."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def load_schema(kind):
    with open(os.path.join(DEPLOY, "schemas", f"{kind.lower()}.json")) as f:
        schema = json.load(f)
    schema.pop("$comment", None)
    return strict(schema)


SCHEMAS = {kind: load_schema(kind) for kind in KINDS}


def check(where, schema, value):
    validator = jsonschema.Draft7Validator(schema)
    for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        path = "/".join(str(p) for p in e.absolute_path)
        errors.append(f"{where}: {path or '(top)'}: {e.message}")


def main():
    files = sys.argv[1:] or sorted(
        glob.glob(os.path.join(DEPLOY, "prometheus-operator", "*.yaml"))
    )
    checked = 0
    for path in files:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") in SCHEMAS:
                    where = f"{os.path.basename(path)} {doc['kind']}/{doc['metadata']['name']}"
                    check(where, SCHEMAS[doc["kind"]], doc)
                    checked += 1
    if not sys.argv[1:]:
        where = "kube-prometheus-stack/values.yaml"
        with open(os.path.join(DEPLOY, "kube-prometheus-stack", "values.yaml")) as f:
            values = yaml.safe_load(f)
        spec = copy.deepcopy(values["prometheus"]["prometheusSpec"])
        for chart_only in ("podMonitorSelectorNilUsesHelmValues", "ruleSelectorNilUsesHelmValues"):
            spec.pop(chart_only, None)
        if "storageSpec" in spec:
            spec["storage"] = spec.pop("storageSpec")
        check(f"{where} prometheus.prometheusSpec", SCHEMAS["Prometheus"]["properties"]["spec"], spec)
        checked += 1
        for pm in values["prometheus"].get("additionalPodMonitors", []):
            pm_spec = {k: v for k, v in pm.items() if k not in ("name", "additionalLabels")}
            check(f"{where} additionalPodMonitors {pm['name']}",
                  SCHEMAS["PodMonitor"]["properties"]["spec"], pm_spec)
            checked += 1
        for key, rule_spec in values.get("additionalPrometheusRulesMap", {}).items():
            check(f"{where} additionalPrometheusRulesMap {key}",
                  SCHEMAS["PrometheusRule"]["properties"]["spec"], rule_spec)
            checked += 1
    if errors:
        print("validate-crds: FAILED", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        sys.exit(1)
    if checked == 0:
        print("validate-crds: no Prometheus Operator resource found", file=sys.stderr)
        sys.exit(1)
    print(f"validate-crds: OK, {checked} resources valid against the operator's CRD schemas")


if __name__ == "__main__":
    main()
