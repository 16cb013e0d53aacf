# Shared by scripts/*.sh: installing what fedsim needs and building it.
# Source it; do not run it.

FEDSIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FEDSIM_BUILD="${FEDSIM_BUILD:-$FEDSIM_ROOT/build}"

# Debian packages fedsim builds and tests with. libopenmpi-dev and openmpi-bin
# (mpirun) give the MPI backend (CMake's FEDSIM_MPI turns on when MPI is
# found) and its test; without them fedsim builds and runs as one process.
# libhdf5-dev reads TFF/FedML's federated HDF5 files (FEDSIM_HDF5 turns on when
# pkg-config finds hdf5-serial); without it data.dataset = "tff_h5" is refused.
FEDSIM_BUILD_DEPS=(g++ make cmake pkg-config libeigen3-dev libcli11-dev nlohmann-json3-dev libfmt-dev catch2
  zlib1g-dev libsodium-dev libgmp-dev libopenmpi-dev openmpi-bin libhdf5-dev)

# Installs the given Debian packages that are not installed yet.
fedsim_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "fedsim: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "fedsim: need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures and builds fedsim (Release) into $FEDSIM_BUILD. Extra arguments
# go to the configure step. Only the fedsim binary is built, not the tests,
# unless the arguments include -DFEDSIM_BUILD_TESTS=ON (scripts/test.sh).
fedsim_build() {
  cmake -S "$FEDSIM_ROOT" -B "$FEDSIM_BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  local target=(--target fedsim)
  case " $* " in *" -DFEDSIM_BUILD_TESTS=ON "*) target=() ;; esac
  cmake --build "$FEDSIM_BUILD" -j"$(nproc)" "${target[@]}"
}

# True when DIR/metrics.json exists and says the run completed (for scripts
# that reuse finished runs, so an interrupted table resumes).
fedsim_completed() {
  [ -f "$1/metrics.json" ] &&
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["summary"]["status"] != "completed")' \
      "$1/metrics.json"
}

# For option parsing in a `case`: exits 2 with "OPTION needs a value" unless
# a value follows the option. Call it with the remaining arguments:
#   --seeds) fedsim_need_value "$@"; seeds="$2"; shift 2 ;;
fedsim_need_value() {
  [ $# -ge 2 ] || { echo "$(basename "$0" .sh): $1 needs a value" >&2; exit 2; }
}

# What to do with the run directory DIR before `fedsim run ARGS... --out DIR`
# (ARGS: a config file, or none for the built-in default, then --set options;
# not --out, --threads, --quiet, --resume or --from). Prints one word:
#   reuse   DIR holds a finished run (completed, or diverged) of the config
#           ARGS resolve to (`fedsim validate --print`): keep it
#   resume  DIR holds an interrupted run of exactly that config and its
#           checkpoint.bin: continue it with `fedsim run --resume DIR`
#   run     anything else: run it from the start. A DIR that holds a result of
#           another config (another --rounds, say) or an interrupted run that
#           cannot be resumed is moved aside to DIR.stale-<time>, said on stderr
# Configs are compared key by key; keys only one side has (a newer fedsim's
# new keys) are not compared. --ignore KEY (repeatable, before ARGS) leaves a
# key out of the comparison, for keys that only label a result
# (experiment.target_accuracy when the script computes rounds to the target
# from the rounds itself).
# Usage: state="$(fedsim_run_state FEDSIM DIR [--ignore KEY]... [CONFIG] [--set KEY=VALUE]...)"
fedsim_run_state() {
  local fedsim="$1" dir="$2" ignore=() cfg tmp state
  shift 2
  while [ "${1:-}" = --ignore ]; do ignore+=("$2"); shift 2; done
  if [ ! -f "$dir/metrics.json" ] && [ ! -f "$dir/checkpoint.bin" ]; then
    echo run
    return 0
  fi
  tmp="$(mktemp -d)"
  cfg="${1:-}"
  if [ -z "$cfg" ] || [ "${cfg#--}" != "$cfg" ]; then
    cfg="$tmp/default.json"  # the built-in default: an empty config
    echo '{}' >"$cfg"
  else
    shift
  fi
  if ! "$fedsim" validate "$cfg" "$@" --print >"$tmp/want.json" 2>/dev/null; then
    rm -rf "$tmp"
    echo run  # fedsim run will say what is wrong with the config
    return 0
  fi
  state="$(python3 - "$dir" "$tmp/want.json" "${ignore[@]}" <<'PY'
import json, os, sys
d, want_path, ignore = sys.argv[1], sys.argv[2], sys.argv[3:]

def drop(c):
    for key in ignore:
        *parents, last = key.split(".")
        node = c
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return c

def first_difference(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) & set(b)):
            diff = first_difference(a[k], b[k], f"{path}.{k}" if path else k)
            if diff:
                return diff
        return None
    return None if a == b else path

def get(c, path):
    for k in path.split("."):
        c = c[k]
    return json.dumps(c)

want = drop(json.load(open(want_path)))
status, have = None, None
try:
    with open(f"{d}/metrics.json") as f:
        m = json.load(f)
    status, have = m["summary"]["status"], m["config"]
except (OSError, ValueError, KeyError, TypeError):
    try:
        with open(f"{d}/config.json") as f:
            have = json.load(f)  # killed before it wrote metrics.json
    except (OSError, ValueError):
        pass
if not isinstance(have, dict):
    print("run unreadable results")
    sys.exit(0)
have = drop(have)
diff = first_difference(have, want)
if status in ("completed", "diverged"):
    if diff is None:
        print("reuse")
    else:
        print(f"run a {status} run of another config: {diff} is {get(have, diff)}, this run sets {get(want, diff)}")
elif diff is None and have == want and os.path.exists(f"{d}/checkpoint.bin"):
    print("resume")
elif diff is not None:
    print(f"run an interrupted run of another config: {diff} is {get(have, diff)}, this run sets {get(want, diff)}")
else:
    print("run an interrupted run that cannot be resumed (no checkpoint.bin, or another fedsim's config)")
PY
)" || state="run unreadable results"
  rm -rf "$tmp"
  case "$state" in
    reuse | resume) echo "$state" ;;
    *)
      local stale base n=1
      base="$dir.stale-$(date +%Y%m%d-%H%M%S)"
      stale="$base"
      while [ -e "$stale" ]; do stale="$base.$((n += 1))"; done
      mv "$dir" "$stale" || return 1
      echo "fedsim: $dir holds ${state#run }; moved it aside to $stale and running it again" >&2
      echo run ;;
  esac
}

# Makes DIR hold the finished run of ARGS (a config, then --set options):
# keeps it if it is there (fedsim_run_state), resumes it if it was
# interrupted, runs it from the start otherwise, on THREADS threads. LABEL
# names the run in the progress line on stderr. Returns fedsim's status (0
# for a kept run).
# Usage: fedsim_ensure_run FEDSIM DIR THREADS LABEL [--ignore KEY]... ARGS...
fedsim_ensure_run() {
  local fedsim="$1" dir="$2" threads="$3" label="$4" ignore=()
  shift 4
  while [ "${1:-}" = --ignore ]; do ignore+=(--ignore "$2"); shift 2; done
  case "$(fedsim_run_state "$fedsim" "$dir" "${ignore[@]}" "$@")" in
    reuse) return 0 ;;
    resume)
      echo "resuming $label" >&2
      "$fedsim" run --resume "$dir" --threads "$threads" --quiet ;;
    *)
      echo "running $label" >&2
      "$fedsim" run "$@" --threads "$threads" --quiet --out "$dir" ;;
  esac
}
