#!/usr/bin/env bash
# Packs what bench/gpu.sh's DJL part needs on a GPU host that has PyTorch but no Java and no network
# (run it here, where the JDK, Maven's repository and the built bench module are):
#
#   DIR/jre.tar.xz     a jlink'd Java 17 runtime (~21 MB)
#   DIR/lib/           the bench classpath without DJL's bundled CPU libtorch (pytorch-native-cpu, 112 MB)
#                      and without what the encode benchmarks never load (Kafka, onnxruntime, tokenizers, JUnit...);
#                      slf4j-simple in place of log4j
#   DIR/djl/           DJL v0.35.0's PyTorch JNI sources and the JNI header javac -h makes from them
#   DIR/jni-include/   jni.h and linux/jni_md.h
#
# On the GPU host: bench/djl-cuda-jni.sh --djl-src DIR/djl --jni-include DIR/jni-include builds DJL's JNI
# against the host's libtorch, then bench/gpu.sh --skip-build with SAEGUARD_BENCH_JAVA and SAEGUARD_BENCH_CLASSPATH
# (bench/gpu.sh --packed DIR does both).
#
# With --pipeline DIR2 it also writes DIR2/ (~55 MB): the sidecar's and the bench's class path without CPU
# natives, for bench/run.sh's SAEGUARD_BENCH_CLASSPATH / SAEGUARD_BENCH_SIDECAR_CLASSPATH (bench/gpu.sh --pipeline
# with --packed); the runtime then holds every Java SE module (the broker and log4j need more than the encode).
#
# Usage: bench/gpu-pack.sh --djl-src DJL_GIT_OR_TREE [--out DIR] [--pipeline DIR2] [--skip-build]
#   --djl-src   a clone of github.com/deepjavalibrary/djl (tag v0.35.0 is read with git archive) or a tree
#               already at v0.35.0
set -euo pipefail
cd "$(dirname "$0")/.."
src=""; out=.gpu; build=1; pipeline=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --djl-src) src=$2; shift ;;
    --out) out=$2; shift ;;
    --pipeline) pipeline=$2; shift ;;
    --skip-build) build=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu-pack.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "gpu-pack.sh: $*" >&2; exit 1; }
[[ -n $src && -d $src ]] || die "--djl-src must name a DJL clone or source tree"
jdk=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
[[ -x $jdk/bin/jlink && -f $jdk/include/jni.h ]] || die "needs a JDK with jlink and include/jni.h (found $jdk)"

if [[ $build == 1 ]]; then
  ./mvnw -q -B -ntp -DskipTests install -pl bench,sidecar -am
fi
rm -rf "$out"; mkdir -p "$out/lib" "$out/djl" "$out/jni-include/linux"

# The classpath, less what a CUDA run never loads.
cp_file=$(mktemp)
./mvnw -q -B -ntp dependency:build-classpath -pl bench -Dmdep.outputFile="$cp_file" > /dev/null
tr ':' '\n' < "$cp_file" | while read -r jar; do
  case "$(basename "$jar")" in
    pytorch-native-cpu*|onnxruntime*|langchain4j*|tokenizers*|junit*|assertj*|byte-buddy*|zstd*|snappy*|lz4*|jmh-generator*|opentest4j*|apiguardian*) ;;
    kafka-clients*|log4j*) ;;  # the encode benchmarks need no Kafka; slf4j-simple logs instead of log4j (which needs java.desktop)
    *) cp "$jar" "$out/lib/" ;;
  esac
done
rm -f "$cp_file"
cp bench/target/saeguard-bench-*-SNAPSHOT.jar "$out/lib/"
slf4j_version=$(basename "$(ls "$out"/lib/slf4j-api-*.jar)" .jar); slf4j_version=${slf4j_version#slf4j-api-}
./mvnw -q -B -ntp dependency:copy -Dartifact="org.slf4j:slf4j-simple:$slf4j_version" -DoutputDirectory="$out/lib" > /dev/null

# A small runtime (~21 MB packed): JMH needs java.management, DJL jdk.unsupported. The pipeline's broker,
# Kafka clients (SASL, JAAS) and log4j (java.beans) need more: then all of Java SE.
modules=java.base,java.logging,java.management,jdk.management,java.naming,java.xml,java.sql,jdk.unsupported,java.net.http,jdk.crypto.ec,java.scripting,java.instrument,jdk.zipfs,jdk.jfr,jdk.management.jfr
[[ -n $pipeline ]] && modules=java.se,jdk.unsupported,jdk.management,jdk.crypto.ec,jdk.zipfs,jdk.jfr,jdk.management.jfr,jdk.security.auth,jdk.naming.dns
"$jdk/bin/jlink" --add-modules "$modules" \
  --strip-debug --no-header-files --no-man-pages --compress=2 --output "$out/jre"
tar -C "$out" -cJf "$out/jre.tar.xz" jre
rm -rf "$out/jre"
cp "$jdk/include/jni.h" "$out/jni-include/"; cp "$jdk/include/linux/jni_md.h" "$out/jni-include/linux/"

# DJL's JNI sources at v0.35.0 (the version of pytorch-engine and pytorch-jni in the parent pom) and its header.
parts=(engines/pytorch/pytorch-native/src/main/native engines/pytorch/pytorch-engine/src/main/java api/src/main/native)
if git -C "$src" rev-parse -q --verify v0.35.0 > /dev/null 2>&1; then
  git -C "$src" archive v0.35.0 "${parts[@]}" | tar -x -C "$out/djl"
else
  for p in "${parts[@]}"; do mkdir -p "$out/djl/$p"; cp -r "$src/$p/." "$out/djl/$p/"; done
fi
djl_api=$(tr ':' '\n' < <(./mvnw -q -B -ntp dependency:build-classpath -pl sae -Dmdep.outputFile=/dev/stdout) | grep -E '/(api-0\.35\.0|slf4j-api-[0-9.]+)\.jar$' | paste -sd:)
mkdir -p "$out/djl/gen" "$out/djl/classes"
"$jdk/bin/javac" -cp "$djl_api" -sourcepath "$out/djl/engines/pytorch/pytorch-engine/src/main/java" \
  "$out/djl/engines/pytorch/pytorch-engine/src/main/java/ai/djl/pytorch/jni/PyTorchLibrary.java" -h "$out/djl/gen" -d "$out/djl/classes"
rm -rf "$out/djl/classes" "$out/djl/engines/pytorch/pytorch-engine"

if [[ -n $pipeline ]]; then
  rm -rf "$pipeline"; mkdir -p "$pipeline"
  for module in sidecar bench; do
    cp_file=$(mktemp)
    ./mvnw -q -B -ntp dependency:build-classpath -pl "$module" -Dmdep.outputFile="$cp_file" -Dmdep.includeScope=runtime > /dev/null
    tr ':' '\n' < "$cp_file" | while read -r jar; do
      case "$(basename "$jar")" in
        pytorch-native-cpu*|onnxruntime*|langchain4j*|tokenizers*|junit*|assertj*|byte-buddy*|jmh-generator*|opentest4j*|apiguardian*) ;;
        zstd-jni*|snappy-java*) ;;  # compression codecs of the Kafka client: the benchmark's topics are uncompressed
        testcontainers*|docker-java*|duct-tape*|kafka-1.*|*-tests.jar) ;;  # test-only, seen on the bench module's path
        scala-reflect*) ;;  # compile-time only (scala-logging's macros); the broker runs without it
        pytorch-jni*) ;;    # DJL takes the JNI library djl-cuda-jni.sh put in its cache before it looks in this jar
        *) cp -n "$jar" "$pipeline/" ;;
      esac
    done
    rm -f "$cp_file"
  done
  cp bench/target/saeguard-bench-*-SNAPSHOT.jar sidecar/target/saeguard-sidecar-*-SNAPSHOT.jar "$pipeline/"
  du -sh "$pipeline" >&2
fi
du -sh "$out" "$out"/* >&2
