"""docker-compose.yml: what its app services run exists, the variables they set are read, workers can scale, and
docker-compose accepts the file. No Docker engine is needed (nor started)."""

import ast
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import warnings
from pathlib import Path
from urllib.parse import urlparse

import click
import dj_database_url
import pytest
import yaml
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from django.core.management import get_commands
from django.urls import Resolver404, resolve
from gunicorn.config import Config as GunicornConfig

BASE_DIR = Path(__file__).resolve().parents[1]
COMPOSE_FILE = BASE_DIR / "docker-compose.yml"
DOCKERFILE = "revsearch_site/Dockerfile"
SETTINGS_FILE = BASE_DIR / "revsearch_site" / "settings.py"
ENV_READERS_FILE = BASE_DIR / "revsearch_site" / "env.py"
# Services that `docker-compose up --scale` may run several of.
SCALED = {"worker"}
EXPECTED_APP_SERVICES = {"migrate", "web", "worker", "watcher"}
# Apps whose management commands the services may run: ours and Django's own.
COMMAND_APPS = ("media_index", "search", "django.core", "django.contrib.")
# Variables that settings.py does not read but Django documents; each is checked below to be read where it matters.
DOCUMENTED = {
    # Django's createsuperuser documents it; our ensure_admin reads it too.
    "DJANGO_SUPERUSER_PASSWORD": BASE_DIR / "media_index" / "management" / "commands" / "ensure_admin.py",
}
# ${NAME}, ${NAME:-default} or ${NAME-default}, and ${NAME:?message} (docker-compose refuses to start without it).
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")
# The variables docker-compose insists on, each with a value it accepts.
REQUIRED = {"POSTGRES_PASSWORD": "pg-password-1", "MINIO_SECRET_KEY": "minio-password-1"}


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def app_services() -> dict[str, dict]:
    """The services built from our Dockerfile."""
    services = load_compose()["services"]
    return {name: s for name, s in services.items() if (s.get("build") or {}).get("dockerfile") == DOCKERFILE}


def with_defaults(text: str) -> str:
    """A value as docker-compose reads it with nothing set in the environment but the required variables."""

    def value(match: re.Match) -> str:
        if match.group(2) == "?":
            return REQUIRED[match.group(1)]
        return match.group(3) or ""

    return INTERPOLATION.sub(value, text)


def argv_of(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def commands_of(service: dict) -> list[list[str]]:
    """The service's command and its healthcheck's, as argument lists."""
    found = [argv_of(service["command"])] if "command" in service else []
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list) and test[0] == "CMD-SHELL":
        found.append(shlex.split(test[1]))
    elif isinstance(test, list) and test[0] == "CMD":
        found.append(test[1:])
    return found


def settings_variables() -> set[str]:
    """Every environment variable settings.py reads: through the env_* readers, os.environ, or dj-database-url."""
    tree = ast.parse(SETTINGS_FILE.read_text())
    readers = ast.parse(ENV_READERS_FILE.read_text()).body
    helpers = {node.name for node in readers if isinstance(node, ast.FunctionDef) and node.name.startswith("env_")}
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        first = node.args[0] if node.args else None
        literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
        if literal and (func in helpers or func in ("os.environ.get", "os.getenv")):
            names.add(first.value)
        if func == "dj_database_url.config" and not any(keyword.arg == "env" for keyword in node.keywords):
            names.add(dj_database_url.DEFAULT_ENV)
    return names


def defined_names(module: str) -> set[str]:
    """Names defined at the top level of a module's source, without importing it."""
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def check_python_code(code: str) -> None:
    """Python run with -c: it compiles, its imports exist, and so do the commands and module functions it calls."""
    tree = ast.parse(code)
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert importlib.util.find_spec(alias.name), f"-c code imports {alias.name}, which does not exist"
        elif isinstance(node, ast.ImportFrom):
            spec = importlib.util.find_spec(node.module)
            assert spec, f"-c code imports from {node.module}, which does not exist"
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if spec.submodule_search_locations and importlib.util.find_spec(submodule):
                    modules[alias.asname or alias.name] = submodule
                else:
                    assert alias.name in defined_names(node.module), f"{node.module} has no {alias.name}"
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "call_command":
            check_management_command(node.args[0].value)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            module = modules[node.value.id]
            assert node.attr in defined_names(module), f"-c code uses {module}.{node.attr}, which does not exist"


def check_management_command(name: str) -> None:
    app = get_commands().get(name)
    assert app, f"manage.py {name}: no such command"
    assert app.startswith(COMMAND_APPS), f"manage.py {name} comes from {app}, not from our apps or Django"


def check_celery(args: list[str]) -> None:
    """Parse the arguments with Celery's own command line: the app (-A) resolves and every option exists."""
    try:
        group = celery_cli.make_context("celery", list(args))
        with warnings.catch_warnings():
            # Click 8.2 deprecates protected_args (where the subcommand sits until Click 9 moves it into args).
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*getattr(group, "protected_args", []), *group.args]
        assert group.params.get("app"), f"celery {shlex.join(args)}: no app (-A)"
        try:
            app = find_app(group.params["app"])
        except ImportError as error:
            pytest.fail(f"celery {shlex.join(args)}: no Celery app {group.params['app']!r} ({error})")
        group.obj = CLIContext(app=app, no_color=True, workdir=None)
        name, command, command_args = celery_cli.resolve_command(group, rest)
        command.make_context(name, command_args, parent=group)
    except click.ClickException as error:
        pytest.fail(f"celery {shlex.join(args)}: {error.format_message()}")


def check_gunicorn(args: list[str]) -> None:
    """Parse the arguments with gunicorn's own parser; the WSGI module exists and defines the application."""
    try:
        parsed = GunicornConfig().parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"gunicorn {shlex.join(args)}: gunicorn refuses these arguments (see its message above)")
    module, _, variable = parsed.args[0].partition(":")
    assert importlib.util.find_spec(module), f"gunicorn's WSGI module {module} does not exist"
    assert (variable or "application") in defined_names(module), f"{module} defines no {variable or 'application'}"


def check_command(argv: list[str]) -> None:
    """One command an app service runs; a form this test does not know fails, so that nothing goes unchecked."""
    if argv[0] not in ("python", "python3"):
        pytest.fail(f"{shlex.join(argv)}: run project code with `python` (the image's virtualenv)")
    if argv[1] == "manage.py":
        check_management_command(argv[2])
        if argv[2] == "shell":
            check_python_code(argv[argv.index("-c") + 1])
    elif argv[1:3] == ["-m", "celery"]:
        check_celery(argv[3:])
    elif argv[1:3] == ["-m", "gunicorn"]:
        check_gunicorn(argv[3:])
    elif argv[1] == "-c":
        check_python_code(argv[2])
    else:
        pytest.fail(f"{shlex.join(argv)}: a kind of command this test does not check yet")


def test_the_app_services_are_all_there():
    assert set(app_services()) == EXPECTED_APP_SERVICES
    assert set(app_services()) >= SCALED, "a scaled service is not built from our Dockerfile"


@pytest.mark.parametrize("name", sorted(EXPECTED_APP_SERVICES))
def test_app_service_commands_refer_to_what_exists(name):
    service = app_services()[name]
    assert "command" in service, f"{name} has no command of its own"
    for argv in commands_of(service):
        check_command([with_defaults(part) for part in argv])


@pytest.mark.parametrize("name", sorted(EXPECTED_APP_SERVICES))
def test_app_service_variables_are_read_by_the_settings(name):
    read = settings_variables()
    environment = app_services()[name].get("environment") or {}
    names = environment if isinstance(environment, dict) else [entry.partition("=")[0] for entry in environment]
    unknown = sorted(set(names) - read - set(DOCUMENTED))
    assert not unknown, f"{name} sets {unknown}, which revsearch_site/settings.py does not read"
    for variable in set(names) & set(DOCUMENTED):
        assert variable in DOCUMENTED[variable].read_text(), f"{DOCUMENTED[variable]} no longer reads {variable}"


def test_the_app_services_use_the_compose_services():
    services = load_compose()["services"]
    for name, service in app_services().items():
        environment = service["environment"]
        for variable in ("DATABASE_URL", "REDIS_URL", "MILVUS_URI"):
            host = urlparse(with_defaults(environment[variable])).hostname
            assert host in services, f"{name}: {variable} points at {host}, which is not a service of this file"


def test_healthchecks_ask_for_pages_that_exist():
    for name, service in app_services().items():
        for argv in commands_of(service):
            for path in re.findall(r"http://127\.0\.0\.1:8000(/[^'\"\s]*)", " ".join(argv)):
                try:
                    resolve(path)
                except Resolver404:
                    pytest.fail(f"{name}'s healthcheck asks for {path}, which no URL pattern serves")


def test_scaled_services_have_no_fixed_name_or_host_port():
    services = load_compose()["services"]
    scaled = SCALED | {name for name, s in services.items() if (s.get("deploy") or {}).get("replicas", 1) > 1}
    for name in scaled:
        service = services[name]
        assert "container_name" not in service, f"{name} is scaled: a container_name allows only one"
        for port in service.get("ports", []):
            fixed = "published" in port if isinstance(port, dict) else ":" in INTERPOLATION.sub("", str(port))
            assert not fixed, f"{name} is scaled: host port {port} can be bound by only one container"


def test_the_dockerfile_copies_what_exists():
    for name, service in app_services().items():
        assert service["build"]["context"] == ".", f"{name} must build from the repository's top level"
    lines = (BASE_DIR / DOCKERFILE).read_text().splitlines()
    # COPY --from=<stage> copies from an earlier build stage, not from the repository.
    copies = [line for line in lines if line.startswith("COPY ") and "--from=" not in line]
    sources = [part for line in copies for part in line.split()[1:-1] if part[0] != "-"]
    assert sources
    for source in sources:
        assert (BASE_DIR / source).exists(), f"{DOCKERFILE} copies {source}, which does not exist"


def docker_compose(*args: str, **variables: str) -> subprocess.CompletedProcess:
    """docker-compose on this file, with no Docker engine, and only these variables set (and PATH)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run `make test`, which installs Debian's docker-compose")
    # Only PATH from our environment, so that variables set here do not change what is validated.
    environment = {"PATH": os.environ["PATH"], "DOCKER_HOST": "unix:///nonexistent", **variables}
    return subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), *args], env=environment, capture_output=True, text=True, timeout=60
    )


def published_ports(**variables: str) -> dict[str, list[str]]:
    """Each service's published ports (HOST_IP:HOST_PORT:PORT/tcp) as docker-compose resolves them."""
    result = docker_compose("--profile", "flower", "config", **REQUIRED, **variables)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    return {name: [str(port) for port in service["ports"]] for name, service in services.items() if "ports" in service}


@pytest.mark.processes
def test_docker_compose_accepts_the_file():
    for extra in ([], ["--profile", "flower"]):
        result = docker_compose(*extra, "config", "-q", **REQUIRED)
        assert result.returncode == 0, f"docker-compose {shlex.join([*extra, 'config'])} refused it:\n{result.stderr}"


@pytest.mark.processes
def test_docker_compose_refuses_to_start_without_the_passwords():
    # No default passwords: a stack brought up as it is would have Postgres and MinIO open to a known one.
    missing = docker_compose("config", "-q")
    assert missing.returncode != 0
    assert "set POSTGRES_PASSWORD (in the environment or .env" in missing.stderr
    no_minio = docker_compose("config", "-q", POSTGRES_PASSWORD=REQUIRED["POSTGRES_PASSWORD"])
    assert no_minio.returncode != 0
    assert "set MINIO_SECRET_KEY (in the environment or .env" in no_minio.stderr
    empty = docker_compose("config", "-q", **(REQUIRED | {"POSTGRES_PASSWORD": ""}))
    assert empty.returncode != 0 and "set POSTGRES_PASSWORD" in empty.stderr


@pytest.mark.processes
def test_the_passwords_reach_the_services_that_use_them():
    result = docker_compose("config", **REQUIRED)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    database = dj_database_url.parse(services["web"]["environment"]["DATABASE_URL"])
    assert database["PASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-password-1"
    assert services["minio"]["environment"]["MINIO_SECRET_KEY"] == "minio-password-1"
    assert services["milvus"]["environment"]["MINIO_SECRET_ACCESS_KEY"] == "minio-password-1"


@pytest.mark.processes
def test_ports_are_published_on_the_hosts_loopback_unless_told_otherwise():
    ports = published_ports()
    assert ports["web"] == ["127.0.0.1:8000:8000/tcp"]
    for name, published in ports.items():
        for port in published:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host's loopback"
    assert published_ports(REVSEARCH_PUBLISH_ADDRESS="0.0.0.0", REVSEARCH_PUBLISH="8080")["web"] == [
        "0.0.0.0:8080:8000/tcp"
    ]
