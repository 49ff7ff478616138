<?php
// A chat backend for lhttpd, in plain PHP: run it with
//   LHTTP_WEBHOOK_SECRET=change-me php -S 127.0.0.1:9000 examples/php/router.php
// and point lhttpd's hooks and routes at it, with its channels locked down to the app (see the README's
// "PHP" section: `channels: [{prefix: "", publish: none}]`).
//
// lhttpd owns the websockets; this script only answers one HTTP POST per event (docs/webhooks.md).

$secret = getenv('LHTTP_WEBHOOK_SECRET') ?: '';
$body = file_get_contents('php://input');

// Every call is signed when lhttpd has a webhook.secret: refuse anything else.
if ($secret !== '') {
    $expected = 'sha256=' . hash_hmac('sha256', $body, $secret);
    if (!hash_equals($expected, $_SERVER['HTTP_X_LHTTP_SIGNATURE'] ?? '')) {
        http_response_code(401);
        exit;
    }
}

$event = json_decode($body, true);
if (!is_array($event)) {
    http_response_code(400);
    exit;
}

function answer(array $actions): void {
    header('Content-Type: application/json');
    echo json_encode($actions);
}

$user = $event['connection']['meta']['user'] ?? null;

switch (parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH)) {
    case '/connect.php':
        // The user comes from ?token=... or a `token` cookie; no token, no websocket.
        parse_str($event['http']['query'] ?? '', $query);
        $cookies = [];
        foreach (explode(';', $event['http']['headers']['cookie'] ?? '') as $pair) {
            $parts = explode('=', trim($pair), 2);
            if (count($parts) === 2) { $cookies[$parts[0]] = $parts[1]; }
        }
        $token = $query['token'] ?? $cookies['token'] ?? '';
        if ($token === '') {
            http_response_code(401);
            exit;
        }
        answer(['meta' => ['user' => $token], 'reply' => ['command' => 'welcome', 'body' => "hello $token"]]);
        break;

    case '/subscribe.php':
        // Anyone may join any room except "admin".
        $refused = array_values(array_filter($event['channels'], fn($c) => $c === 'admin'));
        if ($refused) {
            http_response_code(403);
            answer(['refused' => $refused]);
        } else {
            http_response_code(204);
        }
        break;

    case '/chat.php':
        // "<user>: <text>" to the room, and an ack to the sender only. A chat message without text (the
        // original chat demo subscribes with one) is no chat line. The room is the app's: lhttpd's
        // `channels:` options let no client publish there itself, so nobody can speak as another user.
        $room = $event['headers']['room'] ?? 'lobby';
        if (trim($event['body'] ?? '') === '') {
            http_response_code(204);
            break;
        }
        answer([
            'publish' => [['channels' => [$room], 'command' => 'chat', 'body' => "$user: {$event['body']}"]],
            'reply' => ['command' => 'ack', 'body' => 'sent'],
        ]);
        break;

    case '/disconnect.php':
        error_log("lhttpd: $user left with code {$event['code']}");
        http_response_code(204);
        break;

    default:
        http_response_code(404);
}
