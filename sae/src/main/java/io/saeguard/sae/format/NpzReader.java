package io.saeguard.sae.format;

import io.saeguard.sae.SaeFormatException;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * Reads numpy {@code .npz} archives (a zip of {@code .npy} files, as {@code numpy.savez} and
 * {@code savez_compressed} write them): the Gemma Scope 1 format. Supports little-endian
 * {@code <f4}, {@code <f8}, {@code <f2}, {@code <i4}, {@code <i8}, C or Fortran order
 * (Fortran-order matrices are reported transposed, as their bytes are).
 */
final class NpzReader {
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']+)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private NpzReader() {
    }

    static WeightFile read(Path npz) throws IOException, SaeFormatException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (ZipFile zip = new ZipFile(npz.toFile())) {
            for (Enumeration<? extends ZipEntry> e = zip.entries(); e.hasMoreElements(); ) {
                ZipEntry entry = e.nextElement();
                if (entry.isDirectory() || !entry.getName().endsWith(".npy")) {
                    continue;
                }
                String name = entry.getName().substring(0, entry.getName().length() - 4);
                try (InputStream in = zip.getInputStream(entry)) {
                    tensors.put(name, readNpy(npz, name, in));
                }
            }
        } catch (java.util.zip.ZipException e) {
            throw SaeFormatException.in(npz, "not a valid npz (zip) archive: " + e.getMessage());
        }
        return new WeightFile(npz, tensors);
    }

    private static Tensor readNpy(Path npz, String name, InputStream in) throws IOException, SaeFormatException {
        String where = "array '" + name + "'";
        byte[] magic = in.readNBytes(8);
        if (magic.length < 8 || (magic[0] & 0xff) != 0x93 || magic[1] != 'N' || magic[2] != 'U' || magic[3] != 'M'
                || magic[4] != 'P' || magic[5] != 'Y') {
            throw SaeFormatException.in(npz, where + " is not an .npy array (bad magic)");
        }
        int major = magic[6];
        int headerLength;
        if (major == 1) {
            byte[] l = in.readNBytes(2);
            headerLength = (l[0] & 0xff) | (l[1] & 0xff) << 8;
        } else {
            byte[] l = in.readNBytes(4);
            headerLength = ByteBuffer.wrap(l).order(ByteOrder.LITTLE_ENDIAN).getInt();
        }
        String header = new String(in.readNBytes(headerLength), StandardCharsets.ISO_8859_1);
        Matcher d = DESCR.matcher(header);
        Matcher f = FORTRAN.matcher(header);
        Matcher s = SHAPE.matcher(header);
        if (!d.find() || !f.find() || !s.find()) {
            throw SaeFormatException.in(npz, where + ": unreadable .npy header: " + header.trim());
        }
        DType dtype = switch (d.group(1)) {
            case "<f4" -> DType.F32;
            case "<f8" -> DType.F64;
            case "<f2" -> DType.F16;
            case "<i4" -> DType.I32;
            case "<i8" -> DType.I64;
            default -> throw SaeFormatException.in(npz, where + ": unsupported dtype '" + d.group(1)
                    + "' (supported: <f4, <f8, <f2, <i4, <i8)");
        };
        String[] dims = s.group(1).split(",");
        long[] shape = java.util.Arrays.stream(dims).map(String::trim).filter(x -> !x.isEmpty()).mapToLong(Long::parseLong).toArray();
        boolean fortran = f.group(1).equals("True");
        if (fortran && shape.length == 2) {
            shape = new long[] {shape[1], shape[0]};
        } else if (fortran && shape.length > 2) {
            throw SaeFormatException.in(npz, where + ": Fortran-order arrays of rank > 2 are not supported");
        }
        long count = 1;
        for (long x : shape) {
            count *= x;
        }
        long bytes = count * dtype.bytes();
        ByteBuffer data = ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
        byte[] chunk = new byte[1 << 16];
        long left = bytes;
        while (left > 0) {
            int n = in.read(chunk, 0, (int) Math.min(chunk.length, left));
            if (n < 0) {
                throw SaeFormatException.in(npz, where + ": truncated, " + left + " bytes missing");
            }
            data.put(chunk, 0, n);
            left -= n;
        }
        data.flip();
        return tensorView(name, dtype, shape, data);
    }

    private static Tensor tensorView(String name, DType dtype, long[] shape, ByteBuffer data) {
        return Tensor.of(name, dtype, shape, data);
    }
}
