"""The Dockerfile builds any service from the pinned constraints into a small, non-root image.

No Docker engine runs here, so the file is read as Docker reads it: instructions by stage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from deploy_render import ROOT, containers, workloads

DOCKERFILE = ROOT / "Dockerfile"
SERVICES = ("catalog", "room", "tender", "payment", "notify", "gateway")


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def stages() -> list[Stage]:
    text = DOCKERFILE.read_text()
    logical = re.sub(r"\\\n", " ", text)  # line continuations
    found: list[Stage] = []
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), flags=re.IGNORECASE)
            assert match, line
            found.append(Stage(match.group(2) or str(len(found))))
        if found:
            found[-1].instructions.append((keyword, args.strip()))
    return found


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        env |= dict(pair.split("=", 1) for pair in args.split())
    return env


def test_two_stages_build_then_run():
    assert [stage.name for stage in stages()] == ["build", "runtime"]


def test_the_build_installs_only_libs_and_the_chosen_service_at_pinned_versions():
    build = stages()[0]
    assert "SERVICE" in build.all("ARG")
    copies = build.all("COPY")
    assert "constraints.txt ./" in copies
    assert {"libs/ libs/", "services/${SERVICE}/ services/${SERVICE}/"} <= set(copies)
    (install,) = [run for run in build.all("RUN") if "pip install" in run]
    assert "-c constraints.txt" in install
    assert "./libs ./services/${SERVICE}" in install
    assert "requirements.txt" not in install  # its dev and test tools stay out of images
    assert "--only-binary=:all:" in install  # wheels only: no compiler needed anywhere


def test_the_runtime_stage_runs_as_a_fixed_non_root_user_without_build_tools():
    runtime = stages()[-1]
    (user,) = runtime.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) >= 1000
    assert runtime.all("COPY") == ["--from=build /opt/gavel /opt/gavel"]
    text = " ".join(args for _, args in runtime.instructions)
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in text
    # pip itself is removed from the venv the runtime copies.
    assert any("pip uninstall --yes pip setuptools wheel" in run for run in stages()[0].all("RUN"))
    env = _env(runtime)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["GAVEL_HOST"] == "0.0.0.0"  # noqa: S104 — a pod's listeners must be reachable from outside it


def test_the_entry_point_runs_the_services_main_and_is_health_checkable():
    runtime = stages()[-1]
    assert runtime.all("ENTRYPOINT") == ['["gavel-service"]']
    assert runtime.all("CMD") == ['["serve"]']
    (healthcheck,) = runtime.all("HEALTHCHECK")
    assert healthcheck.endswith('CMD ["gavel-healthcheck"]')
    build = " ".join(stages()[0].all("RUN"))
    assert 'exec /opt/gavel/bin/python -m %s.main "$@"' in build
    assert "exec /opt/gavel/bin/python -m gavel_kit.healthcheck %s" in build
    assert (ROOT / "libs" / "src" / "gavel_kit" / "healthcheck.py").exists()


def test_the_manifests_run_the_images_as_the_dockerfiles_user(rendered):
    (user,) = stages()[-1].all("USER")
    uid = int(user.split(":")[0])
    for workload in workloads(rendered["dev"]):
        images = {c["image"] for c in containers(workload)}
        if any("gavel/" in image for image in images):
            assert workload["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_the_build_context_leaves_out_everything_the_image_does_not_need():
    ignore = set((ROOT / ".dockerignore").read_text().splitlines())
    assert {"*", "!constraints.txt", "!libs/", "!services/", "**/tests/"} <= ignore
    for service in SERVICES:
        assert (ROOT / "services" / service / "pyproject.toml").exists()
