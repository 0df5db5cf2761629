/// The secrets a store's token columns are sealed with: the current one, and during a rotation the previous one,
/// whose rows are re-sealed under the current one at open (after which the previous one is no longer needed).
package struct StoreSecrets: Sendable {
    package var current: SealingSecret
    package var previous: SealingSecret?

    package init(current: SealingSecret, previous: SealingSecret? = nil) {
        self.current = current
        self.previous = previous
    }
}
