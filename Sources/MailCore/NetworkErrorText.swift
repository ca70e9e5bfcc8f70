/// One short sentence for the low-level errors a client meets (for CLI output and logs), instead of
/// the library's debug description.
public enum NetworkErrorText {
    /// Describes `error` in a few words.
    public static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        let known: [(String, String)] = [
            ("CERTIFICATE_VERIFY_FAILED", "the server's certificate could not be verified (wrong name, expired, or not signed by a trusted CA)"),
            ("WRONG_VERSION_NUMBER", "the server did not answer with TLS"),
            ("Connection refused", "connection refused"),
            ("No route to host", "no route to host"),
            ("Network is unreachable", "network unreachable"),
            ("connectTimeout", "the connection timed out"),
            ("Connection reset", "the connection was reset"),
            ("unableToResolve", "the host name could not be resolved"),
            ("Name or service not known", "the host name could not be resolved"),
        ]
        for (needle, sentence) in known where text.contains(needle) { return sentence }
        return text
    }
}
