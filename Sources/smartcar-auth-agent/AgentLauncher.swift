import AgentSupport
import AuthAgent
import Foundation
import SmartcarOAuth
import TokenStore

/// Turns the command line and the environment into an `Agent.Setup`: configuration, store, clock.
/// Start-up failures (an unreadable secret file, a store other users can read) are `CommandLineError`s
/// whose text says what to do; missing credentials are not: the methods that need them say so.
enum AgentLauncher {
    /// `--store-schema`, else `SMARTCAR_AUTH_STORE_SCHEMA`, else `smartcar_auth` (used by PostgreSQL stores only).
    static func storeSchema(options: CommandLineOptions, environment: [String: String]) -> String {
        options.storeSchema ?? environment["SMARTCAR_AUTH_STORE_SCHEMA"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "smartcar_auth"
    }

    static func setup(
        options: CommandLineOptions, environment: [String: String],
        logger: Logger
    ) throws(CommandLineError) -> Agent.Setup {
        var configuration: SmartcarConfiguration
        do {
            configuration = try SmartcarConfiguration.fromEnvironment(
                environment,
                secretFile: options.clientSecretFile)
        } catch {
            throw CommandLineError(error.message)
        }
        if let clientID = options.clientID { configuration.clientID = clientID }
        if let redirectURI = options.redirectURI { configuration.redirectURI = redirectURI }
        if let mode = options.mode {
            guard let parsed = SmartcarMode(rawValue: mode) else {
                throw CommandLineError("--mode takes live, test or simulated, not '\(mode)'")
            }
            configuration.mode = parsed
        }
        configuration.requestTimeout = .milliseconds(Int64(options.requestTimeoutSeconds * 1000))

        let location =
            options.store.map(StoreLocation.init(argument:))
            ?? StoreLocation.defaultLocation(environment: environment)
        let store: any TokenStore
        let storeDescription: String
        do {
            let busyTimeout = Duration.milliseconds(Int64(options.storeBusyTimeoutSeconds * 1000))
            // The store only shows this application's keys; without a client id, only keys stored without one.
            if case .postgres(let uri) = location {
                let postgres = try PostgreSQLTokenStore.open(
                    uri, application: configuration.clientID ?? "", origin: LeaseOwner.current,
                    schema: storeSchema(options: options, environment: environment), logger: logger)
                store = postgres
                storeDescription = postgres.displayName
            } else {
                store = try SQLiteTokenStore.open(
                    location, application: configuration.clientID ?? "", origin: LeaseOwner.current,
                    strict: options.strictStore, busyTimeout: busyTimeout, logger: logger)
                if case .file(let path) = location { storeDescription = path } else { storeDescription = "memory" }
            }
        } catch {
            throw CommandLineError(error.description)
        }
        logger.info("token store: \(storeDescription)")
        if configuration.clientID == nil || configuration.clientSecret == nil {
            logger.notice(
                "SMARTCAR_CLIENT_ID or SMARTCAR_CLIENT_SECRET is not set; "
                    + "methods that call Smartcar will answer configurationError")
        }

        let adjustable = options.allowClockControl ? AdjustableClock() : nil
        return Agent.Setup(
            configuration: configuration, store: store, storeDescription: storeDescription,
            transport: CurlTransport.shared,
            clock: adjustable ?? SystemClock(), adjustableClock: adjustable, logger: logger, settings: options.agent)
    }
}
