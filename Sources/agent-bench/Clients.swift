import AgentSupport
import AgentTestSupport
import Dispatch
import Foundation

/// The three ways the bench drives a sidecar over its pipes. Each is raw `write`/`read` on the calling
/// thread (plus one writer thread for bursts), so the client adds as little as the C tools in
/// `shared/bench` do; the floor is measured with the very same code, checks included.
///
/// `marker` is what every reply must hold near its start: `"result"` from the agent and the peer,
/// `"method"` from the floor (which echoes the request).
enum Clients {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Sequential round trips of lines `range`: write one, read its reply. Answers microseconds per line.
    /// Each reply is checked after the clock is read.
    static func roundTrips(
        _ child: MeasuredProcess, _ batch: RequestBatch, _ range: Range<Int>,
        marker: [UInt8]
    ) throws -> [Double] {
        var samples: [Double] = []
        samples.reserveCapacity(range.count)
        try batch.bytes.withUnsafeBytes { all in
            for index in range {
                let line = UnsafeRawBufferPointer(rebasing: all[batch.offsets[index]..<batch.offsets[index + 1]])
                let started = Monotonic.now()
                try child.write(line)
                guard let reply = child.output.nextLine() else {
                    throw Failure(description: "\(child.name) closed its output\(child.stderrTail)")
                }
                let ended = Monotonic.now()
                if !MessageReader.contains(reply, marker) {
                    throw Failure(
                        description: "\(child.name) answered: \(String(decoding: reply.prefix(300), as: UTF8.self))")
                }
                samples.append(Monotonic.microseconds(from: started, to: ended))
            }
        }
        return samples
    }

    /// Lines of `batch` pipelined with at most `window` requests outstanding: as replies arrive, as many new
    /// requests go out in one write. Answers requests per second.
    ///
    /// One thread is enough and cannot deadlock: at most `window` requests are unread by the child, far
    /// below a pipe's 64 KiB for the windows used here, so a write never blocks for long.
    static func pipelined(
        _ child: MeasuredProcess, _ batch: RequestBatch, window: Int,
        marker: [UInt8]
    ) throws -> Double {
        let total = batch.count
        var sent = 0, received = 0, unmatched = 0
        let started = Monotonic.now()
        try batch.bytes.withUnsafeBytes { all in
            func send(upTo limit: Int) throws {
                guard limit > sent else { return }
                try child.write(UnsafeRawBufferPointer(rebasing: all[batch.offsets[sent]..<batch.offsets[limit]]))
                sent = limit
            }
            try send(upTo: min(total, window))
            while received < total {
                guard let chunk = child.output.countLines(marker: marker) else {
                    throw Failure(
                        description: "\(child.name) closed its output after \(received) replies\(child.stderrTail)")
                }
                received += chunk.lines
                unmatched += chunk.unmatched
                try send(upTo: min(total, received + window))
            }
        }
        let ended = Monotonic.now()
        if unmatched > 0 {
            throw Failure(description: "\(child.name): \(unmatched) of \(total) pipelined replies were not results")
        }
        return Double(total) / (Double(ended - started) / 1e9)
    }

    /// Every line of `batch` written at once from a thread of its own while this thread reads the replies:
    /// `batch.count` requests in flight. Answers the time from the first write to the last reply, and the
    /// replies (copied during the run, split afterwards).
    static func burst(
        _ child: MeasuredProcess,
        _ batch: RequestBatch
    ) throws -> (milliseconds: Double, replies: [String]) {
        let fd = child.input
        let bytes = batch.bytes
        let written = DispatchSemaphore(value: 0)
        var raw: [UInt8] = []
        raw.reserveCapacity(batch.count * 256)
        let started = Monotonic.now()
        let writer = Thread {
            FileDescriptor.writeAll(fd, bytes)
            written.signal()
        }
        writer.start()
        var received = 0
        while received < batch.count {
            guard let line = child.output.nextLine() else {
                written.wait()
                throw Failure(
                    description:
                        "\(child.name) closed its output after \(received) of \(batch.count) replies\(child.stderrTail)"
                )
            }
            raw.append(contentsOf: line)
            raw.append(0x0A)
            received += 1
        }
        let ended = Monotonic.now()
        written.wait()
        let replies = raw.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map {
            String(decoding: $0, as: UTF8.self)
        }
        return (Monotonic.milliseconds(from: started, to: ended), replies)
    }
}
