import AgentSupport

/// What opening a store does with an application's rows, by the fingerprint the store keeps for it: the one rule
/// of both backends (`SQLiteSealing`, `PostgreSQLSealing`), which differ only in how they lock and rewrite.
enum SealingRule {
    /// The rows are sealed under the current secret: nothing to rewrite.
    case current
    /// Every row is sealed anew under the current secret: from plaintext (`from` nil, an upgrade) or from the
    /// previous secret's key (a rotation).
    case reseal(from: TokenSealer?)

    /// `stored`: the fingerprint and source the store keeps for the application, if any. Any fingerprint neither
    /// secret gives is `.wrongKey`: nothing may be written then. `place` names the store in messages.
    static func decide(
        stored: (fingerprint: String, source: String)?, current: TokenSealer, previous: TokenSealer?,
        place: String, application: String
    ) throws(StoreError) -> SealingRule {
        switch stored?.fingerprint {
        case current.fingerprint: return .current
        case nil: return .reseal(from: nil)
        case let old? where old == previous?.fingerprint: return .reseal(from: previous)
        case let old?:
            throw StoreError(
                .wrongKey,
                "the token store \(place) was sealed for application \(application) with another \(stored?.source ?? "secret") (fingerprint \(old.prefix(8))…, this one gives \(current.fingerprint.prefix(8))…); start the agent with the secret it was sealed with, or during a rotation give that one as the previous secret"
            )
        }
    }

    /// An agent given nothing to seal with: a store sealed for the application refuses it (`.wrongKey`); one that
    /// never was is used unsealed, and the log says so.
    static func withoutSecrets(
        stored: (fingerprint: String, source: String)?, place: String, application: String, logger: Logger
    ) throws(StoreError) {
        if let stored {
            throw StoreError(
                .wrongKey,
                "the token store \(place) is sealed for application \(application) with a \(stored.source) (fingerprint \(stored.fingerprint.prefix(8))…), but the agent was given none; give it the client secret or --store-key-file the store was sealed with"
            )
        }
        logger.warning(
            "token store \(place): application \(application)'s tokens are stored unsealed: the agent was given nothing to seal them with (client credentials or a store key)"
        )
    }
}
