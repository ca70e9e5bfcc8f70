import ClientSupport
import NIOSSL
import Testing

@Suite struct ClientTLSTests {
    @Test func everyVerificationRequiresTLS12() {
        for v: ClientTLS.Verification in [.systemTrustStore, .customCA(pemFile: "/ca.pem"), .insecureNoVerification] {
            #expect(ClientTLS.configuration(v).minimumTLSVersion == .tlsv12)
        }
    }

    @Test func systemTrustStoreVerifiesFully() {
        let c = ClientTLS.configuration(.systemTrustStore)
        #expect(c.certificateVerification == .fullVerification)
        #expect(c.trustRoots == TLSConfiguration.makeClientConfiguration().trustRoots)
    }

    @Test func customCAVerifiesAgainstTheFile() {
        let c = ClientTLS.configuration(.customCA(pemFile: "/etc/swallow/ca.pem"))
        #expect(c.certificateVerification == .fullVerification)
        #expect(c.trustRoots == .file("/etc/swallow/ca.pem"))
    }

    @Test func insecureVerifiesNothing() {
        #expect(ClientTLS.configuration(.insecureNoVerification).certificateVerification == .none)
    }

    @Test(arguments: [
        ("smtp.example.com", nil, "smtp.example.com"),
        ("192.0.2.1", "mail.example.com", "mail.example.com"),
        ("smtp.example.com", "other.example.net", "other.example.net"),
        ("192.0.2.1", nil, nil),
        ("2001:db8::1", nil, nil),
        ("::1", nil, nil),
        ("mail.example.com", "198.51.100.7", nil),
    ] as [(String, String?, String?)])
    func serverHostnameIsNeverAnIPLiteral(host: String, serverName: String?, expected: String?) {
        #expect(ClientTLS.serverHostname(host: host, serverName: serverName) == expected)
    }

    @Test func contextAndHandlerAreBuilt() throws {
        let tls = try ClientTLS(verification: .insecureNoVerification, host: "127.0.0.1", serverName: "localhost")
        #expect(tls.serverHostname == "localhost")
        _ = try tls.makeHandler()
    }

    @Test func aMissingCAFileFailsBeforeConnecting() {
        #expect(throws: (any Error).self) {
            try ClientTLS(verification: .customCA(pemFile: "/nonexistent/swallow-ca.pem"), host: "localhost", serverName: nil)
        }
    }
}
