// The chat backend of examples/php/router.php, in one Java file on the JDK's own HTTP server:
//   LHTTP_WEBHOOK_SECRET=change-me java Backend.java 9000
// Same contract (docs/webhooks.md): one POST per event, JSON in, JSON (or nothing) out.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class Backend {
    static final String SECRET = System.getenv().getOrDefault("LHTTP_WEBHOOK_SECRET", "");

    public static void main(String[] args) throws IOException {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 9000;
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        server.createContext("/", Backend::handle);
        server.start();
        System.err.println("backend listening on 127.0.0.1:" + port);
    }

    static void handle(HttpExchange exchange) throws IOException {
        byte[] body = exchange.getRequestBody().readAllBytes();
        if (!SECRET.isEmpty()) {
            String given = exchange.getRequestHeaders().getFirst("X-LHTTP-Signature");
            if (given == null || !MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), sign(body).getBytes(StandardCharsets.UTF_8))) {
                send(exchange, 401, null);
                return;
            }
        }
        String event = new String(body, StandardCharsets.UTF_8);
        String user = field(event, "user");
        switch (exchange.getRequestURI().getPath()) {
            case "/connect.php" -> {
                // The user comes from ?token=... or a `token` cookie; no token, no websocket.
                String token = "";
                for (String pair : field(event, "query").split("&")) {
                    if (pair.startsWith("token=")) token = URLDecoder.decode(pair.substring(6), StandardCharsets.UTF_8);
                }
                for (String pair : field(event, "cookie").split(";")) {
                    if (token.isEmpty() && pair.trim().startsWith("token=")) token = pair.trim().substring(6);
                }
                if (token.isEmpty()) { send(exchange, 401, null); return; }
                send(exchange, 200, "{\"meta\":{\"user\":" + quote(token) + "},\"reply\":{\"command\":\"welcome\",\"body\":" + quote("hello " + token) + "}}");
            }
            case "/subscribe.php" -> {
                if (event.contains("\"admin\"")) send(exchange, 403, "{\"refused\":[\"admin\"]}");
                else send(exchange, 204, null);
            }
            case "/chat.php" -> {
                String room = field(event, "room");
                if (room.isEmpty()) room = "lobby";
                // A chat message without text (the original demo subscribes with one) is no chat line.
                if (field(event, "body").isBlank()) { send(exchange, 204, null); return; }
                send(exchange, 200, "{\"publish\":[{\"channels\":[" + quote(room) + "],\"command\":\"chat\",\"body\":"
                    + quote(user + ": " + field(event, "body")) + "}],\"reply\":{\"command\":\"ack\",\"body\":\"sent\"}}");
            }
            case "/disconnect.php" -> send(exchange, 204, null);
            default -> send(exchange, 404, null);
        }
    }

    static String sign(byte[] body) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(SECRET.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            return "sha256=" + HexFormat.of().formatHex(mac.doFinal(body));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** The first string value of "name" in the event (the JDK has no JSON parser; the envelope is flat enough). */
    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\":\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(json);
        return m.find() ? m.group(1).replace("\\\"", "\"").replace("\\\\", "\\") : "";
    }

    static String quote(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static void send(HttpExchange exchange, int status, String json) throws IOException {
        if (json == null) {
            exchange.sendResponseHeaders(status, -1);
        } else {
            byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "application/json");
            exchange.sendResponseHeaders(status, bytes.length);
            exchange.getResponseBody().write(bytes);
        }
        exchange.close();
    }
}
