import Foundation

enum FileHandleOutput {
    /// Unbuffered: a killed process does not lose it.
    static func standardError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
