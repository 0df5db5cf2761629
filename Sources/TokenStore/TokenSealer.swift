import Sealing

/// What the store's sealing key is derived from: the application's client secret (the default: the agent has it
/// anyway, so nobody manages a new secret), or an explicit key (`--store-key-file`).
package enum SealingSecret: Sendable {
    case clientSecret(SecretBytes)
    case storeKey(SecretBytes)

    /// How `status` and the store name the source (never the secret).
    package var source: String {
        switch self {
        case .clientSecret: "client-secret"
        case .storeKey: "store-key"
        }
    }
}

/// Seals and opens the secret columns (access and refresh tokens) of one application's rows with AES-256-GCM.
///
/// The key is HKDF-SHA256 of the secret with the store's random salt and the application as info, so the same
/// secret seals each store and each application differently. Every value is bound by its associated data to its
/// place (store id, application, key, column, generation): a value copied to another row, column or generation
/// does not open. A sealed value is stored as bytes: a version byte, then nonce ‖ ciphertext ‖ tag.
package struct TokenSealer: Sendable {
    package enum Column: String, Sendable, CaseIterable {
        case accessToken = "access_token"
        case refreshToken = "refresh_token"
    }

    /// The first byte of every sealed value: the format, so a later one can be told apart.
    static let formatVersion: UInt8 = 1

    package let storeID: String
    package let application: String
    /// Where the key came from (`SealingSecret.source`).
    package let source: String
    /// One-way check value of the key, kept in the store to recognise the right secret (never the key).
    package let fingerprint: String
    private let key: SecretBytes

    /// Derives the application's key for the store `storeID` whose salt is `salt`.
    package init(secret: SealingSecret, storeID: String, salt: [UInt8], application: String) throws(StoreError) {
        let material: SecretBytes
        switch secret {
        case .clientSecret(let bytes), .storeKey(let bytes): material = bytes
        }
        do {
            key = try HKDF.sha256(
                inputKeyMaterial: material, salt: salt,
                info: Array("smartcar-auth-agent token sealing v1".utf8) + [0] + Array(application.utf8),
                outputCount: AESGCM.keyCount)
            let check = try HKDF.sha256(
                inputKeyMaterial: key, salt: [], info: Array("smartcar-auth-agent key fingerprint v1".utf8),
                outputCount: 16)
            fingerprint = check.withUnsafeBytes { $0.map { String($0, radix: 16).leftPadded(to: 2) }.joined() }
        } catch {
            throw StoreError(.sealing, "could not derive the store's sealing key (\(error))")
        }
        self.storeID = storeID
        self.application = application
        self.source = secret.source
    }

    /// The storage mode `status` shows: "none", or the cipher and where its key came from (never the key).
    package static func modeDescription(_ sealer: TokenSealer?) -> String {
        guard let sealer else { return "none" }
        return "AES-256-GCM, key from the \(sealer.source == "store-key" ? "store key" : "client secret")"
    }

    package func seal(
        _ value: String, key tokenKey: String, column: Column, generation: Int64
    ) throws(StoreError) -> [UInt8] {
        do {
            let place = associatedData(tokenKey, column, generation)
            return [Self.formatVersion] + (try AESGCM.seal(Array(value.utf8), key: key, associatedData: place))
        } catch {
            throw StoreError(.sealing, "could not seal the \(column.rawValue) of key '\(tokenKey)' (\(error))")
        }
    }

    /// Opens a value `seal` made for exactly this place; throws `.sealing` (naming the key and column, never a
    /// value) for anything else: another row's value, an altered one, another key.
    package func open(
        _ sealed: [UInt8], key tokenKey: String, column: Column, generation: Int64
    ) throws(StoreError) -> String {
        guard sealed.first == Self.formatVersion else {
            throw StoreError(
                .sealing, "the \(column.rawValue) of key '\(tokenKey)' is not a sealed value this agent knows")
        }
        do {
            let opened = try AESGCM.open(
                Array(sealed.dropFirst()), key: key, associatedData: associatedData(tokenKey, column, generation))
            return String(decoding: opened, as: UTF8.self)
        } catch {
            throw StoreError(
                .sealing,
                "the \(column.rawValue) of key '\(tokenKey)' does not open: it was altered, or moved from another row, column or store; the row is left as it is"
            )
        }
    }

    /// Each part length-prefixed, so no two places share a byte string.
    private func associatedData(_ tokenKey: String, _ column: Column, _ generation: Int64) -> [UInt8] {
        let parts = ["smartcar-auth-agent/1", storeID, application, tokenKey, column.rawValue, String(generation)]
        return parts.flatMap { part -> [UInt8] in
            let bytes = Array(part.utf8)
            let length = UInt32(bytes.count)
            return [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
                + bytes
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
