import Foundation
import Logging
import NIOConcurrencyHelpers

/// What the two log formats (``TextLogHandler``, ``JSONLogHandler``) share: where lines go and which
/// metadata a line carries.
public enum LogLines {
    private static let lock = NIOLock()

    /// Writes a whole line to standard error at once (lines from several threads never interleave).
    public static let standardError: @Sendable (String) -> Void = { line in
        lock.withLock { FileHandle.standardError.write(Data(line.utf8)) }
    }
}

extension LogHandler {
    /// The handler's metadata, then its provider's, then the call's (a later one wins a key).
    func mergedMetadata(_ event: LogEvent) -> Logger.Metadata {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let metadata = event.metadata { merged.merge(metadata) { $1 } }
        return merged
    }
}
