import CCurl
import Foundation
import Synchronization

/// The one thread that drives every transfer of the process through one libcurl multi handle.
///
/// It blocks in `curl_multi_poll` until a socket is ready, a libcurl timer (a transfer's deadline) is due, or
/// `curl_multi_wakeup` says a transfer was submitted or cancelled: while requests wait on a stalled server, or
/// none is in flight, the process sleeps in the kernel (URLSession on Linux spins at most of a core).
///
/// `@unchecked Sendable`: `multi` and `running` are used only by the thread (`run`), except `curl_multi_wakeup`,
/// which libcurl documents as callable from any thread; `inbox` is a `Mutex`.
final class CurlMultiThread: @unchecked Sendable {
    /// Made on the first request: setting up libcurl and OpenSSL is a good part of the agent's start-up, and a
    /// `getToken` answered from the store needs none of it.
    static let shared = CurlMultiThread()

    private struct Inbox {
        var submitted: [CurlTransfer] = []
        var cancelled: [CurlTransfer] = []
    }

    private let multi: UnsafeMutableRawPointer
    private let inbox = Mutex(Inbox())
    /// The transfers in the multi handle, by easy handle.
    private var running: [UnsafeMutableRawPointer: CurlTransfer] = [:]

    /// How long the thread sleeps when nothing is due; any submission or cancellation wakes it sooner.
    private static let idleMilliseconds: Int32 = 3_600_000

    private init() {
        guard curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK, let multi = curl_multi_init() else {
            fatalError("libcurl could not be initialised")
        }
        self.multi = multi
        let thread = Thread { [self] in run() }
        thread.name = "curl-multi"
        thread.start()
    }

    /// Hands a transfer to the thread, which finishes it exactly once.
    func submit(_ transfer: CurlTransfer) {
        inbox.withLock { $0.submitted.append(transfer) }
        curl_multi_wakeup(multi)
    }

    /// Asks the thread to end a transfer with `CancellationError` if it is still running.
    func cancel(_ transfer: CurlTransfer) {
        inbox.withLock { $0.cancelled.append(transfer) }
        curl_multi_wakeup(multi)
    }

    private func run() -> Never {
        while true {
            takeInbox()
            var active: Int32 = 0
            curl_multi_perform(multi, &active)
            finishCompleted()
            var ready: Int32 = 0
            curl_multi_poll(multi, nil, 0, Self.idleMilliseconds, &ready)
        }
    }

    private func takeInbox() {
        let taken = inbox.withLock { inbox in
            defer { inbox = Inbox() }
            return inbox
        }
        for transfer in taken.submitted {
            if transfer.isCancelled {
                transfer.finish(.failure(CancellationError()))
            } else if curl_multi_add_handle(multi, transfer.handle) == CURLM_OK {
                running[transfer.handle] = transfer
            } else {
                transfer.finish(.failure(TransportError(.cannotConnect, detail: "libcurl refused the transfer")))
            }
        }
        for transfer in taken.cancelled where running[transfer.handle] === transfer {
            remove(transfer).finish(.failure(CancellationError()))
        }
    }

    private func finishCompleted() {
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                let transfer = running[handle]
            else { continue }
            let code = ccurl_message_result(message)
            remove(transfer).finish(transfer.outcome(code))
        }
    }

    private func remove(_ transfer: CurlTransfer) -> CurlTransfer {
        curl_multi_remove_handle(multi, transfer.handle)
        running[transfer.handle] = nil
        return transfer
    }
}
