// Signs an lhttpd connection token (docs/auth.md) on the JDK alone: HS256 with javax.crypto.Mac. Run it with
//   LHTTP_JWT_SECRET=change-me-to-32-random-bytes-or-more java examples/java/LhttpToken.java ann 'private-*' room
// to print a token for user "ann", valid one hour, allowed on private-* and subscribed to room; or copy the
// class into your app and hand LhttpToken.sign(...) to the logged-in browser.
//
// lhttpd verifies the token on the websocket upgrade (auth.jwt.hmac_secret: the same secret); no connect
// webhook is needed.
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class LhttpToken {
    static final Base64.Encoder BASE64URL = Base64.getUrlEncoder().withoutPadding();

    /** An HS256 token for user {@code sub}, valid {@code ttlSeconds}; {@code infoJson} is JSON text or null. */
    public static String sign(String secret, String sub, long ttlSeconds, String infoJson, List<String> channels) {
        StringBuilder claims = new StringBuilder("{\"sub\":").append(quote(sub))
            .append(",\"exp\":").append(System.currentTimeMillis() / 1000 + ttlSeconds);
        if (infoJson != null) claims.append(",\"info\":").append(infoJson);
        if (!channels.isEmpty()) {
            claims.append(",\"channels\":[");
            for (int i = 0; i < channels.size(); i++) claims.append(i == 0 ? "" : ",").append(quote(channels.get(i)));
            claims.append(']');
        }
        claims.append('}');
        String signed = base64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}") + "." + base64url(claims.toString());
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            return signed + "." + BASE64URL.encodeToString(mac.doFinal(signed.getBytes(StandardCharsets.US_ASCII)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    static String base64url(String json) {
        return BASE64URL.encodeToString(json.getBytes(StandardCharsets.UTF_8));
    }

    /** A JSON string literal: quotes, backslashes and control characters escaped. */
    static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') out.append('\\').append(c);
            else if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
            else out.append(c);
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) {
        String secret = System.getenv().getOrDefault("LHTTP_JWT_SECRET", "");
        if (secret.isEmpty() || args.length < 1) {
            System.err.println("usage: LHTTP_JWT_SECRET=... java LhttpToken.java <user> [channel ...]");
            System.exit(2);
        }
        String info = "{\"name\":" + quote(args[0]) + "}";
        System.out.println(sign(secret, args[0], 3600, info, Arrays.asList(args).subList(1, args.length)));
    }
}
