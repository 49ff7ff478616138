/// A first-in first-out queue that holds no memory while empty (a connection's steps and backlog are
/// empty almost always; a `CircularBuffer` keeps its storage, an allocation per idle connection).
struct FIFO<Element> {
    private var items: [Element] = []
    private var head = 0

    var isEmpty: Bool { self.head == self.items.count }
    var count: Int { self.items.count - self.head }
    var first: Element? { self.isEmpty ? nil : self.items[self.head] }

    mutating func append(_ element: Element) {
        self.items.append(element)
    }

    /// Puts `element` before every other.
    mutating func prepend(_ element: Element) {
        if self.head > 0 {
            self.head -= 1
            self.items[self.head] = element
        } else {
            self.items.insert(element, at: 0)
        }
    }

    mutating func popFirst() -> Element? {
        guard !self.isEmpty else { return nil }
        let element = self.items[self.head]
        self.head += 1
        if self.head == self.items.count { self.removeAll() }
        return element
    }

    /// Empties the queue and frees its storage.
    mutating func removeAll() {
        self.items = []
        self.head = 0
    }
}
