#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The connections of a `LoopbackListener`, owned by its thread alone: each one reads its request head,
/// waits for its answer (held), writes it, then drains what the client still sends before the close.
struct LoopbackConnections {
    private enum Phase {
        case reading
        case held
        case writing([UInt8], sent: Int)
        case draining(read: Int)
    }

    private struct Entry {
        var fd: Int32
        var buffer: [UInt8] = []
        /// Monotonic seconds: past it, the connection is closed (none while held: the flow decides).
        var deadline: Double
        var phase = Phase.reading
    }

    /// What a draining connection may still send before it is closed anyway.
    private static let maxDrainedBytes = 64 << 10
    /// How long an answer may take to leave.
    private static let writeSeconds = 5.0

    let limit: Int
    private var entries: [Entry] = []

    init(limit: Int) { self.limit = limit }

    var isEmpty: Bool { entries.isEmpty }

    /// Takes a new connection; at the limit, the oldest one still reading its head makes room (or, if none
    /// is, the new one is closed).
    mutating func add(_ fd: Int32, now: Double) {
        if entries.count >= limit {
            guard let oldest = entries.firstIndex(where: { if case .reading = $0.phase { true } else { false } })
            else { return _ = close(fd) }
            close(entries[oldest].fd)
            entries.remove(at: oldest)
        }
        entries.append(Entry(fd: fd, deadline: now + LoopbackListener.headSeconds))
    }

    /// One `pollfd` per connection, in order.
    func pollDescriptors() -> [pollfd] {
        entries.map { entry in
            let events: Int32
            switch entry.phase {
            case .reading, .draining: events = Int32(POLLIN)
            case .held: events = 0  // hang-ups and errors are reported anyway
            case .writing: events = Int32(POLLOUT)
            }
            return pollfd(fd: entry.fd, events: Int16(events), revents: 0)
        }
    }

    /// The `poll` timeout: until the nearest deadline, or -1 (none).
    func millisecondsToNextDeadline(now: Double) -> Int32 {
        let deadlines = entries.filter { if case .held = $0.phase { false } else { true } }.map(\.deadline)
        guard let nearest = deadlines.min() else { return -1 }
        return Int32(max(0, min(60_000, ((nearest - now) * 1000).rounded(.up))))
    }

    /// Serves the connections `polled` reported (same order as `pollDescriptors`), and closes the late ones.
    mutating func serviceReady(
        _ polled: ArraySlice<pollfd>, now: Double, route: (LoopbackRequestHead) -> LoopbackListener.Route
    ) {
        var open: [Entry] = []
        for (entry, descriptor) in zip(entries, polled) {
            if let kept = service(entry, revents: Int32(descriptor.revents), now: now, route: route) {
                open.append(kept)
            }
        }
        entries = open + entries.dropFirst(polled.count)
    }

    /// Gives every held connection `page` to write.
    mutating func answerHeld(_ page: LoopbackPage) {
        for index in entries.indices {
            if case .held = entries[index].phase {
                startWriting(&entries[index], page.bytes, now: LoopbackListener.now())
            }
        }
    }

    /// Closes the connections that have no answer on the way (the port is closing).
    mutating func closeUnanswered() {
        entries.removeAll { entry in
            switch entry.phase {
            case .reading, .held:
                close(entry.fd)
                return true
            case .writing, .draining: return false
            }
        }
    }

    mutating func closeAll() {
        for entry in entries { close(entry.fd) }
        entries.removeAll()
    }

    // MARK: One connection

    /// The entry after serving it, or nil once it is closed.
    private func service(
        _ entry: Entry, revents: Int32, now: Double, route: (LoopbackRequestHead) -> LoopbackListener.Route
    ) -> Entry? {
        var entry = entry
        switch entry.phase {
        case .reading:
            if revents != 0 {
                // A client may send its request and end its side at once: the head is answered all the same.
                let open = receive(into: &entry.buffer, upTo: LoopbackListener.maxHeadBytes + 1, from: entry.fd)
                if let page = answer(entry.buffer, route: route, held: &entry) {
                    startWriting(&entry, page.bytes, now: now)
                    return flush(entry, now: now)
                }
                if case .held = entry.phase { return entry }
                guard open else { return closed(entry) }
            }
        case .held:
            if revents & Int32(POLLHUP | POLLERR) != 0 { return closed(entry) }
            return entry
        case .writing:
            if revents != 0 { return flush(entry, now: now) }
        case .draining(let read):
            if revents != 0 {
                var discarded: [UInt8] = []
                let open = receive(into: &discarded, upTo: Self.maxDrainedBytes, from: entry.fd)
                let total = read + discarded.count
                guard open, total < Self.maxDrainedBytes else { return closed(entry) }
                entry.phase = .draining(read: total)
            }
        }
        return now >= entry.deadline ? closed(entry) : entry
    }

    /// The page to send for the head in `buffer`, nil while it is incomplete or when `route` holds it.
    private func answer(
        _ buffer: [UInt8], route: (LoopbackRequestHead) -> LoopbackListener.Route, held entry: inout Entry
    ) -> LoopbackPage? {
        guard let end = LoopbackRequestHead.endOfHead(in: buffer) else {
            return buffer.count > LoopbackListener.maxHeadBytes ? .tooLarge : nil
        }
        guard end <= LoopbackListener.maxHeadBytes else { return .tooLarge }
        guard let head = LoopbackRequestHead(buffer[..<end]) else { return .badRequest }
        switch route(head) {
        case .page(let page): return page
        case .hold:
            entry.phase = .held
            entry.buffer = []
            return nil
        }
    }

    private func startWriting(_ entry: inout Entry, _ bytes: [UInt8], now: Double) {
        entry.phase = .writing(bytes, sent: 0)
        entry.buffer = []
        entry.deadline = now + Self.writeSeconds
    }

    /// Writes what the socket takes; once all is sent, stops sending and drains until the linger time.
    private func flush(_ entry: Entry, now: Double) -> Entry? {
        guard case .writing(let bytes, var sent) = entry.phase else { return entry }
        var entry = entry
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(entry.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                sent += count
            } else if count < 0 && errno == EINTR {
                continue
            } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                entry.phase = .writing(bytes, sent: sent)
                return entry
            } else {
                return closed(entry)
            }
        }
        shutdown(entry.fd, Int32(SHUT_WR))
        entry.phase = .draining(read: 0)
        entry.deadline = now + LoopbackListener.lingerSeconds
        return entry
    }

    /// Reads what is there (up to `limit` bytes in `buffer`); false at end of stream or on an error.
    private func receive(into buffer: inout [UInt8], upTo limit: Int, from fd: Int32) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while buffer.count < limit {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer += chunk[..<min(count, limit - buffer.count)]
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
            }
        }
        return true
    }

    private func closed(_ entry: Entry) -> Entry? {
        close(entry.fd)
        return nil
    }
}
