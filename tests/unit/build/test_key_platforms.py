"""The input key reads the Dockerfile with the platform ARGs of the build it stands for: the
``--platform`` given, else the engine's own, so ``COPY bin/$TARGETARCH/`` is keyed by the
folder BuildKit actually copies."""

from __future__ import annotations

from pathlib import Path

from tasks.lib.build.flow import sources_of
from tasks.lib.build.inputs import compute
from tasks.lib.build.plan import BuildOptions, ImageBuild, Target, plan_builds
from tasks.lib.config import resolve
from tasks.lib.gate.stages import platform_args

SERVICE = {
    "arch": {
        "dockerfile": "arch/Dockerfile",
        "image": "meeshy-arch",
        "tags": ["latest"],
        "schema_policy": "none",
    }
}


def _arch_image(root: Path, *platforms: str) -> ImageBuild:
    for arch in ("amd64", "arm64", "arm"):
        (root / "arch/bin" / arch).mkdir(parents=True, exist_ok=True)
        (root / "arch/bin" / arch / "x").write_text(arch)
    (root / "arch/Dockerfile").write_text(
        "FROM scratch\nARG TARGETARCH\nCOPY arch/bin/${TARGETARCH}/ /app/\n"
    )
    s = resolve({"services": SERVICE}, env={}, project_dir=root, root=str(root))
    return plan_builds(s, [Target("arch")], BuildOptions(platforms=platforms)).images[0]


def _files(image: ImageBuild, engine: str = "") -> tuple[str, ...]:
    sources = sources_of(image, engine)
    return compute(image, sources, local_ids={}, schema_sha256=None).files


def test_the_platform_asked_chooses_the_files(example_copy: Path) -> None:
    assert _files(_arch_image(example_copy, "linux/arm64")) == ("arch/bin/arm64/x",)
    both = _arch_image(example_copy, "linux/amd64", "linux/arm/v7")
    assert _files(both) == ("arch/bin/amd64/x", "arch/bin/arm/x")


def test_without_platform_the_engine_s_platform_chooses(example_copy: Path) -> None:
    img = _arch_image(example_copy)
    assert _files(img, "linux/arm64") == ("arch/bin/arm64/x",)
    assert _files(img) == ("arch/bin/amd64/x",)  # no engine answered: the gate's default


def test_platform_args_as_buildkit_defines_them() -> None:
    args = platform_args("linux/arm64/v8", "linux/amd64")
    assert args["TARGETPLATFORM"] == "linux/arm64" and args["TARGETVARIANT"] == ""
    assert args["BUILDARCH"] == "amd64" and args["BUILDPLATFORM"] == "linux/amd64"
    assert platform_args("linux/arm")["TARGETPLATFORM"] == "linux/arm/v7"
    assert platform_args("linux/x86_64")["BUILDARCH"] == "amd64"
