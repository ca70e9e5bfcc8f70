import MIME

/// RFC 5256 THREAD: ORDEREDSUBJECT and REFERENCES, producing the trees of a THREAD response.
///
/// Dates are the sent date (`Date:`, else INTERNALDATE), ties broken by sequence number. The
/// algorithms work on arrays of indexes (no recursion over message data), so deep reference chains
/// are safe.
/// - SeeAlso: RFC 5256 §3 (THREAD), §2.1 (base subject)
public enum MessageThreader {
    /// `THREAD=ORDEREDSUBJECT`: messages grouped by base subject; in each group the first message
    /// (by sent date) is the parent of all the others; groups ordered by their first message.
    public static func orderedSubject(_ messages: [SortableMessage]) -> [ThreadNode] {
        let dates = messages.map(\.sentDate)
        let order = messages.indices.sorted { a, b in
            dates[a] != dates[b] ? dates[a] < dates[b] : messages[a].sequenceNumber < messages[b].sequenceNumber
        }
        var groups: [String: Int] = [:]
        var threads: [ThreadNode] = []
        for i in order {
            let subject = BaseSubject(subject: messages[i].headers["Subject"] ?? "").text
            if let g = groups[subject] {
                threads[g].children.append(ThreadNode(message: messages[i].id))
            } else {
                groups[subject] = threads.count
                threads.append(ThreadNode(message: messages[i].id))
            }
        }
        return threads
    }

    /// `THREAD=REFERENCES`: Message-ID / References / In-Reply-To linking with dummy parents, dummies
    /// pruned, roots grouped by base subject, siblings sorted by sent date.
    public static func references(_ messages: [SortableMessage]) -> [ThreadNode] {
        var t = Threading()
        t.run(messages)
        return t.result()
    }

    /// The containers of RFC 5256 §3 (REFERENCES), in flat arrays.
    struct Threading {
        struct Container {
            var message: Int?
            var parent: Int?
            var children: [Int] = []
        }

        var containers: [Container] = []
        var byID: [String: Int] = [:]
        var messages: [SortableMessage] = []
        var dates: [Int64] = []

        mutating func container(for id: String) -> Int {
            if let c = byID[id] { return c }
            containers.append(Container())
            byID[id] = containers.count - 1
            return containers.count - 1
        }

        /// `true` when `ancestor` is `node` or above it.
        func isAncestor(_ ancestor: Int, of node: Int) -> Bool {
            var current: Int? = node
            var steps = 0
            while let c = current, steps <= containers.count {
                if c == ancestor { return true }
                current = containers[c].parent
                steps += 1
            }
            return false
        }

        mutating func link(parent: Int, child: Int) {
            if let old = containers[child].parent { containers[old].children.removeAll { $0 == child } }
            containers[child].parent = parent
            containers[parent].children.append(child)
        }

        mutating func unlink(_ child: Int) {
            if let old = containers[child].parent { containers[old].children.removeAll { $0 == child } }
            containers[child].parent = nil
        }

        mutating func run(_ input: [SortableMessage]) {
            messages = input
            dates = input.map(\.sentDate)
            for (index, message) in input.enumerated() {
                // Step 1: the message's container (a duplicate or missing Message-ID gets a unique one).
                var id = MessageIDs.parse(message.headers["Message-ID"] ?? "").first ?? ""
                if id.isEmpty || (byID[id].map { containers[$0].message != nil } ?? false) { id = "\u{0}\(index)" }
                let own = container(for: id)
                containers[own].message = index
                var references = MessageIDs.parse(message.headers["References"] ?? "")
                if references.isEmpty, let first = MessageIDs.parse(message.headers["In-Reply-To"] ?? "").first {
                    references = [first]
                }
                // 1A: link the references in order, without overriding an existing parent or making a loop.
                var previous: Int?
                for ref in references where ref != id {
                    let c = container(for: ref)
                    if let p = previous, containers[c].parent == nil, !isAncestor(c, of: p) {
                        link(parent: p, child: c)
                    }
                    previous = c
                }
                // 1B: the last reference is the parent of the message.
                if let p = previous, !isAncestor(own, of: p) {
                    link(parent: p, child: own)
                } else if previous == nil {
                    unlink(own)
                }
            }
        }

        func date(of c: Int) -> (Int64, UInt32) {
            if let m = containers[c].message { return (dates[m], messages[m].sequenceNumber) }
            if let first = containers[c].children.first { return date(ofFirstMessageUnder: first) }
            return (.max, .max)
        }

        func date(ofFirstMessageUnder c: Int) -> (Int64, UInt32) {
            var current = c
            var steps = 0
            while containers[current].message == nil, let next = containers[current].children.first, steps <= containers.count {
                current = next
                steps += 1
            }
            if let m = containers[current].message { return (dates[m], messages[m].sequenceNumber) }
            return (.max, .max)
        }

        func subject(of c: Int) -> BaseSubject {
            var current = c
            if containers[current].message == nil, let first = containers[current].children.first { current = first }
            guard let m = containers[current].message else { return BaseSubject(subject: "") }
            return BaseSubject(subject: messages[m].headers["Subject"] ?? "")
        }

        mutating func sortChildren(_ c: Int) {
            let sorted = containers[c].children.sorted { date(of: $0) < date(of: $1) }
            containers[c].children = sorted
        }

        /// Steps 2–6.
        mutating func result() -> [ThreadNode] {
            // Step 2: the root set.
            var roots = containers.indices.filter { containers[$0].parent == nil }
            // Step 3: prune dummies, bottom up (children before parents: a post-order walk).
            var postOrder: [Int] = []
            var stack = roots.map { ($0, false) }
            while let (c, visited) = stack.popLast() {
                if visited { postOrder.append(c); continue }
                stack.append((c, true))
                for child in containers[c].children { stack.append((child, false)) }
            }
            for c in postOrder where containers[c].message == nil {
                let isRoot = containers[c].parent == nil
                let children = containers[c].children
                if children.isEmpty {
                    unlink(c)
                    if isRoot { roots.removeAll { $0 == c } }
                } else if !isRoot {
                    // Promote the children to the dummy's level, in its place.
                    let parent = containers[c].parent!
                    let position = containers[parent].children.firstIndex(of: c) ?? containers[parent].children.count
                    containers[parent].children.remove(at: position)
                    containers[parent].children.insert(contentsOf: children, at: position)
                    for child in children { containers[child].parent = parent }
                    containers[c].children = []
                    containers[c].parent = nil
                } else if children.count == 1 {
                    // A root dummy with one child: the child becomes the root.
                    let child = children[0]
                    containers[child].parent = nil
                    containers[c].children = []
                    if let i = roots.firstIndex(of: c) { roots[i] = child }
                }
            }
            // Step 4: sort the children of dummies at the root level (for their dates), then the roots.
            for c in postOrder { sortChildren(c) }
            roots.sort { date(of: $0) < date(of: $1) }
            // Step 5: group the roots by base subject.
            var table: [String: Int] = [:]
            for r in roots {
                let s = subject(of: r)
                guard !s.text.isEmpty else { continue }
                guard let existing = table[s.text] else { table[s.text] = r; continue }
                let existingIsDummy = containers[existing].message == nil
                let currentIsDummy = containers[r].message == nil
                if (currentIsDummy && !existingIsDummy)
                    || (!currentIsDummy && !existingIsDummy && subject(of: existing).isReplyOrForward && !s.isReplyOrForward) {
                    table[s.text] = r
                }
            }
            var merged: [Int] = []
            var removed = Set<Int>()
            for r in roots where !removed.contains(r) {
                let s = subject(of: r)
                guard !s.text.isEmpty, let target = table[s.text], target != r, !removed.contains(target) else {
                    merged.append(r)
                    continue
                }
                let targetIsDummy = containers[target].message == nil
                let currentIsDummy = containers[r].message == nil
                if targetIsDummy && currentIsDummy {
                    for child in containers[r].children { containers[child].parent = target }
                    containers[target].children += containers[r].children
                    containers[r].children = []
                    removed.insert(r)
                } else if targetIsDummy {
                    link(parent: target, child: r)
                    removed.insert(r)
                } else if !currentIsDummy && s.isReplyOrForward && !subject(of: target).isReplyOrForward {
                    link(parent: target, child: r)
                    removed.insert(r)
                } else {
                    // A new dummy holding both, in the target's place.
                    containers.append(Container())
                    let dummy = containers.count - 1
                    link(parent: dummy, child: target)
                    link(parent: dummy, child: r)
                    table[s.text] = dummy
                    if let i = merged.firstIndex(of: target) {
                        merged[i] = dummy
                    } else {
                        merged.append(dummy)
                        removed.insert(target)
                    }
                    removed.insert(r)
                }
            }
            // Step 6: sort every set of siblings (a walk from each root).
            var walk = merged
            while let c = walk.popLast() {
                sortChildren(c)
                walk.append(contentsOf: containers[c].children)
            }
            merged.sort { date(of: $0) < date(of: $1) }
            return merged.map { node($0) }
        }

        /// The tree under `c` as thread nodes (built bottom-up, without recursion).
        func node(_ c: Int) -> ThreadNode {
            var order: [Int] = []
            var stack = [c]
            while let x = stack.popLast() {
                order.append(x)
                stack.append(contentsOf: containers[x].children)
            }
            var built: [Int: ThreadNode] = [:]
            for x in order.reversed() {
                let children = containers[x].children.map { built.removeValue(forKey: $0)! }
                built[x] = ThreadNode(message: containers[x].message.map { messages[$0].id }, children: children)
            }
            return built[c]!
        }
    }
}

/// `msg-id`s in Message-ID, References and In-Reply-To fields.
enum MessageIDs {
    /// The `<…>` identifiers in order, brackets removed, comments and other words ignored; a field
    /// without brackets yields its one word (a broken but common Message-ID).
    static func parse(_ value: String) -> [String] {
        var ids: [String] = []
        var current: String?
        var depth = 0
        for c in value {
            if current == nil {
                if c == "(" { depth += 1 } else if c == ")" { depth = max(0, depth - 1) } else if c == "<", depth == 0 { current = "" }
            } else if c == ">" {
                if let id = current, !id.isEmpty { ids.append(id) }
                current = nil
            } else if c == "<" {
                current = ""
            } else if !c.isWhitespace {
                current!.append(c)
            }
        }
        if ids.isEmpty, !value.contains("<") {
            let word = value.split(whereSeparator: { $0.isWhitespace }).first.map(String.init) ?? ""
            if word.contains("@") { ids.append(word) }
        }
        return ids
    }
}
