"""docker-compose.yml, the Dockerfile and the nginx config, checked by structure (there is
no Docker engine here): the topology that tests/multinode/ runs without Docker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from chatd.hub.redis import RedisHub
from chatd.process.assemble import make_hub, make_store
from chatd.process.cli import build_parser
from chatd.store.postgres import PostgresStore
from chatd.store.stats import StoreStats

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
