#!/usr/bin/env bash
# Build (once per CPU feature set) and install the llama-cpp-python wheel.
# Usage: scripts/llama_wheel.sh PYTHON
#
# llama.cpp's default -march=native build enables AMX on CPUs that list it; on virtual machines
# that list AMX without allowing it, the first matrix multiplication dies with a general
# protection fault (ldtilecfg). So the build names the instruction sets this CPU has, AMX left
# out, and the wheel is kept in a cache keyed by that list (pip's own wheel cache ignores
# CMAKE_ARGS and would hand back a wheel built for another CPU).
set -euo pipefail
python="$1"
version="0.3.36"

flags="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
has() { [[ " $flags " == *" $1 "* ]]; }
args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
            avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
  if has "${pair%%:*}"; then args="$args -DGGML_${pair##*:}=ON"; else args="$args -DGGML_${pair##*:}=OFF"; fi
done

key="$(echo "llama-cpp-python==$version $(uname -m) $args" | sha256sum | cut -c1-16)"
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/telesynth/wheels/$key"
if ! compgen -G "$wheels/llama_cpp_python-$version-*.whl" >/dev/null; then
  echo "building llama-cpp-python $version for this CPU (~10 min, once)"
  mkdir -p "$wheels.tmp"
  CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$python" -m pip wheel --quiet --no-deps --no-cache-dir --wheel-dir "$wheels.tmp" \
    "llama-cpp-python==$version"
  rm -rf "$wheels"; mv "$wheels.tmp" "$wheels"
fi
"$python" -m pip install --quiet --no-deps --force-reinstall "$wheels"/llama_cpp_python-$version-*.whl
