"""Every build target of the Makefile (spec table) planned as the same docker command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.lib.build.plan import BuildOptions, ImageBuild, Stamp, Target, plan_builds
from tasks.lib.config import Settings, resolve
from tasks.lib.errors import ConfigError

STAMP = Stamp(build_date="2026-01-25T10:00:00Z", vcs_ref="abc1234")


def _settings(
    root: Path, registry: str | None = None, *, builder: str = "", context: str = ""
) -> Settings:
    return resolve(
        {},
        env={},
        project_dir=root,
        root=str(root),
        registry=registry,
        builder=builder or None,
        docker_context=context or None,
    )


def _plan(root: Path, *targets: Target, options: BuildOptions | None = None) -> list[ImageBuild]:
    return list(
        plan_builds(_settings(root), targets, options or BuildOptions(), stamp=STAMP).images
    )


def _pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


# (make target, target, dockerfile, build args in Makefile order, tags, --load)
MAKE_TARGETS = [
    pytest.param(
        Target("gateway"),
        "services/gateway/Dockerfile",
        [
            ("BUILD_DATE", STAMP.build_date),
            ("VCS_REF", "abc1234"),
            ("VERSION", "1.0.40"),
            ("PACKAGE_MANAGER", "bun"),
        ],
        ["isopen/meeshy-gateway:v1.0.40", "isopen/meeshy-gateway:latest"],
        False,
        id="build-docker-gateway",
    ),
    pytest.param(
        Target("translator"),
        "services/translator/Dockerfile",
        [
            ("TORCH_BACKEND", "cpu"),
            ("BUILD_DATE", STAMP.build_date),
            ("VCS_REF", "abc1234"),
            ("VERSION", "1.0.0"),
        ],
        [
            "isopen/meeshy-translator:v1.0.0-cpu",
            "isopen/meeshy-translator:v1.0.0",
            "isopen/meeshy-translator:latest",
            "isopen/meeshy-translator:cpu",
        ],
        True,
        id="build-translator-cpu",
    ),
    pytest.param(
        Target("translator", "cpu"),
        "services/translator/Dockerfile",
        [
            ("TORCH_BACKEND", "cpu"),
            ("BUILD_DATE", STAMP.build_date),
            ("VCS_REF", "abc1234"),
            ("VERSION", "1.0.0"),
        ],
        [
            "isopen/meeshy-translator:v1.0.0-cpu",
            "isopen/meeshy-translator:v1.0.0",
            "isopen/meeshy-translator:latest",
            "isopen/meeshy-translator:cpu",
        ],
        True,
        id="build-translator-alias",
    ),
    pytest.param(
        Target("translator", "gpu"),
        "services/translator/Dockerfile",
        [
            ("TORCH_BACKEND", "gpu"),
            ("BUILD_DATE", STAMP.build_date),
            ("VCS_REF", "abc1234"),
            ("VERSION", "1.0.0"),
        ],
        ["isopen/meeshy-translator:v1.0.0-gpu", "isopen/meeshy-translator:gpu"],
        True,
        id="build-translator-gpu",
    ),
    pytest.param(
        Target("translator", "gpu-cu121"),
        "services/translator/Dockerfile",
        [
            ("TORCH_BACKEND", "gpu-cu121"),
            ("BUILD_DATE", STAMP.build_date),
            ("VCS_REF", "abc1234"),
            ("VERSION", "1.0.0"),
        ],
        ["isopen/meeshy-translator:v1.0.0-gpu-cu121"],
        False,  # make -n build-translator-gpu-cu121: no --load (cpu and gpu have it)
        id="build-translator-gpu-cu121",
    ),
    pytest.param(
        Target("translator", "gpu-cu118"),
        "services/translator/Dockerfile",
        [
            ("TORCH_BACKEND", "gpu-cu118"),
            ("BUILD_DATE", STAMP.build_date),
            ("VCS_REF", "abc1234"),
            ("VERSION", "1.0.0"),
        ],
        ["isopen/meeshy-translator:v1.0.0-gpu-cu118"],
        False,  # no Makefile target; follows gpu-cu121
        id="translator-gpu-cu118",
    ),
    pytest.param(
        Target("web"),
        "apps/web/Dockerfile",
        [
            ("BUILD_DATE", STAMP.build_date),
            ("VCS_REF", "abc1234"),
            ("VERSION", "1.0.41"),
            ("PACKAGE_MANAGER", "bun"),
        ],
        ["isopen/meeshy-web:v1.0.41", "isopen/meeshy-web:latest"],
        False,
        id="build-docker-web",
    ),
]


@pytest.mark.parametrize(("target", "dockerfile", "args", "tags", "load"), MAKE_TARGETS)
def test_make_target_parity(
    example_copy: Path,
    target: Target,
    dockerfile: str,
    args: list[tuple[str, str]],
    tags: list[str],
    load: bool,
) -> None:
    (img,) = _plan(example_copy, target)
    argv = img.argv()
    assert argv[:3] == ["docker", "buildx", "build"]
    assert _pairs(argv, "--file") == [str(example_copy / dockerfile)]
    assert argv[-1] == str(example_copy)  # context: the repo root, as `make` uses `.`
    assert _pairs(argv, "--build-arg") == [f"{k}={v}" for k, v in args]
    assert list(img.tags) == tags  # the Makefile's tags, written once the inputs are checked
    assert _pairs(argv, "--tag") == []  # ... not by buildx: it builds the image untagged
    assert ("--load" in argv) is load
    assert "--push" not in argv
    assert _pairs(argv, "--label") == [
        f"me.meeshy.schema.sha256={_settings(example_copy).schema_sha256}",
        "me.meeshy.schema.path=packages/shared/prisma/schema.prisma",
    ]


def test_build_all_is_gateway_translator_cpu_web(example_copy: Path) -> None:
    s = _settings(example_copy)
    imgs = plan_builds(s, [Target(n) for n in s.all], BuildOptions(), stamp=STAMP).images
    assert [i.name for i in imgs] == ["gateway", "translator:cpu", "web"]
    assert len({dict(i.build_args)["BUILD_DATE"] for i in imgs}) == 1  # one stamp for all


def test_registry_override_and_flags(example_copy: Path) -> None:
    s = _settings(
        example_copy, registry="registry.local:5000/meeshy", builder="remote", context="ci"
    )
    opts = BuildOptions(platforms=("linux/amd64", "linux/arm64"), no_cache=True, push=True)
    (img,) = plan_builds(s, [Target("translator", "gpu")], opts, stamp=STAMP).images
    argv = img.argv()
    assert argv[:3] == ["docker", "--context", "ci"]
    assert _pairs(argv, "--tag") == [
        "registry.local:5000/meeshy/meeshy-translator:v1.0.0-gpu",
        "registry.local:5000/meeshy/meeshy-translator:gpu",
    ]
    assert _pairs(argv, "--platform") == ["linux/amd64,linux/arm64"]
    assert _pairs(argv, "--builder") == ["remote"]
    assert "--no-cache" in argv and "--push" in argv
    assert (
        "--load" not in argv
    )  # a pushed build is not also loaded (one exporter on BuildKit < 0.13)
    assert _pairs(argv, "--label") == [
        f"me.meeshy.schema.sha256={s.schema_sha256}",
        "me.meeshy.schema.path=packages/shared/prisma/schema.prisma",
    ]  # the schema is hashed once, in Settings


@pytest.mark.parametrize("name", ["--help", "-x", "a b", "a/b", "é"])
def test_a_builder_name_buildx_cannot_have_is_refused_before_any_build(
    example_copy: Path, name: str
) -> None:
    """buildx takes ``--builder --help`` as a builder named ``--help`` and fails at build time
    ("no builder found"); a name no builder or context can have is refused in the plan."""
    with pytest.raises(ConfigError, match=r"--builder .* is not a builder name"):
        _settings(example_copy, builder=name)
    with pytest.raises(ConfigError, match=r"meeshy.builder .* is not a builder name"):
        resolve({"builder": name}, env={}, project_dir=example_copy, root=str(example_copy))
    for fine in ("default", "my_builder-2.x", "ctx+1"):
        assert _settings(example_copy, builder=fine).builder == fine


def test_env_registry_and_root(example_copy: Path, tmp_path: Path) -> None:
    s = resolve(
        {}, env={"DOCKER_REGISTRY": "acme", "MEESHY_ROOT": str(example_copy)}, project_dir=tmp_path
    )
    assert s.root == example_copy.resolve()
    assert s.registry == "acme"
    flag = resolve(
        {},
        env={"DOCKER_REGISTRY": "acme"},
        project_dir=tmp_path,
        root=str(example_copy),
        registry="flag",
    )
    assert flag.registry == "flag"


def test_missing_version_file_is_1_0_0_and_said(example_copy: Path) -> None:
    (example_copy / "apps/web/VERSION").unlink()
    plan = plan_builds(
        _settings(example_copy), [Target("web"), Target("gateway")], BuildOptions(), stamp=STAMP
    )
    web = plan.images[0]
    assert web.tags == ("isopen/meeshy-web:v1.0.0", "isopen/meeshy-web:latest")
    # Makefile parity, but never silent: a misspelled path would tag 1.0.0 unnoticed.
    assert plan.warnings == (
        "apps/web/VERSION not found: web is tagged as version 1.0.0 (the Makefile's "
        "fallback); create the file or fix meeshy.services.web.version_file",
    )


def test_present_or_unconfigured_version_file_says_nothing(example_copy: Path) -> None:
    plan = plan_builds(_settings(example_copy), [Target("web")], BuildOptions(), stamp=STAMP)
    assert plan.warnings == ()
    s = resolve(
        {"services": {"web": {"version_file": ""}}},
        env={},
        project_dir=example_copy,
        root=str(example_copy),
    )
    plan = plan_builds(s, [Target("web")], BuildOptions(), stamp=STAMP)
    assert plan.images[0].version == "1.0.0"
    assert plan.warnings == ()  # no file configured: 1.0.0 is what was asked for


def test_dangling_version_symlink_is_missing(example_copy: Path) -> None:
    version = example_copy / "apps/web/VERSION"
    version.unlink()
    version.symlink_to(example_copy / "nowhere")
    plan = plan_builds(
        _settings(example_copy), [Target("web"), Target("web")], BuildOptions(), stamp=STAMP
    )
    assert plan.images[0].version == "1.0.0"
    assert len(plan.warnings) == 1  # once per service, however many of its images


@pytest.mark.parametrize("bad", ["1.0", "v1.0.0", "latest", "1.0.0 beta", ""])
def test_malformed_version_is_one_clear_line(example_copy: Path, bad: str) -> None:
    (example_copy / "services/gateway/VERSION").write_text(bad + "\n")
    with pytest.raises(ConfigError) as exc:
        _plan(example_copy, Target("gateway"))
    assert exc.value.line().startswith("services/gateway/VERSION: ")
    assert "is not a version like 1.2.3" in exc.value.line()
    assert "\n" not in exc.value.line()


def test_unknown_service_and_variant(example_copy: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown service 'mobile': choose one of gateway, "):
        _plan(example_copy, Target("mobile"))
    with pytest.raises(ConfigError, match=r"unknown translator variant 'rocm': choose one of cpu"):
        _plan(example_copy, Target("translator", "rocm"))
    with pytest.raises(ConfigError, match=r"service 'web' has no variants"):
        _plan(example_copy, Target("web", "gpu"))


def test_missing_dockerfile_names_the_file(example_copy: Path) -> None:
    (example_copy / "apps/web/Dockerfile").unlink()
    with pytest.raises(ConfigError, match=r"^Dockerfile apps/web/Dockerfile not found under "):
        _plan(example_copy, Target("web"))


def test_unknown_config_key_is_named(example_copy: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config key meeshy.regsitry"):
        resolve({"regsitry": "x"}, env={}, project_dir=example_copy)
    with pytest.raises(ConfigError, match=r"unknown config key meeshy.services.web.dockrfile"):
        resolve({"services": {"web": {"dockrfile": "x"}}}, env={}, project_dir=example_copy)


def test_config_can_add_a_service(example_copy: Path) -> None:
    raw = {
        "services": {
            "worker": {
                "dockerfile": "apps/web/Dockerfile",
                "image": "meeshy-worker",
                "tags": ["v{version}"],
                "schema_policy": "none",
            }
        }
    }
    s = resolve(raw, env={}, project_dir=example_copy)
    assert s.service("worker").image == "meeshy-worker"
    assert s.service("gateway").image == "meeshy-gateway"  # defaults kept beside the new one


def test_argv_is_what_python_on_whales_runs(
    example_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed command equals the one python-on-whales executes (its Popen is intercepted)."""
    import python_on_whales.utils as pow_utils
    from python_on_whales import DockerClient

    seen: list[list[str]] = []

    class Stop(Exception):
        pass

    def fake_popen(cmd: list[str], *a: object, **k: object) -> None:
        seen.append(list(cmd))
        raise Stop

    monkeypatch.setattr(pow_utils, "Popen", fake_popen)
    opts = BuildOptions(platforms=("linux/amd64",), no_cache=True)
    for target in (Target("gateway"), Target("translator", "gpu")):
        (img,) = plan_builds(
            _settings(example_copy, builder="b1", context="ctx1"), [target], opts, stamp=STAMP
        ).images
        client = DockerClient(context="ctx1")
        with pytest.raises(Stop):
            list(client.buildx.build(**img.whales_kwargs()))  # type: ignore[arg-type]
        assert Path(seen[-1][0]).name == "docker"
        assert seen[-1][1:] == img.argv()[1:]


def test_release_loads_every_image(example_copy: Path) -> None:
    """release builds with load=True so the push sends what was just built, whatever the builder."""
    s = _settings(example_copy, builder="remote-bk")
    opts = BuildOptions(load=True)
    imgs = plan_builds(s, [Target(n) for n in s.all], opts, stamp=STAMP).images
    assert all("--load" in i.argv() for i in imgs)
