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
        let secrets = try StoreSealingOptions.secrets(
            options: options, environment: environment, clientSecret: configuration.clientSecret)
        let store: SQLiteTokenStore
        do {
            let busyTimeout = Duration.milliseconds(Int64(options.storeBusyTimeoutSeconds * 1000))
            // The store only shows this application's keys; without a client id, only keys stored without one.
            store = try SQLiteTokenStore.open(
                location, application: configuration.clientID ?? "", origin: LeaseOwner.current,
                strict: options.strictStore, sealing: secrets, busyTimeout: busyTimeout, logger: logger)
        } catch {
            throw CommandLineError(error.description)
        }
        let storeDescription: String
        switch location {
        case .memory: storeDescription = "memory"
        case .file(let path): storeDescription = path
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
            clock: adjustable ?? SystemClock(), adjustableClock: adjustable, logger: logger, settings: options.agent,
            storeSealing: store.sealing)
    }
}
