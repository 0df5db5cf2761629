import AgentSupport
import Testing

@testable import AuthAgent

@Suite struct ConnectStatesTests {
    @Test func aStateIsValidOnceThenReused() {
        let states = ConnectStates(clock: SystemClock(), lifetime: 60)
        states.remember("s1", redirectURI: "https://example.com/cb", key: "car")
        guard case .valid(let issued) = states.claim("s1") else { Issue.record("a fresh state was refused"); return }
        #expect(issued.redirectURI == "https://example.com/cb")
        #expect(issued.key == "car")
        #expect(states.claim("s1") == .reused)
        #expect(states.claim("never") == .unknown)
    }

    /// A caller's own state is claimed by its exact bytes only: "café" in NFD is not the state issued as NFC.
    @Test func aStateIsClaimedByItsBytesNotByCanonicalEquivalence() {
        let states = ConnectStates(clock: SystemClock(), lifetime: 60)
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)  // what String == says, and why the registry must not use it
        states.remember(composed, redirectURI: nil, key: "owner-1")
        #expect(states.claim(decomposed) == .unknown)
        guard case .valid(let issued) = states.claim(composed) else {
            Issue.record("the state as issued was not accepted")
            return
        }
        #expect(issued.key == "owner-1")
    }

    @Test func aStateExpires() {
        let clock = AdjustableClock()
        let states = ConnectStates(clock: clock, lifetime: 60)
        states.remember("s1", redirectURI: nil, key: nil)
        clock.advance(by: 61)
        #expect(states.claim("s1") == .expired)
    }

    @Test func generatedStatesAreUnguessable() {
        let generated = Set((0..<1000).map { _ in ConnectStates.generate() })
        #expect(generated.count == 1000)
        #expect(generated.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test func theRegistryIsBounded() {
        let states = ConnectStates(clock: SystemClock(), lifetime: 60, capacity: 10)
        for n in 0..<100 { states.remember("s\(n)", redirectURI: nil, key: nil) }
        #expect(states.claim("s0") == .unknown)
        if case .valid = states.claim("s99") {} else { Issue.record("the newest state was dropped") }
    }
}
