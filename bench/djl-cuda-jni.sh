#!/usr/bin/env bash
# Puts DJL 0.35 onto CUDA with the GPU host's own PyTorch, for a machine where DJL's CUDA natives cannot be
# downloaded (offline) and none for PyTorch 2.7.1 are on Maven Central. It compiles DJL's PyTorch JNI
# (libdjl_torch.so) from a DJL v0.35.0 source tree against the libtorch inside the host's PyTorch wheel,
# installs it where DJL looks for it, and writes the environment that makes DJL use that libtorch:
#
#   PYTORCH_LIBRARY_PATH=<torch>/lib  PYTORCH_VERSION=<x.y.z>  PYTORCH_FLAVOR=cu<NNN>  SAEGUARD_DJL_CACHE=<cache>
#
# DJL takes the JNI library from $SAEGUARD_DJL_CACHE/pytorch/<version>-<flavor>-linux-x86_64/0.35.0-libdjl_torch.so
# when that file exists, so nothing is downloaded. Run it on the GPU host (it needs g++ and the PyTorch wheel's
# headers, not Java); bench/gpu-pack.sh prepares what it reads on a machine with a JDK.
#
# Usage: bench/djl-cuda-jni.sh --djl-src DIR [--jni-include DIR] [--cache DIR] [--env-out FILE] [--jobs N]
#   --djl-src      DJL v0.35.0 sources: DIR/engines/pytorch/pytorch-native/src/main/native, DIR/api/src/main/native,
#                  and the JNI header ai_djl_pytorch_jni_PyTorchLibrary.h in DIR/gen (javac -h makes it; gpu-pack.sh does)
#   --jni-include  a JDK's include/ folder (jni.h, linux/jni_md.h); default $JAVA_HOME/include
#   --cache        DJL's cache (default $SAEGUARD_DJL_CACHE, else ~/.cache/saeguard/djl)
#   --env-out      where to write the export lines (default <cache>/djl-cuda.env)
# Environment: SAEGUARD_GPU_PYTHON (default python3), CXX (default g++), CXXSTD (default c++17; c++20 for torch >= 2.13)
set -euo pipefail

src=""; jni_inc="${JAVA_HOME:+$JAVA_HOME/include}"; cache="${SAEGUARD_DJL_CACHE:-$HOME/.cache/saeguard/djl}"; env_out=""
jobs=$(nproc)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --djl-src) src=$2; shift ;;
    --jni-include) jni_inc=$2; shift ;;
    --cache) cache=$2; shift ;;
    --env-out) env_out=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "djl-cuda-jni.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "djl-cuda-jni.sh: $*" >&2; exit 1; }
native=$src/engines/pytorch/pytorch-native/src/main/native
[[ -n $src && -d $native ]] || die "--djl-src must be a DJL v0.35.0 source tree (no $native)"
[[ -f $src/gen/ai_djl_pytorch_jni_PyTorchLibrary.h ]] || die "no JNI header $src/gen/ai_djl_pytorch_jni_PyTorchLibrary.h (bench/gpu-pack.sh makes it with javac -h)"
[[ -n $jni_inc && -f $jni_inc/jni.h && -f $jni_inc/linux/jni_md.h ]] || die "--jni-include must hold jni.h and linux/jni_md.h (found '$jni_inc')"
py=${SAEGUARD_GPU_PYTHON:-python3}
cxx=${CXX:-g++}
command -v "$cxx" >/dev/null || die "no C++ compiler ($cxx)"

# What the host's PyTorch is: its folder, version, CUDA flavour and C++ ABI.
read -r torch_dir version cuda abi < <("$py" -c '
import os, torch
print(os.path.dirname(torch.__file__), torch.__version__.split("+")[0], torch.version.cuda or "none",
      int(torch._C._GLIBCXX_USE_CXX11_ABI))') || die "$py cannot import torch"
[[ $cuda != none ]] || die "the PyTorch at $torch_dir has no CUDA (torch.version.cuda is None)"
flavor=cu${cuda//./}
site=$(dirname "$torch_dir")
cuda_inc=""
for d in /usr/local/cuda/include $(find "$site/nvidia" -name cuda_runtime_api.h -printf '%h\n' 2>/dev/null | sort -u); do
  if [[ -f $d/cuda_runtime_api.h ]]; then cuda_inc=$d; break; fi
done
[[ -n $cuda_inc ]] || die "no cuda_runtime_api.h under /usr/local/cuda/include or $site/nvidia"
echo "torch $version ($flavor, cxx11 abi $abi) at $torch_dir; CUDA headers $cuda_inc; $($cxx --version | head -1)" >&2

build=$(mktemp -d "${TMPDIR:-/tmp}/djl-jni.XXXXXX")
flags=(-std="${CXXSTD:-c++17}" -O2 -fPIC -w -D_GLIBCXX_USE_CXX11_ABI="$abi" -DUSE_CUDA
  -I"$src/gen" -I"$native" -I"$src/api/src/main/native" -I"$torch_dir/include" -I"$torch_dir/include/torch/csrc/api/include"
  -I"$jni_inc" -I"$jni_inc/linux" -I"$cuda_inc")
start=$(date +%s)
# One compiler per source file, all at once up to --jobs; every failure is reported, not just the first.
failed=0
# shellcheck disable=SC2016
printf '%s\n' "$native"/*.cc | xargs -P "$jobs" -I{} sh -c '
  f=$1; shift; o=$0/$(basename "$f" .cc).o
  "$@" -c "$f" -o "$o" 2> "$o.log" || { echo "FAILED $(basename "$f")"; head -40 "$o.log"; exit 1; }' "$build" {} "$cxx" "${flags[@]}" \
  || failed=1
[[ $failed == 0 ]] || die "compiling DJL's JNI against torch $version failed (logs in $build)"
"$cxx" -shared -o "$build/libdjl_torch.so" "$build"/*.o -L"$torch_dir/lib" -Wl,-rpath,"$torch_dir/lib" \
  -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -ltorch_cuda -lc10_cuda || die "linking libdjl_torch.so failed"
target=$cache/pytorch/$version-$flavor-linux-x86_64
mkdir -p "$target"
cp "$build/libdjl_torch.so" "$target/0.35.0-libdjl_torch.so"
echo "built $target/0.35.0-libdjl_torch.so in $(( $(date +%s) - start )) s" >&2
env_out=${env_out:-$cache/djl-cuda.env}
cat > "$env_out" <<ENVEOF
export PYTORCH_LIBRARY_PATH=$torch_dir/lib
export PYTORCH_VERSION=$version
export PYTORCH_FLAVOR=$flavor
export SAEGUARD_DJL_CACHE=$cache
ENVEOF
echo "wrote $env_out" >&2
cat "$env_out"
