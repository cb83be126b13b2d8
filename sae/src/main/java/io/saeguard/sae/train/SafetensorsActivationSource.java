package io.saeguard.sae.train;

import io.saeguard.topics.DecodeException;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;
import java.util.Random;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Training rows from safetensors files: tensor {@code activations [n, d_in]} (F32, F16 or BF16,
 * widened to F32), which is also what an activation record holds, so files written by the
 * sidecar's producers or by {@code saeguard encode}'s inputs work as they are. The path is one file
 * or a directory, whose {@code *.safetensors} files (searched recursively) are read in name order
 * as one concatenated table of rows.
 *
 * <p>Files are memory-mapped and rows read on demand, so a data set larger than the heap trains
 * without loading it. A pass visits the rows of its range in a permutation drawn from its seed.
 * At most {@value Integer#MAX_VALUE} rows per source.
 */
public final class SafetensorsActivationSource implements ActivationSource {
    /** The tensor read from every file. */
    public static final String TENSOR = "activations";

    private record Part(Path file, Tensor tensor, long firstRow) {
    }

    /** A source split into training rows and held-out rows. */
    public record Split(SafetensorsActivationSource train, SafetensorsActivationSource heldOut) {
    }

    private final String description;
    private final List<Part> parts;
    private final long[] firstRows;
    private final int dIn;
    private final long from;
    private final long to;

    private SafetensorsActivationSource(String description, List<Part> parts, int dIn, long from, long to) {
        this.description = description;
        this.parts = parts;
        this.firstRows = parts.stream().mapToLong(Part::firstRow).toArray();
        this.dIn = dIn;
        this.from = from;
        this.to = to;
    }

    /**
     * Opens a safetensors file or a directory of them.
     *
     * @throws ActivationDataException when the path holds no such file, a file has no
     *     {@code activations} tensor of rank 2 and float dtype, or the files disagree on {@code d_in}
     */
    public static SafetensorsActivationSource open(Path path) throws IOException {
        List<Path> files;
        if (Files.isDirectory(path)) {
            try (Stream<Path> s = Files.walk(path)) {
                files = s.filter(p -> Files.isRegularFile(p) && p.getFileName().toString().endsWith(".safetensors")).sorted()
                        .collect(Collectors.toList());
            }
            if (files.isEmpty()) {
                throw new ActivationDataException(path + ": no *.safetensors files in this directory");
            }
        } else if (Files.isRegularFile(path)) {
            files = List.of(path);
        } else {
            throw new ActivationDataException(path + ": no such file or directory");
        }
        List<Part> parts = new ArrayList<>();
        long rows = 0;
        int dIn = -1;
        Path first = null;
        for (Path f : files) {
            Tensor t = activations(f);
            int width = Math.toIntExact(t.dim(1));
            if (dIn < 0) {
                dIn = width;
                first = f;
            } else if (width != dIn) {
                throw new ActivationDataException(f + ": '" + TENSOR + "' has d_in " + width + " but " + first + " has d_in " + dIn
                        + "; every file of a training set must have the same width");
            }
            if (t.dim(0) > 0) {
                parts.add(new Part(f, t, rows));
                rows += t.dim(0);
            }
        }
        if (rows == 0) {
            throw new ActivationDataException(path + ": the '" + TENSOR + "' tensors hold no rows");
        }
        if (rows > Integer.MAX_VALUE) {
            throw new ActivationDataException(path + ": " + rows + " rows is more than one source supports (" + Integer.MAX_VALUE
                    + "); train on a subset");
        }
        String description = files.size() == 1 ? files.get(0).toString() : path + " (" + files.size() + " files)";
        return new SafetensorsActivationSource(description, List.copyOf(parts), dIn, 0, rows);
    }

    private static Tensor activations(Path f) throws IOException {
        SafetensorsFile file;
        try {
            file = SafetensorsFile.open(f);
        } catch (DecodeException e) {
            throw new ActivationDataException(f + ": not a valid safetensors file: " + e.getMessage(), e);
        }
        Tensor t = file.tensor(TENSOR).orElseThrow(() -> new ActivationDataException(f + ": no tensor '" + TENSOR + "' (found: "
                + (file.names().isEmpty() ? "none" : String.join(", ", file.names())) + "); expected " + TENSOR + " [n, d_in]"));
        if (t.rank() != 2 || t.dim(1) == 0) {
            throw new ActivationDataException(f + ": '" + TENSOR + "' must have shape [n, d_in], found " + Arrays.toString(t.shape()));
        }
        if (!t.dtype().isFloating()) {
            throw new ActivationDataException(f + ": '" + TENSOR + "' must be F32, F16 or BF16, found " + t.dtype());
        }
        return t;
    }

    /**
     * Splits off the last {@code ceil(fraction · rows)} rows (in file order) as held-out rows. Taking
     * a contiguous tail rather than random rows keeps the held-out tokens out of the requests the
     * training tokens came from, as far as the files are ordered by request.
     */
    public Split holdOut(double fraction) throws ActivationDataException {
        if (!(fraction > 0 && fraction < 1)) {
            throw new IllegalArgumentException("held-out fraction must be in (0, 1), got " + fraction);
        }
        long n = to - from;
        long held = (long) Math.ceil(fraction * n);
        if (held < 1 || n - held < 1) {
            throw new ActivationDataException(description + ": " + n + " rows cannot be split into training and held-out rows at "
                    + fraction);
        }
        long cut = to - held;
        return new Split(new SafetensorsActivationSource(description + " [rows " + from + ".." + cut + ")", parts, dIn, from, cut),
                new SafetensorsActivationSource(description + " [rows " + cut + ".." + to + ")", parts, dIn, cut, to));
    }

    @Override
    public int dIn() {
        return dIn;
    }

    @Override
    public OptionalLong rows() {
        return OptionalLong.of(to - from);
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public Pass pass(long seed) {
        int n = Math.toIntExact(to - from);
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Random random = new Random(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        return new Pass() {
            private int next;

            @Override
            public int next(float[] dst, int maxRows) throws ActivationDataException {
                int m = Math.min(maxRows, n - next);
                for (int r = 0; r < m; r++) {
                    readRow(from + order[next + r], dst, r * dIn);
                }
                next += m;
                return m;
            }

            @Override
            public void close() {
            }
        };
    }

    private void readRow(long row, float[] dst, int offset) throws ActivationDataException {
        int i = Arrays.binarySearch(firstRows, row);
        Part p = parts.get(i >= 0 ? i : -i - 2);
        long local = row - p.firstRow();
        p.tensor().copyFloats(local * dIn, dst, offset, dIn);
        for (int j = 0; j < dIn; j++) {
            float v = dst[offset + j];
            if (Float.isNaN(v) || Float.isInfinite(v)) {
                throw new ActivationDataException(p.file() + ": row " + local + " of '" + TENSOR + "' has a non-finite value (" + v
                        + ") at dimension " + j);
            }
        }
    }

    /** Mapped files are released by the garbage collector; nothing to do. */
    @Override
    public void close() {
    }
}
