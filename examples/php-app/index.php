<?php
// A plain PHP app behind lhttpd's reverse proxy (docs/proxy.md): `php -S 127.0.0.1:9000 index.php`, then
// lhttpd with `proxy: {backend: http://127.0.0.1:9000}` serves it, its websockets and /publish on one port.
// Nothing here knows about lhttpd but two headers: X-LHTTP-User (set by lhttpd from a verified token, never
// from the client) and X-Forwarded-* (the client's address and scheme).
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$method = $_SERVER['REQUEST_METHOD'];

switch ($path) {
case '/':
    setcookie('session', 'abc123', ['path' => '/', 'httponly' => true]);
    setcookie('theme', 'dark', ['path' => '/']);
    header('Content-Type: text/html; charset=utf-8');
    echo "<!doctype html><title>app</title><h1>Hello from PHP</h1>\n";
    break;
case '/whoami':
    header('Content-Type: application/json');
    echo json_encode([
        'cookies' => $_COOKIE,
        'user' => $_SERVER['HTTP_X_LHTTP_USER'] ?? null,
        'forwarded_for' => $_SERVER['HTTP_X_FORWARDED_FOR'] ?? null,
        'proto' => $_SERVER['HTTP_X_FORWARDED_PROTO'] ?? null,
        'host' => $_SERVER['HTTP_HOST'] ?? null,
    ]) . "\n";
    break;
case '/form':
    if ($method !== 'POST') { http_response_code(405); header('Allow: POST'); break; }
    header('Content-Type: text/plain');
    echo 'hello ' . ($_POST['name'] ?? '?') . ', ' . count($_POST) . " fields\n";
    break;
case '/upload':
    if ($method !== 'POST' || !isset($_FILES['file'])) { http_response_code(400); echo "no file\n"; break; }
    $file = $_FILES['file'];
    header('Content-Type: text/plain');
    echo hash_file('sha256', $file['tmp_name']) . ' ' . $file['size'] . ' ' . $file['name'] . "\n";
    break;
case '/redirect':
    header('Location: /landing', true, 302);
    break;
case '/etag':
    header('ETag: "v1"');
    if (($_SERVER['HTTP_IF_NONE_MATCH'] ?? '') === '"v1"') { http_response_code(304); break; }
    header('Content-Type: text/plain');
    echo "versioned\n";
    break;
default:
    http_response_code(404);
    header('Content-Type: text/plain');
    echo "no page at $path\n";
}
