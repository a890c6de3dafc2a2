#!/usr/bin/env bash
# Build llama.cpp (libraries + llama-completion, llama-bench) and install its Python
# binding, from the llama-cpp-python sdist pinned in requirements-llamacpp.txt.
#
#   scripts/llamacpp.sh VENV
#
# One portable compile into VENV/llama.cpp/ (about 5-7 minutes on 2 cores): no
# -march=native, because a native build died with "Illegal instruction" on a virtual
# CPU that advertises AMX; AVX2/FMA/F16C only where /proc/cpuinfo lists them. The
# binding is then installed with LLAMA_BUILD=OFF on top of those libraries (it finds
# them through LLAMA_CPP_LIB_PATH, which steer-ui sets). On failure the reason goes to
# VENV/llama.cpp/BUILD_FAILED and the script exits 0: steer-ui then runs on torch only
# and the llama.cpp tests skip, saying why.
set -uo pipefail
VENV=${1:?usage: scripts/llamacpp.sh VENV}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(cd "$VENV" && pwd)/llama.cpp
PY="$OUT/../bin/python"
REQ="$ROOT/requirements-llamacpp.txt"
VERSION=$(sed -n 's/^llama-cpp-python==\([0-9.]*\).*/\1/p' "$REQ")
SHA=$(grep -A1 '^llama-cpp-python==' "$REQ" | sed -n 's/.*--hash=sha256:\([0-9a-f]*\).*/\1/p')
SRC="$OUT/src"

fail() {
    echo "llama.cpp: $1" >&2
    echo "llama.cpp was not built, so steer-ui runs on torch only and its llama.cpp tests skip." >&2
    mkdir -p "$OUT" && echo "$1" > "$OUT/BUILD_FAILED"
    exit 0
}

rm -f "$OUT/BUILD_FAILED"
mkdir -p "$SRC"
command -v cmake >/dev/null || fail "cmake is not installed (apt-get install cmake)"
command -v c++ >/dev/null || fail "no C++ compiler (apt-get install g++)"

SDIST="$SRC/llama_cpp_python-$VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then
    "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
        "llama-cpp-python==$VERSION" -d "$SRC" || fail "could not download the llama-cpp-python $VERSION sdist"
fi
echo "$SHA  $SDIST" | sha256sum -c --quiet - || { rm -f "$SDIST"; fail "the sdist does not match its pinned sha256"; }
tar xzf "$SDIST" -C "$SRC" || fail "could not unpack $SDIST"
TREE="$SRC/llama_cpp_python-$VERSION"

FLAGS="-DGGML_NATIVE=OFF"
for f in avx avx2 fma f16c; do
    if grep -qw "$f" /proc/cpuinfo 2>/dev/null; then FLAGS="$FLAGS -DGGML_${f^^}=ON"; fi
done
echo "llama.cpp: building $VERSION's llama.cpp portably ($FLAGS); a few minutes, once"
cmake -S "$TREE/vendor/llama.cpp" -B "$OUT" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON $FLAGS \
    -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON > "$OUT/cmake.log" 2>&1 \
    || fail "cmake configure failed (see $OUT/cmake.log)"
cmake --build "$OUT" -j"$(nproc)" --target llama llama-completion llama-bench > "$OUT/build.log" 2>&1 \
    || fail "the compile failed (see $OUT/build.log)"
"$OUT/bin/llama-completion" --version > /dev/null 2>&1 \
    || fail "the built llama-completion does not run on this CPU (see $OUT/build.log)"

CMAKE_ARGS="-DLLAMA_BUILD=OFF" "$PY" -m pip install --disable-pip-version-check -q --no-deps \
    --require-hashes -r "$REQ" || fail "pip could not install the llama-cpp-python binding"
rm -rf "$TREE" "$SDIST"
echo "llama.cpp: built into $OUT/bin"
