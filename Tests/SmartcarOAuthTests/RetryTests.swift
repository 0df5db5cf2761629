import Foundation
import Testing

@testable import SmartcarOAuth

/// Which failures are retried for which operation, how long the pauses are, and the overall budget.
/// Sleeps are recorded, never slept.
@Suite("Retries")
struct RetryTests {
    @Test func backoffDoublesUpToTheCap() {
        let policy = RetryPolicy(maxAttempts: 10, jitter: { $0 })
        #expect(
            (1...7).map(policy.backoff(afterAttempt:)) == [
                .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .milliseconds(3200),
                .seconds(5), .seconds(5),
            ])
        let wild = RetryPolicy(jitter: { $0 * 10 })
        #expect(wild.backoff(afterAttempt: 1) == .milliseconds(200), "jitter is clamped to the cap")
        let random = RetryPolicy()
        for attempt in 1...5 {
            let pause = random.backoff(afterAttempt: attempt)
            #expect(pause >= .zero && pause <= .seconds(5))
        }
    }

    @Test func idempotentCallsRetry5xxAndNetworkFailures() async throws {
        let sleeps = SleepRecorder()
        let transport = StubTransport(Stub.json(503, "{}"), Stub.failure(.connectionLost), Stub.appToken)
        let token = try await Fixture.client(transport, retry: sleeps.policy()).applicationToken()
        #expect(token.accessToken == "APP-1")
        #expect(transport.requests.count == 3)
        #expect(sleeps.recorded == [.milliseconds(200), .milliseconds(400)])
    }

    @Test func userLookupRetriesTimeoutsAndGivesUpAfterMaxAttempts() async throws {
        let sleeps = SleepRecorder()
        let transport = StubTransport(Stub.failure(.timedOut), Stub.json(500, "{}"), Stub.json(502, "{}"))
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(transport, retry: sleeps.policy()).userID(accessToken: "at")
            })
        #expect(error.kind == .upstreamUnavailable)
        #expect(error.details["status"] == 502)
        #expect(error.details["retried"] == 2)
        #expect(error.details["mayHaveReachedServer"] == nil, "only single-use calls say so")
        #expect(transport.requests.count == 3)
    }

    @Test(arguments: [
        StubTransport.Answer.failure(TransportError(.timedOut)), .failure(TransportError(.connectionLost)),
        .failure(TransportError(.other)), Stub.json(500, "{}"), Stub.json(503, "{}", headers: ["Retry-After": "1"]),
    ])
    func exchangeIsNotRetriedWhenItMayHaveReachedSmartcar(_ answer: StubTransport.Answer) async throws {
        let sleeps = SleepRecorder()
        let transport = StubTransport(answer, Stub.tokenPair)
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(transport, retry: sleeps.policy()).exchangeCode("c", redirectURI: nil)
            })
        #expect(error.kind == .upstreamUnavailable)
        #expect(error.details["mayHaveReachedServer"] == true)
        #expect(
            error.message.contains(
                "the authorization code may have been used; ask the user to connect again if a retry fails"))
        #expect(transport.requests.count == 1)
        #expect(sleeps.recorded.isEmpty)
    }

    @Test func refreshIsNotRetriedAfterAConnectionReset() async throws {
        let transport = StubTransport(Stub.failure(.connectionLost), Stub.tokenPair)
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(transport, retry: SleepRecorder().policy()).refresh("r")
            })
        #expect(error.kind == .upstreamUnavailable)
        #expect(error.details["mayHaveReachedServer"] == true)
        #expect(error.details["network"] == "connectionLost")
        #expect(error.message.contains("the refresh may have reached Smartcar"))
        #expect(transport.requests.count == 1)
    }

    @Test func singleUseCallsRetryWhenTheyCertainlyNeverLeft() async throws {
        let sleeps = SleepRecorder()
        let transport = StubTransport(Stub.failure(.cannotConnect), Stub.failure(.cannotConnect), Stub.tokenPair)
        let grant = try await Fixture.client(transport, retry: sleeps.policy()).refresh("r")
        #expect(grant.refreshToken == "RT-1")
        #expect(transport.requests.count == 3)
        #expect(sleeps.recorded == [.milliseconds(200), .milliseconds(400)])
    }

    @Test func connectFailuresExhaustedSayTheRequestNeverLeft() async throws {
        let transport = StubTransport(
            Stub.failure(.cannotConnect), Stub.failure(.cannotConnect), Stub.failure(.cannotConnect))
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(transport, retry: SleepRecorder().policy()).exchangeCode("c", redirectURI: nil)
            })
        #expect(error.kind == .upstreamUnavailable)
        #expect(error.details["mayHaveReachedServer"] == false)
        #expect(error.details["retried"] == 2)
        #expect(!error.message.contains("may have been used"))
    }

    @Test func tlsFailureIsNotRetried() async throws {
        let transport = StubTransport(Stub.failure(.secureConnectionFailed), Stub.appToken)
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(transport, retry: SleepRecorder().policy()).applicationToken()
            })
        #expect(error.kind == .upstreamUnavailable)
        #expect(transport.requests.count == 1)
    }

    @Test func rateLimitedRefreshHonoursRetryAfterSeconds() async throws {
        let sleeps = SleepRecorder()
        let transport = StubTransport(
            Stub.json(429, #"{"type":"RATE_LIMIT"}"#, headers: ["Retry-After": "2"]), Stub.tokenPair)
        let grant = try await Fixture.client(transport, retry: sleeps.policy()).refresh("r")
        #expect(grant.accessToken == "AT-1")
        #expect(sleeps.recorded == [.seconds(2)])
    }

    @Test func retryAfterAsHTTPDate() async throws {
        let sleeps = SleepRecorder()
        // FixedClock is 2027-01-15T08:00:00Z; the date is 20 s later.
        let transport = StubTransport(
            Stub.json(429, "{}", headers: ["Retry-After": "Fri, 15 Jan 2027 08:00:20 GMT"]), Stub.user)
        _ = try await Fixture.client(transport, retry: sleeps.policy()).userID(accessToken: "a")
        #expect(sleeps.recorded == [.seconds(20)])
    }

    @Test func retryAfterBeyondTheBudgetFailsAtOnceWithRetryAfter() async throws {
        let sleeps = SleepRecorder()
        let transport = StubTransport(
            Stub.json(429, #"{"type":"RATE_LIMIT","description":"slow down"}"#, headers: ["Retry-After": "60"]),
            Stub.tokenPair)
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(transport, retry: sleeps.policy()).refresh("r")
            })
        #expect(error.kind == .rateLimited)
        #expect(error.details["retryAfter"] == 60)
        #expect(error.details["error"] == "RATE_LIMIT")
        #expect(error.kind == .rateLimited)
        #expect(sleeps.recorded.isEmpty)
        #expect(transport.requests.count == 1)
    }

    @Test func rateLimitExhaustedReportsRetries() async throws {
        let limited = Stub.json(429, "{}", headers: ["Retry-After": "1"])
        let transport = StubTransport(limited, limited, limited)
        let error = try #require(
            await smartcarError { () async throws(SmartcarError) in
                try await Fixture.client(transport, retry: SleepRecorder().policy()).applicationToken()
            })
        #expect(error.kind == .rateLimited)
        #expect(error.details["retried"] == 2)
        #expect(error.details["retryAfter"] == 1)
    }

    @Test func rateLimitWithoutRetryAfterUsesBackoff() async throws {
        let sleeps = SleepRecorder()
        let transport = StubTransport(Stub.json(429, "{}"), Stub.tokenPair)
        _ = try await Fixture.client(transport, retry: sleeps.policy()).exchangeCode("c", redirectURI: nil)
        #expect(sleeps.recorded == [.milliseconds(200)])
        #expect(transport.requests.count == 2)
    }

    @Test func neverPolicyMakesOneAttempt() async throws {
        let transport = StubTransport(Stub.json(503, "{}"), Stub.appToken)
        let error = await smartcarError { () async throws(SmartcarError) in
            try await Fixture.client(transport, retry: .never).applicationToken()
        }
        #expect(error?.kind == .upstreamUnavailable)
        #expect(transport.requests.count == 1)
    }

    @Test func cancellationDuringBackoffIsCancelled() async throws {
        let transport = StubTransport(Stub.json(503, "{}"), Stub.appToken)
        let entered = AsyncStream<Void>.makeStream()
        let policy = RetryPolicy(
            jitter: { $0 },
            sleep: { _ in
                entered.continuation.yield()
                try await Task.sleep(for: .seconds(3600))
            })
        let client = Fixture.client(transport, retry: policy)
        let task = Task {
            await smartcarError { () async throws(SmartcarError) in try await client.applicationToken() }
        }
        var iterator = entered.stream.makeAsyncIterator()
        await iterator.next()
        task.cancel()
        let error = await task.value
        #expect(error?.kind == .cancelled)
        #expect(error?.kind == .cancelled)
    }

    @Test func retryAfterParsing() {
        let now = FixedClock().date
        #expect(RetryAfter.delay("120", now: now) == .seconds(120))
        #expect(RetryAfter.delay(" 0 ", now: now) == .zero)
        #expect(RetryAfter.delay("1.5", now: now) == .milliseconds(1500))
        #expect(RetryAfter.delay("Fri, 15 Jan 2027 07:00:00 GMT", now: now) == .zero, "a date in the past means now")
        #expect(RetryAfter.delay("-3", now: now) == nil)
        #expect(RetryAfter.delay("soon", now: now) == nil)
        #expect(RetryAfter.delay("Fri, 32 Jan 2027 07:00:00 GMT", now: now) == nil)
        #expect(RetryAfter.delay(nil, now: now) == nil)
        #expect(RetryAfter.seconds(.milliseconds(1500)) == 2)
    }
}
