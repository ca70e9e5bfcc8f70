import MailCore
import TOMLKit

/// One configuration key, declared once in its section's table: its TOML name, the one-line
/// documentation the README's reference shows, how a value is read (type, range, normalisation)
/// into the section, and how the section's value is written back as TOML. The parser, the
/// unknown-key check, `swallow config reference` (the README's reference) and `swallow config show`
/// are all derived from these tables.
struct ConfigKey<Section> {
    /// The TOML key.
    let name: String
    /// One line for the reference.
    let doc: String
    /// TOML text the reference shows instead of the default (for a key whose default depends on
    /// the machine, or an optional key shown with an example value).
    var example: String?
    /// The reference shows the key commented out (optional, no default).
    var commented = false
    /// `config show` masks the value.
    var secret = false
    /// Reads a value into the section (the value's type and range are checked here).
    let read: (inout Section, any TOMLValueConvertible, ConfigValueReader) throws -> Void
    /// The section's value as TOML text; `nil` when unset.
    let value: (Section) -> String?
}

extension ConfigKey {
    /// An integer of at least `min` (and at most `max`).
    static func int(_ name: String, _ path: WritableKeyPath<Section, Int>, min: Int, max: Int? = nil, _ doc: String) -> Self {
        ConfigKey(name: name, doc: doc, read: { s, v, r in s[keyPath: path] = try r.int(v, min: min, max: max) },
                  value: { String($0[keyPath: path]) })
    }

    /// `true` or `false`.
    static func bool(_ name: String, _ path: WritableKeyPath<Section, Bool>, _ doc: String) -> Self {
        ConfigKey(name: name, doc: doc, read: { s, v, r in s[keyPath: path] = try r.bool(v) },
                  value: { $0[keyPath: path] ? "true" : "false" })
    }

    /// A string, normalised by `transform`.
    static func string(_ name: String, _ path: WritableKeyPath<Section, String>, example: String? = nil,
                       transform: @escaping (String) -> String = { $0 }, _ doc: String) -> Self {
        ConfigKey(name: name, doc: doc, example: example, read: { s, v, r in s[keyPath: path] = transform(try r.string(v)) },
                  value: { TOMLText.string($0[keyPath: path]) })
    }

    /// A string that may be absent (no default).
    static func optionalString(_ name: String, _ path: WritableKeyPath<Section, String?>, example: String? = nil,
                               commented: Bool = false, transform: @escaping (String) -> String = { $0 }, _ doc: String) -> Self {
        ConfigKey(name: name, doc: doc, example: example, commented: commented,
                  read: { s, v, r in s[keyPath: path] = transform(try r.string(v)) },
                  value: { $0[keyPath: path].map(TOMLText.string) })
    }

    /// An array of strings, each normalised by `transform`.
    static func strings(_ name: String, _ path: WritableKeyPath<Section, [String]>, transform: @escaping (String) -> String = { $0 },
                        _ doc: String) -> Self {
        ConfigKey(name: name, doc: doc, read: { s, v, r in s[keyPath: path] = try r.strings(v).map(transform) },
                  value: { TOMLText.strings($0[keyPath: path]) })
    }
}

/// A section (`[smtp]`, …; the top level has no name): its keys, where it lives in the configuration,
/// and the comment on its header line in the reference.
struct ConfigSection<Section> {
    let name: String
    let doc: String?
    let path: WritableKeyPath<ServerConfiguration, Section>
    let keys: [ConfigKey<Section>]
    /// Names of the tables that may stand in this one besides its keys (the top level's sections).
    var tables: Set<String> = []

    var erased: AnyConfigSection {
        AnyConfigSection(
            name: name, doc: doc,
            apply: { table, c, reader in
                try reader.checkKeys(table, path: name, allowed: Set(keys.map(\.name)), also: tables)
                for key in keys {
                    guard let v = table[key.name] else { continue }
                    try key.read(&c[keyPath: path], v, ConfigValueReader(reader: reader, key: name.isEmpty ? key.name : "\(name).\(key.name)"))
                }
            },
            lines: { c, mode in
                keys.map { key in
                    let shown: String?
                    switch mode {
                    case .reference: shown = key.example ?? key.value(c[keyPath: path])
                    case .effective: shown = key.value(c[keyPath: path]).map { key.secret ? TOMLText.string("********") : $0 }
                    }
                    let commented = mode == .reference ? key.commented || shown == nil : shown == nil
                    return ConfigLine(text: "\(commented ? "# " : "")\(key.name) = \(shown ?? "…")", doc: key.doc)
                }
            })
    }
}

/// One line of a rendered configuration: the TOML text and the comment after it.
struct ConfigLine {
    var text: String
    var doc: String?

    /// Comments start in this column; a longer line has its comment two spaces after it, or on the
    /// next line when both would not fit in ``width``.
    static let commentColumn = 38
    static let width = 120

    var rendered: String {
        guard let doc, !doc.isEmpty else { return text }
        let pad = Self.commentColumn - text.count
        if pad >= 1 { return text + String(repeating: " ", count: pad) + "# " + doc }
        if text.count + 4 + doc.count <= Self.width { return text + "  # " + doc }
        return text + "\n" + String(repeating: " ", count: Self.commentColumn) + "# " + doc
    }
}

/// What a section renders: the reference (defaults and examples) or the configuration in force.
enum ConfigRendering { case reference, effective }

/// A section with its type erased, so that the sections of one configuration can live in one list.
struct AnyConfigSection {
    let name: String
    let doc: String?
    let apply: (TOMLTable, inout ServerConfiguration, ConfigReader) throws -> Void
    let lines: (ServerConfiguration, ConfigRendering) -> [ConfigLine]
}

/// TOML literals.
enum TOMLText {
    static func string(_ s: String) -> String { QuotedLiteral.quote(s) }

    static func strings(_ list: [String]) -> String { "[" + list.map(string).joined(separator: ", ") + "]" }
}

/// Reads one key's value, with errors that name the key and its line.
struct ConfigValueReader {
    let reader: ConfigReader
    /// The dotted key, e.g. `smtp.listen`.
    let key: String

    func fail(_ message: String) -> ConfigurationError { reader.error(key, message) }

    func string(_ v: any TOMLValueConvertible) throws -> String {
        guard v.type == .string, let s = v.string else { throw fail("expected a string, found \(v.type)") }
        return s
    }

    func int(_ v: any TOMLValueConvertible, min: Int, max: Int? = nil) throws -> Int {
        guard v.type == .int, let n = v.int else { throw fail("expected an integer, found \(v.type)") }
        guard n >= min else { throw fail("must be at least \(min)") }
        if let max, n > max { throw fail("must be at most \(max)") }
        return n
    }

    func strings(_ v: any TOMLValueConvertible) throws -> [String] {
        guard v.type == .array, let a = v.array else { throw fail("expected an array of strings, found \(v.type)") }
        var out: [String] = []
        for e in a {
            guard e.type == .string, let s = e.string else { throw fail("expected an array of strings, found an element of type \(e.type)") }
            out.append(s)
        }
        return out
    }

    func bool(_ v: any TOMLValueConvertible) throws -> Bool {
        guard v.type == .bool, let b = v.bool else { throw fail("expected true or false, found \(v.type)") }
        return b
    }
}

/// Finds the line a key is on, and checks a table's keys.
struct ConfigReader {
    let lines: [Substring]

    init(text: String) { lines = text.split(separator: "\n", omittingEmptySubsequences: false) }

    /// The line of `section.key` (or `key` at top level), found by scanning table headers.
    func line(of dotted: String) -> Int? {
        let parts = dotted.split(separator: ".").map(String.init)
        let section = parts.count > 1 ? parts.dropLast().joined(separator: ".") : ""
        let key = parts.last ?? ""
        var current = ""
        for (i, raw) in lines.enumerated() {
            let l = raw.drop(while: { $0 == " " || $0 == "\t" })
            if l.hasPrefix("[") {
                current = l.trimmingCharacters(in: "[] \t\r").split(separator: "]").first.map(String.init) ?? ""
                if current == dotted { return i + 1 }
                continue
            }
            if current == section, l.hasPrefix(key) {
                let after = l.dropFirst(key.count).drop(while: { $0 == " " || $0 == "\t" })
                if after.hasPrefix("=") { return i + 1 }
            }
        }
        return nil
    }

    func error(_ key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(key: key, line: line(of: key), message: message)
    }

    /// Every key of `t` must be one of `allowed` (keys) or `also` (tables); the error lists them.
    func checkKeys(_ t: TOMLTable, path: String, allowed: Set<String>, also: Set<String>) throws {
        let known = allowed.union(also)
        for k in t.keys.sorted() where !known.contains(k) {
            let full = path.isEmpty ? k : "\(path).\(k)"
            throw error(full, "unknown key (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    func table(_ t: TOMLTable, _ key: String) throws -> TOMLTable? {
        guard let v = t[key] else { return nil }
        guard v.type == .table, let tt = v.table else { throw error(key, "expected a table [\(key)], found \(v.type)") }
        return tt
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
