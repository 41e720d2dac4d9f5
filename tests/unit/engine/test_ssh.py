"""The SSH link without a server: endpoints parsed as Docker takes them, the exact ``ssh``
argv, ssh's real messages mapped to one reason and what to do, the ``meeshy.ssh`` config, and
the one-line errors that need no connection (no ssh client, no config file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.lib import engine
from tasks.lib.config import SshOptions, defaults, resolve, ssh_options
from tasks.lib.engine import EngineTarget, engine_session, link, use_ssh_options
from tasks.lib.ensure import EnsureOptions, HostFacts
from tasks.lib.ensure import ensure as ensure_core
from tasks.lib.errors import ConfigError, EngineUnavailable
from tasks.lib.ssh import Destination, Forward, explain, forward_argv, session_argv

PROJECT = Path(__file__).resolve().parents[3]

# -- Destination ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "dest"),
    [
        pytest.param("ssh://meeshy.me", Destination("meeshy.me"), id="host"),
        pytest.param("ssh://root@meeshy.me", Destination("meeshy.me", "root"), id="user"),
        pytest.param(
            "ssh://root@127.0.0.1:2222", Destination("127.0.0.1", "root", 2222), id="port"
        ),
        pytest.param("ssh://meeshy-prod/", Destination("meeshy-prod"), id="alias-trailing-slash"),
        pytest.param("ssh://[::1]:22", Destination("::1", "", 22), id="ipv6"),
    ],
)
def test_destination_parse(url: str, dest: Destination) -> None:
    assert Destination.parse(url) == dest


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("tcp://x:2376", "is not an ssh:// Docker endpoint", id="not-ssh"),
        pytest.param("ssh://", "no host name", id="no-host"),
        pytest.param("ssh://-oProxyCommand=x", "no host name", id="option-as-host"),
        pytest.param("ssh://h/var/run/docker.sock", "extra path after the host", id="path"),
        pytest.param("ssh://u:pw@h", "a password in the URL", id="password"),
        pytest.param("ssh://h:notaport", "bad ssh:// Docker endpoint", id="bad-port"),
    ],
)
def test_destination_parse_rejects(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        Destination.parse(url)
    assert err.value.exit_code == 2


def test_destination_target_is_what_a_person_types() -> None:
    assert Destination("h", "root", 2222).target() == "-p 2222 root@h"
    assert Destination("meeshy-prod").target() == "meeshy-prod"


# -- argv ----------------------------------------------------------------------------------------

BASE = [
    "ssh", "-nNT",
    "-o", "BatchMode=yes",
    "-o", "ExitOnForwardFailure=yes",
    "-o", "ConnectTimeout=10",
]  # fmt: skip
ALIVE = ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3"]


def test_forward_argv_for_an_alias_is_the_master_of_its_own_control_socket() -> None:
    argv = forward_argv(
        Destination("meeshy-prod"), SshOptions(), "/tmp/x/docker.sock", "/tmp/x/ctl"
    )
    assert argv == [
        *BASE,
        "-o", "ControlMaster=yes", "-o", "ControlPath=/tmp/x/ctl", "-o", "ControlPersist=no",
        *ALIVE,
        "-L", "/tmp/x/docker.sock:/var/run/docker.sock",
        "--", "meeshy-prod",
    ]  # fmt: skip


def test_session_argv_joins_the_forward_through_its_control_socket() -> None:
    options = SshOptions(config="/cfg/ssh_config")
    argv = session_argv(Destination("10.0.0.5", "deploy", 2222), options, "/tmp/x/ctl")
    assert argv == [
        "ssh", "-ntt",
        "-o", "BatchMode=yes",
        "-o", "ControlMaster=no", "-o", "ControlPath=/tmp/x/ctl", "-o", "ProxyCommand=false",
        "-F", "/cfg/ssh_config", "-l", "deploy", "-p", "2222",
        "--", "10.0.0.5", "exec sleep 2147483647",
    ]  # fmt: skip


def test_forward_argv_with_everything() -> None:
    options = SshOptions(
        config="/cfg/ssh_config",
        connect_timeout=3,
        socket="/run/user/1000/docker.sock",
        tty=False,
    )
    argv = forward_argv(
        Destination("10.0.0.5", "deploy", 2222), options, "/tmp/x/docker.sock", "/tmp/x/ctl"
    )
    assert argv[:8] == [*BASE[:6], "-o", "ConnectTimeout=3"]
    # tty: false drops only the session: the forward is still the control socket's master
    assert argv[8:14] == [
        "-o", "ControlMaster=yes", "-o", "ControlPath=/tmp/x/ctl", "-o", "ControlPersist=no",
    ]  # fmt: skip
    assert argv[-10:] == [
        "-L", "/tmp/x/docker.sock:/run/user/1000/docker.sock",
        "-F", "/cfg/ssh_config",
        "-l", "deploy",
        "-p", "2222",
        "--", "10.0.0.5",
    ]  # fmt: skip


# -- ssh's messages (as OpenSSH 9.2 prints them) -> one reason and what to do --------------------

DEST = Destination("127.0.0.1", "root", 22022)
CHANGED = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Offending ED25519 key in /t/known_hosts:1
  remove with:
  ssh-keygen -f "/t/known_hosts" -R "[127.0.0.1]:22022"
Host key for [127.0.0.1]:22022 has changed and you have requested strict checking.
Host key verification failed.
"""


@pytest.mark.parametrize(
    ("stderr", "reason", "hint_part"),
    [
        pytest.param(
            "ssh: connect to host 127.0.0.1 port 22999: Connection refused\r\n",
            "connection refused by 127.0.0.1:22999",
            "nothing listens for SSH there",
            id="refused",
        ),
        pytest.param(
            "Connection timed out during banner exchange\r\n"
            "Connection to 127.0.0.1 port 22998 timed out\r\n",
            "no answer from 127.0.0.1:22998 within 10s (timed out)",
            "raise meeshy.ssh.connect_timeout",
            id="silent-host",
        ),
        pytest.param(
            "ssh: connect to host 10.1.1.1 port 22: Connection timed out\r\n",
            "no answer from 10.1.1.1:22 within 10s (timed out)",
            "VPN, firewall",
            id="dead-route",
        ),
        pytest.param(
            "No ED25519 host key is known for [127.0.0.1]:22022 and you have requested strict "
            "checking.\r\nHost key verification failed.\r\n",
            "the server's host key is unknown (Host key verification failed)",
            "accept it once with `ssh -p 22022 root@127.0.0.1`",
            id="unknown-key-strict",
        ),
        pytest.param(
            "Host key verification failed.\r\n",
            "the server's host key is unknown (Host key verification failed)",
            "tasks never prompt",
            id="unknown-key-batchmode",
        ),
        pytest.param(
            CHANGED,
            "the server's host key has changed (REMOTE HOST IDENTIFICATION HAS CHANGED)",
            'remove the old key with `ssh-keygen -f "/t/known_hosts" -R "[127.0.0.1]:22022"`',
            id="changed-key",
        ),
        pytest.param(
            "root@127.0.0.1: Permission denied (publickey).\r\n",
            "permission denied (publickey)",
            "load yours with `ssh-add`",
            id="denied",
        ),
        pytest.param(
            "ssh: Could not resolve hostname 127.0.0.1: Name or service not known\r\n",
            "could not resolve host name '127.0.0.1'",
            "Host alias in ~/.ssh/config",
            id="resolve",
        ),
        pytest.param(  # an alias whose HostName does not resolve: ssh names the HostName
            "ssh: Could not resolve hostname nosuchhost.invalid: Name or service not known\r\n",
            "could not resolve host name 'nosuchhost.invalid' (the HostName ssh uses for "
            "'127.0.0.1')",
            "check HostName in the ssh config's Host 127.0.0.1",
            id="resolve-alias-hostname",
        ),
        pytest.param(
            "channel 2: open failed: connect failed: open failed\r\n",
            "nothing answers on the server's Docker socket /var/run/docker.sock",
            "set meeshy.ssh.socket",
            id="no-remote-socket",
        ),
        pytest.param(
            "channel 3: open failed: connect failed: Connection refused\r\n",
            "nothing answers on the server's Docker socket /var/run/docker.sock",
            "check that Docker runs there",
            id="remote-engine-stopped",
        ),
        pytest.param(
            "/t/cfg: line 3: Bad configuration option: portt\r\n"
            "/t/cfg: terminating, 1 bad configuration options\r\n",
            "/t/cfg: terminating, 1 bad configuration options",
            "fix the ssh_config file",
            id="bad-config",
        ),
        pytest.param(
            "Connection to 127.0.0.1 closed by remote host.\r\n",
            "the server ended the SSH session",
            "set meeshy.ssh.tty to false",
            id="session-ended",
        ),
        pytest.param(
            "kex_exchange_identification: read: Connection reset by peer\r\n",
            "kex_exchange_identification: read: Connection reset by peer",
            "run `ssh -p 22022 root@127.0.0.1 true` to see what ssh says",
            id="anything-else-is-ssh-s-last-line",
        ),
        pytest.param("", "ssh exited without saying why", "see what ssh says", id="silent-exit"),
        pytest.param(  # the pty session's join, logged by the master: never the reason
            "mux_master_process_new_session: tcgetattr: Inappropriate ioctl for device\r\n",
            "ssh exited without saying why",
            "see what ssh says",
            id="mux-chatter-is-not-a-reason",
        ),
    ],
)
def test_explain(stderr: str, reason: str, hint_part: str) -> None:
    why, hint = explain(stderr, DEST, SshOptions())
    assert why == reason
    assert hint_part in hint
    assert "\n" not in why + hint


def test_explain_reads_past_ssh_s_debug_lines() -> None:
    stderr = (
        "debug1: Connecting to 127.0.0.1 [127.0.0.1] port 22022.\r\n"
        "debug2: channel 1: request pty-req confirm 1\r\n"
        "root@127.0.0.1: Permission denied (publickey).\r\n"
    )
    assert explain(stderr, DEST, SshOptions())[0] == "permission denied (publickey)"


def test_explain_names_the_ssh_config_in_what_to_run() -> None:
    _, hint = explain("Host key verification failed.", DEST, SshOptions(config="/t/ssh config"))
    assert "`ssh -F '/t/ssh config' -p 22022 root@127.0.0.1`" in hint


# -- errors that need no server ------------------------------------------------------------------


def test_missing_ssh_client_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineUnavailable) as err:
        Forward("ssh://root@meeshy.me", SshOptions(), where="ssh://root@meeshy.me").open()
    assert err.value.exit_code == 3
    assert err.value.line() == (
        "Cannot reach the Docker engine at ssh://root@meeshy.me: the ssh client is not "
        "installed: install OpenSSH (Debian/Ubuntu: `apt-get install openssh-client`; macOS "
        "and Windows 10+ ship it)"
    )


def test_missing_ssh_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ssh config file .*/nope does not exist"):
        Forward("ssh://h", SshOptions(config=str(tmp_path / "nope"))).open()


def test_ensure_on_an_ssh_engine_without_ssh_says_it_does_not_start_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    target = EngineTarget(env={"DOCKER_HOST": "ssh://root@meeshy.me"})
    facts = HostFacts("Linux", frozenset({"docker"}), is_root=True)
    with engine_session(), pytest.raises(EngineUnavailable) as err:
        ensure_core(target, EnsureOptions(), facts=facts, created=list)
    assert "the ssh client is not installed" in err.value.line()
    assert err.value.line().endswith("docker.ensure does not start an engine on another machine")


# -- EngineTarget and the session ------------------------------------------------------------------


def _context_store(tmp_path: Path, name: str, host: str) -> dict[str, str]:
    meta = tmp_path / "contexts" / "meta" / "abc"
    meta.mkdir(parents=True)
    data = {"Name": name, "Endpoints": {"docker": {"Host": host}}}
    (meta / "meta.json").write_text(json.dumps(data), encoding="utf-8")
    return {"DOCKER_CONFIG": str(tmp_path)}


def test_target_host_and_is_ssh(tmp_path: Path) -> None:
    env = _context_store(tmp_path, "prod", "ssh://root@meeshy.me")
    assert EngineTarget("prod", env=env).host == "ssh://root@meeshy.me"
    assert EngineTarget("prod", env=env).is_ssh
    assert EngineTarget(env={"DOCKER_HOST": "ssh://h"}).is_ssh
    assert not EngineTarget(env={}).is_ssh
    assert EngineTarget(env={}).host == "unix:///var/run/docker.sock"


def test_no_link_for_a_local_engine() -> None:
    assert link(EngineTarget(env={})) is None


def test_ssh_options_come_from_the_target_else_from_config() -> None:
    mine = SshOptions(connect_timeout=3)
    try:
        use_ssh_options(SshOptions(config="/cfg"))
        assert EngineTarget(env={}).ssh_options == SshOptions(config="/cfg")
        assert EngineTarget(env={}, ssh=mine).ssh_options == mine
    finally:
        use_ssh_options(SshOptions())


def test_sessions_nest_and_only_the_outermost_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []
    monkeypatch.setattr(engine._LINKS, "close_all", lambda: closed.append("closed"))
    with engine_session():
        with engine_session():
            pass
        assert closed == []
    assert closed == ["closed"]
    with pytest.raises(KeyboardInterrupt), engine_session():
        raise KeyboardInterrupt
    assert closed == ["closed", "closed"]


# -- config meeshy.ssh ----------------------------------------------------------------------------


def test_ssh_defaults() -> None:
    assert defaults()["ssh"] == {
        "config": "",
        "connect_timeout": 10,
        "socket": "/var/run/docker.sock",
        "tty": True,
        "nodelay": True,
    }
    assert ssh_options({}) == SshOptions()


def test_ssh_settings_resolve(tmp_path: Path) -> None:
    raw = {"root": str(tmp_path), "ssh": {"config": "~/x", "connect_timeout": "4"}}
    s = resolve(raw, env={}, project_dir=PROJECT)
    assert s.ssh == SshOptions(config=str(Path("~/x").expanduser()), connect_timeout=4)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"port": 22}, "unknown config key meeshy.ssh.port", id="unknown-key"),
        pytest.param({"connect_timeout": 0}, "whole seconds >= 1", id="zero"),
        pytest.param({"connect_timeout": True}, "whole seconds >= 1", id="bool"),
        pytest.param({"connect_timeout": "ten"}, "whole seconds >= 1", id="word"),
        pytest.param({"socket": "docker.sock"}, "absolute path on the server", id="relative"),
        pytest.param({"config": 3}, "meeshy.ssh.config must be a string", id="not-a-string"),
        pytest.param({"tty": "no"}, "meeshy.ssh.tty must be true or false", id="tty-string"),
        pytest.param("yes", "meeshy.ssh must be a mapping", id="not-a-mapping"),
    ],
)
def test_ssh_settings_rejected(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ssh_options(raw)


def test_invoke_env_vars_reach_the_ssh_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invoke import Config

    monkeypatch.setenv("INVOKE_MEESHY_SSH_CONFIG", "/t/ssh_config")
    monkeypatch.setenv("INVOKE_MEESHY_SSH_CONNECT_TIMEOUT", "3")
    monkeypatch.setenv("INVOKE_MEESHY_SSH_TTY", "0")
    config = Config(defaults={"meeshy": defaults()})
    config.load_shell_env()
    assert ssh_options(dict(config.meeshy.ssh)) == SshOptions(
        config="/t/ssh_config", connect_timeout=3, tty=False
    )


def test_invoke_example_yaml_shows_the_ssh_defaults() -> None:
    import yaml

    data = yaml.safe_load((PROJECT / "invoke.example.yaml").read_text(encoding="utf-8"))
    assert data["meeshy"]["ssh"] == defaults()["ssh"]


def test_pusher_note_names_the_engine_that_resolves_the_registry_url(tmp_path: Path) -> None:
    from tasks.lib.engine import pusher_note

    env = _context_store(tmp_path, "prod", "ssh://root@meeshy.me")
    assert pusher_note(EngineTarget("prod", env=env), "localhost:5000") == (
        "pushed by the Docker engine at ssh://root@meeshy.me (Docker context 'prod'); "
        "localhost:5000 is resolved there (on that machine: localhost is the server itself)"
    )
    assert pusher_note(EngineTarget(env={}), "127.0.0.1:5000") == (
        "pushed by the Docker engine at unix:///var/run/docker.sock; 127.0.0.1:5000 is "
        "resolved there"
    )


@pytest.mark.parametrize("length", [20, 55, 62, 63, 70, 90])
def test_socket_dir_leaves_room_for_the_control_sockets_temporary_name(
    length: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh binds ``<ControlPath>.<16 random characters>`` first: with a long $TMPDIR (macOS)
    the forward's dir falls back to /tmp rather than ssh failing on a path too long."""
    import tempfile

    from tasks.lib import ssh

    long_dir = tmp_path / ("x" * max(1, length - len(str(tmp_path)) - 1))
    long_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(long_dir))
    base = ssh._socket_base()
    longest = f"{base}/meeshy-ssh-xxxxxxxx/{ssh.CONTROL_NAME}.{'r' * 16}"
    assert len(longest) <= ssh.MAX_SOCKET_PATH
    assert len(f"{base}/meeshy-ssh-xxxxxxxx/{ssh.SOCKET_NAME}") <= ssh.MAX_SOCKET_PATH
    assert base in (str(long_dir), "/tmp")


# -- the sweep of killed runs' forwards: anyone may create names in /tmp --------------------------


def _forward_dir(base: Path, name: str, owner_line: str, mode: int = 0o700) -> Path:
    d = base / name
    d.mkdir()
    (d / "owner").write_text(owner_line)
    d.chmod(mode)
    return d


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _sleeper(path_arg: str) -> list[str]:
    import sys

    return [sys.executable, "-c", "import time; time.sleep(600)", path_arg]


def test_sweep_removes_a_dead_runs_dir_and_stops_its_ssh(tmp_path: Path) -> None:
    import subprocess

    from tasks.lib.ssh import sweep_stale

    d = tmp_path / "meeshy-ssh-abcd1234"
    d.mkdir(mode=0o700)
    # a stand-in for the orphaned ssh: its command line names a path inside the dir
    orphan = subprocess.Popen(_sleeper(f"{d}/ctl"))
    try:
        (d / "owner").write_text(f"{_dead_pid()} {orphan.pid}\n")
        assert sweep_stale(str(tmp_path)) == [d]
        orphan.wait(timeout=10)  # the sweep killed and reaped it (psutil's wait)
        import psutil

        assert not psutil.pid_exists(orphan.pid) or psutil.Process(orphan.pid).status() == "zombie"
        assert not d.exists()
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_sweep_leaves_alone_what_it_cannot_trust(tmp_path: Path) -> None:
    """Garbage or negative pids, a dir that is not 0700, a live owner, and a process whose
    command line only shares the dir's name as a prefix: nothing is killed, nothing fails."""
    import os
    import subprocess

    from tasks.lib.ssh import sweep_stale

    dead = _dead_pid()
    victim = subprocess.Popen(_sleeper(f"{tmp_path}/meeshy-ssh-x-longer/ctl"))
    try:
        kept = [
            _forward_dir(tmp_path, "meeshy-ssh-garbage", "not numbers\n"),
            _forward_dir(tmp_path, "meeshy-ssh-negative", f"{dead} -1\n"),
            _forward_dir(tmp_path, "meeshy-ssh-open", f"{dead} {victim.pid}\n", mode=0o755),
            _forward_dir(tmp_path, "meeshy-ssh-live", f"{os.getpid()} {victim.pid}\n"),
        ]
        prefix_only = _forward_dir(tmp_path, "meeshy-ssh-x", f"{dead} {victim.pid}\n")
        removed = sweep_stale(str(tmp_path))
        assert removed == [prefix_only]  # its dir goes; the other run's process does not
        assert victim.poll() is None, "a process of another dir was killed"
        assert all(d.exists() for d in kept)
    finally:
        victim.kill()
        victim.wait()


def test_a_link_that_cannot_make_its_dir_is_one_line_exit_3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile
    import uuid

    not_a_dir = Path(f"/tmp/meeshy-notadir-{uuid.uuid4().hex[:8]}")  # short: no /tmp fallback
    not_a_dir.write_text("")
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(not_a_dir))
        forward = Forward("ssh://meeshy-prod", SshOptions())
        with pytest.raises(EngineUnavailable) as err:
            forward.start()
        assert err.value.exit_code == 3
        assert "cannot start ssh" in err.value.message
        assert forward.proc is None
    finally:
        not_a_dir.unlink()


def test_ssh_is_tied_to_the_task_only_from_the_main_thread() -> None:
    """The parent-death signal follows the thread that starts the process: from the main
    thread ssh runs under `setpriv --pdeathsig TERM` (where it exists); from a worker thread,
    which ends before the task, as it is."""
    import shutil
    import sys
    import threading

    from tasks.lib.ssh import tied_to_this_process

    argv = ["ssh", "-nNT", "--", "h"]
    tied = tied_to_this_process(argv)
    if shutil.which("setpriv") and sys.platform.startswith("linux"):
        assert tied == [shutil.which("setpriv"), "--pdeathsig", "TERM", "--", *argv]
    else:
        assert tied == argv
    seen: list[list[str]] = []
    worker = threading.Thread(target=lambda: seen.append(tied_to_this_process(argv)))
    worker.start()
    worker.join()
    assert seen == [argv]


@pytest.mark.parametrize(
    ("stderr", "signum", "reason", "hint_part"),
    [
        pytest.param(
            "mux_master_process_new_session: tcgetattr: Inappropriate ioctl for device\r\n",
            9,
            "the link was cut: its ssh was ended by SIGKILL",
            "check the network to the server (`ssh -p 22022 root@127.0.0.1 true`), then rerun",
            id="ssh-killed",
        ),
        pytest.param(
            "Connection to 127.0.0.1 closed by remote host.\r\n",
            None,
            "the server closed the SSH connection",
            "check that the server and its sshd are up",
            id="server-closed-mid-run-is-not-a-tty-matter",
        ),
        pytest.param(
            "client_loop: send disconnect: Broken pipe\r\n",
            None,
            "client_loop: send disconnect: Broken pipe",
            "see what ssh says",
            id="anything-else-is-ssh-s-last-line",
        ),
    ],
)
def test_explain_a_link_lost_during_the_run(
    stderr: str, signum: int | None, reason: str, hint_part: str
) -> None:
    from tasks.lib.ssh import explain_lost

    why, hint = explain_lost(stderr, DEST, SshOptions(), signum)
    assert why == reason
    assert hint_part in hint
    assert "tty" not in hint
