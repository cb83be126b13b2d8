package io.saeguard.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Writes a {@link SyntheticJumpRelu} SAE as a SAELens directory ({@code cfg.json} +
 * {@code sae_weights.safetensors}, F32), streaming the matrices chunk by chunk so a 2 GiB file is
 * written with a 4 MiB buffer. safetensors layout: u64 LE header length, JSON header (padded with
 * spaces to a multiple of 8, as the reference writer does), then the tensors back to back.
 */
final class SaeLensWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SaeLensWriter() {
    }

    static void write(SyntheticJumpRelu sae, Path dir) throws IOException {
        SaeShape s = sae.shape();
        ObjectNode cfg = JSON.createObjectNode();
        cfg.put("architecture", "jumprelu");
        cfg.put("d_in", s.dIn());
        cfg.put("d_sae", s.dSae());
        cfg.put("dtype", "float32");
        cfg.put("apply_b_dec_to_input", false);
        cfg.put("normalize_activations", "none");
        cfg.putObject("metadata").put("model_name", "synthetic").put("hook_name", "blocks.0.hook_resid_post");
        Files.writeString(dir.resolve("cfg.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(cfg));

        long matrix = 4L * s.dIn() * s.dSae();
        ObjectNode header = JSON.createObjectNode();
        long offset = 0;
        offset = entry(header, "W_enc", offset, matrix, s.dIn(), s.dSae());
        offset = entry(header, "b_enc", offset, 4L * s.dSae(), s.dSae());
        offset = entry(header, "W_dec", offset, matrix, s.dSae(), s.dIn());
        offset = entry(header, "b_dec", offset, 4L * s.dIn(), s.dIn());
        entry(header, "threshold", offset, 4L * s.dSae(), s.dSae());
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;

        try (FileChannel ch = FileChannel.open(dir.resolve("sae_weights.safetensors"), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE)) {
            ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(padded).put(json);
            while (head.hasRemaining()) {
                head.put((byte) ' ');
            }
            writeFully(ch, head.flip());
            ByteBuffer buf = ByteBuffer.allocate(SyntheticJumpRelu.CHUNK_FLOATS * 4).order(ByteOrder.LITTLE_ENDIAN);
            streamMatrix(ch, buf, matrix / 4, sae::encoderChunk);
            writeVector(ch, sae.bEnc());
            streamMatrix(ch, buf, matrix / 4, sae::decoderChunk);
            writeVector(ch, sae.bDec());
            writeVector(ch, sae.threshold());
        }
    }

    private static long entry(ObjectNode header, String name, long begin, long bytes, long... shape) {
        ObjectNode t = header.putObject(name);
        t.put("dtype", "F32");
        var dims = t.putArray("shape");
        for (long d : shape) {
            dims.add(d);
        }
        t.putArray("data_offsets").add(begin).add(begin + bytes);
        return begin + bytes;
    }

    private interface ChunkSource {
        void fill(int chunk, float[] dst);
    }

    private static void streamMatrix(FileChannel ch, ByteBuffer buf, long floats, ChunkSource source) throws IOException {
        float[] chunk = new float[SyntheticJumpRelu.CHUNK_FLOATS];
        for (int c = 0; (long) c * chunk.length < floats; c++) {
            int n = (int) Math.min(chunk.length, floats - (long) c * chunk.length);
            float[] dst = n == chunk.length ? chunk : new float[n];
            source.fill(c, dst);
            buf.clear();
            buf.asFloatBuffer().put(dst);
            buf.limit(n * 4);
            writeFully(ch, buf);
        }
    }

    private static void writeVector(FileChannel ch, float[] v) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        writeFully(ch, b);
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
