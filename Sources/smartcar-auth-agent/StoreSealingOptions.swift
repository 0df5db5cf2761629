import AgentSupport
import Foundation
import Sealing
import TokenStore
import WireFormats

/// What the token store is sealed with, from the flags and the environment: a store key when one is given
/// (`--store-key-file`), else the client secret; during a rotation also the previous one. Nothing given: the
/// store is not sealed (the log says so).
enum StoreSealingOptions {
    static func secrets(
        options: CommandLineOptions, environment: [String: String], clientSecret: String?
    ) throws(CommandLineError) -> StoreSecrets? {
        let storeKey = try (options.storeKeyFile ?? nonEmpty(environment["SMARTCAR_AUTH_STORE_KEY_FILE"])).map {
            path throws(CommandLineError) in
            try readKey(path, what: "store key file")
        }
        let previousKey = try options.previousStoreKeyFile.map { path throws(CommandLineError) in
            try readKey(path, what: "previous store key file")
        }
        let previousSecret = try previousClientSecret(options: options, environment: environment)
        let current: SealingSecret? =
            storeKey.map(SealingSecret.storeKey)
            ?? clientSecret.flatMap { $0.isEmpty ? nil : .clientSecret(SecretBytes(Array($0.utf8))) }
        guard let current else {
            if previousKey != nil || previousSecret != nil {
                throw CommandLineError(
                    "a previous client secret or store key was given without a current one to re-seal the store with")
            }
            return nil
        }
        return StoreSecrets(
            current: current,
            previous: previousKey.map(SealingSecret.storeKey) ?? previousSecret.map(SealingSecret.clientSecret))
    }

    private static func nonEmpty(_ value: String?) -> String? { value?.isEmpty == false ? value : nil }

    private static func previousClientSecret(
        options: CommandLineOptions, environment: [String: String]
    ) throws(CommandLineError) -> SecretBytes? {
        if let path = options.previousClientSecretFile {
            var bytes: [UInt8]
            do { bytes = try PrivateFile.readSecret(path, what: "previous client secret file") } catch {
                throw CommandLineError(error.message)
            }
            defer { bytes.wipe() }
            while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
            guard !bytes.isEmpty else { throw CommandLineError("the previous client secret file \(path) is empty") }
            return SecretBytes(bytes)
        }
        guard let secret = environment["SMARTCAR_PREVIOUS_CLIENT_SECRET"], !secret.isEmpty else { return nil }
        return SecretBytes(Array(secret.utf8))
    }

    /// A 256-bit key: 64 hexadecimal digits, or 44 characters of base64, or the 32 bytes themselves.
    private static func readKey(_ path: String, what: String) throws(CommandLineError) -> SecretBytes {
        var bytes: [UInt8]
        do { bytes = try PrivateFile.readSecret(path, what: what) } catch { throw CommandLineError(error.message) }
        defer { bytes.wipe() }
        if bytes.count == AESGCM.keyCount { return SecretBytes(bytes) }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.count == 2 * AESGCM.keyCount, let decoded = Hexadecimal.bytes(text) { return SecretBytes(decoded) }
        if let decoded = Data(base64Encoded: text), decoded.count == AESGCM.keyCount { return SecretBytes(decoded) }
        throw CommandLineError(
            "the \(what) \(path) does not hold a 256-bit key (64 hexadecimal digits, base64 of 32 bytes, or 32 raw bytes); make one with: (umask 077; openssl rand -hex 32 > \(path))"
        )
    }
}
