// libFuzzer entry point for the wire format: the LHTTP parser, multipart, channel lists, and the
// serializer round trip. Build and run with `make fuzz` (release, -sanitize=fuzzer,address).
// Only the entry point lives here: libFuzzer provides `main`.
import LHTTPProtocol
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func lhttpFuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    let limits = LHTTPLimits(maxMessageBytes: 64 * 1024, maxHeaders: 32, maxHeaderLineBytes: 4096, maxChannelsPerMessage: 16, maxChannelNameBytes: 128)
    let parser = LHTTPParser(limits: limits)
    guard let message = try? parser.parse(bytes) else { return 0 }
    // Whatever parses must serialize and parse back to the same message.
    let again: LHTTPMessage
    do {
        again = try parser.parse(try message.serialized())
    } catch {
        fatalError("a parsed message does not re-parse after serialization: \(error)")
    }
    precondition(again == message, "serialization round trip changed the message")
    for name in [LHTTPChannelList.subscribeHeader, LHTTPChannelList.publishHeader, LHTTPChannelList.unsubscribeHeader] {
        if let channels = try? message.channels(name, limits: limits) {
            precondition(channels.count <= limits.maxChannelsPerMessage)
            precondition(channels.allSatisfy { !$0.isEmpty && $0.utf8.count <= limits.maxChannelNameBytes })
        }
    }
    if let parts = try? message.multipartParts(limits: limits) {
        let total = parts.reduce(0) { $0 + $1.body.readableBytes }
        precondition(total <= message.body.readableBytes, "parts longer than the body")
    }
    return 0
}
