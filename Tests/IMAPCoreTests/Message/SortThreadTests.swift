import IMAPCore
import MIME
import Testing

@Suite struct SortThreadTests {
    static func message(_ seq: UInt32, _ header: String, size: Int = 100, day: Int = 1) -> SortableMessage {
        SortableMessage(id: seq, sequenceNumber: seq, size: size,
                        internalDate: IMAPDateTime(date: IMAPDate(year: 2025, month: 1, day: day), hour: 0, minute: 0, second: 0, zoneMinutes: 0),
                        headers: MIMEParser().parseHeaders(Array(header.utf8)))
    }

    @Test(arguments: [
        ("Re: hello", "hello", true), ("RE: Fwd: [list] hello (fwd)", "hello", true), ("[list] hello", "hello", false),
        ("[fwd: Re: hello]", "hello", true), ("  hello   world\t ", "hello world", false), ("Fw:hello", "hello", true),
        ("[list]", "[list]", false), ("Re: [list] Re: x", "x", true), ("=?utf-8?q?Re=3A_caf=C3=A9?=", "café", true),
        ("Reply to this", "reply to this", false), ("", "", false),
    ])
    func baseSubject(_ raw: String, _ base: String, _ reply: Bool) {
        let s = BaseSubject(subject: raw)
        #expect(s.text == base)
        #expect(s.isReplyOrForward == reply)
    }

    let messages = [
        message(1, "From: Zed <z@x>\nTo: b@x\nSubject: Re: beta\nDate: 2 Jan 2025 00:00 +0000\n", size: 300, day: 5),
        message(2, "From: adam@x\nTo: c@x\nCc: Mary <mary@x>\nSubject: alpha\nDate: 1 Jan 2025 12:00 -0500\n", size: 200, day: 4),
        message(3, "From: \"M\" <m@x>\nTo: a@x\nSubject: [list] beta\n", size: 200, day: 3),
        message(4, "From: adam@x\nSubject: gamma\nDate: 1 Jan 2025 18:00 +0100\n", size: 50, day: 2),
    ]

    @Test func sortCriteria() {
        #expect(MessageSorter.sort(messages, by: [.init(.arrival)]) == [4, 3, 2, 1])
        // Sent dates: 1 → 2 Jan 00:00Z, 2 → 1 Jan 17:00Z, 3 → (no Date) internal 3 Jan, 4 → 1 Jan 17:00Z.
        #expect(MessageSorter.sort(messages, by: [.init(.date)]) == [2, 4, 1, 3])
        #expect(MessageSorter.sort(messages, by: [.init(.size)]) == [4, 2, 3, 1])
        #expect(MessageSorter.sort(messages, by: [.init(.size, reverse: true)]) == [1, 2, 3, 4])
        #expect(MessageSorter.sort(messages, by: [.init(.from)]) == [2, 4, 3, 1])
        #expect(MessageSorter.sort(messages, by: [.init(.to)]) == [4, 3, 1, 2])
        #expect(MessageSorter.sort(messages, by: [.init(.cc)]) == [1, 3, 4, 2])
        #expect(MessageSorter.sort(messages, by: [.init(.subject), .init(.size, reverse: true)]) == [2, 1, 3, 4])
        #expect(MessageSorter.sort(messages, by: [.init(.subject, reverse: true), .init(.arrival)]) == [4, 3, 1, 2])
        #expect(MessageSorter.sort([], by: [.init(.date)]) == [])
    }

    @Test func orderedSubject() {
        #expect(MessageThreader.orderedSubject(messages) == [
            ThreadNode(message: 2),
            ThreadNode(message: 4),
            ThreadNode(message: 1, children: [ThreadNode(message: 3)]),
        ])
    }

    @Test func referencesLinksRepliesAndDummies() {
        let m = [
            Self.message(1, "Message-ID: <a@x>\nSubject: start\nDate: 1 Jan 2025 10:00 +0000\n"),
            Self.message(2, "Message-ID: <b@x>\nIn-Reply-To: <a@x>\nSubject: Re: start\nDate: 1 Jan 2025 11:00 +0000\n"),
            // References a message we do not have: a dummy parent with two children.
            Self.message(3, "Message-ID: <c@x>\nReferences: <missing@x>\nSubject: other\nDate: 1 Jan 2025 09:00 +0000\n"),
            Self.message(4, "Message-ID: <d@x>\nReferences: <missing@x>\nSubject: Re: other\nDate: 1 Jan 2025 12:00 +0000\n"),
            // Deeper: references a, b.
            Self.message(5, "Message-ID: <e@x>\nReferences: <a@x> <b@x>\nSubject: Re: start\nDate: 1 Jan 2025 13:00 +0000\n"),
            // Same base subject as 1 but no references: joins the thread as a child (reply subject).
            Self.message(6, "Message-ID: <f@x>\nSubject: Re: start\nDate: 1 Jan 2025 14:00 +0000\n"),
            // Alone.
            Self.message(7, "Message-ID: <g@x>\nSubject: lonely\nDate: 1 Jan 2025 08:00 +0000\n"),
        ]
        // Dovecot 2.3.19 on these seven messages: THREAD REFERENCES → (7)((3)(4))(1 (2 5)(6)),
        // THREAD ORDEREDSUBJECT → (7)(3 4)(1 (2)(5)(6)).
        #expect(MessageThreader.orderedSubject(m) == [
            ThreadNode(message: 7),
            ThreadNode(message: 3, children: [ThreadNode(message: 4)]),
            ThreadNode(message: 1, children: [ThreadNode(message: 2), ThreadNode(message: 5), ThreadNode(message: 6)]),
        ])
        #expect(MessageThreader.references(m) == [
            ThreadNode(message: 7),
            ThreadNode(message: nil, children: [ThreadNode(message: 3), ThreadNode(message: 4)]),
            ThreadNode(message: 1, children: [
                ThreadNode(message: 2, children: [ThreadNode(message: 5)]),
                ThreadNode(message: 6),
            ]),
        ])
    }

    @Test func referencesSurvivesLoopsDuplicatesAndLongChains() {
        var m = [
            Self.message(1, "Message-ID: <a@x>\nReferences: <b@x>\nSubject: loop\n"),
            Self.message(2, "Message-ID: <b@x>\nReferences: <a@x>\nSubject: loop\n"),
            Self.message(3, "Message-ID: <a@x>\nSubject: duplicate id\n"),
        ]
        let threads = MessageThreader.references(m)
        var seen: [UInt32] = []
        var stack = threads
        while let n = stack.popLast() {
            if let id = n.message { seen.append(id) }
            stack.append(contentsOf: n.children)
        }
        #expect(seen.sorted() == [1, 2, 3])
        // A chain of 2,000 replies.
        m = (1...2000).map { i in
            Self.message(UInt32(i), "Message-ID: <m\(i)@x>\n" + (i > 1 ? "In-Reply-To: <m\(i - 1)@x>\n" : "") + "Subject: chain\n")
        }
        let chain = MessageThreader.references(m)
        #expect(chain.count == 1)
        var depth = 0
        var node: ThreadNode? = chain.first
        while let n = node { depth += 1; node = n.children.first }
        #expect(depth == 2000)
    }
}
