#!/usr/bin/env bash
# DJL's CUDA libtorch for the saeguard CUDA image, checked against a pinned manifest of SHA-256 values.
#
#   deploy/cuda/djl-natives.sh fetch MANIFEST OUT_DIR      # the Dockerfile's cuda-natives stage: libtorch
#   deploy/cuda/djl-natives.sh jni   MANIFEST JAR OUT_DIR  # ... and DJL's JNI library, taken from the saeguard jar
#   deploy/cuda/djl-natives.sh pin   MANIFEST              # refresh the manifest (a person, with network)
#
# Why a manifest: DJL publishes libtorch as gzipped files under https://publish.djl.ai/pytorch/<version>/ with a
# files.txt that lists their names and nothing else, and DJL's own downloader (LibUtils.downloadPyTorch in
# pytorch-engine) checks no hash. No hash is published for these files, so the manifest pins the SHA-256 of each
# library as first downloaded; `pin` can cross-check each one against PyTorch's own libtorch zip, which DJL's
# build copies the files from unchanged (pytorch-native/build.gradle.kts, copyNativeLibToOutputDir), so two
# origins must agree before a value is written.
#
# The manifest names its source (first lines, "# version:", "# flavor:", "# classifier:") and lists
# "<sha256>  <library file name>" for every file of <flavor>/<classifier>/native/lib/ in files.txt, plus the JNI
# library libdjl_torch.so that the saeguard jar carries (jnilib/<classifier>/<flavor>/ of ai.djl.pytorch:pytorch-jni,
# whose jar Maven checks against Maven Central's published SHA-1; "# djl:" names its DJL version). `pin` keeps that
# line as it is: it changes only with the pytorch-jni version in the root pom.xml.
#
# fetch fails when: the manifest pins no library; files.txt lists a library the manifest lacks, or the manifest one
# that files.txt lacks; any file's SHA-256 differs. Only then are the libraries moved into OUT_DIR.
#
# Environment: DJL_PUBLISH_URL (default https://publish.djl.ai/pytorch), LIBTORCH_URL for pin's cross-check
# (default PyTorch's libtorch-cxx11-abi-shared-with-deps-<version>+<flavor>.zip; "none" skips it).
set -euo pipefail

die() { echo "djl-natives: $*" >&2; exit 1; }

field() { sed -n "s/^# $1: *//p" "$2" | head -n 1; }

# files.txt's entries for <flavor>/<classifier>/native/lib/, one a line (URL-encoded names, .gz).
listed() {
  curl -fsSL "$base/files.txt" | tr -d '\r' | grep "^${flavor}/${classifier}/native/lib/" \
    || die "files.txt at $base lists no ${flavor}/${classifier} natives; flavors it has: $(curl -fsSL "$base/files.txt" | cut -d/ -f1 | sort -u | tr '\n' ' ')"
}

# The library file name of a files.txt entry: its last segment, URL-decoded, without .gz.
libname() { local n="${1##*/}"; n="${n%.gz}"; printf '%b' "${n//%/\\x}"; }

# Downloads and unpacks every entry of $work/listed into $work/lib, under its library name.
download_listed() {
  mkdir -p "$work/lib"
  while read -r entry; do
    name=$(libname "$entry")
    echo "djl-natives: $entry" >&2
    curl -fsSL "$base/$entry" | gunzip > "$work/lib/$name"
  done < "$work/listed"
}

[ $# -ge 2 ] || die "usage: $0 fetch MANIFEST OUT_DIR | $0 jni MANIFEST JAR OUT_DIR | $0 pin MANIFEST"
mode=$1; manifest=$2
[ -f "$manifest" ] || die "no manifest $manifest"
version=$(field version "$manifest"); flavor=$(field flavor "$manifest"); classifier=$(field classifier "$manifest")
[ -n "$version" ] && [ -n "$flavor" ] && [ -n "$classifier" ] || die "$manifest lacks a '# version:', '# flavor:' or '# classifier:' line"
base="${DJL_PUBLISH_URL:-https://publish.djl.ai/pytorch}/$version"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

case "$mode" in
fetch)
  [ $# -eq 3 ] || die "usage: $0 fetch MANIFEST OUT_DIR"
  out=$3
  grep -E '^[0-9a-f]{64}  ' "$manifest" | grep -v '  libdjl_torch\.so$' > "$work/pinned" || true
  [ -s "$work/pinned" ] || die "$manifest pins no libtorch file yet: DJL publishes no hashes for its natives, so run
  deploy/cuda/djl-natives.sh pin $manifest
on a machine that reaches $base, review the diff and commit it (see the header of deploy/cuda/djl-natives.sh)"
  listed > "$work/listed"
  while read -r entry; do libname "$entry"; echo; done < "$work/listed" | sort > "$work/names.listed"
  awk '{print $2}' "$work/pinned" | sort > "$work/names.pinned"
  if ! diff -u "$work/names.pinned" "$work/names.listed" > "$work/names.diff"; then
    cat "$work/names.diff" >&2
    die "files.txt at $base and $manifest name different libraries (- only pinned, + only published): pin again and review"
  fi
  download_listed
  (cd "$work/lib" && sha256sum --strict -c "$work/pinned") >&2 || die "SHA-256 mismatch against $manifest: not installing"
  mkdir -p "$out"
  mv "$work/lib/"* "$out/"
  echo "djl-natives: $(wc -l < "$work/pinned") libraries verified into $out" >&2
  ;;
jni)
  [ $# -eq 4 ] || die "usage: $0 jni MANIFEST JAR OUT_DIR"
  jar=$3; out=$4
  grep -E '^[0-9a-f]{64}  libdjl_torch\.so$' "$manifest" > "$work/pinned" || die "$manifest pins no libdjl_torch.so"
  mkdir -p "$work/lib"
  unzip -p "$jar" "jnilib/${classifier}/${flavor}/libdjl_torch.so" > "$work/lib/libdjl_torch.so" \
    || die "$jar has no jnilib/${classifier}/${flavor}/libdjl_torch.so (DJL's JNI for this flavor)"
  (cd "$work/lib" && sha256sum --strict -c "$work/pinned") >&2 \
    || die "libdjl_torch.so in $jar differs from $manifest (pytorch-jni changed? its '# djl:' line says which version was pinned)"
  mkdir -p "$out"
  mv "$work/lib/libdjl_torch.so" "$out/"
  ;;
pin)
  [ $# -eq 2 ] || die "usage: $0 pin MANIFEST"
  zip_url="${LIBTORCH_URL:-https://download.pytorch.org/libtorch/${flavor}/libtorch-cxx11-abi-shared-with-deps-${version}%2B${flavor}.zip}"
  listed > "$work/listed"
  download_listed
  if [ "$zip_url" != none ]; then
    echo "djl-natives: cross-checking against $zip_url" >&2
    curl -fsSL "$zip_url" -o "$work/libtorch.zip"
    for f in "$work/lib/"*; do
      unzip -p "$work/libtorch.zip" "libtorch/lib/${f##*/}" | cmp -s - "$f" \
        || die "${f##*/} from $base differs from (or is missing in) $zip_url: not pinning"
    done
  fi
  cross="not cross-checked"; [ "$zip_url" = none ] || cross="identical to libtorch/lib/ of $zip_url"
  {
    grep '^#' "$manifest" | grep -v '^# libtorch:'
    echo "# libtorch: pinned $(date -u +%Y-%m-%d) from $base/files.txt, $cross"
    grep -E '^[0-9a-f]{64}  libdjl_torch\.so$' "$manifest" || true
    (cd "$work/lib" && sha256sum -- * | sort -k2)
  } > "$work/manifest"
  mv "$work/manifest" "$manifest"
  echo "djl-natives: pinned $(ls "$work/lib" | wc -l) libraries in $manifest; review the diff before committing" >&2
  ;;
*)
  die "unknown mode '$mode': fetch or pin"
  ;;
esac
