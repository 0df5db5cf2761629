/// A key by its exact bytes: the agent keeps `"café"` in NFC and in NFD apart (two keys, two owners), so the
/// model must not let Swift's canonical-equivalence `==` merge them.
struct ModelKey: Hashable, CustomStringConvertible {
    let bytes: [UInt8]

    init(bytes: [UInt8]) { self.bytes = bytes }
    init(_ key: String) { bytes = Array(key.utf8) }

    /// The key as sent: a `String` keeps the scalars it was made of, so NFD stays NFD on the wire.
    var string: String { String(decoding: bytes, as: UTF8.self) }
    var description: String {
        "\"\(string.unicodeScalars.map { $0.isASCII ? "\($0)" : "\\u{\(String($0.value, radix: 16))}" }.joined())\""
    }
}

/// The reference model of the model suite: for each key, the writes (`storeToken`, `exchangeCode`,
/// `handleRedirect`, `forgetToken`) with the logical times they were sent and answered, from which it derives the
/// set of states a linearizable agent may show. A write's effect is the grant it installs (the fake's user id
/// of its tokens; refreshes keep a key's grant), or nil for a forget.
///
/// Time is a counter the driver ticks at every send and every answer it sees, so a write answered at tick 5
/// certainly took effect before a write sent at tick 6. A write W can be what a key shows unless some write
/// W2 that certainly happened was sent after W was answered (W2 then linearized after W). A write that may or
/// may not have happened (its agent was killed, or it failed with `storageError` and the agent keeps it in
/// memory to write later) adds its effect to the possible states without ruling others out.
struct ReferenceModel {
    struct Write {
        var grant: String?
        var sent: Int
        /// When it was answered (or its agent died); nil while it may still take effect.
        var done: Int?
        /// It certainly took effect (answered success).
        var certain: Bool
        /// The agent slot that may still write it (a failed save kept in memory), until that agent dies.
        var keptBy: Int?
        /// When it was answered, whatever the answer.
        var answered: Int?
    }

    enum Outcome {
        case happened
        /// May have taken effect at any time up to its answer.
        case mayHaveHappened
        /// May take effect at any time until the agent in `slot` dies (a save kept in memory after a
        /// failed write).
        case mayStillHappen(slot: Int)
        case didNotHappen
    }

    private(set) var clock = 0
    private var writes: [ModelKey: [Int: Write]] = [:]
    private var nextID = 0
    /// Pruned writes' grants by key, with the time they were certainly replaced.
    private var retired: [ModelKey: [String: Int]] = [:]

    init(keys: [ModelKey]) {
        for key in keys { writes[key] = [0: Write(grant: nil, sent: 0, done: 0, certain: true)] }
        nextID = 1
    }

    var keys: [ModelKey] { Array(writes.keys) }

    mutating func tick() -> Int {
        clock += 1
        return clock
    }

    /// A write of `grant` (nil: forget) to `key` is being sent now; answers its id.
    mutating func send(_ grant: String?, to key: ModelKey) -> Int {
        let id = nextID
        nextID += 1
        writes[key, default: [:]][id] = Write(grant: grant, sent: tick(), done: nil, certain: false)
        return id
    }

    /// The write `id` to `key` was answered (or its agent died) now, with `outcome`.
    mutating func finish(_ id: Int, of key: ModelKey, _ outcome: Outcome) {
        let now = tick()
        writes[key]?[id]?.answered = now
        switch outcome {
        case .happened:
            writes[key]?[id]?.done = now
            writes[key]?[id]?.certain = true
        case .mayHaveHappened: writes[key]?[id]?.done = now
        case .mayStillHappen(let slot): writes[key]?[id]?.keptBy = slot
        case .didNotHappen: writes[key]?[id] = nil
        }
    }

    /// The agent in `slot` died: the writes it kept in memory can no longer happen after now.
    mutating func agentDied(_ slot: Int) {
        let now = tick()
        for key in writes.keys {
            for (id, write) in writes[key]! where write.keptBy == slot && write.done == nil {
                writes[key]![id]!.done = now
            }
        }
    }

    /// The states (grant, or nil for no tokens) `key` may show to a read sent at `sent` and answered at
    /// `answered`: a write sent before the answer that no certain write had replaced before the read was sent.
    func possible(_ key: ModelKey, sent: Int, answered: Int) -> Set<String?> {
        let all = Array(writes[key, default: [:]].values)
        let certain = all.filter(\.certain)
        var states: Set<String?> = []
        for write in all where write.sent < answered {
            let replaced = certain.contains { later in
                guard let done = write.done, let laterDone = later.done else { return false }
                return done < later.sent && laterDone < sent
            }
            if !replaced { states.insert(write.grant) }
        }
        return states
    }

    /// The states `key` may show now, with nothing in flight.
    func possibleNow(_ key: ModelKey) -> Set<String?> { possible(key, sent: clock + 1, answered: clock + 1) }

    /// Whether `key` showing `grant` means a save that failed (`storageError`) and was kept in memory was
    /// written after a write that certainly happened later: legal for the model (the failed save had not
    /// happened yet), but the later write's tokens are gone.
    func isLateKeptSave(_ key: ModelKey, grant: String) -> Bool {
        let all = writes[key, default: [:]].values
        return all.contains { write in
            guard write.grant == grant, write.keptBy != nil, let answered = write.answered else { return false }
            return all.contains { $0.certain && $0.sent > answered }
        }
    }

    /// Whether `key` may have held `grant` at some moment since `since`, pruned writes included.
    func mayHaveHeld(_ key: ModelKey, _ grant: String, since: Int) -> Bool {
        (retired[key]?[grant]).map { $0 >= since }
            ?? possible(key, sent: since, answered: clock + 1).contains(grant)
    }

    /// Forgets the writes no later read can see, keeping when each grant was last possible.
    mutating func prune() {
        for key in writes.keys {
            let certain = writes[key]!.values.filter(\.certain)
            for (id, write) in writes[key]! {
                let replacedAt = certain.compactMap { later -> Int? in
                    guard let done = write.done, let laterDone = later.done, done < later.sent, laterDone <= clock
                    else { return nil }
                    return laterDone
                }.min()
                guard let replacedAt else { continue }
                writes[key]![id] = nil
                if let grant = write.grant { retired[key, default: [:]][grant] = replacedAt }
            }
        }
    }
}
