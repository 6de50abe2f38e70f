//! deploy/: the Kubernetes manifests and Helm values hold together with
//! promsnap itself. Every document parses; the PrometheusRule and the Helm
//! values carry exactly the alert rules of examples/promsnap-alerts.yml
//! (which promtool tests); the containers' arguments, with the ConfigMap's
//! configuration file, resolve as promsnap resolves them at startup; the
//! sidecar's port is serve's default and the scrape config names it; and
//! the core objects, the promsnap containers among them, pass the
//! Kubernetes schemas, and the operator's resources (and the Helm values'
//! equivalents) pass the Prometheus Operator's CRD schemas, strictly
//! (deploy/kubernetes/schemas/, scripts/validate-crds.py).

use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;
use serde_norway::Value;

use crate::support;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Every YAML document of `path`.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn manifests() -> Vec<(PathBuf, Value)> {
    let dir = root().join("deploy/kubernetes/prometheus-operator");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        for doc in documents(&path) {
            out.push((path.clone(), doc));
        }
    }
    out
}

fn of_kind<'a>(all: &'a [(PathBuf, Value)], kind: &str) -> &'a Value {
    &all.iter()
        .find(|(_, d)| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/kubernetes/prometheus-operator"))
        .1
}

fn alert_groups() -> Value {
    documents(&root().join("examples/promsnap-alerts.yml"))[0]["groups"].clone()
}

#[test]
fn manifests_parse_and_name_their_kind() {
    let all = manifests();
    assert!(all.len() >= 5, "{} documents", all.len());
    for (path, doc) in &all {
        for key in ["apiVersion", "kind"] {
            assert!(doc[key].is_string(), "{}: no {key}", path.display());
        }
        assert!(
            doc["metadata"]["name"].is_string(),
            "{}: no metadata.name",
            path.display()
        );
    }
    let values = documents(&root().join("deploy/kubernetes/kube-prometheus-stack/values.yaml"));
    assert_eq!(values.len(), 1);
    assert_eq!(
        values[0]["prometheus"]["prometheusSpec"]["enableAdminAPI"],
        true
    );
}

#[test]
fn the_prometheus_rule_and_the_helm_values_carry_the_tested_alert_rules() {
    let all = manifests();
    let groups = alert_groups();
    assert!(groups.as_sequence().is_some_and(|g| !g.is_empty()));
    assert_eq!(of_kind(&all, "PrometheusRule")["spec"]["groups"], groups);
    let values = &documents(&root().join("deploy/kubernetes/kube-prometheus-stack/values.yaml"))[0];
    assert_eq!(
        values["additionalPrometheusRulesMap"]["promsnap"]["groups"],
        groups
    );
}

/// The arguments of a container (a sequence of strings).
fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The containers' arguments and the ConfigMap's promsnap.toml resolve as
/// promsnap resolves them (schedule, prune policy, HA group, verify level),
/// in the operator's manifest and the Helm values alike.
#[test]
fn the_containers_arguments_resolve_with_the_configuration_file() {
    let all = manifests();
    let toml = of_kind(&all, "ConfigMap")["data"]["promsnap.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let file: promsnap::settings::FileConfig = toml::from_str(&toml).unwrap();
    let values = &documents(&root().join("deploy/kubernetes/kube-prometheus-stack/values.yaml"))[0];
    let specs = [
        of_kind(&all, "Prometheus")["spec"].clone(),
        values["prometheus"]["prometheusSpec"].clone(),
    ];
    for spec in &specs {
        assert_eq!(spec["enableAdminAPI"], true);
        let sidecar = &spec["containers"][0];
        let serve = args(sidecar);
        assert_eq!(serve[0], "serve");
        let cli =
            promsnap::cli::Cli::try_parse_from(std::iter::once("promsnap".into()).chain(serve))
                .unwrap_or_else(|e| panic!("{e}"));
        let settings = promsnap::settings::Settings::from_sources(cli, &file)
            .unwrap_or_else(|e| panic!("{e:#}"));
        let promsnap::settings::CommandSettings::Serve(s) = settings.command else {
            panic!("not serve")
        };
        assert_eq!(s.listen_address, promsnap::settings::DEFAULT_LISTEN_ADDRESS);
        assert!(s.verify.is_some());
        assert_eq!(sidecar["ports"][0]["containerPort"], 8431);
        let seed = args(&spec["initContainers"][0]);
        assert!(seed.contains(&"--if-empty".to_string()), "{seed:?}");
        let cli =
            promsnap::cli::Cli::try_parse_from(std::iter::once("promsnap".into()).chain(seed))
                .unwrap_or_else(|e| panic!("{e}"));
        promsnap::settings::Settings::from_sources(cli, &file).unwrap_or_else(|e| panic!("{e:#}"));
        // Both mount the data volume as the operator mounts it for Prometheus.
        for c in [sidecar, &spec["initContainers"][0]] {
            let mount = &c["volumeMounts"][0];
            assert_eq!(mount["mountPath"], "/prometheus");
            assert_eq!(mount["subPath"], "prometheus-db");
        }
    }
    let pod_monitor = of_kind(&all, "PodMonitor");
    assert_eq!(
        pod_monitor["spec"]["podMetricsEndpoints"][0]["port"],
        "promsnap"
    );
    assert_eq!(
        pod_monitor["spec"]["podMetricsEndpoints"][0]["honorLabels"],
        true
    );
}

/// The Kubernetes schemas (`kubernetes-validate --strict`, from PyPI):
/// the ConfigMap and Secret as they are, and the promsnap containers of
/// the operator's resource and the Helm values as the Pod the operator
/// makes of them (its CRDs' schemas are not available offline, but their
/// `containers` and `initContainers` are core Container objects).
#[test]
fn manifests_pass_the_kubernetes_schemas() {
    let tool = support::require_tool("kubernetes-validate");
    let work = tempfile::tempdir().unwrap();
    let mut files = vec![root().join("deploy/kubernetes/prometheus-operator/promsnap-config.yaml")];
    let all = manifests();
    let values = &documents(&root().join("deploy/kubernetes/kube-prometheus-stack/values.yaml"))[0];
    let specs = [
        ("operator", of_kind(&all, "Prometheus")["spec"].clone()),
        ("helm", values["prometheus"]["prometheusSpec"].clone()),
    ];
    for (name, spec) in specs {
        let pod = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": format!("promsnap-{name}") },
            "spec": {
                "securityContext": serde_json::to_value(&spec["securityContext"]).unwrap(),
                "initContainers": serde_json::to_value(&spec["initContainers"]).unwrap(),
                "containers": serde_json::to_value(&spec["containers"]).unwrap(),
                "volumes": serde_json::to_value(&spec["volumes"]).unwrap(),
            }
        });
        let path = work.path().join(format!("pod-{name}.yaml"));
        std::fs::write(&path, serde_json::to_string_pretty(&pod).unwrap()).unwrap();
        files.push(path);
    }
    let out = std::process::Command::new(tool)
        .args(["--strict", "--kubernetes-version", "1.30"])
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate:\n{text}");
    assert_eq!(text.matches("passed").count(), 4, "{text}");
}

/// The Prometheus Operator's CRD schemas (vendored in
/// deploy/kubernetes/schemas/): the Prometheus, PodMonitor and
/// PrometheusRule resources, and the Helm values' prometheusSpec,
/// additionalPodMonitors and additionalPrometheusRulesMap, with unknown
/// fields refused as `kubectl apply` refuses them. A misspelt field is
/// caught: the same Prometheus with `enableAdminApi` fails.
#[test]
fn operator_resources_pass_the_operators_crd_schemas() {
    let python = support::require_tool("python3");
    let venv_python = support::require_tool("kubernetes-validate")
        .parent()
        .unwrap()
        .join("python3");
    let python = if venv_python.is_file() {
        venv_python
    } else {
        python
    };
    let script = root().join("scripts/validate-crds.py");
    let run = |args: &[&Path]| {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = run(&[]);
    assert!(ok, "{text}");
    assert!(text.contains("validate-crds: OK, 6 resources"), "{text}");

    let work = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(
        root().join("deploy/kubernetes/prometheus-operator/prometheus.yaml"),
    )
    .unwrap();
    assert!(original.contains("enableAdminAPI: true"));
    let typo = work.path().join("prometheus.yaml");
    std::fs::write(
        &typo,
        original.replace("enableAdminAPI:", "enableAdminApi:"),
    )
    .unwrap();
    let (ok, text) = run(&[&typo]);
    assert!(!ok, "a misspelt field passed: {text}");
    assert!(text.contains("'enableAdminApi' was unexpected"), "{text}");
}
