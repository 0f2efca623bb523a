"""`python -m gateway.main …` as the cluster launcher runs it: real processes, a real port, real signals."""

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from gavel_kit.testing.plugin import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path):
    return {
        **os.environ,
        "GAVEL_VAR_DIR": str(tmp_path),
        "GAVEL_GATEWAY_HTTP_PORT": str(free_port()),
        "GAVEL_CATALOG_ADDR": "127.0.0.1:1",
        "GAVEL_LOG_FORMAT": "json",
    }


def _gateway(env, *args, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "gateway.main", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_create_user_is_idempotent_by_email_and_updates_roles(env, tmp_path):
    first = _gateway(
        env, "create-user", "--email", "Seller@Gavel.local", "--name", "Sam", "--roles", "seller", stdin="pw1\n"
    )
    assert first.returncode == 0, first.stderr
    password_file = tmp_path / "password"
    password_file.write_text("pw2\n")
    second = _gateway(
        env,
        "create-user",
        "--email",
        "seller@gavel.local",
        "--password-file",
        str(password_file),
        "--name",
        "Sam",
        "--roles",
        "seller,bidder",
    )
    assert second.returncode == 0, second.stderr
    created, updated = json.loads(first.stdout), json.loads(second.stdout)
    assert created["created"] is True
    assert updated["created"] is False
    assert created["id"] == updated["id"]
    assert updated["email"] == "seller@gavel.local"
    assert updated["roles"] == ["bidder", "seller"]


def test_create_user_never_takes_a_password_in_argv(env):
    result = _gateway(env, "create-user", "--email", "a@b.co", "--password", "pw", "--name", "N", "--roles", "bidder")
    assert result.returncode == 2
    assert "unrecognized arguments: --password" in result.stderr


def test_create_user_with_bad_input_exits_2_and_says_why(env):
    result = _gateway(env, "create-user", "--email", "nope", "--name", "N", "--roles", "pope", stdin="pw\n")
    assert result.returncode == 2
    assert "create-user: email:" in result.stderr
    assert "create-user: roles: unknown role 'pope'" in result.stderr


def test_migrate_creates_the_database_and_exits_0(env, tmp_path):
    result = _gateway(env, "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "db" / "gateway.sqlite").exists()


def test_serve_answers_on_the_configured_port_and_stops_cleanly_on_sigterm(env):
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.main", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{env['GAVEL_GATEWAY_HTTP_PORT']}"
        started = []
        for line in process.stdout:  # uvicorn says so once the socket listens; EOF if the process died
            started.append(line)
            if "Uvicorn running on" in line:
                break
        assert "Uvicorn running on" in "".join(started[-1:]), "".join(started)
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 503
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        log = "".join(started) + process.stdout.read()
        assert '"stopped by signal"' in log
        assert '"gateway resources closed"' in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
