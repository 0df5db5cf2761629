/// What `TokenStore.save(_:kind:unlessChangedAfter:)` did.
package enum FencedSave: Sendable, Equatable {
    /// Nothing changed the key after the fence: the tokens are stored; the row as written.
    case saved(StoredToken)
    /// The key changed after the fence (or the log no longer tells, see the method): nothing was written.
    case superseded
}
