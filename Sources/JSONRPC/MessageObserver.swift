/// Sees every message the connection receives and sends, as whole JSON bodies without framing (for
/// `--record`, which turns a live session into a transcript). Called on the thread that reads or writes
/// the message, before a received message is dispatched and before a sent one is written; keep it quick.
package protocol MessageObserver: Sendable {
    /// A complete message (a JSON text, possibly invalid) as read from the client.
    func received(_ body: [UInt8])
    /// A message (a response, a batch of responses or a notification) about to be written to the client.
    func sent(_ body: [UInt8])
}
