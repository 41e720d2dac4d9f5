"""Image references and names (the docker SDK's parser), refused before any engine call."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.lib.config import Settings, resolve
from tasks.lib.errors import ConfigError
from tasks.lib.images import refs

EXAMPLE = Path(__file__).resolve().parents[3] / "example"


@pytest.fixture
def s() -> Settings:
    return resolve({}, env={}, project_dir=EXAMPLE, root=str(EXAMPLE), registry="t4unit")


@pytest.mark.parametrize(
    ("text", "repository", "tag", "registry"),
    [
        pytest.param(
            "isopen/meeshy-web:latest", "isopen/meeshy-web", "latest", "docker.io", id="hub"
        ),
        pytest.param(
            "127.0.0.1:5000/isopen/meeshy-web:v1",
            "127.0.0.1:5000/isopen/meeshy-web",
            "v1",
            "127.0.0.1:5000",
            id="host-port",
        ),
        pytest.param("localhost/x", "localhost/x", None, "localhost", id="no-tag"),
        pytest.param("127.0.0.1:5000/x", "127.0.0.1:5000/x", None, "127.0.0.1:5000", id="port"),
        pytest.param(
            "reg.example.com/a/b:c", "reg.example.com/a/b", "c", "reg.example.com", id="dotted"
        ),
    ],
)
def test_parse_and_registry(text: str, repository: str, tag: str | None, registry: str) -> None:
    ref = refs.Ref.parse(text)
    assert (ref.repository, ref.tag, ref.digest) == (repository, tag, None)
    assert ref.registry == registry
    assert refs.registry_of(text) == registry
    assert ref.name_and_tag() == (repository, tag or "latest")


def test_a_digest_is_not_a_tag() -> None:
    """The hand-written split_ref gave ("img@sha256", "abc") for this."""
    ref = refs.Ref.parse("img@sha256:abc")
    assert (ref.repository, ref.tag, ref.digest) == ("img", None, "sha256:abc")
    assert str(ref) == "img@sha256:abc"
    with pytest.raises(ConfigError, match="names a digest"):
        ref.name_and_tag()
    both = refs.Ref.parse("127.0.0.1:5000/a/b:v1@sha256:abc")
    assert (both.repository, both.tag, both.digest) == ("127.0.0.1:5000/a/b", "v1", "sha256:abc")
    assert str(both) == "127.0.0.1:5000/a/b:v1@sha256:abc"


@pytest.mark.parametrize(
    ("text", "familiar"),
    [
        ("docker.io/library/busybox", "busybox:latest"),
        ("docker.io/isopen/meeshy-web:v1", "isopen/meeshy-web:v1"),
        ("index.docker.io/isopen/meeshy-web:v1", "isopen/meeshy-web:v1"),
        ("127.0.0.1:5000/library/x:1", "127.0.0.1:5000/library/x:1"),
        ("isopen/meeshy-web", "isopen/meeshy-web:latest"),
    ],
)
def test_familiar_form_is_what_the_engine_lists(text: str, familiar: str) -> None:
    assert refs.Ref.parse(text).familiar == familiar


@pytest.mark.parametrize("url", ["127.0.0.1:5000", "registry.example.com", "[::1]:5000", ""])
def test_registry_url_ok(url: str) -> None:
    assert refs.check_registry_url(url) == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000", "host:5000/path", "bad host", ":5000"])
def test_registry_url_rejected(url: str) -> None:
    with pytest.raises(ConfigError, match="not host:port"):
        refs.check_registry_url(url)


@pytest.mark.parametrize(
    "url", ["localhost", "localhost:5000", "registry:5000", "Registry.Example.com:443"]
)
def test_registry_url_ok_as_docker_reads_a_domain(url: str) -> None:
    assert refs.check_registry_url(url) == url


@pytest.mark.parametrize(
    "url", ["a..b:5000", "a.:5000", "host:99999", "host:0", "-x.com", "x-.com"]
)
def test_registry_url_the_engine_would_refuse_is_refused_first(url: str) -> None:
    # found by review: these passed, the dry run said it would push, the real run failed at
    # the engine ("invalid reference format") with exit 1 and no hint
    with pytest.raises(ConfigError, match="not host:port"):
        refs.check_registry_url(url)


@pytest.mark.parametrize("url", ["registry", "myregistry", "reg-1"])
def test_registry_url_without_dot_or_port_is_refused_it_would_go_to_docker_hub(url: str) -> None:
    # found by review: `--registry-url registry` pushed to docker.io/registry/<repo>
    # (Docker reads a dotless, portless first component as a Docker Hub namespace)
    assert refs.Ref.parse(f"{url}/isopen/meeshy-web:v1").registry == "docker.io"
    with pytest.raises(ConfigError, match="Docker Hub") as info:
        refs.check_registry_url(url)
    assert f"{url}:5000" in (info.value.hint or "")


@pytest.mark.parametrize("image", ["Meeshy-Web", "meeshy web", "meeshy-", "-x", "a//b"])
def test_invalid_image_name_is_refused_naming_the_value_and_key(image: str) -> None:
    raw = {"services": {"web": {"image": image}}}
    s = resolve(raw, env={}, project_dir=EXAMPLE, root=str(EXAMPLE), registry="isopen")
    with pytest.raises(ConfigError) as info:
        refs.repository(s, s.service("web"))
    line = info.value.line()
    assert f"meeshy.services.web.image {image!r}" in line
    assert "not a valid image name" in line
    assert "docker.ensure" not in line  # the engine is not the problem


def test_listing_patterns_are_the_registry_in_use(s: Settings) -> None:
    assert refs.listing_patterns(s) == [
        "t4unit/*meeshy*",
        "t4unit/meeshy-gateway",
        "t4unit/meeshy-translator",
        "t4unit/meeshy-web",
    ]
    hub = resolve({}, env={}, project_dir=EXAMPLE, root=str(EXAMPLE), registry="docker.io/acme")
    assert refs.listing_patterns(hub)[0] == "acme/*meeshy*"


@pytest.mark.parametrize(
    ("ref", "kept"),
    [
        ("t4unit/meeshy-web:latest", True),
        ("t4unit/meeshy-extra:x", True),
        ("relt/meeshy-web:latest", False),
        ("127.0.0.1:5000/t4unit/meeshy-web:staging", False),
        ("t4unit/sub/meeshy-web:latest", False),
        ("busybox:latest", False),
    ],
)
def test_matches_like_the_engine_reference_filter(ref: str, kept: bool) -> None:
    assert refs.matches(ref, ["t4unit/*meeshy*", "t4unit/meeshy-web"]) is kept


def test_select_services(s: Settings) -> None:
    assert [x.name for x in refs.select_services(s, [])] == ["gateway", "translator", "web"]
    assert [x.name for x in refs.select_services(s, ["web", "web", "gateway"])] == [
        "web",
        "gateway",
    ]
    with pytest.raises(ConfigError, match="unknown service 'nope'"):
        refs.select_services(s, ["nope"])
