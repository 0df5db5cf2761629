import AgentSupport
import AuthAgent
import Foundation
import SmartcarOAuth
import TokenStore

/// Turns the command line and the environment into an `Agent.Setup`: configuration, store, clock.
/// Start-up failures (an unreadable secret file, a store other users can read) are `CommandLineError`s
/// whose text says what to do; missing credentials are not: the methods that need them say so.
enum AgentLauncher {
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
        let (store, storeDescription, storeSealing) = try openStore(
            location, options: options, environment: environment, application: configuration.clientID ?? "",
            secrets: StoreSealingOptions.secrets(
                options: options, environment: environment, clientSecret: configuration.clientSecret),
            logger: logger)
        logger.info("token store: \(storeDescription)")
        if configuration.clientID == nil || configuration.clientSecret == nil {
            logger.notice(
                "SMARTCAR_CLIENT_ID or SMARTCAR_CLIENT_SECRET is not set; "
                    + "methods that call Smartcar will answer configurationError")
        }

        var settings = options.agent
        if let seconds = options.refreshAhead {
            settings.refreshAheadSeconds = seconds
        } else if let text = environment["SMARTCAR_AUTH_REFRESH_AHEAD"], !text.isEmpty {
            settings.refreshAheadSeconds = try CommandLineOption.refreshAheadSeconds(
                text, from: "SMARTCAR_AUTH_REFRESH_AHEAD")
        }
        let adjustable = options.allowClockControl ? AdjustableClock() : nil
        return Agent.Setup(
            configuration: configuration, store: store, storeDescription: storeDescription,
            transport: CurlTransport.shared,
            clock: adjustable ?? SystemClock(), adjustableClock: adjustable, logger: logger, settings: settings,
            storeSealing: storeSealing)
    }

    /// The schema of a PostgreSQL store when neither `--store-schema` nor `SMARTCAR_AUTH_STORE_SCHEMA` names one.
    static let defaultStoreSchema = "smartcar_auth"

    /// Opens the store and says what it is for the start-up log (a PostgreSQL URI without its password) and how it
    /// seals tokens. The store only shows this application's keys; without a client id, only keys stored without
    /// one.
    private static func openStore(
        _ location: StoreLocation, options: CommandLineOptions, environment: [String: String], application: String,
        secrets: StoreSecrets?, logger: Logger
    ) throws(CommandLineError) -> (any TokenStore, String, String) {
        let busyTimeout = Duration.milliseconds(Int64(options.storeBusyTimeoutSeconds * 1000))
        do {
            switch location {
            case .postgres(let uri):
                let schema =
                    options.storeSchema ?? environment["SMARTCAR_AUTH_STORE_SCHEMA"].flatMap { $0.isEmpty ? nil : $0 }
                    ?? defaultStoreSchema
                let store = try PostgreSQLTokenStore.open(
                    uri, application: application, origin: LeaseOwner.current, schema: schema, sealing: secrets,
                    busyTimeout: busyTimeout, logger: logger)
                return (store, "\(store.displayName) (schema \(schema))", store.sealing)
            case .memory, .file:
                let store = try SQLiteTokenStore.open(
                    location, application: application, origin: LeaseOwner.current, strict: options.strictStore,
                    sealing: secrets, busyTimeout: busyTimeout, logger: logger)
                guard case .file(let path) = location else { return (store, "memory", store.sealing) }
                return (store, path, store.sealing)
            }
        } catch {
            throw CommandLineError(error.description)
        }
    }
}
