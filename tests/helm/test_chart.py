#!/usr/bin/env python3
"""Renders and lints helm/midge with the real Helm engine (the helm-python-sdk package embeds
Helm's Go SDK, so no `helm` binary or cluster is needed), validates every rendered manifest
against the Kubernetes API schemas (kubernetes-validate, strict: unknown fields fail), and
checks what the chart promises: seeds and advertise addresses on the headless Service, one
volume claim per node, probes on the admin port, a disruption budget that keeps a Raft
majority, and a midge.toml that parses and only uses keys Midge knows.

Plain Python: prints one line per check, exits 1 if any failed.

    pip install helm-python-sdk kubernetes-validate
    python3 tests/helm/test_chart.py
"""

from __future__ import annotations

import base64
import os
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "midge"
DEFAULT_TOML = ROOT / "crates" / "midge-server" / "default.toml"
# The Kubernetes release whose API schemas the manifests are validated against.
KUBE_VERSION = "1.32.0"
RELEASE = "midge"
NAMESPACE = "mqtt"

# Run from anywhere: a directory on sys.path holding a module named like one of helm_python's
# own (it has a `logging` module) must not shadow the standard library.
os.chdir(ROOT)

try:
    import helm_python as helm
    import kubernetes_validate
    import yaml
except ImportError as err:  # pragma: no cover - depends on the machine
    print(f"MISSING: {err}; pip install helm-python-sdk kubernetes-validate", file=sys.stderr)
    sys.exit(2)

failures: list[str] = []


def check(ok: bool, what: str, detail: str = "") -> bool:
    """Records one check and prints PASS/FAIL with what it was."""
    if ok:
        print(f"PASS {what}")
    else:
        print(f"FAIL {what}{': ' + detail if detail else ''}")
        failures.append(what)
    return ok


# A throw-away PEM-looking certificate: the chart only base64-encodes it.
FAKE_PEM = "-----BEGIN CERTIFICATE-----\nTUlER0U=\n-----END CERTIFICATE-----\n"
FAKE_KEY = "-----BEGIN PRIVATE KEY-----\nTUlER0U=\n-----END PRIVATE KEY-----\n"
PASSWD = "alice:$7$101$c2FsdA==$aGFzaA==\n"
ACL = "user alice\ntopic readwrite sensors/#\n"

SCENARIOS: dict[str, dict] = {
    "defaults": {},
    "tls+auth+servicemonitor": {
        "replicaCount": 5,
        "service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"},
        "tls": {
            "enabled": True,
            "cert": FAKE_PEM,
            "key": FAKE_KEY,
            "ca": FAKE_PEM,
            "requireClientCertificate": True,
        },
        "auth": {"enabled": True, "passwordFile": PASSWD, "acl": ACL},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "preStopSleepSeconds": 5,
        "config": {"settings": {"broker": {"max_packet_size": 1048576}}},
    },
    "existing secrets, no persistence, hard anti-affinity": {
        "tls": {"enabled": True, "existingSecret": "my-tls"},
        "auth": {"enabled": True, "existingSecret": "my-auth", "aclFromSecret": True},
        "persistence": {"enabled": False},
        "podAntiAffinity": "hard",
    },
}


def default_keys() -> dict[str, set[str]]:
    """Every key of crates/midge-server/default.toml per section ("" for the top level),
    including the optional keys it documents as comments (`# certfile = ...`), which exist but
    have no default. Keys of [listener] are also the keys of every [listeners.NAME]."""
    text = DEFAULT_TOML.read_text()
    parsed = tomllib.loads(text)
    keys: dict[str, set[str]] = {"": set()}
    for name, value in parsed.items():
        if isinstance(value, dict):
            keys.setdefault(name, set()).update(value.keys())
        else:
            keys[""].add(name)
    section = ""
    for line in text.splitlines():
        header = re.match(r"^\[([a-z_.]+)\]\s*$", line)
        if header:
            section = header.group(1)
            continue
        documented = re.match(r"^#\s*([a-z_]+)\s*=", line)
        if documented and section:
            keys.setdefault(section, set()).add(documented.group(1))
    return keys


def unknown_keys(config: dict, known: dict[str, set[str]]) -> list[str]:
    """Dotted names of the keys of `config` that default.toml does not have."""
    bad = []
    for name, value in config.items():
        if not isinstance(value, dict):
            if name not in known[""]:
                bad.append(name)
            continue
        if name == "listeners":
            for listener, table in value.items():
                for key in table:
                    if key not in known["listener"]:
                        bad.append(f"listeners.{listener}.{key}")
            continue
        if name not in known:
            bad.append(f"[{name}]")
            continue
        for key in value:
            if key not in known[name]:
                bad.append(f"{name}.{key}")
    return bad


def env_key_exists(var: str, known: dict[str, set[str]]) -> bool:
    """Whether MIDGE__SECTION__KEY names a key of default.toml."""
    parts = var.lower().split("__")[1:]
    if len(parts) == 1:
        return parts[0] in known[""]
    return len(parts) == 2 and parts[1] in known.get(parts[0], set())


def render(chart, values: dict) -> list[dict]:
    """Every manifest the chart renders for `values`, parsed."""
    out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__path"] = path
                docs.append(doc)
    return docs


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def validate(docs: list[dict], label: str) -> None:
    for doc in docs:
        body = {k: v for k, v in doc.items() if k != "__path"}
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if "monitoring.coreos.com" in doc["apiVersion"]:
            print(f"NOTE [{label}] {name}: a prometheus-operator CRD, no Kubernetes schema; "
                  "schema validation skipped")
            continue
        try:
            kubernetes_validate.validate(body, KUBE_VERSION, strict=True)
            check(True, f"[{label}] {name} is valid against the Kubernetes {KUBE_VERSION} schema")
        except kubernetes_validate.ValidationError as err:
            check(False, f"[{label}] {name} is valid against the Kubernetes {KUBE_VERSION} schema",
                  str(err)[:400])


def container_env(sts: dict) -> dict[str, dict]:
    c = sts["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in c.get("env", [])}


def check_statefulset(docs: list[dict], values: dict, label: str, known: dict) -> None:
    merged = values
    replicas = merged["replicaCount"]
    (sts,) = of_kind(docs, "StatefulSet")
    headless = [s for s in of_kind(docs, "Service") if s["spec"].get("clusterIP") == "None"]
    check(len(headless) == 1, f"[{label}] exactly one headless Service")
    h = headless[0]
    check(h["spec"].get("publishNotReadyAddresses") is True,
          f"[{label}] the headless Service publishes not-ready addresses")
    check(sts["spec"]["serviceName"] == h["metadata"]["name"],
          f"[{label}] the StatefulSet's serviceName is the headless Service")
    check(sts["spec"]["podManagementPolicy"] == "Parallel",
          f"[{label}] podManagementPolicy is Parallel")

    env = container_env(sts)
    port = merged["cluster"]["port"]
    domain = merged["cluster"]["clusterDomain"]
    suffix = f"{h['metadata']['name']}.{NAMESPACE}.svc.{domain}:{port}"
    sts_name = sts["metadata"]["name"]
    expected_seeds = [f"{sts_name}-{i}.{suffix}" for i in range(min(replicas, 3))]
    seeds = env.get("MIDGE__CLUSTER__SEEDS", {}).get("value", "").split(",")
    check(seeds == expected_seeds, f"[{label}] seeds are pods 0..{len(expected_seeds) - 1} "
          "on the headless Service, pod 0 first", f"got {seeds}")
    advertise = env.get("MIDGE__CLUSTER__ADVERTISE", {}).get("value")
    check(advertise == f"$(POD_NAME).{suffix}",
          f"[{label}] advertise is $(POD_NAME) on the headless Service", f"got {advertise}")
    # Pod 0's expanded advertise must equal the first seed exactly: that is how it knows to
    # bootstrap (and the others know to join).
    check(advertise.replace("$(POD_NAME)", f"{sts_name}-0") == seeds[0],
          f"[{label}] pod 0's advertise equals the first seed")
    names = list(env)
    check("POD_NAME" in env and names.index("POD_NAME") < names.index("MIDGE__CLUSTER__ADVERTISE"),
          f"[{label}] POD_NAME (downward API) is defined before it is referenced")
    check(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
          == "metadata.name", f"[{label}] POD_NAME comes from metadata.name")
    check(env.get("MIDGE__CLUSTER__NODE_ID", {}).get("value") == "0",
          f"[{label}] node id 0 (derived from the pod ordinal)")
    check(env.get("MIDGE__CLUSTER__BIND", {}).get("value") == f"0.0.0.0:{port}",
          f"[{label}] the cluster listener binds 0.0.0.0")
    check(env.get("MIDGE__CLUSTER__VOTERS", {}).get("value") == str(merged["cluster"]["voters"]),
          f"[{label}] voters come from values")
    bad_env = [n for n in env if n.startswith("MIDGE__") and not env_key_exists(n, known)]
    check(not bad_env, f"[{label}] every MIDGE__ variable names a key of default.toml",
          f"unknown: {bad_env}")

    spec = sts["spec"]["template"]["spec"]
    c = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    admin = merged["admin"]["port"]
    check(ports.get("admin") == admin, f"[{label}] the container exposes the admin port {admin}")
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        target = ports.get(get.get("port"), get.get("port"))
        check(get.get("path") == path and target == admin,
              f"[{label}] {probe} GETs {path} on the admin port", f"got {get}")
    check(c["args"][:1] == ["-c"] and c["args"][1].endswith("midge.toml"),
          f"[{label}] the broker is started with -c midge.toml")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    check(mounts.get("data") == "/data", f"[{label}] the data volume is mounted at /data")
    claims = sts["spec"].get("volumeClaimTemplates", [])
    if merged["persistence"]["enabled"]:
        check([v["metadata"]["name"] for v in claims] == ["data"],
              f"[{label}] one volume claim template (data) gives every node its own PVC")
    else:
        check(not claims and any(v["name"] == "data" and "emptyDir" in v for v in spec["volumes"]),
              f"[{label}] without persistence, data is an emptyDir")
    sc = c["securityContext"]
    check(sc.get("readOnlyRootFilesystem") is True and sc["capabilities"]["drop"] == ["ALL"]
          and sc.get("allowPrivilegeEscalation") is False,
          f"[{label}] read-only root, no capabilities, no privilege escalation")
    check(spec["securityContext"].get("runAsNonRoot") is True, f"[{label}] runs as non-root")
    grace = merged["config"]["shutdownGraceSecs"]
    check(spec["terminationGracePeriodSeconds"] > grace,
          f"[{label}] terminationGracePeriodSeconds ({spec['terminationGracePeriodSeconds']}) "
          f"covers the broker's {grace} s drain")
    if merged.get("preStopSleepSeconds", 0) > 0:
        check(spec["terminationGracePeriodSeconds"] > grace + merged["preStopSleepSeconds"],
              f"[{label}] the grace period leaves room after the preStop sleep")


def check_config(docs: list[dict], values: dict, label: str, known: dict) -> None:
    (cm,) = of_kind(docs, "ConfigMap")
    try:
        config = tomllib.loads(cm["data"]["midge.toml"])
    except tomllib.TOMLDecodeError as err:
        check(False, f"[{label}] midge.toml parses as TOML", str(err))
        return
    check(True, f"[{label}] midge.toml parses as TOML")
    bad = unknown_keys(config, known)
    check(not bad, f"[{label}] midge.toml only uses keys of default.toml", f"unknown: {bad}")
    check(config.get("data_dir") == "/data", f"[{label}] data_dir is /data")
    listeners = [config["listener"], *config.get("listeners", {}).values()]
    check(all(l.get("bind") == "0.0.0.0" for l in listeners) and config["admin"]["bind"] == "0.0.0.0",
          f"[{label}] every listener and the admin listener bind 0.0.0.0")
    check(config["admin"]["port"] == values["admin"]["port"], f"[{label}] admin port matches")
    check(config["limits"]["shutdown_grace_secs"] == values["config"]["shutdownGraceSecs"],
          f"[{label}] shutdown grace comes from values")
    if values["tls"]["enabled"]:
        tls = config["listeners"].get("tls", {})
        check(tls.get("protocol") == "tls" and tls.get("port") == values["listeners"]["tls"]["port"]
              and tls.get("certfile") and tls.get("keyfile"),
              f"[{label}] a TLS listener with its certificate files")
    else:
        check("tls" not in config.get("listeners", {}), f"[{label}] no TLS listener without TLS")
    if values["auth"]["enabled"]:
        check(all(l.get("password_file") for l in listeners)
              and all(l.get("allow_anonymous") is values["auth"]["allowAnonymous"] for l in listeners),
              f"[{label}] every listener checks the password file")
    for section, table in values["config"]["settings"].items():
        for key, value in table.items():
            check(config.get(section, {}).get(key) == value,
                  f"[{label}] config.settings {section}.{key} reaches midge.toml")


def check_pdb(docs: list[dict], values: dict, label: str) -> None:
    replicas = values["replicaCount"]
    pdbs = of_kind(docs, "PodDisruptionBudget")
    if replicas < 2:
        check(not pdbs, f"[{label}] no disruption budget for a single node")
        return
    check(len(pdbs) == 1, f"[{label}] one PodDisruptionBudget")
    max_unavailable = pdbs[0]["spec"]["maxUnavailable"]
    voters = min(values["cluster"]["voters"], replicas)
    check(isinstance(max_unavailable, int) and max_unavailable >= 0
          and replicas - max_unavailable >= replicas // 2 + 1
          and voters - max_unavailable >= voters // 2 + 1,
          f"[{label}] replicas={replicas} voters={voters}: maxUnavailable {max_unavailable} "
          f"keeps a majority of nodes ({replicas // 2 + 1}) and of voters ({voters // 2 + 1})")
    if voters == replicas and replicas >= 3:
        check(max_unavailable >= 1, f"[{label}] the budget still allows a drain")


def check_services(docs: list[dict], values: dict, label: str) -> None:
    client = [s for s in of_kind(docs, "Service") if s["spec"].get("clusterIP") != "None"]
    check(len(client) == 1, f"[{label}] one client Service")
    svc = client[0]
    check(svc["spec"]["type"] == values["service"]["type"], f"[{label}] client Service type")
    names = {p["name"] for p in svc["spec"]["ports"]}
    want = {"mqtt"} | ({"ws"} if values["listeners"]["ws"]["enabled"] else set())
    if values["tls"]["enabled"]:
        want |= {"mqtts"} | ({"wss"} if values["listeners"]["wss"]["enabled"] else set())
    check(names == want, f"[{label}] client Service ports {sorted(want)}", f"got {sorted(names)}")
    check(not names & {"admin", "cluster"},
          f"[{label}] the unauthenticated admin and cluster ports are not on the client Service")
    (sts,) = of_kind(docs, "StatefulSet")
    container_ports = {p["name"] for p in sts["spec"]["template"]["spec"]["containers"][0]["ports"]}
    check(all(p["targetPort"] in container_ports for s in of_kind(docs, "Service")
              for p in s["spec"]["ports"]),
          f"[{label}] every Service targetPort names a container port")


def check_secrets(docs: list[dict], values: dict, label: str) -> None:
    secrets = {s["metadata"]["name"]: s for s in of_kind(docs, "Secret")}
    (sts,) = of_kind(docs, "StatefulSet")
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    for kind, enabled, existing in (("tls", values["tls"]["enabled"], values["tls"]["existingSecret"]),
                                    ("auth", values["auth"]["enabled"], values["auth"]["existingSecret"])):
        if not enabled:
            check(kind not in volumes, f"[{label}] no {kind} volume when {kind} is off")
            continue
        name = volumes.get(kind, {}).get("secret", {}).get("secretName")
        if existing:
            check(name == existing and existing not in secrets,
                  f"[{label}] the {kind} volume uses the existing Secret {existing}")
        else:
            check(name in secrets, f"[{label}] the {kind} volume uses the chart's Secret {name}")
    if values["auth"]["enabled"] and not values["auth"]["existingSecret"]:
        data = secrets[volumes["auth"]["secret"]["secretName"]]["data"]
        check(base64.b64decode(data["passwd"]).decode() == values["auth"]["passwordFile"],
              f"[{label}] the password file is stored as given")


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def main() -> int:
    print(f"helm-python-sdk {helm.__version__} (Helm {helm.helm_sdk_version()}), "
          f"kubernetes-validate {kubernetes_validate.version.__version__ if hasattr(kubernetes_validate.version, '__version__') else ''}, "
          f"schemas of Kubernetes {KUBE_VERSION}")
    known = default_keys()
    with helm.Chart.load(CHART) as chart:
        defaults = chart.values
        for label, overrides in SCENARIOS.items():
            values = deep_merge(defaults, overrides)
            try:
                chart.validate_schema(overrides)
                check(True, f"[{label}] values pass values.schema.json")
            except helm.HelmError as err:
                check(False, f"[{label}] values pass values.schema.json", str(err))
            report = helm.lint(CHART, overrides, strict=True, namespace=NAMESPACE)
            problems = [m for m in report["messages"] if m["severity"] >= 2] + [
                {"error": e} for e in report.get("errors", [])]
            for m in report["messages"]:
                if m["severity"] < 2:
                    print(f"NOTE [{label}] lint: {m['path']}: {m['error']}")
            check(not problems, f"[{label}] helm lint --strict", str(problems))
            try:
                docs = render(chart, overrides)
            except helm.HelmError as err:
                check(False, f"[{label}] renders", str(err))
                continue
            kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
            print(f"INFO [{label}] rendered: {', '.join(kinds)}")
            validate(docs, label)
            check_statefulset(docs, values, label, known)
            check_config(docs, values, label, known)
            check_pdb(docs, values, label)
            check_services(docs, values, label)
            check_secrets(docs, values, label)
            monitors = of_kind(docs, "ServiceMonitor")
            check(bool(monitors) == values["serviceMonitor"]["enabled"],
                  f"[{label}] ServiceMonitor rendered only when enabled")
            if monitors:
                ep = monitors[0]["spec"]["endpoints"][0]
                check(ep["port"] == "admin" and ep["path"] == "/metrics",
                      f"[{label}] the ServiceMonitor scrapes /metrics on the admin port")

        # The disruption budget for every size from 1 to 7 and a few voter counts.
        for replicas in range(1, 8):
            for voters in (1, 3, 5):
                overrides = {"replicaCount": replicas, "cluster": {"voters": voters}}
                check_pdb(render(chart, overrides), deep_merge(defaults, overrides),
                          f"pdb {replicas}/{voters}")

        # Seeds for a single node and a big cluster.
        for replicas in (1, 2, 7):
            overrides = {"replicaCount": replicas}
            check_statefulset(render(chart, overrides), deep_merge(defaults, overrides),
                              f"replicas {replicas}", known)

        # Misconfigurations are refused at render time with a message.
        for label, overrides in (
            ("tls without certificates", {"tls": {"enabled": True}}),
            ("auth without a password file", {"auth": {"enabled": True}}),
            ("an unknown top-level value", {"replicas": 3}),
            ("a wrong type", {"replicaCount": "three"}),
        ):
            try:
                render(chart, overrides)
                check(False, f"{label} is refused")
            except helm.HelmError as err:
                check(True, f"{label} is refused ({str(err).strip().splitlines()[-1][:100]})")

    print(f"\n{'FAILED' if failures else 'OK'}: {len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
