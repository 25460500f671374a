"""docker-compose.yml, the Dockerfile and the nginx config, checked by structure (there is
no Docker engine here): the topology that tests/multinode/ runs without Docker."""

from __future__ import annotations

import json
import re
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from chatd.domain.rules import Rules
from chatd.hub.redis import RedisHub
from chatd.process.assemble import assemble, make_hub, make_store
from chatd.process.cli import build_parser
from chatd.store.postgres import PostgresStore
from chatd.store.stats import StoreStats
from chatd.web.app import ChatApp

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def chatd_nodes(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if "CHATD_STORE" in s.get("environment", {})}


def image_of(service: dict[str, Any]) -> str:
    return str(service.get("image", ""))


def nginx_conf(services: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(the lb service's name, the text of the nginx.conf it mounts)."""
    [(name, lb)] = [(n, s) for n, s in services.items() if image_of(s).startswith("nginx")]
    [mount] = [v for v in lb["volumes"] if v.endswith(":/etc/nginx/nginx.conf:ro")]
    source = ROOT / mount.split(":")[0]
    return name, source.read_text()


def locations(conf: str) -> dict[str, str]:
    """Each `location PATH { ... }` block's body (they hold no nested blocks here)."""
    return dict(re.findall(r"location\s+(\S+)\s*\{([^{}]*)\}", conf))


def test_the_topology_is_postgres_redis_two_nodes_and_a_load_balancer(
    services: dict[str, dict[str, Any]],
) -> None:
    images = {name: image_of(s) for name, s in services.items()}
    assert any(i.startswith("postgres") for i in images.values())
    assert any(i.startswith("redis") for i in images.values())
    assert len(chatd_nodes(services)) == 2
    assert sum(i.startswith(("nginx", "haproxy")) for i in images.values()) == 1


def test_every_service_has_a_health_check_and_starts_after_what_it_needs(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        check = service.get("healthcheck", {})
        assert check.get("test"), f"{name} has no health check"
    needs = {name: set(s.get("depends_on", {})) for name, s in services.items()}
    nodes = set(chatd_nodes(services))
    lb, _ = nginx_conf(services)
    assert needs[lb] == nodes
    for node in nodes:
        assert needs[node] == {"postgres", "redis"}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}, name


def test_the_nodes_health_checks_ask_chatd_for_healthz(
    services: dict[str, dict[str, Any]],
) -> None:
    for node in chatd_nodes(services).values():
        assert "http://127.0.0.1:8000/healthz" in " ".join(node["healthcheck"]["test"])
    assert "/healthz" in (ROOT / "Dockerfile").read_text()


def test_the_nodes_share_one_log_one_hub_one_files_volume_and_one_secret(
    services: dict[str, dict[str, Any]],
) -> None:
    nodes = list(chatd_nodes(services).values())
    environments = [node["environment"] for node in nodes]
    assert all(env == environments[0] for env in environments)
    env = environments[0]
    store, hub = urlsplit(env["CHATD_STORE"]), urlsplit(env["CHATD_HUB"])
    postgres = services[store.hostname or ""]["environment"]
    assert store.scheme == "postgresql"
    assert (store.username, store.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert store.path == "/" + postgres["POSTGRES_DB"]
    assert hub.scheme == "redis" and image_of(services[hub.hostname or ""]).startswith("redis")
    assert "CHATD_SECRET" in env["CHATD_SECRET"], "the secret comes from the environment"
    for node in nodes:
        assert f"files:{env['CHATD_FILES']}" in node["volumes"]


def test_the_nodes_command_is_one_chatd_understands_with_that_environment(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for node in chatd_nodes(services).values():
        for key, value in node["environment"].items():
            monkeypatch.setenv(key, str(value))
        args = build_parser().parse_args(node["command"])
        assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8000)
        store = make_store(args.store, db=Path(args.db), synchronous="full", stats=StoreStats())
        assert isinstance(store, PostgresStore)
        assert isinstance(make_hub(args.hub, store), RedisHub)
        assert args.files == node["environment"]["CHATD_FILES"]


def test_the_dockerfile_builds_the_package_and_runs_chatd_serve() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM python:(\d+)\.(\d+)", dockerfile, re.MULTILINE)
    assert base is not None and (int(base[1]), int(base[2])) >= (3, 11)
    for needed in ("COPY pyproject.toml", "COPY protocol", "COPY chatd", "pip install ."):
        assert needed in dockerfile
    assert "EXPOSE 8000" in dockerfile
    assert 'ENTRYPOINT ["chatd"]' in dockerfile
    assert re.search(r"^USER \w+", dockerfile, re.MULTILINE), "the node does not run as root"


def test_the_load_balancer_spreads_ws_and_http_over_every_node(
    services: dict[str, dict[str, Any]],
) -> None:
    lb, conf = nginx_conf(services)
    assert conf.count("{") == conf.count("}")
    upstream = re.search(r"upstream\s+(\w+)\s*\{([^}]*)\}", conf)
    assert upstream is not None
    servers = set(re.findall(r"server\s+([\w.-]+:\d+)", upstream[2]))
    assert servers == {f"{node}:8000" for node in chatd_nodes(services)}
    blocks = locations(conf)
    assert set(blocks) >= {"/ws", "/"}
    for path, body in blocks.items():
        assert f"proxy_pass http://{upstream[1]};" in body, path
        # Without Host as the browser sent it, chatd's Origin check refuses the socket.
        assert "proxy_set_header Host $http_host;" in body, path
    ws = blocks["/ws"]
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert "proxy_http_version 1.1;" in conf
    timeout = re.search(r"proxy_read_timeout\s+(\d+)([smh]);", ws)
    assert timeout is not None
    seconds = int(timeout[1]) * {"s": 1, "m": 60, "h": 3600}[timeout[2]]
    assert seconds > 20, "longer than chatd's ping interval, or idle sockets are cut"
    assert services[lb]["ports"], "the load balancer is the one published port"
    assert not any("ports" in node for node in chatd_nodes(services).values())


# ---- Prometheus and Grafana -------------------------------------------------------------------

# The names PromQL gives a metric: what chatd exports, and the series Prometheus derives.
_METRIC = re.compile(r"\b((?:chatd|process|python)_[a-z0-9_]+)\b")
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def service_with_image(services: dict[str, dict[str, Any]], prefix: str) -> dict[str, Any]:
    [service] = [s for s in services.values() if image_of(s).startswith(prefix)]
    return service


def mounted(service: dict[str, Any], target: str) -> Path:
    """The file of this repository that `service` mounts at `target`."""
    [source] = [str(v).split(":")[0] for v in service["volumes"] if v.split(":")[1] == target]
    return ROOT / source


def dashboard() -> dict[str, Any]:
    loaded = json.loads((ROOT / "deploy/grafana/chatd.json").read_text())
    assert isinstance(loaded, dict)
    return loaded


def dashboard_exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_prometheus_scrapes_every_chatd_node(services: dict[str, dict[str, Any]]) -> None:
    prometheus = service_with_image(services, "prom/prometheus")
    config = yaml.safe_load(mounted(prometheus, "/etc/prometheus/prometheus.yml").read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "chatd"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    nodes = chatd_nodes(services)
    assert targets == {f"{node}:8000" for node in nodes}
    assert set(prometheus["depends_on"]) == set(nodes)


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = service_with_image(services, "grafana/grafana")
    assert set(grafana["depends_on"]) == {"prometheus"}
    provisioning = mounted(grafana, "/etc/grafana/provisioning")
    [source] = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    [provider] = yaml.safe_load((provisioning / "dashboards/chatd.yml").read_text())["providers"]
    folder = provider["options"]["path"]
    board = mounted(grafana, f"{folder}/chatd.json")
    assert board == ROOT / "deploy/grafana/chatd.json"
    panels = dashboard()["panels"]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels if p["type"] != "row"), (
        "every panel asks the dashboard's Prometheus"
    )
    # Grafana only on this machine; the load balancer stays the one public port.
    assert all(port.startswith("127.0.0.1:") for port in grafana["ports"])


def test_the_nodes_let_prometheus_read_metrics_but_the_outside_cannot(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    [node, *_] = chatd_nodes(services).values()
    for key, value in node["environment"].items():
        monkeypatch.setenv(key, str(value))
    allowed = [ip_network(n) for n in build_parser().parse_args(node["command"]).metrics_allow]
    # Compose networks take their subnets from the private ranges.
    for inside in ("172.18.0.5", "192.168.16.3", "10.0.1.7"):
        assert any(ip_address(inside) in network for network in allowed), inside
    assert not any(ip_address("203.0.113.9") in network for network in allowed)
    _, conf = nginx_conf(services)
    assert re.search(r"location\s*=\s*/metrics\s*\{\s*return\s+404;\s*\}", conf)


def exported_names(app: ChatApp) -> set[str]:
    """The families and series of a server's /metrics (nothing needs to have happened)."""
    families = list(text_string_to_metric_families(app.metrics.render().decode()))
    return {f.name for f in families} | {s.name for f in families for s in f.samples}


def test_every_metric_of_the_dashboard_is_one_chatd_exports(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    # A node of this file (PostgreSQL and Redis; nothing is connected to) and a node on
    # SQLite, whose WAL has panels of its own.
    [node, *_] = chatd_nodes(services).values()
    env = node["environment"]
    shared = assemble(
        db=tmp_path / "node.db",
        secret="s" * 32,
        rules=Rules(),
        store_url=env["CHATD_STORE"],
        hub_url=env["CHATD_HUB"],
    )
    alone = assemble(db=tmp_path / "chatd.db", secret="s" * 32, rules=Rules())
    exported = exported_names(shared) | exported_names(alone)
    wanted = {name for expr in dashboard_exprs(dashboard()) for name in _METRIC.findall(expr)}
    assert len(wanted) > 20
    missing = {
        name
        for name in wanted
        if name not in exported
        and not any(name.endswith(s) and name.removesuffix(s) in exported for s in _SUFFIXES)
    }
    assert not missing, f"the dashboard asks for what chatd does not export: {sorted(missing)}"
