/// One `key:value` line of an LHTTP message, as the sender spelled it (trimmed of surrounding whitespace).
public struct LHTTPHeader: Sendable, Hashable {
    /// The key, in the sender's spelling. Compared case-insensitively by ``LHTTPHeaders``.
    public var name: String
    /// The value: everything after the first `:`, trimmed; later colons stay.
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The ordered header list of an LHTTP message or part.
///
/// Order and spelling are kept for serialization; look-ups match keys case-insensitively
/// (ASCII). A key may occur more than once; ``values(for:)`` returns every occurrence.
public struct LHTTPHeaders: Sendable, Equatable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    @usableFromInline
    var storage: [LHTTPHeader]

    public init() { self.storage = [] }

    public init(_ headers: [LHTTPHeader]) { self.storage = headers }

    public init(_ pairs: [(String, String)]) {
        self.storage = pairs.map { LHTTPHeader(name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    public var startIndex: Int { self.storage.startIndex }
    public var endIndex: Int { self.storage.endIndex }
    public subscript(position: Int) -> LHTTPHeader { self.storage[position] }

    /// The first value for `name` (case-insensitive), or nil.
    public subscript(name: String) -> String? {
        self.storage.first { $0.name.lhttpEqualsIgnoringCase(name) }?.value
    }

    /// Every value for `name` (case-insensitive), in message order.
    public func values(for name: String) -> [String] {
        self.storage.compactMap { $0.name.lhttpEqualsIgnoringCase(name) ? $0.value : nil }
    }

    /// Whether a header named `name` (case-insensitive) is present.
    public func contains(_ name: String) -> Bool {
        self.storage.contains { $0.name.lhttpEqualsIgnoringCase(name) }
    }

    /// Appends a header, keeping any existing ones of the same name.
    public mutating func add(name: String, value: String) {
        self.storage.append(LHTTPHeader(name: name, value: value))
    }

    /// Sets the value of the first header named `name` and removes later ones; appends if absent.
    public mutating func replaceOrAdd(name: String, value: String) {
        guard let first = self.storage.firstIndex(where: { $0.name.lhttpEqualsIgnoringCase(name) }) else {
            self.add(name: name, value: value)
            return
        }
        self.storage[first].value = value
        var index = self.storage.index(after: first)
        while index < self.storage.endIndex {
            if self.storage[index].name.lhttpEqualsIgnoringCase(name) {
                self.storage.remove(at: index)
            } else {
                index += 1
            }
        }
    }

    /// Removes every header named `name` (case-insensitive).
    public mutating func remove(name: String) {
        self.storage.removeAll { $0.name.lhttpEqualsIgnoringCase(name) }
    }
}

extension String {
    /// ASCII case-insensitive equality; header keys are ASCII in practice and this avoids Unicode folding.
    @inlinable
    func lhttpEqualsIgnoringCase(_ other: String) -> Bool {
        guard self.utf8.count == other.utf8.count else { return false }
        let fast = self.utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b in Self.lhttpEqualsIgnoringCase(a, b) }
        }
        if let result = fast ?? nil { return result }
        return Self.lhttpEqualsIgnoringCase(Array(self.utf8)[...], Array(other.utf8)[...])
    }

    @inlinable
    static func lhttpEqualsIgnoringCase<C: RandomAccessCollection<UInt8>>(_ a: C, _ b: C) -> Bool where C.Index == Int {
        var i = a.startIndex
        var j = b.startIndex
        while i != a.endIndex {
            let x = a[i]
            let y = b[j]
            if x != y {
                let lower = x | 0x20
                guard lower == y | 0x20, lower >= UInt8(ascii: "a"), lower <= UInt8(ascii: "z") else { return false }
            }
            i += 1
            j += 1
        }
        return true
    }
}
