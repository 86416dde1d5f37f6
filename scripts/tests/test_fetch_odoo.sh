#!/usr/bin/env bash
# Tests of require_odoo's fetch step (scripts/lib.sh), run by `scripts/test` in its static phase.
# Nothing here touches the network or the real Odoo tree: Odoo is a tiny fake git repository
# (odoo-bin, odoo/release.py) served from a local bare repository passed as ODOO_REPO.
# Last line: "N passed, N failed"; exit code non-zero on any failure.
set -uo pipefail
# Each case sets what it needs: nothing comes from the caller's settings (scripts/test may run
# with ODOO_REF or ODOO_REPO of its own).
unset ODOO_PATH ODOO_REPO ODOO_REF ODOO_REACH_TIMEOUT ODOO_CLONE_TIMEOUT

LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"
REPO_ROOT="$(cd "$(dirname "$LIB")/.." && pwd)"
WORK=$(mktemp -d)
# The refusal tests name these paths inside the repository: a broken require_odoo would create them.
INSIDE=("$REPO_ROOT/odoo17" "$REPO_ROOT/x")
for path in "${INSIDE[@]}"; do [[ ! -e "$path" ]] || { echo "$path exists: cannot test" >&2; exit 1; }; done
trap 'rm -rf -- "$WORK" "${INSIDE[@]}"' EXIT
PASSED=0; FAILED=0

check() {  # check DESCRIPTION COMMAND...: one assertion
    if "${@:2}"; then
        PASSED=$((PASSED + 1))
    else
        FAILED=$((FAILED + 1)); echo "FAIL: $1" >&2
        [[ -f "$WORK/err" ]] && sed 's/^/    | /' "$WORK/err" >&2
    fi
}
contains() { grep -qF -- "$2" "$1"; }
lacks() { ! grep -qF -- "$2" "$1"; }
no_partial_clone() { ! compgen -G "$1/.*.fetching.*" >/dev/null; }
empty_dir() { [[ -d "$1" && -z "$(ls -A -- "$1")" ]]; }

# run_require VAR=VALUE...: require_odoo in a fresh shell with these variables; sets RC, ELAPSED,
# and leaves stderr in $WORK/err. SECONDS in the fake shell would not count the sourcing.
run_require() {
    local start=$SECONDS
    RC=0
    env "$@" bash -c 'source "$1"; require_odoo' _ "$LIB" >/dev/null 2>"$WORK/err" || RC=$?
    ELAPSED=$((SECONDS - start))
}

# A fake "Odoo": branch 17.0 (two commits, to see the clone is shallow) and branch 16.0.
make_fake_odoo() {
    local src="$WORK/src"
    git init -q -b 17.0 "$src"
    git -C "$src" config user.email t@example.com; git -C "$src" config user.name test
    mkdir -p "$src/odoo"
    printf '#!/usr/bin/env python3\n' >"$src/odoo-bin"
    printf 'RELEASE_LEVELS = []\nversion_info = (17, 0, 0, FINAL, 0, "")\n' >"$src/odoo/release.py"
    echo first >"$src/requirements.txt"
    git -C "$src" add -A; git -C "$src" commit -qm first
    echo second >"$src/requirements.txt"
    git -C "$src" commit -qam second
    git -C "$src" checkout -qb 16.0
    printf 'version_info = (16, 0, 0, FINAL, 0, "")\n' >"$src/odoo/release.py"
    git -C "$src" commit -qam "odoo 16"
    git clone -q --bare "$src" "$WORK/odoo.git"
}
make_fake_odoo
BARE="file://$WORK/odoo.git"

# (a) Cloned from a local bare repository into a fresh empty directory. -----------------------
mkdir -p "$WORK/a/odoo17"
run_require ODOO_PATH="$WORK/a/odoo17" ODOO_REPO="$BARE"
check "clone into an empty directory succeeds (rc=$RC)" test "$RC" -eq 0
check "the tree arrived: odoo-bin" test -f "$WORK/a/odoo17/odoo-bin"
check "the tree arrived: branch 17.0" grep -q "^version_info = (17, 0" "$WORK/a/odoo17/odoo/release.py"
check "the clone is shallow (one commit)" test "$(git -C "$WORK/a/odoo17" rev-list --count HEAD 2>/dev/null)" = 1
check "progress line names the target and the source" contains "$WORK/err" "==> no Odoo tree at $WORK/a/odoo17: fetching Odoo 17.0 from $BARE"
check "progress line says it clones" contains "$WORK/err" "==> cloning (shallow"
check "time line printed" grep -qE "^==> fetched Odoo 17.0 into $WORK/a/odoo17 in [0-9]+m[0-9]+s$" "$WORK/err"
check "no temporary clone left beside it" no_partial_clone "$WORK/a"

run_require ODOO_PATH="$WORK/a/odoo17" ODOO_REPO="http://127.0.0.1:9/odoo.git"
check "second run reuses the tree (rc=$RC), even offline" test "$RC" -eq 0
check "second run fetches nothing" lacks "$WORK/err" "fetching"

mkdir -p "$WORK/a2"
run_require ODOO_PATH="$WORK/a2/new/odoo17" ODOO_REPO="$BARE"
check "clone into a directory that does not exist yet (rc=$RC)" test "$RC" -eq 0
check "... arrived" test -f "$WORK/a2/new/odoo17/odoo/release.py"

# Leftovers of a killed run (its process is gone) are cleared by the next one.
mkdir -p "$WORK/a3/.odoo17.fetching.999999999/odoo"
run_require ODOO_PATH="$WORK/a3/odoo17" ODOO_REPO="$BARE"
check "a stale partial clone is cleared (rc=$RC)" no_partial_clone "$WORK/a3"

# (b) Unreachable, wrong or interrupted sources: fail fast, say what to do, leave nothing. ------
for repo in "http://127.0.0.1:9/odoo.git" "$WORK/does-not-exist.git"; do
    mkdir -p "$WORK/b/odoo17"
    run_require ODOO_PATH="$WORK/b/odoo17" ODOO_REPO="$repo"
    check "unreachable $repo: non-zero exit" test "$RC" -ne 0
    check "unreachable $repo: fails fast (${ELAPSED}s)" test "$ELAPSED" -le 10
    check "unreachable $repo: says it tries" contains "$WORK/err" "fetching Odoo 17.0 from $repo"
    check "unreachable $repo: says it could not be fetched" contains "$WORK/err" "could not be fetched"
    check "unreachable $repo: does not start the clone" lacks "$WORK/err" "==> cloning"
    check "unreachable $repo: says what to do" contains "$WORK/err" "What to do"
    check "unreachable $repo: names the manual clone" contains "$WORK/err" "git clone --depth 1 --branch 17.0 $repo $WORK/b/odoo17"
    check "unreachable $repo: target left empty" empty_dir "$WORK/b/odoo17"
    check "unreachable $repo: no temporary clone left" no_partial_clone "$WORK/b"
done

# A server that accepts the connection and never answers: bounded by ODOO_REACH_TIMEOUT.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$WORK/port" &
SILENT_PID=$!
for _ in $(seq 50); do [[ -s "$WORK/port" ]] && break; sleep 0.1; done
mkdir -p "$WORK/b2"
run_require ODOO_PATH="$WORK/b2/odoo17" ODOO_REPO="http://127.0.0.1:$(cat "$WORK/port")/odoo.git" ODOO_REACH_TIMEOUT=2
kill "$SILENT_PID" 2>/dev/null; wait "$SILENT_PID" 2>/dev/null
check "silent server: non-zero exit" test "$RC" -ne 0
check "silent server: gives up after the timeout (${ELAPSED}s)" test "$ELAPSED" -le 6
check "silent server: says no answer" contains "$WORK/err" "no answer from"
check "silent server: nothing created" test ! -e "$WORK/b2/odoo17"

run_require ODOO_PATH="$WORK/b2/odoo17" ODOO_REPO="$BARE" ODOO_REF=15.0
check "missing branch: non-zero exit" test "$RC" -ne 0
check "missing branch: says so" contains "$WORK/err" "has no branch or tag 15.0"

run_require ODOO_PATH="$WORK/b2/odoo17" ODOO_REPO="$BARE" ODOO_REF=16.0
check "wrong series: non-zero exit" test "$RC" -ne 0
check "wrong series: says so" contains "$WORK/err" "is Odoo 16.0, this addon needs Odoo 17.0"
check "wrong series: nothing left in place" test ! -e "$WORK/b2/odoo17"
check "wrong series: no temporary clone left" no_partial_clone "$WORK/b2"

# A clone that dies after writing a complete-looking tree (a stand-in git on PATH, which can also
# be slow: FAKE_CLONE_SLEEP) leaves nothing.
mkdir -p "$WORK/fakebin"
cat >"$WORK/fakebin/git" <<SH
#!/usr/bin/env bash
if [[ "\$1" == clone ]]; then
    dest="\${@: -1}"; mkdir -p "\$dest/odoo"; touch "\$dest/odoo-bin"
    echo 'version_info = (17, 0, 0, FINAL, 0, "")' >"\$dest/odoo/release.py"
    sleep "\${FAKE_CLONE_SLEEP:-0}"; exit 130
fi
exec $(command -v git) "\$@"
SH
chmod +x "$WORK/fakebin/git"
run_require ODOO_PATH="$WORK/b2/odoo17" ODOO_REPO="$BARE" PATH="$WORK/fakebin:$PATH"
check "interrupted clone: non-zero exit" test "$RC" -ne 0
check "interrupted clone: says it failed" contains "$WORK/err" "failed after"
check "interrupted clone: no tree at ODOO_PATH" test ! -e "$WORK/b2/odoo17"
check "interrupted clone: no temporary clone left" no_partial_clone "$WORK/b2"

# Stopped (TERM, as Ctrl-C or a killed `scripts/serve` would) in the middle of a slow clone.
env ODOO_PATH="$WORK/b2/odoo17" ODOO_REPO="$BARE" PATH="$WORK/fakebin:$PATH" FAKE_CLONE_SLEEP=30 \
    bash -c 'source "$1"; require_odoo' _ "$LIB" >/dev/null 2>"$WORK/err" &
RUN_PID=$!
for _ in $(seq 100); do compgen -G "$WORK/b2/.odoo17.fetching.*/odoo/odoo-bin" >/dev/null && break; sleep 0.1; done
start=$SECONDS; kill -TERM "$RUN_PID"; RC=0; wait "$RUN_PID" || RC=$?
ELAPSED=$((SECONDS - start))
check "stopped clone: non-zero exit" test "$RC" -ne 0
check "stopped clone: stops at once (${ELAPSED}s)" test "$ELAPSED" -le 3
check "stopped clone: says so" contains "$WORK/err" "interrupted while fetching Odoo"
check "stopped clone: no tree at ODOO_PATH" test ! -e "$WORK/b2/odoo17"
check "stopped clone: no temporary clone left" no_partial_clone "$WORK/b2"
check "stopped clone: the clone process is gone" test -z "$(pgrep -f "FAKE_CLONE_SLEEP|$WORK/b2/.odoo17.fetching" || true)"

# (c) Refusals: inside this repository, or over a directory holding something else. -----------
run_require ODOO_PATH="$REPO_ROOT/odoo17" ODOO_REPO="$BARE"
check "inside the repository: refused" test "$RC" -ne 0
check "inside the repository: says why" contains "$WORK/err" "is inside this repository"
check "inside the repository: nothing created" test ! -e "$REPO_ROOT/odoo17"
check "inside the repository: no temporary clone" no_partial_clone "$REPO_ROOT"
run_require ODOO_PATH="$REPO_ROOT/sms_marketing_ext/../../$(basename "$REPO_ROOT")/x/odoo" ODOO_REPO="$BARE"
check "inside the repository through '..': refused" contains "$WORK/err" "is inside this repository"

mkdir -p "$WORK/c/odoo17"; echo "my notes" >"$WORK/c/odoo17/notes.txt"
run_require ODOO_PATH="$WORK/c/odoo17" ODOO_REPO="$BARE"
check "non-empty non-Odoo directory: refused" test "$RC" -ne 0
check "non-empty non-Odoo directory: says it is left untouched" contains "$WORK/err" "left untouched"
check "non-empty non-Odoo directory: contents kept" test "$(ls -A "$WORK/c/odoo17")" = notes.txt

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
