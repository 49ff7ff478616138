import Testing

@testable import LHTTPServer

/// A refused upgrade is logged with its request target, never with the connection token it carried.
@Suite struct LoggedTargetTests {
    @Test func aTokenInTheQueryIsLeftOut() {
        #expect(HTTPRequestRouter.loggedTarget("/ws?token=eyJhbGciOi.abc.def&room=1") == "/ws?token=…&room=1")
        #expect(HTTPRequestRouter.loggedTarget("/ws?a=1&token=secret") == "/ws?a=1&token=…")
        #expect(HTTPRequestRouter.loggedTarget("/publish?channel=room") == "/publish?channel=room")
        #expect(HTTPRequestRouter.loggedTarget("/healthz") == "/healthz")
        #expect(HTTPRequestRouter.loggedTarget("/x?" + String(repeating: "a", count: 500)).count == 200)
    }
}
