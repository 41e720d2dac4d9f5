"""Pushes (``push.push_one``, ``push.push_images``): temporary ``--registry-url`` tags, their
record, in-band errors, signals and killed runs, on the real engine and a real registry on
loopback, with images of the test's own. Faults are real or injected around the real calls
(:mod:`tests.integration.images.faults`):

* a registry down: a port where nothing listens (the engine's own "connection refused",
  in-band), or the registry stopped between two pushes;
* a signal: ``Interrupted`` raised as a push starts, or in the middle of the real push
  stream while the engine waits for the registry to take the manifest (a relay holds it);
* a push the engine ends after the run was interrupted: that relay lets the manifest
  through once the run has put its tags back;
* a killed run: a forked child running the push, SIGKILLed at a hook's point;
* a stream cut before its digest: the real stream read to its end (the engine's push
  ends), push_one given the items before the digest line.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.lib.errors import Interrupted, MissingImageError
from tasks.lib.images import push
from tasks.lib.images.journal import Journal, TempTag
from tasks.lib.output import Output
from tasks.lib.progress import Progress, Status
from tests.integration.images.faults import (
    HookedApi,
    HookedClient,
    Item,
    ManifestGate,
    OwnImages,
    dead_port,
    die,
    hooked,
    killed_push,
    own,
    pushed,
    quiet,
)
from tests.integration.registry import LocalRegistry, registry

__all__ = ["dead_port", "hooked", "own", "registry"]  # the fixtures, imported explicitly

pytestmark = [pytest.mark.engine, pytest.mark.registry]


class Pushes:
    """``<ns>/meeshy-web:staging`` and ``<ns>/meeshy-gateway:staging``, images of their own;
    a client with hooks; the record of temporary tags in the test's own state folder."""

    def __init__(
        self, own: OwnImages, reg: LocalRegistry, client: HookedClient, state: Path
    ) -> None:
        self.own, self.reg, self.ns, self.client = own, reg, own.ns, client
        self.web = own.make(f"{self.ns}/meeshy-web:staging")
        self.gw = own.make(f"{self.ns}/meeshy-gateway:staging")
        self.journal = Journal.for_engine(self.client.api.base_url, {"XDG_STATE_HOME": str(state)})

    def targets(self, host: str = "") -> list[push.PushTarget]:
        """web then gateway, pushed to ``host`` (the registry) with temporary tags."""
        host = host or self.reg.host
        sources = [(svc, f"{self.ns}/meeshy-{svc}:staging") for svc in ("web", "gateway")]
        return [push.PushTarget(svc, src, f"{host}/{src}") for svc, src in sources]

    def run(self, targets: list[push.PushTarget]) -> push.PushResult:
        return push.push_images(
            self.client, targets, engine="e", journal=self.journal, progress=quiet
        )

    def tags(self, svc: str) -> list[str]:
        """What the registry holds of ``<ns>/meeshy-<svc>``."""
        return self.reg.tags(f"{self.ns}/meeshy-{svc}")

    @staticmethod
    def failure(result: push.PushResult, *statuses: Status) -> str:
        """The one line a failed run exits with; each push's status checked first."""
        assert [o.status for o in result.outcomes] == list(statuses)
        error = result.error()
        assert error is not None
        return error.line()


@pytest.fixture
def p(own: OwnImages, registry: LocalRegistry, hooked: HookedClient, tmp_path: Path) -> Pushes:
    return Pushes(own, registry, hooked, tmp_path / "state")


class Texts:
    """A progress view that keeps every text push_one gives, and passes all on to ``view``."""

    def __init__(self, view: Progress) -> None:
        self.view = view
        self.texts: list[str] = []

    def start(self, key: str, *, text: str = "", total: int | None = None) -> None:
        self.view.start(key, text=text, total=total)

    def update(self, key: str, **kwargs: Any) -> None:
        if kwargs.get("text"):
            self.texts.append(kwargs["text"])
        self.view.update(key, **kwargs)

    def finish(self, key: str, status: Status, *, text: str = "") -> None:
        self.view.finish(key, status, text=text)


def test_plain_progress_lines(p: Pushes, capsys: pytest.CaptureFixture[str]) -> None:
    """One protocol (out.progress): a line per layer state change, once per state, though
    the engine repeats "Pushing" with every chunk of a layer (push_one says it once, not
    only the plain view, which drops a line equal to the one before)."""
    ref = f"{p.reg.host}/{p.ns}/meeshy-big:x"
    p.own.make(ref, size=3_000_000)
    seen: list[Item] = []

    def record(_: str, real: Callable[[], Iterator[Item]]) -> Iterator[Item]:
        for item in real():
            seen.append(item)
            yield item

    p.client.api.on_push = record
    target = push.PushTarget("web", ref, ref)
    with Output(plain=True).progress("push", [ref]) as view:
        texts = Texts(view)
        state = push.push_one(p.client, target, texts)
    assert state.error is None
    assert state.digest is not None
    assert state.digest.startswith("sha256:")
    [layer] = {str(i["id"]) for i in seen if i.get("id")}
    assert sum(i.get("status") == "Pushing" for i in seen) >= 2  # the engine repeats it
    assert texts.texts == [f"layer {layer}: Pushing", f"layer {layer}: Pushed"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"[{ref}] to {p.reg.host}"
    assert lines[-1].startswith(f"[{ref}] pushed in ")
    assert lines[-1].endswith(f": {state.digest}")
    assert sum(f"layer {layer}: Pushing" in x for x in lines) == 1
    assert sum(f"layer {layer}: Pushed" in x for x in lines) == 1
    assert not any("Preparing" in x for x in lines)
    assert p.reg.tags(f"{p.ns}/meeshy-big") == ["x"]


def test_push_success_leaves_the_engine_as_it_was(p: Pushes) -> None:
    before = p.own.refs()
    targets = p.targets()
    result = p.run(targets)
    assert [o.status for o in result.outcomes] == [Status.PUSHED, Status.PUSHED]
    assert p.client.api.pushed == [t.remote for t in targets]
    assert result.error() is None
    assert result.to_json()["pushes"][0]["status"] == "pushed"
    # the registry has each image under its name, as the digest the run reports
    assert (p.tags("web"), p.tags("gateway")) == (["staging"], ["staging"])
    assert [pushed(p.reg, f"{p.ns}/meeshy-{s}", "staging") for s in ("web", "gateway")] == [
        (o.digest, image) for o, image in zip(result.outcomes, (p.web, p.gw), strict=True)
    ]
    # temporary tags gone, and the digest references the push added with them
    assert p.own.refs() == before
    assert p.journal.read() == []


def test_temporary_tags_are_recorded_before_they_exist(p: Pushes) -> None:
    targets = p.targets()
    at_tag: list[tuple[str, list[str], bool]] = []
    at_push: list[list[str]] = []

    def check_tag(image: str, ref: str, real: Callable[[], bool]) -> bool:
        at_tag.append((ref, [e.ref for e in p.journal.read()], ref in p.own.refs()))
        return real()

    def check_push(ref: str, real: Callable[[], Iterator[Item]]) -> Iterator[Item]:
        at_push.append([e.ref for e in p.journal.read()])
        return real()

    p.client.api.on_tag, p.client.api.on_push = check_tag, check_push
    p.run(targets)
    web, gw = (t.remote for t in targets)
    # each recorded before the engine was asked to make it, and not there yet
    assert at_tag == [(web, [web], False), (gw, [web, gw], False)]
    assert at_push[0] == [web, gw]


def test_in_band_error_stops_and_says_nothing_was_pushed(p: Pushes, dead_port: str) -> None:
    before = p.own.refs()
    targets = p.targets(dead_port)
    line = p.failure(p.run(targets), Status.FAILED, Status.SKIPPED)
    web = targets[0].remote
    assert line == (
        f'push of {web} to registry {dead_port} failed: Get "http://{dead_port}/v2/": dial '
        f"tcp {dead_port}: connect: connection refused: nothing was pushed; rerun once the "
        "registry accepts pushes (layers already there are skipped)"
    )
    assert p.client.api.pushed == [web]  # stopped
    assert p.own.refs() == before
    assert p.journal.read() == []


def test_failure_after_a_push_names_what_was_pushed(p: Pushes) -> None:
    """The registry is stopped once web's push ended, as gateway's starts."""
    targets = p.targets()
    web, gw = (t.remote for t in targets)

    def stop_before_gateway(ref: str, real: Callable[[], Iterator[Item]]) -> Iterator[Item]:
        if ref == gw:
            p.reg.stop()
        return real()

    before = p.own.refs()
    p.client.api.on_push = stop_before_gateway
    result = p.run(targets)
    line = p.failure(result, Status.PUSHED, Status.FAILED)
    assert line.startswith(f"push of {gw} to registry {p.reg.host} failed: ")
    assert "connection refused" in line
    assert f"pushed before it: {web};" in line
    assert [t.remote for t in result.pushed] == [web]
    assert p.own.refs() == before
    p.reg.start()
    assert (p.tags("web"), p.tags("gateway")) == (["staging"], [])


def test_stream_without_digest_is_an_error(p: Pushes) -> None:
    """The engine always ends a pushed tag's stream with its digest; a stream that ends
    before it is what a cut connection gives. The real stream is read to its end (the
    engine's push ends: the registry has the tag, the engine a digest reference) and
    push_one gets the items before the digest line."""
    targets = p.targets()
    web = targets[0].remote

    def cut_before_the_digest(_: str, real: Callable[[], Iterator[Item]]) -> Iterator[Item]:
        items = list(real())
        assert any("aux" in i for i in items)
        return iter(items[: next(i for i, x in enumerate(items) if ": digest: " in str(x))])

    before = p.own.refs()
    p.client.api.on_push = cut_before_the_digest
    line = p.failure(p.run(targets), Status.FAILED, Status.SKIPPED)
    assert line.startswith(
        f"push of {web} to registry {p.reg.host} failed: the stream ended without a digest "
        f"(last: The push refers to repository [{p.reg.host}/{p.ns}/meeshy-web]): nothing "
        "was pushed"
    )
    assert p.client.api.pushed == [web]
    # the digest reference the engine added is removed with the temporary tag
    assert p.own.refs() == before
    assert p.journal.read() == []


def test_missing_source_pushes_nothing(p: Pushes) -> None:
    targets = p.targets()
    missing = f"{p.ns}/meeshy-translator:staging"
    targets.append(push.PushTarget("translator", missing, f"{p.reg.host}/{missing}"))
    before = p.own.refs()
    with pytest.raises(MissingImageError) as info:
        p.run(targets)
    assert info.value.line() == (
        f"missing local image(s): {missing}; nothing was pushed: build or tag them first "
        "(`inv build.all`, `inv staging.tag`)"
    )
    assert p.client.api.pushed == []
    assert p.reg.get_json("_catalog") == {"repositories": []}
    assert p.own.refs() == before
    assert not p.journal.path.exists()


def test_a_leftover_tag_of_another_image_is_put_back(p: Pushes) -> None:
    targets = p.targets()
    users = p.own.make(targets[0].remote)  # the user's own tag of that name
    before = p.own.refs()
    result = p.run(targets)
    assert result.error() is None
    assert p.own.refs() == before
    assert before[targets[0].remote] == users
    # what went is the image the run was asked to push, not the user's
    assert pushed(p.reg, f"{p.ns}/meeshy-web", "staging")[1] == p.web


def test_signal_during_a_push_puts_the_temporary_tags_back(p: Pushes) -> None:
    """SIGTERM arrives as gateway's push starts (web's is done)."""
    targets = p.targets()
    web, gw = (t.remote for t in targets)

    def interrupt(ref: str, real: Callable[[], Iterator[Item]]) -> Iterator[Item]:
        if ref == gw:
            raise Interrupted(signal.SIGTERM)
        return real()

    before = p.own.refs()
    p.client.api.on_push = interrupt
    with pytest.raises(Interrupted) as info:
        p.run(targets)
    assert info.value.exit_code == 143
    assert p.own.refs() == before
    # every tag is put back; the cut push's entry stays, its tag marked as put back, for
    # the digest reference the engine may still add (see the next test)
    assert [(e.ref, e.tag_restored) for e in p.journal.read()] == [(gw, True)]
    assert info.value.line() == (
        f"interrupted by SIGTERM while pushing {gw} (it may have reached the registry); "
        f"pushed: {web}; the temporary tags were put back"
    )
    assert (p.tags("web"), p.tags("gateway")) == (["staging"], [])


def test_a_cut_push_that_ends_in_the_engine_later_leaves_nothing_after_the_next_run(
    p: Pushes,
) -> None:
    """Found by review: SIGINT while the registry stored the manifest. The run put its tags
    back and said "nothing was pushed"; then the engine finished the push (the registry had
    the tag) and added a digest reference, ``127.0.0.1:P/ns/meeshy-gateway@sha256:...``,
    that no record named: it outlived the run for good.

    Here the push goes through a relay that holds the manifest: the engine has sent the
    layers and waits; SIGINT comes then (raised in the real stream), the run puts its tags
    back, and only then the relay lets the manifest through and the engine ends the push.
    The next run pushes web only: one that pushed gateway again would hide a missing fix,
    as the engine drops a repository's digest references with the last tag removed from it
    (the next run's own temporary tag of gateway, put back)."""
    gate = ManifestGate(p.reg.port)
    try:
        web, target = p.targets(gate.host)  # gateway only: cut before any push ended
        cut: list[Iterator[Item]] = []

        def interrupt_mid_push(_: str, real: Callable[[], Iterator[Item]]) -> Iterator[Item]:
            stream = real()
            cut.append(stream)
            for item in stream:
                yield item
                if item.get("status") == "Pushed":  # the layer is there
                    break
            assert gate.held.wait(30), "the engine never sent the manifest"
            raise Interrupted(signal.SIGINT)

        before = p.own.refs()
        p.client.api.on_push = interrupt_mid_push
        with pytest.raises(Interrupted) as info:
            p.run([target])
        assert info.value.line() == (
            f"interrupted by SIGINT while pushing {target.remote} (it may have reached the "
            "registry); nothing before it was pushed; the temporary tags were put back"
        )
        assert p.own.refs() == before
        assert [(e.ref, e.tag_restored) for e in p.journal.read()] == [(target.remote, True)]
        gate.open()  # the engine ends the push after the run put its tags back
        [digest] = [i["aux"]["Digest"] for i in cut[0] if "aux" in i]
        late = f"{gate.host}/{p.ns}/meeshy-gateway@{digest}"
        assert p.own.refs() == before | {late: p.gw}  # what outlived the run before the fix
        assert p.tags("gateway") == ["staging"]
        p.client.api.on_push = None
        result = p.run([web])  # the next push (any push through the engine)
        assert result.error() is None
        assert p.tags("web") == ["staging"]
        assert p.own.refs() == before
        assert result.cleaned == ()  # no tag was left to put back: not reported as one
        assert p.journal.read() == []
    finally:
        gate.close()


def test_a_killed_run_is_cleaned_by_the_next(p: Pushes) -> None:
    """A run SIGKILLed once web's push ended left its temporary tags, the digest reference
    of that push, and its record; the next run puts them back as they were before the
    killed run, not as it found them."""
    targets = p.targets()
    web, gw = (t.remote for t in targets)
    before = p.own.refs()

    def arm(api: HookedApi) -> None:
        def push_then_die(ref: str, real: Callable[[], Iterator[Item]]) -> Iterator[Item]:
            for _ in real():  # the engine ends web's push
                pass
            die()

        api.on_push = push_then_die

    killed_push(targets, p.journal, arm)
    left = p.own.refs()
    [digest] = [r for r in left if r.startswith(f"{p.reg.host}/{p.ns}/meeshy-web@")]
    assert left == before | {web: p.web, gw: p.gw, digest: p.web}  # what SIGKILL leaves
    assert [e.ref for e in p.journal.read()] == [web, gw]
    result = p.run(targets)
    assert [e.ref for e in result.cleaned] == [web, gw]
    assert result.error() is None
    assert p.own.refs() == before
    assert p.journal.read() == []


def test_a_killed_run_before_its_tag_changes_nothing(p: Pushes) -> None:
    """Killed between recording and tagging: the user's tag of that name stays."""
    targets = p.targets()
    web = targets[0].remote
    users = p.own.make(web)
    before = p.own.refs()

    def arm(api: HookedApi) -> None:
        api.on_tag = lambda image, ref, real: die()

    killed_push(targets, p.journal, arm)
    assert p.journal.read() == [TempTag(web, p.web, users, ())]
    assert p.own.refs() == before
    result = p.run(targets)
    assert result.error() is None
    assert p.own.refs() == before
    assert result.cleaned == ()  # nothing to put back: not reported as put back
    assert not p.journal.path.exists()


def test_a_push_without_registry_url_also_cleans_what_a_killed_run_left(p: Pushes) -> None:
    targets = p.targets()
    web = targets[0].remote
    plain = f"{p.reg.host}/{p.ns}/meeshy-web:v1"  # named with its registry: no temporary tag
    p.own.sdk.api.tag(p.web, plain.rpartition(":")[0], "v1")
    before = p.own.refs()

    def arm(api: HookedApi) -> None:
        api.on_push = lambda ref, real: die()  # every temporary tag is written

    killed_push(targets, p.journal, arm)
    assert [e.ref for e in p.journal.read()] == [t.remote for t in targets]
    result = p.run([push.PushTarget("web", plain, plain)])
    assert [e.ref for e in result.cleaned] == [t.remote for t in targets]
    [outcome] = result.outcomes
    assert outcome.status is Status.PUSHED
    # the push's own digest reference stays (it is not a temporary tag's); the rest as before
    assert p.own.refs() == before | {f"{p.reg.host}/{p.ns}/meeshy-web@{outcome.digest}": p.web}
    assert (p.tags("web"), p.tags("gateway")) == (["v1"], [])
    assert not p.journal.path.exists()
    assert web not in p.own.refs()
