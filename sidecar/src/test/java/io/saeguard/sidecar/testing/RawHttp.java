package io.saeguard.sidecar.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * HTTP/1.1 over a plain socket, one request per connection: sends exactly the bytes asked for (any path, any
 * {@code Content-Length}, any body), which {@link java.net.http.HttpClient} refuses to, and reads the answer to the end.
 */
public final class RawHttp {
    /** An answer: status line code, and the raw text (headers and body). */
    public record Answer(int status, String text) {
        public String header(String name) {
            for (String line : text.split("\r\n")) {
                if (line.isEmpty()) {
                    break;
                }
                int colon = line.indexOf(':');
                if (colon > 0 && line.substring(0, colon).equalsIgnoreCase(name)) {
                    return line.substring(colon + 1).strip();
                }
            }
            return "";
        }

        public String body() {
            int at = text.indexOf("\r\n\r\n");
            return at < 0 ? "" : text.substring(at + 4);
        }
    }

    private RawHttp() {
    }

    /**
     * Sends one request and reads the whole answer (the connection is closed by the request's {@code Connection: close}).
     *
     * @throws IOException when the connection fails, e.g. is reset while the body is still being sent
     */
    public static Answer send(int port, String method, String target, Map<String, String> headers, byte[] body) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
            s.setSoTimeout(60_000);
            StringBuilder head = new StringBuilder(method).append(' ').append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
            head.append("Connection: close\r\n");
            if (!headers.containsKey("Content-Length") && (body.length > 0 || !method.equals("GET"))) {
                head.append("Content-Length: ").append(body.length).append("\r\n");
            }
            headers.forEach((k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
            head.append("\r\n");
            OutputStream out = s.getOutputStream();
            out.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
            for (int at = 0; at < body.length; at += 1 << 16) {
                out.write(body, at, Math.min(1 << 16, body.length - at));
            }
            out.flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream answer = new ByteArrayOutputStream();
            in.transferTo(answer);
            String text = answer.toString(StandardCharsets.UTF_8);
            if (!text.startsWith("HTTP/1.1 ") && !text.startsWith("HTTP/1.0 ")) {
                throw new IOException("no HTTP answer: '" + text.substring(0, Math.min(80, text.length())) + "'");
            }
            return new Answer(Integer.parseInt(text.substring(9, 12)), text);
        }
    }
}
