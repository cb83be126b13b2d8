package io.saeguard.sidecar.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sidecar.testing.SaeguardJar;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Both fat jars carry the natives of the one platform they are built for and no other's: {@code linux-x86_64} by
 * default, {@code linux-aarch64} with {@code -Plinux-aarch64} ({@code -Dsaeguard.natives.platform}, set by the failsafe
 * configuration). Read from the files' ELF headers, so an aarch64 build is checked on an x86-64 machine too:
 * {@code ./mvnw -o -Plinux-aarch64 -pl sidecar -am -Dtest=none -Dsurefire.failIfNoSpecifiedTests=false
 * -Dit.test=JarNativesIT -Dfailsafe.failIfNoSpecifiedTests=false verify}.
 */
class JarNativesIT {
    /** ELF e_machine values (System V ABI, "Machine" table). */
    private static final int EM_X86_64 = 62;
    private static final int EM_AARCH64 = 183;
    /** What looks like a native library by its name; each must be an ELF shared object of the jar's platform. */
    private static final Pattern NATIVE_NAME = Pattern.compile(".*\\.(so(\\.\\d+)*|dll|dylib|jnilib|a|pdb)$|.*\\.dSYM/.*");

    /** One platform: its ELF machine and, for each library with natives, the file it must carry. */
    private record Platform(String name, int machine, List<String> required) {
    }

    private static final Map<String, Platform> PLATFORMS = Map.of(
            "linux-x86_64", new Platform("linux-x86_64", EM_X86_64, List.of("pytorch/cpu/linux-x86_64/libtorch_cpu.so",
                    "jnilib/linux-x86_64/cpu/libdjl_torch.so", "native/lib/linux-x86_64/cpu/libtokenizers.so",
                    "ai/onnxruntime/native/linux-x64/libonnxruntime.so", "linux/amd64/libzstd-jni-", "net/jpountz/util/linux/amd64/liblz4-java.so",
                    "org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so", "com/sun/jna/linux-x86-64/libjnidispatch.so")),
            "linux-aarch64", new Platform("linux-aarch64", EM_AARCH64, List.of("pytorch/cpu/linux-aarch64/libtorch_cpu.so",
                    "jnilib/linux-aarch64/cpu/libdjl_torch.so", "native/lib/linux-aarch64/cpu/libtokenizers.so",
                    "ai/onnxruntime/native/linux-aarch64/libonnxruntime.so", "linux/aarch64/libzstd-jni-",
                    "net/jpountz/util/linux/aarch64/liblz4-java.so", "org/xerial/snappy/native/Linux/aarch64/libsnappyjava.so",
                    "com/sun/jna/linux-aarch64/libjnidispatch.so")));

    static Stream<Path> jars() {
        return Stream.of(SaeguardJar.path(), SaeguardJar.serverPath());
    }

    @ParameterizedTest
    @MethodSource("jars")
    void everyNativeLibraryIsAnElfForThePlatformTheJarIsBuiltFor(Path jar) throws IOException {
        // Given the jar and the platform this build made it for
        Platform platform = PLATFORMS.get(System.getProperty("saeguard.natives.platform", "linux-x86_64"));
        assertThat(platform).as("saeguard.natives.platform is one of %s", PLATFORMS.keySet()).isNotNull();

        // When the first bytes of each entry are read
        Map<String, Integer> elfMachines = new TreeMap<>();
        List<String> notElf = new ArrayList<>();
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            for (ZipEntry e : zip.stream().filter(e -> !e.isDirectory()).toList()) {
                byte[] head;
                try (InputStream in = zip.getInputStream(e)) {
                    head = in.readNBytes(20);
                }
                if (isElf(head)) {
                    elfMachines.put(e.getName(), machine(head));
                } else if (NATIVE_NAME.matcher(e.getName()).matches()) {
                    notElf.add(e.getName());
                }
            }
        }

        // Then every ELF file is for the jar's machine, no other platform's library (Mach-O, PE, AIX) is left,
        // and each library with natives has the platform's own
        Map<String, Integer> foreign = new TreeMap<>(elfMachines);
        foreign.values().removeIf(m -> m == platform.machine());
        assertThat(foreign).as("ELF files of another machine than %s (%d) in %s", platform.name(), platform.machine(), jar).isEmpty();
        assertThat(notElf).as("native libraries that are not ELF (other platforms') in %s", jar).isEmpty();
        for (String required : platform.required()) {
            assertThat(elfMachines.keySet()).as("%s carries %s", jar, required).anyMatch(name -> name.startsWith(required));
        }
    }

    private static boolean isElf(byte[] head) {
        return head.length >= 20 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F';
    }

    /** e_machine: two bytes at offset 18, in the byte order of EI_DATA (byte 5: 1 little-endian, 2 big-endian). */
    private static int machine(byte[] head) {
        int lo = head[18] & 0xff;
        int hi = head[19] & 0xff;
        return head[5] == 2 ? lo << 8 | hi : hi << 8 | lo;
    }
}
