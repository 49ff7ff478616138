/// One section of `/healthz` reported by a part of the node the core does not know by name (the cluster
/// link): its JSON key, whether it makes the node "degraded", and its fields in order.
public struct HealthReport: Sendable, Equatable {
    /// A JSON scalar.
    public enum Value: Sendable, Equatable {
        case string(String)
        case int(Int)
    }

    /// One `"name": value` pair.
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: Value

        public init(_ name: String, _ value: Value) {
            self.name = name
            self.value = value
        }
    }

    /// The JSON key of the section (`cluster`).
    public var name: String
    /// The node still serves its own clients but not everything works (`"status":"degraded"`, HTTP 200).
    public var isDegraded: Bool
    public var fields: [Field]

    public init(name: String, isDegraded: Bool, fields: [Field]) {
        self.name = name
        self.isDegraded = isDegraded
        self.fields = fields
    }

    /// The value of the field `name`, if any.
    public subscript(name: String) -> Value? {
        self.fields.first { $0.name == name }?.value
    }
}
