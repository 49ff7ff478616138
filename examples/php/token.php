<?php
// Signs an lhttpd connection token (docs/auth.md) in plain PHP: HS256 with hash_hmac, no library. Run it with
//   LHTTP_JWT_SECRET=change-me-to-32-random-bytes-or-more php examples/php/token.php ann 'private-*' room
// to print a token for user "ann", valid one hour, allowed on private-* and subscribed to room; or
// `require 'token.php';` in your app and hand lhttp_token(...) to the logged-in browser.
//
// lhttpd verifies the token on the websocket upgrade (auth.jwt.hmac_secret: the same secret); no connect
// webhook is needed.

function lhttp_base64url(string $bytes): string {
    return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
}

function lhttp_token(string $secret, string $sub, int $ttl, array $info = [], array $channels = []): string {
    $claims = ['sub' => $sub, 'exp' => time() + $ttl];
    if ($info) { $claims['info'] = $info; }
    if ($channels) { $claims['channels'] = array_values($channels); }   // a list, even after array_filter
    $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR;
    $signed = lhttp_base64url(json_encode(['alg' => 'HS256', 'typ' => 'JWT'], $flags))
        . '.' . lhttp_base64url(json_encode($claims, $flags));
    return $signed . '.' . lhttp_base64url(hash_hmac('sha256', $signed, $secret, true));
}

if (PHP_SAPI === 'cli' && realpath($argv[0] ?? '') === __FILE__) {
    $secret = getenv('LHTTP_JWT_SECRET') ?: '';
    if ($secret === '' || count($argv) < 2) {
        fwrite(STDERR, "usage: LHTTP_JWT_SECRET=... php token.php <user> [channel ...]\n");
        exit(2);
    }
    echo lhttp_token($secret, $argv[1], 3600, ['name' => $argv[1]], array_slice($argv, 2)), "\n";
}
