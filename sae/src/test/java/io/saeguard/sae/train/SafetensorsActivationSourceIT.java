package io.saeguard.sae.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.topics.safetensors.SafetensorsWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Activation files as training rows: concatenation, shuffled passes, held-out tail, and errors that name the file. */
class SafetensorsActivationSourceIT {
    @TempDir
    Path dir;

    /** Row r of the set holds (r, r, r): its value says which row it is. */
    private void rows(Path file, int from, int n) throws Exception {
        float[] x = new float[n * 3];
        for (int i = 0; i < n; i++) {
            x[3 * i] = from + i;
            x[3 * i + 1] = from + i;
            x[3 * i + 2] = from + i;
        }
        new SafetensorsWriter().addBF16("activations", new long[] {n, 3}, x).addI32("request", new long[] {n}, new int[n]).writeTo(file);
    }

    private static Set<Integer> drain(ActivationSource s, long seed, int batch) throws Exception {
        Set<Integer> seen = new HashSet<>();
        float[] buf = new float[batch * 3];
        try (ActivationSource.Pass p = s.pass(seed)) {
            int m;
            while ((m = p.next(buf, batch)) > 0) {
                for (int i = 0; i < m; i++) {
                    assertThat(seen.add((int) buf[3 * i])).as("row %s twice", buf[3 * i]).isTrue();
                    assertThat(buf[3 * i + 2]).isEqualTo(buf[3 * i]);
                }
            }
        }
        return seen;
    }

    @Test
    void aDirectoryIsItsFilesInNameOrderAndAPassVisitsEveryRowOnceInASeededOrder() throws Exception {
        // Given rows 0..99 in b.safetensors and 100..149 in sub/c.safetensors, and a file of another kind
        rows(dir.resolve("b.safetensors"), 0, 100);
        Files.createDirectories(dir.resolve("sub"));
        rows(dir.resolve("sub/c.safetensors"), 100, 50);
        Files.writeString(dir.resolve("notes.txt"), "ignored");

        try (SafetensorsActivationSource s = SafetensorsActivationSource.open(dir)) {
            // Then it has 150 rows of width 3, every pass yields each once, and the order depends on the seed alone
            assertThat(s.rows().getAsLong()).isEqualTo(150);
            assertThat(s.dIn()).isEqualTo(3);
            assertThat(drain(s, 1, 32)).hasSize(150);
            float[] a = new float[30];
            float[] b = new float[30];
            float[] c = new float[30];
            try (ActivationSource.Pass p = s.pass(7); ActivationSource.Pass q = s.pass(7)) {
                p.next(a, 10);
                q.next(b, 10);
            }
            try (ActivationSource.Pass p = s.pass(8)) {
                p.next(c, 10);
            }
            assertThat(b).containsExactly(a);
            assertThat(c).isNotEqualTo(a);

            // And the held-out split is the last rows in file order
            SafetensorsActivationSource.Split split = s.holdOut(0.2);
            assertThat(split.train().rows().getAsLong()).isEqualTo(120);
            assertThat(drain(split.heldOut(), 3, 7)).containsExactlyInAnyOrderElementsOf(
                    java.util.stream.IntStream.range(120, 150).boxed().toList());
        }
    }

    @Test
    void badFilesAreRejectedNamingTheFileAndTheFix() throws Exception {
        assertThatThrownBy(() -> SafetensorsActivationSource.open(dir.resolve("missing")))
                .isInstanceOf(ActivationDataException.class).hasMessageContaining("missing: no such file or directory");
        assertThatThrownBy(() -> SafetensorsActivationSource.open(dir)).hasMessageContaining("no *.safetensors files");

        Path noTensor = dir.resolve("x.safetensors");
        new SafetensorsWriter().addF32("hidden", new long[] {2, 2}, new float[4]).writeTo(noTensor);
        assertThatThrownBy(() -> SafetensorsActivationSource.open(noTensor)).hasMessageContaining("x.safetensors: no tensor 'activations' (found: hidden)");

        Path ints = dir.resolve("i.safetensors");
        new SafetensorsWriter().addI32("activations", new long[] {2, 2}, new int[4]).writeTo(ints);
        assertThatThrownBy(() -> SafetensorsActivationSource.open(ints)).hasMessageContaining("must be F32, F16 or BF16, found I32");

        Path wide = dir.resolve("w");
        Files.createDirectories(wide);
        rows(wide.resolve("a.safetensors"), 0, 4);
        new SafetensorsWriter().addF32("activations", new long[] {2, 4}, new float[8]).writeTo(wide.resolve("b.safetensors"));
        assertThatThrownBy(() -> SafetensorsActivationSource.open(wide)).hasMessageContaining("b.safetensors: 'activations' has d_in 4")
                .hasMessageContaining("has d_in 3");
    }

    @Test
    void aNonFiniteValueStopsThePassNamingFileRowAndDimension() throws Exception {
        Path f = dir.resolve("nan.safetensors");
        float[] x = new float[12];
        x[2 * 3 + 1] = Float.NaN;
        new SafetensorsWriter().addF32("activations", new long[] {4, 3}, x).writeTo(f);

        try (SafetensorsActivationSource s = SafetensorsActivationSource.open(f)) {
            assertThatThrownBy(() -> drain(s, 0, 4)).isInstanceOf(ActivationDataException.class)
                    .hasMessageContaining("nan.safetensors: row 2 of 'activations' has a non-finite value (NaN) at dimension 1");
        }
    }
}
