import Foundation

/// Writes to standard error unbuffered (a killed process must not lose its last lines).
enum FileHandleWriter {
    static func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}
