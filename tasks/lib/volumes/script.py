"""The program of the one helper container that copies one volume (POSIX ``sh``: busybox
``ash`` in alpine/busybox images, ``dash`` or ``bash`` elsewhere).

It runs as ``sh -c SCRIPT sh CHECKSUM`` with the source at ``/from`` (read-only) and the
target at ``/to``, and talks with the task over its attached stdin/stdout:

====================  ========================================================================
container says        meaning
====================  ========================================================================
``blob NAME SIZE``    then SIZE raw bytes: a manifest file (before ``ready`` and ``verify``)
``ready S k=v ...``   target state ``S`` (``empty``, ``populated``, ``legacy-incomplete``,
                      ``overlaps``: the target is the source's folder, inside it, or holds it), what
                      the helper's tools keep (``nscp``: ``cp -a`` keeps sub-second times,
                      ``nstouch``: ``touch -r`` does, ``sparsecp``: ``cp -a`` keeps holes,
                      ``xfast``: xargs runs applets in-process), ``cpus``; the source
                      manifest came as blobs just before
``progress N``        bytes now in the target (``du -sb``), about once a second
``stage NAME``        ``copy``, ``times``, ``manifest``, ``compare`` or ``checksum``
``content same|differ``  ``--checksum`` by ``diff -rq`` (then the differences as a blob)
``verify``            target manifest (and checksums) came as blobs; waiting for the verdict
``failed TEXT``       a step failed; the container exits non-zero
====================  ========================================================================

====================  ========================================================================
task says             meaning
====================  ========================================================================
``put SIZE``          then SIZE bytes: a tar of the work lists (below), unpacked in :data:`WORK`
``go K MODE VERIFY``  copy with ``K`` workers, ``whole`` (one ``cp -a`` of the volume) or
                      ``split`` (by the work lists); with ``--checksum``, compare contents by
                      ``diff`` (byte for byte; a source without symlinks) or ``md5`` (both sides)
``stop``              refused: exit without touching anything
``done``              verified: exit 0
``fail``              not verified: exit 3
(stdin closes)        the task is gone (even SIGKILLed: the engine closes the stdin of a
                      ``StdinOnce`` container when its attached client goes): every process is
                      killed at once and the container exits; it is created with AutoRemove
====================  ========================================================================

Work lists (NUL-separated paths relative to the volume root, ``./a/b``), sent by the task as
a tar after ``put SIZE`` on stdin, before ``go``, when the copy is split (none: one ``cp -a``
of the whole volume, which also keeps hard links): ``units.I`` the subtrees worker ``I``
copies, as groups of siblings (``dir.I.J`` the parent's name as raw bytes, ``grp.I.J`` its
units: one ``cp -a`` per batch, not a fork per unit), ``sparse.I`` the sparse files it
rebuilds with their holes, ``dirs`` the directories the split goes through (created, then
given the source's owner, mode and times at the end). Each worker then restores the times
``cp -a`` cut to the second, from pairs ``SRC\0/to/SRC\0`` it lists itself.

Restoring times costs one ``touch -r`` per entry; run from ``xargs`` a busybox applet runs
in-process (no fork: 3,000 entries take ~0.02 s instead of ~0.7 s), which the helper checks
first (``xfast``: a ``touch`` put first in PATH is not the one called); otherwise a shell loop.

Manifests (``src.*`` and ``dst.*``, sent as blobs), unambiguous for any file name: ``names``
NUL-separated from one ``find -print0`` traversal; ``meta`` one ``stat`` line per name, in the
same order, with no name in it; ``links`` each symlink's target then a newline, in order (its
length is the ``%s`` of its meta line); ``*.sumnames`` + ``*.sums`` the regular files and
their ``md5sum`` lines (parsed with the known names, so a newline in a name is no problem).

The target is never marked here: the task creates the marker volume before ``go`` and removes
it only after the verdict, so no file of the source can collide with it.
"""

from __future__ import annotations

OUT = "/meeshy/out"
WORK = "/meeshy/work"
SRC_DIR = "/from"
DST_DIR = "/to"
CHUNK = 1 << 20  # sparse files are rebuilt by 1 MiB chunks: an all-zero chunk stays a hole
LEGACY_MARKER = ".meeshy-staging-copy-incomplete"  # what versions before 2026-11 left in /to

# %f raw mode, %u %g owner, %s size (a symlink: its target's length), %h links, %i inode,
# %b %B allocated blocks and their size, %t %T device major/minor (hex), %y mtime with
# nanoseconds. No name: the names are in their own NUL-separated file.
STAT_FORMAT = "%f %u %g %s %h %i %b %B %t %T %y"

SCRIPT = r"""set -euf
CHECK=$1
O=/meeshy/out L=/meeshy/work
mkdir -p "$O" "$L"
cd /meeshy
mkfifo ev
exec 3<>ev
# Events come on fd 3: the task's stdin lines (its end, the task gone, is eof), workers'
# exit codes, progress. Only this process writes stdout, so a blob is never interleaved.
# "put N" is followed by N bytes: a tar of the work lists (dd reads exactly N, never more).
exec 4<&0
(
  while IFS= read -r l; do
    case $l in
    "put "*)
      dd bs="${l#put }" count=1 iflag=fullblock 2>/dev/null | tar -x -C "$L" -f - \
        || echo "cmd put-failed" >&3 ;;
    *) printf 'cmd %s\n' "$l" >&3 ;;
    esac
  done
  echo eof >&3
) <&4 &
exec 4<&- 0</dev/null

say() { printf '%s\n' "$*"; }
bail() { say "failed $*"; kill -9 -1 2>/dev/null || :; exit 1; }
next() {
  IFS= read -r EV <&3
  if [ "$EV" = eof ]; then kill -9 -1 2>/dev/null || :; exit 130; fi
}
blob() {  # a file of $O to the task: "blob NAME SIZE", then exactly SIZE bytes
  printf 'blob %s %s\n' "$1" "$(wc -c <"$O/$1")" && cat "$O/$1"
}

META='stat -c "$0" "$@" >&3 || exit 1
for f; do if [ -L "$f" ]; then readlink "$f" >&4 || exit 1; fi; done'
manifest() {  # $1: src or dst; cwd: the volume root
  find . -print0 -exec sh -c "$META" "__STAT__" {} + \
    3>"$O/$1.meta" 4>"$O/$1.links" >"$O/$1.names"
  for part in names meta links; do blob "$1.$part"; done
}
SUM='md5sum "$@" >&3'
sums() {  # $1: output name; $2: NUL list of start points; cwd: the volume root
  xargs -0 -r sh -c 'find "$@" -type f -print0 -exec sh -c "$0" sh {} +' "$SUM" \
    <"$2" 3>"$O/$1.sums" >"$O/$1.sumnames"
}

# -- what the helper's tools keep (probed while the source is listed) -------------------------
probe() {
  mkdir p && cd p
  : >a && cp -a a b && touch c && touch -r a c
  nscp=0 nstouch=0 sparsecp=0 xfast=0
  [ "$(stat -c %y a)" = "$(stat -c %y b)" ] && nscp=1
  [ "$(stat -c %y a)" = "$(stat -c %y c)" ] && nstouch=1
  if truncate -s 2097152 s 2>/dev/null && cp -a s t 2>/dev/null; then
    [ "$(stat -c %b t)" -lt 1024 ] && sparsecp=1
  fi
  # does xargs run busybox's own touch in-process (no fork per file), or a touch from PATH?
  mkdir f && printf '#!/bin/sh\n: >/meeshy/p/forked\n' >f/touch && chmod +x f/touch
  if printf 'a\0c\0' | PATH=/meeshy/p/f:$PATH xargs -0 -n 2 touch -r 2>/dev/null; then
    [ -e forked ] || xfast=1
  fi
  echo "nscp=$nscp nstouch=$nstouch sparsecp=$sparsecp xfast=$xfast cpus=$(nproc 2>/dev/null \
    || echo 1)" >/meeshy/caps
}
( probe ) &
PROBE=$!

state=empty
[ -n "$(find /to -mindepth 1 -maxdepth 1 | head -n 1)" ] && state=populated
[ -e /to/__LEGACY__ ] && [ ! -e /from/__LEGACY__ ] && state=legacy-incomplete
# Two volumes bound to one host folder (driver_opts device=..., o=bind), or one to a folder
# inside the other's: /to is /from, lies inside it, or holds it. Writing /to would write the
# source (and emptying it would delete it): nothing is touched, the task refuses.
set -- $(stat -c '%d %i' /from /to)
if [ "$1" = "$3" ] && { [ "$2" = "$4" ] || [ -n "$(find /from -type d -inum "$4" | head -n 1)" ] \
  || [ -n "$(find /to -type d -inum "$2" | head -n 1)" ]; }; then state=overlaps; fi
(cd /from && manifest src) || bail "cannot list the source"
wait $PROBE || bail "cannot probe the helper's tools"
rm -rf p
read -r caps </meeshy/caps
for c in $caps; do case $c in nscp=1) nscp=1 ;; xfast=1) xfast=1 ;; esac; done
: "${nscp:=0}" "${xfast:=0}"
say "ready $state $caps"

next
set -- $EV
case "$1 $2" in
"cmd go") ;;
"cmd stop") exit 0 ;;
*) bail "did not get the work lists ($EV)" ;;
esac
K=$3 MODE=$4 VERIFY=${5:-md5}
[ "$MODE" = split ] || printf '.\0' >"$L/units.0"  # whole: one cp -a of the volume
: >>"$L/dirs"
i=0
while [ $i -lt "$K" ]; do : >>"$L/units.$i" && : >>"$L/sparse.$i"; i=$((i + 1)); done

say "stage copy"
find /to -mindepth 1 -maxdepth 1 -exec rm -rf {} + || bail "cannot empty the target"
if [ -s "$L/dirs" ]; then
  (cd /to && xargs -0 -r sh -c 'mkdir -p "$@"' sh <"$L/dirs") || bail "mkdir failed"
fi
( while :; do sleep 1; echo "progress $(du -sb /to 2>/dev/null | cut -f1)" >&3; done ) &
PROG=$!

GROUP='cp -a "$@" "$0" || exit 1'
copy_units() {  # worker $1: whole, or each group of sibling units with one cp -a per batch
  if [ "$MODE" != split ]; then cp -a /from/. /to/; return; fi
  j=0
  while [ -e "$L/dir.$1.$j" ]; do
    p=$(cat "$L/dir.$1.$j"; echo x)  # the x keeps a name's trailing newlines
    xargs -0 -r sh -c "$GROUP" "/to/${p%x}/" <"$L/grp.$1.$j" || return 1
    j=$((j + 1))
  done
}
SPARSE='Z=$(dd if=/dev/zero bs=__CHUNK__ count=1 2>/dev/null | md5sum)
for f; do
  d=/to/$f; s=$(stat -c %s "$f") || exit 1
  truncate -s "$s" "$d" || exit 1
  n=$(( (s + __CHUNK__ - 1) / __CHUNK__ )); i=0
  while [ $i -lt $n ]; do
    h=$(dd if="$f" bs=__CHUNK__ skip=$i count=1 2>/dev/null | md5sum) || exit 1
    if [ "$h" != "$Z" ]; then
      dd if="$f" of="$d" bs=__CHUNK__ skip=$i seek=$i count=1 conv=notrunc 2>/dev/null || exit 1
    fi
    i=$((i + 1))
  done
  chown "$(stat -c %u:%g "$f")" "$d" && chmod "$(stat -c %a "$f")" "$d" \
    && touch -r "$f" "$d" || exit 1
done'
PAIRS='for f; do
  if [ -L "$f" ]; then printf "%s\0" "$f" >&4; else printf "%s\0/to/%s\0" "$f" "$f" >&3; fi
done'
FIX='for f; do
  if [ -L "$f" ]; then touch -h -d "@$(stat -c %Y "$f")" "/to/$f" || exit 1
  else touch -r "$f" "/to/$f" || exit 1; fi
done'
LINKFIX='for f; do touch -h -d "@$(stat -c %Y "$f")" "/to/$f" || exit 1; done'
DIRFIX='for d; do
  chown "$(stat -c %u:%g "$d")" "/to/$d" && chmod "$(stat -c %a "$d")" "/to/$d" \
    && touch -r "$d" "/to/$d" || exit 1
done'
each() {  # $1: snippet, $2: NUL list: run the snippet on every entry under the listed paths
  xargs -0 -r sh -c 'find "$@" -exec sh -c "$0" sh {} +' "$1" <"$2"
}
worker() {
  cd /from
  copy_units "$1" || return 1
  if [ -s "$L/sparse.$1" ]; then xargs -0 -r sh -c "$SPARSE" sh <"$L/sparse.$1" || return 1; fi
  if [ $nscp = 1 ]; then return 0; fi
  if [ $xfast = 0 ]; then each "$FIX" "$L/units.$1"; return; fi
  # the (source, target) pairs, then every touch -r in-process (no fork per entry)
  each "$PAIRS" "$L/units.$1" 3>"$L/fix.$1" 4>"$L/links.$1" || return 1
  xargs -0 -r -n 2 touch -r <"$L/fix.$1" || return 1
  xargs -0 -r sh -c "$LINKFIX" sh <"$L/links.$1"
}

sums_left=0
i=0
while [ $i -lt "$K" ]; do
  ( set +e; worker $i; echo "work $i $?" >&3 ) &
  i=$((i + 1))
done
if [ "$CHECK" = 1 ] && [ "$VERIFY" = md5 ]; then
  printf '.\0' >"$L/root"
  ( set +e; cd /from && sums src "$L/root"; echo "sums src $?" >&3 ) &
  sums_left=1
fi
wait_for() {  # until every $1 (work or sums) job has reported
  what=$1
  while :; do
    eval "n=\$${what}_left"
    [ "$n" -gt 0 ] || return 0
    next
    set -- $EV
    case $1 in
      work) [ "$3" = 0 ] || bail "copy worker $2 failed"; work_left=$((work_left - 1)) ;;
      sums) [ "$3" = 0 ] || bail "checksums ($2) failed"; sums_left=$((sums_left - 1)) ;;
      same) [ "$3" = 0 ] || differ=1; sums_left=$((sums_left - 1)) ;;
      progress) [ $# = 2 ] && say "$EV" ;;
    esac
  done
}
work_left=$K
wait_for work
kill $PROG 2>/dev/null || :
say "stage times"
(cd /from && { [ ! -s "$L/dirs" ] || xargs -0 -r sh -c "$DIRFIX" sh <"$L/dirs"; } \
  && sh -c "$DIRFIX" sh .) || bail "cannot set the owners, modes and times of directories"
say "stage manifest"
(cd /to && manifest dst) || bail "cannot list the target"
DIFF='r=0; for u; do diff -rq "/from/$u" "/to/$u" || r=1; done; exit $r'
if [ "$CHECK" = 1 ] && [ "$VERIFY" = diff ]; then
  # No symlink in the source (the task checked): diff -rq follows none, skips fifos, sockets
  # and devices, and compares every regular file byte for byte, each worker its own units.
  say "stage compare"
  differ=0
  i=0
  while [ $i -lt "$K" ]; do
    for list in units sparse; do
      if [ -s "$L/$list.$i" ]; then
        ( set +e; xargs -0 -r sh -c "$DIFF" sh <"$L/$list.$i" >"$O/diff.$list.$i" 2>&1
          echo "same $list.$i $?" >&3 ) &
        sums_left=$((sums_left + 1))
      fi
    done
    i=$((i + 1))
  done
  wait_for sums
  if [ $differ = 1 ]; then
    for f in $(ls "$O"); do case $f in diff.*) cat "$O/$f" ;; esac; done \
      | grep -v 'is not a regular file or directory and was skipped' \
      | head -c 4000 >"$O/differences" || :
    blob differences
    say "content differ"
  else
    say "content same"
  fi
elif [ "$CHECK" = 1 ]; then
  say "stage checksum"
  i=0
  while [ $i -lt "$K" ]; do
    for list in units sparse; do
      if [ -s "$L/$list.$i" ]; then
        ( set +e; cd /to && sums "dst.$list.$i" "$L/$list.$i"; echo "sums $list.$i $?" >&3 ) &
        sums_left=$((sums_left + 1))
      fi
    done
    i=$((i + 1))
  done
  wait_for sums
  for f in $(ls "$O"); do case $f in *.sums | *.sumnames) blob "$f" ;; esac; done
fi
say verify
next
[ "$EV" = "cmd done" ] && exit 0
exit 3
"""


def render() -> str:
    """The script with its constants filled in (no user input ever goes into it)."""
    return (
        SCRIPT.replace("__STAT__", STAT_FORMAT)
        .replace("__CHUNK__", str(CHUNK))
        .replace("__LEGACY__", LEGACY_MARKER)
    )
