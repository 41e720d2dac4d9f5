"""The SSH link to a Docker engine on a server: ONE system ``ssh`` per task run, forwarding a
local unix socket to the server's Docker socket.

Why a forward: the docker SDK's own ``ssh://`` transport needs paramiko (which ignores
``~/.ssh/config``'s ``Port`` and ``ProxyJump``) and costs a round trip per connection, and the
docker CLI starts an ``ssh`` per command. ``ssh -L <tmp>/docker.sock:/var/run/docker.sock
HOST`` is one connection through the system's ``ssh`` (``~/.ssh/config``, the agent,
``ProxyJump``, ``known_hosts`` all apply); the SDK and the CLI then both talk to
``unix://<tmp>/docker.sock`` at near-socket speed, and nothing needs paramiko. Beside the
forward the connection holds a pty session (:attr:`SshOptions.tty`): sshd turns Nagle's
algorithm off only for pty sessions, and BuildKit's many small exchanges need that. The
session joins the forward's connection through a control socket of this run's own (the
forward's ssh is its master), once the forward is up: nobody waits for the server to set up
the session (~45 ms on loopback), and a key that may not have a pty (``no-pty``) only loses
the session, not the forward.

:class:`Forward` owns the ``ssh`` process and the temp dir holding the socket: it always
terminates the one and removes the other, also after a failed start and on Ctrl-C. When
``ssh`` fails, :func:`explain` turns its stderr into one reason and what to do (unknown or
changed host key, refused, timed out, permission denied, unknown host name). This module never
imports Invoke and prints nothing.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from tasks.lib.config import SshOptions
from tasks.lib.errors import ConfigError, EngineUnavailable
from tasks.lib.processes import stop_processes

SOCKET_NAME = "docker.sock"
DIR_PREFIX = "meeshy-ssh-"
CONTROL_NAME = "ctl"  # the forward's control socket: the pty session joins through it
OWNER_FILE = "owner"  # "<task pid> <ssh pids>": lets a later run clean up after a killed one
# sockaddr_un.sun_path holds 108 bytes on Linux, 104 on macOS (whose $TMPDIR is long).
MAX_SOCKET_PATH = 100
# ssh binds the control socket first as "<ControlPath>.<16 random characters>", then renames it.
LONGEST_SOCKET_NAME = max(len(SOCKET_NAME), len(CONTROL_NAME) + 17)


@dataclass(frozen=True)
class Destination:
    """``ssh://[user@]host[:port]`` as Docker takes it (no path: the socket is configured)."""

    host: str
    user: str = ""
    port: int | None = None

    @classmethod
    def parse(cls, url: str) -> Destination:
        """ConfigError for anything Docker's ``ssh://`` endpoints would not take either."""
        if not url.startswith("ssh://"):
            raise ConfigError(f"{url!r} is not an ssh:// Docker endpoint")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"bad ssh:// Docker endpoint {url!r}: {exc}") from exc
        host = parts.hostname or ""
        if not host or host.startswith("-"):
            raise ConfigError(
                f"bad ssh:// Docker endpoint {url!r}: no host name",
                hint="write ssh://[user@]host[:port], e.g. ssh://root@meeshy.me",
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(
                f"bad ssh:// Docker endpoint {url!r}: extra path after the host",
                hint="the server's socket path is config meeshy.ssh.socket, not part of the URL",
            )
        if parts.password is not None:
            raise ConfigError(
                f"bad ssh:// Docker endpoint {url!r}: a password in the URL",
                hint="use a key (ssh-agent or IdentityFile in ~/.ssh/config)",
            )
        return cls(host=host, user=parts.username or "", port=port)

    def target(self) -> str:
        """What a person types after ``ssh``: ``[user@]host``, plus ``-p PORT`` when given."""
        who = f"{self.user}@{self.host}" if self.user else self.host
        return f"-p {self.port} {who}" if self.port else who


KEEPER = "exec sleep 2147483647"
"""The remote command of the pty session that keeps sshd in interactive mode; it ends with
the session (SIGHUP) when the forward is closed."""


def _destination_args(dest: Destination, options: SshOptions) -> list[str]:
    argv = ["-F", options.config] if options.config else []
    if dest.user:
        argv += ["-l", dest.user]
    if dest.port:
        argv += ["-p", str(dest.port)]
    return [*argv, "--", dest.host]


def forward_argv(
    dest: Destination,
    options: SshOptions,
    local_socket: str,
    control: str,
    *,
    dial: bool = False,
) -> list[str]:
    """The exact ``ssh`` command of a forward.

    ``-nNT`` no stdin, no remote command, no tty; ``BatchMode`` never prompts (a prompt
    would hang a task: an unknown host key or a key needing a passphrase fails with ssh's
    reason instead); ``ExitOnForwardFailure`` exits when the forward cannot be set up;
    ``ServerAlive*`` notices a dead link within 45 s. The forward is the master of the
    run's own ``control`` socket (``ControlPersist=no``: it ends with this process), for the
    pty session (:func:`session_argv`) and :meth:`Forward.forward_to`; so a ``ControlMaster``
    of the user's config can neither adopt the forward (it would outlive the task) nor be
    used by it. ``dial``: the TCP connection is made by :mod:`tasks.lib.ssh_dial` (Nagle's
    algorithm off; :func:`dial_for` says when). ``--`` ends the options, so no host name is
    read as one."""
    argv = [
        "ssh", "-nNT",
        "-o", "BatchMode=yes",
        "-o", "ExitOnForwardFailure=yes",
        "-o", f"ConnectTimeout={options.connect_timeout}",
        "-o", "ControlMaster=yes", "-o", f"ControlPath={control}", "-o", "ControlPersist=no",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=3",
        "-L", f"{local_socket}:{options.socket}",
    ]  # fmt: skip
    if dial:
        argv += dial_options()
    return [*argv, *_destination_args(dest, options)]


def session_argv(dest: Destination, options: SshOptions, control: str) -> list[str]:
    """The pty session beside a forward: a client of the forward's control socket (no second
    login, the same TCP connection), ``-tt`` + :data:`KEEPER`."""
    argv = [
        "ssh", "-ntt",
        "-o", "BatchMode=yes",
        "-o", "ControlMaster=no",
        "-o", f"ControlPath={control}",
        # never a login of its own: without the control socket (the link just died), fail
        "-o", "ProxyCommand=false",
    ]  # fmt: skip
    return [*argv, *_destination_args(dest, options), KEEPER]


def ssh_config(dest: Destination, options: SshOptions, ssh: str = "ssh") -> dict[str, str]:
    """What ``ssh`` would use for ``dest`` (``ssh -G``, with the same ``-F``, user and port as
    the forward: keys in lower case, the first value of each). Makes no connection; {} when
    ssh cannot tell (no ssh, a broken config: the real ssh then says why)."""
    try:
        done = _quick_ssh([ssh, "-G", *_destination_args(dest, options)])
    except (OSError, subprocess.SubprocessError):
        return {}
    if done.returncode != 0:
        return {}
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        found.setdefault(key.lower(), value.strip())
    return found


def _quick_ssh(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """An ``ssh`` command that logs in nowhere (``-G``, ``-O`` on the run's control socket):
    output captured and decoded with replacement, 10 s at most."""
    return subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=10,
        check=False,
    )


def host_name(dest: Destination, options: SshOptions, ssh: str = "ssh") -> str:
    """The host ``ssh`` connects to for ``dest``: an ssh_config alias's ``HostName`` (as
    ``ssh -G`` prints it), so what the engine publishes is looked for on that machine, not on
    a name only ssh knows. ``dest.host`` when ssh cannot tell."""
    return ssh_config(dest, options, ssh).get("hostname") or dest.host


DIALER = Path(__file__).with_name("ssh_dial.py")


def dial_options() -> list[str]:
    """ssh's options to get its connection from :mod:`tasks.lib.ssh_dial`: this interpreter
    without site or environment (``-S -I``), the dialer's path; nothing from the user is in
    the command (the destination goes in its environment: :func:`dial_for`). ``%`` is ssh's
    token sign."""
    command = shlex.join([sys.executable, "-S", "-I", str(DIALER)]).replace("%", "%%")
    return ["-o", "ProxyUseFdpass=yes", "-o", f"ProxyCommand={command}"]


def dial_for(resolved: dict[str, str], connect_timeout: int) -> dict[str, str] | None:
    """The dialer's environment for a destination whose ``ssh -G`` is ``resolved``, or None
    where ssh must connect itself: its config has a ProxyCommand or ProxyJump (the user's
    route wins), binds a local address or interface, canonicalizes host names or makes more
    than one attempt (ssh's own connect does those), wants a host key check that needs ssh's
    own connect (``CheckHostIP``, ``NoHostAuthenticationForLocalhost``: ssh knows no peer
    address behind a ProxyCommand), or ssh -G said nothing."""
    host, port = resolved.get("hostname", ""), resolved.get("port", "")
    if not host or not port.isdigit() or not sys.executable:
        return None
    for key in ("proxycommand", "proxyjump", "bindaddress", "bindinterface"):
        if resolved.get(key, "none") != "none":
            return None
    if resolved.get("canonicalizehostname", "false") != "false":
        return None
    if resolved.get("connectionattempts", "1") != "1":
        return None
    for key in ("checkhostip", "nohostauthenticationforlocalhost"):
        if resolved.get(key, "no") not in ("no", "false"):
            return None
    from tasks.lib import ssh_dial

    return {
        ssh_dial.HOST: host,
        ssh_dial.PORT: port,
        ssh_dial.FAMILY: resolved.get("addressfamily", "any"),
        ssh_dial.KEEPALIVE: resolved.get("tcpkeepalive", "yes"),
        ssh_dial.TIMEOUT: str(connect_timeout),
    }


# -- ssh's stderr -> one reason and what to do ----------------------------------------------------

_KEYGEN_RE = re.compile(r'ssh-keygen -f "([^"]+)" -R "([^"]+)"')
_DENIED_RE = re.compile(r"Permission denied \(([^)]*)\)")
# "ssh: connect to host H port P: ..." / "Connection to H port P timed out"
_MUX_RE = re.compile(r"mux_\w+: ")
_RESOLVE_RE = re.compile(r"Could not resolve hostname (\S+?):")
_HOST_PORT_RE = re.compile(r"(?:connect to host|Connection to) (\S+) port (\d+)")


def explain(stderr: str, dest: Destination, options: SshOptions) -> tuple[str, str]:
    """``(reason, what to do)`` for what ``ssh`` printed; pure, tested on real messages."""
    found = recognise(stderr, dest, options)
    if found is not None:
        return found
    text = _without_debug(stderr)
    return (
        _last_line(text) or "ssh exited without saying why",
        f"run `ssh {_config_flag(options)}{dest.target()} true` to see what ssh says",
    )


def _without_debug(stderr: str) -> str:
    """ssh's words without its debug lines and its multiplexing chatter (``mux_...: ``, e.g.
    the master's ``tcgetattr: Inappropriate ioctl for device`` when the pty session joins):
    neither is ever the reason a link failed."""
    return "\n".join(
        ln
        for ln in (stderr or "").splitlines()
        if not ln.startswith(("debug1:", "debug2:")) and not _MUX_RE.match(ln)
    )


def recognise(stderr: str, dest: Destination, options: SshOptions) -> tuple[str, str] | None:
    """``(reason, what to do)`` when ssh printed a failure this module knows, else None."""
    ssh_cmd = f"ssh {_config_flag(options)}{dest.target()}"
    text = _without_debug(stderr)
    said = _HOST_PORT_RE.search(text)  # the address ssh tried (an alias resolved)
    if said:
        where = f"{said.group(1)}:{said.group(2)}"
    else:
        where = f"{dest.host}:{dest.port}" if dest.port else dest.host
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        m = _KEYGEN_RE.search(text)
        forget = (
            f'ssh-keygen -f "{m.group(1)}" -R "{m.group(2)}"'
            if m
            else f"ssh-keygen -R {dest.host if not dest.port else f'[{dest.host}]:{dest.port}'}"
        )
        return (
            "the server's host key has changed (REMOTE HOST IDENTIFICATION HAS CHANGED)",
            f"if {dest.host} was reinstalled, remove the old key with `{forget}`, then check "
            f"and accept the new one with `{ssh_cmd}`; otherwise do not connect",
        )
    if "Host key verification failed" in text or "host key is known for" in text:
        return (
            "the server's host key is unknown (Host key verification failed)",
            f"check its fingerprint and accept it once with `{ssh_cmd}` (tasks never prompt)",
        )
    m = _DENIED_RE.search(text)
    if m or "Permission denied" in text:
        methods = f" ({m.group(1)})" if m else ""
        user = f"user {dest.user!r}" if dest.user else "the user"
        return (
            f"permission denied{methods}",
            f"the server refused every key offered for {user}: load yours with `ssh-add`, or "
            "set IdentityFile for this host in ~/.ssh/config; a key with a passphrase must "
            "be in the agent (tasks never prompt)",
        )
    if "Could not resolve hostname" in text:
        m = _RESOLVE_RE.search(text)
        name = m.group(1) if m else dest.host
        if name.lower() == dest.host.lower():
            return (
                f"could not resolve host name {dest.host!r}",
                "check the name, or define it as a Host alias in ~/.ssh/config",
            )
        return (  # an alias whose HostName does not resolve (ssh names that one)
            f"could not resolve host name {name!r} (the HostName ssh uses for {dest.host!r})",
            f"check HostName in the ssh config's Host {dest.host} "
            f"(`ssh -G {_config_flag(options)}{dest.target()}` shows what ssh uses)",
        )
    if "Connection refused" in text and "open failed" not in text:
        return (
            f"connection refused by {where}",
            "nothing listens for SSH there: check the host and port "
            f"(`ssh -G {_config_flag(options)}{dest.target()}` shows what ssh uses)",
        )
    if "timed out" in text:
        return (
            f"no answer from {where} within {options.connect_timeout}s (timed out)",
            "check that the host is up and reachable (VPN, firewall), or raise "
            "meeshy.ssh.connect_timeout",
        )
    for marker in ("No route to host", "Network is unreachable"):
        if marker in text:
            return (f"{marker.lower()} ({where})", "check the network path to the server (VPN)")
    if "open failed" in text or "connect failed" in text:
        return (
            f"nothing answers on the server's Docker socket {options.socket}",
            f"check that Docker runs there (`{ssh_cmd} docker info`; docker.ensure does not "
            "start a remote engine); for rootless Docker set meeshy.ssh.socket (e.g. "
            "/run/user/1000/docker.sock)",
        )
    if re.search(
        r"Connection to \S+ closed|closed by remote host|PTY allocation request failed", text
    ):
        return (
            "the server ended the SSH session",
            "if this key may only forward (no-pty, command= in authorized_keys, ForceCommand), "
            "set meeshy.ssh.tty to false",
        )
    if "proxy dialer did not pass back a connection" in text:
        return (
            f"the connection to {where} could not be made ({_last_line(text)})",
            "set meeshy.ssh.nodelay to false to let ssh connect itself, and tell us what "
            f"`ssh {_config_flag(options)}{dest.target()} true` says",
        )
    if "Bad configuration option" in text or "Can't open user config file" in text:
        return (_last_line(text), "fix the ssh_config file (meeshy.ssh.config, or ~/.ssh/config)")
    return None


def explain_lost(
    stderr: str, dest: Destination, options: SshOptions, signum: int | None = None
) -> tuple[str, str]:
    """``(reason, what to do)`` for a link that was up and died during the run (``signum``:
    the signal that ended its ssh, when one did). The server closing the connection then is
    not a key that may not have a pty (that shows when the link starts)."""
    import signal

    check = f"`ssh {_config_flag(options)}{dest.target()} true`"
    if signum is not None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return (
            f"the link was cut: its ssh was ended by {name}",
            f"if nothing here stopped it, check the network to the server ({check}), then rerun",
        )
    text = _without_debug(stderr)
    if re.search(r"Connection to \S+ closed|closed by remote host", text):
        return (
            "the server closed the SSH connection",
            f"check that the server and its sshd are up ({check}), then rerun",
        )
    return explain(stderr, dest, options)


def _config_flag(options: SshOptions) -> str:
    return f"-F {shlex.quote(options.config)} " if options.config else ""


def _last_line(text: str) -> str:
    lines = [
        ln.strip()
        for ln in text.splitlines()
        if ln.strip() and not ln.startswith(("@", "Warning:", "debug"))
    ]
    return lines[-1][:300] if lines else ""


# -- the forward ----------------------------------------------------------------------------------


def _socket_base() -> str:
    base = tempfile.gettempdir()
    if len(base) + len("/meeshy-ssh-xxxxxxxx/") + LONGEST_SOCKET_NAME > MAX_SOCKET_PATH:
        base = "/tmp"
    return base


def _socket_dir() -> Path:
    """A private (0700) temp dir short enough for a unix socket path."""
    return Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=_socket_base()))


def sweep_stale(base: str | None = None) -> list[Path]:
    """Remove the forwards of task runs that died without closing them (SIGKILL, power loss):
    a forward dir of this user (a real 0700 directory it owns: anyone may create names in
    /tmp) whose ``owner`` file names a process that no longer exists. Its ssh processes are
    stopped only if their command line names a path inside that dir (a recycled pid is left
    alone). Best effort: a dir it cannot judge is left as it is. Returns the dirs removed."""
    removed = []
    for d in Path(base or _socket_base()).glob(f"{DIR_PREFIX}?*"):
        with suppress(Exception):
            if _stale(d):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    return removed


def _stale(d: Path) -> bool:
    """``d`` is this user's forward dir of a dead run; its ssh processes are stopped."""
    import psutil

    info = os.lstat(d)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    if stat.S_IMODE(info.st_mode) != 0o700:
        return False
    owner, *ssh_pids = (int(x) for x in (d / OWNER_FILE).read_text().split())
    if owner <= 0 or any(pid <= 0 for pid in ssh_pids) or psutil.pid_exists(owner):
        return False
    inside = f"{d}/"
    for ssh_pid in ssh_pids:
        with suppress(psutil.Error):
            proc = psutil.Process(ssh_pid)
            if any(inside in arg for arg in proc.cmdline()):
                proc.kill()
                proc.wait(timeout=5)
    return True


def tied_to_this_process(argv: list[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when this process dies, even by SIGKILL (an OOM
    kill, ``timeout -s KILL``): Linux's parent-death signal, set by util-linux's ``setpriv``
    just before it execs ``argv`` (same pid). Only from the main thread: the signal follows
    the thread that started the process, and a worker thread ends before the task does.
    Elsewhere (macOS, no setpriv, a worker thread) the next run's :func:`sweep_stale` stops
    what a killed run left."""
    setpriv = shutil.which("setpriv")
    if (
        setpriv
        and sys.platform.startswith("linux")
        and threading.current_thread() is threading.main_thread()
    ):
        return [setpriv, "--pdeathsig", "TERM", "--", *argv]
    return argv


class Forward:
    """A running ``ssh -L`` forward: ``with Forward(url, options, where=...) as fw: fw.url``.

    ``open()`` is ``start()`` (run ssh, return at once: the caller can import the docker
    libraries meanwhile, which takes about as long as ssh's handshake) then ``wait_ready()``
    (until the local socket accepts; any thread may call it; the pty session is started then,
    and nothing waits for it). On any failure (ssh exited, timed out, interrupted) the
    processes are stopped and the temp dir removed before the error propagates. ``close()``
    is idempotent."""

    def __init__(self, url: str, options: SshOptions, *, where: str = "") -> None:
        self.dest = Destination.parse(url)
        self.options = options
        self.where = where or url
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: subprocess.Popen[bytes] | None = None
        self._said = ""  # ssh's stderr, kept when the temp dir goes
        self.argv: list[str] = []
        self._ready = False
        self._lock = threading.Lock()
        self._log: Path | None = None
        self._tcp: dict[tuple[str, int], str] = {}  # forward_to's sockets, one per endpoint
        self._resolved: dict[str, str] | None = None  # ssh -G of the destination, once

    def resolved(self) -> dict[str, str]:
        """What ssh uses for this destination (:func:`ssh_config`), asked once per link."""
        if self._resolved is None:
            self._resolved = ssh_config(self.dest, self.options)
        return self._resolved

    def host_name(self) -> str:
        """The machine ssh connects to (:func:`host_name`), from the link's own ``ssh -G``."""
        return self.resolved().get("hostname") or self.dest.host

    @property
    def socket_path(self) -> Path:
        if self.dir is None:
            raise RuntimeError("the forward is not open")
        return self.dir / SOCKET_NAME

    @property
    def control_path(self) -> Path:
        """The forward's control socket: the pty session and :meth:`forward_to` go through it."""
        if self.dir is None:
            raise RuntimeError("the forward is not open")
        return self.dir / CONTROL_NAME

    @property
    def url(self) -> str:
        """The engine endpoint for the SDK and the CLI: ``unix://<tmp>/docker.sock``."""
        return f"unix://{self.socket_path}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def open(self) -> Forward:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def start(self) -> Forward:
        """Run ssh; do not wait for it (``wait_ready``)."""
        if shutil.which("ssh") is None:
            raise EngineUnavailable(
                f"Cannot reach the Docker engine at {self.where}: the ssh client is not installed",
                hint="install OpenSSH (Debian/Ubuntu: `apt-get install openssh-client`; macOS "
                "and Windows 10+ ship it)",
            )
        if self.options.config and not Path(self.options.config).is_file():
            raise ConfigError(
                f"ssh config file {self.options.config} does not exist",
                hint="fix meeshy.ssh.config (or leave it empty for ~/.ssh/config)",
            )
        with suppress(OSError, ImportError):
            sweep_stale()
        try:
            self.dir = _socket_dir()
            self._spawn()
        except OSError as exc:
            self.close()
            raise EngineUnavailable(
                f"Cannot reach the Docker engine at {self.where}: cannot start ssh: {exc}",
                hint="check that $TMPDIR is a writable folder and that `ssh` runs",
            ) from exc
        except BaseException:
            self.close()
            raise
        return self

    def _spawn(self) -> None:
        assert self.dir is not None
        dial = None
        if self.options.nodelay:
            dial = dial_for(self.resolved(), self.options.connect_timeout)
        # ssh runs the ProxyCommand with the user's $SHELL, as any ProxyCommand (and its
        # Match exec, evaluated by ssh -G the same way): two quoted paths and flags
        env = {**os.environ, **dial} if dial is not None else None
        self.argv = forward_argv(
            self.dest,
            self.options,
            str(self.socket_path),
            str(self.control_path),
            dial=dial is not None,
        )
        self._log = self.dir / "ssh.log"
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                tied_to_this_process(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                # Not in the terminal's process group: Ctrl-C reaches the task, which closes
                # the forward after what runs through it has stopped.
                start_new_session=True,
            )
        self._write_owner()

    def _write_owner(self) -> None:
        assert self.dir is not None
        pids = [p.pid for p in (self.proc, self.session) if p is not None]
        (self.dir / OWNER_FILE).write_text(f"{os.getpid()} {' '.join(map(str, pids))}\n")

    def _start_session(self) -> None:
        """The pty session, through the forward's control socket; not waited for. If the
        server refuses it (a key limited to forwarding), only the session ends: the forward
        works on, without the server's TCP_NODELAY. Best effort: if it cannot even start,
        the forward works on without it."""
        if self.dir is None or not self.options.tty:
            return
        control = self.control_path
        try:
            with (self.dir / "session.log").open("ab") as log:
                self.session = subprocess.Popen(
                    tied_to_this_process(session_argv(self.dest, self.options, str(control))),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                )
            self._write_owner()
        except OSError:
            pass

    def wait_ready(self) -> None:
        """Return once the forward's socket accepts; EngineUnavailable with ssh's reason when
        ssh exits or the deadline passes (the caller closes the forward then)."""
        with self._lock:
            if not self._ready:
                self._wait_ready()
                self._start_session()
                self._ready = True

    def _wait_ready(self) -> None:
        if self.proc is None:
            raise self.failure()
        deadline = time.monotonic() + self.options.start_deadline
        path = self.socket_path
        control = self.control_path
        while True:
            if self.proc.poll() is not None:
                raise self.failure()
            # ssh sets up the -L listener (bind + listen) before it starts listening for
            # control clients, and its control socket appears (renamed from a temporary
            # name) only once that listens: so both names there means the forward accepts.
            # No test connection: that would open a channel and a connection to the engine.
            if control.exists() and path.exists():
                return
            if time.monotonic() >= deadline:
                raise self.failure(
                    f"no answer from {self.dest.host} within {self.options.start_deadline:g}s "
                    "(timed out)"
                )
            time.sleep(0.001)

    def forward_to(self, remote_host: str, remote_port: int) -> str:
        """A unix socket in the link's private (0700) dir that reaches
        ``remote_host:remote_port`` as seen from the server (its loopback included), added to
        this run's connection through the control socket (``ssh -O forward``: no second
        login); it ends with the link. EngineUnavailable when ssh refuses."""
        if self.dir is None or not self.alive:
            raise EngineUnavailable(f"the SSH link to {self.where} is not open")
        control = self.control_path
        key = (remote_host, remote_port)
        if key in self._tcp:
            return self._tcp[key]
        local = str(self.dir / f"port-{len(self._tcp)}.sock")
        host = f"[{remote_host}]" if ":" in remote_host else remote_host
        argv = [
            "ssh", "-o", "ControlMaster=no", "-o", f"ControlPath={control}",
            "-O", "forward", "-L", f"{local}:{host}:{remote_port}",
            *_destination_args(self.dest, self.options),
        ]  # fmt: skip
        try:
            done = _quick_ssh(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            raise EngineUnavailable(
                f"ssh could not add a forward to {remote_host}:{remote_port}: {exc}"
            ) from exc
        if done.returncode != 0:
            raise EngineUnavailable(
                f"ssh could not add a forward to {remote_host}:{remote_port} on {self.where}: "
                + (_last_line(done.stderr) or f"exit {done.returncode}"),
                hint="the server may forbid TCP forwarding (AllowTcpForwarding, permitopen)",
            )
        self._tcp[key] = local
        return local

    def stderr(self) -> str:
        """What ssh printed so far (kept after close)."""
        if self._log is not None and self.dir is not None:
            with suppress(OSError):
                self._said = self._log.read_text(encoding="utf-8", errors="replace")
        return self._said

    def explain(self, *, lost: bool = False) -> tuple[str, str] | None:
        """ssh's reason for a failure (during the run: the link dropped, or the server has no
        Docker socket), or None while ssh runs and has reported no failure. ``lost``: the link
        was up and the engine stopped answering through it."""
        if self.alive:
            return recognise(self.stderr(), self.dest, self.options)
        if lost:
            code = self.proc.returncode if self.proc is not None else None
            signum = -code if code is not None and code < 0 else None
            return explain_lost(self.stderr(), self.dest, self.options, signum)
        return explain(self.stderr(), self.dest, self.options)

    def failure(self, reason: str | None = None) -> EngineUnavailable:
        """The one-line error for a forward that failed: ssh's reason and what to do."""
        why, hint = explain(self.stderr(), self.dest, self.options)
        if reason is not None:
            why = reason
            hint = explain("timed out", self.dest, self.options)[1]
        return EngineUnavailable(
            f"Cannot reach the Docker engine at {self.where} over SSH: {why}", hint=hint
        )

    def close(self) -> None:
        """Stop ssh (the session, then the forward: SIGTERM, then SIGKILL) and remove the temp
        dir with the sockets. Safe to call twice, after a failed start, and when ssh already
        died."""
        session, self.session = self.session, None
        proc, self.proc = self.proc, None
        try:
            stop_processes([p for p in (session, proc) if p is not None])
        finally:
            if self.dir is not None:
                self.stderr()
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def __enter__(self) -> Forward:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
