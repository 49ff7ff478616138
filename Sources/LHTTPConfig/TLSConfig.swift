/// The `tls:` section: https and wss on the one listener (off while `cert_file` is empty).
public struct TLSConfig: Sendable, Equatable {
    /// PEM certificate chain (the server's certificate first); re-read on SIGHUP.
    public var certFile: String
    /// PEM private key of the certificate; re-read on SIGHUP.
    public var keyFile: String
    /// A second, plain-HTTP listener that answers every request with a redirect to https (nil: none).
    public var redirectFrom: ListenAddress?

    public init(certFile: String = "", keyFile: String = "", redirectFrom: ListenAddress? = nil) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.redirectFrom = redirectFrom
    }

    /// Whether the listener speaks TLS.
    public var isEnabled: Bool { !self.certFile.isEmpty || !self.keyFile.isEmpty }
}

extension TLSConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case certFile = "cert_file"
        case keyFile = "key_file"
        case redirectFrom = "redirect_from"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Empty (or absent) is no redirect; anything else is a `host:port`, parsed as `listen` is.
        let redirect = try c.decodeIfPresent(String.self, forKey: .redirectFrom) ?? ""
        let address = redirect.isEmpty ? nil : try c.decode(ListenAddress.self, forKey: .redirectFrom)
        self.init(
            certFile: try c.decodeIfPresent(String.self, forKey: .certFile) ?? "",
            keyFile: try c.decodeIfPresent(String.self, forKey: .keyFile) ?? "",
            redirectFrom: address
        )
    }
}
